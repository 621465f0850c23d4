//! Verification of the `Stripe-Signature` header, as Stripe documents it:
//! the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, and each `v1` is
//! the lowercase hex HMAC-SHA256, keyed with the endpoint's signing secret,
//! of `"<t>." + raw body`. Stripe sends several `v1` values while an
//! endpoint secret is being rolled, and a match with any one is enough.
//!
//! The header is read the way stripe-python's `WebhookSignature` reads it
//! (`stripe/_webhook.py`). Items are split on `,` and never trimmed. An
//! item's key is the text before its first `=`, and its value is the text
//! up to the next `=`. The first `t` item is the timestamp, and a `v1` must
//! equal the expected lowercase hex digest exactly. The digest is computed
//! once and compared with each `v1` in constant time, as stripe-python does.
//! Two differences are deliberate: stripe-python accepts any timestamp in the
//! future, but this module also rejects one more than [`TOLERANCE_SECONDS`]
//! ahead, and it rejects a header of more than [`MAX_HEADER_ITEMS`] items.

use ring::hmac;
use subtle::ConstantTimeEq;

/// Maximum age, and maximum lead, of a signature's timestamp: Stripe's
/// libraries default to 300 seconds.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Maximum number of comma-separated items in a `Stripe-Signature` header.
/// Stripe sends a `t` item, one `v1` item per active signing secret and, in
/// test mode, a `v0` item, so 16 leaves ample room while bounding the work
/// an unsigned request can cause.
pub const MAX_HEADER_ITEMS: usize = 16;

/// Why a webhook request was rejected. The messages name the problem and
/// never echo the header, which carries signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header has no valid t= timestamp")]
    MissingTimestamp,
    #[error("the Stripe-Signature header has a t or v1 item without '='")]
    MalformedItem,
    #[error(
        "the Stripe-Signature header has more than {MAX_HEADER_ITEMS} comma-separated items; \
         Stripe sends a t item and one v1 item per active signing secret"
    )]
    TooManyItems,
    #[error("the Stripe-Signature header has no v1= signature")]
    MissingSignature,
    #[error("no v1 signature matches the body and the signing secret")]
    Mismatch,
    #[error(
        "the signature timestamp is {age_seconds} s old; at most {TOLERANCE_SECONDS} s is accepted"
    )]
    TooOld { age_seconds: i64 },
    #[error(
        "the signature timestamp is {lead_seconds} s in the future; at most {TOLERANCE_SECONDS} s \
         is accepted, so check this server's clock"
    )]
    InFuture { lead_seconds: i64 },
}

/// Verifies `header` over the exact request bytes `body` with the endpoint
/// secret `secret` (`whsec_…`), at `now` in Unix seconds. Signatures are
/// compared in constant time. Returns the header's timestamp.
///
/// # Errors
///
/// [`SignatureError`] naming the first check that failed.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let (timestamp, signatures) = parse_header(header)?;

    let expected = hex::encode(expected_tag(timestamp, body, secret));
    // Every entry is compared, so the time taken does not tell which one
    // matched. A length difference returns early, but the length is public.
    let matched = signatures.iter().fold(false, |matched, signature| {
        matched | bool::from(signature.as_bytes().ct_eq(expected.as_bytes()))
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }

    let age_seconds = now.saturating_sub(timestamp);
    if age_seconds > TOLERANCE_SECONDS {
        return Err(SignatureError::TooOld { age_seconds });
    }
    if age_seconds < -TOLERANCE_SECONDS {
        return Err(SignatureError::InFuture {
            lead_seconds: timestamp.saturating_sub(now),
        });
    }
    Ok(timestamp)
}

