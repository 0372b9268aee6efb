//! The one error type of [`crate::imaging`]: what went wrong with an image,
//! in terms a handler can map to a status (all of them are the client's input).

/// Why an image could not be inspected, stripped or thumbnailed.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The buffer is larger than [`super::MAX_IMAGE_BYTES`].
    #[error("image input of {len} bytes exceeds the limit of {max}")]
    InputTooLarge { len: usize, max: usize },
    /// Not JPEG, PNG, GIF or WebP (by magic bytes).
    #[error("not a supported raster image (jpeg, png, gif, webp)")]
    Unsupported,
    /// The header declares more pixels than [`super::MAX_SIDE`] /
    /// [`super::MAX_PIXELS`] allow: refused before any pixel is allocated.
    #[error("image of {width}x{height} pixels exceeds the limits")]
    TooManyPixels { width: u32, height: u32 },
    /// The container structure is broken (a length past the end, a missing
    /// marker): found while walking segments or chunks.
    #[error("malformed {format} image: {reason}")]
    Malformed {
        format: &'static str,
        reason: &'static str,
    },
    /// The codec refused the data or hit its allocation limit.
    #[error("image decoding failed: {0}")]
    Decode(#[source] image::ImageError),
    /// Encoding the thumbnail failed.
    #[error("thumbnail encoding failed: {0}")]
    Encode(#[source] image::ImageError),
}

impl ImagingError {
    pub(crate) fn malformed(format: &'static str, reason: &'static str) -> Self {
        Self::Malformed { format, reason }
    }
}
