//! The thumbnail pipeline: validate, decode, orient, resize and encode as JPEG.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
};

use crate::probe::{ImageKind, check_jpeg_complete, read_dimensions, sniff, sniff_unsupported};

/// Maximum length in pixels of the longest side of the grid thumbnail.
pub const GRID_MAX_SIDE: u32 = 480;
/// Maximum length in pixels of the longest side of the lightbox rendition.
pub const LIGHTBOX_MAX_SIDE: u32 = 1600;
/// Maximum number of pixels in an accepted image (100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Maximum width and maximum height in pixels of an accepted image.
pub const MAX_SIDE: u32 = 20_000;
/// JPEG quality (1 to 100) of both renditions.
pub const JPEG_QUALITY: u8 = 85;

/// Maximum memory the decoder may allocate. The largest accepted image, in the
/// widest pixel format the supported decoders produce (16-bit RGBA PNG, 8 bytes
/// per pixel), just fits.
const MAX_DECODE_ALLOC: u64 = MAX_PIXELS * 8;

/// A JPEG-encoded, downscaled copy of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Baseline JPEG data without EXIF, so there is no orientation tag and the
    /// pixels are stored upright.
    pub jpeg: Vec<u8>,
}

/// The renditions of one photo, with the size of the full image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnails {
    /// Width in pixels of the full image after its EXIF orientation is applied.
    pub width: u32,
    /// Height in pixels of the full image after its EXIF orientation is applied.
    pub height: u32,
    /// Gallery thumbnail whose longest side is at most [`GRID_MAX_SIDE`].
    pub grid: Rendition,
    /// Full-screen rendition whose longest side is at most [`LIGHTBOX_MAX_SIDE`].
    pub lightbox: Rendition,
}

/// Reasons why no thumbnails can be made from an uploaded file. The messages
/// are written for the studio owner who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbnailError {
    /// The content is not a recognised image format, whatever its file name.
    #[error("This file is not a JPEG or PNG image. Export it as JPEG and upload it again.")]
    NotAnImage,

    /// An image format, or a feature of a JPEG or PNG, that cannot be decoded.
    #[error("{}", unsupported_message(format, feature.as_deref()))]
    Unsupported {
        /// Name of the format, such as "HEIC" or "JPEG".
        format: &'static str,
        /// The decoder's description of the unsupported feature, when the format
        /// itself is supported.
        feature: Option<String>,
    },

    /// The image exceeds [`MAX_PIXELS`] or [`MAX_SIDE`].
    #[error(
        "This image is {width} x {height} pixels, which is more than the maximum of \
         100 megapixels or 20,000 pixels on a side. Export it at a smaller size and upload it again."
    )]
    TooLarge {
        /// Stored width in pixels, before EXIF orientation.
        width: u32,
        /// Stored height in pixels, before EXIF orientation.
        height: u32,
    },

    /// The file is damaged or incomplete. The text is the technical detail.
    #[error(
        "This image file is damaged or incomplete, possibly because the upload was interrupted. \
         Upload the original file again. (Detail: {0})"
    )]
    Corrupt(String),

    /// Encoding the thumbnail failed, which points to a bug rather than a bad file.
    #[error("Creating the thumbnail failed ({0}). Please contact support.")]
    Encode(String),
}

fn unsupported_message(format: &str, feature: Option<&str>) -> String {
    match feature {
        None => format!(
            "{format} images are not supported yet. Export the photo as JPEG and upload it again."
        ),
        Some(feature) => format!(
            "This {format} image uses a feature that is not supported ({feature}). \
             Export it again as a standard JPEG and upload it again."
        ),
    }
}

impl ThumbnailError {
    /// Returns whether retrying the same input can never succeed, so a job queue
    /// should fail the job at once. Every current variant is deterministic for a
    /// given file, so this is true for all of them.
    pub fn is_permanent(&self) -> bool {
        match self {
            ThumbnailError::NotAnImage
            | ThumbnailError::Unsupported { .. }
            | ThumbnailError::TooLarge { .. }
            | ThumbnailError::Corrupt(_)
            | ThumbnailError::Encode(_) => true,
        }
    }
}

