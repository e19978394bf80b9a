//! How many subscribers per second the simulator absorbs on `POST /api/lists/subscribe`
//! requests of 1000 subscribers, over real HTTP on loopback.
//!
//! Run: `cargo bench -p iterable-sim --bench subscribe_throughput`
//! Knobs (environment): `SIM_BENCH_SECS` (default 5), `SIM_BENCH_CLIENTS` (default 4),
//! `SIM_BENCH_BATCHES` (distinct bodies, default 400), `SIM_BENCH_LOG_CAPACITY` (request log
//! entries, default 10000 as the simulator's own default).
//!
//! Prints three figures, all with the request log on (its default): new users (each request
//! creates 1000 users), re-subscribes of existing users (the steady state of a sync), and
//! re-subscribes carrying two `dataFields` each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};

const PER_REQUEST: usize = 1000;
const LIST: i64 = 1;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn body(batch: usize, fields: bool) -> bytes::Bytes {
    let subscribers: Vec<serde_json::Value> = (0..PER_REQUEST)
        .map(|i| {
            let n = batch * PER_REQUEST + i;
            let mut s = serde_json::json!({
                "email": format!("user{n}@example.com"),
                "userId": format!("user-{n}"),
            });
            if fields {
                s["dataFields"] = serde_json::json!({"plan": "pro", "score": n % 100});
            }
            s
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"listId": LIST, "subscribers": subscribers}))
        .map(bytes::Bytes::from)
        .unwrap_or_default()
}

/// CPU time (user + system) used so far by this process's threads whose name starts with
/// `prefix`, from `/proc/self/task/*/stat` (Linux; `None` elsewhere). Clock ticks are assumed
/// to be 1/100 s, the Linux default. Threads that already ended are not counted, so both
/// runtimes keep their threads for the whole run.
fn cpu_time(prefix: &str) -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("stat")) else {
            continue;
        };
        // The thread name is parenthesised and may contain spaces.
        let (head, rest) = stat.rsplit_once(')')?;
        let name = head.split_once('(')?.1;
        if !name.starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        ticks += utime + stime;
    }
    Some(Duration::from_millis(ticks * 10))
}

/// CPU used by the server's and the clients' threads.
#[derive(Clone, Copy)]
struct Cpu {
    server: Option<Duration>,
    client: Option<Duration>,
}

impl Cpu {
    fn now() -> Cpu {
        Cpu {
            server: cpu_time("sim-server"),
            client: cpu_time("bench-client"),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        let d =
            |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| a.saturating_sub(b));
        Cpu {
            server: d(self.server, before.server),
            client: d(self.client, before.client),
        }
    }
}

fn report(label: &str, n: u64, wall: Duration, cpu: Cpu) {
    print!(
        "{label} {:>9.0} subscribers/s wall ({n} in {:.2} s)",
        n as f64 / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    match (cpu.server, cpu.client) {
        (Some(s), Some(c)) if !s.is_zero() => println!(
            "; server {:.2} CPU-s = {:.0} subscribers per server CPU-second (clients {:.2} CPU-s)",
            s.as_secs_f64(),
            n as f64 / s.as_secs_f64(),
            c.as_secs_f64()
        ),
        _ => println!(),
    }
}

/// Sends `bodies` (round-robin across `clients` connections) until every body was sent once
/// (`once`) or until `secs` passed; returns (subscribers, elapsed).
async fn run(
    url: &str,
    bodies: Arc<Vec<bytes::Bytes>>,
    clients: usize,
    once: bool,
    secs: u64,
) -> (u64, Duration) {
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (bodies, next, done, url) =
            (bodies.clone(), next.clone(), done.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if (once && i >= bodies.len()) || (!once && Instant::now() >= deadline) {
                    break;
                }
                let b = bodies[i % bodies.len()].clone();
                let r = http
                    .post(&url)
                    .header("Api-Key", "bench")
                    .header("content-type", "application/json")
                    .body(b)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        done.fetch_add(PER_REQUEST as u64, Ordering::Relaxed);
                    }
                    Ok(r) => eprintln!("unexpected status {}", r.status()),
                    Err(e) => eprintln!("request failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (done.load(Ordering::Relaxed), start.elapsed())
}

fn runtime(name: &'static str, threads: usize) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("runtime: {e}");
            None
        }
    }
}

fn main() {
    let secs = env("SIM_BENCH_SECS", 5);
    let clients = env("SIM_BENCH_CLIENTS", 4) as usize;
    let batches = env("SIM_BENCH_BATCHES", 400) as usize;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // The server and the clients run on separate runtimes so that their CPU is told apart.
    let (Some(server_rt), Some(client_rt)) = (
        runtime("sim-server", threads),
        runtime("bench-client", threads),
    ) else {
        return;
    };
    let log = iterable_sim::RequestLogConfig {
        capacity: env("SIM_BENCH_LOG_CAPACITY", 10_000) as usize,
        ..Default::default()
    };
    let config = SimConfig::new()
        .project("bench", ProjectType::Hybrid)
        .request_log(log);
    let sim = match server_rt.block_on(Simulator::start(config)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simulator: {e}");
            return;
        }
    };
    if let Err(e) = sim.create_list("bench", LIST, "bench") {
        eprintln!("list: {e}");
        return;
    }
    let url = format!("{}/api/lists/subscribe", sim.base_url());
    let bodies = Arc::new((0..batches).map(|b| body(b, false)).collect::<Vec<_>>());
    let with_fields = Arc::new((0..batches).map(|b| body(b, true)).collect::<Vec<_>>());
    let kib = |b: &[bytes::Bytes]| b.iter().map(|b| b.len()).sum::<usize>() / b.len().max(1) / 1024;
    println!(
        "subscribe throughput: {PER_REQUEST} subscribers per request (email and userId: ~{} KiB; \
         with two dataFields: ~{} KiB), {clients} client connections, {threads} threads each side",
        kib(&bodies),
        kib(&with_fields)
    );
    client_rt.block_on(async move {
        let c0 = Cpu::now();
        let (n, t) = run(&url, bodies.clone(), clients, true, 0).await;
        let c1 = Cpu::now();
        report("new users:    ", n, t, c1.since(c0));
        let (n, t) = run(&url, bodies, clients, false, secs).await;
        let c2 = Cpu::now();
        report("re-subscribes:", n, t, c2.since(c1));
        let (n, t) = run(&url, with_fields, clients, false, secs).await;
        let c3 = Cpu::now();
        report("+ dataFields: ", n, t, c3.since(c2));
    });
    let members = sim
        .list_members("bench", LIST)
        .map(|m| m.len())
        .unwrap_or(0);
    println!("list size at the end: {members}");
    server_rt.block_on(sim.shutdown());
}
