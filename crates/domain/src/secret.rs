//! Random tokens, their storage hashes, and password hashing.
//!
//! Session cookies, API keys and reset links are stored only as SHA-256
//! hashes, so a database leak does not hand out working credentials. Portal
//! tokens are stored as they are, because the studio must be able to copy
//! the link at any time.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::DomainError;

/// Random bytes in every token: 256 bits, twice the 128 that an unguessable
/// link needs.
const TOKEN_BYTES: usize = 32;

/// Shortest password accepted at sign-up and reset.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Maximum password length accepted, in characters; argon2 hashes any length, and the cap keeps a
/// single request from feeding it megabytes.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A secret string that never prints itself in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Generates a URL-safe random token with `prefix` in front, e.g. `ps_key_…`.
pub fn random_token(prefix: &str) -> Secret {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Secret(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// Hashes a token for storage and look-up.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Compares two tokens in constant time.
pub fn tokens_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks the password rules and hashes it with argon2id.
pub fn hash_password(password: &str) -> Result<String, DomainError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("the password is {chars} characters long; use at least {MIN_PASSWORD_CHARS}"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            "password",
            format!("the password is longer than {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| DomainError::invalid("password", format!("could not be hashed: {e}")))
}

/// Checks a password against a stored argon2 hash.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password, checked when a log-in names an unknown
/// email so that the reply takes as long as for a known one.
pub fn dummy_password_hash() -> &'static str {
    static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let password = random_token("");
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    });
    &HASH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = random_token("pp_");
        let b = random_token("pp_");
        assert_ne!(a, b);
        assert!(a.expose().starts_with("pp_"));
        // 32 bytes in unpadded base64 is 43 characters.
        assert_eq!(a.expose().len(), 3 + 43);
    }

    #[test]
    fn secret_debug_hides_value() {
        let secret = Secret::new("hunter2hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse battery").expect("valid password");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
    }

    #[test]
    fn short_password_is_rejected() {
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn dummy_hash_verifies_nothing() {
        assert!(dummy_password_hash().starts_with("$argon2id$"));
        assert!(!verify_password("", dummy_password_hash()));
        assert!(!verify_password("password123", dummy_password_hash()));
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "abcd"));
    }
}
