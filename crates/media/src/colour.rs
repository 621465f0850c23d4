//! Colour conversion to sRGB: embedded ICC profiles and CMYK JPEGs.

use image::{DynamicImage, RgbImage};
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// Converts CMYK samples, four bytes per pixel as the JPEG decoder returns
/// them, to sRGB.
///
/// `jpeg-decoder` 0.3 treats every four-component JPEG as inverted (the Adobe
/// convention, 255 means no ink) and inverts it back, so `adobe` tells whether
/// that was right: without an Adobe APP14 segment the samples are normally
/// stored plain and are inverted again here. Some writers store inverted
/// samples without the segment, so a file without it whose plain reading is
/// almost entirely dark is read inverted instead (see [`reads_as_inverted`]).
/// With a CMYK ICC profile the conversion uses it; without one it uses the
/// device-independent formula that Pillow and browsers use,
/// R = (1 - C) x (1 - K) and likewise for G and B.
pub(crate) fn cmyk_to_rgb(
    samples: &mut [u8],
    width: u32,
    height: u32,
    adobe: bool,
    icc: Option<&[u8]>,
) -> RgbImage {
    if !adobe && !reads_as_inverted(samples) {
        for sample in samples.iter_mut() {
            *sample = 255 - *sample;
        }
    }

    if let Some(rgb) = icc.and_then(|icc| cmyk_with_profile(samples, icc))
        && let Some(image) = RgbImage::from_raw(width, height, rgb)
    {
        return image;
    }

    let rgb: Vec<u8> = samples
        .chunks_exact(4)
        .flat_map(|ink| {
            let white = 255 - u32::from(ink[3]);
            let channel = |c: u8| {
                let value = (255 - u32::from(c)) * white / 255;
                // Both factors are at most 255, so the quotient fits.
                u8::try_from(value).unwrap_or(u8::MAX)
            };
            [channel(ink[0]), channel(ink[1]), channel(ink[2])]
        })
        .collect();
    // The decoder returns width x height x 4 samples, so the RGB buffer has
    // exactly the size the constructor checks for.
    RgbImage::from_raw(width, height, rgb).unwrap_or_else(|| RgbImage::new(width, height))
}

/// Mean channel value, on the 0 to 255 scale of the CMYK formula, under
/// which the plain reading counts as almost black for [`reads_as_inverted`]
/// (about 19%).
const ALMOST_BLACK_MEAN: u64 = 48;

/// Returns whether the samples of a JPEG without an Adobe segment, as the
/// decoder returns them (already inverted once), are better read as inverted
/// ink: the plain reading's mean channel value is under [`ALMOST_BLACK_MEAN`]
/// and the inverted reading's is more than twice as high.
///
/// Stored plain, such a file is a nearly black picture. Stored inverted by a
/// writer that left out the segment, it is an ordinary picture that the plain
/// reading turns almost black. Photos are rarely almost black, so the
/// inverted reading is the likelier one.
///
/// NOTE: a genuinely near-black CMYK JPEG without an Adobe segment is read
/// inverted and comes out light. No marker in the file tells the two apart.
fn reads_as_inverted(decoded: &[u8]) -> bool {
    let mut channels: u64 = 0;
    let mut plain_sum: u64 = 0;
    let mut inverted_sum: u64 = 0;
    for pixel in decoded.chunks_exact(4) {
        // In the plain reading the ink is 255 minus each decoded value, so
        // the formula's (1 - ink) factors are the decoded values themselves.
        // In the inverted reading the decoded values are the ink.
        let white_plain = u64::from(pixel[3]);
        let white_inverted = 255 - white_plain;
        for &value in &pixel[..3] {
            let value = u64::from(value);
            plain_sum += value * white_plain / 255;
            inverted_sum += (255 - value) * white_inverted / 255;
        }
        channels += 3;
    }
    channels > 0 && plain_sum < ALMOST_BLACK_MEAN * channels && inverted_sum > 2 * plain_sum
}

/// Converts CMYK ink values with a CMYK ICC profile, or returns `None` when
/// the profile is not a usable CMYK profile.
fn cmyk_with_profile(samples: &[u8], icc: &[u8]) -> Option<Vec<u8>> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
    if profile.color_space != DataColorSpace::Cmyk {
        return None;
    }
    let transform = profile
        .create_transform_8bit(
            Layout::Rgba,
            &ColorProfile::new_srgb(),
            Layout::Rgb,
            TransformOptions::default(),
        )
        .ok()?;
    let mut rgb = vec![0; samples.len() / 4 * 3];
    transform.transform(samples, &mut rgb).ok()?;
    Some(rgb)
}

