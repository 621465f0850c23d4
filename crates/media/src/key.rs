//! Object keys: validation and the layout of a photo's objects.

use std::fmt::Display;

use crate::store::StoreError;

/// Maximum key length in bytes, the same as the S3 limit, so that every key
/// accepted here also works on S3-compatible storage.
pub const MAX_KEY_LEN: usize = 1024;

/// Checks that `key` is a relative, slash-separated object key.
///
/// Each segment must be non-empty, must not start with `.` (which rules out `.`
/// and `..`, and keeps the namespace of hidden and temporary files free), and
/// may contain only ASCII letters, digits, `-`, `_` and `.`. So a valid key has
/// no leading or trailing slash, no backslash, no `//` and no control characters.
/// Keys are built by the application from ids and fixed names, never from client
/// file names, so this strict set costs nothing.
///
/// # Errors
///
/// Returns [`StoreError::InvalidKey`] naming the key and the rule it breaks.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let invalid = |reason: &'static str| StoreError::InvalidKey {
        key: key.to_owned(),
        reason,
    };

    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("the key is longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(invalid("the key must be relative, not start with '/'"));
    }
    if key.contains('\\') {
        return Err(invalid("the key contains a backslash"));
    }

    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid("the key contains an empty segment"));
        }
        if segment == ".." || segment == "." {
            return Err(invalid("the key contains a '.' or '..' segment"));
        }
        if segment.starts_with('.') {
            return Err(invalid("a key segment starts with '.'"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !segment.chars().all(allowed) {
            return Err(invalid(
                "the key contains a character other than ASCII letters, digits, '-', '_', '.' and '/'",
            ));
        }
    }
    Ok(())
}

/// An object stored for each photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoObject {
    /// The file as the studio uploaded it.
    Original,
    /// The JPEG thumbnail for gallery grids, see [`crate::RenditionSize::Grid`].
    Grid,
    /// The grid thumbnail for high-density screens, see [`crate::RenditionSize::Grid2x`].
    Grid2x,
    /// The JPEG rendition for the full-screen viewer, see [`crate::RenditionSize::Lightbox`].
    Lightbox,
    /// The viewer rendition for high-density screens, see [`crate::RenditionSize::Lightbox2x`].
    Lightbox2x,
}

impl PhotoObject {
    /// Returns the last segment of the object's key.
    pub fn file_name(self) -> &'static str {
        match self {
            PhotoObject::Original => "original",
            PhotoObject::Grid => "grid.jpg",
            PhotoObject::Grid2x => "grid-2x.jpg",
            PhotoObject::Lightbox => "lightbox.jpg",
            PhotoObject::Lightbox2x => "lightbox-2x.jpg",
        }
    }
}

/// Returns the prefix that contains every object of a tenant: `tenants/{tenant}`.
///
/// Each id must format as one valid key segment (a UUID does). A key built from
/// an id that does not is rejected by [`validate_key`] when it is used.
pub fn tenant_prefix(tenant: impl Display) -> String {
    format!("tenants/{tenant}")
}

/// Returns the prefix that contains every object of a project:
/// `tenants/{tenant}/projects/{project}`.
pub fn project_prefix(tenant: impl Display, project: impl Display) -> String {
    format!("{}/projects/{project}", tenant_prefix(tenant))
}

/// Returns the prefix that contains every object of a photo:
/// `tenants/{tenant}/projects/{project}/photos/{photo}`.
pub fn photo_prefix(tenant: impl Display, project: impl Display, photo: impl Display) -> String {
    format!("{}/photos/{photo}", project_prefix(tenant, project))
}

/// Returns the key of one of a photo's objects, for example
/// `tenants/{tenant}/projects/{project}/photos/{photo}/original`.
pub fn photo_key(
    tenant: impl Display,
    project: impl Display,
    photo: impl Display,
    object: PhotoObject,
) -> String {
    format!(
        "{}/{}",
        photo_prefix(tenant, project, photo),
        object.file_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_photo_keys() {
        let key = photo_key(
            "0190a6c2-7d1e-7c3a-9f00-0123456789ab",
            "p1",
            "ph_1",
            PhotoObject::Lightbox,
        );
        assert_eq!(
            key,
            "tenants/0190a6c2-7d1e-7c3a-9f00-0123456789ab/projects/p1/photos/ph_1/lightbox.jpg"
        );
        assert!(validate_key(&key).is_ok());
        assert!(validate_key("a").is_ok());
        assert!(validate_key("a/b.c/d-e_f").is_ok());
    }

    #[test]
    fn rejects_bad_keys() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        let cases = [
            "",
            "/abs/path",
            "a//b",
            "a/",
            "/",
            "a/../b",
            "..",
            "./a",
            "a/.hidden",
            "a\\b",
            "a/b c",
            "a/b\n",
            "a/b\0",
            "a/ü",
            long.as_str(),
        ];
        for key in cases {
            let result = validate_key(key);
            assert!(
                matches!(result, Err(StoreError::InvalidKey { .. })),
                "key {key:?} was not rejected: {result:?}"
            );
        }
    }

    #[test]
    fn invalid_key_message_names_key() {
        let error = validate_key("a/../b").expect_err("'..' must be rejected");
        let message = error.to_string();
        assert!(message.contains("\"a/../b\""), "{message}");
        assert!(message.contains("'..'"), "{message}");
    }
}
