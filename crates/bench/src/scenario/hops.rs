//! `cluster`: one node and two cluster nodes in one run, at chat rates, and
//! where a cluster message's time goes (issue 16).
//!
//! For each target, each offered fan-out rate runs `repeats` times (fresh
//! subscribers and rooms on the same server, so the broker's logs grow as in
//! a long run), then one persist run. Around every run the bench reads every
//! node's `/metrics` (`quicktalk_cluster_hop_seconds{hop}`, which the
//! servers export in multi-node mode); the difference, summed over the nodes,
//! is that run's per-hop breakdown, with p50/p99 interpolated inside the
//! histogram's buckets (so they are as fine as the buckets: 0.25 ms steps up
//! to 2 ms, 1–1.5 ms steps up to 10 ms).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::fanout::{self, FanoutParams, FanoutStep};
use super::persist::{self, PersistParams, PersistResult};
use crate::report::ms;
use crate::stats::{median_index, Spread};
use crate::target::Server;

/// The hops in path order (the `hop` label values the server exports).
pub const HOPS: [&str; 9] = [
    "produce",
    "to_sequencer",
    "batch_wait",
    "commit",
    "event_produce",
    "to_node",
    "fan_out",
    "end_to_end",
    "receipt",
];

const METRIC: &str = "quicktalk_cluster_hop_seconds";

/// Cumulative bucket counts per hop, as `/metrics` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HopHists {
    /// hop → (upper bound in seconds, cumulative count), ascending bounds;
    /// `+Inf` is `f64::INFINITY`.
    pub hops: BTreeMap<String, Vec<(f64, u64)>>,
    pub sums: BTreeMap<String, f64>,
    /// `(sum, count)` of the sequencer's batch histograms
    /// (`quicktalk_commit_seconds`, `quicktalk_commit_batch_size`), by name.
    pub batches: BTreeMap<String, (f64, f64)>,
}

/// The batch histograms read besides the hops.
const BATCH_METRICS: [&str; 2] = ["quicktalk_commit_seconds", "quicktalk_commit_batch_size"];

/// One hop's summary over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HopSummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl HopHists {
    /// Reads the hop histograms out of a Prometheus text exposition.
    pub fn parse(text: &str) -> HopHists {
        let mut h = HopHists::default();
        for line in text.lines() {
            for name in BATCH_METRICS {
                let Some(rest) = line.strip_prefix(name) else {
                    continue;
                };
                let e = h.batches.entry(name.to_owned()).or_default();
                if let Some(v) = rest.strip_prefix("_sum ") {
                    e.0 += v.trim().parse::<f64>().unwrap_or(0.0);
                } else if let Some(v) = rest.strip_prefix("_count ") {
                    e.1 += v.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let (kind, rest) = if let Some(r) = rest.strip_prefix("_bucket{") {
                ("bucket", r)
            } else if let Some(r) = rest.strip_prefix("_sum{") {
                ("sum", r)
            } else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let Some(hop) = label(labels, "hop") else {
                continue;
            };
            let Ok(v) = value.trim().parse::<f64>() else {
                continue;
            };
            if kind == "sum" {
                *h.sums.entry(hop.to_owned()).or_default() += v;
                continue;
            }
            let le = match label(labels, "le") {
                Some("+Inf") => f64::INFINITY,
                Some(x) => match x.parse() {
                    Ok(x) => x,
                    Err(_) => continue,
                },
                None => continue,
            };
            let b = h.hops.entry(hop.to_owned()).or_default();
            match b.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, c)) => *c += v as u64,
                None => b.push((le, v as u64)),
            }
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
        }
        h
    }

    /// Adds another node's histograms (same bucket bounds).
    pub fn add(&mut self, other: &HopHists) {
        for (hop, buckets) in &other.hops {
            let mine = self.hops.entry(hop.clone()).or_default();
            for &(le, c) in buckets {
                match mine.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, x)) => *x += c,
                    None => mine.push((le, c)),
                }
            }
            mine.sort_by(|x, y| x.0.total_cmp(&y.0));
        }
        for (hop, s) in &other.sums {
            *self.sums.entry(hop.clone()).or_default() += s;
        }
        for (name, (sum, count)) in &other.batches {
            let e = self.batches.entry(name.clone()).or_default();
            e.0 += sum;
            e.1 += count;
        }
    }

    /// Mean messages per sequencer batch and mean commit time (ms) of a batch.
    pub fn batch_means(&self) -> Option<(f64, f64)> {
        let (size_sum, n) = *self.batches.get("quicktalk_commit_batch_size")?;
        let (secs, m) = *self.batches.get("quicktalk_commit_seconds")?;
        (n > 0.0 && m > 0.0).then(|| (size_sum / n, secs / m * 1e3))
    }

    /// What was observed after `before` was read.
    pub fn since(&self, before: &HopHists) -> HopHists {
        let mut out = HopHists::default();
        for (hop, buckets) in &self.hops {
            let old = before.hops.get(hop);
            let diff = buckets
                .iter()
                .map(|&(le, c)| {
                    let was = old
                        .and_then(|o| o.iter().find(|(b, _)| *b == le))
                        .map_or(0, |x| x.1);
                    (le, c.saturating_sub(was))
                })
                .collect();
            out.hops.insert(hop.clone(), diff);
            let s = self.sums.get(hop).copied().unwrap_or(0.0)
                - before.sums.get(hop).copied().unwrap_or(0.0);
            out.sums.insert(hop.clone(), s.max(0.0));
        }
        for (name, (sum, count)) in &self.batches {
            let (s0, c0) = before.batches.get(name).copied().unwrap_or_default();
            out.batches
                .insert(name.clone(), ((sum - s0).max(0.0), (count - c0).max(0.0)));
        }
        out
    }

    pub fn summary(&self, hop: &str) -> HopSummary {
        let Some(b) = self.hops.get(hop) else {
            return HopSummary::default();
        };
        let count = b.last().map_or(0, |x| x.1);
        if count == 0 {
            return HopSummary::default();
        }
        HopSummary {
            count,
            mean_ms: self.sums.get(hop).copied().unwrap_or(0.0) / count as f64 * 1e3,
            p50_ms: quantile(b, 0.5) * 1e3,
            p99_ms: quantile(b, 0.99) * 1e3,
        }
    }
}

