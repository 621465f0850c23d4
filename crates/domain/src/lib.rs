//! Proofsheet's domain: the rules of a studio's projects and their client
//! portals, and the only way to reach tenant-owned tables.
//!
//! Storage lives in [`db`]. Every tenant-owned table is reached through a
//! [`db::TenantTx`], a transaction that has set the tenant for PostgreSQL's
//! row-level security, so code that forgets a `tenant_id` filter still cannot
//! see another studio's rows.

pub mod db;
pub mod error;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod plan;
pub mod response;
pub mod secret;
pub mod stage;
pub mod validate;

pub use error::DomainError;
pub use ids::{ApiKeyId, InvoiceId, NoticeId, PhotoId, ProjectId, TenantId, UserId};
pub use invoice::{InvoiceKind, InvoiceStatus};
pub use money::{Currency, Money};
pub use response::ResponseKind;
pub use stage::Stage;
