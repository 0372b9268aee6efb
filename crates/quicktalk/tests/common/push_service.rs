//! A Web Push service of the tests' own (RFC 8030), on `127.0.0.1:0`: test browser
//! subscriptions ([`Subscriber`]: a fresh P-256 key pair and auth secret each), and
//! an HTTP endpoint per subscription that checks every push the way a real push
//! service and browser would — headers (RFC 8030 §5), VAPID (RFC 8292) and the
//! encrypted payload (RFC 8291 over RFC 8188 `aes128gcm`) — then records it.
//!
//! The decryption and the JWT check are written here from the RFCs with RustCrypto
//! primitives (p256, hkdf, aes-gcm), independent of the Web Push crate the server
//! uses. A request failing any check is answered 400 and kept in
//! [`PushService::rejected`]; tests assert that list is empty.
//!
//! Shared by the api and process suites through `#[path]`; each uses part of it.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use sha2::Sha256;

/// The largest body a push service must accept (RFC 8030 §7.2, RFC 8291 §4).
pub const MAX_BODY: usize = 4096;
/// The furthest ahead a VAPID `exp` may be (RFC 8292 §2).
pub const MAX_EXP_AHEAD_SECS: u64 = 24 * 60 * 60;
/// `salt` (16) + `rs` (4) + `idlen` (1) of the `aes128gcm` header (RFC 8188 §2.1).
const HEADER_FIXED: usize = 21;
/// AES-GCM tag length.
const TAG: usize = 16;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding (what RFC 8291/8292 values are).
pub fn unb64(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| format!("not base64url without padding ({e}): {text:?}"))
}

/// A P-256 public key as the 65-byte uncompressed point (`0x04 || x || y`).
pub fn uncompressed(key: &PublicKey) -> Vec<u8> {
    use p256::elliptic_curve::sec1::ToEncodedPoint as _;
    key.to_encoded_point(false).as_bytes().to_vec()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// ---- RFC 8291 / RFC 8188 ------------------------------------------------------

/// The content-encryption key and base nonce of RFC 8291 §3.3–3.4 for one message:
/// `ecdh_secret` from the subscriber's key and the sender's, mixed with the auth
/// secret and both public keys (`"WebPush: info"`), then the RFC 8188 §2.2–2.3
/// derivations from the salt.
pub fn derive_cek_nonce(
    ecdh_secret: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> ([u8; 16], [u8; 12]) {
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut ikm)
        .expect("32 bytes is a valid HKDF-SHA-256 length");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .expect("16 bytes is a valid HKDF-SHA-256 length");
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .expect("12 bytes is a valid HKDF-SHA-256 length");
    (cek, nonce)
}

/// The nonce of record `seq`: the base nonce XOR the 96-bit big-endian counter
/// (RFC 8188 §2.3).
pub fn record_nonce(base: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *base;
    for (i, b) in seq.to_be_bytes().iter().enumerate() {
        n[4 + i] ^= b;
    }
    n
}

/// The parsed `aes128gcm` content-coding header (RFC 8188 §2.1).
#[derive(Debug, Clone)]
pub struct EceHeader {
    pub salt: [u8; 16],
    pub rs: u32,
    pub keyid: Vec<u8>,
}

pub fn parse_ece_header(body: &[u8]) -> Result<(EceHeader, &[u8]), String> {
    if body.len() < HEADER_FIXED {
        return Err(format!(
            "body of {} bytes is shorter than the aes128gcm header",
            body.len()
        ));
    }
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&body[..16]);
    let rs = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes"));
    let idlen = body[20] as usize;
    if body.len() < HEADER_FIXED + idlen {
        return Err(format!("body ends inside the keyid (idlen {idlen})"));
    }
    let keyid = body[HEADER_FIXED..HEADER_FIXED + idlen].to_vec();
    Ok((EceHeader { salt, rs, keyid }, &body[HEADER_FIXED + idlen..]))
}

