//! Media object storage: the bytes of uploaded files and their thumbnails.
//!
//! This module owns the narrow [`MediaStore`] seam and what every backend shares:
//! the key shape ([`MediaKey`], checked before any backend sees it, so no key can
//! name a path outside the store), the typed errors ([`MediaError`]), Range
//! resolution and the `--media-store` spec ([`spec`]). It knows nothing of HTTP,
//! users or messages; who may read an object is decided above it.
//!
//! Backends, one module each:
//! - [`local`]: files under a directory. For one node (the default, embedded
//!   setup): other nodes cannot see its files.
//! - [`s3`]: an S3-compatible bucket (AWS, MinIO, Garage, moto…). For several
//!   nodes sharing one store.
//!
//! Every `put` streams: the body is read chunk by chunk, never held whole, and
//! is refused with [`MediaError::TooLarge`] as soon as it passes `max_bytes`. A
//! refused, failed or cancelled `put` leaves no object under the key.

pub mod local;
pub mod s3;
pub mod spec;

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt as _;
use tokio::io::AsyncRead;

pub use spec::{MediaStoreSpec, S3Config, SpecError};

/// Longest key prefix (`orig`, `thumb`, …).
pub const MAX_PREFIX_LEN: usize = 16;
/// Longest key name (the part after the `/`).
pub const MAX_NAME_LEN: usize = 128;

/// An upload body: chunks of bytes, or the error that ended the upload.
pub type BodyStream<'a> = BoxStream<'a, io::Result<Bytes>>;
/// The bytes of a stored object, as read.
pub type ObjectStream = BoxStream<'static, Result<Bytes, MediaError>>;

/// Errors of a media store. `TooLarge`, `NotFound`, `BadKey` and `BadRange` are
/// the caller's to map (413, 404, 400, 416); `Body` is the uploader's fault;
/// `Io` and `Backend` are internal.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media key {0:?} is not of the form <prefix>/<name>")]
    BadKey(String),
    #[error("object larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no such object")]
    NotFound,
    #[error("range {start}..{end} is empty or starts past the end of the object")]
    BadRange { start: u64, end: u64 },
    #[error("reading the upload body: {0}")]
    Body(#[source] io::Error),
    #[error("media storage I/O: {0}")]
    Io(#[from] io::Error),
    #[error("object store: {0}")]
    Backend(#[source] Box<object_store::Error>),
}

impl From<object_store::Error> for MediaError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => MediaError::NotFound,
            e => MediaError::Backend(Box::new(e)),
        }
    }
}

/// The name of a stored object: `<prefix>/<name>`, where the prefix is 1 to
/// [`MAX_PREFIX_LEN`] lowercase ASCII letters (`orig`, `thumb`) and the name 1
/// to [`MAX_NAME_LEN`] of `[A-Za-z0-9_-]`. No dots, no other slashes: a key is
/// never a path to anywhere else, and a backend may use it as a relative path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaKey(String);

impl MediaKey {
    /// Checks `s` against the key shape.
    pub fn parse(s: &str) -> Result<Self, MediaError> {
        let bad = || MediaError::BadKey(s.chars().take(64).collect());
        let (prefix, name) = s.split_once('/').ok_or_else(bad)?;
        check_prefix(prefix).map_err(|_| bad())?;
        let name_ok = (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    /// `prefix/name`, both checked.
    pub fn new(prefix: &str, name: &str) -> Result<Self, MediaError> {
        Self::parse(&format!("{prefix}/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn prefix(&self) -> &str {
        self.0.split_once('/').map_or("", |(p, _)| p)
    }

    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, n)| n)
    }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaKey({})", self.0)
    }
}

/// Checks a key prefix (for [`MediaStore::list_older_than`]).
pub fn check_prefix(prefix: &str) -> Result<(), MediaError> {
    if (1..=MAX_PREFIX_LEN).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_lowercase())
    {
        Ok(())
    } else {
        Err(MediaError::BadKey(prefix.chars().take(64).collect()))
    }
}

/// A stored object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaObject {
    pub key: MediaKey,
    pub size: u64,
    /// When the object was written (file mtime, S3 `Last-Modified`).
    pub modified: SystemTime,
}

/// An object being read: its bytes in `range`, and its whole size (for
/// `Content-Range`).
pub struct MediaRead {
    pub body: ObjectStream,
    pub range: Range<u64>,
    pub total_size: u64,
}

impl fmt::Debug for MediaRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaRead")
            .field("range", &self.range)
            .field("total_size", &self.total_size)
            .finish_non_exhaustive()
    }
}

