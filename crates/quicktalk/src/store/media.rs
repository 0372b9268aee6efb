//! The media records the [`Store`](super::Store) keeps (contract §6): uploaded
//! files' metadata (their bytes are in [`crate::media`]), which messages carry
//! which files, and resumable uploads in progress. Plain data; both backends
//! read and write them with the same meaning.

use crate::model::UserId;

/// A resumable upload in progress (tus 1.0, `http::uploads`): the bytes so far
/// are the media-store objects `parts`, in order, together `offset` bytes long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Same shape as a media id (22 URL-safe base64 characters).
    pub id: String,
    pub owner: UserId,
    /// The sanitized file name the upload will get.
    pub name: String,
    /// The whole upload's length in bytes, declared at creation.
    pub length: u64,
    /// Bytes received and stored so far.
    pub offset: u64,
    /// Media keys (`part/…`) of the stored pieces, in upload order.
    pub parts: Vec<String>,
    pub created_at: i64,
    /// The last time a piece was stored (or `created_at`).
    pub updated_at: i64,
}
