//! Resumable uploads (the domain side of tus 1.0, `http::uploads`): a file
//! sent in pieces that survives dropped connections.
//!
//! Each piece is streamed into the media store as an object of its own
//! (`part/<upload id>_<offset>_<random>`); the upload's record (offset, parts
//! in order) moves forward with a compare-and-set, so of two pieces sent for
//! the same offset exactly one counts and the other's object is removed. A
//! piece whose connection drops is not kept: its `put` fails and leaves
//! nothing, and the client resumes from the recorded offset (so a drop costs
//! at most one piece; clients send pieces of a few MiB). When the last byte
//! has arrived, the pieces are read back in order through the same
//! [`MediaService::ingest`] as a direct upload (sniffing, metadata
//! stripping, thumbnail), the file gets the upload's id, and the pieces and
//! the record go. Records and pieces live in the shared store and database,
//! so any node may take the next piece.

use futures_util::{StreamExt as _, TryStreamExt as _};
use rand::Rng as _;

use super::media::{media_error, new_media_id, MediaService, PART};
use crate::error::{AppError, AppResult};
use crate::media::{BodyStream, MediaError, MediaKey};
use crate::model::{is_media_id, now_ms, Media, User};
use crate::store::media::Upload;

/// Pieces one upload may be sent in.
pub const MAX_PIECES: usize = 1000;

/// Where an upload stands.
#[derive(Debug)]
pub enum UploadState {
    InProgress(Upload),
    /// Finished: the file it became (same id).
    Done(Media),
}

impl MediaService {
    /// Starts a resumable upload of `length` bytes named `raw_name`.
    pub async fn start_upload(
        &self,
        user: &User,
        raw_name: &str,
        length: u64,
    ) -> AppResult<Upload> {
        let name = self.file_name(raw_name)?;
        self.room_for(user, Some(length)).await?;
        let now = now_ms();
        let upload = Upload {
            id: new_media_id(),
            owner: user.id,
            name,
            length,
            offset: 0,
            parts: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        self.store().create_upload(upload.clone()).await?;
        Ok(upload)
    }

    /// `user`'s upload `id`, in progress or done; `404` for anyone else's.
    pub async fn upload_state(&self, user: &User, id: &str) -> AppResult<UploadState> {
        if !is_media_id(id) {
            return Err(AppError::NotFound("upload"));
        }
        if let Some(u) = self.store().upload(id).await? {
            if u.owner == user.id {
                return Ok(UploadState::InProgress(u));
            }
            return Err(AppError::NotFound("upload"));
        }
        match self.store().media(id).await? {
            Some(m) if m.owner == user.id => Ok(UploadState::Done(m)),
            _ => Err(AppError::NotFound("upload")),
        }
    }

    /// Appends one piece starting at `offset` (which must be the upload's
    /// offset: `409 offset_mismatch` otherwise). The upload as it now stands;
    /// after its last byte, the finished file.
    pub async fn append_piece(
        &self,
        user: &User,
        id: &str,
        offset: u64,
        body: BodyStream<'_>,
    ) -> AppResult<UploadState> {
        let upload = match self.upload_state(user, id).await? {
            UploadState::InProgress(u) => u,
            done @ UploadState::Done(_) => return Ok(done),
        };
        if offset != upload.offset {
            return Err(AppError::conflict(
                "offset_mismatch",
                format!("the upload is at offset {}, not {offset}", upload.offset),
            ));
        }
        let upload = if upload.offset < upload.length {
            if upload.parts.len() >= MAX_PIECES {
                return Err(AppError::invalid(
                    "too_many_pieces",
                    format!("an upload may be sent in at most {MAX_PIECES} pieces"),
                ));
            }
            let suffix: u32 = rand::thread_rng().gen();
            let key =
                MediaKey::new(PART, &format!("{id}_{offset}_{suffix:08x}")).map_err(media_error)?;
            let left = upload.length - upload.offset;
            let n = self
                .objects()
                .put(&key, body, left)
                .await
                .map_err(|e| match e {
                    MediaError::TooLarge { .. } => AppError::TooLarge(
                        format!("the piece goes past the upload's length ({left} bytes left)")
                            .into(),
                    ),
                    e => media_error(e),
                })?;
            if n == 0 {
                let _ = self.objects().delete(&key).await;
                return Ok(UploadState::InProgress(upload));
            }
            let to = offset + n;
            let moved = self
                .store()
                .advance_upload(id, offset, to, key.as_str(), now_ms())
                .await?;
            if !moved {
                let _ = self.objects().delete(&key).await;
                return Err(AppError::conflict(
                    "offset_mismatch",
                    "another piece for this offset arrived first; ask for the offset again",
                ));
            }
            let mut upload = upload;
            upload.offset = to;
            upload.parts.push(key.as_str().to_owned());
            upload
        } else {
            upload
        };
        if upload.offset < upload.length {
            return Ok(UploadState::InProgress(upload));
        }
        self.finish(user, upload).await.map(UploadState::Done)
    }

    /// Reads the pieces back in order into the finished file, then forgets them.
    async fn finish(&self, user: &User, upload: Upload) -> AppResult<Media> {
        let keys: Vec<MediaKey> = upload
            .parts
            .iter()
            .map(|p| MediaKey::parse(p))
            .collect::<Result<_, _>>()
            .map_err(media_error)?;
        let objects = self.objects().clone();
        let body = futures_util::stream::iter(keys.clone())
            .then(move |k| {
                let objects = objects.clone();
                async move { objects.get(&k, None).await.map(|r| r.body) }
            })
            .try_flatten()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed();
        let result = match self.room_for(user, Some(upload.length)).await {
            Ok(_) => {
                self.ingest(
                    user,
                    upload.id.clone(),
                    upload.name.clone(),
                    body,
                    upload.length,
                )
                .await
            }
            Err(e) => Err(e),
        };
        // Done or refused for good (an invalid image, the quota): either way the
        // pieces have served their purpose.
        self.store().delete_upload(&upload.id).await?;
        for k in &keys {
            let _ = self.objects().delete(k).await;
        }
        result
    }

    /// Cancels `user`'s upload `id`: its record and every stored piece go.
    pub async fn cancel_upload(&self, user: &User, id: &str) -> AppResult<()> {
        let upload = match self.upload_state(user, id).await? {
            UploadState::InProgress(u) => u,
            UploadState::Done(_) => {
                return Err(AppError::conflict(
                    "upload_finished",
                    "the upload is finished; it is a file now",
                ))
            }
        };
        if self.store().delete_upload(&upload.id).await? {
            for p in &upload.parts {
                if let Ok(k) = MediaKey::parse(p) {
                    self.objects().delete(&k).await.map_err(media_error)?;
                }
            }
        }
        Ok(())
    }
}
