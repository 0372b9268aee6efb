//! The type of an upload, sniffed from its first bytes with `infer`: the
//! client's `Content-Type` and file name are never trusted for it.
//!
//! [`MediaKind`] is what the UI may do with a file: `image`, `video` and
//! `audio` only for the types [`safe_inline`] allows (the ones browsers
//! render without running anything); a TIFF, an AVI or an SVG is a `file`.

/// How many leading bytes are looked at (every `infer` matcher for the types
/// we care about decides within the first few hundred).
pub const SNIFF_BYTES: usize = 8 * 1024;

pub use crate::model::MediaKind;

/// The sniffed type of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// `application/octet-stream` when nothing matched.
    pub mime: &'static str,
    /// The usual extension for `mime` (no dot), empty when unknown.
    pub extension: &'static str,
    pub kind: MediaKind,
}

/// Sniffs `bytes` (only the first [`SNIFF_BYTES`] are read).
pub fn sniff(bytes: &[u8]) -> Sniffed {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    match infer::get(head) {
        Some(t) => Sniffed {
            mime: t.mime_type(),
            extension: t.extension(),
            kind: kind_of(t.mime_type()),
        },
        None => Sniffed {
            mime: "application/octet-stream",
            extension: "",
            kind: MediaKind::File,
        },
    }
}

/// The [`MediaKind`] of a (sniffed) mime type: `file` unless it is safe inline.
pub fn kind_of(mime: &str) -> MediaKind {
    let mime = essence(mime);
    if !safe_inline(&mime) {
        return MediaKind::File;
    }
    match mime.split('/').next() {
        Some("image") => MediaKind::Image,
        Some("video") => MediaKind::Video,
        Some("audio") => MediaKind::Audio,
        _ => MediaKind::File,
    }
}

/// Whether a file of this type may be served `Content-Disposition: inline`:
/// raster images (JPEG, PNG, GIF, WebP) and common audio/video (MP4, WebM,
/// Ogg, MP3, WAV). SVG, HTML, PDF and everything else: never (they can run
/// script or are rendered by plugins). Parameters and case are ignored.
pub fn safe_inline(mime: &str) -> bool {
    matches!(
        essence(mime).as_str(),
        "image/jpeg"
            | "image/png"
            | "image/gif"
            | "image/webp"
            | "video/mp4"
            | "video/webm"
            | "video/ogg"
            | "audio/mp4"
            | "audio/m4a"
            | "audio/ogg"
            | "audio/opus"
            | "audio/webm"
            | "audio/mpeg"
            | "audio/wav"
            | "audio/x-wav"
            | "audio/wave"
    )
}

/// `Type/Sub; charset=x` → `type/sub` (bounded: a mime longer than 255 bytes
/// is no known type).
fn essence(mime: &str) -> String {
    if mime.len() > 255 {
        return String::new();
    }
    mime.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fixtures;

    #[test]
    fn raster_images_are_sniffed_from_bytes() {
        let cases = [
            (fixtures::jpeg(8, 6), "image/jpeg", "jpg"),
            (fixtures::png(8, 6), "image/png", "png"),
            (fixtures::gif(8, 6), "image/gif", "gif"),
            (fixtures::webp(8, 6), "image/webp", "webp"),
        ];
        for (bytes, mime, ext) in cases {
            let s = sniff(&bytes);
            assert_eq!((s.mime, s.extension, s.kind), (mime, ext, MediaKind::Image));
        }
    }

    #[test]
    fn audio_and_video_kinds() {
        // Minimal headers: an ISO BMFF `ftyp` box, RIFF/WAVE, an ID3 tag, Ogg.
        let mp4 = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
        assert_eq!(sniff(mp4).kind, MediaKind::Video);
        let wav = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0";
        assert_eq!(sniff(wav).kind, MediaKind::Audio);
        let mp3 = b"ID3\x03\0\0\0\0\0\0";
        assert_eq!(sniff(mp3).mime, "audio/mpeg");
        assert_eq!(sniff(mp3).kind, MediaKind::Audio);
        let ogg = b"OggS\0\x02\0\0\0\0\0\0\0\0";
        assert_eq!(sniff(ogg).kind, MediaKind::Audio);
    }

    #[test]
    fn unsafe_or_unknown_types_are_files() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
        assert_eq!(sniff(svg).kind, MediaKind::File);
        assert_eq!(sniff(b"<!DOCTYPE html><html>").kind, MediaKind::File);
        assert_eq!(sniff(b"plain text").mime, "application/octet-stream");
        let tiff = b"II*\0\x08\0\0\0\0\0";
        assert_eq!(sniff(tiff).mime, "image/tiff");
        assert_eq!(sniff(tiff).kind, MediaKind::File);
        assert_eq!(sniff(b"%PDF-1.7\n").kind, MediaKind::File);
    }

    #[test]
    fn safe_inline_is_an_allow_list() {
        assert!(safe_inline("image/png"));
        assert!(safe_inline("Image/JPEG; q=1"));
        assert!(safe_inline("video/webm"));
        assert!(safe_inline("audio/mpeg"));
        for mime in [
            "image/svg+xml",
            "text/html",
            "application/xhtml+xml",
            "application/pdf",
            "image/tiff",
            "text/plain",
            "",
        ] {
            assert!(!safe_inline(mime), "{mime}");
        }
        assert!(!safe_inline(&format!("image/png{}", " ".repeat(300))));
    }
}
