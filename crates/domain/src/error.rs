//! The domain's error type. Services map each variant to their own surface:
//! `Invalid` to 422 naming the field, `NotFound` to 404, `Conflict` to 409,
//! and `Database` to a logged 500 with a generic body.

/// What went wrong in a domain operation.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A value from the caller broke a rule; `field` names the input.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The thing does not exist for this tenant (or at all: callers must not
    /// be able to tell the two apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is valid but clashes with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The studio's plan does not allow this action.
    #[error("{0}")]
    Forbidden(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl DomainError {
    /// Builds an `Invalid` error for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
