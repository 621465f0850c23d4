//! Thumbnail pipeline tests against real camera files in `tests/fixtures`
//! (sources and licences in `tests/fixtures/SOURCES.md`) and hand-built headers.

use std::io::Cursor;
use std::path::PathBuf;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Rgb, RgbImage};
use proofsheet_media::{
    GRID_MAX_SIDE, ImageKind, LIGHTBOX_MAX_SIDE, RenditionSize, ThumbnailError, Thumbnails,
    make_rendition, make_thumbnails, sniff,
};

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

fn thumbnails_of(name: &str) -> Thumbnails {
    make_thumbnails(&fixture(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn decode_jpeg(jpeg: &[u8]) -> DynamicImage {
    image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).expect("output decodes as JPEG")
}

/// Mean absolute difference per channel between two RGB images of the same size.
fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn assert_no_orientation_tag(jpeg: &[u8]) {
    let mut decoder = ImageReader::with_format(Cursor::new(jpeg), ImageFormat::Jpeg)
        .into_decoder()
        .expect("output header parses");
    assert_eq!(decoder.exif_metadata().expect("metadata reads"), None);
    assert_eq!(
        decoder.orientation().expect("orientation reads"),
        Orientation::NoTransforms
    );
}

#[test]
fn orientation_6_and_8_give_landscape() {
    for name in ["recurser-Landscape_6.jpg", "recurser-Landscape_8.jpg"] {
        let thumbnails = thumbnails_of(name);
        assert_eq!(
            (thumbnails.width, thumbnails.height),
            (1800, 1200),
            "{name}"
        );
        assert_eq!(
            (thumbnails.grid.width, thumbnails.grid.height),
            (480, 320),
            "{name}"
        );
        assert_eq!(
            (thumbnails.lightbox.width, thumbnails.lightbox.height),
            (1024, 683),
            "{name}"
        );

        let grid = decode_jpeg(&thumbnails.grid.jpeg);
        assert_eq!((grid.width(), grid.height()), (480, 320), "{name}");
        let lightbox = decode_jpeg(&thumbnails.lightbox.jpeg);
        assert_eq!((lightbox.width(), lightbox.height()), (1024, 683), "{name}");

        assert_no_orientation_tag(&thumbnails.grid.jpeg);
        assert_no_orientation_tag(&thumbnails.lightbox.jpeg);
    }
}

#[test]
fn orientation_turns_pixels_upright() {
    // The files show the same landscape, stored in different orientations. Only
    // the drawn digit differs, so upright outputs differ little.
    let upright = decode_jpeg(&thumbnails_of("recurser-Landscape_1.jpg").grid.jpeg).to_rgb8();

    // Control: the metric must tell a wrong rotation from a right one.
    let turned = image::imageops::rotate180(&upright);
    let wrong = mean_abs_diff(&upright, &turned);
    assert!(
        wrong > 30.0,
        "upright vs rotated 180 differ by only {wrong:.1}"
    );

    for name in ["recurser-Landscape_6.jpg", "recurser-Landscape_8.jpg"] {
        let oriented = decode_jpeg(&thumbnails_of(name).grid.jpeg).to_rgb8();
        let difference = mean_abs_diff(&upright, &oriented);
        assert!(
            difference < 10.0,
            "{name} differs from the upright photo by {difference:.1} per channel"
        );
    }
}

/// Builds a minimal big-endian EXIF (TIFF) block with one Orientation entry.
fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut exif = b"MM\0\x2a\0\0\0\x08".to_vec();
    exif.extend_from_slice(&1u16.to_be_bytes()); // entry count
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // tag: Orientation
    exif.extend_from_slice(&3u16.to_be_bytes()); // type: SHORT
    exif.extend_from_slice(&1u32.to_be_bytes()); // count
    exif.extend_from_slice(&orientation.to_be_bytes());
    exif.extend_from_slice(&[0, 0]); // value padding
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    exif
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

/// Returns the colour name of the quadrant that contains the pixel at (x, y).
fn colour_at(image: &RgbImage, x: u32, y: u32) -> &'static str {
    let pixel = image.get_pixel(x, y).0;
    let named = [
        ("red", RED),
        ("green", GREEN),
        ("blue", BLUE),
        ("white", WHITE),
    ];
    named
        .iter()
        .min_by_key(|(_, colour)| {
            colour
                .iter()
                .zip(pixel)
                .map(|(&c, p)| u32::from(c.abs_diff(p)))
                .sum::<u32>()
        })
        .map(|(name, _)| *name)
        .expect("the list is not empty")
}

#[test]
fn all_eight_orientations() {
    // Stored 64 x 32 with red top-left, green top-right, blue bottom-left and
    // white bottom-right quadrants.
    let stored = RgbImage::from_fn(64, 32, |x, y| {
        Rgb(match (x < 32, y < 16) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => WHITE,
        })
    });

    // Expected colours at the displayed top-left, top-right, bottom-left and
    // bottom-right corners, from the EXIF definition of each Orientation value.
    let cases = [
        (1, ["red", "green", "blue", "white"]),
        (2, ["green", "red", "white", "blue"]),
        (3, ["white", "blue", "green", "red"]),
        (4, ["blue", "white", "red", "green"]),
        (5, ["red", "blue", "green", "white"]),
        (6, ["blue", "red", "white", "green"]),
        (7, ["white", "green", "blue", "red"]),
        (8, ["green", "white", "red", "blue"]),
    ];

    for (orientation, [top_left, top_right, bottom_left, bottom_right]) in cases {
        let mut jpeg = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 95);
        encoder
            .set_exif_metadata(exif_with_orientation(orientation))
            .expect("the JPEG encoder accepts EXIF");
        encoder
            .write_image(stored.as_raw(), 64, 32, image::ExtendedColorType::Rgb8)
            .expect("test image encodes");

        let thumbnails = make_thumbnails(&jpeg).expect("thumbnails");
        let expected_size = if orientation >= 5 { (32, 64) } else { (64, 32) };
        assert_eq!(
            (thumbnails.width, thumbnails.height),
            expected_size,
            "orientation {orientation}"
        );

        let output = decode_jpeg(&thumbnails.grid.jpeg).to_rgb8();
        let (right, bottom) = (output.width() - 4, output.height() - 4);
        let corners = [
            colour_at(&output, 3, 3),
            colour_at(&output, right, 3),
            colour_at(&output, 3, bottom),
            colour_at(&output, right, bottom),
        ];
        assert_eq!(
            corners,
            [top_left, top_right, bottom_left, bottom_right],
            "orientation {orientation}: corners top-left, top-right, bottom-left, bottom-right"
        );
    }
}

