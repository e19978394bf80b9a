//! parse → default mapping → plan → serialised request bodies, on one core, no I/O.
//!
//! Events are shaped like the comparison harness's `generated(i)` (shared/anchor/bench-ref.js):
//! identify calls, 10 audiences, one in seven an exit. After criterion's wall-clock figures,
//! the run prints events per CPU-second, measured with the thread's own CPU clock.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use destination::default_mapping::{MapContext, map_event};
use destination::model::{ProcessedEvent, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem};
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use segment::{Limits, ndjson_iter};

const N: usize = 100_000;
const AUDS: usize = 10;

fn generated(i: usize) -> String {
    let a = i % AUDS;
    let ts = Timestamp::from_unix_millis(1_760_000_000_000 + i as i64);
    format!(
        concat!(
            r#"{{"type":"identify","userId":"user-{i}","messageId":"m-{i}","timestamp":"{ts}","#,
            r#""traits":{{"email":"user-{i}@example.com","aud_{a}":{member},"first_name":"Name{i}"}},"#,
            r#""context":{{"personas":{{"computation_class":"audience","computation_key":"aud_{a}","#,
            r#""computation_id":"aud_id_{a}","external_audience_id":"{list}"}}}}}}"#
        ),
        i = i,
        a = a,
        ts = ts,
        member = i % 7 != 0,
        list = 5000 + a
    )
}

fn corpus() -> Vec<u8> {
    let mut body = String::with_capacity(N * 330);
    for i in 0..N {
        body.push_str(&generated(i));
        body.push('\n');
    }
    body.into_bytes()
}

/// The whole pipeline; returns (subscribers planned, body bytes) so nothing is optimised away.
fn pipeline(body: &[u8], settings: &DestinationSettings, cfg: &PlanConfig) -> (usize, usize) {
    let received_at = Timestamp::from_unix_millis(1_760_000_100_000);
    let limits = Limits::default();
    let changes: Vec<_> = ndjson_iter(body, &limits)
        .enumerate()
        .filter_map(|(i, r)| {
            let ev = r.ok()?;
            let ctx = MapContext {
                received_order: i as u64,
                received_at,
            };
            match map_event(&ev, settings, ctx) {
                ProcessedEvent::Change(c) => Some(*c),
                _ => None,
            }
        })
        .collect();
    let items: Vec<PlanItem<'_>> = changes
        .iter()
        .filter_map(|c| {
            let (eff, _) = settings.effective(&c.audience_key, c.audience_settings.as_ref());
            Some(PlanItem {
                list_id: c.list_hint?,
                settings: eff,
                change: c,
            })
        })
        .collect();
    let plan = planner::plan(cfg, &items);
    let subs = plan.requests.iter().map(|r| r.changes.len()).sum();
    let bytes = plan.requests.iter().map(|r| r.body.len()).sum();
    (subs, bytes)
}

fn settings() -> (DestinationSettings, PlanConfig) {
    let s = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
    let cfg = PlanConfig::from_settings(&s);
    (s, cfg)
}

fn bench(c: &mut Criterion) {
    let body = corpus();
    let (s, cfg) = settings();
    assert_eq!(
        pipeline(&body, &s, &cfg).0,
        N,
        "every generated event is planned"
    );
    let mut g = c.benchmark_group("transform");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("parse_map_plan_serialize_100k", |b| {
        b.iter(|| black_box(pipeline(black_box(&body), &s, &cfg)))
    });
    g.finish();
}

/// CPU time consumed by this thread, from Linux's schedstat; `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn cpu_figure() {
    let body = corpus();
    let (s, cfg) = settings();
    let rounds = 10;
    let _ = pipeline(&body, &s, &cfg);
    let (Some(c0), w0) = (thread_cpu(), std::time::Instant::now()) else {
        println!("events per CPU-second: unavailable (no /proc/thread-self/schedstat)");
        return;
    };
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes += black_box(pipeline(&body, &s, &cfg)).1;
    }
    let cpu = thread_cpu().unwrap_or(c0) - c0;
    let wall = w0.elapsed();
    // Where the time goes: parse alone, then parse + map.
    let stage = |f: &dyn Fn() -> usize| {
        let c = thread_cpu().unwrap_or_default();
        let mut n = 0;
        for _ in 0..rounds {
            n += black_box(f());
        }
        let _ = n;
        (thread_cpu().unwrap_or_default() - c).as_secs_f64()
    };
    let limits = Limits::default();
    let parse_s = stage(&|| ndjson_iter(&body, &limits).filter(Result::is_ok).count());
    let map_s = stage(&|| {
        let received_at = Timestamp::from_unix_millis(0);
        ndjson_iter(&body, &limits)
            .enumerate()
            .filter_map(|(i, r)| {
                let ctx = MapContext {
                    received_order: i as u64,
                    received_at,
                };
                match map_event(&r.ok()?, &s, ctx) {
                    ProcessedEvent::Change(_) => Some(()),
                    _ => None,
                }
            })
            .count()
    });
    let events = (N * rounds) as f64;
    let per_cpu = events / cpu.as_secs_f64();
    println!(
        "transform: {} events in {:.3} s CPU ({:.3} s wall), {:.0} events per CPU-second; \
         {:.1}x the 400,000 target, {:.1}x Segment's 38,000; {} body bytes per run",
        events as u64,
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        per_cpu,
        per_cpu / 400_000.0,
        per_cpu / 38_000.0,
        bytes / rounds
    );
    println!(
        "transform stages (CPU s per {} events): parse {:.3}, + map {:.3}, + plan and serialise {:.3}",
        N,
        parse_s / rounds as f64,
        map_s / rounds as f64,
        cpu.as_secs_f64() / rounds as f64
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_figure();
}
