//! SEND: room messages (RECEIPT only once durable) and typing events.

use std::time::Duration;

use quicktalk_stomp::Frame;
use serde::Deserialize;

use super::{required, Flow, Handled, Session};
use crate::domain::matching::PrefsInput;
use crate::domain::pipeline::{Done, Reply};
use crate::error::AppError;
use crate::limits::{Key, Limit};
use crate::model::{RoomId, User};
use crate::realtime::destination::{self, MatchOp, SendTo};

/// Typing events from one session to one room are forwarded at most this often.
const TYPING_EVERY: Duration = Duration::from_millis(1000);

/// The body of a SEND to `/app/activity` (contract §8).
#[derive(Deserialize)]
struct ActivityBody {
    focused: bool,
}

/// The body of a SEND to a room.
#[derive(Deserialize)]
pub struct PostBody {
    /// May be empty (or absent) when files are attached.
    #[serde(default)]
    pub text: String,
    /// Media ids (contract §6).
    #[serde(default)]
    pub attachments: Vec<String>,
    pub client_id: Option<String>,
}

impl Session {
    pub(super) async fn send(&mut self, user: &User, frame: Frame) -> Handled {
        let dest = required(&frame, "destination")?.to_owned();
        let receipt = frame.header("receipt").map(str::to_owned);
        let result = match destination::send(&dest) {
            Some(SendTo::Room(room)) => {
                return Ok(self.post(user, room, &dest, frame, receipt).await)
            }
            Some(SendTo::Typing(room)) => self.typing(user, room).await,
            Some(SendTo::Match(op)) => self.matching(user, op, &frame).await,
            Some(SendTo::Activity) => self.activity(user, &frame),
            None => Err(AppError::invalid(
                "unknown_destination",
                format!("cannot send to {dest}"),
            )),
        };
        match result {
            Ok(()) => self.replier.receipt(receipt.as_deref()),
            Err(e) => self.replier.app_error(&e, &dest, receipt.as_deref()),
        }
        Ok(Flow::Continue)
    }

    async fn post(
        &mut self,
        user: &User,
        room: RoomId,
        dest: &str,
        frame: Frame,
        receipt: Option<String>,
    ) -> Flow {
        let limits = &self.state.limits;
        if let Err(e) = limits
            .check(Limit::SendUser, Key::User(user.id))
            .and_then(|()| limits.check(Limit::SendRoom, Key::Room(room)))
        {
            self.replier.app_error(&e, dest, receipt.as_deref());
            return Flow::Continue;
        }
        let body: PostBody = match serde_json::from_slice(&frame.body) {
            Ok(b) => b,
            Err(e) => {
                let err = AppError::invalid("invalid_json", format!("invalid message body: {e}"));
                self.replier.app_error(&err, dest, receipt.as_deref());
                return Flow::Continue;
            }
        };
        // Enqueued here, in frame order; the pipeline sends the RECEIPT (or the
        // rejection) right after the commit, with no task of ours waiting for it.
        let replier = self.replier.clone();
        let dest_owned = dest.to_owned();
        let done: Done = Box::new(move |outcome| match outcome {
            Ok(_) => replier.receipt(receipt.as_deref()),
            Err(e) => replier.app_error(&e, &dest_owned, receipt.as_deref()),
        });
        // Sending is activity (contract §8): pushes wait while the user chats.
        self.state.push.touched(user.id, Some(self.activity_id));
        // (On an immediate rejection the callback was dropped unused: answer here.)
        if let Err(e) = self
            .state
            .rooms
            .post_with(
                user.as_ref(),
                room,
                &body.text,
                &body.attachments,
                body.client_id,
                Reply::Callback(done),
            )
            .await
        {
            self.replier.app_error(&e, dest, frame.header("receipt"));
        }
        Flow::Continue
    }

    /// `/app/activity`: this session's page is (not) in focus.
    fn activity(&mut self, user: &User, frame: &Frame) -> Result<(), AppError> {
        let body: ActivityBody = serde_json::from_slice(&frame.body).map_err(|e| {
            AppError::invalid("invalid_json", format!("invalid activity body: {e}"))
        })?;
        self.state
            .push
            .focus(user.id, self.activity_id, body.focused)
    }

    /// `/app/match.*`: the outcome arrives on `/user/queue/events`.
    async fn matching(&mut self, user: &User, op: MatchOp, frame: &Frame) -> Result<(), AppError> {
        let m = &self.state.matching;
        if !matches!(op, MatchOp::Disconnect) {
            self.state
                .limits
                .check(Limit::MatchUser, Key::User(user.id))?;
        }
        match op {
            MatchOp::Connect => {
                let input = if frame.body.iter().all(u8::is_ascii_whitespace) {
                    PrefsInput::default()
                } else {
                    serde_json::from_slice(&frame.body).map_err(|e| {
                        AppError::invalid(
                            "invalid_json",
                            format!("invalid match.connect body: {e}"),
                        )
                    })?
                };
                m.connect(user, input).await?;
            }
            MatchOp::Next => {
                m.next(user).await?;
            }
            MatchOp::Disconnect => {
                m.disconnect(user).await?;
            }
        }
        Ok(())
    }

    async fn typing(&mut self, user: &User, room: RoomId) -> Result<(), AppError> {
        let now = tokio::time::Instant::now();
        if let Some(last) = self.typing_sent.get(&room) {
            if now.duration_since(*last) < TYPING_EVERY {
                return Ok(());
            }
        }
        self.state
            .limits
            .check(Limit::TypingUser, Key::User(user.id))?;
        self.state.rooms.typing(user, room).await?;
        if self.typing_sent.len() > 64 {
            self.typing_sent.clear();
        }
        self.typing_sent.insert(room, now);
        Ok(())
    }
}
