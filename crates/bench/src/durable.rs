//! Figure 2: events posted to the running service's `/v1/batch` (100 per request, unique
//! `messageId`s) → store → simulator. Sustained events/s from the first post to the last
//! confirmation, and the time from acceptance to Iterable's confirmation of single events
//! posted once every 100 ms to another audience while that backfill runs (from the delivery
//! log's `accepted_at_ms` and `updated_at_ms`).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::common::{self, ADMIN_TOKEN, API_KEY, DEST, EngineKnobs, WRITE_KEY};
use crate::report::{Figure, median, quantile};

const PER_REQUEST: usize = 100;
const CONNECTIONS: usize = 4;

struct Service {
    child: tokio::process::Child,
    base: String,
}

impl Service {
    async fn start(config: &Path, log: &Path) -> anyhow::Result<Service> {
        let exe = std::env::current_exe()?
            .parent()
            .context("no directory")?
            .join("iterable-lists");
        anyhow::ensure!(
            exe.exists(),
            "{} not built (scripts/bench builds it)",
            exe.display()
        );
        let port = crate::proc::free_port()?;
        let child = tokio::process::Command::new(exe)
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
                if r.status().is_success() {
                    break;
                }
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("the service did not come up; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Service { child, base })
    }

    fn pid(&self) -> String {
        self.child.id().map(|p| p.to_string()).unwrap_or_default()
    }
}

fn batch_body(events: &[String]) -> String {
    format!(
        r#"{{"writeKey":"{WRITE_KEY}","batch":[{}]}}"#,
        events.join(",")
    )
}

/// Posts `body` until it is answered 200 (429/503 are backpressure: wait and retry).
async fn post(client: &reqwest::Client, url: &str, body: String) -> anyhow::Result<u32> {
    let mut waits = 0;
    loop {
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        match r.status().as_u16() {
            200 => return Ok(waits),
            429 | 503 => {
                waits += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            s => bail!(
                "ingest answered {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
    }
}

struct Run {
    ingest_rate: f64,
    e2e_rate: f64,
    latencies_ms: Vec<f64>,
    peak_mb: f64,
    backpressure: u32,
}

async fn one(work: &Path, events: usize, run: usize) -> anyhow::Result<Run> {
    let sim = common::simulator(0).await?;
    let dir = tempfile::tempdir_in(work)?;
    let text = common::config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        &EngineKnobs::default(),
    );
    let cfg = dir.path().join("service.toml");
    std::fs::write(&cfg, text)?;
    let svc = Service::start(&cfg, &dir.path().join("service.log")).await?;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/batch", svc.base);

    // Request bodies are built before the clock starts.
    let prefix = format!("d{run}-");
    let mut bodies = Vec::with_capacity(events / PER_REQUEST + 1);
    let mut chunk = Vec::with_capacity(PER_REQUEST);
    for i in 0..events {
        let mut s = String::new();
        crate::events::membership_event(
            &mut s,
            &format!("{prefix}m-{i}"),
            &format!("{prefix}user-{i}"),
            &format!("durable_{}", i % 10),
            None,
            true,
            1_760_000_000_000 + i as i64,
        );
        chunk.push(s);
        if chunk.len() == PER_REQUEST {
            bodies.push(batch_body(&chunk));
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        bodies.push(batch_body(&chunk));
    }
    let bodies = Arc::new(bodies);

    let t0 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (bodies, next, client, url) =
            (bodies.clone(), next.clone(), client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut waits = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = bodies.get(i) else { break };
                waits += post(&client, &url, b.clone()).await?;
            }
            anyhow::Ok(waits)
        }));
    }
    // The trickle: one event every 100 ms to another audience, until the backfill is done.
    let done = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicUsize::new(0));
    let trickle = {
        let (done, client, url, prefix) =
            (done.clone(), client.clone(), url.clone(), prefix.clone());
        let posted = posted.clone();
        tokio::spawn(async move {
            let mut users = Vec::new();
            let mut k = 0;
            while !done.load(Ordering::Relaxed) {
                let user = format!("{prefix}trickle-{k}");
                let mut s = String::new();
                crate::events::membership_event(
                    &mut s,
                    &format!("{user}-m"),
                    &user,
                    "trickle",
                    None,
                    true,
                    1_770_000_000_000 + k,
                );
                post(&client, &url, batch_body(&[s])).await?;
                users.push(user);
                posted.fetch_add(1, Ordering::Relaxed);
                k += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(users)
        })
    };
    let mut backpressure = 0;
    for t in tasks {
        backpressure += t.await??;
    }
    let accepted = t0.elapsed().as_secs_f64();
    // Delivered: every backfill member confirmed (the status counters of the service).
    let status_url = format!("{}/admin/status", svc.base);
    let e2e = loop {
        // Trickle events count among the delivered: wait for them too (conservative).
        let want = (events + posted.load(Ordering::Relaxed)) as u64;
        let st: Value = client
            .get(&status_url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if st["stats"]["delivered"].as_u64().unwrap_or(0) >= want {
            break t0.elapsed().as_secs_f64();
        }
        if t0.elapsed() > Duration::from_secs(900) {
            bail!("the backfill was not delivered within 900 s: {st}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    done.store(true, Ordering::Relaxed);
    let users = trickle.await??;
    // Let the last trickle events land, then read their log entries.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let mut latencies_ms = Vec::new();
    for u in &users {
        let v: Value = client
            .get(format!("{}/admin/log", svc.base))
            // The ledger keys a userId as `u:<userId>` (destination::model::IdentityKey).
            .query(&[
                ("destination", DEST),
                ("identity", format!("u:{u}").as_str()),
            ])
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let e = &v["entries"][0];
        anyhow::ensure!(
            e["outcome"] == "delivered",
            "trickle event of {u} not delivered: {v}"
        );
        let (a, b) = (e["accepted_at_ms"].as_f64(), e["updated_at_ms"].as_f64());
        latencies_ms.push(b.unwrap_or(f64::NAN) - a.unwrap_or(f64::NAN));
    }
    let peak_mb = crate::proc::status_mib(&svc.pid(), "VmHWM:");
    let mut members = 0;
    for l in sim.lists(API_KEY)? {
        members += sim.list_members(API_KEY, l.id)?.len();
    }
    anyhow::ensure!(
        members == events + users.len(),
        "the simulator holds {members} members, expected {}",
        events + users.len()
    );
    drop(svc);
    sim.shutdown().await;
    Ok(Run {
        ingest_rate: events as f64 / accepted,
        e2e_rate: events as f64 / e2e,
        latencies_ms,
        peak_mb,
        backpressure,
    })
}

/// Runs figure 2 `runs` times with `events` events each.
pub async fn run(work: &Path, events: usize, runs: usize) -> anyhow::Result<Vec<Figure>> {
    let (mut ingest, mut e2e, mut p50, mut p99, mut notes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let r = one(work, events, i).await?;
        let (a, b) = (
            quantile(&r.latencies_ms, 0.5),
            quantile(&r.latencies_ms, 0.99),
        );
        eprintln!(
            "  durable run {}: ingest {:.0} events/s, end to end {:.0} events/s, trickle p50 {a:.0} ms p99 {b:.0} ms over {} events, service peak RSS {:.0} MiB, {} backpressure answers",
            i + 1,
            r.ingest_rate,
            r.e2e_rate,
            r.latencies_ms.len(),
            r.peak_mb,
            r.backpressure
        );
        notes.push(format!("{} trickle events", r.latencies_ms.len()));
        ingest.push(r.ingest_rate);
        e2e.push(r.e2e_rate);
        p50.push(a);
        p99.push(b);
    }
    let m = median(&e2e);
    Ok(vec![
        Figure::new(
            "2 durable",
            &format!("sustained events/s, post to confirmation ({events} events)"),
            m,
            "",
            runs,
        )
        .samples(&e2e)
        .goal(">= 50,000", m >= 50_000.0)
        .note(&format!(
            "{PER_REQUEST} events per request, {CONNECTIONS} connections, synchronous = full"
        )),
        Figure::new(
            "2 durable",
            "ingest events/s (all answered 200)",
            median(&ingest),
            "",
            runs,
        )
        .samples(&ingest),
        Figure::new(
            "2 durable",
            "trickle p50, acceptance to confirmation",
            median(&p50),
            " ms",
            runs,
        )
        .samples(&p50)
        .note(&format!("flush interval 1000 ms; {}", notes.join(", "))),
        Figure::new(
            "2 durable",
            "trickle p99, acceptance to confirmation",
            median(&p99),
            " ms",
            runs,
        )
        .samples(&p99),
    ])
}
