//! The local-disk media store: one file per object, `DIR/<prefix>/<name>`.
//! For a single node; a cluster needs a store every node sees ([`super::s3`]).
//!
//! A `put` writes `DIR/<prefix>/.tmp-<name>-<random>` (names of keys never start
//! with a dot, so no key can name a temp file), fsyncs it, renames it over the
//! final name and fsyncs the directory: after a crash there is the old object or
//! the new one under the key, never half of one. A refused, failed or cancelled
//! `put` removes its temp file; temp files a crash left behind are removed by
//! [`LocalStore::open`] once older than [`STALE_TEMP_AGE`].

use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::fs;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::{
    check_prefix, resolve_range, BodyStream, MediaError, MediaKey, MediaObject, MediaRead,
    MediaStore,
};

const TEMP_PREFIX: &str = ".tmp-";
/// Temp files older than this are a crashed `put`'s and are removed on open.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);
const READ_CHUNK: usize = 64 * 1024;

/// Media objects as files under one directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (creating it if needed) the store under `root`, and removes stale
    /// temp files of crashed writes.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self, MediaError> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(&root).await?;
        let store = Self { root };
        store.remove_stale_temps(STALE_TEMP_AGE).await?;
        Ok(store)
    }

    fn path_of(&self, key: &MediaKey) -> PathBuf {
        self.root.join(key.prefix()).join(key.name())
    }

    /// Removes temp files older than `age` in every prefix directory.
    async fn remove_stale_temps(&self, age: Duration) -> Result<(), MediaError> {
        let now = SystemTime::now();
        let mut dirs = fs::read_dir(&self.root).await?;
        while let Some(dir) = dirs.next_entry().await? {
            if !dir.file_type().await?.is_dir() {
                continue;
            }
            let mut entries = fs::read_dir(dir.path()).await?;
            while let Some(entry) = entries.next_entry().await? {
                if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                    continue;
                }
                let modified = entry.metadata().await?.modified()?;
                if now.duration_since(modified).unwrap_or_default() >= age {
                    remove_if_present(&entry.path()).await?;
                }
            }
        }
        Ok(())
    }
}

/// Removes a temp file when dropped, unless disarmed (the `put` finished).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // Drop cannot await; removing one directory entry is short.
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[async_trait]
impl MediaStore for LocalStore {
    async fn put(
        &self,
        key: &MediaKey,
        mut body: BodyStream<'_>,
        max_bytes: u64,
    ) -> Result<u64, MediaError> {
        let dir = self.root.join(key.prefix());
        fs::create_dir_all(&dir).await?;
        let temp_path = dir.join(format!(
            "{TEMP_PREFIX}{}-{:016x}",
            key.name(),
            rand::random::<u64>()
        ));
        let mut guard = TempFile(Some(temp_path.clone()));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .await?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(MediaError::Body)?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(MediaError::TooLarge { limit: max_bytes });
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        fs::rename(&temp_path, self.path_of(key)).await?;
        guard.0 = None;
        fs::File::open(&dir).await?.sync_all().await?;
        Ok(size)
    }

    async fn get(
        &self,
        key: &MediaKey,
        range: Option<Range<u64>>,
    ) -> Result<MediaRead, MediaError> {
        let mut file = match fs::File::open(self.path_of(key)).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(MediaError::NotFound),
            other => other?,
        };
        let total_size = file.metadata().await?.len();
        let range = resolve_range(range, total_size)?;
        file.seek(SeekFrom::Start(range.start)).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(
            file.take(range.end - range.start),
            READ_CHUNK,
        )
        .map_err(MediaError::Io)
        .boxed();
        Ok(MediaRead {
            body,
            range,
            total_size,
        })
    }

    async fn size(&self, key: &MediaKey) -> Result<Option<u64>, MediaError> {
        match fs::metadata(self.path_of(key)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &MediaKey) -> Result<(), MediaError> {
        Ok(remove_if_present(&self.path_of(key)).await?)
    }

    fn list_older_than(
        &self,
        prefix: &str,
        cutoff: SystemTime,
    ) -> Result<BoxStream<'static, Result<MediaObject, MediaError>>, MediaError> {
        check_prefix(prefix)?;
        let prefix = prefix.to_owned();
        let start = Listing::Start(self.root.join(&prefix));
        let listing = stream::unfold(start, move |state| {
            let prefix = prefix.clone();
            async move {
                let mut entries = match state {
                    Listing::Done => return None,
                    Listing::Reading(entries) => entries,
                    Listing::Start(dir) => match fs::read_dir(&dir).await {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
                        Err(e) => return Some((Err(e.into()), Listing::Done)),
                    },
                };
                loop {
                    match next_older(&mut entries, &prefix, cutoff).await {
                        Ok(Some(Some(object))) => {
                            return Some((Ok(object), Listing::Reading(entries)))
                        }
                        Ok(Some(None)) => continue,
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e.into()), Listing::Done)),
                    }
                }
            }
        });
        Ok(listing.boxed())
    }
}

/// Where a listing is.
enum Listing {
    Start(PathBuf),
    Reading(fs::ReadDir),
    Done,
}

/// The next directory entry: `None` at the end, `Some(None)` for an entry that
/// is not a listed object (temp file, foreign name, too new).
async fn next_older(
    entries: &mut fs::ReadDir,
    prefix: &str,
    cutoff: SystemTime,
) -> io::Result<Option<Option<MediaObject>>> {
    let Some(entry) = entries.next_entry().await? else {
        return Ok(None);
    };
    let name = entry.file_name();
    let Some(key) = name
        .to_str()
        .and_then(|name| MediaKey::new(prefix, name).ok())
    else {
        return Ok(Some(None));
    };
    let meta = match entry.metadata().await {
        Ok(meta) => meta,
        // Deleted while listing.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(None)),
        Err(e) => return Err(e),
    };
    let modified = meta.modified()?;
    if !meta.is_file() || modified >= cutoff {
        return Ok(Some(None));
    }
    Ok(Some(Some(MediaObject {
        key,
        size: meta.len(),
        modified,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_removes_only_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let key = MediaKey::parse("orig/kept").unwrap();
        let body = futures_util::stream::iter([Ok(bytes::Bytes::from_static(b"x"))]).boxed();
        store.put(&key, body, 10).await.unwrap();
        let stale = dir.path().join("orig/.tmp-crashed-1");
        let fresh = dir.path().join("orig/.tmp-writing-2");
        std::fs::write(&stale, b"half").unwrap();
        std::fs::write(&fresh, b"half").unwrap();
        let old = SystemTime::now() - STALE_TEMP_AGE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();

        let store = LocalStore::open(dir.path()).await.unwrap();
        assert!(!stale.exists(), "a crashed put's temp file survived open");
        assert!(fresh.exists(), "a temp file of a running put was removed");
        assert_eq!(store.size(&key).await.unwrap(), Some(1));
        let listed: Vec<_> = store
            .list_older_than("orig", SystemTime::now() + Duration::from_secs(60))
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "temp files are never listed: {listed:?}");
    }
}
