//! Counters in Redis that slow down guessing: failed log-ins per account and
//! reset emails per address. Keys contain a hash of the address, never the
//! address itself.
//!
//! A Redis failure lets the request through and logs a warning: losing the
//! guard for a moment is better than locking every studio out.

use std::time::Duration;

use proofsheet_domain::secret::token_hash;

use crate::AppState;

/// Failed log-ins allowed per account within [`LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS: u32 = 10;
/// Window over which failed log-ins are counted.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Reset emails sent per address within [`RESET_WINDOW`].
pub const MAX_RESET_EMAILS: u32 = 5;
/// Window over which reset emails are counted.
pub const RESET_WINDOW: Duration = Duration::from_secs(60 * 60);

/// A counter for one purpose and one email address.
pub struct Counter {
    key: String,
    window: Duration,
}

impl Counter {
    /// Returns the failed log-in counter of an account.
    pub fn failed_logins(state: &AppState, email: &str) -> Self {
        Self::new(state, "login", email, LOGIN_WINDOW)
    }

    /// Returns the reset email counter of an address.
    pub fn reset_emails(state: &AppState, email: &str) -> Self {
        Self::new(state, "reset", email, RESET_WINDOW)
    }

    fn new(state: &AppState, purpose: &str, email: &str, window: Duration) -> Self {
        let digest: String = token_hash(&email.trim().to_lowercase())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            key: format!("{}:throttle:{purpose}:{digest}", state.queues.namespace()),
            window,
        }
    }

    /// Returns the count in the current window.
    pub async fn count(&self, state: &AppState) -> u32 {
        let mut connection = state.queues.connection();
        let count: Result<Option<u32>, _> = redis::cmd("GET")
            .arg(&self.key)
            .query_async(&mut connection)
            .await;
        count.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read a throttle counter; letting the request through");
            None
        })
        .unwrap_or(0)
    }

    /// Adds one to the count; the window starts at the first increment.
    pub async fn increment(&self, state: &AppState) {
        let mut connection = state.queues.connection();
        let seconds = self.window.as_secs();
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(&self.key)
            .arg(0)
            .arg("EX")
            .arg(seconds)
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&self.key)
            .ignore();
        if let Err(e) = pipeline.query_async::<()>(&mut connection).await {
            tracing::warn!(error = %e, "could not update a throttle counter");
        }
    }

    /// Clears the count, after a successful log-in.
    pub async fn reset(&self, state: &AppState) {
        let mut connection = state.queues.connection();
        if let Err(e) = redis::cmd("DEL")
            .arg(&self.key)
            .query_async::<()>(&mut connection)
            .await
        {
            tracing::warn!(error = %e, "could not clear a throttle counter");
        }
    }
}
