//! Trains the model and prints its cross-validated figures.
//!
//! ```text
//! cargo run --release -p quicktalk-moderation --example train -- /work/shared/moderation/ko-curse-dev.txt [--out PATH] [--no-write]
//!     [--epochs N] [--rate X] [--l2 X]   (defaults: the shipped settings)
//! ```
//! Reads `text|label` lines, runs nested stratified 5-fold cross-validation
//! (thresholds chosen inside each training part), prints precision / recall /
//! F1 per fold and pooled, then fits the shipped model on every line (its
//! thresholds from 5-fold held-out scores) and writes `data/weights.bin`.
//! Deterministic: the same file gives the same bytes.

use quicktalk_moderation::train::{self, Counts, Sample, Settings};
use quicktalk_moderation::{Classifier, Severity};

const FOLDS: usize = 5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut input = None;
    let mut out = concat!(env!("CARGO_MANIFEST_DIR"), "/data/weights.bin").to_string();
    let mut write = true;
    let mut settings = Settings::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().ok_or("--out needs a path")?,
            "--epochs" => settings.epochs = args.next().ok_or("--epochs N")?.parse()?,
            "--rate" => settings.rate = args.next().ok_or("--rate X")?.parse()?,
            "--l2" => settings.l2 = args.next().ok_or("--l2 X")?.parse()?,
            "--no-write" => write = false,
            _ => input = Some(a),
        }
    }
    let input = input.ok_or("usage: train DATA.txt [--out PATH] [--no-write]")?;
    let data = std::fs::read_to_string(&input)?;
    let samples = load(&data)?;
    let positives = samples.iter().filter(|s| s.label).count();
    println!("{} lines ({positives} abusive) from {input}", samples.len());
    let (mut lex_any, mut lex_strong) = (Counts::default(), Counts::default());
    for s in &samples {
        lex_any.add(s.worst.any().is_some(), s.label);
        lex_strong.add(s.worst.any() >= Some(Severity::Strong), s.label);
    }
    println!(
        "lexicon alone (no model): any hit P/R {}, strong hit P/R {}",
        pr(&lex_any),
        pr(&lex_strong)
    );

    let start = std::time::Instant::now();
    let results = train::cross_validate(&samples, FOLDS, &settings);
    println!("\nnested stratified {FOLDS}-fold cross-validation (test folds never seen by weights or thresholds):");
    println!("fold  thresholds(flag/lex/mild/hard/strict)   mask+block P / R          anything-but-allow P / R / F1");
    let (mut hard, mut any, mut s_hard, mut s_any) = Default::default();
    for (i, r) in results.iter().enumerate() {
        let t = r.thresholds;
        println!(
            "{i}     {:.2}/{:.2}/{:.2}/{:.2}/{:.2}           {}            {}",
            t.flag,
            t.lex,
            t.mild,
            t.hard,
            t.strict_flag,
            pr(&r.hard),
            prf(&r.any)
        );
        Counts::merge(&mut hard, r.hard);
        Counts::merge(&mut any, r.any);
        Counts::merge(&mut s_hard, r.strict.0);
        Counts::merge(&mut s_any, r.strict.1);
    }
    println!(
        "pooled standard: mask+block {}   anything-but-allow {}",
        pr(&hard),
        prf(&any)
    );
    println!(
        "pooled strict:   mask+block {}   anything-but-allow {}",
        pr(&s_hard),
        prf(&s_any)
    );
    println!(
        "(cross-validation took {:.1} s)",
        start.elapsed().as_secs_f64()
    );

    let model = train::final_model(&samples, FOLDS, &settings);
    let t = model.thresholds;
    println!(
        "\nshipped model: thresholds flag {:.2}, hit_flag {:.2}, lex {:.2}, mild {:.2}, hard {:.2}, strict_flag {:.2}",
        t.flag, t.hit_flag, t.lex, t.mild, t.hard, t.strict_flag
    );
    if write {
        let bytes = model.encode();
        std::fs::write(&out, &bytes)?;
        println!("wrote {out} ({} bytes)", bytes.len());
    }
    Ok(())
}

fn pr(c: &Counts) -> String {
    format!("{:.3} / {:.3}", c.precision(), c.recall())
}

fn prf(c: &Counts) -> String {
    format!("{:.3} / {:.3} / {:.3}", c.precision(), c.recall(), c.f1())
}

/// Analyses every `text|label` line (the features do not depend on the weights).
fn load(data: &str) -> Result<Vec<Sample>, String> {
    let c = Classifier::shared();
    let mut out = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (text, label) = line
            .rsplit_once('|')
            .ok_or_else(|| format!("line {}: no `|label`", n + 1))?;
        let label = match label.trim() {
            "1" => true,
            "0" => false,
            other => return Err(format!("line {}: label {other:?}", n + 1)),
        };
        let a = c.analyze(text);
        out.push(Sample {
            features: a.features,
            worst: a.worst,
            label,
        });
    }
    Ok(out)
}
