//! The thumbnail pipeline: validate, decode, orient, resize and encode as JPEG.

use std::io::Cursor;

use fast_image_resize::images::ImageRef;
use fast_image_resize::{self as fir, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage,
};

use crate::colour::{cmyk_to_rgb, convert_to_srgb};
use crate::probe::{
    ImageKind, check_jpeg_complete, has_adobe_marker, progressive_coefficient_bytes,
    read_dimensions, read_sample_layout, sniff, sniff_unsupported,
};
use crate::sizes::{LIGHTBOX_MAX_SIDE, RenditionSize, fit_within};

/// Maximum number of pixels in an accepted image (100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Maximum width and maximum height in pixels of an accepted image.
pub const MAX_SIDE: u32 = 20_000;
/// JPEG quality (1 to 100) of both renditions.
pub const JPEG_QUALITY: u8 = 85;

/// Maximum size in bytes of an image's decoded pixels: width x height x
/// bytes per pixel of the format the decoder produces. An 8-bit RGBA image
/// of [`MAX_PIXELS`] just fits. A 16-bit image may have half as many pixels
/// with alpha, or two thirds without.
///
/// Peak memory of one thumbnail job is this buffer, the original file, and
/// for 16-bit images the 8-bit copy (half the buffer) made before the 16-bit
/// one is freed; 8-bit images with alpha are flattened in place. Measured
/// with `/usr/bin/time -v` on the `thumbnail_memory` example (2 cores, see
/// docs/BENCHMARKS.md): 622 MB maximum resident size for the worst accepted
/// file, a 10000 x 5000 16-bit RGBA PNG, and 417 MB for a 10000 x 10000 8-bit
/// RGBA PNG. A worker with `THUMBNAIL_CONCURRENCY` jobs needs that many times
/// as much at worst.
///
/// [`check_decoded_size`] also checks a progressive JPEG's coefficients and a
/// TIFF's two copies of its pixels against this limit.
/// NOTE: the peaks of the largest accepted progressive JPEG and TIFF have not
/// been measured with these checks. Without them, a 10000 x 10000 progressive
/// CMYK JPEG peaked at 1045 MB and a 9000 x 9000 RGBA TIFF at 848 MB.
pub const MAX_DECODED_BYTES: u64 = MAX_PIXELS * 4;

/// Maximum memory the decoders may allocate for the pixel buffer.
const MAX_DECODE_ALLOC: u64 = MAX_DECODED_BYTES;

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
    /// Gallery thumbnail, [`RenditionSize::Grid`].
    pub grid: Rendition,
    /// Gallery thumbnail for high-density screens, [`RenditionSize::Grid2x`].
    pub grid_2x: Rendition,
    /// Full-screen rendition, [`RenditionSize::Lightbox`].
    pub lightbox: Rendition,
    /// Full-screen rendition for high-density screens, [`RenditionSize::Lightbox2x`].
    pub lightbox_2x: Rendition,
}

impl Thumbnails {
    /// Returns each rendition with its size, in the order of [`RenditionSize::ALL`].
    pub fn renditions(&self) -> [(RenditionSize, &Rendition); 4] {
        [
            (RenditionSize::Lightbox2x, &self.lightbox_2x),
            (RenditionSize::Lightbox, &self.lightbox),
            (RenditionSize::Grid2x, &self.grid_2x),
            (RenditionSize::Grid, &self.grid),
        ]
    }
}

