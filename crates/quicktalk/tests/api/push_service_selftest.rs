//! Tests of the test push service itself (`tests/common/push_service.rs`): its
//! decryption against the RFC 8291 Appendix A example, a sender written here
//! (RFC 8291 encryption and an ES256 VAPID JWT) that reproduces that example byte
//! for byte, and over HTTP: a valid push accepted and decoded, each kind of bad
//! request (expired or too-distant `exp`, wrong `aud`, bad signature, headers,
//! tampered body, foreign key) rejected, scripted answers, and the waiting helpers
//! failing when they should.

use std::time::Duration;

use p256::ecdsa::SigningKey;
use p256::{PublicKey, SecretKey};
use serde_json::{json, Value};

use crate::push_service::{
    b64, decrypt_aes128gcm, derive_cek_nonce, record_nonce, unb64, uncompressed, unix_now,
    vapid_header, verify_vapid, Answer, PushService, Subscriber,
};

use crate::push_service::rfc8291::{
    AS_PRIVATE as RFC_AS_PRIVATE, AS_PUBLIC as RFC_AS_PUBLIC, AUTH as RFC_AUTH, BODY as RFC_BODY,
    PLAINTEXT as RFC_PLAINTEXT, SALT as RFC_SALT, UA_PRIVATE as RFC_UA_PRIVATE,
    UA_PUBLIC as RFC_UA_PUBLIC,
};

fn rfc_ua() -> SecretKey {
    SecretKey::from_slice(&unb64(RFC_UA_PRIVATE).unwrap()).unwrap()
}

fn rfc_auth() -> Vec<u8> {
    unb64(RFC_AUTH).unwrap()
}

// ---- a sender, written for these tests -----------------------------------------

/// How the test sender seals one message.
struct Seal<'a> {
    /// The sender's ephemeral key (its public half becomes the keyid).
    as_secret: &'a SecretKey,
    salt: [u8; 16],
    /// The record size written in the header.
    rs: u32,
    /// Zero bytes of padding after the delimiter.
    pad: usize,
    /// 0x02 is right for the one (last) record.
    delimiter: u8,
}

/// Encrypts `plaintext` for the subscriber with public key `ua_public` and `auth`
/// as one RFC 8188 record, sealed as `seal` says.
fn encrypt(plaintext: &[u8], ua_public: &PublicKey, auth: &[u8], seal: &Seal) -> Vec<u8> {
    let Seal {
        as_secret,
        salt,
        rs,
        pad,
        delimiter,
    } = *seal;
    use aes_gcm::aead::{Aead, KeyInit};
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_public.as_affine());
    let as_public = uncompressed(&as_secret.public_key());
    let (cek, nonce) = derive_cek_nonce(
        shared.raw_secret_bytes(),
        auth,
        &uncompressed(ua_public),
        &as_public,
        &salt,
    );
    let mut record = plaintext.to_vec();
    record.push(delimiter);
    record.resize(record.len() + pad, 0);
    let sealed = aes_gcm::Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&record_nonce(&nonce, 0)),
            &record[..],
        )
        .unwrap();
    let mut body = salt.to_vec();
    body.extend_from_slice(&rs.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&sealed);
    body
}

fn claims(aud: &str, exp: u64) -> Value {
    json!({"aud": aud, "exp": exp, "sub": "mailto:ops@quicktalk.test"})
}

fn random_signer() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

