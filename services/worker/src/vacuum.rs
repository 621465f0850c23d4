//! Removal of finished jobs from Redis, which apalis-redis otherwise keeps
//! forever.

use std::time::Duration;

use apalis_core::backend::Vacuum;

use crate::context::JobContext;
use crate::error::Error;

/// How long a finished job's payload and record stay in Redis for
/// inspection before the vacuum deletes them.
pub const JOB_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// When the vacuum runs: every hour at minute 17, away from the full hour
/// when other schedules tend to fire.
pub(crate) const VACUUM_SCHEDULE: &str = "0 17 * * * *";

/// Deletes the payload and record of every job in the thumbnail, email and
/// checkout-expiry queues that finished (done, failed or killed) more than
/// `older_than` ago, and returns how many it deleted. Job ids stay in the
/// queues' done and dead sets, which apalis-redis offers no way to trim.
///
/// # Errors
///
/// [`Error::Vacuum`] when Redis fails; the next run repeats the work.
pub async fn vacuum_queues(ctx: &JobContext, older_than: Duration) -> Result<usize, Error> {
    let vacuum_failed = |error: apalis_redis::Error| Error::Vacuum(error.to_string());
    let thumbnail_jobs = ctx
        .queues
        .thumbnails()
        .vacuum_before(older_than)
        .await
        .map_err(vacuum_failed)?;
    let email_jobs = ctx
        .queues
        .emails()
        .vacuum_before(older_than)
        .await
        .map_err(vacuum_failed)?;
    let expiry_jobs = ctx
        .queues
        .checkout_expiry()
        .vacuum_before(older_than)
        .await
        .map_err(vacuum_failed)?;
    Ok(thumbnail_jobs + email_jobs + expiry_jobs)
}
