//! Short-lived signed media URLs (contract §6): `<img>`, `<video>` and
//! download links work without the bearer token in the URL.
//!
//! A signature binds the file, the variant (original or thumbnail), the user
//! it was issued to and its expiry: `?exp=<unix s>&uid=<user>&sig=<base64url
//! HMAC-SHA256>`. Whoever holds the URL may fetch it until `exp`, but only
//! while that user still may read the file (checked again at every request),
//! so losing access ends the link too. Expiries are rounded up to a
//! [`BUCKET_SECS`] boundary: a page re-signing the same file gets the same URL
//! for a while, and the browser's cache keeps working.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::UserId;

/// How long a signed URL is valid at least (seconds).
pub const MIN_TTL_SECS: i64 = 10 * 60;
/// Expiry rounding (seconds): links are valid for 10 to 15 minutes.
pub const BUCKET_SECS: i64 = 5 * 60;

/// Which bytes of a file a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Original,
    Thumbnail,
}

impl Variant {
    fn tag(self) -> &'static str {
        match self {
            Variant::Original => "orig",
            Variant::Thumbnail => "thumb",
        }
    }
}

/// Signs and checks media URLs with a key of its own (derived from the token
/// key, so every node of a cluster agrees).
#[derive(Clone)]
pub struct UrlSigner {
    key: [u8; 32],
}

/// The query part of a signed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub exp: i64,
    pub uid: UserId,
    pub sig: String,
}

impl UrlSigner {
    pub fn new(key: [u8; 32]) -> Self {
        UrlSigner { key }
    }

    fn mac(&self, id: &str, variant: Variant, uid: UserId, exp: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("media-url-v1\n{}\n{id}\n{uid}\n{exp}", variant.tag()).as_bytes());
        mac
    }

    /// The expiry a URL signed at `now` (unix seconds) gets.
    pub fn expiry(now: i64) -> i64 {
        let at_least = now + MIN_TTL_SECS;
        (at_least + BUCKET_SECS - 1).div_euclid(BUCKET_SECS) * BUCKET_SECS
    }

    pub fn sign(&self, id: &str, variant: Variant, uid: UserId, exp: i64) -> Signature {
        let sig = URL_SAFE_NO_PAD.encode(self.mac(id, variant, uid, exp).finalize().into_bytes());
        Signature { exp, uid, sig }
    }

    /// Whether `s` is this signer's signature of (`id`, `variant`) and has not
    /// expired at `now` (unix seconds). Compared in constant time.
    pub fn verify(&self, id: &str, variant: Variant, s: &Signature, now: i64) -> bool {
        if s.exp < now || s.exp > now + MIN_TTL_SECS + BUCKET_SECS {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(s.sig.as_bytes()) else {
            return false;
        };
        self.mac(id, variant, s.uid, s.exp)
            .verify_slice(&raw)
            .is_ok()
    }
}

impl Signature {
    /// `exp=…&uid=…&sig=…`.
    pub fn query(&self) -> String {
        format!("exp={}&uid={}&sig={}", self.exp, self.uid, self.sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_signature_checks_only_for_what_it_signed() {
        let s = UrlSigner::new([3; 32]);
        let now = 1_000_000;
        let exp = UrlSigner::expiry(now);
        assert!(exp >= now + MIN_TTL_SECS && exp < now + MIN_TTL_SECS + BUCKET_SECS);
        let sig = s.sign(ID, Variant::Original, 7, exp);
        assert!(s.verify(ID, Variant::Original, &sig, now));
        assert!(!s.verify(ID, Variant::Thumbnail, &sig, now));
        assert!(!s.verify("BAAAAAAAAAAAAAAAAAAAAA", Variant::Original, &sig, now));
        let other_user = Signature {
            uid: 8,
            ..sig.clone()
        };
        assert!(!s.verify(ID, Variant::Original, &other_user, now));
        let later = Signature {
            exp: exp + 300,
            ..sig.clone()
        };
        assert!(!s.verify(ID, Variant::Original, &later, now));
        assert!(!s.verify(ID, Variant::Original, &sig, exp + 1), "expired");
        assert!(!UrlSigner::new([4; 32]).verify(ID, Variant::Original, &sig, now));
        let garbage = Signature {
            sig: "!!".into(),
            ..sig
        };
        assert!(!s.verify(ID, Variant::Original, &garbage, now));
    }

    #[test]
    fn a_far_future_expiry_is_refused_even_if_signed() {
        let s = UrlSigner::new([3; 32]);
        let sig = s.sign(ID, Variant::Original, 7, 10_000_000);
        assert!(!s.verify(ID, Variant::Original, &sig, 1_000_000));
    }

    #[test]
    fn urls_signed_close_together_are_the_same() {
        let s = UrlSigner::new([3; 32]);
        let a = s.sign(ID, Variant::Original, 7, UrlSigner::expiry(601));
        let b = s.sign(ID, Variant::Original, 7, UrlSigner::expiry(899));
        assert_eq!(a, b);
    }
}