/// A well-formed push for `sub`: encrypted `payload`, a valid VAPID header.
struct Push {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn valid_push(svc: &PushService, sub: &Subscriber, signer: &SigningKey, payload: &Value) -> Push {
    let as_secret = SecretKey::random(&mut rand::rngs::OsRng);
    let body = encrypt(
        payload.to_string().as_bytes(),
        &sub.secret.public_key(),
        &sub.auth,
        &Seal {
            as_secret: &as_secret,
            salt: rand::random(),
            rs: 4096,
            pad: 7,
            delimiter: 0x02,
        },
    );
    Push {
        headers: vec![
            ("content-encoding", "aes128gcm".to_owned()),
            ("ttl", "60".to_owned()),
            ("urgency", "high".to_owned()),
            ("topic", "room-42".to_owned()),
            (
                "authorization",
                vapid_header(signer, signer, &claims(&svc.origin(), unix_now() + 3600)),
            ),
        ],
        body,
    }
}

impl Push {
    fn set(mut self, name: &'static str, value: &str) -> Push {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }

    fn without(mut self, name: &'static str) -> Push {
        self.headers.retain(|(n, _)| *n != name);
        self
    }

    async fn send(self, endpoint: &str) -> reqwest::Response {
        let mut req = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(endpoint)
            .body(self.body);
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        req.send().await.expect("POST to the test push service")
    }
}

/// Sends `push` to `sub`; asserts it is answered 400 and rejected with a reason
/// containing `why`, and that nothing was received.
async fn assert_rejected(svc: &PushService, sub: &Subscriber, push: Push, why: &str) {
    let before = svc.rejected().len();
    let resp = push.send(&sub.endpoint).await;
    assert_eq!(resp.status().as_u16(), 400, "expected a 400 for {why:?}");
    let rejected = svc.rejected();
    assert_eq!(rejected.len(), before + 1, "{rejected:#?}");
    let reason = &rejected.last().unwrap().reason;
    assert!(
        reason.contains(why),
        "rejection reason {reason:?} does not mention {why:?}"
    );
    assert!(svc.received(&sub.name).is_empty());
}

// ---- decryption -----------------------------------------------------------------

#[test]
fn decrypts_the_rfc_8291_appendix_a_example() {
    let ua = rfc_ua();
    assert_eq!(b64(&uncompressed(&ua.public_key())), RFC_UA_PUBLIC);
    let body = unb64(RFC_BODY).unwrap();
    assert_eq!(&body[21..86], &unb64(RFC_AS_PUBLIC).unwrap()[..], "keyid");
    let plain = decrypt_aes128gcm(&body, &ua, &rfc_auth()).expect("RFC example decrypts");
    assert_eq!(plain, RFC_PLAINTEXT.as_bytes());
}

#[test]
fn the_test_sender_reproduces_the_rfc_8291_example_byte_for_byte() {
    let as_secret = SecretKey::from_slice(&unb64(RFC_AS_PRIVATE).unwrap()).unwrap();
    assert_eq!(b64(&uncompressed(&as_secret.public_key())), RFC_AS_PUBLIC);
    let salt: [u8; 16] = unb64(RFC_SALT).unwrap().try_into().unwrap();
    let body = encrypt(
        RFC_PLAINTEXT.as_bytes(),
        &rfc_ua().public_key(),
        &rfc_auth(),
        &Seal {
            as_secret: &as_secret,
            salt,
            rs: 4096,
            pad: 0,
            delimiter: 0x02,
        },
    );
    assert_eq!(b64(&body), RFC_BODY);
}

#[test]
fn every_tampered_byte_of_the_rfc_example_is_rejected() {
    let ua = rfc_ua();
    let body = unb64(RFC_BODY).unwrap();
    // Every byte but `rs` (bytes 16..20: a larger record size still holds the one
    // record, so changing it is not detectable and does not change the plaintext).
    for i in (0..body.len()).filter(|i| !(16..20).contains(i)) {
        let mut bad = body.clone();
        bad[i] ^= 0x01;
        assert!(
            decrypt_aes128gcm(&bad, &ua, &rfc_auth()).is_err(),
            "flipping a bit of byte {i} went unnoticed"
        );
    }
    let mut wrong_auth = rfc_auth();
    wrong_auth[0] ^= 0x80;
    let err = decrypt_aes128gcm(&body, &ua, &wrong_auth).unwrap_err();
    assert!(err.contains("authenticate"), "{err}");
    let other = SecretKey::random(&mut rand::rngs::OsRng);
    assert!(decrypt_aes128gcm(&body, &other, &rfc_auth()).is_err());
    assert!(decrypt_aes128gcm(&body[..body.len() - 1], &ua, &rfc_auth()).is_err());
}

#[test]
fn padding_is_stripped_and_a_wrong_delimiter_is_rejected() {
    let ua = SecretKey::random(&mut rand::rngs::OsRng);
    let auth: [u8; 16] = rand::random();
    let as_secret = SecretKey::random(&mut rand::rngs::OsRng);
    let padded = encrypt(
        b"{}",
        &ua.public_key(),
        &auth,
        &Seal {
            as_secret: &as_secret,
            salt: [9; 16],
            rs: 4096,
            pad: 100,
            delimiter: 2,
        },
    );
    assert_eq!(decrypt_aes128gcm(&padded, &ua, &auth).unwrap(), b"{}");
    // 0x01 marks a record that is not the last; alone, it is wrong.
    let not_last = encrypt(
        b"{}",
        &ua.public_key(),
        &auth,
        &Seal {
            as_secret: &as_secret,
            salt: [9; 16],
            rs: 4096,
            pad: 0,
            delimiter: 1,
        },
    );
    let err = decrypt_aes128gcm(&not_last, &ua, &auth).unwrap_err();
    assert!(err.contains("delimiter"), "{err}");
}

// ---- VAPID ----------------------------------------------------------------------

#[test]
fn vapid_checks_exp_aud_sub_and_signature() {
    let aud = "http://127.0.0.1:4711";
    let now = unix_now();
    let key = random_signer();
    let ok = verify_vapid(
        &vapid_header(&key, &key, &claims(aud, now + 3600)),
        aud,
        now,
    )
    .expect("a valid header");
    assert_eq!(ok.claims["sub"], "mailto:ops@quicktalk.test");
    let at_24h = vapid_header(&key, &key, &claims(aud, now + 24 * 3600));
    assert!(verify_vapid(&at_24h, aud, now).is_ok());

    let cases = [
        (claims(aud, now + 25 * 3600), "more than 24 h"),
        (claims(aud, now - 1), "not in the future"),
        (claims("http://127.0.0.1:4712", now + 60), "aud"),
        (claims("https://127.0.0.1:4711", now + 60), "aud"),
        (json!({"aud": aud, "exp": now + 60}), "sub"),
        (
            json!({"aud": aud, "exp": now + 60, "sub": "ops@quicktalk.test"}),
            "sub",
        ),
        (
            json!({"aud": aud, "exp": "soon", "sub": "mailto:a@b"}),
            "exp",
        ),
    ];
    for (c, why) in cases {
        let err = verify_vapid(&vapid_header(&key, &key, &c), aud, now)
            .expect_err(&format!("{c} must be rejected"));
        assert!(err.contains(why), "{c}: {err:?} does not mention {why:?}");
    }

    // Signed by one key, presented with another.
    let other = random_signer();
    let err = verify_vapid(
        &vapid_header(&key, &other, &claims(aud, now + 60)),
        aud,
        now,
    )
    .unwrap_err();
    assert!(err.contains("signature"), "{err}");
    // A flipped bit in the signature.
    let good = vapid_header(&key, &key, &claims(aud, now + 60));
    let (t, k) = good
        .strip_prefix("vapid t=")
        .unwrap()
        .split_once(", k=")
        .unwrap();
    let (signed, sig) = t.rsplit_once('.').unwrap();
    let mut sig = unb64(sig).unwrap();
    sig[10] ^= 0x04;
    let bad = format!("vapid t={signed}.{}, k={k}", b64(&sig));
    let err = verify_vapid(&bad, aud, now).unwrap_err();
    assert!(err.contains("signature"), "{err}");
    // Another algorithm named in the header.
    let head = b64(br#"{"typ":"JWT","alg":"HS256"}"#);
    let (_, rest) = signed.split_once('.').unwrap();
    let err = verify_vapid(
        &format!("vapid t={head}.{rest}.{}, k={k}", b64(&sig)),
        aud,
        now,
    )
    .unwrap_err();
    assert!(err.contains("ES256"), "{err}");
    // The old `WebPush` scheme is not VAPID.
    let err = verify_vapid(&format!("WebPush {t}"), aud, now).unwrap_err();
    assert!(err.contains("vapid"), "{err}");
}

// ---- over HTTP ------------------------------------------------------------------

#[tokio::test]
async fn a_valid_push_is_accepted_decrypted_and_recorded() {
    let svc = PushService::start().await;
    let sub = svc.subscriber("alice");
    let json = sub.json();
    assert_eq!(json["endpoint"], format!("{}/push/alice", svc.origin()));
    assert_eq!(
        unb64(json["keys"]["p256dh"].as_str().unwrap())
            .unwrap()
            .len(),
        65
    );
    assert_eq!(
        unb64(json["keys"]["auth"].as_str().unwrap()).unwrap().len(),
        16
    );

    let signer = random_signer();
    svc.expect_key(&b64(&signer
        .verifying_key()
        .to_encoded_point(false)
        .to_bytes()));
    let payload = json!({"room_id": 42, "seq": 7, "title": "bob", "body": "hi 안녕"});
    let push = valid_push(&svc, &sub, &signer, &payload);
    let sent_body = push.body.clone();
    let resp = push.send(&sub.endpoint).await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&svc.origin()), "{location}");