/// Decrypts a Web Push message body as the browser holding `ua_secret` and `auth`
/// would: RFC 8291 (the keyid is the sender's ephemeral P-256 key, 65 bytes
/// uncompressed) over RFC 8188 records, each `data || delimiter || 0x00*`, the
/// delimiter 0x01 in every record but the last and 0x02 in the last. Any
/// malformation or authentication failure is an `Err` with the reason.
pub fn decrypt_aes128gcm(
    body: &[u8],
    ua_secret: &SecretKey,
    auth: &[u8],
) -> Result<Vec<u8>, String> {
    let (header, records) = parse_ece_header(body)?;
    if header.keyid.len() != 65 || header.keyid[0] != 0x04 {
        return Err(format!(
            "keyid is not an uncompressed P-256 point: {} bytes, first {:?}",
            header.keyid.len(),
            header.keyid.first()
        ));
    }
    let as_public = PublicKey::from_sec1_bytes(&header.keyid)
        .map_err(|_| "keyid is not a point on P-256".to_owned())?;
    // RFC 8188 §2: rs must exceed the tag plus one delimiter byte.
    if (header.rs as usize) < TAG + 2 {
        return Err(format!("record size {} is below the minimum 18", header.rs));
    }
    if records.is_empty() {
        return Err("no records after the header".to_owned());
    }
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = uncompressed(&ua_secret.public_key());
    let (cek, base_nonce) = derive_cek_nonce(
        shared.raw_secret_bytes(),
        auth,
        &ua_public,
        &header.keyid,
        &header.salt,
    );
    let cipher = Aes128Gcm::new_from_slice(&cek).expect("16-byte key");
    let chunks: Vec<&[u8]> = records.chunks(header.rs as usize).collect();
    let mut out = Vec::new();
    for (seq, chunk) in chunks.iter().enumerate() {
        let last = seq + 1 == chunks.len();
        if chunk.len() <= TAG {
            return Err(format!(
                "record {seq} has {} bytes, no room for data after the tag",
                chunk.len()
            ));
        }
        let nonce = record_nonce(&base_nonce, seq as u64);
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), *chunk)
            .map_err(|_| format!("record {seq} does not authenticate (AES-GCM tag mismatch)"))?;
        let Some(delim_at) = plain.iter().rposition(|&b| b != 0) else {
            return Err(format!("record {seq} is all padding, no delimiter"));
        };
        let want = if last { 0x02 } else { 0x01 };
        if plain[delim_at] != want {
            return Err(format!(
                "record {seq} ({}) ends with delimiter {:#04x}, want {want:#04x}",
                if last { "last" } else { "not last" },
                plain[delim_at]
            ));
        }
        if !last && chunk.len() != header.rs as usize {
            return Err(format!("record {seq} is short but not last"));
        }
        out.extend_from_slice(&plain[..delim_at]);
    }
    Ok(out)
}

// ---- RFC 8292 -----------------------------------------------------------------

/// What a valid `Authorization: vapid t=…, k=…` carried.
#[derive(Debug, Clone)]
pub struct Vapid {
    pub claims: Value,
    pub key: String,
}

