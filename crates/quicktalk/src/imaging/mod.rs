//! Uploaded media, looked at as bytes: pure functions over in-memory buffers,
//! no I/O, no HTTP (contract §6; the routes and storage come later).
//!
//! Who owns what:
//! - [`sniff`]: the type of an upload from its first bytes (never the client's
//!   `Content-Type`), its [`MediaKind`], and whether it may be served inline;
//! - [`filename`]: the `?name=` a client sends, made safe to store and show;
//! - [`inspect`]: width, height and EXIF orientation of a raster image read
//!   from its header, and the decompression-bomb limits, before any pixels;
//! - [`strip`]: the stored original: the uploaded bytes with image metadata
//!   (EXIF, GPS, XMP, IPTC, comments) removed and nothing else changed;
//! - [`thumbnail`]: a bounded decode, orientation applied, a small JPEG.
//!
//! Invariants: every entry point refuses input over [`MAX_IMAGE_BYTES`];
//! no pixel buffer is allocated before [`inspect`] has checked the declared
//! size against [`MAX_SIDE`] and [`MAX_PIXELS`]; every decode runs under
//! [`image::Limits`] with a `max_alloc`.

pub mod avatar;
pub mod error;
pub mod filename;
pub mod inspect;
pub mod sniff;
pub mod strip;
pub mod thumbnail;

#[cfg(test)]
mod fixtures;

pub use avatar::{avatar, Avatar, AVATAR_LARGE, AVATAR_SMALL};
pub use error::ImagingError;
pub use filename::sanitize_filename;
pub use inspect::{inspect, ImageInfo, RasterFormat};
pub use sniff::{safe_inline, sniff, MediaKind, Sniffed};
pub use strip::strip_metadata;
pub use thumbnail::{thumbnail, Thumbnail, THUMBNAIL_BOX};

/// The largest image buffer any function here accepts (bytes). Uploads are
/// bounded by `--max-upload-bytes` (default 25 MiB) before they get here.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024 * 1024;
/// Longest accepted side of an image, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels (width × height) an image may declare.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Allocation budget of one decode: 40 MP at 4 bytes a pixel fits, with room
/// for the decoder's own tables; a 16-bit RGBA image that large does not.
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

fn check_input_len(len: usize) -> Result<(), ImagingError> {
    if len > MAX_IMAGE_BYTES {
        return Err(ImagingError::InputTooLarge {
            len,
            max: MAX_IMAGE_BYTES,
        });
    }
    Ok(())
}
