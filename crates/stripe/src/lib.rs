//! Stripe for Proofsheet: webhook signature verification, the event shapes
//! the services read, and a small client for the few API calls they make.
//!
//! The client speaks Stripe's form-encoded wire format over reqwest with
//! rustls on ring. It is used instead of async-stripe because the calls are
//! few, and async-stripe's generated types are the slowest part of a build.

pub mod client;
pub mod event;
pub mod signature;

pub use client::{StripeClient, StripeError};
pub use event::Event;
pub use signature::{SignatureError, TOLERANCE_SECONDS, sign, verify};
pub use url::Url;
