//! `media`: uploads against one QuickTalk server (issue 12).
//!
//! 1. **Streaming upload**: `stream_runs` uploads of `stream_bytes` of non-image
//!    filler, generated while sent; throughput, and the server's RSS just
//!    before, its peak during (sampled every `sample_period` on its own thread),
//!    and after a short settle.
//! 2. **Thumbnail time**: the synthetic photo uploaded `thumb_runs` times in a
//!    row (read whole, metadata stripped, thumbnailed, stored), then a
//!    same-size non-image body as many times; the difference of their medians
//!    is the server's image work, the rest being transfer and storage.
//! 3. **Delivery while thumbnails are made**: the fan-out scenario at one rate,
//!    alone, then again while `uploaders` tasks upload the photo back to back.
//!
//! Everything runs on the one server, in this order; the server is started by
//! the caller with [`MediaParams::server_args`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use tokio::sync::watch;

use super::fanout::{self, FanoutParams, FanoutStep};
use crate::photo;
use crate::proc;
use crate::sampler::RssSampler;
use crate::stats::{new_hist, record_ns, Percentiles};
use crate::target::Server;
use crate::upload::Uploader;

#[derive(Debug, Clone)]
pub struct MediaParams {
    /// Size of each streamed non-image upload.
    pub stream_bytes: u64,
    pub stream_runs: usize,
    /// The synthetic photo's size in pixels.
    pub photo_width: u32,
    pub photo_height: u32,
    /// Sequential photo uploads (and as many same-size plain ones).
    pub thumb_runs: usize,
    /// Concurrent photo uploaders during the busy fan-out run.
    pub uploaders: usize,
    /// Period of the RSS sampler.
    pub sample_period: Duration,
    /// Wait before reading the "before" and "after" RSS.
    pub settle: Duration,
    /// The fan-out run (one rate in `rates`).
    pub fanout: FanoutParams,
}

impl MediaParams {
    /// `quicktalk serve` flags that let every upload of the run through: a
    /// size limit above the streamed file and quotas no run can reach.
    pub fn server_args(&self) -> Vec<String> {
        let max_upload = self.stream_bytes.max(64 << 20) + (1 << 20);
        let quota = 1u64 << 40;
        vec![
            format!("--max-upload-bytes={max_upload}"),
            format!("--media-quota-bytes={quota}"),
            format!("--guest-media-quota-bytes={quota}"),
            "--rate-limits=off".to_owned(),
        ]
    }
}

/// One streamed upload.
#[derive(Debug, Clone, Default)]
pub struct StreamRun {
    pub bytes: u64,
    pub elapsed: Duration,
    pub rss_before_kb: u64,
    pub rss_peak_kb: u64,
    pub rss_after_kb: u64,
    /// `VmHWM` after the run (peak since the server started): a check on the
    /// sampled peak, which can miss a spike shorter than the period.
    pub hwm_after_kb: u64,
    pub samples: u64,
}

impl StreamRun {
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Peak − before, in kB (KiB).
    pub fn growth_kb(&self) -> u64 {
        self.rss_peak_kb.saturating_sub(self.rss_before_kb)
    }
}

/// The photo uploads and their plain same-size counterparts.
#[derive(Debug, Clone, Default)]
pub struct ThumbResult {
    pub photo_bytes: usize,
    /// Stored size after the metadata strip (first upload).
    pub stored_bytes: u64,
    /// Seconds the bench took to generate and encode the photo.
    pub generate_secs: f64,
    /// Photo uploads that came back with a thumbnail.
    pub thumbnails: usize,
    pub image: Percentiles,
    /// Every photo upload's time, in order (ms): shows a cold first one or
    /// an outlier that p99 of a few samples hides.
    pub image_each_ms: Vec<f64>,
    pub image_mean_ms: f64,
    pub plain: Percentiles,
    pub plain_mean_ms: f64,
    /// Server CPU time (user + system) per photo upload, ms (10 ms ticks).
    pub server_cpu_ms_per_image: f64,
    /// Server CPU time per plain upload, ms.
    pub server_cpu_ms_per_plain: f64,
    pub rss_before_kb: u64,
    /// Sampled peak RSS during the photo uploads.
    pub rss_peak_kb: u64,
}