/// Makes the grid and lightbox renditions of an uploaded JPEG or PNG.
///
/// The format is detected from the content. The size is read from the header
/// and checked against [`MAX_PIXELS`] and [`MAX_SIDE`] before any pixels are
/// decoded, and a JPEG must be complete up to its end-of-image marker. The
/// EXIF orientation is applied, so the renditions are upright and carry no
/// orientation tag. Greyscale images give greyscale JPEGs, 16-bit images are
/// reduced to 8 bits, and transparent areas become white. Each rendition fits
/// its longest side to its limit, is never upscaled, and rounds the other side
/// to the nearest pixel, at least 1.
///
/// This is CPU-bound, so async callers should run it on a blocking thread. A
/// 24 MP JPEG took 2.4 s in the dev profile on one core of a shared 2-core
/// machine, most of it in the Lanczos3 resize.
///
/// # Errors
///
/// See [`ThumbnailError`]. Every error is permanent.
pub fn make_thumbnails(bytes: &[u8]) -> Result<Thumbnails, ThumbnailError> {
    let Some(kind) = sniff(bytes) else {
        return Err(match sniff_unsupported(bytes) {
            Some(format) => ThumbnailError::Unsupported {
                format,
                feature: None,
            },
            None => ThumbnailError::NotAnImage,
        });
    };

    let (stored_width, stored_height) = read_dimensions(bytes, kind)?;
    check_size(stored_width, stored_height)?;
    if kind == ImageKind::Jpeg {
        check_jpeg_complete(bytes)?;
    }

    let (image, orientation) = decode(bytes, kind, stored_width, stored_height)?;
    let image = flatten_to_8_bit(image);

    let (width, height) = if swaps_axes(orientation) {
        (stored_height, stored_width)
    } else {
        (stored_width, stored_height)
    };

    let lightbox_size = fit_within(width, height, LIGHTBOX_MAX_SIDE);
    // Resizing before orienting is cheaper, because the orientation then
    // transforms only the small image. It needs the size in stored axes.
    let lightbox_stored_size = if swaps_axes(orientation) {
        (lightbox_size.1, lightbox_size.0)
    } else {
        lightbox_size
    };
    let mut lightbox = resize(&image, lightbox_stored_size);
    drop(image);
    lightbox.apply_orientation(orientation);

    // The lightbox is at least as large as the grid, so downscaling it looks the
    // same as downscaling the full image, at a fraction of the cost.
    let grid_size = fit_within(width, height, GRID_MAX_SIDE);
    let grid = resize(&lightbox, grid_size);

    Ok(Thumbnails {
        width,
        height,
        grid: encode_rendition(&grid)?,
        lightbox: encode_rendition(&lightbox)?,
    })
}

fn check_size(width: u32, height: u32) -> Result<(), ThumbnailError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(ThumbnailError::TooLarge { width, height });
    }
    Ok(())
}

fn decode_limits() -> Limits {
    // `Limits` is non-exhaustive, so it is built by changing the defaults.
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// Decodes the pixels as stored and reads the EXIF orientation.
fn decode(
    bytes: &[u8],
    kind: ImageKind,
    width: u32,
    height: u32,
) -> Result<(DynamicImage, Orientation), ThumbnailError> {
    let (format, format_name) = match kind {
        ImageKind::Jpeg => (ImageFormat::Jpeg, "JPEG"),
        ImageKind::Png => (ImageFormat::Png, "PNG"),
    };
    let to_error = |error| map_decode_error(error, format_name, width, height);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(to_error)?;

    if decoder.dimensions() != (width, height) {
        let (decoded_width, decoded_height) = decoder.dimensions();
        return Err(ThumbnailError::Corrupt(format!(
            "the decoder reports {decoded_width} x {decoded_height} pixels \
             but the header gives {width} x {height}"
        )));
    }

    // `ImageReader::decode` checks the pixel buffer against `max_alloc`, but
    // `DynamicImage::from_decoder` does not, so this does it.
    decode_limits()
        .reserve(decoder.total_bytes())
        .map_err(to_error)?;

    let orientation = decoder.orientation().map_err(to_error)?;
    let image = DynamicImage::from_decoder(decoder).map_err(to_error)?;
    Ok((image, orientation))
}

fn map_decode_error(
    error: ImageError,
    format: &'static str,
    width: u32,
    height: u32,
) -> ThumbnailError {
    match error {
        ImageError::Limits(_) => ThumbnailError::TooLarge { width, height },
        ImageError::Unsupported(unsupported) => ThumbnailError::Unsupported {
            format,
            feature: Some(unsupported.to_string()),
        },
        ImageError::Decoding(_) | ImageError::IoError(_) | ImageError::Parameter(_) => {
            ThumbnailError::Corrupt(error.to_string())
        }
        ImageError::Encoding(_) => ThumbnailError::Encode(error.to_string()),
    }
}

/// Converts to 8-bit RGB, or 8-bit greyscale when the image has no colour,
/// compositing any alpha channel onto white because JPEG has no transparency.
fn flatten_to_8_bit(image: DynamicImage) -> DynamicImage {
    match (image.color().has_color(), image.color().has_alpha()) {
        (false, false) => DynamicImage::ImageLuma8(image.into_luma8()),
        (true, false) => DynamicImage::ImageRgb8(image.into_rgb8()),
        (false, true) => {
            let source = image.into_luma_alpha8();
            let flattened = GrayImage::from_fn(source.width(), source.height(), |x, y| {
                let [luma, alpha] = source.get_pixel(x, y).0;
                image::Luma([over_white(luma, alpha)])
            });
            DynamicImage::ImageLuma8(flattened)
        }
        (true, true) => {
            let source = image.into_rgba8();
            let flattened = RgbImage::from_fn(source.width(), source.height(), |x, y| {
                let [red, green, blue, alpha] = source.get_pixel(x, y).0;
                image::Rgb([
                    over_white(red, alpha),
                    over_white(green, alpha),
                    over_white(blue, alpha),
                ])
            });
            DynamicImage::ImageRgb8(flattened)
        }
    }
}

/// Composites one straight-alpha channel value onto white, rounding to nearest.
fn over_white(value: u8, alpha: u8) -> u8 {
    let value = u32::from(value);
    let alpha = u32::from(alpha);
    let blended = (value * alpha + 255 * (255 - alpha) + 127) / 255;
    // The blend of two values in 0..=255 stays in 0..=255.
    u8::try_from(blended).unwrap_or(u8::MAX)
}

/// Returns whether the orientation turns the image by 90 or 270 degrees, so the
/// displayed width is the stored height.
fn swaps_axes(orientation: Orientation) -> bool {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => true,
        Orientation::NoTransforms
        | Orientation::Rotate180
        | Orientation::FlipHorizontal
        | Orientation::FlipVertical => false,
    }
}