/// The value of `name="…"` in a label list.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside its
/// bucket (Prometheus' `histogram_quantile`); in the `+Inf` bucket, the last
/// finite bound.
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0, |x| x.1);
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut prev_le = 0.0;
    let mut prev_c = 0u64;
    for &(le, c) in buckets {
        if c as f64 >= rank {
            if le.is_infinite() {
                return prev_le;
            }
            let in_bucket = (c - prev_c) as f64;
            let frac = if in_bucket > 0.0 {
                (rank - prev_c as f64) / in_bucket
            } else {
                1.0
            };
            return prev_le + (le - prev_le) * frac;
        }
        prev_le = le;
        prev_c = c;
    }
    prev_le
}

/// Every node's hop histograms, summed.
pub async fn scrape(server: &Server) -> anyhow::Result<HopHists> {
    let http = reqwest::Client::new();
    let mut all = HopHists::default();
    for base in server.http_bases() {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        all.add(&HopHists::parse(&text));
    }
    Ok(all)
}

#[derive(Debug, Clone)]
pub struct HopsParams {
    pub fanout: FanoutParams,
    pub persist: PersistParams,
    /// Runs of each fan-out rate.
    pub repeats: usize,
}

/// One fan-out run at one rate, with its hop breakdown.
#[derive(Debug, Clone)]
pub struct RateRun {
    pub step: FanoutStep,
    pub hops: HopHists,
}

#[derive(Debug, Clone)]
pub struct HopsResult {
    /// Per offered rate, its runs in order.
    pub rates: Vec<(f64, Vec<RateRun>)>,
    pub persist: PersistResult,
    pub persist_hops: HopHists,
}

pub async fn run(server: &Server, p: &HopsParams) -> anyhow::Result<HopsResult> {
    let mut rates = Vec::new();
    for &rate in &p.fanout.rates {
        let mut runs = Vec::new();
        for k in 0..p.repeats.max(1) {
            eprintln!("#   {} msg/s, run {}", rate, k + 1);
            let before = scrape(server).await?;
            let mut fp = p.fanout.clone();
            fp.rates = vec![rate];
            fp.repeats = 1;
            let r = fanout::run(server, &fp).await?;
            let after = scrape(server).await?;
            let step = r
                .rates
                .into_iter()
                .next()
                .and_then(|r| r.runs.into_iter().next())
                .ok_or_else(|| anyhow::anyhow!("the fan-out run measured no step"))?;
            runs.push(RateRun {
                step,
                hops: after.since(&before),
            });
        }
        rates.push((rate, runs));
    }
    eprintln!("#   persist");
    let before = scrape(server).await?;
    let persist = persist::run(server, &p.persist).await?;
    let after = scrape(server).await?;
    Ok(HopsResult {
        rates,
        persist,
        persist_hops: after.since(&before),
    })
}

/// The run whose p99 is the median one (the lower middle for an even count).
pub fn median_run(runs: &[RateRun]) -> Option<&RateRun> {
    let p99: Vec<f64> = runs.iter().map(|x| x.step.latency.p99).collect();
    median_index(&p99).map(|i| &runs[i])
}

/// One hop's `p50 | p99 | mean` cells.
fn cells(h: HopSummary) -> String {
    format!(" {} | {} | {} |", ms(h.p50_ms), ms(h.p99_ms), ms(h.mean_ms))
}

