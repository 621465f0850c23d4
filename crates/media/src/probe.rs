//! File type detection and header parsing that run before any pixel decoding.

use crate::thumbnail::ThumbnailError;

/// An image format that the thumbnail pipeline decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// JPEG (JFIF or Exif), baseline or progressive.
    Jpeg,
    /// PNG, any bit depth and colour type.
    Png,
    /// WebP, lossy or lossless.
    WebP,
    /// TIFF, as exported by photo editors.
    Tiff,
}

impl ImageKind {
    /// Returns the MIME type, for `Content-Type` headers.
    pub fn mime_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::WebP => "image/webp",
            ImageKind::Tiff => "image/tiff",
        }
    }

    /// Returns the format's usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "JPEG",
            ImageKind::Png => "PNG",
            ImageKind::WebP => "WebP",
            ImageKind::Tiff => "TIFF",
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Detects a supported image format from the magic bytes at the start of the
/// file. The file name plays no part. Returns `None` for anything else,
/// including image formats that the pipeline does not decode.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    // A JPEG starts with the SOI marker followed by the first marker of the next segment.
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.starts_with(PNG_SIGNATURE) {
        Some(ImageKind::Png)
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(ImageKind::WebP)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(ImageKind::Tiff)
    } else {
        None
    }
}

/// Returns the name of an image format that [`sniff`] does not accept, so the
/// error can tell the studio which format to convert from.
pub(crate) fn sniff_unsupported(bytes: &[u8]) -> Option<&'static str> {
    let brand = bytes.get(4..12);
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if brand == Some(b"ftypavif") || brand == Some(b"ftypavis") {
        Some("AVIF")
    } else if matches!(
        brand,
        Some(b"ftypheic" | b"ftypheix" | b"ftyphevc" | b"ftypheim" | b"ftypmif1" | b"ftypmsf1")
    ) {
        Some("HEIC")
    } else {
        None
    }
}

/// Reads the stored width and height (before EXIF orientation) from the header.
pub(crate) fn read_dimensions(bytes: &[u8], kind: ImageKind) -> Result<(u32, u32), ThumbnailError> {
    let (width, height) = match kind {
        ImageKind::Jpeg => read_jpeg_dimensions(bytes)?,
        ImageKind::Png => read_png_dimensions(bytes)?,
        ImageKind::WebP | ImageKind::Tiff => read_dimensions_with_image(bytes, kind)?,
    };
    if width == 0 || height == 0 {
        return Err(ThumbnailError::Corrupt(format!(
            "the header gives a size of {width} x {height} pixels"
        )));
    }
    Ok((width, height))
}

/// Reads the size with the `image` crate's decoder for `kind`, which parses
/// only the header (WebP chunks, TIFF's first image directory) at this point.
fn read_dimensions_with_image(bytes: &[u8], kind: ImageKind) -> Result<(u32, u32), ThumbnailError> {
    let format = match kind {
        ImageKind::WebP => image::ImageFormat::WebP,
        ImageKind::Tiff => image::ImageFormat::Tiff,
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::Png => image::ImageFormat::Png,
    };
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    // No size limits here: the caller compares the size with its own limits
    // and reports the size it read.
    reader.no_limits();
    reader.into_dimensions().map_err(|error| match error {
        image::ImageError::Unsupported(unsupported) => ThumbnailError::Unsupported {
            format: kind.name(),
            feature: Some(unsupported.to_string()),
        },
        other => ThumbnailError::Corrupt(other.to_string()),
    })
}

/// Samples of a decoded pixel, as the decoder produces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleLayout {
    /// Bits of each sample: 8 or 16.
    pub bits_per_channel: u8,
    /// Samples per pixel, alpha included.
    pub channels: u8,
}

