//! The actions a studio's plan allows right now. The stored `plan_status`
//! follows Stripe's subscription webhooks, but the free trial ends by the
//! clock alone, so the trial's end is applied here at request time and no
//! scheduled job has to change the status when `trial_ends_at` passes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::DomainError;
use crate::db::tenants::Tenant;

/// The studio's plan at one moment, with the trial's end applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PlanStanding {
    /// The free trial runs until `ends_at`, or a Stripe subscription is in
    /// its own trial period.
    Trial { ends_at: DateTime<Utc> },
    /// The free trial ended at `ended_at` and the studio has no subscription.
    TrialEnded { ended_at: DateTime<Utc> },
    /// The subscription is paid up.
    Active,
    /// The last subscription payment failed.
    PastDue,
    /// The subscription was cancelled.
    Cancelled,
}

impl PlanStanding {
    /// Computes the standing of `tenant` at `now`. The trial has ended once
    /// `now` reaches `trial_ends_at`.
    ///
    /// NOTE: a trialing studio with a Stripe subscription is in the
    /// subscription's own trial, and Stripe's webhooks move it to active or
    /// past due when that trial ends, so only a trial without a subscription
    /// ends here.
    pub fn of(tenant: &Tenant, now: DateTime<Utc>) -> Self {
        match tenant.plan_status.as_str() {
            "active" => PlanStanding::Active,
            "past_due" => PlanStanding::PastDue,
            "cancelled" => PlanStanding::Cancelled,
            _ if tenant.stripe_subscription_id.is_none() && now >= tenant.trial_ends_at => {
                PlanStanding::TrialEnded {
                    ended_at: tenant.trial_ends_at,
                }
            }
            _ => PlanStanding::Trial {
                ends_at: tenant.trial_ends_at,
            },
        }
    }

    /// Returns the snake_case name that pages and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStanding::Trial { .. } => "trial",
            PlanStanding::TrialEnded { .. } => "trial_ended",
            PlanStanding::Active => "active",
            PlanStanding::PastDue => "past_due",
            PlanStanding::Cancelled => "cancelled",
        }
    }

    /// Returns why new projects cannot be created and what to do about it,
    /// with dates in the studio's time zone `tz`, or `None` when they can.
    pub fn new_project_block(self, tz: Tz) -> Option<String> {
        let reason = match self {
            PlanStanding::Trial { .. } | PlanStanding::Active => return None,
            PlanStanding::TrialEnded { ended_at } => format!(
                "the free trial ended on {}. Subscribe to the plan under Settings → Plan \
                 (/settings#plan) to create projects again",
                ended_at.with_timezone(&tz).format("%-d %B %Y")
            ),
            PlanStanding::PastDue => "the plan is past due after a failed payment. Update \
                 the card with Manage billing under Settings → Plan (/settings#plan); projects \
                 can be created again once Stripe collects the payment"
                .to_owned(),
            PlanStanding::Cancelled => "the plan is cancelled. Subscribe again under \
                 Settings → Plan (/settings#plan) to create projects again"
                .to_owned(),
        };
        Some(format!(
            "New projects cannot be created because {reason}. Existing client portals keep working."
        ))
    }

    /// Checks that the studio may create a project now.
    ///
    /// # Errors
    ///
    /// [`DomainError::Forbidden`] with the message of
    /// [`PlanStanding::new_project_block`].
    pub fn check_new_project(self, tz: Tz) -> Result<(), DomainError> {
        match self.new_project_block(tz) {
            Some(message) => Err(DomainError::Forbidden(message)),
            None => Ok(()),
        }
    }
}

/// Returns whether the studio has a Stripe subscription that is not
/// cancelled, so a second one must not be started.
pub fn has_live_subscription(tenant: &Tenant) -> bool {
    tenant.stripe_subscription_id.is_some() && tenant.plan_status != "cancelled"
}