/// Returns the size that fits the longest side to `max_side`, keeping the aspect
/// ratio, rounding the shorter side to the nearest pixel (at least 1) and never
/// upscaling.
pub(crate) fn fit_within(width: u32, height: u32, max_side: u32) -> (u32, u32) {
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

fn resize(image: &DynamicImage, (width, height): (u32, u32)) -> DynamicImage {
    if image.width() == width && image.height() == height {
        return image.clone();
    }
    image.resize_exact(width, height, FilterType::Lanczos3)
}

fn encode_rendition(image: &DynamicImage) -> Result<Rendition, ThumbnailError> {
    let mut jpeg = Vec::new();
    // `write_with_encoder` keeps greyscale as one channel, whereas
    // `JpegEncoder::encode_image(&DynamicImage)` would expand it to RGB.
    image
        .write_with_encoder(JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY))
        .map_err(|error| ThumbnailError::Encode(error.to_string()))?;
    Ok(Rendition {
        width: image.width(),
        height: image.height(),
        jpeg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_within_scales_longest_side() {
        assert_eq!(fit_within(1800, 1200, 480), (480, 320));
        assert_eq!(fit_within(1200, 1800, 480), (320, 480));
        assert_eq!(fit_within(1800, 1200, 1600), (1600, 1067));
        assert_eq!(fit_within(6000, 4000, 1600), (1600, 1067));
    }

    #[test]
    fn fit_within_never_upscales() {
        assert_eq!(fit_within(840, 700, 1600), (840, 700));
        assert_eq!(fit_within(480, 10, 480), (480, 10));
        assert_eq!(fit_within(1, 1, 480), (1, 1));
    }

    #[test]
    fn fit_within_keeps_one_pixel() {
        assert_eq!(fit_within(20_000, 1, 480), (480, 1));
        assert_eq!(fit_within(1, 20_000, 480), (1, 480));
    }

    #[test]
    fn fit_within_rounds_to_nearest() {
        // 1000 * 480 / 1920 = 250 exactly, 1001 gives 250.25, 1003 gives 250.75.
        assert_eq!(fit_within(1920, 1000, 480), (480, 250));
        assert_eq!(fit_within(1920, 1001, 480), (480, 250));
        assert_eq!(fit_within(1920, 1003, 480), (480, 251));
        // 2 * 480 / 1920 = 0.5 rounds up to 1.
        assert_eq!(fit_within(1920, 2, 480), (480, 1));
    }

    #[test]
    fn check_size_rejects_over_limits() {
        assert!(check_size(MAX_SIDE, 5_000).is_ok());
        assert!(check_size(10_000, 10_000).is_ok());
        assert_eq!(
            check_size(MAX_SIDE + 1, 10),
            Err(ThumbnailError::TooLarge {
                width: MAX_SIDE + 1,
                height: 10
            })
        );
        assert!(check_size(10, MAX_SIDE + 1).is_err());
        assert!(check_size(10_001, 10_000).is_err());
    }

    #[test]
    fn over_white_blends() {
        assert_eq!(over_white(0, 0), 255);
        assert_eq!(over_white(0, 255), 0);
        assert_eq!(over_white(100, 255), 100);
        assert_eq!(over_white(0, 128), 127);
    }

    #[test]
    fn all_errors_are_permanent() {
        let errors = [
            ThumbnailError::NotAnImage,
            ThumbnailError::Unsupported {
                format: "HEIC",
                feature: None,
            },
            ThumbnailError::TooLarge {
                width: 1,
                height: 1,
            },
            ThumbnailError::Corrupt(String::new()),
            ThumbnailError::Encode(String::new()),
        ];
        for error in errors {
            assert!(error.is_permanent(), "{error:?}");
        }
    }
}