#[test]
fn greyscale_stays_grey() {
    let thumbnails = thumbnails_of("immich-greyscale-orientation6.jpg");
    assert_eq!((thumbnails.width, thumbnails.height), (840, 700));
    assert_eq!(
        (thumbnails.lightbox.width, thumbnails.lightbox.height),
        (840, 700)
    );
    assert_eq!((thumbnails.grid.width, thumbnails.grid.height), (480, 400));

    for jpeg in [&thumbnails.lightbox.jpeg, &thumbnails.grid.jpeg] {
        let decoded = decode_jpeg(jpeg);
        assert!(
            !decoded.color().has_color(),
            "output colour type is {:?}",
            decoded.color()
        );
        let rgb = decoded.to_rgb8();
        let coloured = rgb
            .pixels()
            .filter(|p| p[0] != p[1] || p[1] != p[2])
            .count();
        assert_eq!(coloured, 0, "pixels with R, G and B not all equal");
    }
}

#[test]
fn transparency_becomes_white() {
    let source = image::load_from_memory(&fixture("pillow-transparent-rgba.png"))
        .expect("fixture decodes")
        .to_rgba8();
    let thumbnails = thumbnails_of("pillow-transparent-rgba.png");
    assert_eq!((thumbnails.width, thumbnails.height), (200, 150));
    assert_eq!(
        (thumbnails.lightbox.width, thumbnails.lightbox.height),
        (200, 150)
    );
    let output = decode_jpeg(&thumbnails.lightbox.jpeg).to_rgb8();

    // Check only transparent pixels at least 8 pixels from any visible one,
    // because JPEG blurs colour edges across its 8 x 8 blocks and subsampled chroma.
    let clear_around = |x: u32, y: u32| {
        let columns = x.saturating_sub(8)..(x + 9).min(source.width());
        columns.into_iter().all(|nx| {
            let rows = y.saturating_sub(8)..(y + 9).min(source.height());
            rows.into_iter().all(|ny| source.get_pixel(nx, ny)[3] == 0)
        })
    };
    let mut checked = 0;
    for (x, y, pixel) in output.enumerate_pixels() {
        if clear_around(x, y) {
            checked += 1;
            assert!(
                pixel.0.iter().all(|&c| c >= 245),
                "pixel ({x}, {y}) is {:?}, expected white",
                pixel.0
            );
        }
    }
    assert!(checked > 1000, "only {checked} transparent pixels checked");
}

