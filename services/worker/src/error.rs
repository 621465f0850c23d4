//! The worker's error type, for start-up and for jobs alike.
//!
//! Every message is safe to log: email addresses and URLs that may carry a
//! token or a password are left out or redacted, because job errors end up
//! in the logs and in the queue's stored results.

use std::net::SocketAddr;

use proofsheet_domain::DomainError;
use proofsheet_domain::db::RoleError;
use proofsheet_jobs::QueueError;
use proofsheet_mail::MailError;
use proofsheet_media::{StoreError, ThumbnailError};

/// Failure while starting the worker or running a job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL could not be reached at start-up.
    #[error("could not connect to PostgreSQL at {url}: {source}")]
    DatabaseConnect {
        /// The database URL with any password replaced by `***`.
        url: String,
        source: sqlx::Error,
    },

    /// The database role is unsafe to run as, or could not be checked.
    #[error(transparent)]
    DatabaseRole(#[from] RoleError),

    /// A query failed or a row was missing or invalid.
    #[error("{}", describe_domain_error(.0))]
    Domain(#[from] DomainError),

    /// Redis could not be reached at start-up.
    #[error("could not connect to Redis at {url}: {message}")]
    RedisConnect {
        /// The Redis URL with any password replaced by `***`.
        url: String,
        message: String,
    },

    /// A job could not be added to a queue.
    #[error(transparent)]
    Enqueue(QueueError),

    /// Finished jobs could not be deleted from Redis.
    #[error("could not delete finished jobs from Redis: {0}")]
    Vacuum(String),

    /// The media store failed to read, write or delete an object.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// An email could not be built or sent.
    #[error("{}", describe_mail_error(.0))]
    Mail(#[from] MailError),

    /// Thumbnails could not be made from the uploaded file.
    #[error(transparent)]
    Thumbnail(#[from] ThumbnailError),

    /// The thumbnail code panicked on its blocking thread.
    #[error("thumbnail generation panicked: {0}")]
    Panicked(String),

    /// `OVERDUE_SCHEDULE` is not a cron expression that the `cron` crate accepts.
    #[error(
        "invalid OVERDUE_SCHEDULE {value:?}: {message}; use six fields with seconds first, \
         such as '0 * * * * *'"
    )]
    Schedule { value: String, message: String },

    /// The admin listener could not bind its address.
    #[error("could not listen on the admin address {addr}: {source}; set WORKER_ADMIN_ADDR")]
    AdminListener {
        addr: SocketAddr,
        source: std::io::Error,
    },

    /// The retry policy could not be built from its settings.
    #[error("invalid retry settings: {0}")]
    RetrySettings(String),

    /// A Stripe API call failed.
    #[error(transparent)]
    Stripe(#[from] proofsheet_stripe::StripeError),

    /// Stripe still reports a Checkout Session as open after the call that
    /// expires it.
    #[error("Checkout Session {session_id} is still {status:?} at Stripe after expiring it")]
    CheckoutStillOpen {
        session_id: String,
        status: Option<String>,
    },

    /// The job monitor stopped with an error.
    #[error("the job monitor failed: {0}")]
    Monitor(String),
}

impl Error {
    /// Returns whether the row a job acts on no longer exists, for example a
    /// photo deleted while its thumbnails were queued.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Domain(DomainError::NotFound(_)))
    }

    /// Returns whether running the same job again can never succeed, so the
    /// job should end at once instead of being retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Domain(DomainError::Database(_)) => false,
            Error::Domain(_) => true,
            Error::Store(error) => matches!(
                error,
                StoreError::InvalidKey { .. } | StoreError::TooLarge { .. }
            ),
            Error::Mail(error) => is_permanent_mail_error(error),
            Error::Thumbnail(error) => error.is_permanent(),
            Error::Panicked(_) => true,
            Error::DatabaseConnect { .. }
            | Error::RedisConnect { .. }
            | Error::Enqueue(_)
            | Error::Vacuum(_)
            | Error::Stripe(_)
            | Error::CheckoutStillOpen { .. }
            | Error::Monitor(_) => false,
            Error::DatabaseRole(_)
            | Error::Schedule { .. }
            | Error::AdminListener { .. }
            | Error::RetrySettings(_) => true,
        }
    }
}