    let got = svc.wait_for("alice", 1, Duration::from_secs(5)).await;
    svc.assert_no_rejections();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.payload, payload);
    assert_eq!(r.plaintext, payload.to_string().as_bytes());
    assert_eq!(r.body, sent_body);
    assert_eq!(r.ttl, 60);
    assert_eq!(r.urgency.as_deref(), Some("high"));
    assert_eq!(r.topic.as_deref(), Some("room-42"));
    assert_eq!(r.jwt_claims["aud"], svc.origin());
    assert!(svc.received("bob").is_empty());
    let attempts = svc.attempts("alice");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, 201);
}

#[tokio::test]
async fn bad_requests_are_answered_400_and_recorded() {
    let svc = PushService::start().await;
    let sub = svc.subscriber("carol");
    let key = random_signer();
    let p = json!({"room_id": 1, "seq": 1, "title": "t", "body": "b"});
    let origin = svc.origin();
    let now = unix_now();
    let auth_with = |c: Value| vapid_header(&key, &key, &c);

    let cases: Vec<(Push, &str)> = vec![
        (
            valid_push(&svc, &sub, &key, &p).set(
                "authorization",
                &auth_with(claims(&origin, now + 25 * 3600)),
            ),
            "more than 24 h",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set(
                "authorization",
                &auth_with(claims("http://127.0.0.1:1", now + 60)),
            ),
            "aud",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set(
                "authorization",
                &vapid_header(&key, &random_signer(), &claims(&origin, now + 60)),
            ),
            "signature",
        ),
        (
            valid_push(&svc, &sub, &key, &p).without("authorization"),
            "Authorization",
        ),
        (valid_push(&svc, &sub, &key, &p).without("ttl"), "TTL"),
        (valid_push(&svc, &sub, &key, &p).set("ttl", "-1"), "TTL"),
        (valid_push(&svc, &sub, &key, &p).set("ttl", "soon"), "TTL"),
        (
            valid_push(&svc, &sub, &key, &p).without("content-encoding"),
            "Content-Encoding",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set("content-encoding", "aesgcm"),
            "Content-Encoding",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set("urgency", "urgent"),
            "Urgency",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set("topic", &"a".repeat(33)),
            "Topic",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set("topic", "room+1"),
            "Topic",
        ),
        (
            valid_push(&svc, &sub, &key, &p).set("topic", "room.1"),
            "Topic",
        ),
    ];
    for (push, why) in cases {
        assert_rejected(&svc, &sub, push, why).await;
    }

    // A tampered body, a body for another subscriber, a non-JSON payload, too big.
    let mut tampered = valid_push(&svc, &sub, &key, &p);
    let last = tampered.body.len() - 1;
    tampered.body[last] ^= 1;
    assert_rejected(&svc, &sub, tampered, "authenticate").await;
    let dave = svc.subscriber("dave");
    let for_dave = valid_push(&svc, &dave, &key, &p);
    assert_rejected(&svc, &sub, for_dave, "authenticate").await;
    let mut not_json = valid_push(&svc, &sub, &key, &p);
    not_json.body = encrypt(
        b"plain text",
        &sub.secret.public_key(),
        &sub.auth,
        &Seal {
            as_secret: &SecretKey::random(&mut rand::rngs::OsRng),
            salt: [1; 16],
            rs: 4096,
            pad: 0,
            delimiter: 2,
        },
    );
    assert_rejected(&svc, &sub, not_json, "not JSON").await;
    let mut too_big = valid_push(&svc, &sub, &key, &p);
    too_big.body = encrypt(
        b"{}",
        &sub.secret.public_key(),
        &sub.auth,
        &Seal {
            as_secret: &SecretKey::random(&mut rand::rngs::OsRng),
            salt: [1; 16],
            rs: 8192,
            pad: 4096,
            delimiter: 2,
        },
    );
    assert_rejected(&svc, &sub, too_big, "over 4096").await;

    // A pinned server key: any other is refused.
    svc.expect_key(&b64(&random_signer()
        .verifying_key()
        .to_encoded_point(false)
        .to_bytes()));
    assert_rejected(&svc, &sub, valid_push(&svc, &sub, &key, &p), "server's key").await;

    // An endpoint nobody subscribed.
    let resp = valid_push(&svc, &sub, &key, &p)
        .send(&format!("{}/push/nobody", svc.origin()))
        .await;
    assert_eq!(resp.status().as_u16(), 404);
    assert!(svc.rejected().iter().any(|r| r.endpoint_name == "nobody"));
}

