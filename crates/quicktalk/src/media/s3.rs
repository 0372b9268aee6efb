//! The S3-compatible media store, over `object_store`'s `AmazonS3`: for several
//! nodes sharing one bucket (AWS S3, MinIO, Garage, moto…). With an endpoint,
//! requests are path-style (`ENDPOINT/BUCKET/KEY`) and `http://` is allowed, as
//! local S3 servers need.
//!
//! A `put` buffers up to [`PART_SIZE`] bytes; a body that ends within it is one
//! `PUT`. A longer one becomes a multipart upload of `PART_SIZE` parts with at
//! most [`MAX_PARTS_IN_FLIGHT`] being sent, so memory stays bounded whatever
//! the size. Going over `max_bytes`, or a body error, aborts the upload: S3
//! shows an object only once its upload completes, so nothing is left under the
//! key. A `put` cancelled mid-way (its future dropped) cannot abort and leaves
//! an invisible incomplete upload; a bucket lifecycle rule
//! (`AbortIncompleteMultipartUpload`) reclaims those.

use std::ops::Range;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart,
};

use super::{
    check_prefix, resolve_range, BodyStream, MediaError, MediaKey, MediaObject, MediaRead,
    MediaStore, S3Config,
};

/// Size of a multipart part (S3's minimum for all parts but the last).
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded concurrently by one `put`.
pub const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Media objects in one S3 bucket.
#[derive(Debug)]
pub struct S3Store {
    bucket: AmazonS3,
}

impl S3Store {
    /// A store over `config`'s bucket; credentials and unset settings from the
    /// AWS environment variables. Makes no request.
    pub fn new(config: &S3Config) -> Result<Self, MediaError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        Ok(Self {
            bucket: builder.build()?,
        })
    }
}

/// Aborts a multipart upload (its parts are dropped; no object appears).
async fn abort(writer: WriteMultipart, key: &MediaKey) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(key = %key, error = %e, "aborting a multipart upload failed");
    }
}

fn path_of(key: &MediaKey) -> Path {
    // Keys are `[a-z]+/[A-Za-z0-9_-]+`: two path segments needing no encoding.
    Path::from(key.as_str())
}

#[async_trait]
impl MediaStore for S3Store {
    async fn put(
        &self,
        key: &MediaKey,
        mut body: BodyStream<'_>,
        max_bytes: u64,
    ) -> Result<u64, MediaError> {
        let path = path_of(key);
        let mut head = BytesMut::new();
        let mut upload: Option<WriteMultipart> = None;
        let mut size = 0u64;
        let streamed: Result<(), MediaError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(MediaError::Body)?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(MediaError::TooLarge { limit: max_bytes });
                }
                match upload.as_mut() {
                    Some(writer) => {
                        writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                        writer.put(chunk);
                    }
                    None => {
                        head.extend_from_slice(&chunk);
                        if head.len() >= PART_SIZE {
                            let parts = self.bucket.put_multipart(&path).await?;
                            let mut writer = WriteMultipart::new_with_chunk_size(parts, PART_SIZE);
                            writer.put(head.split().freeze());
                            upload = Some(writer);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        match (streamed, upload) {
            (Err(e), Some(writer)) => {
                abort(writer, key).await;
                Err(e)
            }
            (Err(e), None) => Err(e),
            (Ok(()), Some(mut writer)) => {
                // `finish` aborts when completing fails, not when a part did.
                if let Err(e) = writer.wait_for_capacity(0).await {
                    abort(writer, key).await;
                    return Err(e.into());
                }
                writer.finish().await?;
                Ok(size)
            }
            (Ok(()), None) => {
                self.bucket
                    .put(&path, PutPayload::from(head.freeze()))
                    .await?;
                Ok(size)
            }
        }
    }

    async fn get(
        &self,
        key: &MediaKey,
        range: Option<Range<u64>>,
    ) -> Result<MediaRead, MediaError> {
        let path = path_of(key);
        if let Some(r) = &range {
            // Refuse what no object size makes valid without asking.
            resolve_range(Some(r.clone()), u64::MAX)?;
        }
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = match self.bucket.get_opts(&path, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(MediaError::NotFound),
            Err(e) => {
                // A range starting past the end is an error whose kind differs by
                // server: tell it apart by the object's size.
                if let Some(r) = range {
                    let size = self.size(key).await?.ok_or(MediaError::NotFound)?;
                    resolve_range(Some(r), size)?;
                }
                return Err(e.into());
            }
        };
        let total_size = result.meta.size;
        let range = result.range.clone();
        Ok(MediaRead {
            body: result.into_stream().map_err(MediaError::from).boxed(),
            range,
            total_size,
        })
    }

    async fn size(&self, key: &MediaKey) -> Result<Option<u64>, MediaError> {
        match self.bucket.head(&path_of(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &MediaKey) -> Result<(), MediaError> {
        match self.bucket.delete(&path_of(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn list_older_than(
        &self,
        prefix: &str,
        cutoff: SystemTime,
    ) -> Result<BoxStream<'static, Result<MediaObject, MediaError>>, MediaError> {
        check_prefix(prefix)?;
        let cutoff = DateTime::<Utc>::from(cutoff);
        let listing = self
            .bucket
            .list(Some(&Path::from(prefix)))
            .map_err(MediaError::from)
            .try_filter_map(move |meta| async move {
                if meta.last_modified >= cutoff {
                    return Ok(None);
                }
                // Objects not of the key shape are not ours: skipped.
                Ok(MediaKey::parse(meta.location.as_ref())
                    .ok()
                    .map(|key| MediaObject {
                        key,
                        size: meta.size,
                        modified: meta.last_modified.into(),
                    }))
            });
        Ok(listing.boxed())
    }
}
