//! Rendering results: markdown tables per scenario (every target), the machine
//! description, the latency-vs-delivered-rate SVG plot, and the one-line
//! `quicktalk/<peer> ratios: ...` summaries (RabbitMQ, NATS).

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::proc::Machine;
use crate::scenario::connect::ConnectResult;
use crate::scenario::fanout::{FanoutRate, FanoutResult};
use crate::scenario::idle::IdleResult;
use crate::scenario::persist::PersistResult;
use crate::stats::{Percentiles, Spread};
use crate::target::Kind;

/// A scenario's outcome: not run, failed (with why), or its result.
pub type Outcome<T> = Option<Result<T, String>>;

/// Everything measured on one target.
#[derive(Debug)]
pub struct TargetRun {
    pub kind: Kind,
    pub idle: Outcome<IdleResult>,
    pub fanout: Outcome<FanoutResult>,
    pub connect: Outcome<ConnectResult>,
    pub persist: Outcome<PersistResult>,
    /// Setup facts and server problems, prefixed with the scenario.
    pub notes: Vec<String>,
}

impl TargetRun {
    pub fn new(kind: Kind) -> TargetRun {
        TargetRun {
            kind,
            idle: None,
            fanout: None,
            connect: None,
            persist: None,
            notes: Vec::new(),
        }
    }
}

fn ok<T>(o: &Outcome<T>) -> Option<&T> {
    o.as_ref().and_then(|r| r.as_ref().ok())
}

/// QuickTalk's figure divided by a peer's (RabbitMQ, NATS), per headline metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ratios {
    pub delivered: Option<f64>,
    pub p99: Option<f64>,
    pub rss_per_conn: Option<f64>,
    pub connects: Option<f64>,
    pub persist: Option<f64>,
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => Some(a / b),
        _ => None,
    }
}

/// The highest offered rate both targets sustained, with each one's median
/// p99 there.
pub fn common_sustained(qt: &FanoutResult, peer: &FanoutResult) -> Option<(f64, f64, f64)> {
    qt.rates
        .iter()
        .filter(|s| s.saturated.is_none())
        .filter_map(|a| {
            peer.rates
                .iter()
                .find(|b| b.saturated.is_none() && (b.offered - a.offered).abs() < 1e-6)
                .map(|b| (a.offered, a.p99.median, b.p99.median))
        })
        .max_by(|x, y| x.0.total_cmp(&y.0))
}

/// The largest N both targets held completely, with each one's RSS per connection.
pub fn common_idle(qt: &IdleResult, rmq: &IdleResult) -> Option<(usize, f64, f64)> {
    qt.complete()
        .filter_map(|a| {
            rmq.complete()
                .find(|b| b.n == a.n)
                .map(|b| (a.n, a.rss_per_conn, b.rss_per_conn))
        })
        .max_by_key(|x| x.0)
}

/// QuickTalk (`qt`) against one peer (`rmq`: RabbitMQ or NATS).
pub fn ratios(qt: &TargetRun, rmq: &TargetRun) -> Ratios {
    let (qf, rf) = (ok(&qt.fanout), ok(&rmq.fanout));
    let (qi, ri) = (ok(&qt.idle), ok(&rmq.idle));
    Ratios {
        delivered: div(
            qf.and_then(FanoutResult::peak_delivered),
            rf.and_then(FanoutResult::peak_delivered),
        ),
        p99: qf
            .zip(rf)
            .and_then(|(a, b)| common_sustained(a, b))
            .and_then(|(_, a, b)| div(Some(a), Some(b))),
        rss_per_conn: qi
            .zip(ri)
            .and_then(|(a, b)| common_idle(a, b))
            .and_then(|(_, a, b)| div(Some(a), Some(b))),
        connects: div(
            ok(&qt.connect).map(|c| c.rate),
            ok(&rmq.connect).map(|c| c.rate),
        ),
        persist: div(
            ok(&qt.persist).map(|c| c.rate),
            ok(&rmq.persist).map(|c| c.rate),
        ),
    }
}

/// A ratio with three significant digits (`n/a` when unknown).
pub fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(0.0) => "0".into(),
        Some(v) => {
            let mag = v.abs().log10().floor() as i32;
            let decimals = (2 - mag).clamp(0, 6) as usize;
            format!("{v:.decimals$}")
        }
    }
}