/// The fan-out run alone and with photo uploads going on.
#[derive(Debug, Clone, Default)]
pub struct DeliveryResult {
    pub alone: FanoutStep,
    pub busy: FanoutStep,
    /// First subscriber error of either run.
    pub first_error: Option<String>,
    /// Thumbnails made while the busy run lasted (whole run: subscribers'
    /// connect, warm-up, window, drain).
    pub thumbnails: u64,
    /// How long the uploaders ran.
    pub busy_secs: f64,
    /// Photo upload times during the busy run.
    pub upload: Percentiles,
    pub upload_errors: u64,
    pub first_upload_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MediaResult {
    pub params: MediaParams,
    pub streams: Vec<StreamRun>,
    pub thumbs: ThumbResult,
    pub delivery: DeliveryResult,
}

pub async fn run(server: &Server, p: &MediaParams) -> anyhow::Result<MediaResult> {
    let token = server.guest("bench-media").await?;
    let up = Uploader::new(server.http_base(), token);

    eprintln!(
        "#   media: generating the {}×{} photo",
        p.photo_width, p.photo_height
    );
    let t0 = Instant::now();
    let (w, h) = (p.photo_width, p.photo_height);
    let photo = Bytes::from(tokio::task::spawn_blocking(move || photo::jpeg(w, h)).await??);
    let generate_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "#   media: photo {} bytes in {generate_secs:.1} s",
        photo.len()
    );

    let mut streams = Vec::with_capacity(p.stream_runs);
    for i in 0..p.stream_runs {
        let r = stream_once(server, &up, p).await?;
        eprintln!(
            "#   media: stream {}/{}: {:.1} MiB/s, RSS before {:.1} MiB, peak {:.1} MiB (+{:.1} MiB, {} samples), after {:.1} MiB",
            i + 1,
            p.stream_runs,
            r.mib_per_s(),
            mib(r.rss_before_kb),
            mib(r.rss_peak_kb),
            mib(r.growth_kb()),
            r.samples,
            mib(r.rss_after_kb)
        );
        streams.push(r);
    }

    let mut thumbs = thumbnails(server, &up, p, &photo).await?;
    thumbs.generate_secs = generate_secs;
    eprintln!(
        "#   media: photo upload p50 {:.0} ms p99 {:.0} ms; plain same-size p50 {:.0} ms; server CPU {:.0} ms per photo",
        thumbs.image.p50, thumbs.image.p99, thumbs.plain.p50, thumbs.server_cpu_ms_per_image
    );

