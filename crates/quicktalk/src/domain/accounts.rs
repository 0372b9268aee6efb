//! Accounts: sign-up, login, guests, and turning a bearer token into a user.
//! Passwords are stored only as Argon2id hashes, computed off the async runtime.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::Rng;

use super::tokens::TokenKeys;
use super::validate;
use crate::error::{AppError, AppResult};
use crate::model::User;
use crate::store::{NewUser, Store};

/// Verified against when a username does not exist, so a login takes as long either way.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("not a real password"));

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default params cannot fail")
        .to_string()
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Users kept in memory for authentication; cleared when it grows past this.
const USER_CACHE_MAX: usize = 200_000;

pub struct Accounts {
    store: Arc<dyn Store>,
    tokens: TokenKeys,
    /// Users never change after creation (no profile edits yet), so every
    /// connect need not read the store. Invalidate here once they can.
    users: parking_lot::RwLock<std::collections::HashMap<crate::model::UserId, User>>,
}

/// A user and a fresh token for them.
pub struct Session {
    pub user: User,
    pub token: String,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, tokens: TokenKeys) -> Self {
        Accounts {
            store,
            tokens,
            users: Default::default(),
        }
    }

    pub async fn signup(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> AppResult<Session> {
        validate::username(username)?;
        validate::password(password)?;
        let display_name = validate::name(
            display_name.unwrap_or(username),
            "invalid_display_name",
            "display_name",
        )?;
        let pw = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(AppError::internal)?;
        let user = self
            .store
            .create_user(NewUser {
                username: Some(username.to_owned()),
                password_hash: Some(hash),
                display_name,
                guest: false,
            })
            .await?;
        Ok(self.session(user))
    }

    pub async fn login(&self, username: &str, password: &str) -> AppResult<Session> {
        let found = if username.len() <= 32 && password.len() <= 512 {
            self.store.credentials(username).await?
        } else {
            None
        };
        let pw = password.to_owned();
        let (user, ok) = tokio::task::spawn_blocking(move || match found {
            Some((user, hash)) => {
                let ok = verify_password(&pw, &hash);
                (Some(user), ok)
            }
            None => {
                verify_password(&pw, &DUMMY_HASH);
                (None, false)
            }
        })
        .await
        .map_err(AppError::internal)?;
        match (user, ok) {
            (Some(user), true) => Ok(self.session(user)),
            _ => Err(AppError::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            )),
        }
    }

    pub async fn guest(&self, nickname: Option<&str>) -> AppResult<Session> {
        let display_name = match nickname {
            Some(n) => validate::name(n, "invalid_nickname", "nickname")?,
            None => format!("Guest-{:04}", rand::thread_rng().gen_range(0..10_000)),
        };
        let user = self
            .store
            .create_user(NewUser {
                username: None,
                password_hash: None,
                display_name,
                guest: true,
            })
            .await?;
        Ok(self.session(user))
    }

    /// The user a bearer token names.
    pub async fn authenticate(&self, token: &str) -> AppResult<User> {
        let id = self.tokens.verify(token)?;
        if let Some(u) = self.users.read().get(&id) {
            return Ok(u.clone());
        }
        let user = self
            .store
            .user(id)
            .await?
            .ok_or(AppError::unauthorized("invalid_token", "invalid token"))?;
        let mut cache = self.users.write();
        if cache.len() >= USER_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id, user.clone());
        Ok(user)
    }

    fn session(&self, user: User) -> Session {
        let token = self.tokens.issue(user.id);
        Session { user, token }
    }
}