/// Reads the layout that a PNG, WebP or TIFF decodes to from its header.
/// Returns `None` for JPEG, whose decoder scales large images down, and for a
/// header that does not parse.
pub(crate) fn read_sample_layout(bytes: &[u8], kind: ImageKind) -> Option<SampleLayout> {
    match kind {
        ImageKind::Jpeg => None,
        ImageKind::Png => read_png_sample_layout(bytes),
        ImageKind::WebP | ImageKind::Tiff => {
            let format = match kind {
                ImageKind::WebP => image::ImageFormat::WebP,
                _ => image::ImageFormat::Tiff,
            };
            let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
            reader.no_limits();
            let colour = image::ImageDecoder::color_type(&reader.into_decoder().ok()?);
            let channels = colour.channel_count();
            Some(SampleLayout {
                bits_per_channel: colour.bytes_per_pixel() / channels * 8,
                channels,
            })
        }
    }
}

/// Reads the decoded layout from a PNG's IHDR: the `image` crate expands
/// palettes to RGB or RGBA (counted as RGBA here, as with transparency) and
/// depths under 8 bits to 8, and keeps 16-bit samples.
fn read_png_sample_layout(bytes: &[u8]) -> Option<SampleLayout> {
    let bit_depth = *bytes.get(24)?;
    let channels = match *bytes.get(25)? {
        0 => 1,
        2 => 3,
        3 | 6 => 4,
        4 => 2,
        _ => return None,
    };
    let bits_per_channel = if bit_depth == 16 { 16 } else { 8 };
    Some(SampleLayout {
        bits_per_channel,
        channels,
    })
}

fn read_png_dimensions(bytes: &[u8]) -> Result<(u32, u32), ThumbnailError> {
    // The PNG specification requires IHDR as the first chunk: signature (8 bytes),
    // chunk length (4), chunk type (4), then width and height as big-endian u32.
    if bytes.get(12..16) != Some(b"IHDR") {
        return Err(ThumbnailError::Corrupt(
            "the PNG header chunk (IHDR) is missing".to_owned(),
        ));
    }
    match (read_u32_be(bytes, 16), read_u32_be(bytes, 20)) {
        (Some(width), Some(height)) => Ok((width, height)),
        _ => Err(truncated()),
    }
}

fn read_u32_be(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

fn read_u16_be(bytes: &[u8], offset: usize) -> Option<u16> {
    let field = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_be_bytes([field[0], field[1]]))
}

fn truncated() -> ThumbnailError {
    ThumbnailError::Corrupt("the file ends before the end of the image data".to_owned())
}

/// A marker in a JPEG file, with the offset of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JpegMarker {
    /// Start of frame (SOF0 to SOF15 except DHT, JPG and DAC), whose payload
    /// contains the image size.
    StartOfFrame { code: u8, payload: usize },
    /// An APP14 segment written by Adobe software, whose transform flag gives
    /// the storage of four-component data.
    Adobe,
    /// End of image (EOI).
    EndOfImage,
    /// Any other marker.
    Other,
}