/// Checks that the studio may start a subscription Checkout: only a studio
/// in or after its free trial, or whose plan is cancelled, and that has no
/// live subscription.
///
/// # Errors
///
/// [`DomainError::Conflict`] naming the plan state and pointing to Manage
/// billing.
pub fn check_may_subscribe(tenant: &Tenant, now: DateTime<Utc>) -> Result<(), DomainError> {
    let standing = PlanStanding::of(tenant, now);
    let reason = match standing {
        PlanStanding::Active => "the plan is already active",
        PlanStanding::PastDue => {
            "the plan already has a subscription whose last payment failed; update the card \
             instead"
        }
        _ if has_live_subscription(tenant) => "the plan already has a subscription",
        _ => return Ok(()),
    };
    Err(DomainError::Conflict(format!(
        "No new subscription was started because {reason}. Use Manage billing under \
         Settings → Plan to change the card or cancel."
    )))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::TenantId;

    fn tenant(status: &str, trial_ends_at: DateTime<Utc>, subscription: Option<&str>) -> Tenant {
        Tenant {
            id: TenantId::new(),
            name: "North Light".to_owned(),
            time_zone: "Europe/Berlin".to_owned(),
            accent_colour: "#1a2b3c".to_owned(),
            plan_status: status.to_owned(),
            trial_ends_at,
            stripe_subscription_id: subscription.map(str::to_owned),
        }
    }

    #[test]
    fn trial_ends_at_its_instant() {
        let ends = Utc::now();
        let studio = tenant("trialing", ends, None);
        let before = PlanStanding::of(&studio, ends - Duration::seconds(1));
        let at = PlanStanding::of(&studio, ends);
        assert_eq!(before, PlanStanding::Trial { ends_at: ends });
        assert_eq!(at, PlanStanding::TrialEnded { ended_at: ends });
    }

    #[test]
    fn subscription_trial_is_not_ended_by_clock() {
        let ends = Utc::now() - Duration::days(1);
        let studio = tenant("trialing", ends, Some("sub_1"));
        assert_eq!(
            PlanStanding::of(&studio, Utc::now()),
            PlanStanding::Trial { ends_at: ends }
        );
    }

    #[test]
    fn ended_trial_blocks_new_projects() {
        let ends = "2026-12-03T12:00:00Z".parse().expect("time");
        let studio = tenant("trialing", ends, None);
        let standing = PlanStanding::of(&studio, ends + Duration::hours(1));
        let error = standing
            .check_new_project(chrono_tz::Europe::Berlin)
            .expect_err("blocked");
        let message = error.to_string();
        assert!(
            message.contains("free trial ended on 3 December 2026"),
            "{message}"
        );
        assert!(message.contains("/settings#plan"), "{message}");
    }

    #[test]
    fn past_due_message_reads_once() {
        let message = PlanStanding::PastDue
            .new_project_block(chrono_tz::UTC)
            .unwrap_or_default();
        assert!(
            message.starts_with(
                "New projects cannot be created because the plan is past due after a failed payment."
            ),
            "{message}"
        );
        assert_eq!(message.matches("because").count(), 1, "{message}");
    }

    #[test]
    fn new_projects_by_standing() {
        let tz = chrono_tz::UTC;
        let now = Utc::now();
        let cases = [
            ("trialing", now + Duration::days(1), true),
            ("trialing", now - Duration::days(1), false),
            ("active", now - Duration::days(30), true),
            ("past_due", now - Duration::days(30), false),
            ("cancelled", now + Duration::days(1), false),
        ];
        for (status, ends, allowed) in cases {
            let standing = PlanStanding::of(&tenant(status, ends, None), now);
            assert_eq!(
                standing.check_new_project(tz).is_ok(),
                allowed,
                "{status} {standing:?}"
            );
        }
    }

    #[test]
    fn subscribe_allowed_only_without_live_subscription() {
        let now = Utc::now();
        let later = now + Duration::days(3);
        let cases = [
            ("trialing", None, true),
            ("trialing", Some("sub_1"), false),
            ("active", Some("sub_1"), false),
            ("past_due", Some("sub_1"), false),
            ("cancelled", Some("sub_1"), true),
        ];
        for (status, subscription, allowed) in cases {
            let studio = tenant(status, later, subscription);
            assert_eq!(
                check_may_subscribe(&studio, now).is_ok(),
                allowed,
                "{status} {subscription:?}"
            );
        }
    }
}