/// A closing line of `compare`: `quicktalk/<peer> ratios: ...`.
pub fn ratio_line(peer: Kind, r: &Ratios) -> String {
    format!(
        "quicktalk/{} ratios: delivered={} p99={} rss_per_conn={} connects={} persist={}",
        peer.name(),
        fmt_ratio(r.delivered),
        fmt_ratio(r.p99),
        fmt_ratio(r.rss_per_conn),
        fmt_ratio(r.connects),
        fmt_ratio(r.persist)
    )
}

/// Milliseconds with 3 significant figures or so (shared by the reports).
pub(crate) fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn pcts(p: &Percentiles) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        ms(p.p50),
        ms(p.p90),
        ms(p.p99),
        ms(p.p999),
        ms(p.max)
    )
}

fn failed_row(out: &mut String, kind: Kind, cols: usize, e: &str) {
    let _ = write!(
        out,
        "| {} | failed: {} |",
        kind.title(),
        e.replace('|', "/")
    );
    for _ in 2..cols {
        out.push_str(" |");
    }
    out.push('\n');
}

/// The idle table (both targets).
pub fn idle_table(runs: &[&TargetRun]) -> String {
    let mut s = String::from(
        "| target | N | open | server RSS (MB) | RSS growth / conn (KiB) | TCP mem (pages) | TCP mem / conn (B) | setup (s) | note |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in runs {
        match &r.idle {
            None => {}
            Some(Err(e)) => failed_row(&mut s, r.kind, 9, e),
            Some(Ok(i)) => {
                let _ = writeln!(
                    s,
                    "| {} | 0 | 0 | {:.1} | — | {} | — | — | baseline |",
                    r.kind.title(),
                    i.baseline_rss_kb as f64 / 1024.0,
                    i.baseline_sock.mem_pages
                );
                for l in &i.levels {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.1} | {:.2} | {} | {:.0} | {:.1} | {} |",
                        r.kind.title(),
                        l.n,
                        l.connected,
                        l.rss_kb as f64 / 1024.0,
                        l.rss_per_conn / 1024.0,
                        l.sock.mem_pages,
                        l.sock_per_conn,
                        l.setup_secs,
                        l.error.as_deref().unwrap_or("").replace('|', "/")
                    );
                }
                for (n, why) in &i.skipped {
                    let _ = writeln!(
                        s,
                        "| {} | {n} | — | — | — | — | — | — | skipped: {} |",
                        r.kind.title(),
                        why.replace('|', "/")
                    );
                }
            }
        }
    }
    s
}

/// `median (min–max)` of a figure over repeated runs (the range left out for
/// a single run).
fn spread(sp: &Spread, runs: usize, f: fn(f64) -> String) -> String {
    if runs <= 1 {
        f(sp.median)
    } else {
        format!("{} ({}–{})", f(sp.median), f(sp.min), f(sp.max))
    }
}

fn rate_row(s: &mut String, kind: Kind, r: &FanoutRate) {
    let m = r.median();
    let n = r.runs.len();
    let _ = writeln!(
        s,
        "| {} | {:.0} | {:.0} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} |",
        kind.title(),
        r.offered,
        r.offered_deliveries,
        n,
        m.sent_rate,
        spread(&r.delivered, n, |v| format!("{v:.0}")),
        spread(&r.p50, n, ms),
        spread(&r.p99, n, ms),
        ms(r.p999.median),
        ms(r.max.median),
        r.lost,
        m.cpu.server_pct,
        m.cpu.bench_pct,
        r.saturated
            .as_deref()
            .map(|w| format!("saturated: {w}"))
            .unwrap_or_else(|| "sustained".into())
            .replace('|', "/")
    );
}

/// The fan-out table (every target, one row per offered rate): medians and
/// ranges over the runs (p99.9 and max: medians); sent and CPU of the median
/// run; lost summed over the runs.
pub fn fanout_table(runs: &[&TargetRun]) -> String {
    let mut s = String::from(
        "| target | offered msg/s | offered deliveries/s | runs | sent msg/s | delivered/s median (min–max) | p50 ms median (min–max) | p99 ms median (min–max) | p99.9 ms | max ms | lost | server CPU % | bench CPU % | status |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in runs {
        match &r.fanout {
            None => {}
            Some(Err(e)) => failed_row(&mut s, r.kind, 14, e),
            Some(Ok(f)) => {
                for rate in &f.rates {
                    rate_row(&mut s, r.kind, rate);
                }
            }
        }
    }
    s
}

