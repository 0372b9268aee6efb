//! JPEG: walks the marker segments (and the entropy-coded data between
//! scans, where only `FF 00` stuffing and RSTn may occur) up to EOI.

use crate::imaging::ImagingError;

const FORMAT: &str = "jpeg";
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP1: u8 = 0xE1;
const APP13: u8 = 0xED;
const COM: u8 = 0xFE;

fn malformed(reason: &'static str) -> ImagingError {
    ImagingError::malformed(FORMAT, reason)
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != SOI {
        return Err(malformed("no SOI marker"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..2]);
    let mut pos = 2;
    let mut orientation_written = false;
    loop {
        // Fill bytes (any number of 0xFF) may precede a marker.
        if bytes.get(pos) != Some(&0xFF) {
            return Err(malformed("expected a marker"));
        }
        let mut marker_at = pos;
        while bytes.get(marker_at + 1) == Some(&0xFF) {
            marker_at += 1;
        }
        let marker = *bytes
            .get(marker_at + 1)
            .ok_or(malformed("truncated before EOI"))?;
        match marker {
            EOI => {
                out.extend_from_slice(&bytes[pos..marker_at + 2]);
                return Ok(out);
            }
            0x01 | 0xD0..=0xD7 => {
                // Standalone markers (TEM, RSTn) outside scan data.
                out.extend_from_slice(&bytes[pos..marker_at + 2]);
                pos = marker_at + 2;
                continue;
            }
            0x00 | SOI => return Err(malformed("unexpected marker")),
            _ => {}
        }
        let len_at = marker_at + 2;
        let len = bytes
            .get(len_at..len_at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or(malformed("truncated segment length"))?;
        if len < 2 {
            return Err(malformed("segment length below 2"));
        }
        let end = len_at + len;
        if end > bytes.len() {
            return Err(malformed("segment past the end"));
        }
        let body = &bytes[len_at + 2..end];
        match marker {
            APP1 => {
                if !orientation_written {
                    if let Some(o) = exif_orientation(body).filter(|&o| o != 1) {
                        out.extend_from_slice(&orientation_only_app1(o));
                        orientation_written = true;
                    }
                }
            }
            APP13 | COM => {}
            _ => out.extend_from_slice(&bytes[pos..end]),
        }
        pos = end;
        if marker == SOS {
            let scan_end = scan_data_end(bytes, pos)?;
            out.extend_from_slice(&bytes[pos..scan_end]);
            pos = scan_end;
        }
    }
}

/// Where the entropy-coded data starting at `from` ends: the first `FF xx`
/// that is neither stuffing (`FF 00`), a restart marker nor a fill byte.
fn scan_data_end(bytes: &[u8], from: usize) -> Result<usize, ImagingError> {
    let mut i = from;
    while i + 1 < bytes.len() {
        if bytes[i] == 0xFF {
            match bytes[i + 1] {
                0x00 | 0xD0..=0xD7 => i += 2,
                0xFF => i += 1,
                _ => return Ok(i),
            }
        } else {
            i += 1;
        }
    }
    Err(malformed("scan data runs past the end"))
}

/// The orientation in an APP1 body if it is Exif.
fn exif_orientation(body: &[u8]) -> Option<u8> {
    let tiff = body.strip_prefix(b"Exif\0\0")?;
    image::metadata::Orientation::from_exif_chunk(tiff).map(|o| o.to_exif())
}

/// An APP1 segment whose Exif holds one IFD with one entry: Orientation.
fn orientation_only_app1(orientation: u8) -> [u8; 36] {
    let mut s = [0u8; 36];
    s[..4].copy_from_slice(&[0xFF, APP1, 0, 34]);
    s[4..10].copy_from_slice(b"Exif\0\0");
    // Big-endian TIFF header, IFD0 at offset 8.
    s[10..18].copy_from_slice(b"MM\0\x2a\0\0\0\x08");
    // One entry: tag 0x0112, type SHORT, count 1, value, pad.
    s[18..20].copy_from_slice(&1u16.to_be_bytes());
    s[20..32].copy_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0]);
    // Next IFD: none (s[32..36] stays zero).
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{fixtures, inspect, strip_metadata};

    fn pixels(bytes: &[u8]) -> Vec<u8> {
        image::load_from_memory(bytes).unwrap().to_rgb8().into_raw()
    }

    #[test]
    fn gps_exif_xmp_iptc_and_comments_go_and_the_rest_is_identical() {
        let original = fixtures::jpeg(24, 16);
        let uploaded = fixtures::with_all_jpeg_metadata(&original, 1);
        assert!(fixtures::contains(&uploaded, &fixtures::GPS_LATITUDE));
        let stripped = strip_metadata(&uploaded).unwrap();
        assert!(!fixtures::contains(&stripped, &fixtures::GPS_LATITUDE));
        assert!(!fixtures::contains(&stripped, fixtures::XMP_TEXT));
        assert!(!fixtures::contains(&stripped, fixtures::COMMENT_TEXT));
        assert!(!fixtures::contains(&stripped, b"Seoul"));
        // Orientation 1: every other byte is the encoder's, in order.
        assert_eq!(stripped, original);
        assert_eq!(pixels(&stripped), pixels(&uploaded));
    }

    #[test]
    fn a_rotated_photo_keeps_only_its_orientation() {
        let original = fixtures::jpeg(24, 16);
        let uploaded = fixtures::with_all_jpeg_metadata(&original, 6);
        let stripped = strip_metadata(&uploaded).unwrap();
        assert!(!fixtures::contains(&stripped, &fixtures::GPS_LATITUDE));
        let info = inspect(&stripped).unwrap();
        assert_eq!(info.orientation, 6);
        assert_eq!((info.width(), info.height()), (16, 24));
        let mut expected = original[..2].to_vec();
        expected.extend_from_slice(&orientation_only_app1(6));
        expected.extend_from_slice(&original[2..]);
        assert_eq!(stripped, expected);
        assert_eq!(pixels(&stripped), pixels(&original));
    }

    #[test]
    fn bytes_after_eoi_are_dropped() {
        let original = fixtures::jpeg(8, 8);
        let mut uploaded = original.clone();
        // A second JPEG with its own GPS Exif, as motion photos append.
        uploaded.extend_from_slice(&fixtures::with_exif_app1(&fixtures::jpeg(4, 4), 1));
        assert_eq!(strip_metadata(&uploaded).unwrap(), original);
    }

    #[test]
    fn progressive_and_restart_markers_are_walked() {
        // Scan data with stuffing and a restart marker between two scans,
        // and metadata between the scans.
        let mut j = vec![0xFF, SOI];
        j.extend_from_slice(&[0xFF, 0xDB, 0, 3, 7]); // a tiny "DQT"
        j.extend_from_slice(&[0xFF, SOS, 0, 3, 1]);
        j.extend_from_slice(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        let kept_scan1 = j.clone();
        j.extend_from_slice(&[0xFF, COM, 0, 4, b'h', b'i']);
        let tail = [0xFF, SOS, 0, 3, 2, 9, 9, 0xFF, 0xFF, EOI];
        j.extend_from_slice(&tail);
        let mut expected = kept_scan1;
        expected.extend_from_slice(&tail);
        assert_eq!(strip(&j).unwrap(), expected);
    }

    #[test]
    fn truncated_or_broken_segments_are_errors() {
        let full = fixtures::with_all_jpeg_metadata(&fixtures::jpeg(8, 8), 1);
        assert!(strip(&full[..full.len() - 2]).is_err());
        assert!(strip(&full[..30]).is_err());
        assert!(strip(&[0xFF, SOI, 0xFF, 0xE1, 0, 1]).is_err());
        assert!(strip(&[0xFF, SOI, 0x12, 0x34]).is_err());
    }
}