/// Reasons why no thumbnails can be made from an uploaded file. The messages
/// are written for the studio owner who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbnailError {
    /// The content is not a recognised image format, whatever its file name.
    #[error(
        "This file is not a JPEG, PNG, WebP or TIFF image. Export it as JPEG and upload it again."
    )]
    NotAnImage,

    /// An image format, or a feature of a supported format, that cannot be decoded.
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

    /// The decoded pixels would take more than [`MAX_DECODED_BYTES`], which
    /// happens with 16-bit images near the pixel limit.
    #[error(
        "This {format} image is {width} x {height} pixels with {bits_per_channel} bits per \
         channel and {channels} channels, which takes {} MB of memory once decoded, more than \
         the maximum of {} MB. Export it with 8 bits per channel, or at a smaller size, and \
         upload it again.",
        decoded_megabytes(*width, *height, *bits_per_channel, *channels),
        MAX_DECODED_BYTES / 1_000_000
    )]
    TooManyBytes {
        /// Name of the format, such as "PNG".
        format: &'static str,
        /// Stored width in pixels.
        width: u32,
        /// Stored height in pixels.
        height: u32,
        /// Bits of each sample as decoded: 8 or 16.
        bits_per_channel: u8,
        /// Samples per pixel, alpha included.
        channels: u8,
    },

    /// Decoding would need more memory than [`MAX_DECODED_BYTES`] for another
    /// reason than the size of the pixels: the DCT coefficients a progressive
    /// JPEG keeps for the whole frame, or the second copy of the pixels the
    /// TIFF decoder holds. `megabytes` is `None` when the decoder itself
    /// stopped at its allocation limit.
    #[error("{}", memory_message(format, *width, *height, *megabytes, advice))]
    NeedsTooMuchMemory {
        /// Name of the format, such as "progressive JPEG".
        format: &'static str,
        /// Stored width in pixels.
        width: u32,
        /// Stored height in pixels.
        height: u32,
        /// Estimated memory in megabytes (10^6 bytes), when known.
        megabytes: Option<u64>,
        /// Advice to the studio, as a sentence.
        advice: &'static str,
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

/// Returns the decoded size in whole megabytes (10^6 bytes), rounded up.
fn decoded_megabytes(width: u32, height: u32, bits_per_channel: u8, channels: u8) -> u64 {
    decoded_bytes(width, height, bits_per_channel, channels).div_ceil(1_000_000)
}

fn decoded_bytes(width: u32, height: u32, bits_per_channel: u8, channels: u8) -> u64 {
    let bytes_per_pixel = u64::from(bits_per_channel).div_ceil(8) * u64::from(channels);
    u64::from(width) * u64::from(height) * bytes_per_pixel
}

fn memory_message(
    format: &str,
    width: u32,
    height: u32,
    megabytes: Option<u64>,
    advice: &str,
) -> String {
    let needed = match megabytes {
        Some(megabytes) => format!("about {megabytes} MB of memory"),
        None => "more memory than that".to_owned(),
    };
    format!(
        "Decoding this {format} image of {width} x {height} pixels needs {needed}, and the \
         maximum is {} MB. {advice}",
        MAX_DECODED_BYTES / 1_000_000
    )
}

/// Advice for an image that needs too much memory to decode.
const EXPORT_SMALLER: &str = "Export it as a JPEG, or at a smaller size, and upload it again.";

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
            | ThumbnailError::TooManyBytes { .. }
            | ThumbnailError::NeedsTooMuchMemory { .. }
            | ThumbnailError::Corrupt(_)
            | ThumbnailError::Encode(_) => true,
        }
    }
}

/// Makes every rendition in [`RenditionSize::ALL`] of an uploaded JPEG, PNG,
/// WebP or TIFF image.
///
/// The format is detected from the content. The size is read from the header
/// and checked against [`MAX_PIXELS`] and [`MAX_SIDE`] before any pixels are
/// decoded, and a JPEG must be complete up to its end-of-image marker. The
/// EXIF orientation is applied, so the renditions are upright and carry no
/// orientation tag. Colours are converted to sRGB from an embedded ICC
/// profile or from CMYK. Greyscale images give greyscale JPEGs, 16-bit images
/// are reduced to 8 bits, and transparent areas become white. Each rendition
/// fits its longest side to its limit, is never upscaled, and rounds the
/// other side to the nearest pixel, at least 1.
///
/// This is CPU-bound, so async callers should run it on a blocking thread.
///
/// # Errors
///
/// See [`ThumbnailError`]. Every error is permanent.
pub fn make_thumbnails(bytes: &[u8]) -> Result<Thumbnails, ThumbnailError> {
    let sides = RenditionSize::ALL.map(RenditionSize::max_side);
    let (width, height, renditions) = render(bytes, &sides)?;
    let mut renditions = renditions.into_iter();
    let mut next = || {
        renditions
            .next()
            .ok_or_else(|| ThumbnailError::Encode("a rendition is missing".to_owned()))
    };
    // `render` returns the renditions in the order of `RenditionSize::ALL`.
    Ok(Thumbnails {
        width,
        height,
        lightbox_2x: next()?,
        lightbox: next()?,
        grid_2x: next()?,
        grid: next()?,
    })
}

