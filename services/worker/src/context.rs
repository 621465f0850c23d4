//! The handles every job needs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofsheet_config::Config;
use proofsheet_domain::db::Db;
use proofsheet_domain::{NoticeId, TenantId};
use proofsheet_jobs::Queues;
use proofsheet_mail::Mailer;
use proofsheet_media::MediaStore;

/// The database, queues, media store, mailer and settings that jobs use.
///
/// Cloning is cheap, and clones share every connection pool.
#[derive(Clone)]
pub struct JobContext {
    pub db: Db,
    pub queues: Queues,
    pub store: Arc<dyn MediaStore>,
    pub mailer: Mailer,
    pub config: Arc<Config>,
    requeued: Arc<RequeueLimiter>,
}

impl JobContext {
    /// Bundles the handles. `config` supplies the portal base URL, the sender
    /// address and the queue namespace for live events.
    pub fn new(
        db: Db,
        queues: Queues,
        store: Arc<dyn MediaStore>,
        mailer: Mailer,
        config: Arc<Config>,
    ) -> Self {
        Self {
            db,
            queues,
            store,
            mailer,
            config,
            requeued: Arc::new(RequeueLimiter::default()),
        }
    }

    pub(crate) fn requeue_limiter(&self) -> &RequeueLimiter {
        &self.requeued
    }
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("db", &self.db)
            .field("queues", &self.queues)
            .field("mailer", &self.mailer)
            .finish_non_exhaustive()
    }
}

/// Remembers when this process last re-enqueued each unsent notice, so a
/// notice whose email keeps failing is queued again at most once per
/// interval instead of on every scheduler tick.
#[derive(Debug, Default)]
pub(crate) struct RequeueLimiter {
    last_queued: Mutex<HashMap<NoticeId, Instant>>,
}

impl RequeueLimiter {
    /// Returns the notices not re-enqueued within `interval`, and records
    /// them as re-enqueued now.
    pub(crate) fn take_due(
        &self,
        notices: Vec<(TenantId, NoticeId)>,
        interval: Duration,
    ) -> Vec<(TenantId, NoticeId)> {
        let now = Instant::now();
        // A poisoned lock only means that another tick panicked mid-update,
        // and the map is still a valid cache.
        let mut last_queued = self
            .last_queued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last_queued.retain(|_, queued_at| now.duration_since(*queued_at) < interval);
        notices
            .into_iter()
            .filter(|(_, notice)| {
                if last_queued.contains_key(notice) {
                    return false;
                }
                last_queued.insert(*notice, now);
                true
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_is_requeued_once_per_interval() {
        let limiter = RequeueLimiter::default();
        let notice = (TenantId::new(), NoticeId::new());
        let interval = Duration::from_secs(600);

        assert_eq!(limiter.take_due(vec![notice], interval), vec![notice]);
        assert_eq!(limiter.take_due(vec![notice], interval), vec![]);
    }

    #[test]
    fn notice_is_requeued_after_interval() {
        let limiter = RequeueLimiter::default();
        let notice = (TenantId::new(), NoticeId::new());

        assert_eq!(limiter.take_due(vec![notice], Duration::ZERO), vec![notice]);
        assert_eq!(limiter.take_due(vec![notice], Duration::ZERO), vec![notice]);
    }
}
