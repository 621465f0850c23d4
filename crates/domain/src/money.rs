//! Money as an integer of minor units plus an ISO 4217 currency. Never a float.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// An ISO 4217 currency, known to the standard's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The three-letter code, e.g. `EUR`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn minor_digits(self) -> u32 {
        // Funds and metals have no minor unit in the table; they show whole units.
        self.0.exponent().map(u32::from).unwrap_or(0)
    }

    fn symbol(self) -> String {
        self.0.symbol().to_string()
    }
}

impl FromStr for Currency {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        iso_currency::Currency::from_code(&code)
            .map(Currency)
            .ok_or_else(|| {
                DomainError::invalid(
                    "currency",
                    format!(
                        "'{s}' is not an ISO 4217 currency code; use a code such as EUR, USD or GBP"
                    ),
                )
            })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount in minor units of its currency (cents for EUR, yen for JPY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

/// Largest invoice amount accepted, in minor units: a bound that keeps every
/// amount exact in JavaScript clients and far above any photography invoice.
pub const MAX_AMOUNT_MINOR: i64 = 9_007_199_254_740_991;

impl Money {
    /// Builds an invoice amount: positive and no larger than [`MAX_AMOUNT_MINOR`].
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, DomainError> {
        if amount_minor <= 0 {
            return Err(DomainError::invalid(
                "amount_minor",
                format!(
                    "{amount_minor} is not a positive amount; give the amount in minor units, e.g. 15000 for 150.00"
                ),
            ));
        }
        if amount_minor > MAX_AMOUNT_MINOR {
            return Err(DomainError::invalid(
                "amount_minor",
                format!("{amount_minor} is larger than the maximum of {MAX_AMOUNT_MINOR}"),
            ));
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// Parses an amount typed by a person in major units, such as `1250`,
    /// `1,250.5` or `1250.50`, into minor units without going through floats.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, DomainError> {
        let digits = currency.minor_digits() as usize;
        let cleaned: String = text
            .trim()
            .chars()
            .filter(|c| *c != ',' && *c != ' ')
            .collect();
        let fail = || {
            DomainError::invalid(
                "amount",
                format!(
                    "'{}' is not an amount in {}; write it like 1250.00 with at most {digits} decimals",
                    text.trim(),
                    currency.code()
                ),
            )
        };
        let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
        let valid = !whole.is_empty()
            && whole.chars().all(|c| c.is_ascii_digit())
            && fraction.chars().all(|c| c.is_ascii_digit())
            && fraction.len() <= digits
            && whole.len() <= 16;
        if !valid {
            return Err(fail());
        }
        let padded = format!("{fraction:0<digits$}");
        let minor: i64 = format!("{whole}{padded}").parse().map_err(|_| fail())?;
        Self::new(minor, currency)
    }

    /// Formats for people: currency symbol, thousands separators and exactly
    /// the currency's minor digits, e.g. `€1,250.00`, `¥5,000`, `CHF 80.50`.
    pub fn display(&self) -> String {
        let digits = self.currency.minor_digits();
        let scale = 10_i64.pow(digits);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        let major = abs / scale.unsigned_abs();
        let minor = abs % scale.unsigned_abs();

        let mut grouped = String::new();
        let major_digits = major.to_string();
        for (i, ch) in major_digits.chars().enumerate() {
            if i > 0 && (major_digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }

        let symbol = self.currency.symbol();
        // A multi-letter symbol such as "CHF" reads better with a space.
        let separator = if symbol.chars().all(|c| c.is_ascii_alphabetic()) {
            " "
        } else {
            ""
        };
        if digits == 0 {
            format!("{sign}{symbol}{separator}{grouped}")
        } else {
            format!(
                "{sign}{symbol}{separator}{grouped}.{minor:0width$}",
                width = digits as usize
            )
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: i64, code: &str) -> Money {
        Money::new(amount, code.parse().expect("known currency")).expect("valid amount")
    }

    #[test]
    fn formats_two_digit_currencies() {
        assert_eq!(money(125_000, "EUR").display(), "€1,250.00");
        assert_eq!(money(5, "USD").display(), "$0.05");
        assert_eq!(money(123_456_789, "GBP").display(), "£1,234,567.89");
    }

    #[test]
    fn formats_zero_digit_currency() {
        assert_eq!(money(5000, "JPY").display(), "¥5,000");
    }

    #[test]
    fn formats_three_digit_currency() {
        assert!(money(1_500, "KWD").display().ends_with("1.500"));
    }

    #[test]
    fn currency_code_is_case_insensitive() {
        let currency: Currency = "eur".parse().expect("known currency");
        assert_eq!(currency.code(), "EUR");
    }

    #[test]
    fn unknown_currency_is_rejected() {
        let err = "ABC".parse::<Currency>().err().map(|e| e.to_string());
        assert!(err.as_deref().is_some_and(|e| e.contains("'ABC'")));
    }

    #[test]
    fn non_positive_amount_is_rejected() {
        let eur = "EUR".parse().expect("known currency");
        assert!(Money::new(0, eur).is_err());
        assert!(Money::new(-100, eur).is_err());
    }

    #[test]
    fn major_units_parse_exactly() {
        let eur: Currency = "EUR".parse().expect("known currency");
        let jpy: Currency = "JPY".parse().expect("known currency");
        let parse = |text, currency| {
            Money::parse_major(text, currency)
                .map(|m| m.amount_minor)
                .ok()
        };
        assert_eq!(parse("1250", eur), Some(125_000));
        assert_eq!(parse("1,250.5", eur), Some(125_050));
        assert_eq!(parse("0.07", eur), Some(7));
        assert_eq!(parse("5000", jpy), Some(5000));
        assert_eq!(parse("50.5", jpy), None);
        assert_eq!(parse("1.234", eur), None);
        assert_eq!(parse("-5", eur), None);
        assert_eq!(parse("abc", eur), None);
        assert_eq!(parse("", eur), None);
    }

    #[test]
    fn amount_above_maximum_is_rejected() {
        let eur = "EUR".parse().expect("known currency");
        assert!(Money::new(MAX_AMOUNT_MINOR + 1, eur).is_err());
        assert!(Money::new(MAX_AMOUNT_MINOR, eur).is_ok());
    }
}