/// The largest `(max − min) / median` of delivered/s and of p99 over the
/// sustained rates of a fan-out result: how far one run may stray.
pub fn worst_relative_range(f: &FanoutResult) -> Option<(f64, f64)> {
    let sustained: Vec<&FanoutRate> = f
        .rates
        .iter()
        .filter(|r| r.saturated.is_none() && r.runs.len() > 1)
        .collect();
    if sustained.is_empty() {
        return None;
    }
    let worst = |g: fn(&FanoutRate) -> f64| sustained.iter().map(|r| g(r)).fold(0.0, f64::max);
    Some((
        worst(|r| r.delivered.relative_range()),
        worst(|r| r.p99.relative_range()),
    ))
}

pub fn connect_table(runs: &[&TargetRun]) -> String {
    let mut s = String::from(
        "| target | connectors | connects | window (s) | connects/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | server CPU % | bench CPU % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        match &r.connect {
            None => {}
            Some(Err(e)) => failed_row(&mut s, r.kind, 13, e),
            Some(Ok(c)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.1} | {:.0} | {} | {} | {:.0} | {:.0} |",
                    r.kind.title(),
                    c.params.concurrency,
                    c.connects,
                    c.secs,
                    c.rate,
                    pcts(&c.latency),
                    c.errors,
                    c.cpu.server_pct,
                    c.cpu.bench_pct
                );
            }
        }
    }
    s
}

pub fn persist_table(runs: &[&TargetRun]) -> String {
    let mut s = String::from(
        "| target | connections × in flight | receipts | window (s) | receipts/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | server CPU % | bench CPU % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        match &r.persist {
            None => {}
            Some(Err(e)) => failed_row(&mut s, r.kind, 13, e),
            Some(Ok(p)) => {
                let _ = writeln!(
                    s,
                    "| {} | {} × {} | {} | {:.1} | {:.0} | {} | {} | {:.0} | {:.0} |",
                    r.kind.title(),
                    p.params.connections,
                    p.params.window,
                    p.receipts,
                    p.secs,
                    p.rate,
                    pcts(&p.latency),
                    p.errors,
                    p.cpu.server_pct,
                    p.cpu.bench_pct
                );
            }
        }
    }
    s
}

/// Errors seen by the scenarios (first error per scenario) plus the notes.
pub fn problems(runs: &[&TargetRun]) -> String {
    let mut s = String::new();
    for r in runs {
        let mut lines = Vec::new();
        if let Some(Ok(f)) = &r.fanout {
            if let Some(e) = &f.first_error {
                lines.push(format!("fanout: first subscriber error: {e}"));
            }
        }
        if let Some(Ok(c)) = &r.connect {
            if let Some(e) = &c.first_error {
                lines.push(format!("connect: {} errors, first: {e}", c.errors));
            }
        }
        if let Some(Ok(p)) = &r.persist {
            if let Some(e) = &p.first_error {
                lines.push(format!(
                    "persist: {} connection errors, first: {e}",
                    p.errors
                ));
            }
        }
        lines.extend(r.notes.iter().cloned());
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(s, "**{}**\n", r.kind.title());
        for l in lines {
            let _ = writeln!(s, "- {}", l.replace('\n', "\n  "));
        }
        s.push('\n');
    }
    s
}

/// Describes each scenario's parameters (taken from whichever target ran).
fn params_line<T>(
    runs: &[&TargetRun],
    pick: impl Fn(&TargetRun) -> Option<&T>,
    f: impl Fn(&T) -> String,
) -> String {
    runs.iter().find_map(|r| pick(r)).map(f).unwrap_or_default()
}

