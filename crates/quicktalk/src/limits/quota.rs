//! The limits there are, their defaults, and the `N/PERIOD` notation they are
//! configured with (`--rate-limit send_user=20/4s`).

use std::fmt;
use std::time::Duration;

/// One named rate limit. The name is the config key and the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    SignupIp,
    GuestIp,
    LoginIp,
    ConnectIp,
    SendUser,
    SendRoom,
    TypingUser,
    RoomCreateUser,
    RoomCreateIp,
    ReportUser,
    ReportIp,
    MatchUser,
    UploadUser,
    UploadIp,
    FriendRequestUser,
    FriendRequestIp,
    DirectUser,
    DirectIp,
    BlockUser,
    ProfileUser,
    PushSubscribeUser,
    PushSubscribeIp,
    NotifyLevelUser,
    ActivityUser,
    SearchUser,
    SearchIp,
}

impl Limit {
    pub const ALL: [Limit; 26] = [
        Limit::SignupIp,
        Limit::GuestIp,
        Limit::LoginIp,
        Limit::ConnectIp,
        Limit::SendUser,
        Limit::SendRoom,
        Limit::TypingUser,
        Limit::RoomCreateUser,
        Limit::RoomCreateIp,
        Limit::ReportUser,
        Limit::ReportIp,
        Limit::MatchUser,
        Limit::UploadUser,
        Limit::UploadIp,
        Limit::FriendRequestUser,
        Limit::FriendRequestIp,
        Limit::DirectUser,
        Limit::DirectIp,
        Limit::BlockUser,
        Limit::ProfileUser,
        Limit::PushSubscribeUser,
        Limit::PushSubscribeIp,
        Limit::NotifyLevelUser,
        Limit::ActivityUser,
        Limit::SearchUser,
        Limit::SearchIp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Limit::SignupIp => "signup_ip",
            Limit::GuestIp => "guest_ip",
            Limit::LoginIp => "login_ip",
            Limit::ConnectIp => "connect_ip",
            Limit::SendUser => "send_user",
            Limit::SendRoom => "send_room",
            Limit::TypingUser => "typing_user",
            Limit::RoomCreateUser => "room_create_user",
            Limit::RoomCreateIp => "room_create_ip",
            Limit::ReportUser => "report_user",
            Limit::ReportIp => "report_ip",
            Limit::MatchUser => "match_user",
            Limit::UploadUser => "upload_user",
            Limit::UploadIp => "upload_ip",
            Limit::FriendRequestUser => "friend_request_user",
            Limit::FriendRequestIp => "friend_request_ip",
            Limit::DirectUser => "direct_user",
            Limit::DirectIp => "direct_ip",
            Limit::BlockUser => "block_user",
            Limit::ProfileUser => "profile_user",
            Limit::PushSubscribeUser => "push_subscribe_user",
            Limit::PushSubscribeIp => "push_subscribe_ip",
            Limit::NotifyLevelUser => "notify_level_user",
            Limit::ActivityUser => "activity_user",
            Limit::SearchUser => "search_user",
            Limit::SearchIp => "search_ip",
        }
    }

    /// The defaults (README "Rate limits" gives the reasoning).
    pub fn default_rate(self) -> Rate {
        let r = |count, secs| Rate {
            count,
            per: Duration::from_secs(secs),
        };
        match self {
            Limit::SignupIp => r(5, 3600),
            Limit::GuestIp => r(20, 3600),
            Limit::LoginIp => r(30, 60),
            Limit::ConnectIp => r(60, 60),
            Limit::SendUser => r(20, 4),
            Limit::SendRoom => r(100, 2),
            Limit::TypingUser => r(10, 5),
            Limit::RoomCreateUser => r(10, 3600),
            Limit::RoomCreateIp => r(30, 3600),
            Limit::ReportUser => r(10, 3600),
            Limit::ReportIp => r(30, 3600),
            Limit::MatchUser => r(10, 10),
            // Uploads (direct, or a resumable upload's creation): a photo
            // burst is fine, a flood of files is not.
            Limit::UploadUser => r(60, 600),
            Limit::UploadIp => r(120, 600),
            // Friend requests reach a stranger's screen: a handful an hour.
            Limit::FriendRequestUser => r(20, 3600),
            Limit::FriendRequestIp => r(60, 3600),
            // Opening (or re-opening) direct rooms.
            Limit::DirectUser => r(30, 3600),
            Limit::DirectIp => r(60, 3600),
            // Blocking and unblocking (each is a write and an event to every node).
            Limit::BlockUser => r(60, 3600),
            // Profile changes (an avatar is an image decode).
            Limit::ProfileUser => r(30, 600),
            // Push subscriptions (a browser subscribes once; each is a row and
            // a URL the server will POST to).
            Limit::PushSubscribeUser => r(20, 3600),
            Limit::PushSubscribeIp => r(60, 3600),
            // Per-room notification levels.
            Limit::NotifyLevelUser => r(60, 600),
            // Focus reports (each change is an event to every node): tab
            // switching, not a flood.
            Limit::ActivityUser => r(60, 60),
            // History searches (a short query scans the caller's rooms):
            // a person searches on Enter, not per keystroke.
            Limit::SearchUser => r(60, 60),
            Limit::SearchIp => r(240, 60),
        }
    }

    pub fn from_name(s: &str) -> Option<Limit> {
        Limit::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// At most `count` actions per `per`, refilled evenly (GCRA: a burst of `count`,
/// then one every `per / count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.per.as_secs_f64())
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    /// `N/PERIOD`, PERIOD a number with `ms`, `s`, `m` or `h` (`20/4s`, `5/1h`).
    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("expected N/PERIOD like 20/4s or 5/1h, got {s:?}");
        let (n, p) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        let p = p.trim();
        let split = p.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = p.split_at(split);
        let num: u64 = num.parse().map_err(|_| bad())?;
        let per = match unit {
            "ms" => Duration::from_millis(num),
            "s" => Duration::from_secs(num),
            "m" => Duration::from_secs(num * 60),
            "h" => Duration::from_secs(num * 3600),
            _ => return Err(bad()),
        };
        if count == 0 || per.is_zero() {
            return Err(bad());
        }
        Ok(Rate { count, per })
    }
}

