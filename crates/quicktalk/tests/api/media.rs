//! Files in chat (contract §6, issue 12) against the real server: uploads
//! (raw, multipart, resumable tus 1.0), type sniffing, EXIF/GPS removal,
//! thumbnails, the decompression-bomb refusal, size limits and quotas, access
//! control (uploader and room readers only, 404 otherwise), signed URLs, Range
//! requests and safe headers, attachments in REST and STOMP messages, history
//! and `since-seq` replay, file-name moderation, and the grace-period cleanup.

use std::io::Cursor;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// GPS latitude ref "N" written as an ASCII tag, and a marker string: the
/// test looks for both in the stored original.
const GPS_MARKER: &[u8] = b"QT-GPS-SECRET-37.5665N";

/// A real JPEG (`w`×`h`) carrying an APP1 Exif segment with an IFD0
/// orientation tag, a GPS IFD pointer and a GPS IFD with `GPS_MARKER`.
pub fn jpeg_with_gps(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut plain = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .unwrap();
    // TIFF, little endian: IFD0 with 2 entries (Orientation, GPS IFD pointer),
    // then the GPS IFD with 1 entry (GPSLatitudeRef-like ASCII with the marker).
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0");
    t.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: count 2, entries 12 bytes each, next IFD 0.
    t.extend_from_slice(&2u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&(orientation as u32).to_le_bytes());
    let gps_ifd = 8 + 2 + 2 * 12 + 4;
    t.extend_from_slice(&0x8825u16.to_le_bytes()); // GPS IFD pointer
    t.extend_from_slice(&4u16.to_le_bytes()); // LONG
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&(gps_ifd as u32).to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD: one ASCII entry pointing at the marker after the IFD.
    let data_at = gps_ifd + 2 + 12 + 4;
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0001u16.to_le_bytes()); // GPSLatitudeRef
    t.extend_from_slice(&2u16.to_le_bytes()); // ASCII
    t.extend_from_slice(&(GPS_MARKER.len() as u32 + 1).to_le_bytes());
    t.extend_from_slice(&(data_at as u32).to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(GPS_MARKER);
    t.push(0);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&t);
    let mut out = plain[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// A PNG header declaring `w`×`h` (a decompression bomb when large).
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32(&chunk).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(b"IEND");
    out.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn upload(app: &TestApp, u: &TestUser, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let res = app
        .http
        .post(app.url(&format!("/api/v1/media?name={}", percent(name))))
        .bearer_auth(&u.token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let s = res.status();
    (s, res.json().await.unwrap_or(Value::Null))
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn fetch(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = app.http.get(app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let s = res.status();
    let h = res.headers().clone();
    (s, h, res.bytes().await.unwrap().to_vec())
}

async fn post_msg(app: &TestApp, u: &TestUser, room: i64, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/rooms/{room}/messages"), &u.token, body)
        .await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn an_uploaded_photo_loses_its_gps_and_gets_a_thumbnail() {
    let app = spawn_app().await;
    let a = app.signup(&format!("ann{}", rand_id())).await;
    let photo = jpeg_with_gps(640, 480, 6);
    assert!(contains(&photo, GPS_MARKER));
    let (s, m) = upload(&app, &a, "휴가 사진.jpg", photo.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["kind"], "image");
    assert_eq!(m["mime"], "image/jpeg");
    assert_eq!(m["name"], "휴가 사진.jpg");
    // Orientation 6 (rotated 90°): shown 480 wide, 640 high.
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(480), Some(640)),
        "{m}"
    );
    let id = m["id"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert_eq!(m["url"], format!("/api/v1/media/{id}"));
    assert_eq!(m["thumbnail_url"], format!("/api/v1/media/{id}/thumbnail"));
    assert!(m["size"].as_u64().unwrap() < photo.len() as u64);

    let (s, h, body) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.len() as u64, m["size"].as_u64().unwrap());
    assert!(
        !contains(&body, GPS_MARKER),
        "GPS survived in the stored original"
    );
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
    assert_eq!(header(&h, "content-type"), "image/jpeg");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert!(header(&h, "content-disposition").starts_with("inline"));
    assert!(header(&h, "content-security-policy").contains("sandbox"));
    // The pixels after the Exif segment are the uploaded ones, byte for byte.
    assert!(contains(&body, &photo[photo.len() - 1000..]));

    let (s, h, thumb) = fetch(
        &app,
        m["thumbnail_url"].as_str().unwrap(),
        Some(&a.token),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "image/jpeg");
    let t = image::load_from_memory(&thumb).unwrap();
    // Fits 320×320, orientation applied (portrait).
    assert_eq!((t.width(), t.height()), (240, 320));
    assert_eq!(
        app.metric("quicktalk_media_uploads_total{kind=\"image\"}")
            .await,
        1.0
    );
    assert_eq!(app.metric("quicktalk_media_image_seconds_count").await, 1.0);
}

#[tokio::test]
async fn a_decompression_bomb_and_a_broken_image_are_refused() {
    let app = spawn_app().await;
    let a = app.signup(&format!("bob{}", rand_id())).await;
    let (s, v) = upload(&app, &a, "bomb.png", png_declaring(60_000, 60_000)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(code(&v), "invalid_image");
    let mut broken = jpeg_with_gps(64, 64, 1);
    broken.truncate(40);
    let (s, v) = upload(&app, &a, "broken.jpg", broken).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(code(&v), "invalid_image");
}

#[tokio::test]
async fn type_is_sniffed_and_active_content_is_never_inline() {
    let app = spawn_app().await;
    let a = app.signup(&format!("cat{}", rand_id())).await;
    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec();
    let (s, m) = upload(&app, &a, "cute.jpg", html.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["kind"], "file", "{m}");
    assert!(m.get("thumbnail_url").is_none());
    let (s, h, body) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, html);
    assert_eq!(header(&h, "content-type"), "application/octet-stream");
    assert!(
        header(&h, "content-disposition").starts_with("attachment"),
        "{h:?}"
    );
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let (_, m) = upload(&app, &a, "logo.svg", svg).await;
    assert_eq!(m["kind"], "file", "{m}");
    let (_, h, _) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert!(header(&h, "content-disposition").starts_with("attachment"));
    // A thumbnail of a non-image does not exist.
    let (s, _, _) = fetch(
        &app,
        &format!("{}/thumbnail", m["url"].as_str().unwrap()),
        Some(&a.token),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ranges_work_and_bad_ones_get_416() {
    let app = spawn_app().await;
    let a = app.signup(&format!("dan{}", rand_id())).await;
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (_, m) = upload(&app, &a, "data.bin", data.clone()).await;
    let url = m["url"].as_str().unwrap();
    let (s, h, body) = fetch(&app, url, Some(&a.token), &[("range", "bytes=100-199")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&h, "content-range"), "bytes 100-199/10000");
    assert_eq!(body, &data[100..200]);
    let (s, h, body) = fetch(&app, url, Some(&a.token), &[("range", "bytes=-10")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&h, "content-range"), "bytes 9990-9999/10000");
    assert_eq!(body, &data[9990..]);
    let (s, _, body) = fetch(&app, url, Some(&a.token), &[("range", "bytes=9000-")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, &data[9000..]);
    let (s, h, _) = fetch(&app, url, Some(&a.token), &[("range", "bytes=20000-")]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, "content-range"), "bytes */10000");
    let (s, h, body) = fetch(&app, url, Some(&a.token), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "accept-ranges"), "bytes");
    assert_eq!(body, data);
    let etag = header(&h, "etag").to_owned();
    let (s, _, _) = fetch(&app, url, Some(&a.token), &[("if-none-match", &etag)]).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn only_the_uploader_and_room_readers_may_read_a_file() {
    let app = spawn_app().await;
    let a = app.signup(&format!("eve{}", rand_id())).await;
    let outsider = app.signup(&format!("gus{}", rand_id())).await;
    let room = app.create_room(&a, "secret", "private").await;
    let (_, m) = upload(&app, &a, "plan.txt", b"the plan".to_vec()).await;
    let url = m["url"].as_str().unwrap().to_owned();
    let id = m["id"].as_str().unwrap().to_owned();
    // Not attached yet: only the uploader.
    assert_eq!(
        fetch(&app, &url, Some(&a.token), &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        fetch(&app, &url, Some(&outsider.token), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&app, &url, None, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = app
        .get(&format!("/api/v1/media/{id}/info"), &outsider.token)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // Someone else cannot attach it.
    let lobby = app.create_room(&outsider, "theirs", "public").await;
    let (s, v) = post_msg(
        &app,
        &outsider,
        lobby,
        json!({"text": "mine", "attachments": [id]}),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_attachments"),
        "{v}"
    );
    let (s, v) = post_msg(&app, &a, room, json!({"text": "", "attachments": [id]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text"], "");
    assert_eq!(v["attachments"][0]["id"], id.as_str());
    assert_eq!(v["attachments"][0]["url"], url.as_str());
    assert_eq!(
        fetch(&app, &url, Some(&outsider.token), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // A public room: every reader.
    let open = app.create_room(&a, "lobby", "public").await;
    let (_, m2) = upload(&app, &a, "hello.txt", b"hello".to_vec()).await;
    let id2 = m2["id"].as_str().unwrap();
    assert_eq!(
        post_msg(&app, &a, open, json!({"attachments": [id2]}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, _, body) = fetch(
        &app,
        m2["url"].as_str().unwrap(),
        Some(&outsider.token),
        &[],
    )
    .await;
    assert_eq!((s, body.as_slice()), (StatusCode::OK, &b"hello"[..]));
    // A guessed id is as missing as a real one the caller may not read.
    let (s, _, _) = fetch(
        &app,
        "/api/v1/media/AAAAAAAAAAAAAAAAAAAAAA",
        Some(&outsider.token),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = fetch(
        &app,
        "/api/v1/media/..%2F..%2Fetc%2Fpasswd",
        Some(&outsider.token),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signed_urls_work_without_the_token_and_only_as_signed() {
    let app = spawn_app().await;
    let a = app.signup(&format!("hal{}", rand_id())).await;
    let b = app.signup(&format!("ivy{}", rand_id())).await;
    let (_, m) = upload(&app, &a, "pic.jpg", jpeg_with_gps(100, 80, 1)).await;
    let id = m["id"].as_str().unwrap();
    let (s, v) = app
        .post(
            "/api/v1/media/sign",
            &a.token,
            json!({"ids": [id, "AAAAAAAAAAAAAAAAAAAAAA"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["expires_at"].is_string());
    let urls = &v["media"][id];
    assert_eq!(v["media"].as_object().unwrap().len(), 1, "{v}");
    let signed = urls["url"].as_str().unwrap();
    let signed_thumb = urls["thumbnail_url"].as_str().unwrap();
    assert_eq!(fetch(&app, signed, None, &[]).await.0, StatusCode::OK);
    assert_eq!(fetch(&app, signed_thumb, None, &[]).await.0, StatusCode::OK);
    // The original's signature does not open the thumbnail, nor a changed user.
    let swapped = signed_thumb.replace(
        &signed_thumb[signed_thumb.find('?').unwrap()..],
        &signed[signed.find('?').unwrap()..],
    );
    assert_eq!(
        fetch(&app, &swapped, None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let other_uid = signed.replace(&format!("uid={}", a.id), &format!("uid={}", b.id));
    assert_eq!(
        fetch(&app, &other_uid, None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let tampered = format!("{}x", signed);
    assert_eq!(
        fetch(&app, &tampered, None, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // Someone who may not read it gets no URL.
    let (_, v) = app
        .post("/api/v1/media/sign", &b.token, json!({"ids": [id]}))
        .await;
    assert_eq!(v["media"], json!({}), "{v}");
}

#[tokio::test]
async fn size_limits_and_quotas_are_enforced() {
    let app = spawn_app_with(|c| {
        c.max_upload_bytes = 10_000;
        c.guest_media_quota_bytes = 15_000;
    })
    .await;
    let g = app.guest(&format!("gg{}", rand_id())).await;
    let (s, v) = upload(&app, &g, "big.bin", vec![7; 10_001]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(code(&v), "too_large");
    // Chunked (no Content-Length): cut off while streaming, nothing kept.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![1u8; 1000])).collect();
    let res = app
        .http
        .post(app.url("/api/v1/media?name=stream.bin"))
        .bearer_auth(&g.token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = upload(&app, &g, "a.bin", vec![1; 9_000]).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = upload(&app, &g, "b.bin", vec![1; 9_000]).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(code(&v), "quota_exceeded");
    let files = count_files(&app.dir.path().join("media"));
    assert_eq!(files, 1, "only the one accepted upload is stored");
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn multipart_uploads_work() {
    let app = spawn_app().await;
    let a = app.signup(&format!("jon{}", rand_id())).await;
    let boundary = "XqtBoundary42";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"노트.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes());
    // Larger than --max-body-bytes (64 KiB): upload bodies are not buffered.
    let content = "안녕하세요".repeat(20_000);
    body.extend_from_slice(content.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = app
        .http
        .post(app.url("/api/v1/media"))
        .bearer_auth(&a.token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["name"], "노트.txt");
    assert_eq!(m["size"], content.len());
    let (_, h, bytes) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(bytes, content.as_bytes());
    assert!(
        header(&h, "content-disposition").contains("filename*=UTF-8''%EB%85%B8%ED%8A%B8.txt"),
        "{h:?}"
    );
}

#[tokio::test]
async fn attachments_travel_in_stomp_history_and_replay() {
    let app = spawn_app().await;
    let a = app.signup(&format!("kim{}", rand_id())).await;
    let b = app.signup(&format!("lee{}", rand_id())).await;
    let room = app.create_room(&a, "pics", "public").await;
    app.join(&b, room).await;
    let mut bc = app.stomp(&b).await;
    bc.subscribe_sync("live", &format!("/topic/rooms.{room}"), &[])
        .await
        .unwrap();
    let (_, p1) = upload(&app, &a, "one.jpg", jpeg_with_gps(50, 40, 1)).await;
    let (_, p2) = upload(&app, &a, "two.txt", b"two".to_vec()).await;
    let ids = [p1["id"].as_str().unwrap(), p2["id"].as_str().unwrap()];
    let mut ac = app.stomp(&a).await;
    ac.send_json(
        &format!("/app/rooms.{room}"),
        &json!({"text": "look", "attachments": ids}),
        Some("r1"),
    )
    .await
    .unwrap();
    ac.expect_receipt("r1").await.unwrap();
    let live = loop {
        let m = bc.next_json("live").await.unwrap();
        if m["kind"] == "text" {
            break m;
        }
    };
    assert_eq!(live["text"], "look");
    let got: Vec<&str> = live["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ids, "in the sender's order");
    assert_eq!(live["attachments"][0]["kind"], "image");
    assert_eq!(live["attachments"][0]["width"], 50);
    assert!(live["attachments"][0].get("owner").is_none(), "{live}");
    let history = app.history(&b, room).await;
    let stored = history.iter().find(|m| m["text"] == "look").unwrap();
    assert_eq!(stored["attachments"], live["attachments"]);
    // Replay from seq 0 on a new socket.
    let mut rc = app.stomp(&b).await;
    rc.subscribe_sync(
        "again",
        &format!("/topic/rooms.{room}"),
        &[("since-seq", "0")],
    )
    .await
    .unwrap();
    let replayed = loop {
        let m = rc.next_json("again").await.unwrap();
        if m["text"] == "look" {
            break m;
        }
    };
    assert_eq!(replayed["attachments"], live["attachments"]);
    // Text messages without files have an empty list.
    let (_, plain) = post_msg(&app, &a, room, json!({"text": "plain"})).await;
    assert_eq!(plain["attachments"], json!([]));
}

#[tokio::test]
async fn attachment_rules_are_checked() {
    let app = spawn_app().await;
    let a = app.signup(&format!("max{}", rand_id())).await;
    let room = app.create_room(&a, "files", "public").await;
    let mut ids = Vec::new();
    for i in 0..11 {
        let (_, m) = upload(&app, &a, &format!("f{i}.txt"), vec![b'x'; 3]).await;
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let (s, v) = post_msg(&app, &a, room, json!({"attachments": ids})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "too_many_attachments"),
        "{v}"
    );
    let (s, v) = post_msg(&app, &a, room, json!({"attachments": [ids[0], ids[0]]})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_attachments"),
        "{v}"
    );
    let (s, v) = post_msg(&app, &a, room, json!({"attachments": ["nope"]})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_attachments"),
        "{v}"
    );
    let (s, v) = post_msg(&app, &a, room, json!({"text": "  "})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "empty_text"),
        "{v}"
    );
    let (s, v) = post_msg(&app, &a, room, json!({"attachments": &ids[..10]})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["attachments"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn file_names_are_moderated_like_messages() {
    let app = spawn_app().await;
    let a = app.signup(&format!("ned{}", rand_id())).await;
    let (s, v) = upload(&app, &a, "kill yourself.txt", b"x".to_vec()).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "moderated"), "{v}");
    let (s, m) = upload(&app, &a, "fuck you.txt", b"x".to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["name"], "**** you.txt");
    let (_, m) = upload(&app, &a, "../../etc/passwd", b"x".to_vec()).await;
    let name = m["name"].as_str().unwrap();
    assert!(!name.contains('/') && !name.starts_with('.'), "{name}");
}

async fn tus(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0");
    for (k, v) in headers {
        req = req.header(*k, HeaderValue::from_str(v).unwrap());
    }
    let res = req.body(body).send().await.unwrap();
    let s = res.status();
    let h = res.headers().clone();
    (s, h, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn resumable_uploads_resume_finish_and_cancel() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let a = app.signup(&format!("oli{}", rand_id())).await;
    let other = app.signup(&format!("pam{}", rand_id())).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let name = base64::engine::general_purpose::STANDARD.encode("큰 파일.bin");
    let (s, h, _) = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &a.token,
        &[
            ("upload-length", data.len().to_string()),
            ("upload-metadata", format!("filename {name}")),
        ],
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let loc = header(&h, "location").to_owned();
    assert!(loc.starts_with("/api/v1/uploads/"));
    let id = loc.rsplit('/').next().unwrap().to_owned();
    let piece = |from: usize, to: usize| data[from..to].to_vec();
    let octet = ("content-type", "application/offset+octet-stream".to_owned());
    let (s, h, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "0".into())],
        piece(0, 100_000),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(header(&h, "upload-offset"), "100000");
    // A piece for a stale offset is refused and changes nothing.
    let (s, _, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "0".into())],
        piece(0, 10),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    // Someone else's upload does not exist for them.
    let (s, _, _) = tus(&app, Method::HEAD, &loc, &other.token, &[], vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A dropped connection mid-piece: the client asks where to resume.
    let (s, h, _) = tus(&app, Method::HEAD, &loc, &a.token, &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "upload-offset"), "100000");
    assert_eq!(header(&h, "upload-length"), "300000");
    let (s, _, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "100000".into())],
        piece(100_000, 250_000),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Past the declared length: refused.
    let (s, _, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "250000".into())],
        vec![0; 60_000],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, h, body) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "250000".into())],
        piece(250_000, 300_000),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "upload-offset"), "300000");
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(m["id"], id.as_str());
    assert_eq!(m["name"], "큰 파일.bin");
    assert_eq!(m["size"], 300_000);
    let (_, _, got) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(got, data);
    let (s, h, _) = tus(&app, Method::HEAD, &loc, &a.token, &[], vec![]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "quicktalk-media-id"), id);
    // The pieces are gone: only the file is left.
    assert_eq!(count_files(&app.dir.path().join("media").join("part")), 0);

    // Cancel: record and pieces go.
    let (_, h, _) = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &a.token,
        &[("upload-length", "1000".into())],
        vec![],
    )
    .await;
    let loc = header(&h, "location").to_owned();
    let (s, _, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "0".into())],
        vec![1; 500],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(count_files(&app.dir.path().join("media").join("part")), 1);
    let (s, _, _) = tus(&app, Method::DELETE, &loc, &a.token, &[], vec![]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = tus(&app, Method::HEAD, &loc, &a.token, &[], vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(count_files(&app.dir.path().join("media").join("part")), 0);

    // Without the version header: 412; too long: 413.
    let res = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&a.token)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    let (s, _, _) = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &a.token,
        &[("upload-length", (1u64 << 40).to_string())],
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let res = app
        .http
        .request(Method::OPTIONS, app.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(res.headers(), "tus-version"), "1.0.0");
}

#[tokio::test]
async fn files_no_message_carries_are_removed_after_the_grace_period() {
    let app = spawn_app_with(|c| {
        c.media_grace_secs = 1;
        c.media_sweep_secs = 1;
    })
    .await;
    let a = app.signup(&format!("quinn{}", rand_id())).await;
    let room = app.create_room(&a, "keep", "public").await;
    let (_, kept) = upload(&app, &a, "kept.txt", b"kept".to_vec()).await;
    let (_, lost) = upload(&app, &a, "lost.jpg", jpeg_with_gps(30, 30, 1)).await;
    post_msg(&app, &a, room, json!({"attachments": [kept["id"]]})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, _, _) = fetch(&app, lost["url"].as_str().unwrap(), Some(&a.token), &[]).await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, _, _) = fetch(&app, kept["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(s, StatusCode::OK);
    // Original and thumbnail of the removed file are gone; the kept one stays.
    assert_eq!(count_files(&app.dir.path().join("media")), 1);
}

#[tokio::test]
async fn cluster_mode_refuses_a_local_media_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.kafka_brokers = Some("127.0.0.1:1".into());
    config.database_url = Some("postgres://nobody@127.0.0.1:1/none".into());
    let err = match quicktalk::Application::build(config).await {
        Ok(_) => panic!("a cluster node started with a local media store"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("media store every node shares"), "{err}");
}

/// The same server paths on the S3 backend (a real S3-compatible server:
/// `QUICKTALK_TEST_S3_URL`, moto in CI): image upload with stripping and a
/// thumbnail, a streamed file with ranges, a resumable upload, and the
/// cleanup of a file no message carries.
#[tokio::test]
async fn uploads_and_downloads_work_on_s3() {
    let Some(spec) = crate::s3_env::s3_bucket("api").await else {
        crate::skip::skip(
            "api::media::s3",
            "QUICKTALK_TEST_S3_URL is not set",
            "pip install 'moto[server]'; moto_server -p 5000 & and set QUICKTALK_TEST_S3_URL=http://127.0.0.1:5000",
        );
        return;
    };
    let app = spawn_app_with(|c| {
        c.media_store = Some(spec);
        c.media_grace_secs = 2;
        c.media_sweep_secs = 1;
    })
    .await;
    let a = app.signup(&format!("s3u{}", rand_id())).await;
    let room = app.create_room(&a, "s3", "public").await;
    let (s, m) = upload(&app, &a, "gps.jpg", jpeg_with_gps(320, 200, 1)).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    post_msg(&app, &a, room, json!({"attachments": [m["id"]]})).await;
    let (s, _, body) = fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!contains(&body, GPS_MARKER));
    let (s, _, _) = fetch(
        &app,
        m["thumbnail_url"].as_str().unwrap(),
        Some(&a.token),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Over 5 MiB: the multipart path of the S3 backend.
    let data: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 249) as u8).collect();
    let (s, big) = upload(&app, &a, "big.bin", data.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{big}");
    post_msg(&app, &a, room, json!({"attachments": [big["id"]]})).await;
    let (s, _, part) = fetch(
        &app,
        big["url"].as_str().unwrap(),
        Some(&a.token),
        &[("range", "bytes=5242000-5243000")],
    )
    .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, &data[5_242_000..=5_243_000]);
    // Resumable, two pieces.
    let (s, h, _) = tus(
        &app,
        Method::POST,
        "/api/v1/uploads",
        &a.token,
        &[("upload-length", "2000".into())],
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let loc = header(&h, "location").to_owned();
    let octet = ("content-type", "application/offset+octet-stream".to_owned());
    let (s, _, _) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet.clone(), ("upload-offset", "0".into())],
        vec![1; 1000],
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, done) = tus(
        &app,
        Method::PATCH,
        &loc,
        &a.token,
        &[octet, ("upload-offset", "1000".into())],
        vec![2; 1000],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let done: Value = serde_json::from_slice(&done).unwrap();
    let (_, _, got) = fetch(&app, done["url"].as_str().unwrap(), Some(&a.token), &[]).await;
    assert_eq!(got.len(), 2000);
    assert_eq!((got[999], got[1000]), (1, 2));
    // Unattached: removed after the grace period; attached ones stay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (s, _, _) = fetch(&app, done["url"].as_str().unwrap(), Some(&a.token), &[]).await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never cleaned up");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        fetch(&app, m["url"].as_str().unwrap(), Some(&a.token), &[])
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_banned_users_signed_links_stop_working() {
    let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
    let keep = slot.clone();
    let app = spawn_app_wrapping_store(
        tempfile::tempdir().unwrap(),
        |_| {},
        move |s| {
            *keep.lock().unwrap() = Some(s.clone());
            s
        },
    )
    .await;
    let store: std::sync::Arc<dyn quicktalk::store::Store> = slot.lock().unwrap().take().unwrap();
    let name = format!("mod{}", rand_id());
    let moderator = app.signup(&name).await;
    store
        .set_role(&name, quicktalk::model::Role::Moderator)
        .await
        .unwrap()
        .unwrap();
    let a = app.signup(&format!("rex{}", rand_id())).await;
    let (_, m) = upload(&app, &a, "x.txt", b"x".to_vec()).await;
    let id = m["id"].as_str().unwrap();
    let (_, v) = app
        .post("/api/v1/media/sign", &a.token, json!({"ids": [id]}))
        .await;
    let signed = v["media"][id]["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&app, &signed, None, &[]).await.0, StatusCode::OK);
    let (s, v) = app
        .post(
            &format!("/api/v1/admin/users/{}/ban", a.id),
            &moderator.token,
            json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        fetch(&app, &signed, None, &[]).await.0,
        StatusCode::FORBIDDEN
    );
}
