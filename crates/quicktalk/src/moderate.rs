//! `quicktalk moderate` (contract §5): UTF-8 lines on stdin, one JSON verdict
//! per line on stdout, `{"action","categories","score","text"}` where `text` is
//! what would be stored (masked spans as `*`, one per character; for `block`,
//! the text with every hit masked, for a reviewer). A line that is not UTF-8
//! gets `{"line":N,"error":{"code":"invalid_utf8","message"}}` and the run
//! goes on. Buffered both ways; the classifier's per-thread buffers are reused.

use std::io::{BufRead as _, BufReader, BufWriter, Read, Write};

use quicktalk_moderation::{Categories, Classifier, Policy};
use serde::Serialize;

#[derive(Serialize)]
struct Verdict<'a> {
    action: &'static str,
    #[serde(serialize_with = "category_names")]
    categories: Categories,
    score: f64,
    text: &'a str,
}

fn category_names<S: serde::Serializer>(c: &Categories, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(c.iter().map(|c| c.name()))
}

#[derive(Serialize)]
struct LineError {
    line: u64,
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

/// Runs the command on the process's stdin and stdout.
pub fn run(policy: Policy) -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match moderate(stdin, stdout, policy) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // A closed stdout (`| head`) is a normal way to stop.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quicktalk moderate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Classifies each line of `input` and writes one JSON object per line to `output`.
pub fn moderate(input: impl Read, output: impl Write, policy: Policy) -> std::io::Result<()> {
    let classifier = Classifier::shared();
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let mut output = BufWriter::with_capacity(64 * 1024, output);
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        n += 1;
        let mut bytes = &line[..];
        if let Some(b) = bytes.strip_suffix(b"\n") {
            bytes = b.strip_suffix(b"\r").unwrap_or(b);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                let v = classifier.classify(text, policy);
                let masked;
                let stored = if v.spans.is_empty() {
                    text
                } else {
                    masked = v.masked(text);
                    &masked
                };
                let out = Verdict {
                    action: v.action.name(),
                    categories: v.categories,
                    score: (v.score as f64 * 1000.0).round() / 1000.0,
                    text: stored,
                };
                serde_json::to_writer(&mut output, &out)?;
            }
            Err(e) => {
                let out = LineError {
                    line: n,
                    error: ErrorBody {
                        code: "invalid_utf8",
                        message: format!(
                            "line {n} is not valid UTF-8 (first bad byte at offset {})",
                            e.valid_up_to()
                        ),
                    },
                };
                serde_json::to_writer(&mut output, &out)?;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line_and_bad_utf8_reported() {
        let input: &[u8] = b"hello\r\n\xff\xfe bad\nthe assassin\n";
        let mut out = Vec::new();
        moderate(input, &mut out, Policy::Standard).unwrap();
        let lines: Vec<serde_json::Value> = std::str::from_utf8(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["action"], "allow");
        assert_eq!(lines[0]["text"], "hello");
        assert_eq!(lines[1]["error"]["code"], "invalid_utf8");
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[2]["text"], "the assassin");
    }
}
