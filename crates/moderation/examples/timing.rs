//! Hot-path cost of `classify`: runs every line of a file (default: the
//! innocent and abusive samples below) many times and prints ns per message.
//!
//! ```text
//! cargo run --release -p quicktalk-moderation --example timing -- [FILE] [ROUNDS]
//! ```

use std::time::Instant;

use quicktalk_moderation::{Classifier, Policy};

const SAMPLES: &[&str] = &[
    "안녕하세요 오늘 날씨 좋네요",
    "이 시1발 뭐하냐 진짜",
    "ㅋㅋㅋㅋㅋㅋ 개웃기네",
    "you are such an idiot lol",
    "시발점에서 다시 시작하자",
    "tlqkf 왜 이래",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: Vec<String> = match args.next() {
        Some(path) => std::fs::read_to_string(path)
            .expect("reading the file")
            .lines()
            .map(|l| l.rsplit_once('|').map_or(l, |(t, _)| t).to_string())
            .collect(),
        None => SAMPLES.iter().map(|s| s.to_string()).collect(),
    };
    let rounds: usize = args.next().map_or(20, |r| r.parse().expect("ROUNDS"));
    let c = Classifier::shared();
    for policy in [Policy::Standard, Policy::Strict, Policy::Off] {
        let start = Instant::now();
        let mut masked = 0usize;
        for _ in 0..rounds {
            for l in &lines {
                masked += c.classify(l, policy).spans.len();
            }
        }
        let n = rounds * lines.len();
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{:<8} {n} messages, {ns:.0} ns/message ({:.0} messages/s), {masked} spans",
            policy.name(),
            1e9 / ns
        );
    }
}
