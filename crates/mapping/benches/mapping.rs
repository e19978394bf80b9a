//! Mapping cost: trigger + field mapping through the interpreter, per event, on identify
//! audience events shaped like the core benchmark's (10 audiences, one in seven an exit).
//! Events are parsed once up front: this measures the mapping, not JSON parsing.
//! After criterion's figures, the run prints events per CPU-second (the thread's own clock).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use mapping::{ActionMapping, MappingSpec};
use serde_json::{Value, json};

const N: usize = 10_000;

fn event(i: usize) -> Value {
    let a = i % 10;
    json!({
        "type": "identify", "userId": format!("user-{i}"), "messageId": format!("m-{i}"),
        "timestamp": "2026-11-02T09:30:22.829Z",
        "traits": {"email": format!("User-{i}@Example.com"), format!("aud_{a}"): i % 7 != 0,
                   "first_name": format!("Name{i}"), "plan": "pro"},
        "context": {"personas": {"computation_class": "audience", "computation_key": format!("aud_{a}"),
                                 "computation_id": format!("aud_id_{a}"), "external_audience_id": format!("{}", 5000 + a)}}
    })
}

/// A typical custom mapping: a narrower trigger, a lower-cased email, data fields.
fn custom() -> ActionMapping {
    let spec: MappingSpec = serde_json::from_value(json!({
        "trigger": "type = \"identify\" and context.personas.computation_class = \"audience\" and context.personas.computation_key != null",
        "fields": {
            "email": {"@case": {"operator": "lower", "value": {"@if": {"exists": {"@path": "$.traits.email"},
                        "then": {"@path": "$.traits.email"}, "else": {"@path": "$.context.traits.email"}}}}},
            "dataFields": {
                "firstName": {"@path": "$.traits.first_name"},
                "plan": {"@excludeWhenNull": {"@path": "$.traits.plan"}},
                "source": "cdp",
                "label": {"@template": "{{traits.first_name}} ({{context.personas.computation_key}})"}
            }
        }
    }))
    .unwrap_or_default();
    ActionMapping::compile(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn run(m: &ActionMapping, events: &[Value]) -> usize {
    let mut mapped = 0;
    for ev in events {
        if m.matches(ev) && m.map(ev).is_ok() {
            mapped += 1;
        }
    }
    mapped
}

fn bench(c: &mut Criterion) {
    let events: Vec<Value> = (0..N).map(event).collect();
    let mut g = c.benchmark_group("mapping");
    g.throughput(Throughput::Elements(N as u64));
    g.measurement_time(Duration::from_secs(5));
    let default = ActionMapping::default_mapping();
    let custom = custom();
    g.bench_function("default_mapping", |b| {
        b.iter(|| black_box(run(&default, black_box(&events))))
    });
    g.bench_function("custom_mapping", |b| {
        b.iter(|| black_box(run(&custom, black_box(&events))))
    });
    g.finish();
}

/// CPU time used by this thread, from Linux's schedstat (nanoseconds on CPU).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

fn cpu_figures() {
    let events: Vec<Value> = (0..N).map(event).collect();
    for (name, m) in [
        ("default mapping", ActionMapping::default_mapping()),
        ("custom mapping", custom()),
    ] {
        let rounds = 20;
        let (Some(c0), w0) = (thread_cpu(), Instant::now()) else {
            println!("events per CPU-second: unavailable (no /proc/thread-self/schedstat)");
            return;
        };
        let mut mapped = 0;
        for _ in 0..rounds {
            mapped += run(&m, black_box(&events));
        }
        let cpu = thread_cpu().unwrap_or(c0).saturating_sub(c0);
        let total = (rounds * N) as f64;
        assert_eq!(mapped, rounds * N, "every event maps");
        println!(
            "{name}: {total} events in {:.3} s CPU ({:.3} s wall): {:.0} events per CPU-second",
            cpu.as_secs_f64(),
            w0.elapsed().as_secs_f64(),
            total / cpu.as_secs_f64().max(1e-9)
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    cpu_figures();
}
