//! The domain error type: one enum for every rejection a service can make.
//!
//! Adapters map it once: `http::error` to status + JSON, `realtime` to
//! `/user/queue/errors` payloads. Internal causes are logged, never shown.

use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: `code` is the snake_case reason.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// No, bad or expired credentials: `code` is e.g. `unauthorized`, `invalid_token`.
    #[error("{message}")]
    Unauthorized {
        code: &'static str,
        message: &'static str,
    },
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// The caller is banned (contract §5, code `banned`, 403): `until` (ms;
    /// [`crate::model::BAN_FOREVER`] = until lifted) and the moderator's reason
    /// go to the client with the message.
    #[error("{message}")]
    Banned {
        message: Cow<'static, str>,
        until: i64,
        reason: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: Cow<'static, str>,
    },
    #[error("{0}")]
    TooLarge(Cow<'static, str>),
    /// The caller's stored files would pass their quota (413 `quota_exceeded`).
    #[error("{0}")]
    QuotaExceeded(Cow<'static, str>),
    /// Over a rate limit (contract §4); the client may retry after `retry_after`.
    #[error("{message}")]
    RateLimited {
        message: Cow<'static, str>,
        retry_after: std::time::Duration,
    },
    /// Moderation refused the text (contract §5, code `moderated`): a blocked
    /// message, or a name or room name that is not allowed. `categories` are
    /// the classifier's category names (e.g. `profanity`).
    #[error("{message}")]
    Moderated {
        message: Cow<'static, str>,
        categories: Vec<&'static str>,
    },
    /// Random matching is closed to this user for a while after repeated
    /// blocked messages (code `cooldown`); the client may retry after `retry_after`.
    #[error("too many blocked messages; random matching is paused for you")]
    Cooldown { retry_after: std::time::Duration },
    /// The server is shutting down or a queue is full; the client may retry.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The request was accepted but its outcome is not known (the pipeline timed
    /// out or went away): it may or may not have taken effect. Retrying with the
    /// same `client_id` is safe.
    #[error("{0}")]
    OutcomeUnknown(&'static str),
    /// Something broke inside; the cause is logged, the client sees a generic text.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }
    /// A name that looks like (has the confusable skeleton of) a registered
    /// user's username or display name.
    pub fn name_taken() -> Self {
        AppError::conflict(
            "name_taken",
            "this name looks like another registered user's name; choose another",
        )
    }
    pub fn unauthorized(code: &'static str, message: &'static str) -> Self {
        AppError::Unauthorized { code, message }
    }
    /// Over the limit `name`; the next try is allowed after `retry_after`.
    pub fn rate_limited(name: &str, retry_after: std::time::Duration) -> Self {
        AppError::RateLimited {
            message: format!("rate limit {name} exceeded; retry later").into(),
            retry_after,
        }
    }
    /// The wait before a retry may succeed, for rate-limit and cool-down rejections.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AppError::RateLimited { retry_after, .. } | AppError::Cooldown { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    /// The snake_case code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::Conflict { code, .. } => code,
            AppError::Unauthorized { code, .. } => code,
            AppError::NotFound(_) => "not_found",
            AppError::TooLarge(_) => "too_large",
            AppError::QuotaExceeded(_) => "quota_exceeded",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Moderated { .. } => "moderated",
            AppError::Banned { .. } => "banned",
            AppError::Cooldown { .. } => "cooldown",
            AppError::Unavailable(_) => "unavailable",
            AppError::OutcomeUnknown(_) => "outcome_unknown",
            AppError::Internal(_) => "internal",
        }
    }

    /// The moderation categories of a `moderated` rejection.
    pub fn categories(&self) -> Option<&[&'static str]> {
        match self {
            AppError::Moderated { categories, .. } => Some(categories),
            _ => None,
        }
    }

    /// The human text clients may show. Never contains internals.
    pub fn public_message(&self) -> String {
        self.to_string()
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::UsernameTaken => {
                AppError::conflict("username_taken", "username is already taken")
            }
            crate::store::StoreError::NameTaken => AppError::name_taken(),
            crate::store::StoreError::Backend(e) => AppError::Internal(e),
        }
    }
}

impl From<crate::model::AppendRejected> for AppError {
    fn from(e: crate::model::AppendRejected) -> Self {
        match e {
            crate::model::AppendRejected::RoomNotFound => AppError::NotFound("room"),
            crate::model::AppendRejected::NotMember => AppError::Forbidden {
                code: "not_member",
                message: "you are not a member of this room".into(),
            },
            crate::model::AppendRejected::Unstorable => {
                AppError::invalid("unstorable", "the message cannot be stored as written")
            }
            crate::model::AppendRejected::RoomClosed => AppError::Forbidden {
                code: "match_ended",
                message: "this chat has ended; its history stays readable".into(),
            },
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