/// The whole markdown report.
#[allow(clippy::too_many_arguments)]
pub fn markdown(
    date: &str,
    command: &str,
    total_secs: f64,
    machine: &Machine,
    runs: &[&TargetRun],
    ratios: &[(Kind, Ratios)],
    svg_name: &str,
    run_notes: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# QuickTalk vs RabbitMQ (Web-STOMP) and NATS: {date}\n");
    let order = runs
        .iter()
        .map(|r| r.kind.title())
        .collect::<Vec<_>>()
        .join(", then ");
    let _ = writeln!(
        s,
        "`{command}`: {total_secs:.0} s in total ({:.1} min). Server and load generator share the machine \
         (loopback only); scenarios ran interleaved, {order} with the same parameters. \
         QuickTalk is started fresh (temp data dir, `--log warn`) for every scenario, and so is NATS \
         (the bench's own nats-server: core NATS over WebSocket, JetStream for persist); RabbitMQ is the local broker.\n",
        total_secs / 60.0
    );
    for n in run_notes {
        let _ = writeln!(s, "- {n}");
    }
    if !run_notes.is_empty() {
        s.push('\n');
    }
    machine_section(&mut s, machine);
    let _ = writeln!(
        s,
        "- load average (1/5/15 min) before the run: {}\n",
        machine.loadavg
    );

    let _ = writeln!(s, "## idle\n");
    let _ = writeln!(
        s,
        "{}\n",
        params_line(
            runs,
            |r| ok(&r.idle),
            |i: &IdleResult| {
                format!(
            "Each connection: WebSocket + CONNECT + SUBSCRIBE to one room (NATS: CONNECT + SUB to `room.N`, each confirmed by PING/PONG). Levels are cumulative; growth per connection = (RSS(N) − RSS(baseline)) / N, read from `/proc/PID/status` VmRSS after a settle. TCP mem is `/proc/net/sockstat` (machine-wide, both ends of each loopback connection). Levels: {:?}.",
            i.levels.iter().map(|l| l.n).collect::<Vec<_>>()
        )
            }
        )
    );
    s.push_str(&idle_table(runs));

    let _ = writeln!(s, "\n## fanout\n");
    let _ = writeln!(
        s,
        "{}\n",
        params_line(
            runs,
            |r| ok(&r.fanout),
            |f: &FanoutResult| {
                format!(
            "{} rooms × {} subscribers, {} publishers, {}-byte SEND bodies (NATS: PUB to subject `room.N`, the same stamped bodies); warm-up {:.1} s, window {:.1} s per run; \
             each offered rate runs {} times (fresh publishers each time, same subscribers): delivered/s, p50 and p99 are the median and (min–max) over the runs; \
             p99.9 and max are medians over the runs too, sent and CPU the median run's (by delivered/s), lost is summed over the runs. \
             Latency = receive time − send stamp (same process clock; a publisher behind schedule stamps the scheduled time, so back-pressure counts as latency). \
             A run is saturated when delivered < 90 % of offered, p99 > 1 s, a publisher failed or a subscriber disconnected; a rate is saturated when its median run is \
             (repeats stop early once more than half delivered < 90 %). Plot (medians): `{svg_name}`.",
            f.params.rooms,
            f.params.members,
            f.params.publishers,
            f.params.body_bytes,
            f.params.warmup.as_secs_f64(),
            f.params.measure.as_secs_f64(),
            f.params.repeats.max(1)
        )
            }
        )
    );
    s.push_str(&fanout_table(runs));
    for r in runs {
        if let Some(f) = ok(&r.fanout) {
            if f.rates.last().is_some_and(|st| st.saturated.is_none()) {
                let _ = writeln!(
                    s,
                    "\n{} sustained every offered rate: its peak delivered/s is a lower bound.",
                    r.kind.title()
                );
            }
            if let Some((d, p)) = worst_relative_range(f) {
                let _ = writeln!(
                    s,
                    "\n{}: widest range over the sustained rates, (max − min) / median: delivered/s {:.0} %, p99 {:.0} %.",
                    r.kind.title(),
                    d * 100.0,
                    p * 100.0
                );
            }
        }
    }

    let _ = writeln!(s, "\n## connect\n");
    let _ = writeln!(
        s,
        "{}\n",
        params_line(
            runs,
            |r| ok(&r.connect),
            |c: &ConnectResult| {
                format!(
            "{} concurrent connectors; each connect = WebSocket upgrade + CONNECT + SUBSCRIBE with receipt (NATS: INFO, CONNECT + PING → PONG, SUB + PING → PONG), then close. Warm-up {:.1} s, window {:.1} s.",
            c.params.concurrency,
            c.params.warmup.as_secs_f64(),
            c.params.measure.as_secs_f64()
        )
            }
        )
    );
    s.push_str(&connect_table(runs));

    let _ = writeln!(s, "\n## persist\n");
    let _ = writeln!(
        s,
        "{}\n",
        params_line(
            runs,
            |r| ok(&r.persist),
            |p: &PersistResult| {
                format!(
            "SEND with receipt, {}-byte bodies. QuickTalk: receipt after the SQLite commit (`synchronous=full`); \
             RabbitMQ: `persistent:true` into the durable queue `/queue/bench-persist` (receipt = publisher confirm); \
             NATS: PUB with a reply subject to `bench.persist`, stored by the JetStream stream `BENCH_PERSIST` (file storage, `sync_interval: always`: an fsync per write), receipt = the PubAck. \
             Warm-up {:.1} s, window {:.1} s.",
            p.params.body_bytes,
            p.params.warmup.as_secs_f64(),
            p.params.measure.as_secs_f64()
        )
            }
        )
    );
    s.push_str(&persist_table(runs));

    let _ = writeln!(s, "\n## Ratios (QuickTalk / RabbitMQ, QuickTalk / NATS)\n");
    let _ = writeln!(
        s,
        "delivered = peak median delivered/s in fanout; p99 = median fanout p99 at the highest offered rate both sustained; \
         rss_per_conn = idle RSS growth per connection at the largest N both held; connects = connects/s; \
         persist = receipts/s.\n"
    );
    s.push_str("```\n");
    for (peer, r) in ratios {
        let _ = writeln!(s, "{}", ratio_line(*peer, r));
    }
    s.push_str("```\n\n");
    let p = problems(runs);
    if !p.is_empty() {
        let _ = writeln!(s, "## Notes and problems observed\n\n{p}");
    }
    s
}

