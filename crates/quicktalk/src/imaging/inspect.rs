//! What an image is, read from its header without decoding a pixel: format,
//! stored width/height, EXIF orientation and the size as displayed; and the
//! decompression-bomb check every decode here goes through first.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits};

use super::{check_input_len, ImagingError, MAX_DECODE_ALLOC, MAX_PIXELS, MAX_SIDE};

/// The raster formats QuickTalk inspects, strips and thumbnails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RasterFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
}

impl RasterFormat {
    /// By magic bytes; `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        match image::guess_format(bytes).ok()? {
            ImageFormat::Jpeg => Some(Self::Jpeg),
            ImageFormat::Png => Some(Self::Png),
            ImageFormat::Gif => Some(Self::Gif),
            ImageFormat::WebP => Some(Self::Webp),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::Webp => ImageFormat::WebP,
        }
    }
}

/// An image's header facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: RasterFormat,
    /// As stored (before orientation).
    pub stored_width: u32,
    pub stored_height: u32,
    /// EXIF orientation 1–8 (1 when absent or invalid).
    pub orientation: u8,
}

impl ImageInfo {
    /// Whether showing the image swaps its axes (orientations 5–8).
    pub fn swaps_axes(&self) -> bool {
        self.orientation >= 5
    }

    /// Width as displayed, orientation applied (the media JSON's `width`).
    pub fn width(&self) -> u32 {
        if self.swaps_axes() {
            self.stored_height
        } else {
            self.stored_width
        }
    }

    /// Height as displayed, orientation applied.
    pub fn height(&self) -> u32 {
        if self.swaps_axes() {
            self.stored_width
        } else {
            self.stored_height
        }
    }
}

/// Reads format, size and orientation from the header; refuses with
/// [`ImagingError::TooManyPixels`] an image declaring more than
/// [`MAX_SIDE`] a side or [`MAX_PIXELS`] in all. No pixel data is decoded.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImagingError> {
    let (_, info) = open(bytes)?;
    Ok(info)
}

/// The decoder behind [`inspect`], ready to decode under [`decode_limits`]
/// once the declared size has passed the bomb check.
pub(crate) fn open(bytes: &[u8]) -> Result<(impl ImageDecoder + '_, ImageInfo), ImagingError> {
    check_input_len(bytes.len())?;
    let format = RasterFormat::detect(bytes).ok_or(ImagingError::Unsupported)?;
    if let Some((width, height)) = webp_canvas(bytes) {
        // image-webp refuses giant canvases itself, but untyped.
        check_pixels(width, height)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // Only the allocation budget here: the side limits are ours to check, so
    // the error says what was declared.
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(ImagingError::Decode)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height)?;
    let orientation = decoder
        .orientation()
        .map_err(ImagingError::Decode)?
        .to_exif();
    decoder
        .set_limits(decode_limits())
        .map_err(ImagingError::Decode)?;
    Ok((
        decoder,
        ImageInfo {
            format,
            stored_width: width,
            stored_height: height,
            orientation,
        },
    ))
}

/// The canvas size an extended WebP's VP8X chunk declares (24-bit sides).
fn webp_canvas(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"VP8X" {
        return None;
    }
    let d = bytes.get(24..30)?;
    let side = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]) + 1;
    Some((side(&d[..3]), side(&d[3..])))
}

/// The limits every decode runs under.
pub(crate) fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

fn check_pixels(width: u32, height: u32) -> Result<(), ImagingError> {
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(ImagingError::TooManyPixels { width, height });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fixtures;

    #[test]
    fn dimensions_of_each_format() {
        for (bytes, format) in [
            (fixtures::jpeg(12, 7), RasterFormat::Jpeg),
            (fixtures::png(12, 7), RasterFormat::Png),
            (fixtures::gif(12, 7), RasterFormat::Gif),
            (fixtures::webp(12, 7), RasterFormat::Webp),
        ] {
            let info = inspect(&bytes).unwrap();
            assert_eq!(info.format, format);
            assert_eq!((info.width(), info.height(), info.orientation), (12, 7, 1));
        }
    }

    #[test]
    fn exif_orientation_six_swaps_the_displayed_size() {
        let jpeg = fixtures::with_exif_app1(&fixtures::jpeg(12, 7), 6);
        let info = inspect(&jpeg).unwrap();
        assert_eq!(info.orientation, 6);
        assert_eq!((info.stored_width, info.stored_height), (12, 7));
        assert_eq!((info.width(), info.height()), (7, 12));
    }

    #[test]
    fn a_tiny_png_declaring_60000_square_is_refused_from_its_header() {
        let bomb = fixtures::png_header_only(60_000, 60_000);
        assert!(bomb.len() < 100);
        match inspect(&bomb) {
            Err(ImagingError::TooManyPixels { width, height }) => {
                assert_eq!((width, height), (60_000, 60_000))
            }
            other => panic!("{other:?}"),
        }
        // Under the side limit but over the pixel budget.
        assert!(matches!(
            inspect(&fixtures::png_header_only(16_000, 3_000)),
            Err(ImagingError::TooManyPixels { .. })
        ));
        // One side too long even though the area is small.
        assert!(matches!(
            inspect(&fixtures::png_header_only(20_000, 1)),
            Err(ImagingError::TooManyPixels { .. })
        ));
    }

    #[test]
    fn a_jpeg_declaring_65535_square_is_refused() {
        let bomb = fixtures::jpeg_with_declared_size(&fixtures::jpeg(8, 8), 65_535, 65_535);
        assert!(matches!(
            inspect(&bomb),
            Err(ImagingError::TooManyPixels {
                width: 65_535,
                height: 65_535
            })
        ));
    }

    #[test]
    fn gif_and_webp_declaring_huge_canvases_are_refused() {
        let mut gif = fixtures::gif(8, 8);
        gif[6..10].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]); // 65535x65535 screen
        let r = inspect(&gif);
        assert!(
            matches!(r, Err(ImagingError::TooManyPixels { .. })),
            "{r:?}"
        );
        let webp = fixtures::riff(&[
            fixtures::vp8x(0, 16_000_000, 16_000_000),
            fixtures::webp_image_chunk(&fixtures::webp(8, 8)),
        ]);
        let r = inspect(&webp);
        assert!(
            matches!(r, Err(ImagingError::TooManyPixels { .. })),
            "{r:?}"
        );
    }

    #[test]
    fn non_images_and_oversized_inputs_are_refused() {
        assert!(matches!(
            inspect(b"GIF8 not really"),
            Err(ImagingError::Unsupported) | Err(ImagingError::Decode(_))
        ));
        assert!(matches!(inspect(b"hello"), Err(ImagingError::Unsupported)));
        let mut big = fixtures::png(4, 4);
        big.resize(crate::imaging::MAX_IMAGE_BYTES + 1, 0);
        assert!(matches!(
            inspect(&big),
            Err(ImagingError::InputTooLarge { .. })
        ));
    }
}
