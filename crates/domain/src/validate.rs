//! Checks on free-form input shared by the web app, the API and the portal.

use chrono::NaiveDate;

use crate::DomainError;

/// Returns `value` trimmed, or an error naming `field` when it is empty or
/// longer than `max_chars`.
pub fn required_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    let chars = trimmed.chars().count();
    if chars > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("is {chars} characters long; shorten it to at most {max_chars}"),
        ));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(DomainError::invalid(
            field,
            "contains control characters; remove them",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks the shape of an email address: one `@`, a non-empty local part and
/// a domain with a dot, no spaces or angle brackets, at most 254 characters.
/// Delivery is what proves an address; this only catches typos early.
pub fn email(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    let fail = || {
        DomainError::invalid(
            field,
            format!("'{value}' is not an email address; use the form name@example.com"),
        )
    };
    if value.len() > 254
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
    {
        return Err(fail());
    }
    let (local, domain) = value.split_once('@').ok_or_else(fail)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(fail());
    }
    Ok(value.to_owned())
}

/// Earliest and latest years accepted in a date: wide enough for any shoot
/// or invoice, narrow enough to catch a mistyped year such as 0202.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2199;

/// Parses a calendar date in ISO form, `YYYY-MM-DD`, between the years 1900
/// and 2199.
pub fn date(field: &'static str, value: &str) -> Result<NaiveDate, DomainError> {
    let date = value.trim().parse::<NaiveDate>().map_err(|_| {
        DomainError::invalid(
            field,
            format!("'{value}' is not a date; use the form YYYY-MM-DD"),
        )
    })?;
    if !YEARS.contains(&chrono::Datelike::year(&date)) {
        return Err(DomainError::invalid(
            field,
            format!(
                "'{value}' is out of range; use a date between {}-01-01 and {}-12-31",
                YEARS.start(),
                YEARS.end()
            ),
        ));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_text_trims_and_limits() {
        assert_eq!(
            required_text("title", "  Wedding ", 10).ok().as_deref(),
            Some("Wedding")
        );
        assert!(required_text("title", "   ", 10).is_err());
        assert!(required_text("title", "abcdefghijk", 10).is_err());
        assert!(required_text("title", "tab\there", 20).is_err());
    }

    #[test]
    fn email_shapes() {
        assert!(email("email", "ana@example.com").is_ok());
        assert!(email("email", "Ana <ana@example.com>").is_err());
        assert!(email("email", "ana@localhost").is_err());
        assert!(email("email", "ana@@example.com").is_err());
        assert!(email("email", "a,b@example.com").is_err());
        assert!(email("email", "@example.com").is_err());
    }

    #[test]
    fn date_parsing() {
        assert!(date("due_date", "2026-12-31").is_ok());
        assert!(date("due_date", "31/12/2026").is_err());
        assert!(date("due_date", "2026-02-30").is_err());
        assert!(date("due_date", "0001-01-01").is_err());
        assert!(date("due_date", "+99999-01-01").is_err());
    }
}
