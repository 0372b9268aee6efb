//! Profiles (contract §7): display name, status message, avatar and DM policy.
//! Lengths are counted in grapheme clusters after NFC ([`validate`]); the
//! display name is moderated as a name and may not impersonate another
//! registered user (the store swaps its confusable skeleton in the same
//! transaction); the status message is moderated like a message (blocked:
//! `moderated`; masked: stored masked). An avatar is one of the caller's own
//! uploaded images, re-encoded ([`super::avatars`]). Lookups are by id or by
//! exact username: users are never listed.

use std::sync::Arc;

use super::accounts::UserCache;
use super::media::MediaService;
use super::{moderation, validate};
use crate::bus::{Bus, BusEvent};
use crate::error::{AppError, AppResult};
use crate::limits::{Key, Limit, Limits};
use crate::model::{DmPolicy, User};
use crate::store::people::ProfilePatch;
use crate::store::Store;

/// `PATCH /me` as parsed: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub status_message: Option<Option<String>>,
    pub avatar: Option<Option<String>>,
    pub dm_policy: Option<String>,
}

pub struct Profiles {
    store: Arc<dyn Store>,
    media: Arc<MediaService>,
    users: Arc<UserCache>,
    bus: Arc<dyn Bus>,
    limits: Arc<Limits>,
    moderation_on: bool,
}

impl Profiles {
    pub fn new(
        store: Arc<dyn Store>,
        media: Arc<MediaService>,
        users: Arc<UserCache>,
        bus: Arc<dyn Bus>,
        limits: Arc<Limits>,
        moderation_on: bool,
    ) -> Self {
        Profiles {
            store,
            media,
            users,
            bus,
            limits,
            moderation_on,
        }
    }

    /// Applies `change` to `me`'s profile: the user as it is now.
    pub async fn update(&self, me: &User, change: ProfileChange) -> AppResult<User> {
        self.limits.check(Limit::ProfileUser, Key::User(me.id))?;
        let mut patch = ProfilePatch::default();
        if let Some(name) = &change.display_name {
            let name = validate::display_name(name)?;
            if self.moderation_on {
                moderation::check_name(&name, "display name")?;
            }
            validate::impersonates(&*self.store, &name, Some(me.id)).await?;
            patch.display_name = Some(name);
        }
        if let Some(status) = &change.status_message {
            patch.status_message = Some(match status.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(s) => Some(self.moderate_status(validate::status_message(s)?)?),
            });
        }
        if let Some(p) = &change.dm_policy {
            patch.dm_policy = Some(DmPolicy::parse(p).ok_or(AppError::invalid(
                "invalid_dm_policy",
                "dm_policy must be \"everyone\" or \"friends\"",
            ))?);
        }
        // The avatar last: it is the costly part, done once the rest is valid.
        let mut new_avatar = None;
        if let Some(avatar) = &change.avatar {
            patch.avatar = Some(match avatar {
                None => None,
                Some(media_id) => {
                    let id = self.media.make_avatar(me, media_id).await?;
                    new_avatar = Some(id.clone());
                    Some(id)
                }
            });
        }
        if patch.is_empty() {
            return self
                .store
                .user(me.id)
                .await?
                .ok_or(AppError::NotFound("user"));
        }
        let updated = match self.store.update_profile(me.id, patch).await {
            Ok(Some(u)) => u,
            Ok(None) => {
                self.drop_avatar(new_avatar.as_deref()).await;
                return Err(AppError::NotFound("user"));
            }
            Err(e) => {
                self.drop_avatar(new_avatar.as_deref()).await;
                return Err(e.into());
            }
        };
        let (user, old_avatar) = updated;
        if old_avatar.is_some() && old_avatar != user.avatar {
            self.drop_avatar(old_avatar.as_deref()).await;
        }
        self.changed(me.id);
        Ok(user)
    }

    /// `user` changed (profile, or a guest upgrade): every node's
    /// authentication cache forgets the old copy.
    pub fn changed(&self, user: crate::model::UserId) {
        self.users.forget(user);
        self.bus.publish(BusEvent::UserChanged {
            user_id: user,
            banned: false,
        });
    }

    async fn drop_avatar(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.media.delete_avatar(id).await;
        }
    }

    /// A status message through the classifier as a message in a group room
    /// would be (standard policy): blocked → `moderated`, masked → masked.
    fn moderate_status(&self, text: String) -> AppResult<String> {
        if !self.moderation_on {
            return Ok(text);
        }
        let (text, _) = moderation::moderate_text(text, quicktalk_moderation::Policy::Standard)?;
        Ok(text)
    }
}
