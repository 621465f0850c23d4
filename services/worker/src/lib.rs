//! `proofsheet-worker`: Proofsheet's background jobs on apalis queues.
//!
//! - **Thumbnails** ([`generate_thumbnails`]): the grid and lightbox
//!   renditions of each uploaded photo, with EXIF orientation applied.
//! - **Emails** ([`send_email`]): portal links, overdue notices and password
//!   resets, over SMTP or into an outbox folder.
//! - **Checkout Session expiry** ([`expire_marked_checkouts`]): expires at
//!   Stripe the sessions of invoices the studio edited or marked paid.
//! - **Overdue detection** ([`check_overdue_invoices`]): on the
//!   `OVERDUE_SCHEDULE` cron schedule, flags unpaid invoices past their due
//!   date and enqueues one notice email per recipient.
//! - **Queue vacuum** ([`vacuum_queues`]): every hour, deletes jobs that
//!   finished more than [`JOB_RETENTION`] ago from Redis.
//!
//! The job functions take a [`JobContext`] and can be called directly.
//! [`run`] connects everything and runs them under an apalis monitor, which
//! retries transient failures with exponential backoff.

mod checkout_expiry;
mod context;
mod emails;
mod error;
mod overdue;
mod service;
mod stripe_reconcile;
mod tasks;
mod thumbnails;
mod vacuum;

pub use checkout_expiry::expire_marked_checkouts;
pub use context::JobContext;
pub use emails::{EmailOutcome, send_email, send_notice};
pub use error::Error;
pub use overdue::{OverdueCheck, REQUEUE_AFTER, check_overdue_invoices};
pub use service::{
    CHECKOUT_EXPIRY_CONCURRENCY, EMAIL_CONCURRENCY, POLL_INTERVAL, SHUTDOWN_GRACE, WorkerSettings,
    Workers, connect, parse_schedule, run,
};
pub use stripe_reconcile::{
    RECONCILE_WINDOW, Reconciled, client_from_config, reconcile_stripe_payments,
};
pub use tasks::RetrySettings;
pub use thumbnails::{
    GIVE_UP_REASON, STALE_PHOTO_AFTER, ThumbnailOutcome, generate_thumbnails, give_up_on_photo,
    requeue_stale_photos,
};
pub use vacuum::{JOB_RETENTION, vacuum_queues};