/// Makes one rendition whose longest side is at most `max_side`, through the
/// same steps as [`make_thumbnails`], and returns it with the oriented size of
/// the full image. Benchmarks use it to compare with other thumbnailers.
///
/// # Errors
///
/// See [`ThumbnailError`].
pub fn make_rendition(bytes: &[u8], max_side: u32) -> Result<Rendition, ThumbnailError> {
    let (_, _, renditions) = render(bytes, &[max_side])?;
    renditions
        .into_iter()
        .next()
        .ok_or_else(|| ThumbnailError::Encode("the rendition is missing".to_owned()))
}

/// Makes one rendition per entry of `max_sides`, which must be in descending
/// order, and returns them in that order with the oriented image size.
fn render(bytes: &[u8], max_sides: &[u32]) -> Result<(u32, u32, Vec<Rendition>), ThumbnailError> {
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
    check_decoded_size(bytes, kind, stored_width, stored_height)?;
    if kind == ImageKind::Jpeg {
        check_jpeg_complete(bytes)?;
    }

    let largest = max_sides.first().copied().unwrap_or(LIGHTBOX_MAX_SIDE);
    // Fitting the longest side gives the same size whichever way the image
    // is turned, so the stored size sets how far the decoder may scale down.
    let minimum = fit_within(stored_width, stored_height, largest);
    let source = decode(bytes, kind, (stored_width, stored_height), minimum)?;
    let orientation = source.orientation;

    let (width, height) = if swaps_axes(orientation) {
        (stored_height, stored_width)
    } else {
        (stored_width, stored_height)
    };

    let mut renditions = Vec::with_capacity(max_sides.len());
    let mut previous: Option<DynamicImage> = None;
    for &max_side in max_sides {
        let size = fit_within(width, height, max_side);
        let image = match &previous {
            // Each smaller rendition is resized from the previous one, which
            // is at least as large, so it looks the same at a fraction of the cost.
            Some(larger) => resize(larger, size)?,
            None => {
                // Resizing before orienting is cheaper, because the orientation
                // then transforms only the small image. It needs the size in stored axes.
                let stored_size = if swaps_axes(orientation) {
                    (size.1, size.0)
                } else {
                    size
                };
                let mut image = resize(&source.image, stored_size)?;
                // Colour conversion after the resize touches fewer pixels; the
                // resize filter is linear, so the order changes little.
                if let Some(icc) = &source.icc {
                    convert_to_srgb(&mut image, icc);
                }
                image.apply_orientation(orientation);
                image
            }
        };
        renditions.push(encode_rendition(&image)?);
        previous = Some(image);
    }
    Ok((width, height, renditions))
}

pub(crate) fn check_size(width: u32, height: u32) -> Result<(), ThumbnailError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(ThumbnailError::TooLarge { width, height });
    }
    Ok(())
}

