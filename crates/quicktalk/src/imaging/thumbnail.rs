//! Thumbnails: a decode under [`crate::imaging::inspect`]'s bomb check and
//! [`image::Limits`], shrunk to fit [`THUMBNAIL_BOX`] (aspect kept, never
//! enlarged), the EXIF orientation applied, encoded as JPEG. Shrinking
//! happens before rotating, so the rotation only touches the small image.
//! Transparent pixels are put on white (JPEG has no alpha). Animated GIF
//! and WebP: the first frame. The source's ICC profile, if any, is kept.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, RgbImage};

use super::inspect::{open, ImageInfo};
use super::ImagingError;

/// The box a thumbnail fits in (width, height).
pub const THUMBNAIL_BOX: (u32, u32) = (320, 320);
/// JPEG quality of thumbnails.
pub const THUMBNAIL_QUALITY: u8 = 80;
/// Largest ICC profile copied into a thumbnail.
const MAX_ICC_BYTES: usize = 1024 * 1024;

/// A thumbnail and the facts of the image it was made from.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// `image/jpeg` bytes.
    pub jpeg: Vec<u8>,
    /// The thumbnail's size (orientation applied).
    pub width: u32,
    pub height: u32,
    /// The source image (its `width()`/`height()` are oriented).
    pub source: ImageInfo,
}

/// Makes the thumbnail of a JPEG, PNG, GIF or WebP (see the module docs).
pub fn thumbnail(bytes: &[u8]) -> Result<Thumbnail, ImagingError> {
    let (mut decoder, source) = open(bytes)?;
    // Kept so wide-gamut photos keep their colours; an unreadable or
    // oversized profile is dropped, not an error.
    let icc = decoder
        .icc_profile()
        .ok()
        .flatten()
        .filter(|p| !p.is_empty() && p.len() <= MAX_ICC_BYTES);
    let image = DynamicImage::from_decoder(decoder).map_err(ImagingError::Decode)?;
    // The box in the stored frame: axes swapped for orientations 5–8.
    let (box_w, box_h) = if source.swaps_axes() {
        (THUMBNAIL_BOX.1, THUMBNAIL_BOX.0)
    } else {
        THUMBNAIL_BOX
    };
    let (w, h) = fit_within(image.width(), image.height(), box_w, box_h);
    let mut small = if (w, h) == (image.width(), image.height()) {
        image
    } else {
        image.thumbnail_exact(w, h)
    };
    if let Some(orientation) = Orientation::from_exif(source.orientation) {
        small.apply_orientation(orientation);
    }
    let rgb = on_white(small);
    let mut jpeg = Cursor::new(Vec::new());
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY);
    if let Some(icc) = icc {
        // Refused only for profiles over the APP2 chunking limit: go without.
        let _ = encoder.set_icc_profile(icc);
    }
    encoder.encode_image(&rgb).map_err(ImagingError::Encode)?;
    Ok(Thumbnail {
        jpeg: jpeg.into_inner(),
        width: rgb.width(),
        height: rgb.height(),
        source,
    })
}

/// The largest size with `w:h`'s aspect that fits `box_w`×`box_h` and is no
/// larger than `w`×`h`; each side at least 1.
fn fit_within(w: u32, h: u32, box_w: u32, box_h: u32) -> (u32, u32) {
    if w <= box_w && h <= box_h {
        return (w, h);
    }
    // Scale by the tighter side, in integers: w/h rounded, never 0.
    let (w64, h64) = (u64::from(w), u64::from(h));
    if w64 * u64::from(box_h) >= h64 * u64::from(box_w) {
        let nh = ((h64 * u64::from(box_w) + w64 / 2) / w64).max(1);
        (box_w, nh as u32)
    } else {
        let nw = ((w64 * u64::from(box_h) + h64 / 2) / h64).max(1);
        (nw as u32, box_h)
    }
}

