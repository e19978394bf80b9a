//! parse → custom mapping → plan → serialised request bodies, on one core, no I/O.
//!
//! The events are the transform benchmark's (`generated(i)`: identify calls, 10 audiences, one
//! in seven an exit). The custom mapping is a typical one: the identify preset's trigger, a
//! `dataFields` object, the other fields at their defaults written in the language. After
//! criterion's wall-clock figures, the run prints events per CPU-second (the thread's own CPU
//! clock) for mapping alone and for the whole pipeline; the target is 150,000 events per
//! CPU-second through a custom mapping (issue 5).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::MapContext;
use destination::model::{ProcessedEvent, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem};
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use segment::{Event, Limits, parse_ndjson};
use serde_json::json;

const N: usize = 20_000;
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

fn custom() -> MappingSet {
    let mut c = MappingConfig::new("identify-with-fields");
    c.trigger = mapping::PRESET_IDENTIFY.trigger.to_owned();
    c.mapping = json!({"dataFields": {
        "first_name": {"@path": "$.traits.first_name"},
        "source": {"@literal": "engage"}
    }})
    .as_object()
    .cloned()
    .unwrap_or_default();
    match MappingSet::from_configs(&[c]) {
        Ok(s) => s,
        Err(e) => panic!("the benchmark mapping is invalid: {e}"),
    }
}

fn ctx(i: usize) -> MapContext {
    MapContext {
        received_order: i as u64,
        received_at: Timestamp::from_unix_millis(1_760_000_100_000),
    }
}

fn parse(body: &[u8]) -> Vec<Event> {
    parse_ndjson(body, &Limits::default())
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

/// Mapping alone; returns the number of changes.
fn map_only(events: &[Event], set: &MappingSet, s: &DestinationSettings) -> usize {
    events
        .iter()
        .enumerate()
        .filter(|(i, e)| matches!(set.map(e, s, ctx(*i)), ProcessedEvent::Change(_)))
        .count()
}

/// The whole pipeline; returns (subscribers planned, body bytes).
fn pipeline(
    body: &[u8],
    set: &MappingSet,
    s: &DestinationSettings,
    cfg: &PlanConfig,
) -> (usize, usize) {
    let changes: Vec<_> = parse_ndjson(body, &Limits::default())
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| match set.map(&r.ok()?, s, ctx(i)) {
            ProcessedEvent::Change(c) => Some(*c),
            _ => None,
        })
        .collect();
    let items: Vec<PlanItem<'_>> = changes
        .iter()
        .filter_map(|c| {
            let (eff, _) = s.effective(&c.audience_key, c.audience_settings.as_ref());
            Some(PlanItem {
                list_id: c.list_hint?,
                settings: eff,
                change: c,
            })
        })
        .collect();
    let plan = planner::plan(cfg, &items);
    (
        plan.requests.iter().map(|r| r.changes.len()).sum(),
        plan.requests.iter().map(|r| r.body.len()).sum(),
    )
}

fn settings() -> (DestinationSettings, PlanConfig) {
    let s = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
    let cfg = PlanConfig::from_settings(&s);
    (s, cfg)
}

fn bench(c: &mut Criterion) {
    let body = corpus();
    let events = parse(&body);
    let set = custom();
    let (s, cfg) = settings();
    assert_eq!(
        pipeline(&body, &set, &s, &cfg).0,
        N,
        "every event is planned"
    );
    let mut g = c.benchmark_group("custom_mapping");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("map_20k", |b| {
        b.iter(|| black_box(map_only(black_box(&events), &set, &s)))
    });
    g.bench_function("parse_map_plan_serialize_20k", |b| {
        b.iter(|| black_box(pipeline(black_box(&body), &set, &s, &cfg)))
    });
    g.finish();
}

/// CPU time consumed by this thread, from Linux's schedstat; `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn per_cpu_second(rounds: usize, f: &dyn Fn() -> usize) -> Option<f64> {
    let _ = black_box(f());
    let c0 = thread_cpu()?;
    for _ in 0..rounds {
        black_box(f());
    }
    let cpu = (thread_cpu()? - c0).as_secs_f64();
    Some((rounds * N) as f64 / cpu)
}

fn cpu_figures() {
    let body = corpus();
    let events = parse(&body);
    let (s, cfg) = settings();
    let rounds = 5;
    // Where the time goes: the event as a JSON tree, then the mapping applied to it.
    let set = custom();
    let tree = per_cpu_second(rounds, &|| {
        events
            .iter()
            .filter(|e| destination::custom_mapping::event_value(e).is_ok())
            .count()
    });
    let fields = per_cpu_second(rounds, &|| {
        events
            .iter()
            .filter(|e| set.mapped_fields(0, e).is_some())
            .count()
    });
    if let (Some(t), Some(f)) = (tree, fields) {
        println!("stages: event as a JSON tree {t:.0}/s; tree + mapped fields {f:.0}/s");
    }
    for (name, set) in [
        ("custom mapping", custom()),
        (
            "default mapping in the language",
            MappingSet::default_mapping(),
        ),
    ] {
        let map = per_cpu_second(rounds, &|| map_only(&events, &set, &s));
        let all = per_cpu_second(rounds, &|| pipeline(&body, &set, &s, &cfg).0);
        match (map, all) {
            (Some(m), Some(a)) => println!(
                "{name}: map alone {m:.0} events per CPU-second; parse → map → plan → bodies {a:.0} events per CPU-second"
            ),
            _ => println!("events per CPU-second: unavailable (no /proc/thread-self/schedstat)"),
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_figures();
}