/// Checks that decoding an image of this size, in the sample layout its
/// header declares, fits in [`MAX_DECODED_BYTES`].
///
/// A baseline JPEG passes, because it decodes to at most 4 bytes per pixel,
/// and at a reduced scale when large. A progressive JPEG is checked by the
/// DCT coefficients its decoder keeps for the whole frame (2 bytes a sample).
/// A TIFF counts twice, because its decoder keeps a second copy of the
/// pixels while it converts them: a review measured 802 MB peak for a
/// 300 MB RGB TIFF. A header whose layout cannot be read passes, and the
/// decoder's own allocation limit then applies.
pub(crate) fn check_decoded_size(
    bytes: &[u8],
    kind: ImageKind,
    width: u32,
    height: u32,
) -> Result<(), ThumbnailError> {
    if kind == ImageKind::Jpeg {
        return match progressive_coefficient_bytes(bytes) {
            Some(size) if size > MAX_DECODED_BYTES => Err(ThumbnailError::NeedsTooMuchMemory {
                format: "progressive JPEG",
                width,
                height,
                megabytes: Some(size.div_ceil(1_000_000)),
                advice: "Save it as a baseline (not progressive) JPEG, or at a smaller size, \
                         and upload it again.",
            }),
            _ => Ok(()),
        };
    }
    let Some(layout) = read_sample_layout(bytes, kind) else {
        return Ok(());
    };
    let size = decoded_bytes(width, height, layout.bits_per_channel, layout.channels);
    if size > MAX_DECODED_BYTES {
        return Err(ThumbnailError::TooManyBytes {
            format: kind.name(),
            width,
            height,
            bits_per_channel: layout.bits_per_channel,
            channels: layout.channels,
        });
    }
    if kind == ImageKind::Tiff && size.saturating_mul(2) > MAX_DECODED_BYTES {
        return Err(ThumbnailError::NeedsTooMuchMemory {
            format: kind.name(),
            width,
            height,
            megabytes: Some(size.saturating_mul(2).div_ceil(1_000_000)),
            advice: EXPORT_SMALLER,
        });
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

/// Pixels decoded at a size at least as large as the largest rendition.
struct Source {
    /// 8-bit RGB or 8-bit greyscale pixels in stored orientation, without alpha.
    image: DynamicImage,
    /// The EXIF orientation, or `NoTransforms` when there is none.
    orientation: Orientation,
    /// The embedded ICC profile of RGB pixels that are not sRGB yet.
    icc: Option<Vec<u8>>,
}

/// Decodes the pixels as stored, at a reduced scale when the format allows
/// it and `minimum` is much smaller than the stored `size`.
fn decode(
    bytes: &[u8],
    kind: ImageKind,
    size: (u32, u32),
    minimum: (u32, u32),
) -> Result<Source, ThumbnailError> {
    match kind {
        ImageKind::Jpeg => decode_jpeg(bytes, size, minimum),
        ImageKind::Png | ImageKind::WebP | ImageKind::Tiff => decode_with_image(bytes, kind, size),
    }
}

/// Decodes a JPEG with `jpeg-decoder`, whose IDCT can scale by 1/2, 1/4 or
/// 1/8 in the DCT domain. A 24 MP photo bound for a 2048 px rendition is
/// decoded straight to 6 MP, which saves most of the IDCT, colour conversion
/// and resizing work.
fn decode_jpeg(
    bytes: &[u8],
    (width, height): (u32, u32),
    (min_width, min_height): (u32, u32),
) -> Result<Source, ThumbnailError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.set_max_decoding_buffer_size(usize::try_from(MAX_DECODE_ALLOC).unwrap_or(usize::MAX));
    // `check_size` keeps both sides under 20,000, so they fit in a u16.
    let requested = |side: u32| u16::try_from(side.max(1)).unwrap_or(u16::MAX);
    decoder
        .scale(requested(min_width), requested(min_height))
        .map_err(map_jpeg_error)?;
    let mut pixels = decoder.decode().map_err(map_jpeg_error)?;
    let Some(info) = decoder.info() else {
        return Err(ThumbnailError::Corrupt(
            "the JPEG decoder returned no frame information".to_owned(),
        ));
    };
    let (decoded_width, decoded_height) = (u32::from(info.width), u32::from(info.height));
    if decoded_width > width || decoded_height > height {
        return Err(ThumbnailError::Corrupt(format!(
            "the decoder returned {decoded_width} x {decoded_height} pixels \
             but the header gives {width} x {height}"
        )));
    }

    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let mut icc = decoder.icc_profile();

    let wrong_length = || {
        ThumbnailError::Corrupt("the decoder returned fewer pixels than the frame size".to_owned())
    };
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => DynamicImage::ImageLuma8(
            GrayImage::from_raw(decoded_width, decoded_height, pixels).ok_or_else(wrong_length)?,
        ),
        jpeg_decoder::PixelFormat::RGB24 => DynamicImage::ImageRgb8(
            RgbImage::from_raw(decoded_width, decoded_height, pixels).ok_or_else(wrong_length)?,
        ),
        jpeg_decoder::PixelFormat::CMYK32 => {
            let expected = u64::from(decoded_width) * u64::from(decoded_height) * 4;
            if u64::try_from(pixels.len()).unwrap_or(u64::MAX) != expected {
                return Err(wrong_length());
            }
            let profile = icc.take();
            DynamicImage::ImageRgb8(cmyk_to_rgb(
                &mut pixels,
                decoded_width,
                decoded_height,
                has_adobe_marker(bytes),
                profile.as_deref(),
            ))
        }
        jpeg_decoder::PixelFormat::L16 => {
            return Err(ThumbnailError::Unsupported {
                format: "JPEG",
                feature: Some("16-bit lossless JPEG".to_owned()),
            });
        }
    };
    Ok(Source {
        image,
        orientation,
        icc,
    })
}

