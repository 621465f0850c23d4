//! The rendition sizes that galleries show, in one place.

use crate::key::PhotoObject;

/// Maximum length in pixels of the longest side of the grid thumbnail.
pub const GRID_MAX_SIDE: u32 = 480;
/// Maximum length in pixels of the longest side of the lightbox rendition.
pub const LIGHTBOX_MAX_SIDE: u32 = 1024;

/// A rendition that the pipeline makes for every photo. Each gallery size
/// has a `2x` twin with twice the pixels per side for high-density screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RenditionSize {
    /// Gallery grid thumbnail, longest side at most [`GRID_MAX_SIDE`].
    Grid,
    /// Gallery grid thumbnail for high-density screens.
    Grid2x,
    /// Full-screen viewer image, longest side at most [`LIGHTBOX_MAX_SIDE`].
    Lightbox,
    /// Full-screen viewer image for high-density screens.
    Lightbox2x,
}

impl RenditionSize {
    /// Every rendition, largest first, the order in which the pipeline makes them.
    pub const ALL: [RenditionSize; 4] = [
        RenditionSize::Lightbox2x,
        RenditionSize::Lightbox,
        RenditionSize::Grid2x,
        RenditionSize::Grid,
    ];

    /// Returns the maximum length in pixels of the rendition's longest side.
    pub const fn max_side(self) -> u32 {
        match self {
            RenditionSize::Grid => GRID_MAX_SIDE,
            RenditionSize::Grid2x => GRID_MAX_SIDE * 2,
            RenditionSize::Lightbox => LIGHTBOX_MAX_SIDE,
            RenditionSize::Lightbox2x => LIGHTBOX_MAX_SIDE * 2,
        }
    }

    /// Returns the stored object that contains this rendition.
    pub const fn object(self) -> PhotoObject {
        match self {
            RenditionSize::Grid => PhotoObject::Grid,
            RenditionSize::Grid2x => PhotoObject::Grid2x,
            RenditionSize::Lightbox => PhotoObject::Lightbox,
            RenditionSize::Lightbox2x => PhotoObject::Lightbox2x,
        }
    }

    /// Returns the name of the rendition in portal URLs, such as `grid-2x`.
    pub const fn url_name(self) -> &'static str {
        match self {
            RenditionSize::Grid => "grid",
            RenditionSize::Grid2x => "grid-2x",
            RenditionSize::Lightbox => "lightbox",
            RenditionSize::Lightbox2x => "lightbox-2x",
        }
    }

    /// Returns the rendition whose [`RenditionSize::url_name`] is `name`.
    pub fn from_url_name(name: &str) -> Option<RenditionSize> {
        RenditionSize::ALL
            .into_iter()
            .find(|size| size.url_name() == name)
    }

    /// Returns the 1x rendition that a page can show in place of this one:
    /// itself for 1x sizes, the 1x twin for 2x sizes.
    pub const fn standard_density(self) -> RenditionSize {
        match self {
            RenditionSize::Grid | RenditionSize::Grid2x => RenditionSize::Grid,
            RenditionSize::Lightbox | RenditionSize::Lightbox2x => RenditionSize::Lightbox,
        }
    }

    /// Returns the width and height of this rendition of an image of
    /// `width` x `height` pixels (after orientation), as [`fit_within`] computes them.
    pub fn fit(self, width: u32, height: u32) -> (u32, u32) {
        fit_within(width, height, self.max_side())
    }
}

/// Returns the size that fits the longest side to `max_side`, keeping the aspect
/// ratio, rounding the shorter side to the nearest pixel (at least 1) and never
/// upscaling.
pub fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width, height);
    }
    let scale = |side: u32| -> u32 {
        // Integer arithmetic rounds half up: side * max_side / longest + 0.5.
        let scaled = (u64::from(side) * u64::from(max_side) * 2 + u64::from(longest))
            / (u64::from(longest) * 2);
        // The result is at most `max_side`, so it fits in a u32.
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    (scale(width), scale(height))
}

/// Returns a strong HTTP entity tag for `content`: the first 128 bits of its
/// SHA-256 digest in hex, in quotes. Equal content always gives the same tag.
pub fn content_etag(content: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(content);
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names_round_trip() {
        for size in RenditionSize::ALL {
            assert_eq!(RenditionSize::from_url_name(size.url_name()), Some(size));
        }
        assert_eq!(RenditionSize::from_url_name("original"), None);
    }

    #[test]
    fn etag_is_quoted_digest() {
        let tag = content_etag(b"abc");
        assert_eq!(tag, "\"ba7816bf8f01cfea414140de5dae2223\"");
        assert_ne!(content_etag(b"abd"), tag);
    }

    #[test]
    fn sizes_are_largest_first() {
        let sides = RenditionSize::ALL.map(RenditionSize::max_side);
        assert_eq!(sides, [2048, 1024, 960, 480]);
    }

    #[test]
    fn fit_matches_camera_sizes() {
        assert_eq!(RenditionSize::Lightbox.fit(6000, 4000), (1024, 683));
        assert_eq!(RenditionSize::Lightbox.fit(4608, 1976), (1024, 439));
        assert_eq!(RenditionSize::Lightbox.fit(3024, 4032), (768, 1024));
        assert_eq!(RenditionSize::Grid2x.fit(6000, 4000), (960, 640));
        assert_eq!(RenditionSize::Lightbox2x.fit(840, 700), (840, 700));
    }
}
