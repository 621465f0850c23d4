//! A streaming check of a PNG's chunk structure, run on an upload's bytes on
//! their way to the media store.

use crate::thumbnail::ThumbnailError;

/// Length of the PNG signature, which [`crate::sniff`] has checked.
const SIGNATURE_LEN: u32 = 8;

/// Largest chunk length the PNG specification allows (2^31 - 1).
const MAX_CHUNK_LEN: u32 = 0x7FFF_FFFF;

/// Checks, chunk by chunk as an upload streams in, that a PNG is whole: every
/// chunk is complete, its CRC matches its type and data, and the IEND chunk
/// arrives. A truncated or bit-flipped upload is then rejected at once.
///
/// NOTE: damage that a writer covered with a correct CRC, such as bad
/// compressed data in IDAT, passes. Only decoding the pixels finds it.
#[derive(Debug, Clone)]
pub struct PngCompletenessCheck {
    state: PngState,
    /// Bytes of the chunk header (length and type) or CRC being read.
    pending: Vec<u8>,
    chunk_type: [u8; 4],
    crc: crc32fast::Hasher,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PngState {
    /// Skipping this many more bytes of the signature.
    Signature { remaining: u32 },
    /// Reading the 8 bytes of a chunk's length and type.
    Header,
    /// Reading this many more bytes of a chunk's data.
    Data { remaining: u32 },
    /// Reading the 4 bytes of a chunk's CRC.
    Crc,
    /// The IEND chunk has been read.
    Ended,
    /// The structure is invalid, for this reason.
    Invalid(String),
}

impl Default for PngCompletenessCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl PngCompletenessCheck {
    /// Starts a check at the first byte of the file, which must be a PNG (see
    /// [`crate::sniff`]).
    pub fn new() -> Self {
        Self {
            state: PngState::Signature {
                remaining: SIGNATURE_LEN,
            },
            pending: Vec::with_capacity(8),
            chunk_type: [0; 4],
            crc: crc32fast::Hasher::new(),
        }
    }