#[tokio::test]
async fn scripted_answers_are_used_once_each_and_still_recorded() {
    let svc = PushService::start().await;
    let sub = svc.subscriber("erin");
    let key = random_signer();
    let p = json!({"room_id": 1, "seq": 1, "title": "t", "body": "b"});
    svc.answer_next(
        "erin",
        Answer::TooMany {
            retry_after_secs: 3,
        },
    );
    svc.answer_next("erin", Answer::ServerError);
    svc.answer_next("erin", Answer::NotFound);
    svc.answer_next("erin", Answer::Gone);

    let r = valid_push(&svc, &sub, &key, &p).send(&sub.endpoint).await;
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    for want in [500, 404, 410, 201] {
        let r = valid_push(&svc, &sub, &key, &p).send(&sub.endpoint).await;
        assert_eq!(r.status().as_u16(), want);
    }
    let attempts = svc.attempts("erin");
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [429, 500, 404, 410, 201]);
    assert!(attempts
        .iter()
        .all(|a| a.push.as_ref().unwrap().payload == p));
    assert!(attempts.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        svc.received("erin").len(),
        1,
        "only the 201 counts as received"
    );
    svc.assert_no_rejections();
}

#[tokio::test]
#[should_panic(expected = "waited")]
async fn wait_for_panics_on_timeout() {
    let svc = PushService::start().await;
    svc.subscriber("frank");
    svc.wait_for("frank", 1, Duration::from_millis(200)).await;
}

#[tokio::test]
#[should_panic(expected = "was rejected")]
async fn wait_for_panics_when_a_push_is_rejected() {
    let svc = PushService::start().await;
    let sub = svc.subscriber("gina");
    let key = random_signer();
    let push = valid_push(&svc, &sub, &key, &json!({})).without("ttl");
    push.send(&sub.endpoint).await;
    svc.wait_for("gina", 1, Duration::from_secs(5)).await;
}

#[tokio::test]
#[should_panic(expected = "expected no push")]
async fn assert_quiet_panics_when_a_push_arrives() {
    let svc = PushService::start().await;
    let sub = svc.subscriber("hank");
    let key = random_signer();
    let push = valid_push(&svc, &sub, &key, &json!({"room_id": 1}));
    let endpoint = sub.endpoint.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        push.send(&endpoint).await;
    });
    svc.assert_quiet("hank", Duration::from_millis(600)).await;
    sender.await.unwrap();
}

#[tokio::test]
async fn assert_quiet_passes_when_nothing_arrives() {
    let svc = PushService::start().await;
    svc.subscriber("ivy");
    svc.assert_quiet("ivy", Duration::from_millis(100)).await;
}
