//! JSON request bodies of the REST API and of STOMP SEND, parsed with the
//! handlers' own serde types and then checked with the validation the domain
//! applies to them (`quicktalk::domain::validate`, `PrefsInput::validate`).
//!
//! Input: 1 byte choosing the body, then the body. Invariants beyond "no panic":
//! a body either fails to parse (a serde error, which the adapters answer as
//! `invalid_json`), or is rejected with a client error (an `AppError` with a
//! code, never an internal one), or yields values that satisfy the rules:
//! names trimmed, 1-64 characters and free of control characters; message text
//! trimmed and 1-4000 characters; interests at most 10, each 1-32 characters,
//! sorted and unique; `lang` a short ASCII tag; `seq` >= 0.
//!
//! The order of checks mirrors the callers (`http/accounts.rs`,
//! `http/rooms.rs`, `realtime/session/send.rs`, `domain/accounts.rs`,
//! `domain/rooms.rs`); checks that need the store (report reason, membership)
//! are not covered here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quicktalk::domain::matching::PrefsInput;
use quicktalk::domain::validate;
use quicktalk::error::AppError;
use quicktalk::http::bodies::{CreateRoom, Guest, Login, PostMessage, Read, Report, Signup};
use quicktalk::model::Visibility;
use quicktalk::realtime::PostBody;
use serde::de::DeserializeOwned;

fuzz_target!(|input: &[u8]| {
    let [kind, body @ ..] = input else {
        return;
    };
    match kind % 9 {
        0 => body_then(body, |b: Signup| {
            validate::username(&b.username)?;
            validate::password(&b.password)?;
            let display = validate::name(
                b.display_name.as_deref().unwrap_or(&b.username),
                "invalid_display_name",
                "display_name",
            )?;
            check_username(&b.username);
            let n = b.password.chars().count();
            assert!((8..=128).contains(&n), "password of {n} characters");
            check_name(&display);
            Ok(())
        }),
        1 => body_then(body, |_: Login| Ok(())),
        // `POST /auth/guest`: an empty or blank body means "no nickname".
        2 => {
            if !body.iter().all(u8::is_ascii_whitespace) {
                body_then(body, |b: Guest| {
                    if let Some(n) = b.nickname {
                        check_name(&validate::name(&n, "invalid_nickname", "nickname")?);
                    }
                    Ok(())
                })
            }
        }
        // `POST /match/connect` and SEND `/app/match.connect`: blank means defaults.
        3 => optional_body_then(body, |b: PrefsInput| {
            let prefs = b.validate()?;
            assert!(prefs.interests.len() <= 10);
            for i in &prefs.interests {
                let n = i.chars().count();
                assert!((1..=32).contains(&n), "interest of {n} characters");
                assert!(!i.chars().any(char::is_control));
            }
            assert!(
                prefs.interests.windows(2).all(|w| w[0] < w[1]),
                "not sorted/unique"
            );
            if let Some(lang) = &prefs.lang {
                assert!((1..=16).contains(&lang.len()));
                assert!(lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            }
            Ok(())
        }),
        4 => body_then(body, |_: Report| Ok(())),
        5 => body_then(body, |b: CreateRoom| {
            if let Some(v) = &b.visibility {
                Visibility::parse(v).ok_or(AppError::invalid("invalid_visibility", "bad"))?;
            }
            check_name(&validate::name(&b.name, "invalid_room_name", "room name")?);
            Ok(())
        }),
        6 => body_then(body, |b: PostMessage| {
            message(&b.text, b.client_id.as_deref())
        }),
        7 => body_then(body, |b: PostBody| message(&b.text, b.client_id.as_deref())),
        _ => body_then(body, |b: Read| {
            if b.seq < 0 {
                return Err(AppError::invalid("invalid_seq", "seq must be >= 0"));
            }
            Ok(())
        }),
    }
});

/// Parses `body` as `T` and validates it with `check`; a rejection must be a
/// client error with a code.
fn body_then<T: DeserializeOwned>(body: &[u8], check: impl FnOnce(T) -> Result<(), AppError>) {
    let Ok(value) = serde_json::from_slice::<T>(body) else {
        return; // answered as `invalid_json`
    };
    if let Err(e) = check(value) {
        assert!(!matches!(e, AppError::Internal(_)), "internal error: {e:?}");
        assert!(!e.code().is_empty());
    }
}

/// As [`body_then`], for the routes where a blank body means the defaults.
fn optional_body_then<T: DeserializeOwned + Default>(
    body: &[u8],
    check: impl FnOnce(T) -> Result<(), AppError>,
) {
    if body.iter().all(u8::is_ascii_whitespace) {
        let result = check(T::default());
        assert!(result.is_ok(), "defaults rejected: {result:?}");
    } else {
        body_then(body, check);
    }
}

/// A room message (REST `POST /rooms/{id}/messages` or STOMP SEND).
fn message(text: &str, client_id: Option<&str>) -> Result<(), AppError> {
    let text = validate::text(text)?;
    if let Some(c) = client_id {
        validate::client_id(c)?;
        let n = c.chars().count();
        assert!((1..=64).contains(&n), "client_id of {n} characters");
        assert!(!c.chars().any(char::is_control));
    }
    assert_eq!(text, text.trim(), "text not trimmed");
    let n = text.chars().count();
    assert!((1..=4000).contains(&n), "text of {n} characters");
    Ok(())
}

fn check_username(u: &str) {
    assert!((3..=32).contains(&u.len()), "username of {} bytes", u.len());
    assert!(u
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
}

fn check_name(n: &str) {
    assert_eq!(n, n.trim(), "name not trimmed");
    let count = n.chars().count();
    assert!((1..=64).contains(&count), "name of {count} characters");
    assert!(
        !n.chars().any(char::is_control),
        "control character in {n:?}"
    );
}