#[test]
fn sixteen_bit_png_decodes() {
    let source =
        image::load_from_memory(&fixture("pngsuite-basn2c16-16bit.png")).expect("fixture decodes");
    assert_eq!(source.color(), image::ColorType::Rgb16);

    let thumbnails = thumbnails_of("pngsuite-basn2c16-16bit.png");
    assert_eq!((thumbnails.width, thumbnails.height), (32, 32));
    assert_eq!((thumbnails.grid.width, thumbnails.grid.height), (32, 32));

    // Wrong byte order or truncation to the low byte shows up as noise.
    let output = decode_jpeg(&thumbnails.grid.jpeg).to_rgb8();
    let difference = mean_abs_diff(&source.to_rgb8(), &output);
    assert!(
        difference < 6.0,
        "output differs from the source by {difference:.1}"
    );
}

#[test]
fn one_pixel_stays_one_pixel() {
    let thumbnails = thumbnails_of("mozilla-1x1.jpg");
    assert_eq!((thumbnails.width, thumbnails.height), (1, 1));
    assert_eq!((thumbnails.grid.width, thumbnails.grid.height), (1, 1));
    assert_eq!(
        (thumbnails.lightbox.width, thumbnails.lightbox.height),
        (1, 1)
    );
    let decoded = decode_jpeg(&thumbnails.grid.jpeg);
    assert_eq!((decoded.width(), decoded.height()), (1, 1));
}

#[test]
fn renditions_fit_limits() {
    let thumbnails = thumbnails_of("recurser-Landscape_1.jpg");
    assert_eq!((thumbnails.width, thumbnails.height), (1800, 1200));
    assert_eq!(thumbnails.grid.width, GRID_MAX_SIDE);
    assert_eq!(thumbnails.lightbox.width, LIGHTBOX_MAX_SIDE);
    assert_eq!(sniff(&thumbnails.grid.jpeg), Some(ImageKind::Jpeg));
}

#[test]
fn truncated_progressive_jpeg_is_corrupt() {
    let result = make_thumbnails(&fixture("pillow-truncated-progressive.jpg"));
    assert!(
        matches!(result, Err(ThumbnailError::Corrupt(_))),
        "{result:?}"
    );
}

#[test]
fn truncated_baseline_jpeg_is_corrupt() {
    let bytes = fixture("recurser-Landscape_1.jpg");
    for len in [bytes.len() / 2, bytes.len() - 2, bytes.len() - 1] {
        let result = make_thumbnails(&bytes[..len]);
        assert!(
            matches!(result, Err(ThumbnailError::Corrupt(_))),
            "cut to {len} bytes: {result:?}"
        );
    }
}

