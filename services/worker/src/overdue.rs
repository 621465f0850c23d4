//! Overdue invoice detection, run on the `OVERDUE_SCHEDULE` cron schedule.

use std::time::Duration;

use proofsheet_domain::{NoticeId, TenantId};
use proofsheet_jobs::SendEmail;

use crate::context::JobContext;
use crate::error::Error;

/// Age after which a queued notice that is still unsent is enqueued again,
/// and the minimum time between two such re-enqueues of one notice by one
/// process. With the default retry settings, an email job ends within about
/// eight minutes. That estimate is 93 seconds of backoff plus six attempts
/// that each hit lettre's 60-second SMTP timeout. So a notice is normally
/// re-enqueued only after its job was lost or gave up. A duplicate job, for example one that waited
/// behind a long queue, sends nothing, because [`crate::send_notice`] skips
/// a notice that is marked sent.
pub const REQUEUE_AFTER: Duration = Duration::from_secs(10 * 60);

/// Result of one overdue check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverdueCheck {
    /// Notices created by this check, one per recipient of each invoice
    /// that became overdue, all enqueued.
    pub flagged: Vec<(TenantId, NoticeId)>,
    /// Older unsent notices enqueued again.
    pub requeued: Vec<(TenantId, NoticeId)>,
}

/// Flags every unpaid invoice past its due date in its studio's time zone as
/// overdue, and enqueues one `SendEmail::Notice` per new notice and per
/// notice still unsent [`REQUEUE_AFTER`] after it was created.
///
/// Flagging is one SQL statement that only moves `unpaid` rows and inserts
/// notices with `ON CONFLICT DO NOTHING`, so checks running at the same time
/// in several workers flag each invoice once and create each notice once.
/// An enqueue that fails is retried by a later check once the notice is
/// older than [`REQUEUE_AFTER`].
///
/// NOTE: a notice whose email fails permanently, for example because the
/// SMTP server rejects the recipient, stays unsent. It is enqueued again,
/// and its failure logged, every [`REQUEUE_AFTER`], because the `notices`
/// table has no column to record the failure.
///
/// # Errors
///
/// Database failures, and the first enqueue that failed after every notice
/// was tried.
pub async fn check_overdue_invoices(ctx: &JobContext) -> Result<OverdueCheck, Error> {
    let flagged = ctx.db.mark_overdue_invoices().await?;
    let unsent = ctx.db.unsent_notices(REQUEUE_AFTER).await?;
    let requeued = ctx.requeue_limiter().take_due(unsent, REQUEUE_AFTER);

    let mut first_error = None;
    for (tenant_id, notice_id) in flagged.iter().chain(&requeued) {
        let job = SendEmail::Notice {
            tenant_id: *tenant_id,
            notice_id: *notice_id,
        };
        if let Err(error) = ctx.queues.enqueue_email(job).await {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error.into()),
        None => Ok(OverdueCheck { flagged, requeued }),
    }
}
