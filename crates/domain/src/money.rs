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
        // Parsing rejects codes without a minor unit, so the fallback is unused.
        self.0.exponent().map(u32::from).unwrap_or(0)
    }

    /// Formats any amount of minor units for people, as [`Money::display`]
    /// does, including amounts outside the bounds of an invoice, such as
    /// payments and refunds that Stripe reports.
    pub fn display_amount(self, amount_minor: i64) -> String {
        let digits = self.minor_digits();
        let scale = 10_u64.pow(digits);
        let sign = if amount_minor < 0 { "-" } else { "" };
        let abs = amount_minor.unsigned_abs();
        let major = abs / scale;
        let minor = abs % scale;

        let mut grouped = String::new();
        let major_digits = major.to_string();
        for (i, ch) in major_digits.chars().enumerate() {
            if i > 0 && (major_digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }

        let prefix = self.prefix();
        if digits == 0 {
            format!("{sign}{prefix}{grouped}")
        } else {
            format!(
                "{sign}{prefix}{grouped}.{minor:0width$}",
                width = digits as usize
            )
        }
    }

    /// The prefix of a formatted amount: a symbol people read without doubt
    /// for the most used currencies, otherwise the code and a space. The ISO
    /// table's symbols are ambiguous or dated for many codes (`₣` for CHF).
    fn prefix(self) -> String {
        let symbol = match self.code() {
            "EUR" => "€",
            "USD" => "$",
            "GBP" => "£",
            "JPY" => "¥",
            "INR" => "₹",
            "KRW" => "₩",
            "ILS" => "₪",
            "NGN" => "₦",
            "UAH" => "₴",
            "VND" => "₫",
            "PHP" => "₱",
            "TRY" => "₺",
            code => return format!("{code} "),
        };
        symbol.to_owned()
    }
}

impl FromStr for Currency {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        iso_currency::Currency::from_code(&code)
            // Funds, precious metals and test codes (XAU, XXX) have no minor
            // unit, and nobody invoices a photo shoot in them.
            .filter(|currency| currency.exponent().is_some())
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
    /// A comma is accepted only as a thousands separator between groups of
    /// three digits, so `12,50` (a decimal comma) is rejected rather than
    /// read as 1250.
    pub fn parse_major(text: &str, currency: Currency) -> Result<Self, DomainError> {
        let digits = currency.minor_digits() as usize;
        let text = text.trim();
        let decimals = match digits {
            0 => "no decimals".to_owned(),
            1 => "at most 1 decimal".to_owned(),
            n => format!("at most {n} decimals"),
        };
        let example = if digits == 0 {
            "1250".to_owned()
        } else {
            format!("1250.{}", "0".repeat(digits))
        };
        let fail = |why: &str| {
            DomainError::invalid(
                "amount",
                format!(
                    "'{text}' is not an amount in {}: {why}; write it like {example} with {decimals}",
                    currency.code()
                ),
            )
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let groups: Vec<&str> = whole.split(',').collect();
        let grouped_well = groups.len() == 1
            || (!groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|g| g.len() == 3));
        if !grouped_well {
            return Err(fail(
                "use a dot for decimals and commas only between groups of three digits",
            ));
        }
        let whole: String = groups.concat();
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || whole.len() > 16 {
            return Err(fail("it must be a positive number"));
        }
        let fraction = fraction.unwrap_or_default();
        if text.ends_with('.')
            || !fraction.chars().all(|c| c.is_ascii_digit())
            || fraction.len() > digits
        {
            return Err(fail("the decimals are not valid"));
        }
        let padded = format!("{fraction:0<digits$}");
        let minor: i64 = format!("{whole}{padded}")
            .parse()
            .map_err(|_| fail("it is too large"))?;
        if minor == 0 {
            return Err(fail("it must be more than zero"));
        }
        Self::new(minor, currency)
    }

    /// Formats for people: currency symbol, thousands separators and exactly
    /// the currency's minor digits, e.g. `€1,250.00`, `¥5,000`, `CHF 80.50`.
    pub fn display(&self) -> String {
        self.currency.display_amount(self.amount_minor)
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
    fn formats_amounts_beyond_invoice_bounds() {
        let euro: Currency = "EUR".parse().expect("known currency");
        assert_eq!(euro.display_amount(i64::MAX), "€92,233,720,368,547,758.07");
        assert_eq!(euro.display_amount(0), "€0.00");
        assert_eq!(euro.display_amount(-150), "-€1.50");
    }

    #[test]
    fn formats_zero_digit_currency() {
        assert_eq!(money(5000, "JPY").display(), "¥5,000");
    }

    #[test]
    fn formats_three_digit_currency() {
        assert_eq!(money(1_500, "KWD").display(), "KWD 1.500");
    }

    #[test]
    fn formats_other_currencies_with_code() {
        assert_eq!(money(8_050, "CHF").display(), "CHF 80.50");
        assert_eq!(money(123_400, "SEK").display(), "SEK 1,234.00");
    }

    #[test]
    fn currencies_without_minor_unit_are_rejected() {
        assert!("XAU".parse::<Currency>().is_err());
        assert!("XXX".parse::<Currency>().is_err());
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
        assert_eq!(parse("1,234,567.89", eur), Some(123_456_789));
        assert_eq!(parse("0", eur), None);
        assert_eq!(parse("5.", eur), None);
        assert_eq!(parse("1 000", eur), None);
    }

    #[test]
    fn decimal_comma_is_rejected() {
        let eur: Currency = "EUR".parse().expect("known currency");
        let err = Money::parse_major("12,50", eur)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("'12,50'"), "{err}");
        assert!(err.contains("dot for decimals"), "{err}");
        assert!(Money::parse_major("1,25", eur).is_err());
        assert!(Money::parse_major(",500", eur).is_err());
    }

    #[test]
    fn zero_digit_error_says_no_decimals() {
        let jpy: Currency = "JPY".parse().expect("known currency");
        let err = Money::parse_major("50.5", jpy)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("no decimals"), "{err}");
    }

    #[test]
    fn amount_above_maximum_is_rejected() {
        let eur = "EUR".parse().expect("known currency");
        assert!(Money::new(MAX_AMOUNT_MINOR + 1, eur).is_err());
        assert!(Money::new(MAX_AMOUNT_MINOR, eur).is_ok());
    }
}
