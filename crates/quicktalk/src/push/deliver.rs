//! One push request (RFC 8030 §5): encrypt the payload for a subscription
//! (RFC 8291, `aes128gcm`), sign with VAPID (RFC 8292: `aud` = the endpoint's
//! origin, `exp` 12 h ahead, `sub` the operator's contact), set `TTL`,
//! `Urgency` and `Topic`, POST it to the push service and say what its answer
//! means for us ([`Delivered`]). Endpoints are checked when a browser
//! subscribes ([`check_endpoint`]): `https://` on a known push service's host
//! (or any host the operator allows), never an address literal or a local
//! name, so a stranger cannot make the server POST into its own network.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use web_push_native::p256::PublicKey;
use web_push_native::{Auth, WebPushBuilder};

use super::vapid::VapidKey;

/// Largest encrypted body a push service must accept (RFC 8030 §7.2).
pub const MAX_BODY: usize = 4096;
/// How long a VAPID token is good for (RFC 8292 §2: at most 24 h).
const VAPID_VALID: Duration = Duration::from_secs(12 * 3600);
/// Longest endpoint URL accepted from a browser.
pub const MAX_ENDPOINT: usize = 2048;
/// The hosts (and their subdomains) of the browsers' push services: Chrome and
/// Edge (FCM), Firefox (Mozilla autopush), Edge legacy (WNS), Safari (Apple).
pub const KNOWN_PUSH_HOSTS: &[&str] = &[
    "fcm.googleapis.com",
    "android.googleapis.com",
    "push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
];

/// How soon a push service should show the notification (RFC 8030 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// What the push service's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Accepted (2xx).
    Accepted,
    /// 404 or 410: the subscription is gone; forget it.
    Gone,
    /// 429 or 5xx, or no answer: try again, no sooner than `after` when the
    /// service said so (`Retry-After`).
    Retry { after: Option<Duration> },
    /// Refused for good (400, 401, 403, 413 …): retrying the same request
    /// will not help.
    Rejected(String),
}

/// Which endpoints subscriptions may name.
#[derive(Debug, Clone)]
pub struct EndpointRules {
    /// `http://` and any host, address literals included (tests only).
    pub allow_http: bool,
    /// Host suffixes allowed besides [`KNOWN_PUSH_HOSTS`]; `*` allows any
    /// public name.
    pub extra_hosts: Vec<String>,
}

/// Whether a browser's endpoint may be stored; the reason if not.
pub fn check_endpoint(endpoint: &str, rules: &EndpointRules) -> Result<(), &'static str> {
    if endpoint.len() > MAX_ENDPOINT {
        return Err("the endpoint is too long");
    }
    let url = reqwest::Url::parse(endpoint).map_err(|_| "the endpoint is not a URL")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the endpoint must not carry credentials");
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(_) if rules.allow_http => return scheme_ok(&url, true),
        Some(_) => return Err("the endpoint must name a push service, not an address"),
        None => return Err("the endpoint has no host"),
    };
    scheme_ok(&url, rules.allow_http)?;
    if rules.allow_http {
        return Ok(());
    }
    if !host.contains('.') || host.ends_with(".localhost") || host.ends_with(".local") {
        return Err("the endpoint must name a public push service");
    }
    let under = |suffix: &str| host == suffix || host.ends_with(&format!(".{suffix}"));
    let known = KNOWN_PUSH_HOSTS.iter().any(|s| under(s))
        || rules
            .extra_hosts
            .iter()
            .any(|s| s == "*" || under(s.trim_start_matches('.')));
    if known {
        Ok(())
    } else {
        Err("the endpoint is not on a known push service")
    }
}

fn scheme_ok(url: &reqwest::Url, allow_http: bool) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        _ => Err("the endpoint must be https://"),
    }
}

/// Decodes a subscription's keys: the browser's public key and its auth secret.
pub fn decode_keys(p256dh: &str, auth: &str) -> Result<(PublicKey, Auth), &'static str> {
    let b64 = |s: &str| {
        let s = s.trim_end_matches('=');
        URL_SAFE_NO_PAD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
    };
    let point = b64(p256dh).map_err(|_| "keys.p256dh is not base64url")?;
    let key =
        PublicKey::from_sec1_bytes(&point).map_err(|_| "keys.p256dh is not a P-256 public key")?;
    if point.len() != 65 {
        return Err("keys.p256dh must be an uncompressed P-256 point");
    }
    let secret = b64(auth).map_err(|_| "keys.auth is not base64url")?;
    if secret.len() != 16 {
        return Err("keys.auth must be 16 bytes");
    }
    Ok((key, Auth::clone_from_slice(&secret)))
}

/// Sends push requests; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    key: std::sync::Arc<VapidKey>,
    subject: std::sync::Arc<str>,
}

/// One notification for one subscription.
pub struct PushRequest<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
    /// The plaintext (JSON); at most [`MAX_BODY`] − 103 bytes.
    pub payload: &'a [u8],
    pub ttl: Duration,
    pub urgency: Urgency,
    /// Replaces an undelivered earlier push with the same topic (≤ 32 chars of
    /// the base64url alphabet).
    pub topic: Option<&'a str>,
}

