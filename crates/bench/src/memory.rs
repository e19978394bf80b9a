//! Figure 5: peak resident memory (VmHWM) of an engine process whose backlog holds N events:
//! the child accepts N events with delivery off (the backlog grows to N), then delivers the
//! whole backlog to a simulator run by the parent. The peak covers both phases.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::common::{self, EngineKnobs};
use crate::report::{Figure, median};

/// The child process: accept `events` (1000 per batch), then deliver to `endpoint`.
pub fn child(events: usize, endpoint: &str, dir: &Path, deliver: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let text = common::config_text(&dir.join("s.db"), endpoint, &EngineKnobs::default());
        let e = common::engine(&text, true).await?;
        let t = Instant::now();
        let cpu0 = crate::proc::process_cpu_total();
        let mut done = 0;
        let mut buf = String::new();
        let limits = segment::Limits::default();
        while done < events {
            let n = 1000.min(events - done);
            buf.clear();
            for i in done..done + n {
                crate::events::membership_event(
                    &mut buf,
                    &format!("mem-{i}"),
                    &format!("mem-{i}"),
                    &format!("memory_{}", i % 10),
                    None,
                    true,
                    1_760_000_000_000 + i as i64,
                );
                buf.push('\n');
            }
            let batch: Vec<_> = segment::ndjson_iter(buf.as_bytes(), &limits).collect();
            let r = e.accept_batch(common::DEST, batch).await?;
            anyhow::ensure!(r.accepted() == n, "accepted {} of {n}", r.accepted());
            done += n;
        }
        let accept_s = t.elapsed().as_secs_f64();
        let accept_cpu = (crate::proc::process_cpu_total() - cpu0).as_secs_f64();
        let backlog = e.backlog();
        let accept_peak = crate::proc::peak_rss_mib();
        e.shutdown(Duration::from_secs(5)).await;
        drop(e);
        let (mut deliver_s, mut deliver_cpu) = (0.0, 0.0);
        if deliver {
            let t = Instant::now();
            let cpu0 = crate::proc::process_cpu_total();
            let e = common::engine(&text, false).await?;
            common::settle(&e, 1800).await?;
            deliver_s = t.elapsed().as_secs_f64();
            deliver_cpu = (crate::proc::process_cpu_total() - cpu0).as_secs_f64();
            e.shutdown(Duration::from_secs(5)).await;
            drop(e);
        }
        println!(
            "{}",
            json!({
                "events": events,
                "backlog": backlog,
                "accept_s": accept_s,
                "accept_events_per_s": events as f64 / accept_s,
                "accept_peak_mb": accept_peak,
                "deliver_s": deliver_s,
                "accept_cpu_us_per_event": 1e6 * accept_cpu / events as f64,
                "deliver_cpu_us_per_event": 1e6 * deliver_cpu / events as f64,
                "peak_mb": crate::proc::peak_rss_mib(),
            })
        );
        anyhow::Ok(())
    })
}

/// One child run with a fresh simulator and store.
async fn one(work: &Path, events: usize, deliver: bool) -> anyhow::Result<Value> {
    let sim = common::simulator(0).await?;
    let dir = tempfile::tempdir_in(work)?;
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "child-memory",
            "--events",
            &events.to_string(),
            "--endpoint",
            &sim.base_url(),
        ])
        .arg("--dir")
        .arg(dir.path())
        .args(if deliver {
            &[][..]
        } else {
            &["--no-deliver"][..]
        })
        .stderr(std::process::Stdio::inherit())
        .output()
        .await?;
    sim.shutdown().await;
    anyhow::ensure!(out.status.success(), "memory child failed: {}", out.status);
    let line = out
        .stdout
        .split(|b| *b == b'\n')
        .find(|l| l.starts_with(b"{"))
        .context("memory child printed nothing")?;
    Ok(serde_json::from_slice(line)?)
}

/// Runs figure 5: each size in `sizes` with its number of runs.
pub async fn run(
    work: &Path,
    sizes: &[(usize, usize)],
    deliver: bool,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for &(events, runs) in sizes {
        let (mut peaks, mut accept_peaks, mut rates, mut deliver_s) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut acpu, mut dcpu) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let v = one(work, events, deliver).await?;
            eprintln!("  memory {events} run {}: {v}", i + 1);
            peaks.push(v["peak_mb"].as_f64().unwrap_or(f64::NAN));
            accept_peaks.push(v["accept_peak_mb"].as_f64().unwrap_or(f64::NAN));
            rates.push(v["accept_events_per_s"].as_f64().unwrap_or(f64::NAN));
            deliver_s.push(v["deliver_s"].as_f64().unwrap_or(f64::NAN));
            acpu.push(v["accept_cpu_us_per_event"].as_f64().unwrap_or(f64::NAN));
            dcpu.push(v["deliver_cpu_us_per_event"].as_f64().unwrap_or(f64::NAN));
        }
        let m = median(&peaks);
        let mut f = Figure::new(
            "5 memory",
            &format!("peak RSS, backlog of {events} events"),
            m,
            " MiB",
            runs,
        )
        .samples(&peaks)
        .note(&format!(
            "{:.0} MiB at the end of accepting; accept {:.0} events/s ({:.1} µs CPU per event); \
                 delivery of the backlog {:.1} s ({:.1} µs CPU per event, engine process only)",
            median(&accept_peaks),
            median(&rates),
            median(&acpu),
            median(&deliver_s),
            median(&dcpu)
        ));
        if events >= 5_000_000 {
            f = f.goal("< 200 MiB", m < 200.0);
        }
        figures.push(f);
    }
    Ok(figures)
}