    /// Feeds the next bytes of the file. Bytes after IEND are ignored.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match &mut self.state {
                PngState::Ended | PngState::Invalid(_) => return,
                PngState::Signature { remaining } | PngState::Data { remaining } => {
                    let step = take_len(*remaining, chunk.len());
                    let (taken, rest) = chunk.split_at(step);
                    if matches!(self.state, PngState::Data { .. }) {
                        self.crc.update(taken);
                    }
                    chunk = rest;
                    self.skipped(step);
                }
                PngState::Header => {
                    chunk = self.fill_pending(chunk, 8);
                    if self.pending.len() == 8 {
                        self.start_chunk();
                    }
                }
                PngState::Crc => {
                    chunk = self.fill_pending(chunk, 4);
                    if self.pending.len() == 4 {
                        self.end_chunk();
                    }
                }
            }
        }
    }

    /// Returns `Ok` when the IEND chunk was read and every chunk was whole.
    ///
    /// # Errors
    ///
    /// [`ThumbnailError::Corrupt`] naming the problem: a CRC that does not
    /// match, an invalid chunk length, or a file that ends before IEND.
    pub fn finish(&self) -> Result<(), ThumbnailError> {
        match &self.state {
            PngState::Ended => Ok(()),
            PngState::Invalid(reason) => Err(ThumbnailError::Corrupt(reason.clone())),
            _ => Err(ThumbnailError::Corrupt(
                "the PNG file ends before its IEND chunk".to_owned(),
            )),
        }
    }

    /// Moves past `step` bytes of the signature or of chunk data.
    fn skipped(&mut self, step: usize) {
        let step = u32::try_from(step).unwrap_or(u32::MAX);
        self.state = match self.state {
            PngState::Signature { remaining } if remaining > step => PngState::Signature {
                remaining: remaining - step,
            },
            PngState::Signature { .. } => PngState::Header,
            PngState::Data { remaining } if remaining > step => PngState::Data {
                remaining: remaining - step,
            },
            _ => PngState::Crc,
        };
    }

    /// Appends bytes of `chunk` to `pending` until it has `len` bytes, and
    /// returns the rest of `chunk`.
    fn fill_pending<'a>(&mut self, chunk: &'a [u8], len: usize) -> &'a [u8] {
        let step = (len - self.pending.len()).min(chunk.len());
        let (taken, rest) = chunk.split_at(step);
        self.pending.extend_from_slice(taken);
        rest
    }

    /// Reads the length and type from a complete chunk header.
    fn start_chunk(&mut self) {
        let length = u32::from_be_bytes([
            self.pending[0],
            self.pending[1],
            self.pending[2],
            self.pending[3],
        ]);
        self.chunk_type = [
            self.pending[4],
            self.pending[5],
            self.pending[6],
            self.pending[7],
        ];
        self.pending.clear();
        if length > MAX_CHUNK_LEN {
            self.state = PngState::Invalid(format!(
                "the PNG chunk {} has an invalid length of {length} bytes",
                self.type_name()
            ));
            return;
        }
        self.crc = crc32fast::Hasher::new();
        self.crc.update(&self.chunk_type);
        self.state = match length {
            0 => PngState::Crc,
            remaining => PngState::Data { remaining },
        };
    }

    /// Compares a complete CRC with the one computed over the chunk.
    fn end_chunk(&mut self) {
        let stored = u32::from_be_bytes([
            self.pending[0],
            self.pending[1],
            self.pending[2],
            self.pending[3],
        ]);
        self.pending.clear();
        let computed = self.crc.clone().finalize();
        self.state = if stored != computed {
            PngState::Invalid(format!(
                "the CRC of the PNG chunk {} does not match its data",
                self.type_name()
            ))
        } else if &self.chunk_type == b"IEND" {
            PngState::Ended
        } else {
            PngState::Header
        };
    }

    fn type_name(&self) -> String {
        String::from_utf8_lossy(&self.chunk_type).into_owned()
    }
}

/// Returns how many of `available` bytes to take when `remaining` are wanted.
fn take_len(remaining: u32, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |remaining| remaining.min(available))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: &[u8] = include_bytes!("../tests/fixtures/pillow-transparent-rgba.png");

    fn check(bytes: &[u8], piece: usize) -> Result<(), ThumbnailError> {
        let mut check = PngCompletenessCheck::new();
        for part in bytes.chunks(piece) {
            check.feed(part);
        }
        check.finish()
    }

    #[test]
    fn whole_png_passes_in_any_pieces() {
        for piece in [1, 3, 7, 8, 13, 4096, WHOLE.len()] {
            assert_eq!(check(WHOLE, piece), Ok(()), "pieces of {piece} bytes");
        }
    }

    #[test]
    fn trailing_bytes_after_iend_pass() {
        let mut bytes = WHOLE.to_vec();
        bytes.extend_from_slice(b"appended");
        assert_eq!(check(&bytes, 512), Ok(()));
    }

    #[test]
    fn every_truncation_fails() {
        for cut in (0..WHOLE.len()).step_by(97).chain([WHOLE.len() - 1]) {
            let result = check(&WHOLE[..cut], 512);
            assert!(
                matches!(result, Err(ThumbnailError::Corrupt(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn flipped_data_byte_fails_crc() {
        let mut bytes = WHOLE.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let Err(ThumbnailError::Corrupt(reason)) = check(&bytes, 1000) else {
            panic!("a flipped byte passed");
        };
        assert!(reason.contains("CRC"), "{reason}");
    }

    #[test]
    fn oversized_chunk_length_fails() {
        let mut bytes = WHOLE[..8].to_vec();
        bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(b"IHDR");
        let Err(ThumbnailError::Corrupt(reason)) = check(&bytes, 64) else {
            panic!("an oversized length passed");
        };
        assert!(reason.contains("invalid length"), "{reason}");
    }
}
