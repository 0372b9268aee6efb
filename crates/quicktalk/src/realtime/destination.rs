//! Parsing of the destinations in contract §3.

use crate::model::RoomId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeTo {
    Room(RoomId),
    UserEvents,
    UserErrors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTo {
    Room(RoomId),
    Typing(RoomId),
    Match(MatchOp),
    /// `/app/activity`: the client's focus (contract §8).
    Activity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Connect,
    Next,
    Disconnect,
}

fn room_id(s: &str) -> Option<RoomId> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn subscribe(dest: &str) -> Option<SubscribeTo> {
    match dest {
        crate::fanout::USER_EVENTS => Some(SubscribeTo::UserEvents),
        crate::fanout::USER_ERRORS => Some(SubscribeTo::UserErrors),
        _ => dest
            .strip_prefix("/topic/rooms.")
            .and_then(room_id)
            .map(SubscribeTo::Room),
    }
}

pub fn send(dest: &str) -> Option<SendTo> {
    match dest {
        "/app/match.connect" => return Some(SendTo::Match(MatchOp::Connect)),
        "/app/match.next" => return Some(SendTo::Match(MatchOp::Next)),
        "/app/match.disconnect" => return Some(SendTo::Match(MatchOp::Disconnect)),
        "/app/activity" => return Some(SendTo::Activity),
        _ => {}
    }
    let rest = dest.strip_prefix("/app/rooms.")?;
    match rest.strip_suffix(".typing") {
        Some(id) => room_id(id).map(SendTo::Typing),
        None => room_id(rest).map(SendTo::Room),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(subscribe("/topic/rooms.12"), Some(SubscribeTo::Room(12)));
        assert_eq!(
            subscribe("/user/queue/events"),
            Some(SubscribeTo::UserEvents)
        );
        assert_eq!(subscribe("/topic/rooms."), None);
        assert_eq!(subscribe("/topic/rooms.-1"), None);
        assert_eq!(subscribe("/topic/rooms.99999999999999999999"), None);
        assert_eq!(send("/app/rooms.5"), Some(SendTo::Room(5)));
        assert_eq!(send("/app/rooms.5.typing"), Some(SendTo::Typing(5)));
        assert_eq!(send("/app/rooms.x.typing"), None);
        assert_eq!(send("/app/other"), None);
        assert_eq!(send("/app/match.next"), Some(SendTo::Match(MatchOp::Next)));
        assert_eq!(send("/app/activity"), Some(SendTo::Activity));
    }
}
