//! The QuickTalk upload client: `POST /api/v1/media?name=F` with the raw bytes
//! as body and a bearer token, timed from the request's first byte to the
//! parsed `201` JSON. Bodies are either bytes already in memory (the photo) or a
//! non-image filler generated chunk by chunk while it is sent, so a 100 MiB
//! upload never sits in the bench's memory whole.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use serde_json::Value;

/// Size of one filler chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What the filler starts with: not the magic bytes of any image format, so
/// the server streams it as a plain file.
const FILLER_MAGIC: &[u8] = b"QTBENCH-FILLER\n";

/// One finished upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// Request sent → response JSON read.
    pub elapsed: Duration,
    /// Stored size the server reported.
    pub size: u64,
    /// Whether the server made a thumbnail (`thumbnail_url` set).
    pub thumbnail: bool,
    pub mime: String,
}

/// Uploads as one user to one server.
#[derive(Clone)]
pub struct Uploader {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Uploader {
    pub fn new(http_base: &str, token: String) -> Uploader {
        Uploader {
            http: reqwest::Client::new(),
            url: format!("{http_base}/api/v1/media"),
            token,
        }
    }

    /// Uploads `body` (already in memory) as file `name`.
    pub async fn bytes(&self, name: &str, body: Bytes) -> anyhow::Result<Uploaded> {
        let len = body.len() as u64;
        self.send(name, reqwest::Body::from(body), len).await
    }

    /// Uploads `total` bytes of non-image filler, generated while it is sent.
    pub async fn filler(&self, name: &str, total: u64) -> anyhow::Result<Uploaded> {
        let body = reqwest::Body::wrap_stream(filler_stream(total));
        self.send(name, body, total).await
    }

    async fn send(&self, name: &str, body: reqwest::Body, len: u64) -> anyhow::Result<Uploaded> {
        let t0 = Instant::now();
        let resp = self
            .http
            .post(&self.url)
            .query(&[("name", name)])
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST /api/v1/media ({len} bytes)"))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the upload response")?;
        let elapsed = t0.elapsed();
        if status.as_u16() != 201 {
            bail!(
                "POST /api/v1/media ({len} bytes): {status} {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("upload response is not JSON: {text}"))?;
        Ok(Uploaded {
            elapsed,
            size: v["size"].as_u64().unwrap_or(0),
            thumbnail: v["thumbnail_url"].as_str().is_some(),
            mime: v["mime"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// One chunk of filler: pseudo-random (fixed seed) after [`FILLER_MAGIC`].
fn filler_chunk() -> Bytes {
    let mut chunk = vec![0u8; CHUNK_BYTES];
    rand::rngs::StdRng::seed_from_u64(12).fill_bytes(&mut chunk);
    chunk[..FILLER_MAGIC.len()].copy_from_slice(FILLER_MAGIC);
    Bytes::from(chunk)
}

/// `total` bytes of filler as a stream of [`CHUNK_BYTES`] pieces. Every piece
/// shares the one chunk buffer (a reference-counted slice), so the stream holds
/// 64 KiB however long it is.
pub fn filler_stream(
    total: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunk = filler_chunk();
    let step = CHUNK_BYTES as u64;
    let pieces = total.div_ceil(step);
    futures_util::stream::iter((0..pieces).map(move |i| {
        let len = (total - i * step).min(step) as usize;
        Ok(chunk.slice(..len))
    }))
}

/// `len` bytes that are not an image (for a same-size plain upload).
pub fn filler_bytes(len: usize) -> Bytes {
    let chunk = filler_chunk();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = (len - out.len()).min(chunk.len());
        out.extend_from_slice(&chunk[..n]);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    #[test]
    fn filler_stream_has_exactly_the_requested_length() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for total in [0, 1, CHUNK_BYTES as u64, 3 * CHUNK_BYTES as u64 + 17] {
            let got: u64 = rt.block_on(
                filler_stream(total)
                    .map(|c| c.unwrap().len() as u64)
                    .fold(0, |a, n| async move { a + n }),
            );
            assert_eq!(got, total);
        }
    }

    #[test]
    fn filler_is_not_an_image() {
        let b = filler_bytes(100_000);
        assert_eq!(b.len(), 100_000);
        assert!(b.starts_with(FILLER_MAGIC));
        assert!(image::guess_format(&b).is_err());
    }
}