/// Walks the markers of a JPEG file, skipping segment payloads and the
/// entropy-coded data after each start of scan (SOS).
struct JpegMarkers<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> JpegMarkers<'a> {
    /// Starts after the SOI marker, which [`sniff`] has already checked.
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 2 }
    }

    /// Returns the next marker, or a `Corrupt` error when the file ends first.
    fn next_marker(&mut self) -> Result<JpegMarker, ThumbnailError> {
        // Decoders skip stray bytes between segments, and some writers pad with
        // 0xFF fill bytes, so both are tolerated.
        while self.bytes.get(self.position).is_some_and(|&b| b != 0xFF) {
            self.position += 1;
        }
        while self.bytes.get(self.position) == Some(&0xFF) {
            self.position += 1;
        }
        let Some(&code) = self.bytes.get(self.position) else {
            return Err(truncated());
        };
        self.position += 1;

        match code {
            0xD9 => return Ok(JpegMarker::EndOfImage),
            // Markers without a payload: TEM, RST0 to RST7, SOI, and a stuffed 0x00.
            0x00 | 0x01 | 0xD0..=0xD8 => return Ok(JpegMarker::Other),
            _ => {}
        }

        let payload = self.position + 2;
        let Some(length) = read_u16_be(self.bytes, self.position) else {
            return Err(truncated());
        };
        // The length counts its own two bytes.
        if length < 2 {
            return Err(ThumbnailError::Corrupt(format!(
                "a JPEG segment at byte {} has an invalid length",
                self.position
            )));
        }
        let end = self.position + usize::from(length);
        if end > self.bytes.len() {
            return Err(truncated());
        }
        self.position = end;

        match code {
            0xDA => {
                self.skip_entropy_coded_data()?;
                Ok(JpegMarker::Other)
            }
            0xEE if self
                .bytes
                .get(payload..end)
                .is_some_and(|p| p.starts_with(b"Adobe")) =>
            {
                Ok(JpegMarker::Adobe)
            }
            0xC4 | 0xC8 | 0xCC => Ok(JpegMarker::Other),
            0xC0..=0xCF => Ok(JpegMarker::StartOfFrame { code, payload }),
            _ => Ok(JpegMarker::Other),
        }
    }

    /// Moves to the next marker after a scan. In entropy-coded data 0xFF is
    /// followed by 0x00 (a stuffed data byte), a restart marker RST0 to RST7, or
    /// a 0xFF fill byte, so any other pair starts the next marker.
    fn skip_entropy_coded_data(&mut self) -> Result<(), ThumbnailError> {
        loop {
            let Some(offset) = self.bytes[self.position..].iter().position(|&b| b == 0xFF) else {
                return Err(truncated());
            };
            let marker_position = self.position + offset;
            match self.bytes.get(marker_position + 1) {
                None => return Err(truncated()),
                Some(0x00 | 0xD0..=0xD7) => self.position = marker_position + 2,
                Some(0xFF) => self.position = marker_position + 1,
                Some(_) => {
                    self.position = marker_position;
                    return Ok(());
                }
            }
        }
    }
}

/// Returns the marker code and payload offset of the JPEG's first start of
/// frame (SOF) segment.
fn find_start_of_frame(bytes: &[u8]) -> Result<(u8, usize), ThumbnailError> {
    let mut markers = JpegMarkers::new(bytes);
    loop {
        match markers.next_marker()? {
            JpegMarker::StartOfFrame { code, payload } => return Ok((code, payload)),
            JpegMarker::EndOfImage => {
                return Err(ThumbnailError::Corrupt(
                    "the JPEG has no frame header".to_owned(),
                ));
            }
            JpegMarker::Adobe | JpegMarker::Other => {}
        }
    }
}

fn read_jpeg_dimensions(bytes: &[u8]) -> Result<(u32, u32), ThumbnailError> {
    let (_, payload) = find_start_of_frame(bytes)?;
    // SOF payload: sample precision (1 byte), height (2), width (2).
    let height = read_u16_be(bytes, payload + 1);
    let width = read_u16_be(bytes, payload + 3);
    match (width, height) {
        (Some(width), Some(height)) => Ok((u32::from(width), u32::from(height))),
        _ => Err(ThumbnailError::Corrupt(
            "the JPEG frame header is too short".to_owned(),
        )),
    }
}

/// Returns the bytes a decoder needs for the DCT coefficients of a
/// progressive JPEG, or `None` for a baseline JPEG or a frame header that
/// does not parse.
///
/// A progressive JPEG refines every block over several scans, so the decoder
/// keeps all coefficients of the frame (64 samples of 2 bytes a block) until
/// the last scan, whatever size it outputs. Blocks are counted per component
/// over whole MCUs, as a decoder allocates them.
pub(crate) fn progressive_coefficient_bytes(bytes: &[u8]) -> Option<u64> {
    let (code, payload) = find_start_of_frame(bytes).ok()?;

    // SOF2, SOF6, SOF10 and SOF14 are the progressive frame types.
    if !matches!(code, 0xC2 | 0xC6 | 0xCA | 0xCE) {
        return None;
    }
    // SOF payload: precision (1 byte), height (2), width (2), component
    // count (1), then 3 bytes a component: id, sampling factors, table.
    let height = u64::from(read_u16_be(bytes, payload + 1)?);
    let width = u64::from(read_u16_be(bytes, payload + 3)?);
    let count = usize::from(*bytes.get(payload + 5)?);
    let sampling: Vec<(u64, u64)> = (0..count)
        .map(|i| {
            let factors = *bytes.get(payload + 6 + 3 * i + 1)?;
            Some((u64::from(factors >> 4), u64::from(factors & 0x0F)))
        })
        .collect::<Option<_>>()?;

    let max_h = sampling.iter().map(|&(h, _)| h).max()?.max(1);
    let max_v = sampling.iter().map(|&(_, v)| v).max()?.max(1);
    let mcus_across = width.div_ceil(8 * max_h);
    let mcus_down = height.div_ceil(8 * max_v);
    let blocks: u64 = sampling
        .iter()
        .map(|&(h, v)| mcus_across * h * mcus_down * v)
        .sum();
    Some(blocks * 64 * 2)
}