/// Checks an `Authorization` header value as a push service does (RFC 8292 §2–3):
/// scheme `vapid` with `t` (a JWT) and `k` (an uncompressed P-256 key, base64url);
/// JWT `alg` ES256, a 64-byte `r||s` signature that verifies against `k`; claims
/// `aud` equal to `audience`, `exp` after `now` and at most 24 h ahead, `sub` a
/// `mailto:` or `https:` URI.
pub fn verify_vapid(authorization: &str, audience: &str, now: u64) -> Result<Vapid, String> {
    let (scheme, rest) = authorization
        .split_once(' ')
        .ok_or_else(|| format!("Authorization {authorization:?} has no scheme"))?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(format!("Authorization scheme {scheme:?} is not vapid"));
    }
    let mut t = None;
    let mut k = None;
    for param in rest.split(',') {
        let (name, value) = param
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("malformed vapid parameter {param:?}"))?;
        match name.trim() {
            "t" => t = Some(value.trim()),
            "k" => k = Some(value.trim()),
            other => return Err(format!("unknown vapid parameter {other:?}")),
        }
    }
    let (Some(t), Some(k)) = (t, k) else {
        return Err(format!("vapid needs both t= and k=: {authorization:?}"));
    };
    let key_bytes = unb64(k).map_err(|e| format!("k: {e}"))?;
    if key_bytes.len() != 65 || key_bytes[0] != 0x04 {
        return Err(format!(
            "k is not an uncompressed P-256 point ({} bytes)",
            key_bytes.len()
        ));
    }
    let key = VerifyingKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| "k is not a point on P-256".to_owned())?;
    let parts: Vec<&str> = t.split('.').collect();
    let [head_b64, claims_b64, sig_b64] = parts[..] else {
        return Err(format!("JWT has {} parts, not 3", parts.len()));
    };
    let head: Value =
        serde_json::from_slice(&unb64(head_b64).map_err(|e| format!("JWT header: {e}"))?)
            .map_err(|e| format!("JWT header is not JSON: {e}"))?;
    if head["alg"] != "ES256" {
        return Err(format!("JWT alg is {}, not ES256", head["alg"]));
    }
    let sig_bytes = unb64(sig_b64).map_err(|e| format!("JWT signature: {e}"))?;
    if sig_bytes.len() != 64 {
        return Err(format!(
            "ES256 signature is {} bytes, not 64 (r||s)",
            sig_bytes.len()
        ));
    }
    let sig = Signature::from_slice(&sig_bytes)
        .map_err(|_| "JWT signature is not a valid (r, s)".to_owned())?;
    let signed = format!("{head_b64}.{claims_b64}");
    key.verify(signed.as_bytes(), &sig)
        .map_err(|_| "JWT signature does not verify against k".to_owned())?;
    let claims: Value =
        serde_json::from_slice(&unb64(claims_b64).map_err(|e| format!("JWT claims: {e}"))?)
            .map_err(|e| format!("JWT claims are not JSON: {e}"))?;
    if claims["aud"].as_str() != Some(audience) {
        return Err(format!("aud is {}, want {audience:?}", claims["aud"]));
    }
    let exp = claims["exp"]
        .as_u64()
        .ok_or_else(|| format!("exp is not a non-negative integer: {}", claims["exp"]))?;
    if exp <= now {
        return Err(format!("exp {exp} is not in the future (now {now})"));
    }
    if exp > now + MAX_EXP_AHEAD_SECS {
        return Err(format!(
            "exp {exp} is {} s ahead, more than 24 h (now {now})",
            exp - now
        ));
    }
    match claims["sub"].as_str() {
        Some(s) if s.starts_with("mailto:") || s.starts_with("https:") => {}
        _ => {
            return Err(format!(
                "sub is {}, not a mailto: or https: URI",
                claims["sub"]
            ))
        }
    }
    Ok(Vapid {
        claims,
        key: k.to_owned(),
    })
}

/// `vapid t=<ES256 JWT of claims>, k=<public key of k_of>`, signed by `signer` (a
/// sender's side, for the tests of this service and of the Python cross-check;
/// `signer` and `k_of` differ only to make a bad signature).
pub fn vapid_header(
    signer: &p256::ecdsa::SigningKey,
    k_of: &p256::ecdsa::SigningKey,
    claims: &Value,
) -> String {
    use p256::ecdsa::signature::Signer as _;
    let head = b64(br#"{"typ":"JWT","alg":"ES256"}"#);
    let body = b64(claims.to_string().as_bytes());
    let signing_input = format!("{head}.{body}");
    let sig: Signature = signer.sign(signing_input.as_bytes());
    let k = b64(&k_of.verifying_key().to_encoded_point(false).to_bytes());
    format!("vapid t={signing_input}.{}, k={k}", b64(&sig.to_bytes()))
}

/// The example of RFC 8291 Appendix A (all base64url without padding).
pub mod rfc8291 {
    pub const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    pub const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    pub const AS_PUBLIC: &str =
        "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
    pub const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    pub const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    pub const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    pub const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    pub const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
}

// ---- subscribers ---------------------------------------------------------------

/// A test browser's push subscription: its endpoint on this service and the keys
/// it would hand to `PushManager.subscribe()`'s caller.
#[derive(Clone)]
pub struct Subscriber {
    pub name: String,
    pub endpoint: String,
    pub secret: SecretKey,
    pub auth: [u8; 16],
}

impl Subscriber {
    /// `p256dh`: the uncompressed public point, base64url without padding.
    pub fn p256dh(&self) -> String {
        b64(&uncompressed(&self.secret.public_key()))
    }

    /// `auth`: the 16-byte secret, base64url without padding.
    pub fn auth_b64(&self) -> String {
        b64(&self.auth)
    }

    /// The raw 32-byte private scalar, base64url (for the Python cross-check).
    pub fn private_key_b64(&self) -> String {
        b64(&self.secret.to_bytes())
    }

    /// The body of `POST /api/v1/push/subscriptions` (a `PushSubscription.toJSON()`).
    pub fn json(&self) -> Value {
        json!({
            "endpoint": self.endpoint,
            "keys": {"p256dh": self.p256dh(), "auth": self.auth_b64()},
        })
    }

    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        decrypt_aes128gcm(body, &self.secret, &self.auth)
    }
}