impl From<QueueError> for Error {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Connect { url, source } => Error::RedisConnect {
                url: proofsheet_jobs::redact_password(&url),
                message: source.to_string(),
            },
            push @ (QueueError::Push { .. } | QueueError::Timeout { .. }) => Error::Enqueue(push),
        }
    }
}

fn is_permanent_mail_error(error: &MailError) -> bool {
    match error {
        // A 5xx reply means that the server rejected this message for good.
        // A 4xx reply or a broken connection may pass on the next attempt.
        MailError::Smtp { source, .. } => source.is_permanent(),
        MailError::CreateOutbox { .. } | MailError::WriteOutbox { .. } => false,
        MailError::InvalidAddress { .. }
        | MailError::InvalidUrl { .. }
        | MailError::InvalidSmtpUrl { .. }
        | MailError::NoRuntime
        | MailError::Template { .. }
        | MailError::Build(_) => true,
    }
}

fn describe_domain_error(error: &DomainError) -> String {
    match error {
        // The domain's own message is only "database error", but an
        // operator needs the cause.
        DomainError::Database(source) => format!("database error: {source}"),
        other => other.to_string(),
    }
}

/// Describes a mail error without the addresses and links it contains,
/// because addresses are personal data and a portal or reset link is a
/// credential.
fn describe_mail_error(error: &MailError) -> String {
    match error {
        MailError::InvalidAddress { field, reason, .. } => {
            format!(
                "invalid email address in {field}: {}",
                redact_addresses(reason)
            )
        }
        MailError::InvalidUrl { field, reason, .. } => {
            format!("invalid URL in {field}: {}", redact_addresses(reason))
        }
        MailError::Smtp { server, source } => format!(
            "failed to send email via SMTP server {server}: {}",
            redact_addresses(&source.to_string())
        ),
        other => redact_addresses(&other.to_string()),
    }
}

/// Replaces every space-separated word that contains `@` with
/// `[address]`. SMTP servers often quote the rejected recipient in their
/// reply, and that text ends up in the error.
pub(crate) fn redact_addresses(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    for (index, word) in text.split(' ').enumerate() {
        if index > 0 {
            redacted.push(' ');
        }
        if word.contains('@') {
            redacted.push_str("[address]");
        } else {
            redacted.push_str(word);
        }
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_redacted() {
        let text = "permanent error (550): 5.1.1 <anna@client.example>: Recipient address rejected";
        let redacted = redact_addresses(text);
        assert!(!redacted.contains("anna"), "{redacted}");
        assert!(redacted.contains("[address]"), "{redacted}");
        assert!(
            redacted.contains("Recipient address rejected"),
            "{redacted}"
        );
    }

    #[test]
    fn invalid_url_error_hides_the_link() {
        let error = Error::Mail(MailError::InvalidUrl {
            field: "portal_url",
            value: "ftp://portal.example/p/pp_secret".to_owned(),
            reason: "expected an http or https URL, found scheme \"ftp\"".to_owned(),
        });
        let message = error.to_string();
        assert!(!message.contains("pp_secret"), "{message}");
        assert!(message.contains("portal_url"), "{message}");
        assert!(error.is_permanent());
    }

    #[test]
    fn invalid_address_error_hides_the_address() {
        let error = Error::Mail(MailError::InvalidAddress {
            field: "client_email",
            value: "anna@@client.example".to_owned(),
            reason: "expected a bare address such as name@example.com".to_owned(),
        });
        let message = error.to_string();
        assert!(!message.contains("anna"), "{message}");
        assert!(message.contains("client_email"), "{message}");
    }

    #[test]
    fn url_password_is_redacted() {
        let redacted = proofsheet_jobs::redact_password("redis://:hunter2@127.0.0.1:6379");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("***"), "{redacted}");
        assert_eq!(
            proofsheet_jobs::redact_password("postgres://app@127.0.0.1/db"),
            "postgres://app@127.0.0.1/db"
        );
    }

    #[test]
    fn database_errors_are_transient() {
        let error = Error::Domain(DomainError::Database(sqlx::Error::PoolTimedOut));
        assert!(!error.is_permanent());
        assert!(error.to_string().contains("pool"), "{error}");
        assert!(Error::Domain(DomainError::NotFound("photo")).is_permanent());
    }
}
