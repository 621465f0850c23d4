//! Job payloads the web service sends to the worker, and the queues that carry them.
//!
//! Payloads carry ids, never copies of rows: a job loads the current state
//! when it runs, so a retried or late job acts on what is true then. Every
//! payload names its tenant, so the worker opens a tenant-scoped transaction
//! and logs the tenant with each failure.

pub mod live;

use apalis::prelude::TaskSink;
use apalis_redis::{ConnectionManager, RedisStorage};
use proofsheet_domain::{NoticeId, PhotoId, ProjectId, TenantId, UserId};
use serde::{Deserialize, Serialize};

/// Makes the grid and lightbox renditions of one uploaded photo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerateThumbnails {
    pub tenant_id: TenantId,
    pub photo_id: PhotoId,
}

/// Expires at Stripe the studio's open Checkout Sessions that are marked for
/// expiry, because their invoice was edited or marked paid by hand. The job
/// reads the marks when it runs, so a repeated or late job expires only what
/// is still marked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireCheckouts {
    pub tenant_id: TenantId,
}

/// An email to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SendEmail {
    /// The project's current portal link, to its client.
    PortalLink {
        tenant_id: TenantId,
        project_id: ProjectId,
    },
    /// A notice queued in the database, such as an overdue invoice.
    Notice {
        tenant_id: TenantId,
        notice_id: NoticeId,
    },
    /// A password reset link. The link is in the payload because only its
    /// hash is stored; it expires within the hour and works once.
    PasswordReset {
        tenant_id: TenantId,
        user_id: UserId,
        reset_url: String,
    },
}

impl SendEmail {
    /// Returns the tenant the email belongs to.
    pub fn tenant_id(&self) -> TenantId {
        match self {
            SendEmail::PortalLink { tenant_id, .. }
            | SendEmail::Notice { tenant_id, .. }
            | SendEmail::PasswordReset { tenant_id, .. } => *tenant_id,
        }
    }
}

/// A queue could not be reached or written.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("could not connect to Redis at {url}: {source}")]
    Connect {
        url: String,
        source: redis::RedisError,
    },
    #[error("could not enqueue the {queue} job: {message}")]
    Push {
        queue: &'static str,
        message: String,
    },
    #[error("enqueueing the {queue} job timed out after {} s; is Redis reachable?", ENQUEUE_TIMEOUT.as_secs())]
    Timeout { queue: &'static str },
}

/// Replaces the password of a URL with `***`, so it can go into messages.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Maximum wait for Redis to accept a job. The connection manager retries a
/// lost connection on its own for much longer, which would hold a studio's
/// request open; past this bound the caller gets an error to act on instead.
pub const ENQUEUE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Names of the queues under a namespace.
pub fn queue_name(namespace: &str, queue: &str) -> String {
    format!("{namespace}:{queue}")
}

/// The job queues, for producers and the worker alike.
#[derive(Clone, Debug)]
pub struct Queues {
    thumbnails: RedisStorage<GenerateThumbnails>,
    emails: RedisStorage<SendEmail>,
    checkout_expiry: RedisStorage<ExpireCheckouts>,
    connection: ConnectionManager,
    namespace: String,
}

impl Queues {
    /// Connects to Redis and opens the queues under `namespace`.
    pub async fn connect(redis_url: &str, namespace: &str) -> Result<Self, QueueError> {
        let connection =
            apalis_redis::connect(redis_url)
                .await
                .map_err(|source| QueueError::Connect {
                    url: redact_password(redis_url),
                    source,
                })?;
        let storage_config =
            |queue: &str| apalis_redis::Config::default().queue(queue_name(namespace, queue));
        Ok(Self {
            thumbnails: RedisStorage::new(connection.clone())
                .with_config(storage_config("thumbnails")),
            emails: RedisStorage::new(connection.clone()).with_config(storage_config("emails")),
            checkout_expiry: RedisStorage::new(connection.clone())
                .with_config(storage_config("checkout-expiry")),
            connection,
            namespace: namespace.to_owned(),
        })
    }

    /// Returns the thumbnail queue's storage, for the worker.
    pub fn thumbnails(&self) -> RedisStorage<GenerateThumbnails> {
        self.thumbnails.clone()
    }

    /// Returns the email queue's storage, for the worker.
    pub fn emails(&self) -> RedisStorage<SendEmail> {
        self.emails.clone()
    }

    /// Returns the Checkout Session expiry queue's storage, for the worker.
    pub fn checkout_expiry(&self) -> RedisStorage<ExpireCheckouts> {
        self.checkout_expiry.clone()
    }

    /// Returns a Redis connection for live-update events and health checks.
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Returns the key prefix of these queues.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Queues thumbnail generation for a photo.
    pub async fn enqueue_thumbnails(&self, job: GenerateThumbnails) -> Result<(), QueueError> {
        let mut storage = self.thumbnails.clone();
        push_within_timeout("thumbnails", storage.push(job)).await
    }

    /// Queues an email.
    pub async fn enqueue_email(&self, job: SendEmail) -> Result<(), QueueError> {
        let mut storage = self.emails.clone();
        push_within_timeout("emails", storage.push(job)).await
    }

    /// Queues the expiry of a studio's stale Checkout Sessions.
    pub async fn enqueue_checkout_expiry(&self, job: ExpireCheckouts) -> Result<(), QueueError> {
        let mut storage = self.checkout_expiry.clone();
        push_within_timeout("checkout-expiry", storage.push(job)).await
    }

    /// Queues the email of a notice already committed to the database, and
    /// logs a failure instead of returning it. The worker's overdue check
    /// enqueues every notice still unsent some minutes after it was queued,
    /// so a lost enqueue heals itself.
    pub async fn enqueue_committed_notice(&self, tenant_id: TenantId, notice_id: NoticeId) {
        let job = SendEmail::Notice {
            tenant_id,
            notice_id,
        };
        if let Err(error) = self.enqueue_email(job).await {
            tracing::warn!(
                tenant.id = %tenant_id,
                notice.id = %notice_id,
                error = %error,
                "could not enqueue a notice email; the overdue check enqueues it again later"
            );
        }
    }

    /// Checks that Redis responds.
    pub async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
    }
}

/// Awaits a push to `queue` for at most [`ENQUEUE_TIMEOUT`].
async fn push_within_timeout<E: std::fmt::Display>(
    queue: &'static str,
    push: impl Future<Output = Result<(), E>>,
) -> Result<(), QueueError> {
    let pushed = tokio::time::timeout(ENQUEUE_TIMEOUT, push)
        .await
        .map_err(|_| QueueError::Timeout { queue })?;
    pushed.map_err(|e| QueueError::Push {
        queue,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_payload_is_tagged_json() {
        let job = SendEmail::PortalLink {
            tenant_id: TenantId::new(),
            project_id: ProjectId::new(),
        };
        let json = serde_json::to_value(&job).expect("serialise");
        assert_eq!(json["type"], "portal_link");
        let back: SendEmail = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, job);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("redis://:s3cret@cache:6379"),
            "redis://:***@cache:6379"
        );
        assert_eq!(
            redact_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn queue_names_carry_the_namespace() {
        assert_eq!(queue_name("proofsheet", "emails"), "proofsheet:emails");
    }
}