// ---- the service ----------------------------------------------------------------

/// A push the service accepted (201).
#[derive(Debug, Clone)]
pub struct Received {
    pub endpoint_name: String,
    /// The decrypted body parsed as JSON.
    pub payload: Value,
    /// The decrypted body as it was.
    pub plaintext: Vec<u8>,
    pub ttl: u64,
    pub urgency: Option<String>,
    pub topic: Option<String>,
    pub jwt_claims: Value,
    /// `k` of the VAPID header.
    pub vapid_key: String,
    /// The whole `Authorization` header value.
    pub authorization: String,
    /// The encrypted body as sent.
    pub body: Vec<u8>,
    pub at: Instant,
}

/// A scripted answer for the next valid push to one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 410: the subscription expired or was unsubscribed.
    Gone,
    /// 404: no such subscription.
    NotFound,
    /// 429 with `Retry-After: retry_after_secs`.
    TooMany { retry_after_secs: u64 },
    /// 500.
    ServerError,
}

impl Answer {
    pub fn status(self) -> u16 {
        match self {
            Answer::Gone => 410,
            Answer::NotFound => 404,
            Answer::TooMany { .. } => 429,
            Answer::ServerError => 500,
        }
    }
}

/// One POST to a subscription's endpoint, whatever became of it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Instant,
    /// The status answered: 201, a scripted one, 400 (rejected) or 404 (unknown name).
    pub status: u16,
    /// The scripted answer used, if any.
    pub scripted: Option<Answer>,
    /// The push as decoded, when it passed every check.
    pub push: Option<Received>,
    /// Why it was rejected, when it was.
    pub rejected: Option<String>,
}

/// A request that failed a check (answered 400, or 404 for an unknown endpoint).
#[derive(Debug, Clone)]
pub struct Rejection {
    pub endpoint_name: String,
    pub reason: String,
    pub at: Instant,
}

#[derive(Default)]
struct Book {
    subscribers: HashMap<String, Subscriber>,
    received: Vec<Received>,
    attempts: Vec<(String, Attempt)>,
    rejected: Vec<Rejection>,
    scripted: HashMap<String, VecDeque<Answer>>,
    expected_key: Option<String>,
    next_message: u64,
}

struct Shared {
    origin: String,
    book: Mutex<Book>,
}