impl Deliverer {
    pub fn new(key: std::sync::Arc<VapidKey>, subject: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            // A push service answers; it never redirects (and a redirect could
            // point anywhere).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("QuickTalk/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            client,
            key,
            subject: subject.into(),
        })
    }

    /// Builds, signs and sends one request.
    pub async fn send(&self, r: &PushRequest<'_>) -> Delivered {
        let request = match self.build(r) {
            Ok(req) => req,
            Err(e) => return Delivered::Rejected(e),
        };
        match self.client.execute(request).await {
            Ok(resp) => classify(resp.status().as_u16(), retry_after(resp.headers())),
            Err(e) => {
                tracing::debug!(error = %e, "push request failed");
                Delivered::Retry { after: None }
            }
        }
    }

    fn build(&self, r: &PushRequest<'_>) -> Result<reqwest::Request, String> {
        let (key, auth) = decode_keys(r.p256dh, r.auth).map_err(str::to_owned)?;
        let uri: http::Uri = r.endpoint.parse().map_err(|_| "bad endpoint".to_owned())?;
        let built = WebPushBuilder::new(uri, key, auth)
            .build(r.payload.to_vec())
            .map_err(|e| format!("encrypting the push payload: {e}"))?;
        let vapid = self
            .key
            .authorization(&origin(r.endpoint), &self.subject, VAPID_VALID)
            .map_err(|e| e.to_string())?;
        let (parts, body) = built.into_parts();
        if body.len() > MAX_BODY {
            return Err(format!(
                "payload too large ({} bytes encrypted)",
                body.len()
            ));
        }
        let mut req = self
            .client
            .post(r.endpoint)
            .header("TTL", r.ttl.as_secs().to_string())
            .header("Urgency", r.urgency.as_str());
        for (name, value) in parts.headers.iter() {
            if name.as_str().eq_ignore_ascii_case("ttl") {
                continue;
            }
            req = req.header(name.as_str(), value.as_bytes());
        }
        req = req.header("Authorization", vapid);
        if let Some(t) = r.topic {
            req = req.header("Topic", t);
        }
        req.body(body).build().map_err(|e| e.to_string())
    }
}

/// `scheme://host[:port]` of an endpoint: the VAPID audience, and the unit a
/// push service's `Retry-After` applies to.
pub fn origin(endpoint: &str) -> String {
    match url::Url::parse(endpoint) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => endpoint.to_owned(),
    }
}

/// What a push service's status means (RFC 8030 §5, §8.4).
pub fn classify(status: u16, retry_after: Option<Duration>) -> Delivered {
    match status {
        200..=299 => Delivered::Accepted,
        404 | 410 => Delivered::Gone,
        429 | 500..=599 => Delivered::Retry { after: retry_after },
        s => Delivered::Rejected(format!("the push service answered {s}")),
    }
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow_http: bool) -> EndpointRules {
        EndpointRules {
            allow_http,
            extra_hosts: vec!["push.example.org".into()],
        }
    }

    #[test]
    fn endpoints_must_be_known_push_services() {
        let strict = rules(false);
        for ok in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            "https://web.push.apple.com/QGx",
            "https://push.example.org/p/1",
            "https://a.push.example.org/p/1",
        ] {
            assert_eq!(check_endpoint(ok, &strict), Ok(()), "{ok}");
        }
        for bad in [
            "http://fcm.googleapis.com/fcm/send/abc",
            "https://127.0.0.1/push",
            "https://[::1]/push",
            "https://localhost/push",
            "https://metadata.google.internal/computeMetadata",
            "https://evil.com/fcm.googleapis.com",
            "https://fcm.googleapis.com.evil.com/x",
            "https://user:pw@fcm.googleapis.com/x",
            "ftp://fcm.googleapis.com/x",
            "not a url",
        ] {
            assert!(check_endpoint(bad, &strict).is_err(), "{bad}");
        }
        let long = format!("https://fcm.googleapis.com/{}", "a".repeat(MAX_ENDPOINT));
        assert!(check_endpoint(&long, &strict).is_err());
        assert_eq!(
            check_endpoint("http://127.0.0.1:9/push/a", &rules(true)),
            Ok(())
        );
        let any = EndpointRules {
            allow_http: false,
            extra_hosts: vec!["*".into()],
        };
        assert_eq!(check_endpoint("https://push.example.net/x", &any), Ok(()));
        assert!(check_endpoint("https://10.0.0.1/x", &any).is_err());
    }

    #[test]
    fn keys_must_be_a_point_and_sixteen_bytes() {
        let secret = web_push_native::p256::SecretKey::random(&mut rand::thread_rng());
        let point = secret.public_key().to_sec1_bytes();
        let p = URL_SAFE_NO_PAD.encode(&point);
        let a = URL_SAFE_NO_PAD.encode([7u8; 16]);
        assert!(decode_keys(&p, &a).is_ok());
        assert!(decode_keys(&p, &URL_SAFE_NO_PAD.encode([7u8; 15])).is_err());
        assert!(decode_keys(&URL_SAFE_NO_PAD.encode([4u8; 65]), &a).is_err());
        assert!(decode_keys("!!", &a).is_err());
    }

    #[test]
    fn answers_mean_what_rfc_8030_says() {
        assert_eq!(classify(201, None), Delivered::Accepted);
        assert_eq!(classify(410, None), Delivered::Gone);
        assert_eq!(classify(404, None), Delivered::Gone);
        let d = Some(Duration::from_secs(3));
        assert_eq!(classify(429, d), Delivered::Retry { after: d });
        assert_eq!(classify(503, None), Delivered::Retry { after: None });
        assert!(matches!(classify(413, None), Delivered::Rejected(_)));
        assert!(matches!(classify(403, None), Delivered::Rejected(_)));
    }
}
