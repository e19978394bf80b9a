//! Load test of the service over real HTTP on loopback: many concurrent keep-alive
//! connections post `/v1/batch` bodies of 100 Engage audience events, each with a unique
//! `messageId`, to the service (durable store, `synchronous = full`), which delivers to the
//! embedded Iterable simulator. Prints sustained accepted events per second, request latency
//! percentiles, and the end-to-end rate until every change was delivered.
//!
//! `cargo bench -p server --bench ingest_load` (env: `EVENTS`, default 300000; `CONNS`,
//! default 32; `SYNC`, `full` or `normal`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};

const PER_BATCH: usize = 100;
const AUDIENCES: usize = 20;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pre-built request bodies, so that the generator spends its time on HTTP, not JSON.
fn bodies(events: usize) -> Vec<bytes::Bytes> {
    let mut out = Vec::with_capacity(events / PER_BATCH);
    let mut n = 0usize;
    while n < events {
        let mut s = String::with_capacity(PER_BATCH * 330);
        s.push_str("{\"batch\":[");
        for i in 0..PER_BATCH {
            let id = n + i;
            let aud = id % AUDIENCES;
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"type\":\"identify\",\"messageId\":\"load-{id}\",\"userId\":\"user-{id}\",\
                 \"timestamp\":\"2026-01-01T00:00:00Z\",\"traits\":{{\"email\":\"user-{id}@example.com\",\
                 \"aud_{aud}\":true}},\"context\":{{\"personas\":{{\"computation_class\":\"audience\",\
                 \"computation_key\":\"aud_{aud}\"}}}}}}"
            ));
        }
        s.push_str("]}");
        out.push(bytes::Bytes::from(s));
        n += PER_BATCH;
    }
    out
}

fn main() {
    let events = env_or("EVENTS", 300_000);
    let conns = env_or("CONNS", 32);
    let sync = std::env::var("SYNC").unwrap_or_else(|_| "full".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(events, conns, &sync));
}

async fn run(events: usize, conns: usize, sync: &str) {
    let sim = Simulator::start(SimConfig::new().project("bench-key", ProjectType::Hybrid))
        .await
        .expect("sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[store]\npath = \"{}\"\nsynchronous = \"{sync}\"\n[delivery]\nbacklog_bound = 100000000\n\
         [[destination]]\nname = \"load\"\nwrite_key = \"wk-load\"\napi_key = \"bench-key\"\n\
         endpoint = \"{}\"\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n\
         rate_per_second = 10000\nconcurrency = 8\n",
        dir.path().join("load.db").display(),
        sim.base_url()
    );
    let config = delivery::Config::parse(&text, |_| None).expect("config");
    let server = server::Server::start(config).await.expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/v1/batch", listener.local_addr().expect("addr"));
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let bodies = Arc::new(bodies(events));
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .expect("client");
    eprintln!(
        "ingest_load: {} events in {} requests of {PER_BATCH}, {conns} connections, synchronous = {sync}",
        bodies.len() * PER_BATCH,
        bodies.len()
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (bodies, next, client, url) =
            (bodies.clone(), next.clone(), client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut busy = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                loop {
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .basic_auth("wk-load", Some(""))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    if status == 200 {
                        lat.push(t.elapsed());
                        break;
                    }
                    assert!(status == 429 || status == 503, "status {status}");
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            (lat, busy)
        }));
    }
    let mut lat = Vec::new();
    let mut busy = 0;
    for t in tasks {
        let (l, b) = t.await.expect("task");
        lat.extend(l);
        busy += b;
    }
    let accept_secs = started.elapsed().as_secs_f64();
    let accepted = lat.len() * PER_BATCH;
    lat.sort();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "accepted: {accepted} events in {accept_secs:.2} s = {:.0} events/s ({:.0} requests/s); \
         latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; busy answers {busy}",
        accepted as f64 / accept_secs,
        lat.len() as f64 / accept_secs,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let out = server.engine().wait_settled(Duration::from_secs(600)).await;
    let total_secs = started.elapsed().as_secs_f64();
    let stats = server.engine().stats();
    println!(
        "delivered: {} changes in {total_secs:.2} s from the first request = {:.0} events/s end to end \
         ({} Iterable requests); {out:?}",
        stats.delivered,
        stats.delivered as f64 / total_secs,
        stats.requests
    );
    let s = sim.sim();
    let members: usize = s
        .lists("bench-key")
        .expect("lists")
        .iter()
        .map(|l| s.list_members("bench-key", l.id).expect("members").len())
        .sum();
    println!(
        "simulator: {members} members over {} lists",
        s.lists("bench-key").expect("lists").len()
    );
    assert_eq!(members, accepted, "every accepted event must be in a list");
    server.engine().shutdown(Duration::from_secs(5)).await;
}
