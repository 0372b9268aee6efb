//! `kafka-probe`: the broker alone, with the producer and consumer settings a
//! QuickTalk node uses, so the cluster's hop figures can be told apart from
//! the broker's own floor. A fresh topic; records produced at a fixed rate,
//! each carrying its send time; one consumer assigned every partition from the
//! end. Reports produce → broker ack and produce → consumed latencies, overall
//! and per time slice (a broker whose cost grows with its log shows it here).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::report::ms;
use crate::stats::{new_hist, record_ns, Percentiles};
use crate::{clock, payload};

#[derive(Debug, Clone)]
pub struct ProbeParams {
    pub brokers: String,
    pub rate: f64,
    pub seconds: u64,
    pub partitions: i32,
    pub fetch_wait_ms: u64,
    pub linger_ms: u64,
    /// The producer's `enable.idempotence`.
    pub idempotence: bool,
    pub body_bytes: usize,
    /// Length of one reported slice.
    pub slice: Duration,
}

#[derive(Debug, Clone)]
pub struct Slice {
    pub from_s: f64,
    pub ack: Percentiles,
    pub consumed: Percentiles,
}

#[derive(Debug, Clone)]
pub struct ProbeResult {
    pub params: ProbeParams,
    pub sent: u64,
    pub received: u64,
    pub ack: Percentiles,
    pub consumed: Percentiles,
    pub slices: Vec<Slice>,
}

fn client(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("socket.nagle.disable", "true")
        .set("log_level", "4");
    c
}

struct Hists {
    ack: Histogram<u64>,
    consumed: Histogram<u64>,
}

pub async fn run(p: &ProbeParams) -> anyhow::Result<ProbeResult> {
    let topic = format!("quicktalk-probe-{:x}", rand::random::<u32>());
    let admin: AdminClient<DefaultClientContext> = client(&p.brokers).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                p.partitions,
                TopicReplication::Fixed(1),
            )],
            &opts,
        )
        .await
        .context("creating the probe topic")?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no answer for the topic"))?
        .map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    let producer: FutureProducer = client(&p.brokers)
        .set("enable.idempotence", p.idempotence.to_string())
        .set("acks", "all")
        .set("linger.ms", p.linger_ms.to_string())
        .set("message.timeout.ms", "10000")
        .create()?;
    let consumer: StreamConsumer = client(&p.brokers)
        .set("group.id", format!("{topic}.probe"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", p.fetch_wait_ms.to_string())
        .create()?;
    let consumer = Arc::new(consumer);
    let (c, t, n) = (consumer.clone(), topic.clone(), p.partitions);
    let tpl = tokio::task::spawn_blocking(move || -> anyhow::Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for part in 0..n {
            let mut high = None;
            for _ in 0..50 {
                match c.fetch_watermarks(&t, part, Duration::from_secs(5)) {
                    Ok((_, h)) => {
                        high = Some(h);
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
            let high = high.ok_or_else(|| anyhow::anyhow!("no watermarks for {t}/{part}"))?;
            tpl.add_partition_offset(&t, part, Offset::Offset(high))?;
        }
        Ok(tpl)
    })
    .await??;
    consumer.assign(&tpl)?;

    let start = Instant::now();
    let slices = (p.seconds as f64 / p.slice.as_secs_f64()).ceil() as usize;
    let per_slice: Arc<Mutex<Vec<Hists>>> = Arc::new(Mutex::new(
        (0..slices.max(1))
            .map(|_| Hists {
                ack: new_hist(),
                consumed: new_hist(),
            })
            .collect(),
    ));
    let slice_of = {
        let len = p.slice;
        let n = slices.max(1);
        move |sent_ns: u64, start_ns: u64| -> usize {
            let d = Duration::from_nanos(sent_ns.saturating_sub(start_ns));
            ((d.as_secs_f64() / len.as_secs_f64()) as usize).min(n - 1)
        }
    };
    let start_ns = clock::now_ns();
    let received = Arc::new(AtomicU64::new(0));
    let reader = {
        let (consumer, per_slice, received) =
            (consumer.clone(), per_slice.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let Ok(m) = consumer.recv().await else {
                    continue;
                };
                let now = clock::now_ns();
                if let Some((sent, _)) = m.payload().and_then(|b| payload::parse_stamp(b, false)) {
                    let i = slice_of(sent, start_ns);
                    record_ns(
                        &mut per_slice.lock().unwrap()[i].consumed,
                        now.saturating_sub(sent),
                    );
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let total = (p.rate * p.seconds as f64) as u64;
    let mut acks = Vec::with_capacity(total as usize);
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / p.rate);
        tokio::time::sleep_until(due.into()).await;
        let sent = clock::now_ns();
        let body = payload::body(sent, 0, p.body_bytes);
        let key = (k as i64).to_be_bytes();
        let rec = FutureRecord::to(&topic)
            .partition((k % p.partitions as u64) as i32)
            .key(&key)
            .payload(&body);
        match producer.send_result(rec) {
            Ok(f) => {
                let per_slice = per_slice.clone();
                acks.push(tokio::spawn(async move {
                    if let Ok(Ok(_)) = f.await {
                        let i = slice_of(sent, start_ns);
                        record_ns(
                            &mut per_slice.lock().unwrap()[i].ack,
                            clock::now_ns().saturating_sub(sent),
                        );
                    }
                }));
            }
            Err((e, _)) => anyhow::bail!("producing: {e}"),
        }
    }
    for a in acks {
        let _ = a.await;
    }
    // Stragglers: until everything arrived or 5 s passed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    // The topic stays: deleting one makes librdkafka 2.12 crash on tansu 0.6's
    // metadata answer for it (a null topic name).
    let per_slice = per_slice.lock().unwrap();
    let mut ack = new_hist();
    let mut consumed = new_hist();
    let mut out = Vec::new();
    for (i, h) in per_slice.iter().enumerate() {
        ack.add(&h.ack).ok();
        consumed.add(&h.consumed).ok();
        out.push(Slice {
            from_s: i as f64 * p.slice.as_secs_f64(),
            ack: Percentiles::of(&h.ack),
            consumed: Percentiles::of(&h.consumed),
        });
    }
    Ok(ProbeResult {
        params: p.clone(),
        sent: total,
        received: received.load(Ordering::Relaxed),
        ack: Percentiles::of(&ack),
        consumed: Percentiles::of(&consumed),
        slices: out,
    })
}

pub fn report(r: &ProbeResult) -> String {
    let p = &r.params;
    let mut s = format!(
        "kafka-probe: {} msg/s for {} s over {} partitions (linger.ms {}, fetch.wait.max.ms {}, \
         enable.idempotence {}), broker {}; sent {}, consumed {}\n",
        p.rate,
        p.seconds,
        p.partitions,
        p.linger_ms,
        p.fetch_wait_ms,
        p.idempotence,
        p.brokers,
        r.sent,
        r.received
    );
    s.push_str(&format!(
        "overall: produce→ack p50 {} p99 {} ms; produce→consumed p50 {} p99 {} ms\n\n",
        ms(r.ack.p50),
        ms(r.ack.p99),
        ms(r.consumed.p50),
        ms(r.consumed.p99)
    ));
    s.push_str("| from s | ack p50 | ack p99 | consumed p50 | consumed p99 |\n|---:|---:|---:|---:|---:|\n");
    for x in &r.slices {
        s.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} |\n",
            x.from_s,
            ms(x.ack.p50),
            ms(x.ack.p99),
            ms(x.consumed.p50),
            ms(x.consumed.p99)
        ));
    }
    s
}
