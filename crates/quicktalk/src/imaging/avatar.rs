//! Avatars (contract §7): an uploaded image re-encoded to fixed square sizes.
//! The source is decoded under [`crate::imaging::inspect`]'s bomb check, its EXIF
//! orientation applied, centre-cropped to a square, scaled to [`AVATAR_LARGE`]
//! and [`AVATAR_SMALL`] pixels a side (never enlarged past its own size: a small
//! source is scaled up only to fill the square), put on white and encoded as
//! JPEG, so no metadata of the original survives.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageEncoder};

use super::inspect::open;
use super::thumbnail::on_white;
use super::ImagingError;

/// The side of the large avatar (profile cards), in pixels.
pub const AVATAR_LARGE: u32 = 256;
/// The side of the small avatar (beside messages, member lists).
pub const AVATAR_SMALL: u32 = 64;
const AVATAR_QUALITY: u8 = 85;

/// An avatar's two JPEGs.
#[derive(Debug, Clone)]
pub struct Avatar {
    pub large: Vec<u8>,
    pub small: Vec<u8>,
}

/// Makes both avatar sizes of a JPEG, PNG, GIF or WebP (its first frame).
pub fn avatar(bytes: &[u8]) -> Result<Avatar, ImagingError> {
    let (decoder, source) = open(bytes)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(ImagingError::Decode)?;
    if let Some(orientation) = Orientation::from_exif(source.orientation) {
        image.apply_orientation(orientation);
    }
    let side = image.width().min(image.height()).max(1);
    let x = (image.width() - side) / 2;
    let y = (image.height() - side) / 2;
    let square = image.crop_imm(x, y, side, side);
    let large = square.resize_exact(AVATAR_LARGE, AVATAR_LARGE, FilterType::CatmullRom);
    let small = large.resize_exact(AVATAR_SMALL, AVATAR_SMALL, FilterType::CatmullRom);
    Ok(Avatar {
        large: encode(large)?,
        small: encode(small)?,
    })
}

fn encode(image: DynamicImage) -> Result<Vec<u8>, ImagingError> {
    let rgb = on_white(image);
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, AVATAR_QUALITY)
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(ImagingError::Encode)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 0, 255, 0])
            }
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn any_image_becomes_two_square_jpegs() {
        for (w, h) in [(640, 200), (100, 900), (10, 10), (1, 3)] {
            let a = avatar(&png(w, h)).unwrap();
            for (bytes, side) in [(&a.large, AVATAR_LARGE), (&a.small, AVATAR_SMALL)] {
                let img = image::load_from_memory(bytes).unwrap();
                assert_eq!((img.width(), img.height()), (side, side), "{w}x{h}");
                assert_eq!(
                    image::guess_format(bytes).unwrap(),
                    image::ImageFormat::Jpeg
                );
            }
        }
    }

    #[test]
    fn transparency_goes_on_white_and_the_centre_is_kept() {
        let a = avatar(&png(400, 100)).unwrap();
        let img = image::load_from_memory(&a.large).unwrap().to_rgb8();
        // The centred square spans the red left half and the transparent right half.
        let left = img.get_pixel(10, 128).0;
        let right = img.get_pixel(245, 128).0;
        assert!(left[0] > 200 && left[2] < 60, "{left:?}");
        assert!(right.iter().all(|c| *c > 220), "{right:?}");
    }

    #[test]
    fn not_an_image_is_refused() {
        assert!(avatar(b"hello, not an image").is_err());
    }
}
