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

/// Deletes the payload and record of every job in the thumbnail and email
/// queues that finished (done, failed or killed) more than `older_than` ago,
/// and returns how many it deleted. Job ids stay in the queues' done and
/// dead sets, which apalis-redis offers no way to trim.
///
/// # Errors
///
/// [`Error::Vacuum`] when Redis fails; the next run repeats the work.
pub async fn vacuum_queues(ctx: &JobContext, older_than: Duration) -> Result<usize, Error> {
    let mut thumbnails = ctx.queues.thumbnails();
    let mut emails = ctx.queues.emails();
    let thumbnail_jobs = thumbnails
        .vacuum_before(older_than)
        .await
        .map_err(|error| Error::Vacuum(error.to_string()))?;
    let email_jobs = emails
        .vacuum_before(older_than)
        .await
        .map_err(|error| Error::Vacuum(error.to_string()))?;
    Ok(thumbnail_jobs + email_jobs)
}
