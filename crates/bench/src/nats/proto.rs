//! The NATS client protocol as text, without I/O: encoding the client's ops
//! (`CONNECT`, `SUB`, `PUB`, `PING`, `PONG`) and decoding the server's (`INFO`,
//! `MSG`, `HMSG`, `PING`, `PONG`, `+OK`, `-ERR`) from a byte stream that may
//! arrive in arbitrary pieces (over WebSocket, a message can hold several ops
//! or part of one).

use anyhow::{anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};

/// Longest control line accepted from the server (`INFO` is the longest).
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// Largest payload accepted from the server.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// One operation sent by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// The `INFO` JSON.
    Info(String),
    Msg(Msg),
    Ping,
    Pong,
    Ok,
    /// The `-ERR` text, quotes removed.
    Err(String),
}

/// A delivered message (`MSG`, or `HMSG` with its header block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub sid: u64,
    pub reply: Option<String>,
    /// The raw header block of an `HMSG` (`NATS/1.0 503\r\n...\r\n\r\n`).
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

impl Msg {
    /// The status code of an `HMSG` header block (`NATS/1.0 503` → 503).
    pub fn status(&self) -> Option<u16> {
        let h = self.headers.as_ref()?;
        let line = h.split(|&b| b == b'\r').next()?;
        let rest = line.strip_prefix(b"NATS/1.0")?;
        std::str::from_utf8(rest)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// The `CONNECT` op: no echo of our own publishes is needed, but the server
/// must speak headers so a missing JetStream stream answers "no responders"
/// instead of silence.
pub fn connect_op(name: &str) -> String {
    let json = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "tls_required": false,
        "name": name,
        "lang": "rust",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1,
        "echo": true,
        "headers": true,
        "no_responders": true,
    });
    format!("CONNECT {json}\r\n")
}

pub fn sub_op(subject: &str, sid: u64) -> String {
    format!("SUB {subject} {sid}\r\n")
}

