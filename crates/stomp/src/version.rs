//! Protocol version and heart-beat negotiation (the `accept-version` and
//! `heart-beat` headers of `CONNECT`/`STOMP`).

use crate::DecodeError;

/// A STOMP protocol version. Ordered: `V1_0 < V1_1 < V1_2`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping.
    V1_0,
    /// STOMP 1.1: escapes `\\`, `\n` and `\c` in headers.
    V1_1,
    /// STOMP 1.2: 1.1 escapes plus `\r`.
    V1_2,
}

impl Version {
    /// Every supported version, lowest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as written in `version`/`accept-version` headers: `"1.0"`, `"1.1"` or `"1.2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Negotiates the version from the `accept-version` header value of
    /// `CONNECT`/`STOMP`.
    ///
    /// `None` (header absent) means a 1.0 client, so `Some(V1_0)`. Otherwise
    /// picks the highest of the comma-separated versions that we support;
    /// whitespace around items is tolerated. Returns `None` if there is no
    /// overlap.
    pub fn negotiate(accept_version: Option<&str>) -> Option<Version> {
        let Some(list) = accept_version else {
            return Some(Version::V1_0);
        };
        list.split(',')
            .filter_map(|item| {
                let item = item.trim();
                Version::ALL.into_iter().find(|v| v.as_str() == item)
            })
            .max()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `heart-beat` header `"cx,cy"`, in milliseconds.
///
/// `cx` is the smallest interval at which the sender can send heart-beats,
/// `cy` the interval at which it wants to receive them; 0 means "none".
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// Sender can send every `cx` ms (0: cannot send).
    pub cx: u32,
    /// Sender wants to receive every `cy` ms (0: does not want any).
    pub cy: u32,
}

impl HeartBeat {
    /// Parses a `heart-beat` header value. A missing header (`None`) is `0,0`.
    ///
    /// Both items must be non-negative decimal integers that fit in `u32`;
    /// whitespace around an item is tolerated.
    pub fn parse(v: Option<&str>) -> Result<HeartBeat, DecodeError> {
        let Some(v) = v else {
            return Ok(HeartBeat::default());
        };
        let (cx, cy) = v.split_once(',').ok_or(DecodeError::InvalidHeartBeat)?;
        Ok(HeartBeat {
            cx: parse_ms(cx)?,
            cy: parse_ms(cy)?,
        })
    }
}

fn parse_ms(s: &str) -> Result<u32, DecodeError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::InvalidHeartBeat);
    }
    s.parse().map_err(|_| DecodeError::InvalidHeartBeat)
}

/// Server-side heart-beat negotiation (STOMP 1.2 "Heart-beating").
///
/// `client` is the client's `CONNECT` heart-beat; `server` is
/// `(server_can_send_every_ms, server_wants_receive_every_ms)`, i.e. what the
/// server will put in its `CONNECTED` `heart-beat` header.
///
/// Returns `(server_send_every_ms, server_expect_receive_every_ms)`; 0 means
/// "none".
pub fn negotiate_heartbeat(client: HeartBeat, server: (u32, u32)) -> (u32, u32) {
    let (server_cx, server_cy) = server;
    let send = if client.cy == 0 || server_cx == 0 {
        0
    } else {
        server_cx.max(client.cy)
    };
    let expect = if client.cx == 0 || server_cy == 0 {
        0
    } else {
        client.cx.max(server_cy)
    };
    (send, expect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_order_and_names() {
        assert!(Version::V1_0 < Version::V1_1 && Version::V1_1 < Version::V1_2);
        assert_eq!(Version::V1_0.as_str(), "1.0");
        assert_eq!(Version::V1_1.as_str(), "1.1");
        assert_eq!(Version::V1_2.as_str(), "1.2");
        assert_eq!(Version::V1_2.to_string(), "1.2");
    }

    #[test]
    fn version_negotiation() {
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.2,1.0")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.1")), Some(Version::V1_1));
        assert_eq!(Version::negotiate(Some("1.0")), Some(Version::V1_0));
        assert_eq!(Version::negotiate(None), Some(Version::V1_0));
        assert_eq!(Version::negotiate(Some("2.0")), None);
        assert_eq!(Version::negotiate(Some("")), None);
        assert_eq!(Version::negotiate(Some(" 1.2 , 1.1")), Some(Version::V1_2));
        assert_eq!(
            Version::negotiate(Some("1.1, 2.0 ,\t1.0")),
            Some(Version::V1_1)
        );
        assert_eq!(Version::negotiate(Some("1.12")), None);
    }

    #[test]
    fn heartbeat_parse() {
        assert_eq!(HeartBeat::parse(None), Ok(HeartBeat { cx: 0, cy: 0 }));
        assert_eq!(
            HeartBeat::parse(Some("1000,2500")),
            Ok(HeartBeat { cx: 1000, cy: 2500 })
        );
        assert_eq!(
            HeartBeat::parse(Some("0,0")),
            Ok(HeartBeat { cx: 0, cy: 0 })
        );
        assert_eq!(
            HeartBeat::parse(Some(" 10 , 20 ")),
            Ok(HeartBeat { cx: 10, cy: 20 })
        );
        assert_eq!(
            HeartBeat::parse(Some("4294967295,1")),
            Ok(HeartBeat {
                cx: u32::MAX,
                cy: 1
            })
        );
    }

    #[test]
    fn heartbeat_parse_errors() {
        for bad in [
            "a,b",
            "1",
            "-1,2",
            "1,-2",
            "",
            ",",
            "1,",
            ",1",
            "+1,2",
            "1,2,3",
            "4294967296,0",
            "1.5,2",
        ] {
            assert_eq!(
                HeartBeat::parse(Some(bad)),
                Err(DecodeError::InvalidHeartBeat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn heartbeat_negotiation() {
        let c = |cx, cy| HeartBeat { cx, cy };
        // Client can send every 1000 and wants every 2000; server can send
        // every 5000, wants every 500.
        assert_eq!(
            negotiate_heartbeat(c(1000, 2000), (5000, 500)),
            (5000, 1000)
        );
        assert_eq!(
            negotiate_heartbeat(c(1000, 2000), (100, 3000)),
            (2000, 3000)
        );
        // zeros on either side disable that direction
        assert_eq!(negotiate_heartbeat(c(0, 0), (5000, 5000)), (0, 0));
        assert_eq!(negotiate_heartbeat(c(1000, 1000), (0, 0)), (0, 0));
        assert_eq!(negotiate_heartbeat(c(0, 1000), (5000, 5000)), (5000, 0));
        assert_eq!(negotiate_heartbeat(c(1000, 0), (5000, 5000)), (0, 5000));
        assert_eq!(negotiate_heartbeat(c(1000, 1000), (0, 700)), (0, 1000));
        assert_eq!(negotiate_heartbeat(c(1000, 1000), (700, 0)), (1000, 0));
    }
}
