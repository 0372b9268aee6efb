//! WebP: the RIFF chunks without `EXIF` and `XMP `, the VP8X flags for them
//! cleared and the RIFF size recomputed.

use crate::imaging::ImagingError;

const FORMAT: &str = "webp";
const EXIF_FLAG: u8 = 0x08;
const XMP_FLAG: u8 = 0x04;

fn malformed(reason: &'static str) -> ImagingError {
    ImagingError::malformed(FORMAT, reason)
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return Err(malformed("no RIFF/WEBP header"));
    }
    let riff_size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    // The RIFF payload ends here; anything after it is not part of the image.
    let riff_end = 8usize
        .checked_add(riff_size)
        .filter(|&e| e <= bytes.len() && e >= 12)
        .ok_or(malformed("RIFF size past the end"))?;
    let mut out = Vec::with_capacity(riff_end);
    out.extend_from_slice(&bytes[..12]);
    let mut pos = 12;
    while pos < riff_end {
        let header = bytes
            .get(pos..pos + 8)
            .filter(|_| pos + 8 <= riff_end)
            .ok_or(malformed("truncated chunk header"))?;
        let fourcc: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let padded = len + (len & 1);
        let data_end = pos + 8 + len;
        if data_end > riff_end {
            return Err(malformed("chunk past the RIFF end"));
        }
        // A missing pad byte on the last chunk is tolerated (seen in the wild).
        let end = (pos + 8 + padded).min(riff_end);
        match &fourcc {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                let flags_at = out.len() + 8;
                out.extend_from_slice(&bytes[pos..end]);
                if len < 10 {
                    return Err(malformed("VP8X chunk too short"));
                }
                out[flags_at] &= !(EXIF_FLAG | XMP_FLAG);
            }
            _ => out.extend_from_slice(&bytes[pos..end]),
        }
        pos = end;
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| malformed("RIFF too large"))?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{fixtures, inspect, strip_metadata};

    fn rgba(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory(bytes)
            .unwrap()
            .to_rgba8()
            .into_raw()
    }

    #[test]
    fn exif_and_xmp_chunks_go_flags_cleared_size_fixed() {
        let uploaded = fixtures::webp_with_metadata(10, 6, 6);
        // The decoder reads the spliced Exif.
        assert_eq!(inspect(&uploaded).unwrap().orientation, 6);
        assert!(fixtures::contains(&uploaded, &fixtures::GPS_LATITUDE));
        let stripped = strip_metadata(&uploaded).unwrap();
        assert!(!fixtures::contains(&stripped, &fixtures::GPS_LATITUDE));
        assert!(!fixtures::contains(&stripped, fixtures::XMP_TEXT));
        // Exactly: VP8X with no flags, then the untouched image chunk.
        let simple = fixtures::webp(10, 6);
        let expected = fixtures::riff(&[
            fixtures::vp8x(0, 10, 6),
            fixtures::webp_image_chunk(&simple),
        ]);
        assert_eq!(stripped, expected);
        assert_eq!(rgba(&stripped), rgba(&simple));
        assert_eq!(inspect(&stripped).unwrap().orientation, 1);
    }

    #[test]
    fn simple_webp_is_unchanged_and_broken_sizes_are_errors() {
        let simple = fixtures::webp(5, 5);
        assert_eq!(strip(&simple).unwrap(), simple);
        let mut lying = simple.clone();
        lying[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(strip(&lying).is_err());
        let mut chunk_lies = simple.clone();
        chunk_lies[16..20].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert!(strip(&chunk_lies).is_err());
    }
}
