//! Compares this crate's thumbnail pipeline with libvips' `vipsthumbnail` on
//! the same full-size camera JPEGs, to the same 1024 px output, in one run.
//!
//! Run it with `make bench-thumbnails`. The photos come from the folder in
//! `BENCH_PHOTOS_DIR` (every JPEG of at least 8 megapixels in it); without
//! one, the bench generates 24-megapixel JPEGs and prints that it did. Each side runs as
//! its own process under `/usr/bin/time`, so wall time and peak memory
//! (maximum resident set size) are measured the same way for both. Each side
//! runs twice: on one thread (`VIPS_CONCURRENCY=1` for libvips), then with
//! every core, where ours processes one file per thread as the worker does
//! and libvips uses its own thread pool. The last line is the ratio of the
//! every-core runs.
//!
//! `BENCH_ROUNDS` (default 3) repeats the file list to lengthen the run.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use proofsheet_media::{ImageKind, JPEG_QUALITY, make_rendition, sniff};

/// Maximum length of the longest side of the compared output, in pixels.
const TARGET_SIDE: u32 = 1024;
/// Smallest photo, in pixels, that counts as a full-size camera file.
const MIN_PIXELS: u64 = 8_000_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; it carries no meaning here.
    let args: Vec<String> = args.into_iter().filter(|a| a != "--bench").collect();
    let result = match args.first().map(String::as_str) {
        Some("--run-ours") => run_ours(&args[1..]),
        _ => compare(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-thumbnails: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Child mode: `--run-ours JOBS OUT_DIR FILE...` makes one rendition per file
/// on JOBS threads and writes it to OUT_DIR.
fn run_ours(args: &[String]) -> Result<(), String> {
    let [jobs, out_dir, files @ ..] = args else {
        return Err("usage: --run-ours JOBS OUT_DIR FILE...".to_owned());
    };
    let jobs: usize = jobs
        .parse()
        .map_err(|_| format!("JOBS must be a number, got {jobs:?}"))?;
    let next = AtomicUsize::new(0);
    let failures = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut failures = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(index) else {
                            return failures;
                        };
                        if let Err(error) =
                            thumbnail_one(Path::new(file), Path::new(out_dir), index)
                        {
                            failures.push(error);
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| vec!["a thread panicked".into()])
            })
            .collect::<Vec<String>>()
    });
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(format!("{} files failed; first: {first}", failures.len())),
    }
}

fn thumbnail_one(file: &Path, out_dir: &Path, index: usize) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let rendition =
        make_rendition(&bytes, TARGET_SIDE).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = out_dir.join(format!("{index}.jpg"));
    std::fs::write(&out, rendition.jpeg).map_err(|e| format!("writing {}: {e}", out.display()))
}

/// Figures of one side of the comparison.
struct Measured {
    seconds: f64,
    peak_kib: u64,
}

fn compare() -> Result<(), String> {
    let rounds: usize = match std::env::var("BENCH_ROUNDS") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("BENCH_ROUNDS must be a number, got {value:?}"))?,
        Err(_) => 3,
    };
    let scratch = tempfile::tempdir().map_err(|e| format!("creating a temporary folder: {e}"))?;
    let photos = find_or_generate_photos(scratch.path())?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    println!("photos ({}):", photos.len());
    for photo in &photos {
        let bytes =
            std::fs::read(photo).map_err(|e| format!("reading {}: {e}", photo.display()))?;
        let size = image::ImageReader::new(std::io::Cursor::new(&bytes))
            .with_guessed_format()
            .ok()
            .and_then(|reader| reader.into_dimensions().ok());
        let (width, height) = size.unwrap_or((0, 0));
        println!(
            "  {}  {width} x {height}  {:.1} MB",
            photo.display(),
            bytes.len() as f64 / 1e6
        );
    }
    let files: Vec<String> = (0..rounds)
        .flat_map(|_| photos.iter().map(|p| p.display().to_string()))
        .collect();
    println!(
        "each side makes {} thumbnails ({rounds} rounds), longest side {TARGET_SIDE} px, JPEG quality {JPEG_QUALITY}, on {cores} cores",
        files.len()
    );

    let ours_out = scratch.path().join("ours");
    let vips_out = scratch.path().join("vips");
    for dir in [&ours_out, &vips_out] {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }

    let this = std::env::current_exe().map_err(|e| format!("finding the bench binary: {e}"))?;
    let ours_command = |jobs: usize| {
        let mut command = Command::new(&this);
        command
            .arg("--run-ours")
            .arg(jobs.to_string())
            .arg(&ours_out)
            .args(&files);
        command
    };
    // `vipsthumbnail` names each output after its input, so later rounds
    // overwrite the first round's files with the same result.
    let vips_command = |threads: Option<usize>| {
        let mut command = Command::new("vipsthumbnail");
        command
            .arg("--size")
            .arg(TARGET_SIDE.to_string())
            .arg("-o")
            .arg(format!(
                "{}/%s.jpg[Q={JPEG_QUALITY},strip]",
                vips_out.display()
            ))
            .args(&files);
        if let Some(threads) = threads {
            command.env("VIPS_CONCURRENCY", threads.to_string());
        }
        command
    };

    // One thread each first, as a per-core comparison, then every core.
    let ours_single = measure("ours", ours_command(1))?;
    let vips_single = measure("vipsthumbnail", vips_command(Some(1)))?;
    let ours = measure("ours", ours_command(cores))?;
    let vips = measure("vipsthumbnail", vips_command(None))?;

    let count = files.len() as f64;
    let print = |label: &str, measured: &Measured| {
        println!(
            "{label:<44} {:7.2} images/s  ({:.2} s)  peak memory {} MiB",
            count / measured.seconds,
            measured.seconds,
            measured.peak_kib / 1024
        );
    };
    print("ours, 1 thread:", &ours_single);
    print("vipsthumbnail, VIPS_CONCURRENCY=1:", &vips_single);
    println!(
        "one-thread ratio: {:.2}",
        vips_single.seconds / ours_single.seconds
    );
    print(
        &format!("ours, {cores} threads (one file per thread):"),
        &ours,
    );
    print("vipsthumbnail, default threads:", &vips);
    let ours_rate = count / ours.seconds;
    let vips_rate = count / vips.seconds;
    report_differences(&photos, &ours_out, &vips_out)?;
    println!("ratio vs vipsthumbnail: {:.2}", ours_rate / vips_rate);
    Ok(())
}

