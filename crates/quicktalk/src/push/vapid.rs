//! The server's VAPID key pair (RFC 8292): P-256, generated on first start and
//! kept with the other secrets — `<data_dir>/vapid.key` on one node, the
//! `secrets` table when nodes share PostgreSQL, so every node signs with the
//! same key and a browser's subscription works whichever node pushes.

use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use web_push_native::jwt_simple::algorithms::{
    ECDSAP256KeyPairLike as _, ECDSAP256PublicKeyLike as _, ES256KeyPair,
};
use web_push_native::jwt_simple::claims::Claims;

pub struct VapidKey {
    pair: ES256KeyPair,
    /// The uncompressed public point, base64url without padding (what a
    /// browser takes as `applicationServerKey`).
    public: String,
}

impl VapidKey {
    /// A fresh private key (the 32-byte scalar).
    pub fn generate_secret() -> Vec<u8> {
        ES256KeyPair::generate().to_bytes()
    }

    pub fn from_secret(secret: &[u8]) -> anyhow::Result<Self> {
        let pair = ES256KeyPair::from_bytes(secret)
            .map_err(|e| anyhow::anyhow!("not a P-256 private key: {e}"))?;
        let point = pair.public_key().public_key().to_bytes_uncompressed();
        Ok(VapidKey {
            public: URL_SAFE_NO_PAD.encode(point),
            pair,
        })
    }

    /// Loads `dir/vapid.key` (hex), creating it (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("vapid.key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) => hex::decode(s.trim())
                .with_context(|| format!("{} is not a hex key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate_secret();
                crate::domain::tokens::write_private(&path, &hex::encode(&key))?;
                key
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_secret(&secret).with_context(|| format!("loading {}", path.display()))
    }

    /// The `Authorization` header of a push request to a service at `origin`
    /// (`scheme://host[:port]`, RFC 8292 §2: the JWT's `aud`), valid for
    /// `valid` (≤ 24 h), naming the operator's contact `subject`. Signed here,
    /// not by web-push-native, whose `aud` leaves out a non-default port.
    pub fn authorization(
        &self,
        origin: &str,
        subject: &str,
        valid: std::time::Duration,
    ) -> anyhow::Result<String> {
        let claims = Claims::create(valid.into())
            .with_audience(origin)
            .with_subject(subject);
        let token = self
            .pair
            .sign(claims)
            .map_err(|e| anyhow::anyhow!("signing the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }

    pub fn public_key(&self) -> &str {
        &self.public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_survives_a_restart_and_its_public_half_is_an_uncompressed_point() {
        let dir = tempfile::tempdir().unwrap();
        let a = VapidKey::load_or_create(dir.path()).unwrap();
        let b = VapidKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let raw = URL_SAFE_NO_PAD.decode(a.public_key()).unwrap();
        assert_eq!((raw.len(), raw[0]), (65, 4));
        let other = VapidKey::from_secret(&VapidKey::generate_secret()).unwrap();
        assert_ne!(other.public_key(), a.public_key());
        assert!(VapidKey::from_secret(&[0u8; 32]).is_err(), "zero is no key");
    }

    #[test]
    fn the_token_names_the_whole_origin_and_verifies_with_k() {
        use web_push_native::jwt_simple::algorithms::ES256PublicKey;
        use web_push_native::jwt_simple::prelude::{NoCustomClaims, VerificationOptions};
        let key = VapidKey::from_secret(&VapidKey::generate_secret()).unwrap();
        let h = key
            .authorization(
                "http://127.0.0.1:4000",
                "mailto:ops@example.org",
                std::time::Duration::from_secs(3600),
            )
            .unwrap();
        let rest = h.strip_prefix("vapid t=").unwrap();
        let (token, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, key.public_key());
        let public = ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
        let claims = public
            .verify_token::<NoCustomClaims>(token, Some(VerificationOptions::default()))
            .unwrap();
        assert_eq!(
            claims.audiences.unwrap().into_string().unwrap(),
            "http://127.0.0.1:4000"
        );
        assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.org"));
    }
}
