//! apalis task functions: each runs one job function inside a span with the
//! job's ids, logs the outcome, and decides whether a failure is retried.
//!
//! Every failed attempt is logged once: at warn when the job will run again,
//! at error when it ends for good.

use std::time::{Duration, Instant};

use apalis::layers::retry::backoff::{ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use apalis::layers::retry::{BackoffRetryPolicy, HasherRng, RetryPolicy};
use apalis::prelude::{AbortError, Attempt, BoxDynError, Data, TaskId};
use apalis_cron::Tick;
use proofsheet_jobs::{ExpireCheckouts, GenerateThumbnails, SendEmail};
use tracing::Instrument;

use crate::checkout_expiry;
use crate::context::JobContext;
use crate::emails::{self, EmailOutcome};
use crate::error::Error;
use crate::overdue;
use crate::thumbnails::{self, ThumbnailOutcome};
use crate::vacuum::{self, JOB_RETENTION};

/// How often a failed job runs again, and how long it waits in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Maximum number of runs of one job, the first included.
    pub max_attempts: usize,
    /// Wait before the first retry. Each later wait doubles, plus up to 50%
    /// random jitter so jobs that failed together do not retry together.
    pub first_backoff: Duration,
    /// Maximum wait between two runs.
    pub max_backoff: Duration,
}

