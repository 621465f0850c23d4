//! Writes the largest PNGs that the upload accepts, or makes the thumbnails
//! of one file, so that the peak memory of one thumbnail job can be measured
//! from outside, for example with `/usr/bin/time -v`:
//!
//! ```sh
//! cargo run -p proofsheet-media --example thumbnail_memory -- write rgba8 /tmp/rgba8.png
//! /usr/bin/time -v target/debug/examples/thumbnail_memory thumbnails /tmp/rgba8.png
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use image::ImageEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use proofsheet_media::{MAX_DECODED_BYTES, make_thumbnails, probe_upload};

const USAGE: &str = "usage: thumbnail_memory write (rgba8|rgba16|rgb16) PATH | thumbnails PATH";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["write", layout, path] => write_largest(layout, path),
        ["thumbnails", path] => thumbnails(path),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a PNG in `layout` whose decoded pixels take exactly
/// [`MAX_DECODED_BYTES`], with a smooth gradient so the file stays small.
fn write_largest(layout: &str, path: &str) -> Result<(), String> {
    let (width, height, colour, bytes_per_pixel) = match layout {
        "rgba8" => (10_000u32, 10_000u32, image::ExtendedColorType::Rgba8, 4u64),
        "rgba16" => (10_000, 5_000, image::ExtendedColorType::Rgba16, 8),
        "rgb16" => (10_000, 6_666, image::ExtendedColorType::Rgb16, 6),
        other => return Err(format!("unknown layout {other:?}; {USAGE}")),
    };
    let size = u64::from(width) * u64::from(height) * bytes_per_pixel;
    let row_bytes =
        usize::try_from(u64::from(width) * bytes_per_pixel).map_err(|e| e.to_string())?;
    let mut pixels = Vec::with_capacity(usize::try_from(size).map_err(|e| e.to_string())?);
    for y in 0..height {
        let row: Vec<u8> = (0..row_bytes)
            .map(|i| u8::try_from((i / 64 + y as usize / 40) % 256).unwrap_or(0))
            .collect();
        pixels.extend_from_slice(&row);
    }
    let file = File::create(path).map_err(|e| format!("creating {path} failed: {e}"))?;
    PngEncoder::new_with_quality(BufWriter::new(file), CompressionType::Fast, FilterType::Sub)
        .write_image(&pixels, width, height, colour)
        .map_err(|e| format!("writing {path} failed: {e}"))?;
    println!(
        "{path}: {width} x {height} {layout}, {size} bytes decoded (maximum {MAX_DECODED_BYTES})"
    );
    Ok(())
}

/// Makes the thumbnails of the file at `path` as the worker does, after the
/// upload's header check.
fn thumbnails(path: &str) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path} failed: {e}"))?;
    probe_upload(&bytes, true).map_err(|e| format!("{path}: rejected at upload: {e}"))?;
    let thumbnails = make_thumbnails(&bytes).map_err(|e| format!("{path}: {e}"))?;
    println!(
        "{path}: {} x {}, lightbox-2x {} x {}",
        thumbnails.width,
        thumbnails.height,
        thumbnails.lightbox_2x.width,
        thumbnails.lightbox_2x.height
    );
    Ok(())
}
