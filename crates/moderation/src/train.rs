//! Training and validation of the model (no I/O: `examples/train.rs` reads the
//! data file and writes the weights).
//!
//! - [`fit`]: logistic regression by AdaGrad SGD with L2, examples shuffled with
//!   a fixed-seed generator, so the same data gives the same bytes.
//! - [`choose_thresholds`]: from held-out scores. `lex`, `mild` and `hard` maximize
//!   the recall of `mask`+`block` subject to its precision ≥ [`HARD_PRECISION`];
//!   then `flag` and `hit_flag` maximize the F1 of "anything but allow"; `strict_flag`
//!   maximizes that F1 under the strict policy.
//! - [`cross_validate`]: stratified k folds; inside each training part, an inner
//!   k-fold gives held-out scores to choose the thresholds, then the model is fit
//!   on the whole training part and judged on the test fold, which nothing above
//!   has seen.

use crate::model::{Model, BITS};
use crate::policy::{decide, Action, Policy, Thresholds, Worst};

/// Minimum precision of `mask`+`block` wanted on held-out scores.
pub const HARD_PRECISION: f64 = 0.96;

/// One labelled message, analysed.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its features.
    pub features: Vec<(u32, f32)>,
    /// The worst lexicon severities found.
    pub worst: Worst,
    /// Abusive (label 1).
    pub label: bool,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Passes over the data.
    pub epochs: usize,
    /// AdaGrad base step.
    pub rate: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            epochs: 15,
            rate: 0.1,
            l2: 1e-6,
            seed: 0x5eed_2024,
        }
    }
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Fits a model on `samples` (indices into `all`).
pub fn fit(all: &[Sample], samples: &[usize], settings: &Settings) -> Model {
    let n = 1usize << BITS;
    let mut w = vec![0.0f32; n];
    let mut g2 = vec![1e-6f32; n];
    let mut bias = 0.0f32;
    let mut bias_g2 = 1e-6f32;
    let mut order = samples.to_vec();
    let mut rng = Rng::new(settings.seed);
    // Polyak averaging: the weights averaged over the second half of the passes.
    let mut avg = vec![0.0f32; n];
    let mut avg_bias = 0.0f32;
    let mut averaged = 0.0f32;
    for epoch in 0..settings.epochs {
        if epoch >= settings.epochs / 2 && epoch > 0 {
            for (a, x) in avg.iter_mut().zip(&w) {
                *a += x;
            }
            avg_bias += bias;
            averaged += 1.0;
        }
        rng.shuffle(&mut order);
        for &i in &order {
            let s = &all[i];
            let mut z = bias;
            for &(f, v) in &s.features {
                z += w[f as usize] * v;
            }
            let p = crate::model::sigmoid(z);
            let err = p - if s.label { 1.0 } else { 0.0 };
            bias_g2 += err * err;
            bias -= settings.rate * err / bias_g2.sqrt();
            for &(f, v) in &s.features {
                let f = f as usize;
                let g = err * v + settings.l2 * w[f];
                g2[f] += g * g;
                w[f] -= settings.rate * g / g2[f].sqrt();
            }
        }
    }
    for (a, x) in avg.iter_mut().zip(&w) {
        *a = (*a + x) / (averaged + 1.0);
    }
    avg_bias = (avg_bias + bias) / (averaged + 1.0);
    Model {
        bias: avg_bias,
        weights: avg,
        thresholds: Thresholds::default(),
    }
}

/// Precision, recall, F1 and counts of one decision.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    /// Predicted and abusive.
    pub tp: usize,
    /// Predicted, not abusive.
    pub fp: usize,
    /// Abusive, not predicted.
    pub fn_: usize,
}

impl Counts {
    /// Adds one example.
    pub fn add(&mut self, predicted: bool, label: bool) {
        match (predicted, label) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, true) => self.fn_ += 1,
            (false, false) => {}
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, o: Counts) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }

    /// tp / (tp + fp), 1 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }

    /// tp / (tp + fn).
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            0.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }

    /// F-beta.
    pub fn f_beta(&self, beta: f64) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        let b2 = beta * beta;
        if p + r == 0.0 {
            0.0
        } else {
            (1.0 + b2) * p * r / (b2 * p + r)
        }
    }

    /// F1.
    pub fn f1(&self) -> f64 {
        self.f_beta(1.0)
    }
}

/// Tallies of `mask`+`block` and of "anything but allow" under `policy`.
pub fn tally(
    samples: &[Sample],
    idx: &[usize],
    scores: &[f32],
    t: &Thresholds,
    policy: Policy,
) -> (Counts, Counts) {
    let (mut hard, mut any) = (Counts::default(), Counts::default());
    for (k, &i) in idx.iter().enumerate() {
        let s = &samples[i];
        let a = decide(policy, scores[k], s.worst, t);
        hard.add(a >= Action::Mask, s.label);
        any.add(a != Action::Allow, s.label);
    }
    (hard, any)
}

fn grid() -> impl Iterator<Item = f32> + Clone {
    (1..100).map(|i| i as f32 / 100.0)
}

