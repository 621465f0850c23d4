//! Invoice kinds and the rule for when an unpaid invoice is overdue.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A project has one deposit and one final invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Deposit,
    Final,
}

impl InvoiceKind {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Deposit => "deposit",
            InvoiceKind::Final => "final",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            InvoiceKind::Deposit => "Deposit",
            InvoiceKind::Final => "Final invoice",
        }
    }
}

impl fmt::Display for InvoiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InvoiceKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "deposit" => Ok(InvoiceKind::Deposit),
            "final" => Ok(InvoiceKind::Final),
            other => Err(DomainError::invalid(
                "kind",
                format!("'{other}' is not an invoice kind; use 'deposit' or 'final'"),
            )),
        }
    }
}

/// What the client sees on an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Paid,
    Unpaid,
    Overdue,
}

impl InvoiceStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Unpaid => "unpaid",
            InvoiceStatus::Overdue => "overdue",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            InvoiceStatus::Paid => "Paid",
            InvoiceStatus::Unpaid => "Unpaid",
            InvoiceStatus::Overdue => "Overdue",
        }
    }

    /// Works out the status the client sees. A paid invoice is paid; an
    /// unpaid one is overdue once its due date has passed in the studio's
    /// time zone, whether or not the scheduled job has flagged it yet.
    pub fn effective(paid: bool, due_date: NaiveDate, studio_tz: Tz, now: DateTime<Utc>) -> Self {
        if paid {
            InvoiceStatus::Paid
        } else if is_overdue(due_date, studio_tz, now) {
            InvoiceStatus::Overdue
        } else {
            InvoiceStatus::Unpaid
        }
    }
}

/// Returns whether `due_date` has passed in the studio's own time zone: an
/// invoice due on the 15th is payable all day on the 15th, local time, and
/// becomes overdue at local midnight that starts the 16th.
pub fn is_overdue(due_date: NaiveDate, studio_tz: Tz, now: DateTime<Utc>) -> bool {
    let today = now.with_timezone(&studio_tz).date_naive();
    due_date < today
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_time_zone(name: &str) -> Result<Tz, DomainError> {
    name.trim().parse::<Tz>().map_err(|_| {
        DomainError::invalid(
            "time_zone",
            format!("'{name}' is not an IANA time zone; use a name such as Europe/London or America/New_York"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("valid timestamp")
            .with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("valid date")
    }

    #[test]
    fn due_today_in_auckland_is_not_overdue_but_is_in_honolulu_terms() {
        // 2026-12-15T11:00Z is 00:00 on the 16th in Auckland (UTC+13) and
        // 01:00 on the 15th in Honolulu (UTC-10). Due on the 15th:
        let now = at("2026-12-15T11:00:00Z");
        assert!(is_overdue(
            date("2026-12-15"),
            chrono_tz::Pacific::Auckland,
            now
        ));
        assert!(!is_overdue(
            date("2026-12-15"),
            chrono_tz::Pacific::Honolulu,
            now
        ));

        // Due on the 16th: that is "today" in Auckland, and "tomorrow" in
        // Honolulu, so neither is overdue.
        assert!(!is_overdue(
            date("2026-12-16"),
            chrono_tz::Pacific::Auckland,
            now
        ));
        assert!(!is_overdue(
            date("2026-12-16"),
            chrono_tz::Pacific::Honolulu,
            now
        ));

        // Due on the 14th: that is "yesterday" in Honolulu, so overdue there.
        assert!(is_overdue(
            date("2026-12-14"),
            chrono_tz::Pacific::Honolulu,
            now
        ));
    }

    #[test]
    fn evening_in_los_angeles_is_still_the_due_date() {
        // 03:00Z on the 16th is 19:00 on the 15th in Los Angeles.
        let now = at("2026-12-16T03:00:00Z");
        let la = chrono_tz::America::Los_Angeles;
        assert!(!is_overdue(date("2026-12-15"), la, now));
        assert!(is_overdue(
            date("2026-12-15"),
            la,
            at("2026-12-16T08:00:00Z")
        ));
    }

    #[test]
    fn paid_invoice_is_never_overdue() {
        let now = at("2030-01-01T00:00:00Z");
        let status = InvoiceStatus::effective(true, date("2026-01-01"), chrono_tz::UTC, now);
        assert_eq!(status, InvoiceStatus::Paid);
    }

    #[test]
    fn unpaid_past_due_is_overdue() {
        let now = at("2026-12-20T12:00:00Z");
        let status = InvoiceStatus::effective(false, date("2026-12-19"), chrono_tz::UTC, now);
        assert_eq!(status, InvoiceStatus::Overdue);
        let status = InvoiceStatus::effective(false, date("2026-12-20"), chrono_tz::UTC, now);
        assert_eq!(status, InvoiceStatus::Unpaid);
    }

    #[test]
    fn time_zone_names_are_validated() {
        assert!(parse_time_zone("Pacific/Auckland").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn invoice_kind_rejects_unknown() {
        assert!("tip".parse::<InvoiceKind>().is_err());
        assert_eq!(
            "final".parse::<InvoiceKind>().ok(),
            Some(InvoiceKind::Final)
        );
    }
}