#[test]
fn truncated_png_is_corrupt() {
    let bytes = fixture("pillow-transparent-rgba.png");
    for len in [100, bytes.len() / 2, bytes.len() - 12] {
        let result = make_thumbnails(&bytes[..len]);
        assert!(
            matches!(result, Err(ThumbnailError::Corrupt(_))),
            "cut to {len} bytes: {result:?}"
        );
    }
}

#[test]
fn pdf_is_not_an_image() {
    let bytes = fixture("notanimage-blankpage-pdf.jpg");
    assert_eq!(sniff(&bytes), None);
    let error = make_thumbnails(&bytes).expect_err("a PDF must be rejected");
    assert_eq!(error, ThumbnailError::NotAnImage);
    assert!(error.is_permanent());
    assert_eq!(
        error.to_string(),
        "This file is not a JPEG, PNG, WebP or TIFF image. Export it as JPEG and upload it again."
    );
}

#[test]
fn heic_is_unsupported() {
    let bytes = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic";
    let error = make_thumbnails(bytes).expect_err("HEIC must be rejected");
    assert_eq!(
        error,
        ThumbnailError::Unsupported {
            format: "HEIC",
            feature: None
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("HEIC images are not supported yet.")
    );
}

/// CRC-32 as PNG chunks use it (ISO 3309, reflected polynomial 0xEDB88320).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Builds a PNG signature and a valid IHDR chunk for an 8-bit RGB image, with
/// no pixel data. Decoding would fail, so only a header check can produce TooLarge.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // bit depth, colour type RGB, methods
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png
}

#[test]
fn huge_png_header_is_too_large() {
    for (width, height) in [
        (30_000, 30_000),
        (20_001, 10),
        (10, 20_001),
        (10_001, 10_000),
    ] {
        let error = make_thumbnails(&png_header(width, height)).expect_err("must be rejected");
        assert_eq!(error, ThumbnailError::TooLarge { width, height });
        assert!(error.is_permanent());
    }
    let message = ThumbnailError::TooLarge {
        width: 30_000,
        height: 30_000,
    }
    .to_string();
    assert!(message.contains("30000 x 30000 pixels"), "{message}");
}

#[test]
fn huge_jpeg_header_is_too_large() {
    // SOI, then a baseline SOF0 declaring 30000 x 30000 with one component, and
    // no scan data.
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
    jpeg.extend_from_slice(&30_000u16.to_be_bytes());
    jpeg.extend_from_slice(&30_000u16.to_be_bytes());
    jpeg.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    let error = make_thumbnails(&jpeg).expect_err("must be rejected");
    assert_eq!(
        error,
        ThumbnailError::TooLarge {
            width: 30_000,
            height: 30_000
        }
    );
}

#[test]
fn error_messages_say_what_to_do() {
    let corrupt = ThumbnailError::Corrupt("the file ends early".to_owned()).to_string();
    assert!(
        corrupt.contains("Upload the original file again"),
        "{corrupt}"
    );
    assert!(corrupt.contains("the file ends early"), "{corrupt}");
}

#[test]
fn every_rendition_has_its_size() {
    let thumbnails = thumbnails_of("recurser-Landscape_6.jpg");
    for (size, rendition) in thumbnails.renditions() {
        let expected = size.fit(1800, 1200);
        assert_eq!((rendition.width, rendition.height), expected, "{size:?}");
        let decoded = decode_jpeg(&rendition.jpeg);
        assert_eq!((decoded.width(), decoded.height()), expected, "{size:?}");
        assert_no_orientation_tag(&rendition.jpeg);
    }
    assert_eq!(
        (thumbnails.lightbox_2x.width, thumbnails.lightbox_2x.height),
        (1800, 1200),
        "no upscaling beyond the original"
    );
    assert_eq!(
        (thumbnails.grid_2x.width, thumbnails.grid_2x.height),
        (960, 640)
    );
}