/// Returns whether the JPEG has an Adobe APP14 segment before its first scan.
///
/// Adobe software stores CMYK and YCCK samples inverted (255 means no ink) and
/// marks such files with this segment; files without it store plain values.
pub(crate) fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut markers = JpegMarkers::new(bytes);
    loop {
        match markers.next_marker() {
            Ok(JpegMarker::Adobe) => return true,
            // The decoder reads the marker only before the frame, like libjpeg.
            Ok(JpegMarker::StartOfFrame { .. } | JpegMarker::EndOfImage) | Err(_) => return false,
            Ok(JpegMarker::Other) => {}
        }
    }
}

/// Checks that the JPEG reaches its end-of-image marker.
///
/// The JPEG decoder that `image` 0.25.10 uses (zune-jpeg, in its lenient mode)
/// decodes a truncated file without an error, so an interrupted upload would
/// otherwise produce a thumbnail with missing areas. Bytes after the EOI marker
/// are allowed, because some cameras append data such as a second preview image.
///
/// NOTE: this catches truncation only. Damaged scan data inside a complete file
/// still decodes without an error.
pub(crate) fn check_jpeg_complete(bytes: &[u8]) -> Result<(), ThumbnailError> {
    let mut markers = JpegMarkers::new(bytes);
    while markers.next_marker()? != JpegMarker::EndOfImage {}
    Ok(())
}

/// Checks the start of an uploaded file before it is stored, so the studio
/// learns at once that a file can never become a photo.
///
/// `head` is the first bytes of the file (the whole file when `complete`).
/// Returns the format when the file may be an image, or the error that any
/// later decode would give for files that are not an image, in an
/// unsupported format, larger than [`crate::MAX_PIXELS`] or
/// [`crate::MAX_SIDE`], or larger than [`crate::MAX_DECODED_BYTES`] once
/// decoded. A header that `head` does not yet contain is not an
/// error: the worker checks the whole file later.
///
/// # Errors
///
/// [`ThumbnailError::NotAnImage`], [`ThumbnailError::Unsupported`],
/// [`ThumbnailError::TooLarge`], [`ThumbnailError::TooManyBytes`], and,
/// only when `complete`,
/// [`ThumbnailError::Corrupt`] for a header that does not parse.
pub fn probe_upload(head: &[u8], complete: bool) -> Result<ImageKind, ThumbnailError> {
    let Some(kind) = sniff(head) else {
        return Err(match sniff_unsupported(head) {
            Some(format) => ThumbnailError::Unsupported {
                format,
                feature: None,
            },
            None => ThumbnailError::NotAnImage,
        });
    };
    match read_dimensions(head, kind) {
        Ok((width, height)) => {
            crate::thumbnail::check_size(width, height)?;
            crate::thumbnail::check_decoded_size(head, kind, width, height)?;
        }
        Err(error) if complete => return Err(error),
        // The header may continue past `head`.
        Err(_) => {}
    }
    Ok(kind)
}