/// Converts an 8-bit RGB image from its embedded ICC profile to sRGB.
///
/// Greyscale images are left as they are, because a grey profile differs
/// from sRGB's tone curve by only a few levels. A profile that does not parse
/// or does not describe RGB data is ignored, as browsers do, and the pixels
/// are taken to be sRGB.
pub(crate) fn convert_to_srgb(image: &mut DynamicImage, icc: &[u8]) {
    let DynamicImage::ImageRgb8(rgb) = image else {
        return;
    };
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    if profile.color_space != DataColorSpace::Rgb {
        return;
    }
    let Ok(transform) = profile.create_transform_8bit(
        Layout::Rgb,
        &ColorProfile::new_srgb(),
        Layout::Rgb,
        TransformOptions::default(),
    ) else {
        return;
    };
    let mut converted = vec![0; rgb.as_raw().len()];
    if transform.transform(rgb.as_raw(), &mut converted).is_ok()
        && let Some(converted) = RgbImage::from_raw(rgb.width(), rgb.height(), converted)
    {
        *rgb = converted;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cmyk_formula() {
        // Ink values as the decoder returns them for an Adobe file.
        let mut samples = vec![0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 255, 0, 128, 255, 0];
        let rgb = cmyk_to_rgb(&mut samples, 4, 1, true, None);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [0, 255, 255]);
        assert_eq!(rgb.get_pixel(2, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(3, 0).0, [255, 127, 0]);
    }

    #[test]
    fn non_adobe_cmyk_is_inverted_back() {
        // Without the Adobe segment, the decoder's output is the inverse of the ink.
        let mut samples = vec![255, 255, 255, 255];
        let rgb = cmyk_to_rgb(&mut samples, 1, 1, false, None);
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    }

    /// A 32 x 32 picture of light and middle tones as CMYK ink, 0 meaning no
    /// ink, with a few pixels of full black.
    fn ink_picture() -> Vec<u8> {
        let mut ink = Vec::new();
        for y in 0..32u8 {
            for x in 0..32u8 {
                let black = if x < 2 && y < 2 { 255 } else { y * 3 };
                ink.extend_from_slice(&[x * 4, y * 4, (x + y) * 2, black]);
            }
        }
        ink
    }

    /// Returns the samples as the decoder returns them for a file without an
    /// Adobe segment: it inverts every stored value once.
    fn decoded(stored: &[u8]) -> Vec<u8> {
        stored.iter().map(|value| 255 - value).collect()
    }

    fn mean_brightness(image: &RgbImage) -> f64 {
        let sum: u64 = image.as_raw().iter().map(|&value| u64::from(value)).sum();
        sum as f64 / image.as_raw().len() as f64
    }

    #[test]
    fn marker_less_cmyk_renders_in_both_forms() {
        let ink = ink_picture();
        let inverted_ink: Vec<u8> = ink.iter().map(|value| 255 - value).collect();

        let mut plain_file = decoded(&ink);
        let from_plain = cmyk_to_rgb(&mut plain_file, 32, 32, false, None);
        let mut inverted_file = decoded(&inverted_ink);
        let from_inverted = cmyk_to_rgb(&mut inverted_file, 32, 32, false, None);

        assert!(
            mean_brightness(&from_plain) > 128.0,
            "plain file renders dark: {}",
            mean_brightness(&from_plain)
        );
        assert_eq!(from_plain, from_inverted);
        // The pixels of full black ink stay black.
        assert_eq!(from_inverted.get_pixel(0, 0).0, [0, 0, 0]);
    }

    #[test]
    fn marker_less_dark_cmyk_stays_plain() {
        // Three quarters of the picture in full black ink, the rest without
        // ink: dark, but not almost entirely, so it is read as stored.
        let ink: Vec<u8> = (0..64)
            .flat_map(|index| if index < 48 { [0, 0, 0, 255] } else { [0; 4] })
            .collect();
        let mut samples = decoded(&ink);
        let rgb = cmyk_to_rgb(&mut samples, 8, 8, false, None);
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(rgb.get_pixel(7, 7).0, [255, 255, 255]);
    }

    #[test]
    fn srgb_profile_keeps_colours() {
        let srgb = ColorProfile::new_srgb()
            .encode()
            .expect("the built-in sRGB profile encodes");
        let source = RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([(x * 16) as u8, (y * 16) as u8, 128])
        });
        let mut image = DynamicImage::ImageRgb8(source.clone());
        convert_to_srgb(&mut image, &srgb);
        let converted = image.to_rgb8();
        for (a, b) in source.as_raw().iter().zip(converted.as_raw()) {
            assert!(a.abs_diff(*b) <= 2, "{a} became {b}");
        }
    }

    #[test]
    fn invalid_profile_is_ignored() {
        let source = RgbImage::from_pixel(2, 2, image::Rgb([10, 20, 30]));
        let mut image = DynamicImage::ImageRgb8(source.clone());
        convert_to_srgb(&mut image, b"not a profile");
        assert_eq!(image.to_rgb8(), source);
    }
}