/// Splits the header into its timestamp and its `v1` signatures. The first
/// `t` item counts, even when it does not parse and a later one would.
/// `v0` (Stripe's test scheme) and unknown keys are ignored, so neither can
/// stand in for `v1`.
fn parse_header(header: &str) -> Result<(i64, Vec<&str>), SignatureError> {
    if header.split(',').nth(MAX_HEADER_ITEMS).is_some() {
        return Err(SignatureError::TooManyItems);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let mut parts = item.split('=');
        let key = parts.next().unwrap_or_default();
        let value = parts.next();
        match (key, value) {
            ("t" | "v1", None) => return Err(SignatureError::MalformedItem),
            ("t", Some(value)) => {
                timestamp.get_or_insert(parse_timestamp(value));
            }
            ("v1", Some(value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp
        .flatten()
        .ok_or(SignatureError::MissingTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::MissingSignature);
    }
    Ok((timestamp, signatures))
}

/// Parses a timestamp as Python's `int()` parses a decimal string:
/// surrounding white space and a sign are allowed, and so is a single `_`
/// between two digits. The signed payload is built from the parsed number,
/// as stripe-python builds it, so the spelling of `t` cannot change what
/// the signature covers.
fn parse_timestamp(value: &str) -> Option<i64> {
    let trimmed = value.trim();
    let digits = trimmed.trim_start_matches(['+', '-']);
    let bytes = digits.as_bytes();
    let underscores_fit = bytes.iter().enumerate().all(|(i, byte)| {
        *byte != b'_'
            || (i > 0
                && bytes[i - 1].is_ascii_digit()
                && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if !underscores_fit || trimmed.len() - digits.len() > 1 {
        return None;
    }
    trimmed.replace('_', "").parse().ok()
}

/// Builds a `Stripe-Signature` header for `body` at `timestamp`, the way
/// Stripe signs its deliveries. Used by tests and benchmarks.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let tag = expected_tag(timestamp, body, secret);
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Computes the HMAC-SHA256 tag of `"<timestamp>." + body` under `secret`.
fn expected_tag(timestamp: i64, body: &[u8], secret: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, &signed_payload(timestamp, body))
}

fn signed_payload(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let prefix = format!("{timestamp}.");
    let mut message = Vec::with_capacity(prefix.len() + body.len());
    message.extend_from_slice(prefix.as_bytes());
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_unit_test_secret";

    #[test]
    fn signed_body_verifies() {
        let header = sign(b"{}", SECRET, 1_000);
        assert_eq!(verify(Some(&header), b"{}", SECRET, 1_010), Ok(1_000));
    }

    #[test]
    fn any_of_several_v1_signatures_matches() {
        let good = sign(b"{}", SECRET, 1_000);
        let good_v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("t=1000,v1={},v0=ignored,v1={good_v1}", "ab".repeat(32));
        assert_eq!(verify(Some(&header), b"{}", SECRET, 1_000), Ok(1_000));
    }

    #[test]
    fn header_items_are_capped() {
        let good = sign(b"{}", SECRET, 1_000);
        let bad = "ab".repeat(32);
        let at_cap = format!(
            "{good}{}",
            format!(",v1={bad}").repeat(MAX_HEADER_ITEMS - 2)
        );
        assert_eq!(verify(Some(&at_cap), b"{}", SECRET, 1_000), Ok(1_000));

        let over_cap = format!("{good}{}", format!(",v1={bad}").repeat(1_200));
        assert_eq!(
            verify(Some(&over_cap), b"{}", SECRET, 1_000),
            Err(SignatureError::TooManyItems)
        );
        let message = SignatureError::TooManyItems.to_string();
        assert!(message.contains("more than 16"), "{message}");
    }

    #[test]
    fn v0_signature_alone_is_rejected() {
        let good = sign(b"{}", SECRET, 1_000).replace("v1=", "v0=");
        assert_eq!(
            verify(Some(&good), b"{}", SECRET, 1_000),
            Err(SignatureError::MissingSignature)
        );
    }

    #[test]
    fn tolerance_is_inclusive_at_300_seconds() {
        let header = sign(b"{}", SECRET, 1_000);
        assert!(verify(Some(&header), b"{}", SECRET, 1_300).is_ok());
        assert_eq!(
            verify(Some(&header), b"{}", SECRET, 1_301),
            Err(SignatureError::TooOld { age_seconds: 301 })
        );
        assert!(verify(Some(&header), b"{}", SECRET, 700).is_ok());
        let early = verify(Some(&header), b"{}", SECRET, 600);
        assert_eq!(early, Err(SignatureError::InFuture { lead_seconds: 400 }));
        let message = early.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("400 s in the future"), "{message}");
    }

    #[test]
    fn malformed_headers_are_rejected() {
        assert_eq!(
            verify(None, b"{}", SECRET, 0),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify(Some("v1=00"), b"{}", SECRET, 0),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(Some("t=abc,v1=00"), b"{}", SECRET, 0),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(Some("t=0,v1=zz"), b"{}", SECRET, 0),
            Err(SignatureError::Mismatch)
        );
    }

    fn v1_of(header: &str) -> &str {
        header
            .split_once(",v1=")
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    #[test]
    fn uppercase_hex_signature_is_rejected() {
        let good = sign(b"{}", SECRET, 1_000);
        let upper = format!("t=1000,v1={}", v1_of(&good).to_ascii_uppercase());
        assert_eq!(
            verify(Some(&upper), b"{}", SECRET, 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn items_after_a_space_are_not_read() {
        let good = sign(b"{}", SECRET, 1_000);
        let spaced_v1 = format!("t=1000, v1={}", v1_of(&good));
        assert_eq!(
            verify(Some(&spaced_v1), b"{}", SECRET, 1_000),
            Err(SignatureError::MissingSignature)
        );
        let spaced_t = format!(" t=1000,v1={}", v1_of(&good));
        assert_eq!(
            verify(Some(&spaced_t), b"{}", SECRET, 1_000),
            Err(SignatureError::MissingTimestamp)
        );
        let spaced_value = format!("t=1000,v1= {}", v1_of(&good));
        assert_eq!(
            verify(Some(&spaced_value), b"{}", SECRET, 1_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn first_timestamp_is_the_one_signed() {
        let at_1000 = sign(b"{}", SECRET, 1_000);
        let first = format!("t=1000,t=2000,v1={}", v1_of(&at_1000));
        assert_eq!(verify(Some(&first), b"{}", SECRET, 1_000), Ok(1_000));

        // A replayed header with a fresh t appended keeps its old, signed t.
        let appended = format!("{at_1000},t=5000");
        assert_eq!(
            verify(Some(&appended), b"{}", SECRET, 5_000),
            Err(SignatureError::TooOld { age_seconds: 4_000 })
        );
        // A fresh t put first is what the signature must cover, and it does not.
        let prepended = format!("t=5000,{at_1000}");
        assert_eq!(
            verify(Some(&prepended), b"{}", SECRET, 5_000),
            Err(SignatureError::Mismatch)
        );
        // An unreadable first t is not replaced by a later readable one.
        let unreadable = format!("t=x,{at_1000}");
        assert_eq!(
            verify(Some(&unreadable), b"{}", SECRET, 1_000),
            Err(SignatureError::MissingTimestamp)
        );
    }

    #[test]
    fn timestamp_is_read_like_python_int() {
        let good = sign(b"{}", SECRET, 1_000);
        let v1 = v1_of(&good);
        for spelling in ["1000", " 1000 ", "+1000", "1_000"] {
            let header = format!("t={spelling},v1={v1}");
            assert_eq!(
                verify(Some(&header), b"{}", SECRET, 1_000),
                Ok(1_000),
                "t={spelling}"
            );
        }
        for spelling in ["", "_1000", "1000_", "1__000", "+-1000", "1e3", "0x3e8"] {
            let header = format!("t={spelling},v1={v1}");
            assert_eq!(
                verify(Some(&header), b"{}", SECRET, 1_000),
                Err(SignatureError::MissingTimestamp),
                "t={spelling}"
            );
        }
    }

    #[test]
    fn item_values_end_at_the_second_equals_sign() {
        let good = sign(b"{}", SECRET, 1_000);
        let trailing = format!("{good}=ignored");
        assert_eq!(verify(Some(&trailing), b"{}", SECRET, 1_000), Ok(1_000));
        assert_eq!(
            verify(Some(&format!("t,{good}")), b"{}", SECRET, 1_000),
            Err(SignatureError::MalformedItem)
        );
        assert_eq!(
            verify(Some(&format!("{good},v1")), b"{}", SECRET, 1_000),
            Err(SignatureError::MalformedItem)
        );
        assert_eq!(
            verify(Some(&format!("{good},v0,x")), b"{}", SECRET, 1_000),
            Ok(1_000)
        );
    }
}