/// `PUB subject [reply] len\r\npayload\r\n` in one buffer.
pub fn pub_op(subject: &str, reply: Option<&str>, payload: &[u8]) -> Vec<u8> {
    let head = match reply {
        Some(r) => format!("PUB {subject} {r} {}\r\n", payload.len()),
        None => format!("PUB {subject} {}\r\n", payload.len()),
    };
    let mut out = Vec::with_capacity(head.len() + payload.len() + 2);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

pub const PING: &str = "PING\r\n";
pub const PONG: &str = "PONG\r\n";

fn crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn num(s: &str, what: &str) -> anyhow::Result<usize> {
    s.parse().map_err(|_| anyhow!("bad {what} {s:?}"))
}

/// Decodes the next complete op from `buf` (consuming it), or `None` when
/// more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> anyhow::Result<Option<ServerOp>> {
    let Some(eol) = crlf(buf) else {
        if buf.len() > MAX_CONTROL_LINE {
            bail!("control line over {MAX_CONTROL_LINE} bytes");
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[..eol])
        .map_err(|_| anyhow!("control line is not UTF-8"))?
        .to_owned();
    let (op, rest) = line
        .split_once([' ', '\t'])
        .map_or((line.as_str(), ""), |(o, r)| (o, r.trim()));
    let simple = |buf: &mut BytesMut, op: ServerOp| {
        buf.advance(eol + 2);
        Ok(Some(op))
    };
    match op.to_ascii_uppercase().as_str() {
        "PING" => simple(buf, ServerOp::Ping),
        "PONG" => simple(buf, ServerOp::Pong),
        "+OK" => simple(buf, ServerOp::Ok),
        "-ERR" => simple(buf, ServerOp::Err(rest.trim_matches('\'').to_owned())),
        "INFO" => simple(buf, ServerOp::Info(rest.to_owned())),
        "MSG" | "HMSG" => {
            let hmsg = op.eq_ignore_ascii_case("HMSG");
            let args: Vec<&str> = rest.split_whitespace().collect();
            let fixed = if hmsg { 4 } else { 3 };
            if args.len() != fixed && args.len() != fixed + 1 {
                bail!("bad {op} line {line:?}");
            }
            let reply = (args.len() == fixed + 1).then(|| args[2].to_owned());
            let sizes = &args[args.len() - (fixed - 2)..];
            let (hlen, total) = if hmsg {
                (num(sizes[0], "header size")?, num(sizes[1], "size")?)
            } else {
                (0, num(sizes[0], "size")?)
            };
            if total > MAX_PAYLOAD || hlen > total {
                bail!("bad sizes in {line:?}");
            }
            if buf.len() < eol + 2 + total + 2 {
                return Ok(None);
            }
            if &buf[eol + 2 + total..eol + 4 + total] != b"\r\n" {
                bail!("payload of {line:?} not followed by CRLF");
            }
            let sid = num(args[1], "sid")? as u64;
            let subject = args[0].to_owned();
            let mut body = buf.split_to(eol + 4 + total);
            body.advance(eol + 2);
            body.truncate(total);
            let mut body = body.freeze();
            let headers = hmsg.then(|| body.split_to(hlen));
            Ok(Some(ServerOp::Msg(Msg {
                subject,
                sid,
                reply,
                headers,
                payload: body,
            })))
        }
        _ => bail!("unknown op {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> Vec<ServerOp> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(op) = decode(&mut buf).unwrap() {
            out.push(op);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\",\"headers\":true}\r\n+OK\r\nPING\r\n\
        MSG room.1 7 5\r\nhello\r\nMSG _INBOX.a.3 9 _r 2\r\nok\r\n\
        HMSG _INBOX.a.4 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\npong\r\n-ERR 'Unknown Protocol Operation'\r\n";

    #[test]
    fn decodes_every_server_op() {
        let ops = all(STREAM);
        assert_eq!(ops.len(), 8, "{ops:?}");
        assert_eq!(
            ops[0],
            ServerOp::Info("{\"server_id\":\"x\",\"headers\":true}".into())
        );
        assert_eq!(ops[1], ServerOp::Ok);
        assert_eq!(ops[2], ServerOp::Ping);
        let ServerOp::Msg(m) = &ops[3] else {
            panic!("{:?}", ops[3])
        };
        assert_eq!(
            (m.subject.as_str(), m.sid, m.reply.as_deref()),
            ("room.1", 7, None)
        );
        assert_eq!(&m.payload[..], b"hello");
        let ServerOp::Msg(m) = &ops[4] else {
            panic!("{:?}", ops[4])
        };
        assert_eq!(m.reply.as_deref(), Some("_r"));
        assert_eq!(&m.payload[..], b"ok");
        let ServerOp::Msg(m) = &ops[5] else {
            panic!("{:?}", ops[5])
        };
        assert_eq!(m.status(), Some(503));
        assert!(m.payload.is_empty());
        assert_eq!(ops[6], ServerOp::Pong);
        assert_eq!(ops[7], ServerOp::Err("Unknown Protocol Operation".into()));
    }

    #[test]
    fn same_ops_whatever_the_pieces() {
        let whole = all(STREAM);
        for step in [1usize, 2, 3, 7, 13] {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in STREAM.chunks(step) {
                buf.extend_from_slice(chunk);
                while let Some(op) = decode(&mut buf).unwrap() {
                    got.push(op);
                }
            }
            assert_eq!(got, whole, "chunks of {step}");
        }
    }

    #[test]
    fn payload_may_contain_crlf_and_must_end_with_one() {
        let ops = all(b"MSG s 1 4\r\na\r\nb\r\n");
        let ServerOp::Msg(m) = &ops[0] else { panic!() };
        assert_eq!(&m.payload[..], b"a\r\nb");
        assert!(decode(&mut BytesMut::from(&b"MSG s 1 2\r\nabcd"[..])).is_err());
        assert!(decode(&mut BytesMut::from(&b"MSG s x 2\r\nab\r\n"[..])).is_err());
        assert!(decode(&mut BytesMut::from(&b"WHAT\r\n"[..])).is_err());
    }

    #[test]
    fn encodes_client_ops() {
        assert_eq!(
            pub_op("room.3", None, b"{}"),
            b"PUB room.3 2\r\n{}\r\n".to_vec()
        );
        assert_eq!(
            pub_op("bench.persist", Some("_INBOX.x.9"), b"ab"),
            b"PUB bench.persist _INBOX.x.9 2\r\nab\r\n".to_vec()
        );
        assert_eq!(sub_op("room.0", 1), "SUB room.0 1\r\n");
        let c = connect_op("bench");
        assert!(c.starts_with("CONNECT {") && c.ends_with("}\r\n"));
        let v: serde_json::Value = serde_json::from_str(&c[8..c.len() - 2]).unwrap();
        assert_eq!(v["verbose"], false);
        assert_eq!(v["headers"], true);
    }
}