/// The markdown section of one target: fan-out per rate (median and spread of
/// the runs) and, where the server exported them, the hops of the median run.
pub fn table(title: &str, r: &HopsResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### {title}\n");
    let _ = writeln!(
        s,
        "| offered msg/s | runs | delivered/s (median) | p50 ms median (min–max) | p99 ms median (min–max) | lost | saturated |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---|");
    for (rate, runs) in &r.rates {
        let p50: Vec<f64> = runs.iter().map(|x| x.step.latency.p50).collect();
        let p99: Vec<f64> = runs.iter().map(|x| x.step.latency.p99).collect();
        let delivered =
            Spread::of(&runs.iter().map(|x| x.step.delivered).collect::<Vec<_>>()).median;
        let lost: u64 = runs.iter().map(|x| x.step.lost).sum();
        let sat = runs.iter().filter(|x| x.step.saturated.is_some()).count();
        let spread = |v: &[f64]| {
            let x = Spread::of(v);
            format!("{} ({}–{})", ms(x.median), ms(x.min), ms(x.max))
        };
        let _ = writeln!(
            s,
            "| {rate:.0} | {} | {delivered:.0} | {} | {} | {lost} | {} |",
            runs.len(),
            spread(&p50),
            spread(&p99),
            if sat == 0 {
                "no".to_owned()
            } else {
                format!("{sat} of {}", runs.len())
            }
        );
    }
    let p = &r.persist;
    let _ = writeln!(
        s,
        "\npersist: {:.0} receipts/s ({} connections × {} in flight), receipt p50 {} ms, p99 {} ms, errors {}\n",
        p.rate,
        p.params.connections,
        p.params.window,
        ms(p.latency.p50),
        ms(p.latency.p99),
        p.errors
    );
    let exported = r
        .rates
        .iter()
        .flat_map(|(_, runs)| runs)
        .any(|x| x.hops.summary("end_to_end").count > 0);
    if !exported {
        return s;
    }
    let _ = writeln!(
        s,
        "Hops (ms; summed over the nodes; `to_node`, `fan_out` and `end_to_end` are counted once per node; fan-out: the median run by p99):\n"
    );
    let mut head = "| hop |".to_owned();
    let mut rule = "|---|".to_owned();
    for (rate, _) in &r.rates {
        let _ = write!(head, " {rate:.0}/s p50 | p99 | mean |");
        rule.push_str("---:|---:|---:|");
    }
    head.push_str(" persist p50 | p99 | mean |");
    rule.push_str("---:|---:|---:|");
    let _ = writeln!(s, "{head}\n{rule}");
    for hop in HOPS {
        let mut row = format!("| {hop} |");
        for (_, runs) in &r.rates {
            let h = median_run(runs)
                .map(|x| x.hops.summary(hop))
                .unwrap_or_default();
            row.push_str(&cells(h));
        }
        row.push_str(&cells(r.persist_hops.summary(hop)));
        let _ = writeln!(s, "{row}");
    }
    let mut batches = Vec::new();
    for (rate, runs) in &r.rates {
        if let Some((n, t)) = median_run(runs).and_then(|x| x.hops.batch_means()) {
            batches.push(format!("{rate:.0}/s: {n:.1} messages in {} ms", ms(t)));
        }
    }
    if let Some((n, t)) = r.persist_hops.batch_means() {
        batches.push(format!("persist: {n:.0} messages in {} ms", ms(t)));
    }
    if !batches.is_empty() {
        let _ = writeln!(
            s,
            "\nSequencer batches (mean size, mean commit): {}",
            batches.join("; ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP quicktalk_cluster_hop_seconds Time
# TYPE quicktalk_cluster_hop_seconds histogram
quicktalk_cluster_hop_seconds_bucket{hop="commit",le="0.001"} 2
quicktalk_cluster_hop_seconds_bucket{hop="commit",le="0.002"} 6
quicktalk_cluster_hop_seconds_bucket{hop="commit",le="+Inf"} 10
quicktalk_cluster_hop_seconds_sum{hop="commit"} 0.03
quicktalk_cluster_hop_seconds_count{hop="commit"} 10
quicktalk_commit_seconds_bucket{le="0.001"} 99
quicktalk_commit_seconds_sum 0.5
quicktalk_commit_seconds_count 10
quicktalk_commit_batch_size_sum 40
quicktalk_commit_batch_size_count 10
"#;

    #[test]
    fn parses_sums_and_subtracts_histograms() {
        let h = HopHists::parse(TEXT);
        assert_eq!(
            h.hops["commit"],
            vec![(0.001, 2), (0.002, 6), (f64::INFINITY, 10)]
        );
        let mut two = h.clone();
        two.add(&h);
        assert_eq!(two.summary("commit").count, 20);
        let d = two.since(&h);
        assert_eq!(d, h);
        assert_eq!(d.batch_means(), h.batch_means());
        let s = h.summary("commit");
        assert_eq!(s.count, 10);
        assert!((s.mean_ms - 3.0).abs() < 1e-9);
        // Rank 5 of 10 lies 3/4 into the (1 ms, 2 ms] bucket.
        assert!((s.p50_ms - 1.75).abs() < 1e-9, "{}", s.p50_ms);
        // In the +Inf bucket: the last finite bound.
        assert!((s.p99_ms - 2.0).abs() < 1e-9);
        assert_eq!(h.summary("receipt"), HopSummary::default());
        let (n, t) = h.batch_means().unwrap();
        assert!((n - 4.0).abs() < 1e-9 && (t - 50.0).abs() < 1e-9, "{n} {t}");
    }
}