/// Mean of each channel over the 9 x 9 pixels centred on (x, y).
fn patch_mean(image: &RgbImage, x: u32, y: u32) -> [f64; 3] {
    let mut sum = [0.0; 3];
    for py in y - 4..=y + 4 {
        for px in x - 4..=x + 4 {
            for (total, value) in sum.iter_mut().zip(image.get_pixel(px, py).0) {
                *total += f64::from(value);
            }
        }
    }
    sum.map(|total| total / 81.0)
}

fn assert_close(actual: [f64; 3], expected: [u8; 3], tolerance: f64, what: &str) {
    for (channel, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - f64::from(e)).abs() <= tolerance,
            "{what}: channel {channel} is {a:.1}, reference {e} (tolerance {tolerance}); pixel {actual:?}"
        );
    }
}

/// Centres of the four 32 x 32 patches of the `*-patches.jpg` fixtures.
const PATCH_CENTRES: [(u32, u32); 4] = [(16, 16), (48, 16), (16, 48), (48, 48)];

#[test]
fn adobe_rgb_is_converted_to_srgb() {
    // Reference: the fixture decoded by Pillow 13 and converted with LittleCMS 2
    // (ImageCms.profileToProfile, relative colorimetric intent). The stored
    // Adobe RGB values are (220, 60, 40), (60, 180, 90), (50, 90, 200) and grey 128.
    let reference = [[255, 57, 34], [0, 181, 83], [0, 90, 205], [129, 129, 129]];
    let output = decode_jpeg(&thumbnails_of("adobe-rgb-patches.jpg").lightbox.jpeg).to_rgb8();
    for ((x, y), expected) in PATCH_CENTRES.into_iter().zip(reference) {
        assert_close(
            patch_mean(&output, x, y),
            expected,
            4.0,
            &format!("patch at ({x}, {y})"),
        );
    }
}

#[test]
fn display_p3_is_converted_to_srgb() {
    // Reference as for Adobe RGB, with Apple's Display P3 profile taken from
    // an iPhone HEIC file.
    let reference = [[241, 35, 17], [0, 183, 78], [34, 91, 208], [128, 128, 128]];
    let output = decode_jpeg(&thumbnails_of("display-p3-patches.jpg").lightbox.jpeg).to_rgb8();
    for ((x, y), expected) in PATCH_CENTRES.into_iter().zip(reference) {
        assert_close(
            patch_mean(&output, x, y),
            expected,
            4.0,
            &format!("patch at ({x}, {y})"),
        );
    }
}

/// Mean colour of each cell of a 6 x 6 grid over the image, row by row.
fn cell_means(image: &RgbImage) -> Vec<[f64; 3]> {
    let (width, height) = image.dimensions();
    let mut cells = Vec::new();
    for row in 0..6 {
        for column in 0..6 {
            let (x0, x1) = (column * width / 6, (column + 1) * width / 6);
            let (y0, y1) = (row * height / 6, (row + 1) * height / 6);
            let mut sum = [0.0; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    for (total, value) in sum.iter_mut().zip(image.get_pixel(x, y).0) {
                        *total += f64::from(value);
                    }
                }
            }
            let count = f64::from((x1 - x0) * (y1 - y0));
            cells.push(sum.map(|total| total / count));
        }
    }
    cells
}

fn assert_cells_close(name: &str, reference: &[[u8; 3]; 36], tolerance: f64) {
    let thumbnails = thumbnails_of(name);
    let output = decode_jpeg(&thumbnails.lightbox.jpeg);
    assert!(output.color().has_color(), "{name}: output is not RGB");
    let cells = cell_means(&output.to_rgb8());
    for (index, (actual, expected)) in cells.into_iter().zip(reference).enumerate() {
        assert_close(
            actual,
            *expected,
            tolerance,
            &format!("{name}, cell {index}"),
        );
    }
}