/// The running push service. Dropping it stops the server.
pub struct PushService {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PushService {
    /// Binds `127.0.0.1:0` and serves `POST /push/{name}`.
    pub async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test push service");
        let addr = listener.local_addr().expect("push service address");
        let shared = Arc::new(Shared {
            origin: format!("http://{addr}"),
            book: Mutex::new(Book::default()),
        });
        let app = Router::new()
            .route("/push/{name}", post(push_handler))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("test push service stopped");
        });
        PushService { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`: the `aud` every VAPID JWT must carry.
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.shared.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new test browser subscription at `/push/<name>` (fresh keys each time;
    /// a second call with the same name replaces the first).
    pub fn subscriber(&self, name: &str) -> Subscriber {
        let sub = Subscriber {
            name: name.to_owned(),
            endpoint: format!("{}/push/{name}", self.shared.origin),
            secret: SecretKey::random(&mut rand::rngs::OsRng),
            auth: rand::random(),
        };
        self.book().subscribers.insert(name.to_owned(), sub.clone());
        sub
    }

    /// From now on, a VAPID `k` other than `public_key_b64` is rejected.
    pub fn expect_key(&self, public_key_b64: &str) {
        self.book().expected_key = Some(public_key_b64.to_owned());
    }

    /// Answers the next valid push to `name` with `answer` instead of 201 (queued:
    /// several calls script several pushes in order).
    pub fn answer_next(&self, name: &str, answer: Answer) {
        self.book()
            .scripted
            .entry(name.to_owned())
            .or_default()
            .push_back(answer);
    }

    /// The pushes to `name` accepted with 201, in arrival order.
    pub fn received(&self, name: &str) -> Vec<Received> {
        self.book()
            .received
            .iter()
            .filter(|r| r.endpoint_name == name)
            .cloned()
            .collect()
    }

    /// Every POST to `name` (accepted, scripted, rejected), in arrival order.
    pub fn attempts(&self, name: &str) -> Vec<Attempt> {
        self.book()
            .attempts
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Every request, to any endpoint, that failed a check.
    pub fn rejected(&self) -> Vec<Rejection> {
        self.book().rejected.clone()
    }

    /// Panics, listing them, if any request was rejected.
    pub fn assert_no_rejections(&self) {
        let rejected = self.rejected();
        assert!(
            rejected.is_empty(),
            "the test push service rejected {} request(s): {:#?}",
            rejected.len(),
            rejected
        );
    }

    fn describe(&self, name: &str) -> String {
        let book = self.book();
        let attempts: Vec<String> = book
            .attempts
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| match (&a.push, &a.rejected) {
                (Some(p), _) => format!(
                    "{} (scripted {:?}) ttl={} urgency={:?} topic={:?} payload={}",
                    a.status, a.scripted, p.ttl, p.urgency, p.topic, p.payload
                ),
                (None, Some(why)) => format!("{} rejected: {why}", a.status),
                (None, None) => format!("{}", a.status),
            })
            .collect();
        format!(
            "attempts to {name:?}: {attempts:#?}\nall rejections: {:#?}",
            book.rejected
        )
    }

    /// Waits up to `timeout` until `name` has received (201) at least `n` pushes,
    /// and returns all it received. Panics, listing what did arrive, on timeout or
    /// as soon as a push to `name` is rejected.
    pub async fn wait_for(&self, name: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received(name);
            if got.len() >= n {
                return got;
            }
            if self.rejected().iter().any(|r| r.endpoint_name == name) {
                panic!(
                    "a push to {name:?} was rejected while waiting for {n}\n{}",
                    self.describe(name)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "waited {timeout:?} for {n} push(es) to {name:?}, got {}\n{}",
                    got.len(),
                    self.describe(name)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Panics if any request to `name` (valid or not) arrives within `for_duration`.
    pub async fn assert_quiet(&self, name: &str, for_duration: Duration) {
        let before = self.attempts(name).len();
        tokio::time::sleep(for_duration).await;
        let after = self.attempts(name).len();
        assert_eq!(
            before,
            after,
            "expected no push to {name:?} for {for_duration:?}, but {} arrived\n{}",
            after - before,
            self.describe(name)
        );
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| format!("{name} header is not visible ASCII")),
    }
}

/// Every check on one request; `Ok` is the decoded push.
fn check_push(
    shared: &Shared,
    sub: &Subscriber,
    expected_key: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Received, String> {
    match header_str(headers, "content-encoding")? {
        Some(ce) if ce.eq_ignore_ascii_case("aes128gcm") => {}
        other => return Err(format!("Content-Encoding is {other:?}, not aes128gcm")),
    }
    let ttl = header_str(headers, "ttl")?.ok_or("no TTL header (RFC 8030 §5.2)")?;
    let ttl: u64 = ttl
        .parse()
        .map_err(|_| format!("TTL {ttl:?} is not a non-negative integer"))?;
    let urgency = header_str(headers, "urgency")?.map(str::to_owned);
    if let Some(u) = &urgency {
        if !["very-low", "low", "normal", "high"].contains(&u.as_str()) {
            return Err(format!("Urgency {u:?} is not very-low|low|normal|high"));
        }
    }
    let topic = header_str(headers, "topic")?.map(str::to_owned);
    if let Some(t) = &topic {
        let alphabet_ok = t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if t.is_empty() || t.len() > 32 || !alphabet_ok {
            return Err(format!(
                "Topic {t:?} is not 1–32 characters of the base64url alphabet (RFC 8030 §5.4)"
            ));
        }
    }
    if body.len() > MAX_BODY {
        return Err(format!("body is {} bytes, over {MAX_BODY}", body.len()));
    }
    if body.is_empty() {
        return Err("empty body: every QuickTalk push carries a payload".to_owned());
    }
    let authorization = header_str(headers, "authorization")?.ok_or("no Authorization header")?;
    let vapid = verify_vapid(authorization, &shared.origin, unix_now())?;
    if let Some(want) = expected_key {
        if vapid.key != want {
            return Err(format!(
                "VAPID k {} is not the server's key {want}",
                vapid.key
            ));
        }
    }
    let (ece, records) = parse_ece_header(body)?;
    // RFC 8291 §4: a push message is a single record.
    if records.len() > ece.rs as usize {
        return Err(format!(
            "{} bytes of records with rs {}: more than the one record RFC 8291 §4 allows",
            records.len(),
            ece.rs
        ));
    }
    let plaintext = sub.decrypt(body)?;
    let payload: Value = serde_json::from_slice(&plaintext).map_err(|e| {
        format!(
            "decrypted payload is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&plaintext)
        )
    })?;
    Ok(Received {
        endpoint_name: sub.name.clone(),
        payload,
        plaintext,
        ttl,
        urgency,
        topic,
        jwt_claims: vapid.claims,
        vapid_key: vapid.key,
        authorization: authorization.to_owned(),
        body: body.to_vec(),
        at: Instant::now(),
    })
}

async fn push_handler(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let mut book = shared.book.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sub) = book.subscribers.get(&name).cloned() else {
        let reason = format!("no subscription named {name:?}");
        book.rejected.push(Rejection {
            endpoint_name: name.clone(),
            reason: reason.clone(),
            at,
        });
        book.attempts.push((
            name,
            Attempt {
                at,
                status: 404,
                scripted: None,
                push: None,
                rejected: Some(reason.clone()),
            },
        ));
        return (StatusCode::NOT_FOUND, reason).into_response();
    };
    let expected_key = book.expected_key.clone();
    match check_push(&shared, &sub, expected_key.as_deref(), &headers, &body) {
        Err(reason) => {
            book.rejected.push(Rejection {
                endpoint_name: name.clone(),
                reason: reason.clone(),
                at,
            });
            book.attempts.push((
                name,
                Attempt {
                    at,
                    status: 400,
                    scripted: None,
                    push: None,
                    rejected: Some(reason.clone()),
                },
            ));
            (StatusCode::BAD_REQUEST, reason).into_response()
        }
        Ok(push) => {
            let scripted = book.scripted.get_mut(&name).and_then(VecDeque::pop_front);
            let status = scripted.map_or(201, Answer::status);
            book.attempts.push((
                name,
                Attempt {
                    at,
                    status,
                    scripted,
                    push: Some(push.clone()),
                    rejected: None,
                },
            ));
            match scripted {
                None => {
                    book.received.push(push);
                    book.next_message += 1;
                    let location = format!("{}/message/{}", shared.origin, book.next_message);
                    let mut resp = StatusCode::CREATED.into_response();
                    resp.headers_mut().insert(
                        "location",
                        HeaderValue::from_str(&location).expect("ASCII location"),
                    );
                    resp
                }
                Some(answer) => {
                    let code = StatusCode::from_u16(answer.status()).expect("valid status");
                    let mut resp = code.into_response();
                    if let Answer::TooMany { retry_after_secs } = answer {
                        resp.headers_mut().insert(
                            "retry-after",
                            HeaderValue::from_str(&retry_after_secs.to_string()).expect("digits"),
                        );
                    }
                    resp
                }
            }
        }
    }
}
