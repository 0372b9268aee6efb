//! PNG: copies every chunk but the metadata ones, CRCs untouched, up to IEND.

use crate::imaging::ImagingError;

const FORMAT: &str = "png";
const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
const DROPPED: [&[u8; 4]; 5] = [b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"];
/// The PNG spec's limit on a chunk's length.
const MAX_CHUNK: usize = (1 << 31) - 1;

fn malformed(reason: &'static str) -> ImagingError {
    ImagingError::malformed(FORMAT, reason)
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(malformed("no PNG signature"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(SIGNATURE);
    let mut pos = SIGNATURE.len();
    loop {
        let header = bytes
            .get(pos..pos + 8)
            .ok_or(malformed("truncated before IEND"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_CHUNK {
            return Err(malformed("chunk length over 2^31-1"));
        }
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let end = pos
            .checked_add(12 + len)
            .filter(|&e| e <= bytes.len())
            .ok_or(malformed("chunk past the end"))?;
        if !DROPPED.contains(&&kind) {
            out.extend_from_slice(&bytes[pos..end]);
        }
        pos = end;
        if &kind == b"IEND" {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{fixtures, strip_metadata};

    #[test]
    fn metadata_chunks_go_and_the_rest_is_identical() {
        let original = fixtures::png(20, 10);
        let uploaded = fixtures::with_png_metadata(&original, 6);
        assert!(fixtures::contains(&uploaded, &fixtures::GPS_LATITUDE));
        // The spliced chunks are valid: the decoder sees the Exif.
        assert_eq!(crate::imaging::inspect(&uploaded).unwrap().orientation, 6);
        let stripped = strip_metadata(&uploaded).unwrap();
        assert_eq!(stripped, original);
        for gone in [
            &fixtures::GPS_LATITUDE[..],
            fixtures::XMP_TEXT,
            fixtures::COMMENT_TEXT,
            b"tIME",
        ] {
            assert!(!fixtures::contains(&stripped, gone));
        }
        let a = image::load_from_memory(&uploaded).unwrap();
        let b = image::load_from_memory(&stripped).unwrap();
        assert_eq!(a.to_rgba8().into_raw(), b.to_rgba8().into_raw());
    }

    #[test]
    fn bytes_after_iend_are_dropped_and_truncation_is_an_error() {
        let original = fixtures::png(4, 4);
        let mut uploaded = original.clone();
        uploaded.extend_from_slice(b"trailing secrets");
        assert_eq!(strip(&uploaded).unwrap(), original);
        assert!(strip(&original[..original.len() - 1]).is_err());
        let mut huge = original[..8].to_vec();
        huge.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, b'I', b'D', b'A', b'T']);
        assert!(strip(&huge).is_err());
    }
}