fn map_jpeg_error(error: jpeg_decoder::Error) -> ThumbnailError {
    match error {
        jpeg_decoder::Error::Unsupported(feature) => ThumbnailError::Unsupported {
            format: "JPEG",
            feature: Some(format!("{feature:?}")),
        },
        other => ThumbnailError::Corrupt(other.to_string()),
    }
}

/// Decodes a PNG, WebP or TIFF with the `image` crate, within [`decode_limits`].
fn decode_with_image(
    bytes: &[u8],
    kind: ImageKind,
    (width, height): (u32, u32),
) -> Result<Source, ThumbnailError> {
    let format = match kind {
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Png => ImageFormat::Png,
        ImageKind::WebP => ImageFormat::WebP,
        ImageKind::Tiff => ImageFormat::Tiff,
    };
    let to_error = |error| map_decode_error(error, kind.name(), width, height);

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
    let icc = decoder.icc_profile().map_err(to_error)?;
    let image = DynamicImage::from_decoder(decoder).map_err(to_error)?;
    // Alpha is flattened at full size, before resizing, so the resize filter
    // never mixes the colour of invisible pixels into visible edges.
    Ok(Source {
        image: flatten_to_8_bit(image),
        orientation,
        icc,
    })
}

fn map_decode_error(
    error: ImageError,
    format: &'static str,
    width: u32,
    height: u32,
) -> ThumbnailError {
    match error {
        // The size itself passed `check_size`, so the decoder needed more
        // memory than its allocation limit for this layout.
        ImageError::Limits(_) => ThumbnailError::NeedsTooMuchMemory {
            format,
            width,
            height,
            megabytes: None,
            advice: EXPORT_SMALLER,
        },
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
    // 8-bit images with alpha are flattened within their own buffer, so the
    // largest accepted image never has a second full-size copy.
    let image = match image {
        DynamicImage::ImageRgba8(rgba) => {
            let (width, height) = rgba.dimensions();
            let rgb = drop_alpha_in_place(rgba.into_raw(), 4);
            return RgbImage::from_raw(width, height, rgb)
                .map(DynamicImage::ImageRgb8)
                .unwrap_or_else(|| DynamicImage::ImageRgb8(RgbImage::new(width, height)));
        }
        DynamicImage::ImageLumaA8(luma_alpha) => {
            let (width, height) = luma_alpha.dimensions();
            let luma = drop_alpha_in_place(luma_alpha.into_raw(), 2);
            return GrayImage::from_raw(width, height, luma)
                .map(DynamicImage::ImageLuma8)
                .unwrap_or_else(|| DynamicImage::ImageLuma8(GrayImage::new(width, height)));
        }
        other => other,
    };
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

/// Composites pixels of `channels` samples, the last one straight alpha, onto
/// white and packs the colour samples to the front of the same buffer, which
/// is then cut to their length.
fn drop_alpha_in_place(mut samples: Vec<u8>, channels: usize) -> Vec<u8> {
    let colours = channels - 1;
    let pixels = samples.len() / channels;
    for pixel in 0..pixels {
        let source = pixel * channels;
        let target = pixel * colours;
        let alpha = samples[source + colours];
        // `target` is at most `source`, and the target range ends before the
        // next pixel's source range starts, so no unread sample is overwritten.
        for channel in 0..colours {
            samples[target + channel] = over_white(samples[source + channel], alpha);
        }
    }
    samples.truncate(pixels * colours);
    samples.shrink_to_fit();
    samples
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

/// Resizes 8-bit RGB or greyscale pixels with a Lanczos3 filter, using the
/// SIMD code paths of `fast_image_resize` (SSE4.1, AVX2 or NEON).
fn resize(
    image: &DynamicImage,
    (width, height): (u32, u32),
) -> Result<DynamicImage, ThumbnailError> {
    if image.width() == width && image.height() == height {
        return Ok(image.clone());
    }
    let pixel_type = match image {
        DynamicImage::ImageLuma8(_) => PixelType::U8,
        _ => PixelType::U8x3,
    };
    let converted;
    let source = match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
        // The decoders above produce only these two, but stay correct for others.
        other => {
            converted = DynamicImage::ImageRgb8(other.to_rgb8());
            &converted
        }
    };

    let resize_error = |error: &dyn std::fmt::Display| ThumbnailError::Encode(error.to_string());
    let source_view = ImageRef::new(
        source.width(),
        source.height(),
        source.as_bytes(),
        pixel_type,
    )
    .map_err(|e| resize_error(&e))?;
    let mut target = fir::images::Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&source_view, &mut target, &options)
        .map_err(|e| resize_error(&e))?;

    let buffer = target.into_vec();
    let resized = match pixel_type {
        PixelType::U8 => GrayImage::from_raw(width, height, buffer).map(DynamicImage::ImageLuma8),
        _ => RgbImage::from_raw(width, height, buffer).map(DynamicImage::ImageRgb8),
    };
    resized
        .ok_or_else(|| ThumbnailError::Encode("the resized buffer has the wrong size".to_owned()))
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
    fn resize_keeps_greyscale() {
        let grey = DynamicImage::ImageLuma8(GrayImage::from_pixel(100, 50, image::Luma([77])));
        let resized = resize(&grey, (10, 5)).expect("resize");
        assert_eq!(resized.color(), image::ColorType::L8);
        assert_eq!((resized.width(), resized.height()), (10, 5));
        assert!(resized.as_bytes().iter().all(|&v| v.abs_diff(77) <= 1));
    }

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
    fn alpha_dropped_in_place() {
        let rgba = vec![10, 20, 30, 255, 0, 0, 0, 0, 200, 100, 0, 128];
        assert_eq!(
            drop_alpha_in_place(rgba, 4),
            vec![10, 20, 30, 255, 255, 255, 227, 177, 127]
        );
        let luma_alpha = vec![0, 255, 0, 0, 100, 128];
        assert_eq!(drop_alpha_in_place(luma_alpha, 2), vec![0, 255, 177]);
    }

    #[test]
    fn tiff_counts_its_second_copy() {
        let mut tiff = Vec::new();
        RgbImage::new(2, 2)
            .write_to(&mut Cursor::new(&mut tiff), ImageFormat::Tiff)
            .expect("encode TIFF");
        // 8-bit RGB: 300 MB of pixels at 100 MP, 600 MB with the copy.
        let error = check_decoded_size(&tiff, ImageKind::Tiff, 10_000, 10_000);
        assert!(
            matches!(
                error,
                Err(ThumbnailError::NeedsTooMuchMemory {
                    format: "TIFF",
                    megabytes: Some(600),
                    ..
                })
            ),
            "{error:?}"
        );
        // 200 MB of pixels, 400 MB with the copy, just fits.
        assert_eq!(
            check_decoded_size(&tiff, ImageKind::Tiff, 10_000, 6_666),
            Ok(())
        );
        let message = error.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("10000 x 10000 pixels"), "{message}");
        assert!(message.contains("about 600 MB"), "{message}");
        assert!(message.contains("maximum is 400 MB"), "{message}");
    }

    #[test]
    fn decoded_size_names_its_parts() {
        let error = ThumbnailError::TooManyBytes {
            format: "PNG",
            width: 10_000,
            height: 10_000,
            bits_per_channel: 16,
            channels: 4,
        };
        let message = error.to_string();
        assert!(message.contains("10000 x 10000 pixels"), "{message}");
        assert!(message.contains("16 bits per channel"), "{message}");
        assert!(message.contains("800 MB"), "{message}");
        assert!(message.contains("maximum of 400 MB"), "{message}");
        assert!(
            message.contains("Export it with 8 bits per channel"),
            "{message}"
        );
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
            ThumbnailError::TooManyBytes {
                format: "PNG",
                width: 1,
                height: 1,
                bits_per_channel: 16,
                channels: 4,
            },
            ThumbnailError::NeedsTooMuchMemory {
                format: "TIFF",
                width: 1,
                height: 1,
                megabytes: None,
                advice: EXPORT_SMALLER,
            },
            ThumbnailError::Corrupt(String::new()),
            ThumbnailError::Encode(String::new()),
        ];
        for error in errors {
            assert!(error.is_permanent(), "{error:?}");
        }
    }
}