    let delivery = delivery(server, &up, p, &photo).await?;
    Ok(MediaResult {
        params: p.clone(),
        streams,
        thumbs,
        delivery,
    })
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn stream_once(server: &Server, up: &Uploader, p: &MediaParams) -> anyhow::Result<StreamRun> {
    tokio::time::sleep(p.settle).await;
    let before = proc::rss_kb(server.pid)?;
    let sampler = RssSampler::start(server.pid, p.sample_period);
    let done = up.filler("bench-stream.bin", p.stream_bytes).await;
    let peak = sampler.stop();
    let done = done?;
    if done.size != p.stream_bytes {
        bail!(
            "streamed {} bytes, the server stored {}",
            p.stream_bytes,
            done.size
        );
    }
    tokio::time::sleep(p.settle).await;
    Ok(StreamRun {
        bytes: p.stream_bytes,
        elapsed: done.elapsed,
        rss_before_kb: before,
        rss_peak_kb: peak.peak_kb.max(before),
        rss_after_kb: proc::rss_kb(server.pid)?,
        hwm_after_kb: proc::hwm_kb(server.pid).unwrap_or(0),
        samples: peak.samples,
    })
}

/// Server CPU ticks (10 ms each) so far.
fn server_ticks(server: &Server) -> anyhow::Result<u64> {
    proc::cpu_ticks(&server.pid.to_string())
        .ok_or_else(|| anyhow!("cannot read /proc/{}/stat", server.pid))
}

async fn thumbnails(
    server: &Server,
    up: &Uploader,
    p: &MediaParams,
    photo: &Bytes,
) -> anyhow::Result<ThumbResult> {
    let runs = p.thumb_runs.max(1);
    let mut r = ThumbResult {
        photo_bytes: photo.len(),
        ..ThumbResult::default()
    };
    tokio::time::sleep(p.settle).await;
    r.rss_before_kb = proc::rss_kb(server.pid)?;
    let sampler = RssSampler::start(server.pid, p.sample_period);
    let ticks0 = server_ticks(server)?;
    let mut hist = new_hist();
    let mut total = Duration::ZERO;
    let mut failure = None;
    for i in 0..runs {
        match up.bytes("bench-photo.jpg", photo.clone()).await {
            Ok(u) => {
                if i == 0 {
                    r.stored_bytes = u.size;
                    if u.mime != "image/jpeg" {
                        failure = Some(anyhow!("the photo was stored as {:?}", u.mime));
                        break;
                    }
                }
                r.thumbnails += usize::from(u.thumbnail);
                record_ns(&mut hist, u.elapsed.as_nanos() as u64);
                r.image_each_ms.push(u.elapsed.as_secs_f64() * 1e3);
                total += u.elapsed;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let ticks1 = server_ticks(server)?;
    r.rss_peak_kb = sampler.stop().peak_kb;
    if let Some(e) = failure {
        return Err(e.context("photo upload"));
    }
    r.image = Percentiles::of(&hist);
    r.image_mean_ms = total.as_secs_f64() * 1e3 / runs as f64;
    r.server_cpu_ms_per_image = (ticks1 - ticks0) as f64 * 10.0 / runs as f64;

    let plain = crate::upload::filler_bytes(photo.len());
    let mut hist = new_hist();
    let mut total = Duration::ZERO;
    let ticks0 = server_ticks(server)?;
    for _ in 0..runs {
        let u = up
            .bytes("bench-plain.bin", plain.clone())
            .await
            .context("same-size plain upload")?;
        record_ns(&mut hist, u.elapsed.as_nanos() as u64);
        total += u.elapsed;
    }
    let ticks1 = server_ticks(server)?;
    r.plain = Percentiles::of(&hist);
    r.plain_mean_ms = total.as_secs_f64() * 1e3 / runs as f64;
    r.server_cpu_ms_per_plain = (ticks1 - ticks0) as f64 * 10.0 / runs as f64;
    Ok(r)
}

/// What the background uploaders share.
#[derive(Default)]
struct Background {
    thumbnails: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    hist: Mutex<Option<hdrhistogram::Histogram<u64>>>,
}

async fn delivery(
    server: &Server,
    up: &Uploader,
    p: &MediaParams,
    photo: &Bytes,
) -> anyhow::Result<DeliveryResult> {
    let mut out = DeliveryResult::default();
    eprintln!("#   media: fan-out alone");
    let alone = fanout::run(server, &p.fanout)
        .await
        .context("fan-out alone")?;
    out.first_error = alone.first_error.clone();
    out.alone = alone
        .rates
        .first()
        .map(|r| r.median().clone())
        .ok_or_else(|| anyhow!("the fan-out run (alone) made no step"))?;

    tokio::time::sleep(p.settle).await;
    eprintln!("#   media: fan-out with {} photo uploaders", p.uploaders);
    let bg = Arc::new(Background {
        hist: Mutex::new(Some(new_hist())),
        ..Background::default()
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let tasks: Vec<_> = (0..p.uploaders.max(1))
        .map(|_| {
            tokio::spawn(upload_loop(
                up.clone(),
                photo.clone(),
                bg.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let busy = fanout::run(server, &p.fanout).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    out.busy_secs = started.elapsed().as_secs_f64();
    let busy = busy.context("fan-out with uploads")?;
    if out.first_error.is_none() {
        out.first_error = busy.first_error.clone();
    }
    out.busy = busy
        .rates
        .first()
        .map(|r| r.median().clone())
        .ok_or_else(|| anyhow!("the fan-out run (with uploads) made no step"))?;
    out.thumbnails = bg.thumbnails.load(Ordering::Relaxed);
    out.upload_errors = bg.errors.load(Ordering::Relaxed);
    out.first_upload_error = bg.first_error.lock().unwrap().clone();
    out.upload = bg
        .hist
        .lock()
        .unwrap()
        .as_ref()
        .map(Percentiles::of)
        .unwrap_or_default();
    Ok(out)
}

/// Uploads `photo` back to back until told to stop; an upload in flight when
/// the stop comes is finished (and counted) first.
async fn upload_loop(up: Uploader, photo: Bytes, bg: Arc<Background>, stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match up.bytes("bench-photo.jpg", photo.clone()).await {
            Ok(u) => {
                if u.thumbnail {
                    bg.thumbnails.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(h) = bg.hist.lock().unwrap().as_mut() {
                    record_ns(h, u.elapsed.as_nanos() as u64);
                }
            }
            Err(e) => {
                bg.errors.fetch_add(1, Ordering::Relaxed);
                bg.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| format!("{e:#}"));
                // Do not spin on a failing server.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