/// One plotted step: (delivered/s, p50 ms, p99 ms).
type CurvePoint = (f64, f64, f64);

/// Latency (median p50, p99) against median delivered rate, every target, as
/// an SVG string.
pub fn latency_svg(runs: &[&TargetRun], title: &str) -> anyhow::Result<String> {
    let series: Vec<(Kind, Vec<CurvePoint>)> = runs
        .iter()
        .filter_map(|r| {
            ok(&r.fanout).map(|f| {
                (
                    r.kind,
                    f.rates
                        .iter()
                        .filter(|s| s.delivered.median > 0.0 && s.p99.median > 0.0)
                        .map(|s| {
                            (
                                s.delivered.median,
                                s.p50.median.max(0.001),
                                s.p99.median.max(0.001),
                            )
                        })
                        .collect(),
                )
            })
        })
        .collect();
    let all = series.iter().flat_map(|(_, v)| v.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, p50, p99) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(p50);
        y1 = y1.max(p99);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (1.0, 10.0, 0.01, 10.0);
    }
    // Whole decades, so the log axes get labelled ticks at both ends.
    let decade_down = |v: f64| 10f64.powf(v.log10().floor());
    let decade_up = |v: f64| 10f64.powf(v.log10().ceil());
    let (x0, x1) = (decade_down(x0 / 1.2), decade_up(x1 * 1.2));
    let (y0, y1) = (decade_down(y0 / 1.2), decade_up(y1 * 1.2));
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (960, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .margin_right(56)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("delivered messages/s")
            .y_desc("latency (ms)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| {
                if *v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .draw()?;
        for (kind, pts) in &series {
            let color = match kind {
                Kind::Quicktalk => RGBColor(31, 119, 180),
                Kind::QuicktalkCluster => RGBColor(44, 160, 44),
                Kind::Rabbitmq => RGBColor(214, 39, 40),
                Kind::Nats => RGBColor(255, 127, 14),
            };
            for (which, width, label) in [(2usize, 3u32, "p99"), (1, 1, "p50")] {
                let line: Vec<(f64, f64)> = pts
                    .iter()
                    .map(|&(x, p50, p99)| (x, if which == 2 { p99 } else { p50 }))
                    .collect();
                let style = color.stroke_width(width);
                chart
                    .draw_series(LineSeries::new(line.clone(), style))?
                    .label(format!("{} {label}", kind.title()))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                chart.draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 3 + width / 2, color.filled())),
                )?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(buf)
}

