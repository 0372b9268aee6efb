//! Avatars (contract §7): a user's own uploaded image, re-encoded to two square
//! JPEGs ([`crate::imaging::avatar`]) stored as `avatar/<id>_256` and
//! `avatar/<id>_64` beside the media objects. An avatar has an id of its own
//! (a fresh media id), so a changed avatar is a new URL and old ones can be
//! cached forever. The source upload stays an ordinary unattached file (the
//! media sweep removes it after its grace period).

use bytes::Bytes;
use futures_util::StreamExt as _;

use super::media::{media_error, new_media_id, MediaService};
use crate::error::{AppError, AppResult};
use crate::imaging::{self, MAX_IMAGE_BYTES};
use crate::media::{MediaKey, MediaRead};
use crate::model::{is_media_id, MediaKind, User};

/// The object prefix of avatars.
pub const AVATAR_PREFIX: &str = "avatar";

/// Which of an avatar's sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvatarSize {
    Large,
    Small,
}

impl AvatarSize {
    /// `?size=`: `64` is the small one, `256` (or none) the large one.
    pub fn parse(size: Option<&str>) -> AppResult<Self> {
        match size {
            None | Some("256") => Ok(AvatarSize::Large),
            Some("64") => Ok(AvatarSize::Small),
            Some(_) => Err(AppError::invalid("invalid_size", "size must be 64 or 256")),
        }
    }

    fn suffix(self) -> u32 {
        match self {
            AvatarSize::Large => imaging::AVATAR_LARGE,
            AvatarSize::Small => imaging::AVATAR_SMALL,
        }
    }
}

fn avatar_key(id: &str, size: AvatarSize) -> AppResult<MediaKey> {
    MediaKey::new(AVATAR_PREFIX, &format!("{id}_{}", size.suffix()))
        .map_err(|_| AppError::NotFound("avatar"))
}

fn not_an_image() -> AppError {
    AppError::invalid(
        "not_an_image",
        "an avatar must be a JPEG, PNG, GIF or WebP image",
    )
}

impl MediaService {
    /// Makes an avatar of file `media_id`, which `user` uploaded and which is an
    /// image: its new avatar id. Nothing is stored on failure.
    pub async fn make_avatar(&self, user: &User, media_id: &str) -> AppResult<String> {
        if !is_media_id(media_id) {
            return Err(AppError::NotFound("media"));
        }
        let media = self
            .store()
            .media(media_id)
            .await?
            .filter(|m| m.owner == user.id)
            .ok_or(AppError::NotFound("media"))?;
        if media.kind != MediaKind::Image || media.size > MAX_IMAGE_BYTES as u64 {
            return Err(not_an_image());
        }
        let _slot = self.image_slot().await?;
        let key = MediaKey::new(super::media::ORIGINAL, &media.id)
            .map_err(|_| AppError::NotFound("media"))?;
        let read = self.objects().get(&key, None).await.map_err(media_error)?;
        let bytes = collect(read, MAX_IMAGE_BYTES as u64).await?;
        let timer = self.metrics().media_image_seconds.start_timer();
        let avatar = tokio::task::spawn_blocking(move || imaging::avatar(&bytes))
            .await
            .map_err(AppError::internal)?
            .map_err(|_| not_an_image())?;
        timer.observe_duration();
        let id = new_media_id();
        let large = avatar_key(&id, AvatarSize::Large)?;
        let small = avatar_key(&id, AvatarSize::Small)?;
        for (key, jpeg) in [(&large, avatar.large), (&small, avatar.small)] {
            let body = futures_util::stream::once(async move { Ok(Bytes::from(jpeg)) }).boxed();
            if let Err(e) = self.objects().put(key, body, u64::MAX).await {
                self.delete_avatar(&id).await;
                return Err(media_error(e));
            }
        }
        Ok(id)
    }

    /// Opens avatar `id` at `size`; `404` when there is none.
    pub async fn open_avatar(&self, id: &str, size: AvatarSize) -> AppResult<MediaRead> {
        if !is_media_id(id) {
            return Err(AppError::NotFound("avatar"));
        }
        self.objects()
            .get(&avatar_key(id, size)?, None)
            .await
            .map_err(|e| match e {
                crate::media::MediaError::NotFound => AppError::NotFound("avatar"),
                e => media_error(e),
            })
    }

    /// Removes both objects of avatar `id` (best effort: a failure is logged).
    pub async fn delete_avatar(&self, id: &str) {
        for size in [AvatarSize::Large, AvatarSize::Small] {
            let Ok(key) = avatar_key(id, size) else {
                return;
            };
            if let Err(e) = self.objects().delete(&key).await {
                tracing::warn!(avatar = id, error = %e, "deleting an old avatar failed");
            }
        }
    }
}

/// Reads a whole object of at most `max` bytes.
async fn collect(read: MediaRead, max: u64) -> AppResult<Vec<u8>> {
    if read.total_size > max {
        return Err(not_an_image());
    }
    let mut out = Vec::with_capacity(read.total_size as usize);
    let mut body = read.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(media_error)?);
    }
    Ok(out)
}
