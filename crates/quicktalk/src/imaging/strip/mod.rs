//! The stored original (contract §6): the uploaded bytes with image metadata
//! removed and nothing else changed. One walker per container; each copies
//! the segments/chunks it keeps byte for byte and never decodes pixels.
//!
//! Removed: JPEG APP1 (Exif, XMP), APP13 (IPTC), COM; PNG eXIf, tEXt, zTXt,
//! iTXt, tIME; WebP EXIF, XMP (and their VP8X flags); GIF comment and XMP
//! application extensions. Bytes after the image's end marker are dropped
//! too: phones append motion-photo videos and second JPEGs there, with
//! their own Exif and GPS.
//!
//! A JPEG whose Exif said orientation ≠ 1 gets back a minimal Exif holding
//! only that orientation, so it is not shown sideways; nothing else of the
//! Exif survives. (PNG and WebP lose it: cameras do not write those.)

mod gif;
mod jpeg;
mod png;
mod webp;

use super::inspect::RasterFormat;
use super::{check_input_len, ImagingError};

/// `bytes` without metadata. Anything that is not JPEG, PNG, GIF or WebP is
/// [`ImagingError::Unsupported`] (store other files as they came).
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    check_input_len(bytes.len())?;
    match RasterFormat::detect(bytes).ok_or(ImagingError::Unsupported)? {
        RasterFormat::Jpeg => jpeg::strip(bytes),
        RasterFormat::Png => png::strip(bytes),
        RasterFormat::Gif => gif::strip(bytes),
        RasterFormat::Webp => webp::strip(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fixtures;
    use proptest::prelude::*;

    #[test]
    fn other_files_are_unsupported() {
        assert!(matches!(
            strip_metadata(b"%PDF-1.7"),
            Err(ImagingError::Unsupported)
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Truncated or corrupted images give an error or some output, never
        /// a panic, and never more bytes than came in (plus the 36-byte
        /// orientation Exif of a JPEG).
        #[test]
        fn never_panics_on_damaged_images(
            which in 0usize..4,
            cut in 0usize..2000,
            flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..4),
        ) {
            let mut bytes = match which {
                0 => fixtures::with_all_jpeg_metadata(&fixtures::jpeg(9, 5), 6),
                1 => fixtures::with_png_metadata(&fixtures::png(9, 5), 1),
                2 => fixtures::webp_with_metadata(9, 5, 1),
                _ => fixtures::with_gif_metadata(&fixtures::gif(9, 5)),
            };
            for (at, b) in flips {
                if at < bytes.len() && at >= 4 { bytes[at] = b; }
            }
            bytes.truncate(cut.max(4));
            if let Ok(out) = strip_metadata(&bytes) {
                prop_assert!(out.len() <= bytes.len() + 36);
            }
        }
    }
}