/// Checks, chunk by chunk as an upload streams in, that a JPEG is complete:
/// every segment is whole and the end-of-image marker arrives. It follows
/// the same marker rules as the check the thumbnail pipeline runs, without
/// keeping the file in memory.
#[derive(Debug, Clone)]
pub struct JpegCompletenessCheck {
    state: WalkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalkState {
    /// Skipping this many more bytes: the SOI marker or a segment payload,
    /// followed by scan data when `then_scan` is set.
    Skip { remaining: u32, then_scan: bool },
    /// Looking for the next marker; `after_ff` when the last byte was 0xFF.
    Marker { after_ff: bool },
    /// Reading a segment's two length bytes.
    Length { code: u8, high: Option<u8> },
    /// In entropy-coded data after a start of scan.
    Scan { after_ff: bool },
    /// The end-of-image marker has been read.
    Ended,
    /// The structure is invalid.
    Invalid,
}

impl Default for JpegCompletenessCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl JpegCompletenessCheck {
    /// Starts a check at the first byte of the file, which must be a JPEG (see [`sniff`]).
    pub fn new() -> Self {
        Self {
            state: WalkState::Skip {
                remaining: 2,
                then_scan: false,
            },
        }
    }

    /// Feeds the next bytes of the file. Bytes after the end-of-image marker
    /// are ignored, because some cameras append data there.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut index = 0;
        while index < chunk.len() {
            let byte = chunk[index];
            self.state = match self.state {
                WalkState::Ended | WalkState::Invalid => return,
                WalkState::Skip {
                    remaining,
                    then_scan,
                } => {
                    let available = u32::try_from(chunk.len() - index).unwrap_or(u32::MAX);
                    let step = remaining.min(available);
                    // `step` is at most the rest of the chunk, so it fits in usize.
                    index += usize::try_from(step).unwrap_or(usize::MAX);
                    let remaining = remaining - step;
                    self.state = match (remaining, then_scan) {
                        (0, true) => WalkState::Scan { after_ff: false },
                        (0, false) => WalkState::Marker { after_ff: false },
                        (remaining, then_scan) => WalkState::Skip {
                            remaining,
                            then_scan,
                        },
                    };
                    continue;
                }
                WalkState::Marker { after_ff: false } => WalkState::Marker {
                    after_ff: byte == 0xFF,
                },
                WalkState::Marker { after_ff: true } | WalkState::Scan { after_ff: true } => {
                    let in_scan = matches!(self.state, WalkState::Scan { .. });
                    match byte {
                        0xFF => self.state,
                        // A stuffed zero or a restart marker inside scan data.
                        0x00 | 0xD0..=0xD7 if in_scan => WalkState::Scan { after_ff: false },
                        _ => Self::after_marker(byte),
                    }
                }
                WalkState::Scan { after_ff: false } => WalkState::Scan {
                    after_ff: byte == 0xFF,
                },
                WalkState::Length { code, high: None } => WalkState::Length {
                    code,
                    high: Some(byte),
                },
                WalkState::Length {
                    code,
                    high: Some(high),
                } => {
                    let length = u16::from_be_bytes([high, byte]);
                    if length < 2 {
                        WalkState::Invalid
                    } else {
                        WalkState::Skip {
                            remaining: u32::from(length - 2),
                            then_scan: code == 0xDA,
                        }
                    }
                }
            };
            index += 1;
        }
    }

    fn after_marker(code: u8) -> WalkState {
        match code {
            0xD9 => WalkState::Ended,
            // Markers without a payload: TEM, RST0 to RST7, SOI, and a stuffed 0x00.
            0x00 | 0x01 | 0xD0..=0xD8 => WalkState::Marker { after_ff: false },
            code => WalkState::Length { code, high: None },
        }
    }

