//! Test images built in memory: small encodes from the `image` crate with
//! metadata spliced in by hand, so tests know exactly which bytes are whose.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// The GPS latitude 37° 33' 58.21" as three big-endian TIFF rationals: the
/// bytes a stripped image must no longer contain.
pub const GPS_LATITUDE: [u8; 24] = [
    0, 0, 0, 37, 0, 0, 0, 1, 0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0x16, 0xBD, 0, 0, 0, 100,
];
pub const XMP_TEXT: &[u8] =
    b"<x:xmpmeta><exif:GPSLatitude>37,33.97N</exif:GPSLatitude></x:xmpmeta>";
pub const COMMENT_TEXT: &[u8] = b"shot at home, 12 Example-ro";

pub fn rgb(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            128,
        ])
    })
}

fn encode(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(rgb(width, height)),
        ImageFormat::Jpeg,
    )
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(rgb(width, height)),
        ImageFormat::Png,
    )
}

/// A PNG whose iCCP chunk holds `profile` (the encoder compresses it).
pub fn png_with_icc(width: u32, height: u32, profile: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    enc.set_icc_profile(profile.to_vec()).unwrap();
    enc.write_image(
        rgb(width, height).as_raw(),
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    out
}

pub fn png_rgba(width: u32, height: u32) -> Vec<u8> {
    let img = RgbaImage::from_fn(width, height, |x, _| {
        Rgba([255, 0, 0, (x * 255 / width) as u8])
    });
    encode(DynamicImage::ImageRgba8(img), ImageFormat::Png)
}

pub fn gif(width: u32, height: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgb8(rgb(width, height)).to_rgba8();
    encode(DynamicImage::ImageRgba8(rgba), ImageFormat::Gif)
}

/// A lossless WebP in the simple format (one `VP8L` chunk).
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    encode(
        DynamicImage::ImageRgb8(rgb(width, height)),
        ImageFormat::WebP,
    )
}

/// A TIFF (Exif body) with IFD0 = {Orientation, GPS IFD pointer} and a GPS
/// IFD with a latitude, big-endian.
pub fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    // IFD0 at 8: 2 entries (2 + 24 bytes) + next 0 (4) → GPS IFD at 38.
    t.extend_from_slice(&2u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 38]);
    t.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD at 38: 2 entries + next → latitude data at 38 + 2 + 24 + 4 = 68.
    t.extend_from_slice(&2u16.to_be_bytes());
    t.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
    t.extend_from_slice(&[0, 2, 0, 5, 0, 0, 0, 3, 0, 0, 0, 68]);
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 68);
    t.extend_from_slice(&GPS_LATITUDE);
    t
}

fn jpeg_segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// `jpeg` with an Exif APP1 (orientation + GPS) right after SOI.
pub fn with_exif_app1(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut body = b"Exif\0\0".to_vec();
    body.extend_from_slice(&exif_tiff(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&jpeg_segment(0xE1, &body));
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// `jpeg` with every kind of metadata the stripper removes: Exif APP1 after
/// SOI, then an XMP APP1, an IPTC APP13
/// and a COM.
pub fn with_all_jpeg_metadata(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let with_exif = with_exif_app1(jpeg, orientation);
    let exif_len = with_exif.len() - jpeg.len();
    let at = 2 + exif_len;
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP_TEXT);
    let mut out = with_exif[..at].to_vec();
    out.extend_from_slice(&jpeg_segment(0xE1, &xmp));
    out.extend_from_slice(&jpeg_segment(0xED, b"Photoshop 3.0\0 8BIM city=Seoul"));
    out.extend_from_slice(&jpeg_segment(0xFE, COMMENT_TEXT));
    out.extend_from_slice(&with_exif[at..]);
    out
}

/// `jpeg` whose SOF header is patched to declare another size.
pub fn jpeg_with_declared_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let sof = out
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))
        .unwrap();
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    c.extend_from_slice(&h.finalize().to_be_bytes());
    c
}

/// `png` with eXIf, tEXt, zTXt, iTXt and tIME chunks after IHDR.
pub fn with_png_metadata(png: &[u8], orientation: u16) -> Vec<u8> {
    let ihdr_end = 8 + 8 + 13 + 4;
    let mut out = png[..ihdr_end].to_vec();
    out.extend_from_slice(&png_chunk(b"eXIf", &exif_tiff(orientation)));
    out.extend_from_slice(&png_chunk(
        b"tEXt",
        &[b"Comment\0".as_slice(), COMMENT_TEXT].concat(),
    ));
    out.extend_from_slice(&png_chunk(b"zTXt", b"Author\0\0\x78\x9c\x03\0\0\0\0\x01"));
    out.extend_from_slice(&png_chunk(
        b"iTXt",
        &[b"XML:com.adobe.xmp\0\0\0\0\0".as_slice(), XMP_TEXT].concat(),
    ));
    out.extend_from_slice(&png_chunk(b"tIME", &[7, 234, 12, 3, 12, 0, 0]));
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// A PNG of a signature, an IHDR declaring `width`×`height`, an empty IDAT
/// and IEND: a few dozen bytes.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
    out.extend_from_slice(&png_chunk(b"IDAT", &[]));
    out.extend_from_slice(&png_chunk(b"IEND", &[]));
    out
}

pub fn riff_chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = fourcc.to_vec();
    c.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

pub fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    out
}

pub fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut d = vec![flags, 0, 0, 0];
    d.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    d.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    riff_chunk(b"VP8X", &d)
}

/// The image chunk (`VP8L`) of a simple-format WebP from [`webp`].
pub fn webp_image_chunk(simple: &[u8]) -> Vec<u8> {
    simple[12..].to_vec()
}

/// An extended WebP: VP8X (EXIF + XMP flags), the image, EXIF (odd length,
/// so padded) and XMP chunks.
pub fn webp_with_metadata(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let simple = webp(width, height);
    let mut exif = exif_tiff(orientation);
    exif.push(0); // odd length: exercises the pad byte
    exif.push(0);
    exif.push(0);
    riff(&[
        vp8x(0x08 | 0x04, width, height),
        webp_image_chunk(&simple),
        riff_chunk(b"EXIF", &exif[..exif.len() - 2]),
        riff_chunk(b"XMP ", XMP_TEXT),
    ])
}

/// `gif` with a comment extension and an XMP application extension after
/// the global colour table.
pub fn with_gif_metadata(gif: &[u8]) -> Vec<u8> {
    let packed = gif[10];
    let gct = if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    };
    let at = 13 + gct;
    let mut out = gif[..at].to_vec();
    out.extend_from_slice(&[0x21, 0xFE, COMMENT_TEXT.len() as u8]);
    out.extend_from_slice(COMMENT_TEXT);
    out.push(0);
    out.extend_from_slice(&[0x21, 0xFF, 11]);
    out.extend_from_slice(b"XMP DataXMP");
    for chunk in XMP_TEXT.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out.push(0);
    out.extend_from_slice(&gif[at..]);
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
