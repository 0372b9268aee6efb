//! Prints the verdict on each argument (or each stdin line) under every policy.
//!
//! ```text
//! cargo run -p quicktalk-moderation --example classify -- "이 시1발 뭐하냐" "assassin"
//! ```

use quicktalk_moderation::{Classifier, Policy};

fn main() {
    let c = Classifier::shared();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lines: Vec<String> = if args.is_empty() {
        std::io::stdin().lines().map_while(Result::ok).collect()
    } else {
        args
    };
    for text in &lines {
        for p in [Policy::Standard, Policy::Strict] {
            let v = c.classify(text, p);
            let cats: Vec<&str> = v.categories.iter().map(|c| c.name()).collect();
            println!(
                "{:<8} {:<5} {:.3} {:?} {:?} -> {}",
                p.name(),
                v.action.name(),
                v.score,
                cats,
                c.entries_found(text),
                v.masked(text)
            );
        }
    }
}