/// Where media bytes live. Implementations: [`local::LocalStore`],
/// [`s3::S3Store`]; one contract suite (`tests/media_store.rs`) runs on both.
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Streams `body` into the object `key`, replacing any object there, and
    /// returns its size. Over `max_bytes`: [`MediaError::TooLarge`], and no
    /// object is left under `key` (nor is an earlier one changed). The new object
    /// becomes visible whole or not at all.
    async fn put(
        &self,
        key: &MediaKey,
        body: BodyStream<'_>,
        max_bytes: u64,
    ) -> Result<u64, MediaError>;

    /// Reads `key`, all of it or `range` (its end is clamped to the object's
    /// size; an empty range or one starting at or past the end is
    /// [`MediaError::BadRange`]).
    async fn get(&self, key: &MediaKey, range: Option<Range<u64>>)
        -> Result<MediaRead, MediaError>;

    /// The size of `key`, or `None` when there is no such object.
    async fn size(&self, key: &MediaKey) -> Result<Option<u64>, MediaError>;

    /// Removes `key`; removing a missing object succeeds.
    async fn delete(&self, key: &MediaKey) -> Result<(), MediaError>;

    /// Objects under `prefix` (see [`check_prefix`]) written before `cutoff`, in
    /// no particular order: the candidates of the grace-period cleanup of files
    /// never attached to a message. A stream, so a large store is never listed
    /// into memory at once.
    fn list_older_than(
        &self,
        prefix: &str,
        cutoff: SystemTime,
    ) -> Result<BoxStream<'static, Result<MediaObject, MediaError>>, MediaError>;
}

/// Opens the store named by `spec`.
pub async fn open(spec: &MediaStoreSpec) -> Result<Arc<dyn MediaStore>, MediaError> {
    Ok(match spec {
        MediaStoreSpec::Local { dir } => Arc::new(local::LocalStore::open(dir).await?),
        MediaStoreSpec::S3(config) => Arc::new(s3::S3Store::new(config)?),
    })
}

/// An upload body read from `reader` in chunks of up to 64 KiB.
pub fn body_from_reader<'a>(reader: impl AsyncRead + Send + 'a) -> BodyStream<'a> {
    tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024).boxed()
}

/// The bytes of `requested` within an object of `size` bytes (all of it when
/// `None`), end clamped to `size`.
pub fn resolve_range(requested: Option<Range<u64>>, size: u64) -> Result<Range<u64>, MediaError> {
    match requested {
        None => Ok(0..size),
        Some(r) if r.start >= r.end || r.start >= size => Err(MediaError::BadRange {
            start: r.start,
            end: r.end,
        }),
        Some(r) => Ok(r.start..r.end.min(size)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_documented_shape_parse() {
        for k in [
            "orig/abc",
            "thumb/0123-ABC_z",
            "a/b",
            &format!("orig/{}", "x".repeat(128)),
        ] {
            let key = MediaKey::parse(k).unwrap();
            assert_eq!(key.as_str(), k);
        }
        let key = MediaKey::new("thumb", "42").unwrap();
        assert_eq!((key.prefix(), key.name()), ("thumb", "42"));
    }

    #[test]
    fn other_keys_are_refused() {
        let too_long_name = format!("orig/{}", "x".repeat(129));
        let too_long_prefix = format!("{}/x", "a".repeat(17));
        for k in [
            "",
            "orig",
            "orig/",
            "/abc",
            "orig/../etc",
            "orig/..",
            "orig/a/b",
            "../orig/a",
            "Orig/a",
            "orig/a.b",
            "orig/.tmp",
            "orig/a b",
            "orig/a\0",
            "orig\\a",
            "orig/é",
            "or1g/a",
            &too_long_name,
            &too_long_prefix,
        ] {
            assert!(
                matches!(MediaKey::parse(k), Err(MediaError::BadKey(_))),
                "{k:?} was accepted"
            );
        }
        assert!(check_prefix("orig").is_ok());
        for p in ["", "orig/", "..", "a.b", "ORIG"] {
            assert!(check_prefix(p).is_err(), "{p:?}");
        }
    }

    #[test]
    fn ranges_are_clamped_or_refused() {
        assert_eq!(resolve_range(None, 10).unwrap(), 0..10);
        assert_eq!(resolve_range(Some(2..5), 10).unwrap(), 2..5);
        assert_eq!(resolve_range(Some(8..100), 10).unwrap(), 8..10);
        for r in [5..5, Range { start: 6, end: 2 }, 10..11, 12..20] {
            assert!(matches!(
                resolve_range(Some(r.clone()), 10),
                Err(MediaError::BadRange { .. })
            ));
        }
        assert!(resolve_range(Some(0..1), 0).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the input, a key that parses is two plain segments that
        /// stay inside any directory they are joined to.
        #[test]
        fn a_parsed_key_is_never_a_path_elsewhere(s in "[a-z.]{0,4}/[A-Za-z0-9._/\\\\-]{0,8}|\\PC{0,200}") {
            if let Ok(key) = MediaKey::parse(&s) {
                prop_assert_eq!(key.as_str(), s.as_str());
                let path = std::path::Path::new(key.as_str());
                let parts: Vec<_> = path.components().collect();
                prop_assert_eq!(parts.len(), 2);
                prop_assert!(parts
                    .iter()
                    .all(|c| matches!(c, std::path::Component::Normal(_))));
                prop_assert!(!key.name().starts_with('.'));
            }
        }
    }
}
