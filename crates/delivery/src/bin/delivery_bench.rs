//! Benchmark of the engine's accept path: sustained accepted events per second, durable
//! (`synchronous = full` unless told otherwise, one transaction per batch), unique
//! `messageId`s, and the peak resident memory once the backlog holds every event.
//!
//! ```text
//! cargo run --release -p delivery --bin delivery-bench -- [--events N] [--batch N]
//!     [--audiences N] [--sync full|normal] [--store FILE]
//! ```
//!
//! Delivery is off (`accept_only`), so the backlog grows to `--events` changes: the figure
//! "peak RSS" is the process's memory with that backlog on disk.

use std::time::{Duration, Instant};

use delivery::{Config, Engine, EngineOptions};
use segment::{ElementError, Event, Limits};

struct Args {
    events: usize,
    batch: usize,
    audiences: usize,
    sync: String,
    store: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        events: 1_000_000,
        batch: 1000,
        audiences: 10,
        sync: "full".into(),
        store: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => a.events = value()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--audiences" => {
                a.audiences = value()?.parse().map_err(|e| format!("--audiences: {e}"))?
            }
            "--sync" => a.sync = value()?,
            "--store" => a.store = Some(value()?.into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// Peak and current resident memory in MiB, from `/proc/self/status`.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn chunk(
    start: usize,
    n: usize,
    audiences: usize,
    limits: &Limits,
) -> Vec<Result<Event, ElementError>> {
    (start..start + n)
        .map(|i| {
            let audience = format!("bench_{}", i % audiences);
            let text = format!(
                r#"{{"type":"identify","messageId":"bench-{i}","userId":"u{i}","timestamp":"2024-05-06T09:30:22.829Z","traits":{{"email":"user{i}@example.com","{audience}":true}},"context":{{"personas":{{"computation_class":"audience","computation_key":"{audience}"}}}}}}"#
            );
            segment::parse_element(&text, i, limits)
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile_dir();
    let store = args.store.clone().unwrap_or_else(|| dir.join("bench.db"));
    let text = format!(
        "[store]\npath = {:?}\nsynchronous = {:?}\n[delivery]\nbacklog_bound = {}\n[[destination]]\nname = \"bench\"\napi_key = \"k\"\nendpoint = \"http://127.0.0.1:9\"\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n",
        store.display().to_string(),
        args.sync,
        (args.events as u64 + 1).max(10_000_000)
    );
    let config = match Config::parse(&text, |_| None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let engine = match Engine::start(
        config,
        EngineOptions {
            accept_only: true,
            ..EngineOptions::default()
        },
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let limits = Limits::default();
    let mut accept_time = Duration::ZERO;
    let wall = Instant::now();
    let mut done = 0usize;
    let mut last_report = Instant::now();
    while done < args.events {
        let n = args.batch.min(args.events - done);
        let events = chunk(done, n, args.audiences, &limits);
        let t = Instant::now();
        let report = match engine.accept_batch("bench", events).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        accept_time += t.elapsed();
        assert_eq!(report.accepted(), n, "every event is new");
        done += n;
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            let (peak, now) = rss_mib();
            eprintln!(
                "{done} events, {:.0} events/s in accept, RSS {now:.0} MiB (peak {peak:.0})",
                done as f64 / accept_time.as_secs_f64()
            );
        }
    }
    let wall = wall.elapsed();
    let (peak, now) = rss_mib();
    println!(
        "events: {done}; batch: {}; sync: {}; accept path: {:.0} events/s ({:.1} s); with event generation and parsing: {:.0} events/s; backlog: {}; RSS: {now:.0} MiB, peak {peak:.0} MiB",
        args.batch,
        args.sync,
        done as f64 / accept_time.as_secs_f64(),
        accept_time.as_secs_f64(),
        done as f64 / wall.as_secs_f64(),
        engine.backlog()
    );
    engine.shutdown(Duration::from_secs(1)).await;
    if args.store.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("delivery-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}