#[test]
fn adobe_cmyk_matches_reference() {
    // Reference: Pillow 13's CMYK to RGB conversion of the same file, averaged
    // over a 6 x 6 grid. An inverted (negative) decode is off by over 100.
    let reference = [
        [80, 7, 11],
        [10, 4, 6],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [9, 4, 6],
        [29, 5, 7],
        [19, 5, 6],
        [23, 5, 7],
        [28, 5, 7],
        [4, 4, 5],
        [63, 8, 11],
        [158, 12, 18],
        [128, 11, 16],
        [40, 7, 9],
        [132, 10, 16],
        [82, 8, 11],
        [31, 6, 8],
        [68, 7, 10],
        [55, 7, 9],
        [28, 6, 7],
        [63, 7, 10],
        [18, 5, 6],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
        [1, 4, 5],
    ];
    let thumbnails = thumbnails_of("pillow-cmyk-adobe.jpg");
    assert_eq!((thumbnails.width, thumbnails.height), (100, 100));
    assert_cells_close("pillow-cmyk-adobe.jpg", &reference, 6.0);
}

#[test]
fn second_cmyk_matches_reference() {
    let reference = [
        [251, 254, 254],
        [246, 253, 253],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
        [252, 254, 254],
        [245, 253, 253],
        [255, 255, 254],
        [253, 253, 232],
        [254, 254, 247],
        [255, 255, 255],
        [255, 255, 255],
        [250, 239, 250],
        [247, 233, 247],
        [253, 252, 251],
        [255, 255, 254],
        [255, 255, 255],
        [255, 255, 255],
        [252, 249, 252],
        [251, 246, 251],
        [254, 254, 254],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
        [242, 241, 241],
        [234, 232, 232],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
        [252, 251, 251],
        [248, 248, 248],
        [255, 255, 255],
        [255, 255, 255],
        [255, 255, 255],
    ];
    let thumbnails = thumbnails_of("mozilla-cmyk-256.jpg");
    assert_eq!((thumbnails.width, thumbnails.height), (256, 256));
    assert_cells_close("mozilla-cmyk-256.jpg", &reference, 6.0);
}

