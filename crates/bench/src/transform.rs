//! Figure 1: events → Iterable requests to a do-nothing sink, no store, per CPU-second;
//! side by side with Segment's destination on the same NDJSON file and the same sink.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use destination::model::Outcome;
use destination::settings::{ApiKey, DestinationSettings};
use destination::sync::{Executor, SyncSettings, client_for};
use iterable::ProjectType;
use serde_json::{Value, json};

use crate::anchor::{self, Sink};
use crate::report::{Figure, median};

/// Writes `n` anchor-shaped events to `path`.
pub fn write_events(path: &Path, n: usize, prefix: &str) -> anyhow::Result<()> {
    let mut body = String::with_capacity(n * 340);
    for i in 0..n {
        crate::events::anchor_event(&mut body, prefix, i);
        body.push('\n');
    }
    std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))
}

/// The child process: reads the file, parses, maps, plans and sends every request to
/// `endpoint` on one thread; prints one JSON line of figures. Reading the file is inside the
/// measurement, as it is for `bench-ref.js`.
pub fn child(events: &Path, endpoint: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let cpu0 = crate::proc::process_cpu();
    let wall0 = Instant::now();
    let report = rt.block_on(async {
        let body = std::fs::read(events)?;
        let limits = segment::Limits::default();
        // One event per line: size the vector once instead of growing it.
        let lines = body.iter().filter(|b| **b == b'\n').count() + 1;
        let mut evs: Vec<segment::Event> = Vec::with_capacity(lines);
        evs.extend(segment::ndjson_iter(&body, &limits).filter_map(Result::ok));
        let mut dest = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
        dest.endpoint = Some(endpoint.to_owned());
        dest.allow_custom_endpoint = true;
        let client = client_for(&dest)?;
        let exec = Executor::new(dest, Arc::new(client), SyncSettings::default());
        let report = exec.sync_events(&evs).await;
        anyhow::Ok((evs.len(), report))
    })?;
    let cpu = (crate::proc::process_cpu() - cpu0).as_secs_f64();
    let wall = wall0.elapsed().as_secs_f64();
    let (events, report) = report;
    let delivered = report.count(|o| matches!(o, Outcome::Delivered));
    let skipped = report.count(|o| matches!(o, Outcome::Skipped { .. }));
    let rejected = report.count(|o| matches!(o, Outcome::Rejected { .. }));
    println!(
        "{}",
        json!({
            "events": events,
            "cpu_s": cpu,
            "seconds": wall,
            "events_per_cpu_s": events as f64 / cpu,
            "events_per_s": events as f64 / wall,
            "requests": report.requests.len(),
            "delivered": delivered,
            "skipped": skipped,
            "rejected": rejected,
            "rss_mb": crate::proc::status_mib("self", "VmRSS:"),
        })
    );
    Ok(())
}

/// Runs figure 1 `runs` times on `n` events.
pub async fn run(
    anchor_dir: &Path,
    work: &Path,
    n: usize,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let file = work.join("transform-events.ndjson");
    write_events(&file, n, "")?;
    let exe = std::env::current_exe()?;
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for run in 0..runs {
        let sink = Sink::start(anchor_dir).await?;
        let out = tokio::process::Command::new(&exe)
            .args(["child-transform", "--events"])
            .arg(&file)
            .args(["--endpoint", &sink.base])
            .stderr(std::process::Stdio::inherit())
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "transform child failed: {}",
            out.status
        );
        let o: Value = serde_json::from_slice(
            out.stdout
                .split(|b| *b == b'\n')
                .find(|l| l.starts_with(b"{"))
                .context("transform child printed nothing")?,
        )?;
        let our_stats = sink.stats().await?;
        drop(sink);
        let sink = Sink::start(anchor_dir).await?;
        let dir = anchor_dir.to_path_buf();
        let (f, port) = (file.clone(), sink.port);
        let t = tokio::task::spawn_blocking(move || anchor::run_ref(&dir, &f, port)).await??;
        let their_stats = sink.stats().await?;
        drop(sink);
        let a = o["events_per_cpu_s"].as_f64().unwrap_or(0.0);
        let b = t["events_per_cpu_s"].as_f64().unwrap_or(0.0);
        eprintln!(
            "  transform run {}: ours {a:.0} events/CPU-s ({:.3} CPU-s, {} requests, sink {our_stats}); \
             anchor {b:.0} events/CPU-s ({} CPU-s, sink {their_stats}); ratio {:.1}x",
            run + 1,
            o["cpu_s"].as_f64().unwrap_or(0.0),
            o["requests"],
            t["cpu_s"],
            a / b.max(1.0)
        );
        if run == 0 {
            notes.push(format!(
                "ours: {} requests, {} subscribers received by the sink; anchor: {} requests, {} subscribers",
                our_stats["requests"], our_stats["subscribers"], their_stats["requests"], their_stats["subscribers"]
            ));
        }
        ours.push(a);
        theirs.push(b);
        ratios.push(a / b.max(1.0));
    }
    Ok(vec![
        Figure::new(
            "1 transform",
            "iterable-lists events per CPU-second",
            median(&ours),
            "",
            runs,
        )
        .samples(&ours),
        Figure::new(
            "1 transform",
            "Segment (node) events per CPU-second, same events and sink",
            median(&theirs),
            "",
            runs,
        )
        .samples(&theirs),
        Figure::new(
            "1 transform",
            "ratio (median of per-run ratios)",
            median(&ratios),
            "x",
            runs,
        )
        .samples(&ratios)
        .goal(">= 10x", median(&ratios) >= 10.0)
        .note(&notes.join("; ")),
    ])
}
