//! Verification of the `Stripe-Signature` header, as Stripe documents it:
//! the header is `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, and each `v1` is
//! the hex HMAC-SHA256, keyed with the endpoint's signing secret, of
//! `"<t>." + raw body`. Stripe sends several `v1` values while an endpoint
//! secret is being rolled, and a match with any one is enough.

use ring::hmac;

/// Maximum age, and maximum lead, of a signature's timestamp: Stripe's
/// libraries default to 300 seconds.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook request was rejected. The messages name the problem and
/// never echo the header, which carries signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header has no valid t= timestamp")]
    MissingTimestamp,
    #[error("the Stripe-Signature header has no v1= signature")]
    MissingSignature,
    #[error("no v1 signature matches the body and the signing secret")]
    Mismatch,
    #[error(
        "the signature timestamp is {age_seconds} s away from now; at most {TOLERANCE_SECONDS} s is accepted"
    )]
    OutsideTolerance { age_seconds: i64 },
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
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => timestamp = value.parse::<i64>().ok(),
            "v1" => signatures.push(value),
            // v0 is Stripe's test scheme and other keys are future schemes;
            // neither may stand in for v1.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::MissingSignature);
    }

    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let message = signed_payload(timestamp, body);
    let matched = signatures.iter().any(|signature| {
        hex::decode(signature).is_ok_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }

    let age_seconds = now.saturating_sub(timestamp);
    if age_seconds.abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideTolerance { age_seconds });
    }
    Ok(timestamp)
}

/// Builds a `Stripe-Signature` header for `body` at `timestamp`, the way
/// Stripe signs its deliveries. Used by tests and benchmarks.
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, &signed_payload(timestamp, body));
    format!("t={timestamp},v1={}", hex::encode(tag.as_ref()))
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
            Err(SignatureError::OutsideTolerance { age_seconds: 301 })
        );
        assert!(verify(Some(&header), b"{}", SECRET, 699).is_err());
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
}
