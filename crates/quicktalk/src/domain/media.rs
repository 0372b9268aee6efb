//! Files in chat (contract §6), knowing nothing of HTTP: taking an upload in,
//! deciding who may read a file, checking a message's attachments, signing
//! URLs, and removing files no message ever carried.
//!
//! An upload is streamed: its first [`SNIFF_BYTES`] are read to sniff the type
//! from the bytes (the client's `Content-Type` is never trusted). A raster
//! image (JPEG, PNG, GIF, WebP; at most [`MAX_IMAGE_BYTES`]) is then read whole,
//! under a semaphore of [`IMAGE_WORKERS`] permits so memory stays bounded, and
//! worked on a blocking thread: the decompression-bomb check on its header,
//! metadata (EXIF, GPS…) stripped, a thumbnail made; an image that cannot be
//! stripped is refused (`invalid_image`), never stored with its metadata. Any
//! other file streams straight into the media store under the size limit,
//! so memory does not grow with the file. The file's record is written last;
//! objects whose record never came (a crash in between) are swept later.
//!
//! Who may read a file is the store's answer ([`Store::can_read_media`]: its
//! uploader, or a reader of a room with a message carrying it); everyone else
//! gets `404`, as if it did not exist.

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use quicktalk_moderation::Policy;
use rand::RngCore as _;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::moderation::moderate_text;
use super::signed_urls::{Signature, UrlSigner, Variant};
use crate::error::{AppError, AppResult};
use crate::imaging::{self, sniff::SNIFF_BYTES, RasterFormat, MAX_IMAGE_BYTES};
use crate::media::{BodyStream, MediaError, MediaKey, MediaRead, MediaStore};
use crate::metrics::Metrics;
use crate::model::{is_media_id, now_ms, Media, MediaId, MediaKind, User, UserId};
use crate::store::Store;

/// Images worked on at once (held from the first byte to the stored thumbnail).
pub const IMAGE_WORKERS: usize = 2;
/// Attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
/// Key prefixes in the media store.
pub const ORIGINAL: &str = "orig";
pub const THUMBNAIL: &str = "thumb";
pub const PART: &str = "part";

/// The limits uploads live under.
#[derive(Debug, Clone)]
pub struct MediaLimits {
    /// Largest file (`--max-upload-bytes`).
    pub max_upload_bytes: u64,
    /// Bytes a registered user may keep stored.
    pub quota_bytes: u64,
    /// Bytes a guest may keep stored.
    pub guest_quota_bytes: u64,
    /// How long a file may stay attached to no message before it is removed.
    pub grace: Duration,
}

