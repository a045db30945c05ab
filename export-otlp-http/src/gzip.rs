//! gzip (RFC 1952) with one deflate state kept from request to request.
//!
//! `flate2::write::GzEncoder` sets a new deflate state up for every request:
//! its window and hash tables, a few hundred kilobytes allocated (past
//! glibc's mmap threshold, so fresh pages that fault in) and cleared each
//! time. [`Gzip`] resets one instead, and compresses the request in one
//! call (the encoder feeds deflate 32 KiB at a time, so its blocks, not its
//! content, differ).

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// The header `GzEncoder` writes at level 1: no flags, no time, "fastest"
/// (XFL 4), unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff];

/// A gzip compressor at level 1 (fastest), reused between requests.
pub(crate) struct Gzip {
    deflate: Compress,
}

impl Gzip {
    pub(crate) fn new() -> Self {
        Gzip {
            deflate: Compress::new(Compression::fast(), false),
        }
    }

    /// Appends the gzip of `input` to `out`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        self.deflate.reset();
        out.extend_from_slice(&HEADER);
        let mut rest = input;
        loop {
            // compress_vec writes into the spare capacity only.
            out.reserve(rest.len() / 2 + 64);
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(rest, out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            rest = &rest[(self.deflate.total_in() - before) as usize..];
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn decodes_request_after_request_and_is_no_larger_than_gz_encoder() {
        let mut gzip = Gzip::new();
        let inputs: [Vec<u8>; 4] = [
            b"hello hello hello hello".to_vec(),
            Vec::new(),
            (0..300_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect(),
            (0..70_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ];
        for input in inputs.iter().chain(inputs.iter()) {
            let mut out = vec![7];
            gzip.compress(input, &mut out).unwrap();
            assert_eq!(out[0], 7, "appended");
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(input).unwrap();
            let encoded = encoder.finish().unwrap();
            assert_eq!(out[1..11], encoded[..10], "the same header");
            assert!(
                out.len() - 1 <= encoded.len() + 8,
                "{} {}",
                out.len(),
                encoded.len()
            );
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&out[1..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(&decoded == input, "round trip");
        }
    }
}