    /// Returns `Ok` when the end-of-image marker has been read.
    ///
    /// # Errors
    ///
    /// [`ThumbnailError::Corrupt`] when the file ended first or a segment
    /// length is invalid.
    pub fn finish(&self) -> Result<(), ThumbnailError> {
        match self.state {
            WalkState::Ended => Ok(()),
            WalkState::Invalid => Err(ThumbnailError::Corrupt(
                "a JPEG segment has an invalid length".to_owned(),
            )),
            _ => Err(truncated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal baseline JPEG structure: SOI, SOF0 for `width` x `height`, SOS
    /// with a few entropy-coded bytes, EOI. The decoder would reject it, but the
    /// marker walk needs only the structure.
    fn jpeg_skeleton(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8];
        // APP0 with a payload that contains bytes resembling markers.
        bytes.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xDA]);
        bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        bytes.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        // Scan data with a stuffed byte, a restart marker and fill bytes.
        bytes.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF]);
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    #[test]
    fn sniff_detects_by_content() {
        assert_eq!(sniff(&jpeg_skeleton(1, 1)), Some(ImageKind::Jpeg));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
            Some(ImageKind::Png)
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::WebP));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(ImageKind::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(ImageKind::Tiff));
        assert_eq!(sniff(b"%PDF-1.4"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn sniff_unsupported_names_formats() {
        assert_eq!(
            sniff_unsupported(b"\0\0\0\x18ftypheic\0\0\0\0"),
            Some("HEIC")
        );
        assert_eq!(sniff_unsupported(b"GIF89a"), Some("GIF"));
        assert_eq!(sniff_unsupported(b"%PDF-1.4"), None);
    }

    #[test]
    fn jpeg_walk_reads_size_and_end() {
        let bytes = jpeg_skeleton(640, 480);
        assert_eq!(read_jpeg_dimensions(&bytes).expect("size"), (640, 480));
        assert!(check_jpeg_complete(&bytes).is_ok());
    }

    #[test]
    fn jpeg_walk_allows_trailing_data() {
        let mut bytes = jpeg_skeleton(8, 8);
        bytes.extend_from_slice(b"trailing data after EOI");
        assert!(check_jpeg_complete(&bytes).is_ok());
    }

    #[test]
    fn jpeg_walk_rejects_every_truncation() {
        let bytes = jpeg_skeleton(8, 8);
        for len in 2..bytes.len() - 1 {
            let result = check_jpeg_complete(&bytes[..len]);
            assert!(
                matches!(result, Err(ThumbnailError::Corrupt(_))),
                "truncated to {len} bytes: {result:?}"
            );
        }
    }

    fn streamed_check(bytes: &[u8], chunk_size: usize) -> Result<(), ThumbnailError> {
        let mut check = JpegCompletenessCheck::new();
        for chunk in bytes.chunks(chunk_size) {
            check.feed(chunk);
        }
        check.finish()
    }

    #[test]
    fn streamed_check_agrees_with_whole_file_check() {
        let mut with_trailer = jpeg_skeleton(8, 8);
        with_trailer.extend_from_slice(b"trailing data after EOI");
        for bytes in [jpeg_skeleton(640, 480), with_trailer] {
            for chunk_size in [1, 2, 3, 7, 1000] {
                assert!(
                    streamed_check(&bytes, chunk_size).is_ok(),
                    "chunks of {chunk_size}"
                );
            }
        }
        let bytes = jpeg_skeleton(8, 8);
        for len in 2..bytes.len() - 1 {
            for chunk_size in [1, 3, 1000] {
                let result = streamed_check(&bytes[..len], chunk_size);
                assert!(
                    matches!(result, Err(ThumbnailError::Corrupt(_))),
                    "truncated to {len} bytes in chunks of {chunk_size}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn probe_upload_rejects_early() {
        assert_eq!(
            probe_upload(b"%PDF-1.4", false),
            Err(ThumbnailError::NotAnImage)
        );
        assert!(matches!(
            probe_upload(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", false),
            Err(ThumbnailError::Unsupported { format: "HEIC", .. })
        ));
        assert_eq!(
            probe_upload(&jpeg_skeleton(30_000, 30_000), false),
            Err(ThumbnailError::TooLarge {
                width: 30_000,
                height: 30_000
            })
        );
        assert_eq!(
            probe_upload(&jpeg_skeleton(640, 480), true),
            Ok(ImageKind::Jpeg)
        );
        // The frame header is not in the first 20 bytes yet.
        assert_eq!(
            probe_upload(&jpeg_skeleton(640, 480)[..20], false),
            Ok(ImageKind::Jpeg)
        );
    }

    #[test]
    fn png_header_size() {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13]);
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&30_000u32.to_be_bytes());
        bytes.extend_from_slice(&20u32.to_be_bytes());
        assert_eq!(
            read_dimensions(&bytes, ImageKind::Png).expect("size"),
            (30_000, 20)
        );
        assert!(read_dimensions(&bytes[..20], ImageKind::Png).is_err());
    }

    /// A PNG signature and IHDR chunk, without a valid CRC or any data.
    fn png_header(width: u32, height: u32, bit_depth: u8, colour_type: u8) -> Vec<u8> {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 13]);
        bytes.extend_from_slice(b"IHDR");
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
        bytes
    }

    /// Builds the start of a JPEG up to its frame header, of frame type
    /// `sof` with one `(horizontal, vertical)` sampling pair a component.
    fn jpeg_frame_header(sof: u8, width: u16, height: u16, sampling: &[(u8, u8)]) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, sof];
        let count = u8::try_from(sampling.len()).expect("few components");
        let length = 8 + 3 * u16::from(count);
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.push(0x08);
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.push(count);
        for (id, (h, v)) in (1u8..).zip(sampling) {
            bytes.extend_from_slice(&[id, (h << 4) | v, 0x00]);
        }
        bytes
    }

    #[test]
    fn progressive_jpeg_coefficients_are_counted() {
        let cmyk = [(1, 1); 4];
        let subsampled = [(2, 2), (1, 1), (1, 1)];
        // 10000 x 10000 CMYK: 4 components of 2 bytes a sample, 800 MB.
        assert_eq!(
            progressive_coefficient_bytes(&jpeg_frame_header(0xC2, 10_000, 10_000, &cmyk)),
            Some(800_000_000)
        );
        // Baseline frames decode scaled down and are not counted.
        assert_eq!(
            progressive_coefficient_bytes(&jpeg_frame_header(0xC0, 10_000, 10_000, &cmyk)),
            None
        );
        // 4:2:0 chroma takes a quarter each: 1.5 samples a pixel over whole
        // 16 x 16 MCUs (625 x 625 of them).
        assert_eq!(
            progressive_coefficient_bytes(&jpeg_frame_header(0xC2, 10_000, 10_000, &subsampled)),
            Some(625 * 625 * 6 * 64 * 2)
        );
        assert!(matches!(
            probe_upload(&jpeg_frame_header(0xC2, 10_000, 10_000, &cmyk), false),
            Err(ThumbnailError::NeedsTooMuchMemory {
                format: "progressive JPEG",
                megabytes: Some(800),
                ..
            })
        ));
        assert_eq!(
            probe_upload(&jpeg_frame_header(0xC2, 10_000, 10_000, &subsampled), false),
            Ok(ImageKind::Jpeg)
        );
    }

    #[test]
    fn probe_upload_limits_decoded_bytes() {
        // 16-bit RGBA at the pixel limit takes 800 MB decoded.
        assert_eq!(
            probe_upload(&png_header(10_000, 10_000, 16, 6), false),
            Err(ThumbnailError::TooManyBytes {
                format: "PNG",
                width: 10_000,
                height: 10_000,
                bits_per_channel: 16,
                channels: 4,
            })
        );
        // 8-bit RGBA at the pixel limit takes exactly the maximum.
        assert_eq!(
            probe_upload(&png_header(10_000, 10_000, 8, 6), false),
            Ok(ImageKind::Png)
        );
        // 16-bit RGBA at half the pixels takes exactly the maximum too.
        assert_eq!(
            probe_upload(&png_header(10_000, 5_000, 16, 6), false),
            Ok(ImageKind::Png)
        );
        // 16-bit RGB over two thirds of the pixel limit.
        assert!(matches!(
            probe_upload(&png_header(10_000, 6_667, 16, 2), false),
            Err(ThumbnailError::TooManyBytes { channels: 3, .. })
        ));
        // 16-bit greyscale at the pixel limit takes 200 MB.
        assert_eq!(
            probe_upload(&png_header(10_000, 10_000, 16, 0), false),
            Ok(ImageKind::Png)
        );
    }

    #[test]
    fn zero_size_is_corrupt() {
        let bytes = jpeg_skeleton(0, 8);
        let result = read_dimensions(&bytes, ImageKind::Jpeg);
        assert!(
            matches!(result, Err(ThumbnailError::Corrupt(_))),
            "{result:?}"
        );
    }
}
