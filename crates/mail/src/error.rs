use std::path::PathBuf;

/// Errors from building or sending an email.
///
/// Messages name the offending value but never contain an SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// An email address could not be parsed or cannot be sent without
    /// SMTPUTF8.
    #[error("invalid email address {value:?} in {field}: {reason}")]
    InvalidAddress {
        /// Name of the input field that contains the address.
        field: &'static str,
        /// The address as given.
        value: String,
        /// Reason the address was rejected.
        reason: String,
    },

    /// A link to put into a message is not an absolute http or https URL.
    #[error("invalid URL {value:?} in {field}: {reason}")]
    InvalidUrl {
        /// Name of the input field that contains the URL.
        field: &'static str,
        /// The URL as given.
        value: String,
        /// Reason the URL was rejected.
        reason: String,
    },

    /// The SMTP server URL is not one that [`crate::Mailer::smtp`] accepts.
    #[error("invalid SMTP URL {url}: {reason}")]
    InvalidSmtpUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// Problem found, followed by the accepted URL forms where that helps.
        reason: String,
    },

    /// [`crate::Mailer::smtp`] was called outside a Tokio runtime.
    #[error(
        "Mailer::smtp must be called inside a Tokio runtime because the SMTP connection pool starts a background task"
    )]
    NoRuntime,

    /// The outbox folder could not be created.
    #[error("failed to create outbox folder {}: {source}", path.display())]
    CreateOutbox {
        /// The outbox folder.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A message template failed to render.
    #[error("failed to render mail template {template}: {detail}")]
    Template {
        /// Name of the embedded template.
        template: &'static str,
        /// The Tera error and its causes, joined into one line.
        detail: String,
    },

    /// lettre rejected the assembled message.
    #[error("failed to build email message: {0}")]
    Build(#[from] lettre::error::Error),

    /// The SMTP server could not be reached or rejected the message.
    #[error("failed to send email via SMTP server {server}: {source}")]
    Smtp {
        /// The SMTP server URL with any password replaced by `***`.
        server: String,
        /// The lettre SMTP error.
        source: lettre::transport::smtp::Error,
    },

    /// The message could not be written into the outbox folder.
    #[error("failed to write email into outbox folder {}: {source}", path.display())]
    WriteOutbox {
        /// The outbox folder.
        path: PathBuf,
        /// The lettre file transport error.
        source: lettre::transport::file::Error,
    },
}