/// A fresh random id (media and resumable uploads share the shape).
pub fn new_media_id() -> MediaId {
    use base64::Engine as _;
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn key(prefix: &str, id: &str) -> AppResult<MediaKey> {
    MediaKey::new(prefix, id).map_err(|_| AppError::NotFound("media"))
}

/// Maps a media-store failure for clients.
pub fn media_error(e: MediaError) -> AppError {
    match e {
        MediaError::TooLarge { limit } => {
            AppError::TooLarge(format!("the file is larger than {limit} bytes").into())
        }
        MediaError::NotFound | MediaError::BadKey(_) => AppError::NotFound("media"),
        MediaError::BadRange { .. } => {
            AppError::invalid("bad_range", "the requested range is not satisfiable")
        }
        MediaError::Body(e) => AppError::invalid("upload_interrupted", body_message(&e)),
        e => AppError::internal(e),
    }
}

fn body_message(e: &io::Error) -> String {
    format!("the upload did not arrive whole: {e}")
}

fn too_large(limit: u64) -> AppError {
    media_error(MediaError::TooLarge { limit })
}

fn invalid_image(e: imaging::ImagingError) -> AppError {
    match e {
        imaging::ImagingError::InputTooLarge { max, .. } => {
            AppError::TooLarge(format!("images may be at most {max} bytes").into())
        }
        imaging::ImagingError::TooManyPixels { width, height } => AppError::invalid(
            "invalid_image",
            format!(
                "the image declares {width}×{height} pixels; at most {} per side and {} in all",
                imaging::MAX_SIDE,
                imaging::MAX_PIXELS
            ),
        ),
        e => AppError::invalid("invalid_image", format!("the image cannot be read: {e}")),
    }
}

/// An image as it is stored.
struct Processed {
    original: Vec<u8>,
    thumbnail: Option<Vec<u8>>,
    mime: &'static str,
    width: u32,
    height: u32,
}

/// Bomb check, metadata stripped, thumbnail (a blocking, CPU-bound step).
fn process_image(bytes: Vec<u8>) -> AppResult<Processed> {
    let info = imaging::inspect(&bytes).map_err(invalid_image)?;
    let original = imaging::strip_metadata(&bytes).map_err(invalid_image)?;
    drop(bytes);
    // A truncated image can still be stored (browsers show what there is);
    // it just gets no thumbnail.
    let thumbnail = match imaging::thumbnail(&original) {
        Ok(t) => Some(t.jpeg),
        Err(e) => {
            tracing::info!(error = %e, "no thumbnail for an uploaded image");
            None
        }
    };
    Ok(Processed {
        original,
        thumbnail,
        mime: info.format.mime(),
        width: info.width(),
        height: info.height(),
    })
}

/// A stream of one buffer.
fn once(bytes: Bytes) -> BodyStream<'static> {
    futures_util::stream::iter([Ok(bytes)]).boxed()
}

/// What the cleanup removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Files attached to no message within the grace period.
    pub unattached: usize,
    /// Resumable uploads left unfinished for the grace period.
    pub stale_uploads: usize,
    /// Objects without a record (a crash between storing and recording).
    pub orphans: usize,
}

pub struct MediaService {
    store: Arc<dyn Store>,
    objects: Arc<dyn MediaStore>,
    limits: MediaLimits,
    images: Semaphore,
    signer: UrlSigner,
    moderation: bool,
    metrics: Arc<Metrics>,
}

impl MediaService {
    pub fn new(
        store: Arc<dyn Store>,
        objects: Arc<dyn MediaStore>,
        limits: MediaLimits,
        signer: UrlSigner,
        moderation: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        MediaService {
            store,
            objects,
            limits,
            images: Semaphore::new(IMAGE_WORKERS),
            signer,
            moderation,
            metrics,
        }
    }

    pub fn limits(&self) -> &MediaLimits {
        &self.limits
    }