#[test]
fn progressive_odd_size_decodes_fully() {
    // 1279 x 853, neither a multiple of 8 nor of 16, progressive.
    let name = "immich-handwritten-notes-1279-progressive.jpg";
    let thumbnails = thumbnails_of(name);
    assert_eq!((thumbnails.width, thumbnails.height), (1279, 853));
    assert_eq!(
        (thumbnails.lightbox.width, thumbnails.lightbox.height),
        (1024, 683)
    );

    // The source decoded in full by `image` (zune-jpeg) and resized is the
    // reference: a decoder that stopped after the first scans gives a blurred
    // image, and a bad edge gives a dark last column.
    let source = image::load_from_memory(&fixture(name)).expect("fixture decodes");
    let reference = source
        .resize_exact(1024, 683, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let output = decode_jpeg(&thumbnails.lightbox.jpeg).to_rgb8();
    let difference = mean_abs_diff(&reference, &output);
    assert!(
        difference < 3.0,
        "output differs from the reference by {difference:.1}"
    );

    let last_column = 1023;
    for y in (0..683).step_by(50) {
        let edge = output.get_pixel(last_column, y).0;
        let inside = reference.get_pixel(last_column, y).0;
        for (e, i) in edge.iter().zip(inside) {
            assert!(
                e.abs_diff(i) < 40,
                "edge pixel at y {y} is {edge:?}, reference {inside:?}"
            );
        }
    }
}

#[test]
fn scaled_decoding_matches_full_decode() {
    // 1279 px to 480 px lets the decoder scale by 1/2 in the DCT domain.
    let name = "immich-handwritten-notes-1279-progressive.jpg";
    let rendition = make_rendition(&fixture(name), 480).expect("rendition");
    assert_eq!((rendition.width, rendition.height), (480, 320));
    let source = image::load_from_memory(&fixture(name)).expect("fixture decodes");
    let reference = source
        .resize_exact(480, 320, image::imageops::FilterType::Lanczos3)
        .to_rgb8();
    let difference = mean_abs_diff(&reference, &decode_jpeg(&rendition.jpeg).to_rgb8());
    assert!(
        difference < 3.0,
        "output differs from the reference by {difference:.1}"
    );
}

#[test]
fn webp_decodes() {
    let thumbnails = thumbnails_of("immich-denali-canon7d.webp");
    assert_eq!((thumbnails.width, thumbnails.height), (600, 315));
    assert_eq!((thumbnails.grid.width, thumbnails.grid.height), (480, 252));
    let source = image::load_from_memory(&fixture("immich-denali-canon7d.webp"))
        .expect("fixture decodes")
        .to_rgb8();
    let output = decode_jpeg(&thumbnails.lightbox.jpeg).to_rgb8();
    let difference = mean_abs_diff(&source, &output);
    assert!(
        difference < 4.0,
        "output differs from the source by {difference:.1}"
    );
}

#[test]
fn tiff_decodes() {
    let thumbnails = thumbnails_of("pillow-hopper.tif");
    assert_eq!((thumbnails.width, thumbnails.height), (128, 128));
    assert_eq!((thumbnails.grid.width, thumbnails.grid.height), (128, 128));
    let source = image::load_from_memory(&fixture("pillow-hopper.tif"))
        .expect("fixture decodes")
        .to_rgb8();
    let output = decode_jpeg(&thumbnails.grid.jpeg).to_rgb8();
    let difference = mean_abs_diff(&source, &output);
    assert!(
        difference < 4.0,
        "output differs from the source by {difference:.1}"
    );
}

#[test]
fn rendition_sizes_fit_limits() {
    assert_eq!(RenditionSize::Grid.max_side(), GRID_MAX_SIDE);
    assert_eq!(RenditionSize::Grid2x.max_side(), GRID_MAX_SIDE * 2);
    assert_eq!(RenditionSize::Lightbox.max_side(), LIGHTBOX_MAX_SIDE);
    assert_eq!(RenditionSize::Lightbox2x.max_side(), LIGHTBOX_MAX_SIDE * 2);
}

/// Returns the JPEG without its Adobe APP14 segments, which sit among the
/// segments before the first scan.
fn without_adobe_segment(jpeg: &[u8]) -> Vec<u8> {
    let mut output = jpeg[..2].to_vec();
    let mut position = 2;
    while jpeg[position] == 0xFF && jpeg[position + 1] != 0xDA {
        let length = usize::from(u16::from_be_bytes([jpeg[position + 2], jpeg[position + 3]]));
        let end = position + 2 + length;
        let is_adobe = jpeg[position + 1] == 0xEE && jpeg[position + 4..end].starts_with(b"Adobe");
        if !is_adobe {
            output.extend_from_slice(&jpeg[position..end]);
        }
        position = end;
    }
    output.extend_from_slice(&jpeg[position..]);
    output
}

#[test]
fn inverted_cmyk_without_adobe_segment() {
    // The file stores inverted CMYK, as Adobe software does. Without the
    // segment that marks it, the plain reading would be almost black.
    let original = fixture("mozilla-cmyk-256.jpg");
    let stripped = without_adobe_segment(&original);
    assert_eq!(
        original.len() - stripped.len(),
        16,
        "one APP14 segment removed"
    );

    let expected = decode_jpeg(&thumbnails_of("mozilla-cmyk-256.jpg").lightbox.jpeg).to_rgb8();
    let thumbnails = make_thumbnails(&stripped).expect("thumbnails without the segment");
    let actual = decode_jpeg(&thumbnails.lightbox.jpeg).to_rgb8();

    let difference = mean_abs_diff(&actual, &expected);
    assert!(difference < 1.0, "differs by {difference} per channel");
}