impl Default for RetrySettings {
    /// Six attempts, waiting 2, 4, 8, 16 and 32 seconds plus jitter in
    /// between, so a job gives up 62 to 93 seconds of waiting after its
    /// first failure.
    fn default() -> Self {
        Self {
            max_attempts: 6,
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The retry layer's policy type.
pub(crate) type Retry = BackoffRetryPolicy<ExponentialBackoff<HasherRng>>;

/// Builds the apalis retry policy for `settings`.
///
/// The policy retries inside the worker, sleeping between runs. The task
/// functions end a job for good by returning [`AbortError`], which apalis
/// records as killed: the retry layer stops, and the Redis backend moves the
/// job to its dead set instead of scheduling it again.
pub(crate) fn retry_policy(settings: &RetrySettings) -> Result<Retry, Error> {
    let mut backoff = ExponentialBackoffMaker::new(
        settings.first_backoff,
        settings.max_backoff,
        0.5,
        HasherRng::default(),
    )
    .map_err(|error| Error::RetrySettings(error.to_string()))?;
    let retries = settings.max_attempts.saturating_sub(1);
    Ok(RetryPolicy::retries(retries).with_backoff(backoff.make_backoff()))
}

/// Runs a [`GenerateThumbnails`] job. When the job ends without a result,
/// the photo is marked failed so that the studio can upload it again.
pub(crate) async fn thumbnails_task(
    job: GenerateThumbnails,
    ctx: Data<JobContext>,
    retry: Data<RetrySettings>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!(
        "thumbnails",
        job.id = %id,
        tenant.id = %job.tenant_id,
        photo.id = %job.photo_id,
    );
    async move {
        let started = Instant::now();
        let result = thumbnails::generate_thumbnails(&ctx, &job).await;
        let error = match result {
            Ok(outcome) => {
                log_thumbnail_outcome(&outcome, started);
                return Ok(());
            }
            Err(error) => error,
        };
        let verdict = judge_failure(&error, attempt.current(), &retry);
        if verdict == Verdict::GiveUp
            && let Err(cleanup) = thumbnails::give_up_on_photo(&ctx, &job).await
        {
            tracing::warn!(error = %cleanup, "could not mark the photo failed");
        }
        verdict.into_result(error)
    }
    .instrument(span)
    .await
}

fn log_thumbnail_outcome(outcome: &ThumbnailOutcome, started: Instant) {
    let duration_ms = elapsed_ms(started);
    match outcome {
        ThumbnailOutcome::Ready {
            width,
            height,
            grid_width,
            grid_height,
        } => tracing::info!(
            duration_ms,
            width,
            height,
            grid_width,
            grid_height,
            "thumbnails ready"
        ),
        ThumbnailOutcome::Rejected { reason } => tracing::info!(
            duration_ms,
            reason = %reason,
            "photo is not a usable image; marked failed"
        ),
    }
}

/// Runs a [`SendEmail`] job. The span names the email kind and the row it
/// is about, never the recipient or the link.
pub(crate) async fn email_task(
    job: SendEmail,
    ctx: Data<JobContext>,
    retry: Data<RetrySettings>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let span = email_span(&id, &job);
    async move {
        let started = Instant::now();
        match emails::send_email(&ctx, &job).await {
            Ok(EmailOutcome::Sent) => {
                tracing::info!(duration_ms = elapsed_ms(started), "email sent");
                Ok(())
            }
            Ok(EmailOutcome::AlreadySent) => {
                tracing::info!("notice was sent by an earlier job; nothing sent");
                Ok(())
            }
            Err(error) => judge_failure(&error, attempt.current(), &retry).into_result(error),
        }
    }
    .instrument(span)
    .await
}

fn email_span(id: &TaskId, job: &SendEmail) -> tracing::Span {
    match job {
        SendEmail::PortalLink {
            tenant_id,
            project_id,
        } => tracing::info_span!(
            "email",
            job.id = %id,
            tenant.id = %tenant_id,
            email.kind = "portal_link",
            project.id = %project_id,
        ),
        SendEmail::Notice {
            tenant_id,
            notice_id,
        } => tracing::info_span!(
            "email",
            job.id = %id,
            tenant.id = %tenant_id,
            email.kind = "notice",
            notice.id = %notice_id,
        ),
        SendEmail::PasswordReset {
            tenant_id, user_id, ..
        } => tracing::info_span!(
            "email",
            job.id = %id,
            tenant.id = %tenant_id,
            email.kind = "password_reset",
            user.id = %user_id,
        ),
    }
}

/// Runs an [`ExpireCheckouts`] job. A failed Stripe call is retried with
/// backoff; after the last attempt the marks stay, and the reconciliation
/// run expires those sessions later.
pub(crate) async fn checkout_expiry_task(
    job: ExpireCheckouts,
    ctx: Data<JobContext>,
    retry: Data<RetrySettings>,
    id: TaskId,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("checkout_expiry", job.id = %id, tenant.id = %job.tenant_id);
    async move {
        let started = Instant::now();
        let client = match crate::stripe_reconcile::client_from_config(&ctx) {
            Ok(Some(client)) => client,
            Ok(None) => {
                tracing::info!("Stripe is not configured; no Checkout Session to expire");
                return Ok(());
            }
            Err(error) => {
                return judge_failure(&error, attempt.current(), &retry).into_result(error);
            }
        };
        match checkout_expiry::expire_marked_checkouts(&ctx, &client, job.tenant_id).await {
            Ok(closed) => {
                tracing::info!(
                    duration_ms = elapsed_ms(started),
                    closed,
                    "stale Checkout Sessions expired"
                );
                Ok(())
            }
            Err(error) => judge_failure(&error, attempt.current(), &retry).into_result(error),
        }
    }
    .instrument(span)
    .await
}

/// Runs one overdue check for a cron tick. A failed check is not retried,
/// because the next tick repeats it and notices it could not enqueue are
/// picked up again then.
pub(crate) async fn overdue_task(
    _tick: Tick,
    ctx: Data<JobContext>,
    id: TaskId,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("overdue_check", job.id = %id);
    async move {
        let started = Instant::now();
        match overdue::check_overdue_invoices(&ctx).await {
            Ok(check) if check.flagged.is_empty() && check.requeued.is_empty() => {
                tracing::debug!(duration_ms = elapsed_ms(started), "no overdue invoices");
            }
            Ok(check) => tracing::info!(
                duration_ms = elapsed_ms(started),
                flagged = check.flagged.len(),
                requeued = check.requeued.len(),
                "enqueued overdue notices"
            ),
            Err(error) => tracing::error!(
                duration_ms = elapsed_ms(started),
                error = %error,
                "overdue check failed; the next scheduled check repeats it"
            ),
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Runs the hourly maintenance: the vacuum of finished jobs and the sweep of
/// photos whose thumbnail job was lost. A failed run is not retried, because
/// the next run does everything this one would have.
pub(crate) async fn vacuum_task(
    _tick: Tick,
    ctx: Data<JobContext>,
    id: TaskId,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("queue_vacuum", job.id = %id);
    async move {
        let started = Instant::now();
        match vacuum::vacuum_queues(&ctx, JOB_RETENTION).await {
            Ok(deleted) => tracing::info!(
                duration_ms = elapsed_ms(started),
                deleted,
                "deleted finished jobs from Redis"
            ),
            Err(error) => tracing::error!(
                duration_ms = elapsed_ms(started),
                error = %error,
                "queue vacuum failed; the next run repeats it"
            ),
        }
        match thumbnails::requeue_stale_photos(&ctx, thumbnails::STALE_PHOTO_AFTER).await {
            Ok(0) => {}
            Ok(requeued) => tracing::warn!(
                requeued,
                "queued thumbnails again for photos stuck in processing"
            ),
            Err(error) => tracing::error!(
                error = %error,
                "sweep of stuck photos failed; the next run repeats it"
            ),
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Runs one Stripe reconciliation for a cron tick. A failed run is not
/// retried, because the next tick covers the same window.
pub(crate) async fn stripe_reconcile_task(
    _tick: Tick,
    ctx: Data<JobContext>,
    id: TaskId,
) -> Result<(), BoxDynError> {
    let span = tracing::info_span!("stripe_reconcile", job.id = %id);
    async move {
        let started = Instant::now();
        let client = match crate::stripe_reconcile::client_from_config(&ctx) {
            Ok(Some(client)) => client,
            Ok(None) => return Ok(()),
            Err(error) => {
                tracing::error!(error = %error, "could not build the Stripe client");
                return Ok(());
            }
        };
        let window = crate::stripe_reconcile::RECONCILE_WINDOW;
        match crate::stripe_reconcile::reconcile_stripe_payments(&ctx, &client, window).await {
            Ok(run) => tracing::info!(
                duration_ms = elapsed_ms(started),
                accounts = run.accounts,
                healed = run.healed.len(),
                "Stripe payments reconciled"
            ),
            Err(error) => tracing::error!(
                duration_ms = elapsed_ms(started),
                error = %error,
                "Stripe reconciliation failed; the next scheduled run repeats it"
            ),
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// Next step for a job after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// The row the job acts on is gone, so there is nothing left to do.
    Skip,
    /// Run the job again after the backoff.
    Retry,
    /// End the job without another attempt.
    GiveUp,
}

impl Verdict {
    fn into_result(self, error: Error) -> Result<(), BoxDynError> {
        match self {
            Verdict::Skip => Ok(()),
            Verdict::Retry => Err(error.into()),
            Verdict::GiveUp => Err(AbortError::new(error).into()),
        }
    }
}

/// Logs a failed attempt once, with the span's job and tenant ids, and
/// decides what happens next. `attempt` counts from 1.
fn judge_failure(error: &Error, attempt: usize, retry: &RetrySettings) -> Verdict {
    if error.is_not_found() {
        tracing::info!(error = %error, "job skipped because its row no longer exists");
        return Verdict::Skip;
    }
    if error.is_permanent() {
        tracing::error!(attempt, error = %error, "job failed permanently; not retrying");
        return Verdict::GiveUp;
    }
    if attempt >= retry.max_attempts {
        tracing::error!(attempt, error = %error, "job failed on its last attempt; giving up");
        return Verdict::GiveUp;
    }
    tracing::warn!(
        attempt,
        max_attempts = retry.max_attempts,
        error = %error,
        "job failed; retrying"
    );
    Verdict::Retry
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use proofsheet_domain::DomainError;

    use super::*;

    fn transient() -> Error {
        Error::Domain(DomainError::Database(sqlx::Error::PoolTimedOut))
    }

    #[test]
    fn transient_failure_retries_until_last_attempt() {
        let retry = RetrySettings::default();
        assert_eq!(judge_failure(&transient(), 1, &retry), Verdict::Retry);
        assert_eq!(judge_failure(&transient(), 5, &retry), Verdict::Retry);
        assert_eq!(judge_failure(&transient(), 6, &retry), Verdict::GiveUp);
    }

    #[test]
    fn permanent_failure_gives_up_at_once() {
        let error = Error::Panicked("boom".to_owned());
        assert_eq!(
            judge_failure(&error, 1, &RetrySettings::default()),
            Verdict::GiveUp
        );
    }

    #[test]
    fn missing_row_is_skipped() {
        let error = Error::Domain(DomainError::NotFound("photo"));
        assert_eq!(
            judge_failure(&error, 1, &RetrySettings::default()),
            Verdict::Skip
        );
    }

    #[test]
    fn given_up_job_is_an_abort_error() {
        let result = Verdict::GiveUp.into_result(transient());
        let error = result.err().map(|e| e.is::<AbortError>());
        assert_eq!(error, Some(true));
    }

    #[test]
    fn default_retry_policy_builds() {
        assert!(retry_policy(&RetrySettings::default()).is_ok());
    }
}
