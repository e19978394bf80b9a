//! `bench`: the benchmark suite of iterable-lists. `scripts/bench` builds it and runs
//! `bench all`, which measures the five figures of BENCHMARKS.md and prints one table.
//!
//! ```text
//! bench all --anchor DIR [--work DIR] [--quick] [--only 1,2,3,4,5] [--out FILE]
//! ```
//!
//! The other subcommands (`child-transform`, `child-memory`) are the processes the suite
//! starts so that CPU time and peak memory are measured for one process alone.

mod anchor;
mod backfill;
mod common;
mod durable;
mod efficiency;
mod events;
mod memory;
mod proc;
mod report;
mod transform;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("all") => all(&args),
        Some("child-transform") => (|| {
            let events = flag(&args, "--events").context("--events")?;
            let endpoint = flag(&args, "--endpoint").context("--endpoint")?;
            transform::child(events.as_ref(), &endpoint)
        })(),
        Some("child-memory") => (|| {
            let events = flag(&args, "--events").context("--events")?.parse()?;
            let endpoint = flag(&args, "--endpoint").context("--endpoint")?;
            let dir = flag(&args, "--dir").context("--dir")?;
            memory::child(
                events,
                &endpoint,
                dir.as_ref(),
                !args.iter().any(|a| a == "--no-deliver"),
            )
        })(),
        _ => {
            eprintln!(
                "usage: bench all --anchor DIR [--work DIR] [--quick] [--only 1,2,3,4,5] [--out FILE]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn all(args: &[String]) -> anyhow::Result<()> {
    let anchor_dir = anchor::check(&PathBuf::from(
        flag(args, "--anchor").context("--anchor DIR is required")?,
    ))?;
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<u32> = flag(args, "--only")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3, 4, 5]);
    let work_root = flag(args, "--work")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work_root)?;
    let work = tempfile::Builder::new()
        .prefix("iterable-lists-bench-")
        .tempdir_in(&work_root)?;
    let u = units::Units::new(quick);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    rt.block_on(async {
        for n in only {
            let t = Instant::now();
            eprintln!("figure {n} (load average {})", proc::loadavg());
            let r = match n {
                1 => transform::run(&anchor_dir, work.path(), u.transform_events, u.runs).await,
                2 => durable::run(work.path(), u.durable_events, u.runs).await,
                3 => efficiency::run(&anchor_dir, work.path(), u.churn_users, u.runs).await,
                4 => backfill::run(work.path(), u.backfill_members, u.runs).await,
                5 => memory::run(work.path(), &u.memory_sizes, true).await,
                other => Err(anyhow::anyhow!("no figure {other}")),
            };
            match r {
                Ok(f) => figures.extend(f),
                Err(e) => {
                    eprintln!("figure {n} failed: {e:#}");
                    failures.push(format!("figure {n}: {e:#}"));
                }
            }
            eprintln!("figure {n} took {:.0} s", t.elapsed().as_secs_f64());
        }
    });
    let table = report::table(&figures);
    let mut out = format!(
        "{table}\nSuite time: {:.1} min; load average at the end: {}{}\n",
        started.elapsed().as_secs_f64() / 60.0,
        proc::loadavg(),
        if quick { "; --quick sizes" } else { "" }
    );
    for f in &failures {
        out.push_str(&format!("\nFAILED {f}\n"));
    }
    println!("{out}");
    if let Some(path) = flag(args, "--out") {
        std::fs::write(&path, &out).with_context(|| format!("cannot write {path}"))?;
    }
    if !failures.is_empty() {
        bail!("{} figure(s) failed", failures.len());
    }
    Ok(())
}
