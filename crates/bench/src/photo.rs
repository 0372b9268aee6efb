//! A synthetic photo: a `width × height` RGB picture with smooth gradients,
//! soft low-frequency shapes and per-pixel sensor-like noise, JPEG-encoded.
//! The noise keeps it from compressing trivially (a flat or purely smooth
//! picture would be a few hundred KB at 12 MP, far from a camera's file), and a
//! fixed seed makes every run upload the same bytes.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, RgbImage};

/// JPEG quality of the generated file (a phone camera's usual range).
pub const QUALITY: u8 = 90;

/// xorshift64*: cheap, deterministic per-pixel noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The picture itself (deterministic for a given size).
pub fn pixels(width: u32, height: u32) -> RgbImage {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (f64::from(x) / w, f64::from(y) / h);
        // Sky above a horizon at 40 %, warmer ground below.
        let (mut r, mut g, mut b) = if v < 0.4 {
            (90.0 + 80.0 * v, 140.0 + 60.0 * v, 230.0 - 40.0 * v)
        } else {
            (120.0 + 60.0 * u, 100.0 + 40.0 * (1.0 - v), 60.0 + 30.0 * u)
        };
        // Soft shapes: a few low-frequency waves across the frame.
        let wave = (u * 7.0).sin() * (v * 5.0).cos() * 35.0 + (u * 23.0 + v * 17.0).sin() * 12.0;
        r += wave;
        g += wave * 0.8;
        b -= wave * 0.5;
        // Sensor noise: ±12 per channel.
        let n = noise.next();
        let jitter = |shift: u32| ((n >> shift) & 0xff) as f64 / 255.0 * 24.0 - 12.0;
        let px = |c: f64| c.clamp(0.0, 255.0) as u8;
        image::Rgb([px(r + jitter(0)), px(g + jitter(8)), px(b + jitter(16))])
    })
}

/// The picture as a baseline JPEG at [`QUALITY`].
pub fn jpeg(width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    let img = pixels(width, height);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY).encode(
        img.as_raw(),
        width,
        height,
        ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_deterministic_jpeg_of_the_requested_size() {
        let a = jpeg(64, 48).unwrap();
        assert_eq!(&a[..3], &[0xff, 0xd8, 0xff], "JPEG SOI marker");
        assert_eq!(a, jpeg(64, 48).unwrap());
        let img = image::load_from_memory_with_format(&a, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (64, 48));
    }

    #[test]
    fn noise_keeps_it_from_compressing_trivially() {
        // 400×300 RGB is 360,000 bytes raw; a flat picture would be ~2 KB.
        let n = jpeg(400, 300).unwrap().len();
        assert!(n > 40_000, "{n} bytes");
    }
}