/// Chooses thresholds from held-out `scores` of `samples[idx]`.
pub fn choose_thresholds(samples: &[Sample], idx: &[usize], scores: &[f32]) -> Thresholds {
    let mut t = Thresholds::default();
    let mut best = (-1.0f64, 0.0f64);
    for lex in grid() {
        for mild in grid().filter(|m| *m >= lex && (m * 100.0).round() as i32 % 2 == 0) {
            for hard in grid().filter(|h| *h >= mild) {
                let cand = Thresholds {
                    lex,
                    mild,
                    hard,
                    ..t
                };
                let (h, _) = tally(samples, idx, scores, &cand, Policy::Standard);
                if h.precision() >= HARD_PRECISION {
                    // Prefer recall, then the higher (safer) thresholds.
                    let key = (h.recall(), (lex + mild + hard) as f64);
                    if key > best {
                        best = key;
                        (t.lex, t.mild, t.hard) = (lex, mild, hard);
                    }
                }
            }
        }
    }
    let mut best_f1 = -1.0;
    let mut best_strict = -1.0;
    let (mut flag_best, mut hit_best) = (t.flag, t.hit_flag);
    for flag in grid() {
        for hit_flag in grid().filter(|h| *h <= flag) {
            let cand = Thresholds {
                flag,
                hit_flag,
                ..t
            };
            let (_, any) = tally(samples, idx, scores, &cand, Policy::Standard);
            if any.f1() > best_f1 {
                best_f1 = any.f1();
                (flag_best, hit_best) = (flag, hit_flag);
            }
        }
        let cand = Thresholds {
            strict_flag: flag,
            ..t
        };
        let (_, any) = tally(samples, idx, scores, &cand, Policy::Strict);
        if any.f1() > best_strict {
            best_strict = any.f1();
            t.strict_flag = flag;
        }
    }
    t.flag = flag_best;
    t.hit_flag = hit_best;
    t
}

/// Stratified folds of `idx`: `k` lists, each about as positive as the whole.
pub fn folds(samples: &[Sample], idx: &[usize], k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(seed);
    let mut out = vec![Vec::new(); k];
    for label in [true, false] {
        let mut part: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| samples[i].label == label)
            .collect();
        rng.shuffle(&mut part);
        for (j, i) in part.into_iter().enumerate() {
            out[j % k].push(i);
        }
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}

/// Held-out scores for every sample of `idx` (each scored by a model fit on
/// the other folds), in `idx` order.
pub fn held_out_scores(
    samples: &[Sample],
    idx: &[usize],
    k: usize,
    settings: &Settings,
) -> Vec<f32> {
    let parts = folds(samples, idx, k, settings.seed ^ 0xF01D);
    let mut by_sample = std::collections::HashMap::new();
    for (j, test) in parts.iter().enumerate() {
        let train = all_but(&parts, j);
        let m = fit(samples, &train, settings);
        for &i in test {
            by_sample.insert(i, m.score(&samples[i].features));
        }
    }
    idx.iter().map(|i| by_sample[i]).collect()
}

/// Every index of `parts` except those of part `j` (a fold's training part).
fn all_but(parts: &[Vec<usize>], j: usize) -> Vec<usize> {
    parts
        .iter()
        .enumerate()
        .filter(|(o, _)| *o != j)
        .flat_map(|(_, p)| p.iter().copied())
        .collect()
}

/// One test fold's result.
#[derive(Debug, Clone)]
pub struct FoldResult {
    /// Thresholds chosen inside the training part.
    pub thresholds: Thresholds,
    /// `mask`+`block` on the test fold (standard policy).
    pub hard: Counts,
    /// Anything but allow on the test fold (standard policy).
    pub any: Counts,
    /// The same two under the strict policy.
    pub strict: (Counts, Counts),
}

/// Nested stratified `k`-fold cross-validation over all samples.
pub fn cross_validate(samples: &[Sample], k: usize, settings: &Settings) -> Vec<FoldResult> {
    let all: Vec<usize> = (0..samples.len()).collect();
    let parts = folds(samples, &all, k, settings.seed);
    let mut out = Vec::new();
    for (j, test) in parts.iter().enumerate() {
        let train = all_but(&parts, j);
        let inner = held_out_scores(samples, &train, k, settings);
        let thresholds = choose_thresholds(samples, &train, &inner);
        let mut m = fit(samples, &train, settings);
        m.thresholds = thresholds;
        let scores: Vec<f32> = test
            .iter()
            .map(|&i| m.score(&samples[i].features))
            .collect();
        let (hard, any) = tally(samples, test, &scores, &thresholds, Policy::Standard);
        let strict = tally(samples, test, &scores, &thresholds, Policy::Strict);
        out.push(FoldResult {
            thresholds,
            hard,
            any,
            strict,
        });
    }
    out
}

/// The model to ship: thresholds from `k`-fold held-out scores over all
/// samples, weights fit on all of them.
pub fn final_model(samples: &[Sample], k: usize, settings: &Settings) -> Model {
    let all: Vec<usize> = (0..samples.len()).collect();
    let scores = held_out_scores(samples, &all, k, settings);
    let thresholds = choose_thresholds(samples, &all, &scores);
    let mut m = fit(samples, &all, settings);
    m.thresholds = thresholds;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_toy_problem() {
        let samples: Vec<Sample> = (0..200)
            .map(|i| Sample {
                features: vec![((i % 2) as u32 * 7 + 1, 1.0), (100 + i as u32, 1.0)],
                worst: Worst::default(),
                label: i % 2 == 1,
            })
            .collect();
        let idx: Vec<usize> = (0..200).collect();
        let m = fit(&samples, &idx, &Settings::default());
        assert!(m.score(&samples[1].features) > 0.9);
        assert!(m.score(&samples[0].features) < 0.1);
        let f = folds(&samples, &idx, 5, 1);
        assert!(f
            .iter()
            .all(|p| p.len() == 40 && p.iter().filter(|&&i| samples[i].label).count() == 20));
    }
}
