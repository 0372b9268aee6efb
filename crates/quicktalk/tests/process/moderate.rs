//! `quicktalk moderate` as a process (contract §5): lines in, one JSON verdict
//! per line out, no server, database or network; a bad line is an error object.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

fn moderate(args: &[&str], input: &[u8]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quicktalk"))
        .arg("moderate")
        .args(args)
        .env_remove("QUICKTALK_POLICY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting quicktalk moderate");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn classifies_each_line_and_masks_exactly_the_offending_characters() {
    let input: Vec<u8> = [
        "안녕하세요 반갑습니다\n".as_bytes(),
        "이 시1발 뭐하냐\n".as_bytes(),
        b"shut the f*ck up\n",
        b"bad \xff\xfe line\n",
        "시발점에서 출발".as_bytes(), // no final newline
    ]
    .concat();
    let out = moderate(&[], &input);
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[0]["action"], "allow");
    assert_eq!(out[0]["text"], "안녕하세요 반갑습니다");
    assert_eq!(out[0]["categories"], serde_json::json!([]));
    assert_eq!(out[1]["action"], "mask");
    assert_eq!(out[1]["text"], "이 *** 뭐하냐");
    assert_eq!(out[1]["categories"], serde_json::json!(["profanity"]));
    assert_eq!(out[2]["action"], "mask");
    assert_eq!(out[2]["text"], "shut the **** up");
    assert_eq!(out[3]["error"]["code"], "invalid_utf8");
    assert_eq!(out[3]["line"], 4);
    assert_eq!(out[4]["text"], "시발점에서 출발");
    assert_ne!(out[4]["action"], "mask");
    for v in out.iter().filter(|v| v.get("error").is_none()) {
        let s = v["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s), "{v}");
    }
}

#[test]
fn policy_flag_selects_strict_and_off() {
    let strict = moderate(&["--policy", "strict"], b"you are stupid\n");
    assert_eq!(strict[0]["action"], "mask");
    assert_eq!(strict[0]["text"], "you are ******");
    let off = moderate(&["--policy", "off"], "이 시발 뭐하냐\n".as_bytes());
    assert_eq!(off[0]["action"], "allow");
    assert_eq!(off[0]["text"], "이 시발 뭐하냐");
}
