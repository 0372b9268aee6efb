//! Signed bearer tokens (JWT, HS256) with expiry. The signing key is generated on
//! first start and kept in `<data_dir>/token.key`, so tokens survive a restart.

use std::path::Path;

use anyhow::Context as _;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::model::UserId;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
    /// The user's `token_epoch` when issued: a token of an older epoch is no
    /// longer the user's (a guest upgrade bumps it). Absent in older tokens.
    #[serde(default)]
    ep: i64,
}

/// Whom a valid token names, and in which of their token epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    pub user: UserId,
    pub epoch: i64,
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
    /// The media URL signing key, derived from the same secret.
    url_key: [u8; 32],
}

impl TokenKeys {
    /// Loads the key from `dir/token.key`, creating it (mode 0600) on first start.
    pub fn load_or_create(dir: &Path, ttl_secs: u64) -> anyhow::Result<Self> {
        let path = dir.join("token.key");
        let secret = match std::fs::read_to_string(&path) {
            Ok(s) => hex::decode(s.trim())
                .with_context(|| format!("{} is not a hex key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate_secret();
                write_private(&path, &hex::encode(&key))?;
                key
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        anyhow::ensure!(
            secret.len() >= 32,
            "{} holds a key shorter than 32 bytes",
            path.display()
        );
        Ok(Self::from_secret(&secret, ttl_secs))
    }

    /// A fresh random 32-byte key.
    pub fn generate_secret() -> Vec<u8> {
        let mut key = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        key
    }

    pub fn from_secret(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
            url_key: derive(secret, b"quicktalk media url key v1"),
        }
    }

    /// The key of [`crate::domain::signed_urls::UrlSigner`]: derived from the
    /// token secret, so nodes sharing it sign alike, yet never the same key.
    pub fn url_key(&self) -> [u8; 32] {
        self.url_key
    }

    pub fn issue(&self, user: UserId, epoch: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + self.ttl_secs as i64,
            ep: epoch,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    /// The user id a valid token names.
    pub fn verify(&self, token: &str) -> AppResult<TokenSubject> {
        if token.len() > 4096 {
            return Err(AppError::unauthorized("invalid_token", "invalid token"));
        }
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => data
                .claims
                .sub
                .parse()
                .map(|user| TokenSubject {
                    user,
                    epoch: data.claims.ep,
                })
                .map_err(|_| AppError::unauthorized("invalid_token", "invalid token")),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(AppError::unauthorized("token_expired", "token has expired"))
            }
            Err(_) => Err(AppError::unauthorized("invalid_token", "invalid token")),
        }
    }
}

pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The token of `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_forged_and_expired() {
        let keys = TokenKeys::from_secret(&[7; 32], 60);
        let t = keys.issue(42, 3);
        assert_eq!(
            keys.verify(&t).unwrap(),
            TokenSubject { user: 42, epoch: 3 }
        );
        let other = TokenKeys::from_secret(&[8; 32], 60);
        assert_eq!(other.verify(&t).unwrap_err().code(), "invalid_token");
        assert_eq!(keys.verify("garbage").unwrap_err().code(), "invalid_token");
        let expired = TokenKeys::from_secret(&[7; 32], 0);
        let t = expired.issue(1, 0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(keys.verify(&t).unwrap_err().code(), "token_expired");
    }

    #[test]
    fn key_persists_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenKeys::load_or_create(dir.path(), 60).unwrap();
        let t = a.issue(5, 0);
        let b = TokenKeys::load_or_create(dir.path(), 60).unwrap();
        assert_eq!(b.verify(&t).unwrap().user, 5);
    }
}
