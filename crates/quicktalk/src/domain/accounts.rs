//! Accounts: sign-up, login, guests, profiles, and turning a bearer token into a
//! user. No new name may impersonate a registered user: the store refuses a
//! sign-up whose username or display name looks like another registered user's
//! (same confusable skeleton), and a guest nickname is checked the same way.
//! Passwords are stored only as Argon2id hashes, computed off the async runtime
//! with bounded concurrency ([`Hashing`]); logins go through the login back-off
//! of [`crate::limits`].
//!
//! Authenticated users are cached ([`UserCache`]); a change of role or ban
//! makes every node forget the user at once (`BusEvent::UserChanged`, through
//! the hub's user watcher), and entries expire after [`USER_CACHE_TTL`] in case
//! such an event is lost or the change came from outside (`quicktalk admin grant`).
//! A banned user ([`User::banned_at`]) is refused everywhere a token is checked,
//! and at login, with `403 banned`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use rand::Rng;

use super::tokens::TokenKeys;
use super::validate;
use crate::error::{AppError, AppResult};
use crate::limits::Limits;
use crate::model::{now_ms, rfc3339, User, UserId, BAN_FOREVER};
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

/// Password hashing (19 MiB and ~20-50 ms of CPU each with Argon2id's defaults)
/// runs on its own threads, one per core: a fixed set of threads keeps the
/// allocator's per-thread arenas (which keep freed 19 MiB blocks) fixed too, where
/// the blocking pool's changing threads grew RSS past 1 GB under a login flood.
/// A bounded number of callers may wait for a turn; beyond that they get
/// `unavailable` at once.
pub struct Hashing {
    jobs: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
    permits: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Callers allowed to wait for a hashing slot, per core.
const HASH_QUEUE_PER_CORE: usize = 8;

impl Default for Hashing {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hashing::new(cores, cores * HASH_QUEUE_PER_CORE)
    }
}

impl Hashing {
    /// `concurrent` threads (they stop when this is dropped).
    pub fn new(concurrent: usize, max_waiting: usize) -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        for _ in 0..concurrent.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name("quicktalk-hash".into())
                .spawn(move || loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("spawning a hashing thread");
        }
        Hashing {
            jobs,
            permits: tokio::sync::Semaphore::new(concurrent.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// Runs `f` on a hashing thread once a slot is free; `unavailable` when too
    /// many callers wait already.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Unavailable("server busy; retry shortly"));
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(AppError::internal)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| AppError::internal(anyhow::anyhow!("hashing threads stopped")))?;
        rx.await.map_err(AppError::internal)
    }
}

/// Users kept in memory for authentication; cleared when it grows past this.
const USER_CACHE_MAX: usize = 200_000;
/// How long a cached user is believed without reading the store again: the
/// safety net for a lost change event, or a change made by another process.
pub const USER_CACHE_TTL: Duration = Duration::from_secs(10);

/// Authenticated users, so that every request and connect need not read the
/// store. [`UserCache::forget`] drops a user at once (role or ban changed); a
/// store read that began before a forget does not fill the cache afterwards, so
/// a stale copy cannot outlive the change.
#[derive(Default)]
pub struct UserCache {
    users: parking_lot::RwLock<HashMap<UserId, (User, Instant)>>,
    /// Bumped (under the write lock) by every forget.
    forgets: AtomicU64,
}

impl UserCache {
    /// The cached user, if cached less than [`USER_CACHE_TTL`] ago.
    pub fn get(&self, id: UserId) -> Option<User> {
        let users = self.users.read();
        let (user, at) = users.get(&id)?;
        (at.elapsed() < USER_CACHE_TTL).then(|| user.clone())
    }

    /// Taken before a store read whose result will be [`put`](Self::put).
    fn begin(&self) -> u64 {
        self.forgets.load(Ordering::Acquire)
    }

    /// Caches `user` as read after [`begin`](Self::begin) gave `began`, unless a
    /// forget happened since.
    fn put(&self, user: User, began: u64) {
        let mut users = self.users.write();
        if self.forgets.load(Ordering::Acquire) != began {
            return;
        }
        if users.len() >= USER_CACHE_MAX {
            users.clear();
        }
        users.insert(user.id, (user, Instant::now()));
    }

