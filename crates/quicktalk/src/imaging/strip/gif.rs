//! GIF: walks the block structure (extensions and image descriptors with
//! their sub-blocks) and drops comment extensions and XMP application
//! extensions; everything up to the trailer is copied byte for byte.

use crate::imaging::ImagingError;

const FORMAT: &str = "gif";
const EXTENSION: u8 = 0x21;
const IMAGE: u8 = 0x2C;
const TRAILER: u8 = 0x3B;
const COMMENT: u8 = 0xFE;
const APPLICATION: u8 = 0xFF;

fn malformed(reason: &'static str) -> ImagingError {
    ImagingError::malformed(FORMAT, reason)
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    if bytes.len() < 13 || !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return Err(malformed("no GIF header"));
    }
    let mut pos = 13 + color_table_len(bytes[10]);
    if pos > bytes.len() {
        return Err(malformed("global colour table past the end"));
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..pos]);
    loop {
        let start = pos;
        match bytes.get(pos) {
            Some(&TRAILER) => {
                out.push(TRAILER);
                return Ok(out);
            }
            Some(&EXTENSION) => {
                let label = *bytes.get(pos + 1).ok_or(malformed("truncated extension"))?;
                let end = sub_blocks_end(bytes, pos + 2)?;
                let is_xmp = label == APPLICATION
                    && bytes.get(pos + 2..pos + 14) == Some(b"\x0bXMP DataXMP");
                if label != COMMENT && !is_xmp {
                    out.extend_from_slice(&bytes[start..end]);
                }
                pos = end;
            }
            Some(&IMAGE) => {
                let packed = *bytes
                    .get(pos + 9)
                    .ok_or(malformed("truncated image descriptor"))?;
                // Descriptor (10), local colour table, LZW minimum code size (1).
                let data = pos + 10 + color_table_len(packed) + 1;
                let end = sub_blocks_end(bytes, data)?;
                out.extend_from_slice(&bytes[start..end]);
                pos = end;
            }
            Some(_) => return Err(malformed("unknown block")),
            None => return Err(malformed("truncated before the trailer")),
        }
    }
}

fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    }
}

/// The end of a sub-block sequence starting at `pos` (after its 0 terminator).
fn sub_blocks_end(bytes: &[u8], mut pos: usize) -> Result<usize, ImagingError> {
    loop {
        let size = usize::from(*bytes.get(pos).ok_or(malformed("truncated sub-blocks"))?);
        pos += 1;
        if size == 0 {
            return Ok(pos);
        }
        pos += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{fixtures, strip_metadata};

    #[test]
    fn comments_and_xmp_go_and_the_rest_is_identical() {
        let original = fixtures::gif(9, 7);
        let uploaded = fixtures::with_gif_metadata(&original);
        assert!(fixtures::contains(&uploaded, fixtures::COMMENT_TEXT));
        let stripped = strip_metadata(&uploaded).unwrap();
        assert_eq!(stripped, original);
        let a = image::load_from_memory(&uploaded).unwrap().to_rgba8();
        let b = image::load_from_memory(&stripped).unwrap().to_rgba8();
        assert_eq!(a, b);
    }

    #[test]
    fn truncation_is_an_error() {
        let gif = fixtures::gif(4, 4);
        assert!(strip(&gif[..gif.len() - 1]).is_err());
        assert!(strip(&gif[..12]).is_err());
    }
}