/// The `## Machine` heading and the machine's facts (the caller adds the load
/// average line, which differs by report).
pub fn machine_section(s: &mut String, machine: &Machine) {
    let _ = writeln!(s, "## Machine\n");
    let _ = writeln!(s, "- nproc: {}", machine.nproc);
    let _ = writeln!(s, "- CPU: {}", machine.cpu_model);
    let _ = writeln!(s, "- memory: {:.1} GiB", machine.mem_total_gib);
    let _ = writeln!(s, "- kernel: {}", machine.kernel);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::fanout::{FanoutParams, FanoutRate, FanoutStep};
    use crate::scenario::idle::IdleLevel;
    use std::time::Duration;

    #[test]
    fn ratio_formatting() {
        assert_eq!(fmt_ratio(None), "n/a");
        assert_eq!(fmt_ratio(Some(0.0)), "0");
        assert_eq!(fmt_ratio(Some(1.0)), "1.00");
        assert_eq!(fmt_ratio(Some(2.345)), "2.35");
        assert_eq!(fmt_ratio(Some(12.34)), "12.3");
        assert_eq!(fmt_ratio(Some(1234.5)), "1234");
        assert_eq!(fmt_ratio(Some(0.04567)), "0.0457");
    }

    #[test]
    fn ratio_line_shape() {
        let r = Ratios {
            delivered: Some(2.0),
            p99: Some(0.5),
            rss_per_conn: Some(0.125),
            connects: None,
            persist: Some(10.0),
        };
        assert_eq!(
            ratio_line(Kind::Rabbitmq, &r),
            "quicktalk/rabbitmq ratios: delivered=2.00 p99=0.500 rss_per_conn=0.125 connects=n/a persist=10.0"
        );
    }

    #[test]
    fn nats_ratio_line_shape() {
        let r = Ratios {
            delivered: Some(0.25),
            p99: Some(3.0),
            rss_per_conn: Some(1.5),
            connects: Some(0.8),
            persist: None,
        };
        assert_eq!(
            ratio_line(Kind::Nats, &r),
            "quicktalk/nats ratios: delivered=0.250 p99=3.00 rss_per_conn=1.50 connects=0.800 persist=n/a"
        );
    }

    fn fanout(steps: &[(f64, f64, f64, bool)]) -> FanoutResult {
        FanoutResult {
            params: FanoutParams {
                rooms: 1,
                members: 1,
                publishers: 1,
                body_bytes: 100,
                rates: vec![],
                warmup: Duration::ZERO,
                measure: Duration::from_secs(1),
                drain: Duration::ZERO,
                users: 1,
                push_away: 0.0,
                repeats: 1,
            },
            rates: steps
                .iter()
                .map(|&(offered, delivered, p99, sat)| {
                    FanoutRate::from_runs(vec![run(offered, delivered, p99, sat)])
                })
                .collect(),
            first_error: None,
        }
    }

    fn run(offered: f64, delivered: f64, p99: f64, sat: bool) -> FanoutStep {
        FanoutStep {
            offered,
            offered_deliveries: offered,
            delivered,
            latency: Percentiles {
                count: 1,
                p99,
                ..Percentiles::default()
            },
            saturated: sat.then(|| "x".to_owned()),
            ..FanoutStep::default()
        }
    }

    #[test]
    fn ratios_use_the_medians_of_repeated_runs() {
        let three = |offered: f64, runs: [(f64, f64); 3], sat: [bool; 3]| {
            FanoutRate::from_runs(
                runs.iter()
                    .zip(sat)
                    .map(|(&(d, p99), s)| run(offered, d, p99, s))
                    .collect(),
            )
        };
        let mut f = fanout(&[]);
        f.rates = vec![
            three(100.0, [(100.0, 2.0), (90.0, 9.0), (95.0, 4.0)], [false; 3]),
            // The median run (delivered 60) is saturated: so is the rate.
            three(
                200.0,
                [(190.0, 3.0), (60.0, 900.0), (50.0, 950.0)],
                [false, true, true],
            ),
        ];
        let mut peer = fanout(&[]);
        peer.rates = vec![three(
            100.0,
            [(80.0, 8.0), (85.0, 16.0), (99.0, 2.0)],
            [false; 3],
        )];
        assert_eq!(f.rates[0].delivered.median, 95.0);
        assert_eq!(f.rates[0].p99.median, 4.0);
        assert_eq!((f.rates[0].p99.min, f.rates[0].p99.max), (2.0, 9.0));
        assert!(f.rates[1].saturated.is_some());
        // Peak of the medians: 95 (rate 100) beats 60 (rate 200's median).
        assert_eq!(f.peak_delivered(), Some(95.0));
        assert_eq!(common_sustained(&f, &peer), Some((100.0, 4.0, 8.0)));
        let mut qt = TargetRun::new(Kind::Quicktalk);
        let mut nats = TargetRun::new(Kind::Nats);
        qt.fanout = Some(Ok(f));
        nats.fanout = Some(Ok(peer));
        let r = ratios(&qt, &nats);
        assert_eq!(r.delivered, Some(95.0 / 85.0));
        assert_eq!(r.p99, Some(0.5));
        assert!(ratio_line(Kind::Nats, &r)
            .starts_with("quicktalk/nats ratios: delivered=1.12 p99=0.500"));
    }

    fn level(n: usize, per: f64, ok: bool) -> IdleLevel {
        IdleLevel {
            n,
            connected: n,
            rss_kb: 0,
            sock: Default::default(),
            rss_per_conn: per,
            sock_per_conn: 0.0,
            setup_secs: 0.0,
            error: (!ok).then(|| "failed".to_owned()),
        }
    }

    #[test]
    fn ratios_use_peak_common_rate_and_largest_common_n() {
        let mut qt = TargetRun::new(Kind::Quicktalk);
        let mut rmq = TargetRun::new(Kind::Rabbitmq);
        qt.fanout = Some(Ok(fanout(&[
            (100.0, 1000.0, 1.0, false),
            (200.0, 2000.0, 2.0, false),
            (400.0, 4000.0, 4.0, false),
        ])));
        rmq.fanout = Some(Ok(fanout(&[
            (100.0, 1000.0, 4.0, false),
            (200.0, 1900.0, 8.0, false),
            (400.0, 1000.0, 2000.0, true),
        ])));
        qt.idle = Some(Ok(IdleResult {
            baseline_rss_kb: 0,
            baseline_sock: Default::default(),
            levels: vec![level(1000, 100.0, true), level(5000, 90.0, true)],
            skipped: vec![],
        }));
        rmq.idle = Some(Ok(IdleResult {
            baseline_rss_kb: 0,
            baseline_sock: Default::default(),
            levels: vec![level(1000, 400.0, true), level(5000, 0.0, false)],
            skipped: vec![],
        }));
        let r = ratios(&qt, &rmq);
        assert_eq!(r.delivered, Some(4000.0 / 1900.0));
        // 400/s was not sustained by RabbitMQ: the comparison is at 200/s.
        assert_eq!(r.p99, Some(0.25));
        // 5000 failed on RabbitMQ: largest common complete N is 1000.
        assert_eq!(r.rss_per_conn, Some(0.25));
        assert_eq!(r.connects, None);
        assert!(ratio_line(Kind::Rabbitmq, &r)
            .starts_with("quicktalk/rabbitmq ratios: delivered=2.11 p99=0.250"));
    }

    #[test]
    fn svg_has_both_targets_as_text() {
        let mut qt = TargetRun::new(Kind::Quicktalk);
        let mut rmq = TargetRun::new(Kind::Rabbitmq);
        qt.fanout = Some(Ok(fanout(&[
            (100.0, 1000.0, 1.0, false),
            (200.0, 2000.0, 3.0, false),
        ])));
        rmq.fanout = Some(Ok(fanout(&[(100.0, 900.0, 2.0, false)])));
        let svg = latency_svg(&[&qt, &rmq], "test").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("QuickTalk p99") && svg.contains("RabbitMQ p50"));
        assert!(svg.contains("<polyline") || svg.contains("<path"));
    }
}