    pub fn objects(&self) -> &Arc<dyn MediaStore> {
        &self.objects
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// One of the [`IMAGE_WORKERS`] image-processing slots (decoding is
    /// memory-heavy: avatars share the uploads' bound).
    pub(super) async fn image_slot(&self) -> AppResult<tokio::sync::SemaphorePermit<'_>> {
        self.images.acquire().await.map_err(AppError::internal)
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The name a file is stored under: sanitized, then moderated as strictly
    /// as a message in a random chat (blocked → `moderated`; masked → stored masked).
    pub fn file_name(&self, raw: &str) -> AppResult<String> {
        let name = imaging::sanitize_filename(raw);
        if !self.moderation {
            return Ok(name);
        }
        // Classified with `.`, `_` and `-` read as spaces, so words in
        // `kill_yourself.txt` are words; masking maps back char for char.
        let spaced: String = name
            .chars()
            .map(|c| if matches!(c, '.' | '_' | '-') { ' ' } else { c })
            .collect();
        match moderate_text(spaced, Policy::Strict) {
            Ok((checked, m)) if m.masked => Ok(name
                .chars()
                .zip(checked.chars())
                .map(|(orig, seen)| if seen == '*' { '*' } else { orig })
                .collect()),
            Ok(_) => Ok(name),
            Err(AppError::Moderated { categories, .. }) => Err(AppError::Moderated {
                message: "this file name is not allowed; rename the file".into(),
                categories,
            }),
            Err(e) => Err(e),
        }
    }

    /// How many more bytes `user` may store: the size limit, or what is left
    /// of their quota (`quota_exceeded` when nothing, or less than `declared`).
    pub async fn room_for(&self, user: &User, declared: Option<u64>) -> AppResult<u64> {
        let quota = if user.guest {
            self.limits.guest_quota_bytes
        } else {
            self.limits.quota_bytes
        };
        let used = self.store.media_usage(user.id).await?;
        let left = quota.saturating_sub(used);
        let need = declared.unwrap_or(1).max(1);
        if left < need {
            return Err(AppError::QuotaExceeded(
                format!(
                    "your files take {used} of your {quota} bytes; remove some or send smaller files"
                )
                .into(),
            ));
        }
        if let Some(d) = declared {
            if d > self.limits.max_upload_bytes {
                return Err(too_large(self.limits.max_upload_bytes));
            }
        }
        Ok(left.min(self.limits.max_upload_bytes))
    }

    /// The error for a body that passed `limit`: over the size limit, or (when
    /// the quota left was the smaller bound) over the quota.
    fn over(&self, limit: u64) -> AppError {
        if limit < self.limits.max_upload_bytes && limit < MAX_IMAGE_BYTES as u64 {
            AppError::QuotaExceeded(
                format!(
                    "only {limit} bytes of your quota are left; remove files or send a smaller one"
                )
                .into(),
            )
        } else {
            too_large(limit)
        }
    }

    /// Takes in one upload from `user` (see the module docs) and records it.
    /// `raw_name` is the client's file name.
    pub async fn upload(
        &self,
        user: &User,
        raw_name: &str,
        body: BodyStream<'_>,
    ) -> AppResult<Media> {
        let name = self.file_name(raw_name)?;
        let limit = self.room_for(user, None).await?;
        self.ingest(user, new_media_id(), name, body, limit).await
    }

    /// Stores `body` as file `id` of `user` under `limit` bytes, and records it.
    pub async fn ingest(
        &self,
        user: &User,
        id: MediaId,
        name: String,
        mut body: BodyStream<'_>,
        limit: u64,
    ) -> AppResult<Media> {
        let mut head = BytesMut::new();
        let mut ended = false;
        while head.len() < SNIFF_BYTES {
            match body.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(media_error(MediaError::Body(e))),
                None => {
                    ended = true;
                    break;
                }
            }
            if head.len() as u64 > limit {
                return Err(self.over(limit));
            }
        }
        if ended {
            body = futures_util::stream::empty().boxed();
        }
        let head = head.freeze();
        let orig = key(ORIGINAL, &id)?;
        let thumb = key(THUMBNAIL, &id)?;
        let mut media = Media {
            id: id.clone(),
            owner: user.id,
            name,
            mime: String::new(),
            kind: MediaKind::File,
            size: 0,
            width: None,
            height: None,
            thumbnail: false,
            created_at: now_ms(),
        };
        if RasterFormat::detect(&head).is_some() {
            let limit = limit.min(MAX_IMAGE_BYTES as u64);
            let _permit = self.images.acquire().await.map_err(AppError::internal)?;
            let mut buf = Vec::with_capacity(head.len());
            buf.extend_from_slice(&head);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| media_error(MediaError::Body(e)))?;
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(self.over(limit));
                }
                buf.extend_from_slice(&chunk);
            }
            let timer = self.metrics.media_image_seconds.start_timer();
            let p = tokio::task::spawn_blocking(move || process_image(buf))
                .await
                .map_err(AppError::internal)??;
            timer.observe_duration();
            media.size = self
                .objects
                .put(&orig, once(p.original.into()), limit)
                .await
                .map_err(media_error)?;
            if let Some(t) = p.thumbnail {
                if let Err(e) = self.objects.put(&thumb, once(t.into()), u64::MAX).await {
                    let _ = self.objects.delete(&orig).await;
                    return Err(media_error(e));
                }
                media.thumbnail = true;
            }
            media.mime = p.mime.to_owned();
            media.kind = MediaKind::Image;
            media.width = Some(p.width);
            media.height = Some(p.height);
        } else {
            let sniffed = imaging::sniff(&head);
            let stream = once(head).chain(body).boxed();
            media.size = self
                .objects
                .put(&orig, stream, limit)
                .await
                .map_err(|e| match e {
                    MediaError::TooLarge { limit } => self.over(limit),
                    e => media_error(e),
                })?;
            media.mime = sniffed.mime.to_owned();
            media.kind = sniffed.kind;
        }
        if let Err(e) = self.store.create_media(media.clone()).await {
            let _ = self.objects.delete(&orig).await;
            let _ = self.objects.delete(&thumb).await;
            return Err(e.into());
        }
        self.metrics
            .media_uploads
            .with_label_values(&[media.kind.as_str()])
            .inc();
        self.metrics.media_upload_bytes.inc_by(media.size);
        tracing::info!(
            media = %media.id,
            owner = media.owner,
            size = media.size,
            mime = %media.mime,
            "file uploaded"
        );
        Ok(media)
    }

    /// File `id` if `user` may read it; `404` otherwise.
    pub async fn readable(&self, user: UserId, id: &str) -> AppResult<Media> {
        if !is_media_id(id) {
            return Err(AppError::NotFound("media"));
        }
        let media = self
            .store
            .media(id)
            .await?
            .ok_or(AppError::NotFound("media"))?;
        if media.owner != user && !self.store.can_read_media(id, user).await? {
            return Err(AppError::NotFound("media"));
        }
        Ok(media)
    }

    /// Opens the bytes of `variant` of file `media` (already access-checked),
    /// all of them or `range`.
    pub async fn open(
        &self,
        media: &Media,
        variant: Variant,
        range: Option<Range<u64>>,
    ) -> AppResult<MediaRead> {
        let key = match variant {
            Variant::Original => key(ORIGINAL, &media.id)?,
            Variant::Thumbnail if media.thumbnail => key(THUMBNAIL, &media.id)?,
            Variant::Thumbnail => return Err(AppError::NotFound("thumbnail")),
        };
        self.objects.get(&key, range).await.map_err(media_error)
    }

    /// Signed URLs for the files of `ids` that `user` may read (others left out).
    pub async fn sign(&self, user: UserId, ids: &[String]) -> AppResult<(i64, Vec<SignedMedia>)> {
        let now = chrono::Utc::now().timestamp();
        let exp = UrlSigner::expiry(now);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(media) = self.readable(user, id).await else {
                continue;
            };
            let original = self.signer.sign(&media.id, Variant::Original, user, exp);
            let thumbnail = media
                .thumbnail
                .then(|| self.signer.sign(&media.id, Variant::Thumbnail, user, exp));
            out.push(SignedMedia {
                url: format!("{}?{}", media.url(), original.query()),
                thumbnail_url: thumbnail.map(|t| {
                    format!(
                        "{}?{}",
                        media.thumbnail_url().unwrap_or_default(),
                        t.query()
                    )
                }),
                media,
            });
        }
        Ok((exp, out))
    }

    /// The user a signed URL of (`id`, `variant`) speaks for, if it is valid now.
    pub fn check_signature(&self, id: &str, variant: Variant, s: &Signature) -> Option<UserId> {
        let now = chrono::Utc::now().timestamp();
        self.signer.verify(id, variant, s, now).then_some(s.uid)
    }

    /// Removes what the grace period has run out for: files attached to no
    /// message and unfinished resumable uploads; with `orphans`, also objects
    /// without a record (one store lookup per stored object, so the cleanup
    /// task does it only at start and once a day).
    pub async fn sweep(&self, orphans: bool) -> AppResult<Sweep> {
        let grace_ms = self.limits.grace.as_millis() as i64;
        let cutoff = now_ms() - grace_ms;
        let mut done = Sweep::default();
        for media in self.store.unattached_media(cutoff, 500).await? {
            // The record goes first, in a statement that re-checks "unattached":
            // a message storing it meanwhile keeps it.
            if self.store.delete_unattached_media(&media.id).await? {
                for prefix in [ORIGINAL, THUMBNAIL] {
                    if let Ok(k) = MediaKey::new(prefix, &media.id) {
                        self.objects.delete(&k).await.map_err(media_error)?;
                    }
                }
                done.unattached += 1;
            }
        }
        for upload in self.store.stale_uploads(cutoff, 500).await? {
            if self.store.delete_upload(&upload.id).await? {
                for part in &upload.parts {
                    if let Ok(k) = MediaKey::parse(part) {
                        self.objects.delete(&k).await.map_err(media_error)?;
                    }
                }
                done.stale_uploads += 1;
            }
        }
        if !orphans {
            return Ok(done);
        }
        let before = SystemTime::now() - self.limits.grace;
        for prefix in [ORIGINAL, THUMBNAIL, PART] {
            let mut listed = self
                .objects
                .list_older_than(prefix, before)
                .map_err(media_error)?;
            while let Some(obj) = listed.next().await {
                let obj = obj.map_err(media_error)?;
                let name = obj.key.name();
                let owned = match prefix {
                    PART => {
                        // `<upload id (22 chars)>_<offset>_<random>`
                        let upload = name.get(..22).unwrap_or_default();
                        self.store.upload(upload).await?.is_some()
                    }
                    _ => self.store.media(name).await?.is_some(),
                };
                if !owned {
                    self.objects.delete(&obj.key).await.map_err(media_error)?;
                    done.orphans += 1;
                }
            }
        }
        Ok(done)
    }

    /// Sweeps every `every` until `stop` (orphaned objects too at the first
    /// sweep and then once a day).
    pub fn spawn_cleanup(self: &Arc<Self>, every: Duration, stop: CancellationToken) {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_orphan_sweep: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let orphans = last_orphan_sweep.is_none_or(|t| t.elapsed() >= DAY);
                if orphans {
                    last_orphan_sweep = Some(tokio::time::Instant::now());
                }
                match this.sweep(orphans).await {
                    Ok(s) if s != Sweep::default() => {
                        for (what, n) in [
                            ("unattached", s.unattached),
                            ("stale_upload", s.stale_uploads),
                            ("orphan", s.orphans),
                        ] {
                            this.metrics
                                .media_removed
                                .with_label_values(&[what])
                                .inc_by(n as u64);
                        }
                        tracing::info!(
                            unattached = s.unattached,
                            stale_uploads = s.stale_uploads,
                            orphans = s.orphans,
                            "media cleanup"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "media cleanup failed"),
                }
            }
        });
    }
}

/// A readable file with its signed URLs.
pub struct SignedMedia {
    pub media: Media,
    pub url: String,
    pub thumbnail_url: Option<String>,
}

/// The files of a message `sender` is sending: at most [`MAX_ATTACHMENTS`],
/// no repeats, each an upload of the sender's (`invalid_attachments` otherwise).
pub async fn check_attachments(
    store: &dyn Store,
    sender: UserId,
    ids: &[String],
) -> AppResult<Vec<Media>> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(AppError::invalid(
            "too_many_attachments",
            format!("a message may carry at most {MAX_ATTACHMENTS} files"),
        ));
    }
    let mut out: Vec<Media> = Vec::with_capacity(ids.len());
    for id in ids {
        if out.iter().any(|m| &m.id == id) {
            return Err(AppError::invalid(
                "invalid_attachments",
                "the same file is attached twice",
            ));
        }
        let found = if is_media_id(id) {
            store.media(id).await?
        } else {
            None
        };
        match found {
            Some(m) if m.owner == sender => out.push(m),
            _ => {
                return Err(AppError::invalid(
                    "invalid_attachments",
                    "attachments must be files you uploaded",
                ))
            }
        }
    }
    Ok(out)
}