/// Prints, per photo, the mean absolute difference per channel between the
/// two outputs, as a check that both made the same picture.
fn report_differences(photos: &[PathBuf], ours_out: &Path, vips_out: &Path) -> Result<(), String> {
    println!("mean difference from vipsthumbnail's output (0-255 per channel):");
    for (index, photo) in photos.iter().enumerate() {
        let stem = photo
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        let open = |path: PathBuf| {
            image::open(&path)
                .map(|image| image.to_rgb8())
                .map_err(|e| format!("reading {}: {e}", path.display()))
        };
        let ours = open(ours_out.join(format!("{index}.jpg")))?;
        let theirs = open(vips_out.join(format!("{stem}.jpg")))?;
        if ours.dimensions() != theirs.dimensions() {
            println!(
                "  {stem}: sizes differ, ours {:?}, vipsthumbnail {:?}",
                ours.dimensions(),
                theirs.dimensions()
            );
            continue;
        }
        let total: u64 = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = total as f64 / ours.as_raw().len() as f64;
        println!("  {stem}: {mean:.2}, both {:?}", ours.dimensions());
    }
    Ok(())
}

/// Runs `command` under GNU time and returns its wall time and peak memory.
fn measure(name: &str, command: Command) -> Result<Measured, String> {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("BENCH_TIME %e %M")
        .arg(command.get_program());
    timed.args(command.get_args());
    let started = Instant::now();
    let output = timed
        .output()
        .map_err(|e| format!("running {name} under /usr/bin/time: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("{name} failed: {stderr}"));
    }
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_TIME "))
        .ok_or_else(|| format!("{name}: /usr/bin/time printed no figures: {stderr}"))?;
    let mut fields = line.split_whitespace();
    let _wall = fields.next();
    let peak_kib = fields
        .next()
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| format!("{name}: cannot read peak memory from {line:?}"))?;
    Ok(Measured {
        seconds: elapsed,
        peak_kib,
    })
}

/// Returns the full-size JPEGs of `BENCH_PHOTOS_DIR`, or generated ones.
fn find_or_generate_photos(scratch: &Path) -> Result<Vec<PathBuf>, String> {
    if let Ok(dir) = std::env::var("BENCH_PHOTOS_DIR") {
        let mut photos = Vec::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("reading BENCH_PHOTOS_DIR={dir}: {e}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if sniff(&bytes) != Some(ImageKind::Jpeg) {
                continue;
            }
            let size = image::ImageReader::with_format(
                std::io::Cursor::new(&bytes),
                image::ImageFormat::Jpeg,
            )
            .into_dimensions();
            if let Ok((width, height)) = size
                && u64::from(width) * u64::from(height) >= MIN_PIXELS
            {
                photos.push(path);
            }
        }
        photos.sort();
        if !photos.is_empty() {
            println!("using the camera JPEGs of at least 8 MP in BENCH_PHOTOS_DIR={dir}");
            return Ok(photos);
        }
        println!("BENCH_PHOTOS_DIR={dir} has no JPEG of at least 8 MP; generating photos instead");
    } else {
        println!("BENCH_PHOTOS_DIR is not set; generating photos instead");
    }
    generate_photos(scratch)
}

/// Writes four 6000 x 4000 JPEGs with gradients and noise, so the entropy
/// decoder has realistic work.
fn generate_photos(scratch: &Path) -> Result<Vec<PathBuf>, String> {
    let mut photos = Vec::new();
    for index in 0..4u32 {
        let mut state = 0x9E37_79B9_u32.wrapping_mul(index + 1);
        let image = image::RgbImage::from_fn(6000, 4000, |x, y| {
            // xorshift noise over smooth gradients.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state % 24) as u8;
            let base = |value: u32| ((value % 256) as u8).saturating_add(noise);
            image::Rgb([base(x / 24 + index * 40), base(y / 16), base((x + y) / 40)])
        });
        let path = scratch.join(format!("generated-{index}.jpg"));
        image
            .save_with_format(&path, image::ImageFormat::Jpeg)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        photos.push(path);
    }
    Ok(photos)
}