pub(super) fn on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a)) + 127) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fixtures;
    use std::time::Instant;

    fn decode(jpeg: &[u8]) -> RgbImage {
        let img = image::load_from_memory(jpeg).unwrap();
        assert_eq!(image::guess_format(jpeg).unwrap(), image::ImageFormat::Jpeg);
        img.to_rgb8()
    }

    #[test]
    fn fits_the_box_keeping_aspect() {
        assert_eq!(fit_within(4000, 3000, 320, 320), (320, 240));
        assert_eq!(fit_within(3000, 4000, 320, 320), (240, 320));
        assert_eq!(fit_within(100, 50, 320, 320), (100, 50));
        assert_eq!(fit_within(16_384, 1, 320, 320), (320, 1));
        assert_eq!(fit_within(641, 640, 320, 320), (320, 320));
    }

    #[test]
    fn large_images_shrink_to_fit_320() {
        let t0 = Instant::now();
        let t = thumbnail(&fixtures::jpeg(800, 400)).unwrap();
        let elapsed = t0.elapsed();
        assert_eq!((t.width, t.height), (320, 160));
        assert_eq!((t.source.width(), t.source.height()), (800, 400));
        let img = decode(&t.jpeg);
        assert_eq!(img.dimensions(), (320, 160));
        eprintln!("thumbnail of an 800x400 JPEG (debug build): {elapsed:?}");
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let t = thumbnail(&fixtures::png(40, 30)).unwrap();
        assert_eq!((t.width, t.height), (40, 30));
        assert_eq!(decode(&t.jpeg).dimensions(), (40, 30));
    }

    #[test]
    fn orientation_six_swaps_width_and_height_and_rotates_clockwise() {
        // Left half red, right half blue, stored 400x200; orientation 6 means
        // "rotate 90° clockwise to display": red ends up on top.
        let stored = RgbImage::from_fn(400, 200, |x, _| {
            if x < 200 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut enc = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(stored)
            .write_to(&mut enc, image::ImageFormat::Jpeg)
            .unwrap();
        let jpeg = fixtures::with_exif_app1(&enc.into_inner(), 6);
        let t = thumbnail(&jpeg).unwrap();
        assert_eq!((t.source.width(), t.source.height()), (200, 400));
        assert_eq!((t.width, t.height), (160, 320));
        let img = decode(&t.jpeg);
        assert_eq!(img.dimensions(), (160, 320));
        let top = img.get_pixel(80, 40).0;
        let bottom = img.get_pixel(80, 280).0;
        assert!(top[0] > 200 && top[2] < 60, "top {top:?}");
        assert!(bottom[2] > 200 && bottom[0] < 60, "bottom {bottom:?}");
    }

    #[test]
    fn every_format_and_alpha_on_white() {
        for bytes in [
            fixtures::gif(30, 20),
            fixtures::webp(30, 20),
            fixtures::png_rgba(30, 20),
        ] {
            let t = thumbnail(&bytes).unwrap();
            assert_eq!((t.width, t.height), (30, 20));
        }
        // Column 0 of png_rgba is fully transparent red: white after blending.
        let t = thumbnail(&fixtures::png_rgba(30, 20)).unwrap();
        let px = decode(&t.jpeg).get_pixel(0, 10).0;
        assert!(px.iter().all(|&c| c > 230), "{px:?}");
    }

    #[test]
    fn the_icc_profile_is_carried_over() {
        let profile = b"a stand-in ICC profile: decoders pass it through unread".to_vec();
        let png = fixtures::png_with_icc(24, 24, &profile);
        let t = thumbnail(&png).unwrap();
        assert!(fixtures::contains(&t.jpeg, b"ICC_PROFILE\0"));
        assert!(fixtures::contains(&t.jpeg, &profile));
        let plain = thumbnail(&fixtures::png(24, 24)).unwrap();
        assert!(!fixtures::contains(&plain.jpeg, b"ICC_PROFILE"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Damaged images give an error or a bounded thumbnail, never a panic.
        #[test]
        fn never_panics_on_damaged_images(
            which in 0usize..4,
            cut in 0usize..3000,
            flips in proptest::collection::vec((0usize..3000, proptest::prelude::any::<u8>()), 0..6),
        ) {
            let mut bytes = match which {
                0 => fixtures::with_all_jpeg_metadata(&fixtures::jpeg(40, 30), 6),
                1 => fixtures::png(40, 30),
                2 => fixtures::webp(40, 30),
                _ => fixtures::gif(40, 30),
            };
            for (at, b) in flips {
                if at < bytes.len() && at >= 4 { bytes[at] = b; }
            }
            bytes.truncate(cut.max(4));
            if let Ok(t) = thumbnail(&bytes) {
                proptest::prop_assert!(t.width <= 320 && t.height <= 320);
            }
        }
    }

    #[test]
    fn bombs_are_refused_before_decoding() {
        assert!(matches!(
            thumbnail(&fixtures::png_header_only(60_000, 60_000)),
            Err(ImagingError::TooManyPixels { .. })
        ));
        assert!(matches!(
            thumbnail(b"not an image"),
            Err(ImagingError::Unsupported)
        ));
    }
}