/// Every limit's rate: the defaults with any overrides applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rates(Vec<(Limit, Rate)>);

impl Default for Rates {
    fn default() -> Self {
        Rates(Limit::ALL.iter().map(|l| (*l, l.default_rate())).collect())
    }
}

impl Rates {
    pub fn get(&self, limit: Limit) -> Rate {
        self.0
            .iter()
            .find(|(l, _)| *l == limit)
            .map(|(_, r)| *r)
            .unwrap_or(limit.default_rate())
    }

    pub fn set(&mut self, limit: Limit, rate: Rate) {
        for (l, r) in &mut self.0 {
            if *l == limit {
                *r = rate;
            }
        }
    }

    /// Applies `NAME=N/PERIOD` overrides.
    pub fn apply(&mut self, overrides: &[String]) -> Result<(), String> {
        for o in overrides {
            let (name, rate) = o
                .split_once('=')
                .ok_or_else(|| format!("expected NAME=N/PERIOD, got {o:?}"))?;
            let limit = Limit::from_name(name.trim()).ok_or_else(|| {
                let names: Vec<_> = Limit::ALL.iter().map(|l| l.name()).collect();
                format!("unknown rate limit {name:?} (known: {})", names.join(", "))
            })?;
            self.set(limit, rate.parse()?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_apply() {
        assert_eq!(
            "20/4s".parse::<Rate>().unwrap(),
            Rate {
                count: 20,
                per: Duration::from_secs(4)
            }
        );
        assert_eq!(
            "5/1h".parse::<Rate>().unwrap().per,
            Duration::from_secs(3600)
        );
        assert!("0/1s".parse::<Rate>().is_err());
        assert!("5/1x".parse::<Rate>().is_err());
        let mut r = Rates::default();
        r.apply(&["send_user=3/1s".into()]).unwrap();
        assert_eq!(r.get(Limit::SendUser).count, 3);
        assert!(r.apply(&["nope=1/1s".into()]).is_err());
    }
}