    /// Drops `id` (its role or ban changed).
    pub fn forget(&self, id: UserId) {
        let mut users = self.users.write();
        users.remove(&id);
        self.forgets.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct Accounts {
    store: Arc<dyn Store>,
    tokens: TokenKeys,
    limits: Arc<Limits>,
    hashing: Hashing,
    users: Arc<UserCache>,
}

/// A user and a fresh token for them.
pub struct Session {
    pub user: User,
    pub token: String,
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, tokens: TokenKeys, limits: Arc<Limits>) -> Self {
        Accounts {
            store,
            tokens,
            limits,
            hashing: Hashing::default(),
            users: Default::default(),
        }
    }

    /// The authentication cache (the hub's user watcher forgets users in it).
    pub fn user_cache(&self) -> Arc<UserCache> {
        self.users.clone()
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
        // Both names are public (profiles show `@username`).
        super::moderation::check_name(username, "username")?;
        super::moderation::check_name(&display_name, "display name")?;
        let pw = password.to_owned();
        let hash = self.hashing.run(move || hash_password(&pw)).await?;
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

    /// Checks a password; `ip` is the client's, for the login back-off.
    pub async fn login(&self, username: &str, password: &str, ip: IpAddr) -> AppResult<Session> {
        self.limits.login_attempt(username, ip)?;
        let found = if username.len() <= 32 && password.len() <= 512 {
            self.store.credentials(username).await?
        } else {
            None
        };
        let pw = password.to_owned();
        let (user, ok) = self
            .hashing
            .run(move || match found {
                Some((user, hash)) => {
                    let ok = verify_password(&pw, &hash);
                    (Some(user), ok)
                }
                None => {
                    verify_password(&pw, &DUMMY_HASH);
                    (None, false)
                }
            })
            .await?;
        match (user, ok) {
            (Some(user), true) => {
                self.limits.login_succeeded(username, ip);
                let user = self.refuse_banned(user).await?;
                Ok(self.session(user))
            }
            _ => Err(AppError::unauthorized(
                "invalid_credentials",
                "wrong username or password",
            )),
        }
    }

    pub async fn guest(&self, nickname: Option<&str>) -> AppResult<Session> {
        let display_name = match nickname {
            Some(n) => {
                let n = validate::name(n, "invalid_nickname", "nickname")?;
                super::moderation::check_name(&n, "nickname")?;
                validate::impersonates(&*self.store, &n, None).await?;
                n
            }
            None => self.generated_guest_name().await?,
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

    /// `Guest-NNNN`, avoiding (a few tries) names registered users hold.
    async fn generated_guest_name(&self) -> AppResult<String> {
        let mut tries = 0;
        loop {
            let name = format!("Guest-{:04}", rand::thread_rng().gen_range(0..10_000));
            tries += 1;
            match validate::impersonates(&*self.store, &name, None).await {
                Err(AppError::Conflict { .. }) if tries < 5 => continue,
                other => return other.map(|()| name),
            }
        }
    }

    /// A user's public profile (`GET /users/{id}`).
    pub async fn profile(&self, id: crate::model::UserId) -> AppResult<User> {
        self.store.user(id).await?.ok_or(AppError::NotFound("user"))
    }

    /// The user a bearer token names (from the cache when fresh enough);
    /// `403 banned` while they are banned.
    /// The media URL signing key (derived from the token key).
    pub fn url_key(&self) -> [u8; 32] {
        self.tokens.url_key()
    }

    pub async fn authenticate(&self, token: &str) -> AppResult<User> {
        let subject = self.tokens.verify(token)?;
        let user = self.active(subject.user).await?;
        current_epoch(user, subject.epoch)
    }

    /// User `id` (from the cache) unless banned: for a signed media URL,
    /// which speaks for its user as a token would.
    pub async fn active(&self, id: UserId) -> AppResult<User> {
        let user = match self.users.get(id) {
            Some(u) => u,
            None => self.load(id).await?,
        };
        self.refuse_banned(user).await
    }

    /// Like [`authenticate`](Self::authenticate), always reading the user from
    /// the store (admin routes and `GET /me`: a role set by `quicktalk admin
    /// grant` shows at once).
    pub async fn authenticate_fresh(&self, token: &str) -> AppResult<User> {
        let subject = self.tokens.verify(token)?;
        let user = self.load(subject.user).await?;
        let user = current_epoch(user, subject.epoch)?;
        self.refuse_banned(user).await
    }

    /// Reads user `id` from the store and caches it.
    async fn load(&self, id: UserId) -> AppResult<User> {
        let began = self.users.begin();
        let user = self
            .store
            .user(id)
            .await?
            .ok_or(AppError::unauthorized("invalid_token", "invalid token"))?;
        self.users.put(user.clone(), began);
        Ok(user)
    }

    /// `user`, or `403 banned` (with until when and why) while they are banned.
    async fn refuse_banned(&self, user: User) -> AppResult<User> {
        let now = now_ms();
        if !user.banned_at(now) {
            return Ok(user);
        }
        let ban = self.store.ban(user.id).await?;
        let until = ban.as_ref().map_or(BAN_FOREVER, |b| b.until);
        let reason = ban.map(|b| b.reason).unwrap_or_default();
        let when = if until == BAN_FOREVER {
            "until a moderator lifts it".to_owned()
        } else {
            format!("until {}", rfc3339(until))
        };
        Err(AppError::Banned {
            message: format!("you are banned {when}; reason: {reason}").into(),
            until,
            reason,
        })
    }

    fn session(&self, user: User) -> Session {
        let token = self.tokens.issue(user.id, user.token_epoch);
        Session { user, token }
    }

    /// Turns guest `user` into a registered user in place (contract §7): same
    /// id, rooms, history and match state. The guest's tokens stop working
    /// (the store bumps the token epoch; this node forgets the cached user at
    /// once, and the caller tells the other nodes); the new session's token is
    /// the one that works.
    pub async fn upgrade(&self, user: &User, username: &str, password: &str) -> AppResult<Session> {
        if !user.guest {
            return Err(AppError::conflict(
                "already_registered",
                "this account is registered already",
            ));
        }
        validate::username(username)?;
        validate::password(password)?;
        super::moderation::check_name(username, "username")?;
        let pw = password.to_owned();
        let hash = self.hashing.run(move || hash_password(&pw)).await?;
        let upgraded = self
            .store
            .upgrade_guest(user.id, username, &hash)
            .await?
            .ok_or(AppError::conflict(
                "already_registered",
                "this account is registered already",
            ))?;
        self.users.forget(user.id);
        tracing::info!(user = user.id, "guest upgraded to a registered account");
        Ok(self.session(upgraded))
    }

    /// A registered user's public profile by exact username (case-insensitive);
    /// there is no listing of users.
    pub async fn profile_by_username(&self, username: &str) -> AppResult<User> {
        if username.is_empty() || username.len() > 32 {
            return Err(AppError::NotFound("user"));
        }
        self.store
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound("user"))
    }
}

/// `user`, if a token of `epoch` is still theirs.
fn current_epoch(user: User, epoch: i64) -> AppResult<User> {
    if user.token_epoch == epoch {
        Ok(user)
    } else {
        Err(AppError::unauthorized(
            "invalid_token",
            "this token was replaced (the account was upgraded); sign in again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn someone(id: UserId) -> User {
        User {
            id,
            username: None,
            display_name: format!("u{id}"),
            guest: true,
            role: crate::model::Role::User,
            banned_until: None,
            status_message: None,
            avatar: None,
            dm_policy: Default::default(),
            token_epoch: 0,
        }
    }

    /// A user read from the store before a forget (a ban racing the read) is
    /// not cached after it: the next check reads the store again.
    #[test]
    fn a_forget_keeps_a_read_from_before_it_out_of_the_cache() {
        let cache = UserCache::default();
        let began = cache.begin();
        cache.forget(1);
        cache.put(someone(1), began);
        assert!(cache.get(1).is_none(), "a stale copy was cached");
        let began = cache.begin();
        cache.put(someone(1), began);
        assert_eq!(cache.get(1), Some(someone(1)));
        cache.forget(1);
        assert!(cache.get(1).is_none());
        // Forgetting another user also blocks (harmlessly) a read in flight.
        let began = cache.begin();
        cache.forget(2);
        cache.put(someone(1), began);
        assert!(cache.get(1).is_none());
    }

    /// A login flood cannot queue without bound: with every hashing thread busy
    /// and the waiting room full, the next caller is told `unavailable` (HTTP 503)
    /// at once; those admitted still finish.
    #[tokio::test]
    async fn hashing_refuses_callers_beyond_its_waiting_room() {
        let hashing = Arc::new(Hashing::new(1, 2));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let busy = {
            let h = hashing.clone();
            tokio::spawn(async move {
                h.run(move || {
                    let _ = started.send(());
                    hold.recv().unwrap();
                    0
                })
                .await
            })
        };
        running.await.unwrap();
        let waiters: Vec<_> = (1..=2)
            .map(|i| {
                let h = hashing.clone();
                tokio::spawn(async move { h.run(move || i).await })
            })
            .collect();
        // Both are waiting for the one thread.
        while hashing.waiting.load(Ordering::Acquire) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused = hashing.run(|| 9).await;
        assert!(
            matches!(refused, Err(AppError::Unavailable(_))),
            "{refused:?}"
        );
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 0);
        let mut done = Vec::new();
        for w in waiters {
            done.push(w.await.unwrap().unwrap());
        }
        done.sort();
        assert_eq!(done, vec![1, 2]);
        assert_eq!(
            hashing.run(|| 3).await.unwrap(),
            3,
            "room again once drained"
        );
    }
}
