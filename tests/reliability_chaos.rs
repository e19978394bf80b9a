//! The chaos run: the service (`iterable-lists serve`) and the simulator (`iterable-lists
//! sim`) as separate processes; the simulator injects 5xx, 429 bursts (JSON and plain-text
//! bodies), slow answers, connection resets before and after applying a request, and
//! `invalidListId` for new lists; a client sends events with churn over 20 audiences,
//! retrying each batch until it is acknowledged; the service is killed with `SIGKILL` at
//! random moments and restarted.
//!
//! At the end every list equals the model built from acknowledged events (latest state per
//! identity), every acknowledged event has a final outcome in the delivery log, and every
//! rejection has a reason. The run prints its figures.
//!
//! The client is a Rust HTTP client that behaves as Segment's libraries do: batches of 100,
//! Basic auth with the write key, retries with backoff on connection errors, 429 (honouring
//! `Retry-After`) and 5xx, the same `messageId`s on every retry.
//!
//! Short form (the normal test suite): 20,000 events, 3 kills. Long form: `scripts/chaos
//! --long` (100,000 events, 5 kills); `CHAOS_EVENTS`, `CHAOS_KILLS`, `CHAOS_SEED` and
//! `CHAOS_REPORT` (a file for the figures as JSON) override.

mod reliability_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reliability_support::process::{Proc, start_serve, start_sim};
use serde_json::{Value, json};

const API_KEY: &str = "chaos-api-key";
const WRITE_KEY: &str = "chaos-write-key";
const ADMIN_TOKEN: &str = "chaos-admin-token";
const AUDIENCES: usize = 20;
const BATCH: usize = 100;

struct Params {
    events: usize,
    kills: usize,
    users: usize,
    seed: u64,
}

fn params() -> Params {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let events = env("CHAOS_EVENTS", 20_000) as usize;
    Params {
        events,
        kills: env("CHAOS_KILLS", 3) as usize,
        users: (events / 10).clamp(50, 5_000),
        seed: env("CHAOS_SEED", 9),
    }
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn audience(a: usize) -> String {
    format!("chaos_{a:02}")
}

/// One generated event and what it means for the model.
struct Gen {
    body: Value,
    message_id: String,
    /// `(audience, user, member)` for good events; `None` for the bad ones (rejected).
    effect: Option<(usize, usize, bool)>,
}

fn timestamp(i: usize) -> String {
    let ms = i % 1000;
    let s = (i / 1000) % 60;
    let m = (i / 60_000) % 60;
    let h = i / 3_600_000;
    format!("2026-06-01T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

fn generate(p: &Params) -> Vec<Gen> {
    let mut rng = Rng(p.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..p.events)
        .map(|i| {
            let message_id = format!("c-{i}");
            // About 1 % are bad (an email with a space): rejected at ingest with a reason.
            if rng.chance(0.01) {
                let body = json!({
                    "type": "identify", "messageId": message_id, "userId": format!("bad-{i}"),
                    "timestamp": timestamp(i),
                    "traits": { "email": "not an email", audience(0): true },
                    "context": { "personas": { "computation_class": "audience", "computation_key": audience(0) } }
                });
                return Gen {
                    body,
                    message_id,
                    effect: None,
                };
            }
            let a = rng.below(AUDIENCES as u64) as usize;
            let u = rng.below(p.users as u64) as usize;
            let member = rng.chance(0.6);
            let key = audience(a);
            let user = format!("cu{u}");
            let email = format!("{user}@example.com");
            let personas = json!({ "personas": { "computation_class": "audience", "computation_key": key } });
            let body = if rng.chance(0.5) {
                json!({ "type": "identify", "messageId": message_id, "userId": user,
                        "timestamp": timestamp(i), "traits": { "email": email, key.clone(): member },
                        "context": personas })
            } else {
                let name = if member {
                    "Audience Entered"
                } else {
                    "Audience Exited"
                };
                json!({ "type": "track", "event": name, "messageId": message_id, "userId": user,
                        "timestamp": timestamp(i), "properties": { "email": email, key.clone(): member },
                        "context": personas })
            };
            Gen {
                body,
                message_id,
                effect: Some((a, u, member)),
            }
        })
        .collect()
}

fn write_serve_config(dir: &Path, sim: &str) -> std::path::PathBuf {
    let path = dir.join("serve.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[store]
path = "{store}"

[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"

[delivery]
flush_interval_ms = 200
tick_ms = 20
backoff_base_ms = 50
backoff_cap_ms = 1000
send_timeout_ms = 3000
new_list_grace_ms = 15000
aimd_initial_rate = 50.0

[[destination]]
name = "engage"
write_key = "{WRITE_KEY}"
api_key = "{API_KEY}"
endpoint = "{sim}"
allow_custom_endpoint = true
project_type = "hybrid"
"#,
            store = dir.join("ledger.db").display()
        ),
    )
    .unwrap();
    path
}

fn sim_config(seed: u64) -> String {
    format!(
        r#"
seed = {seed}

[request_log]
capacity = 5000000
max_body_bytes = 2000000000

[[projects]]
id = 1001
type = "hybrid"
api_keys = ["{API_KEY}"]

[faults]
endpoints = ["subscribe", "unsubscribe", "create_list", "get_lists"]
error_rate = 0.08
error_statuses = [500, 502, 503, 504, 429]
delay_rate = 0.08
delay_min_ms = 100
delay_max_ms = 800
cut_before_rate = 0.03
cut_after_rate = 0.03
cut_mode = "reset"
new_list_invisible_ms = 1500

[limits]
rules = [{{ endpoints = ["subscribe", "unsubscribe"], requests = 100.0, per_ms = 1000 }}]

[limits.response]
body = "json"
retry_after = "none"
"#
    )
}

/// The 429 phases: most of the time 100 requests/s; every few seconds a burst at 3/s, its
/// 429s alternating JSON and plain-text bodies, with and without `Retry-After`.
async fn burst_driver(sim: String, stop: Arc<AtomicBool>, bursts: Arc<AtomicUsize>) {
    let http = reqwest::Client::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let body = if n % 2 == 0 { "text" } else { "json" };
        let retry_after = if n % 3 == 0 {
            json!("computed")
        } else {
            json!("none")
        };
        let limits = |rate: f64| {
            json!({ "rules": [{ "endpoints": ["subscribe", "unsubscribe"], "requests": rate, "per_ms": 1000 }],
                    "response": { "body": body, "retry_after": retry_after } })
        };
        let _ = http
            .put(format!("{sim}/_sim/limits"))
            .json(&limits(3.0))
            .send()
            .await;
        bursts.fetch_add(1, Ordering::Relaxed);
        n += 1;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let _ = http
            .put(format!("{sim}/_sim/limits"))
            .json(&limits(100.0))
            .send()
            .await;
    }
}

#[derive(Default)]
struct ClientStats {
    retries: usize,
    duplicates: usize,
    rejected_in_replies: usize,
}

/// Sends every batch, retrying each until acknowledged; returns the client's counters.
async fn client(
    base: Arc<RwLock<String>>,
    batches: Vec<Vec<Value>>,
    bad_per_batch: Vec<usize>,
    acked: Arc<AtomicUsize>,
) -> ClientStats {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut stats = ClientStats::default();
    for (batch, bad) in batches.into_iter().zip(bad_per_batch) {
        let body = json!({ "batch": batch });
        let mut backoff = Duration::from_millis(50);
        loop {
            let url = format!("{}/v1/batch", base.read().unwrap());
            let wait = match http
                .post(url)
                .basic_auth(WRITE_KEY, Some(""))
                .json(&body)
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => {
                    let reply: Value = r.json().await.expect("reply");
                    assert_eq!(reply["success"], true, "{reply}");
                    let rejected = reply["rejected"].as_u64().unwrap_or(0) as usize;
                    let dup = reply["duplicates"].as_u64().unwrap_or(0) as usize;
                    // A batch accepted before a kill and sent again answers duplicates.
                    assert!(rejected == bad || dup > 0, "want {bad} rejected: {reply}");
                    for e in reply["errors"].as_array().into_iter().flatten() {
                        assert!(
                            !e["reason"].as_str().unwrap_or("").is_empty(),
                            "rejection without a reason: {e}"
                        );
                    }
                    stats.duplicates += dup;
                    stats.rejected_in_replies += rejected;
                    acked.fetch_add(batch.len(), Ordering::SeqCst);
                    break;
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let text = r.text().await.unwrap_or_default();
                    assert!(
                        status == 429 || status >= 500,
                        "the service refused a batch with {status}: {text}"
                    );
                    retry_after
                        .map(|s| Duration::from_secs(s.min(2)))
                        .unwrap_or(backoff)
                }
                // Connection refused (the service is down) or reset (killed mid-request).
                Err(_) => backoff,
            };
            stats.retries += 1;
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
    stats
}

/// When to kill: at random points of the client's progress (acknowledged events), or, when
/// progress is not known (the Python client), at random moments while it runs.
enum KillPlan {
    Progress(Arc<AtomicUsize>),
    Timed,
}

/// Kills the service at random moments (while the client sends, then once more during the
/// final delivery, after `client_done`) and restarts it.
#[allow(clippy::too_many_arguments)]
fn killer(
    mut serve: Proc,
    config: std::path::PathBuf,
    base: Arc<RwLock<String>>,
    plan: KillPlan,
    client_done: Arc<AtomicBool>,
    total: usize,
    kills: usize,
    seed: u64,
) -> (Proc, usize) {
    let mut rng = Rng(seed.wrapping_mul(31) | 1);
    let mut points: Vec<usize> = (0..kills.saturating_sub(1))
        .map(|_| total / 10 + rng.below((total * 8 / 10) as u64) as usize)
        .collect();
    points.sort_unstable();
    points.push(usize::MAX);
    let mut done = 0;
    // Bounded, so that a failing client cannot leave this thread waiting forever.
    let deadline = Instant::now() + Duration::from_secs(120 + total as u64 / 50);
    for point in points {
        let last = point == usize::MAX;
        match &plan {
            KillPlan::Progress(acked) => {
                while !(acked.load(Ordering::SeqCst) >= point
                    || last && client_done.load(Ordering::SeqCst))
                {
                    if Instant::now() > deadline {
                        return (serve, done);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            KillPlan::Timed if !last => {
                std::thread::sleep(Duration::from_millis(1000 + rng.below(2000)));
            }
            KillPlan::Timed => {
                while !client_done.load(Ordering::SeqCst) {
                    if Instant::now() > deadline {
                        return (serve, done);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(rng.below(if last {
            1500
        } else {
            300
        })));
        serve.signal("KILL");
        serve.wait_exit(Duration::from_secs(10));
        done += 1;
        std::thread::sleep(Duration::from_millis(100 + rng.below(700)));
        let (p, url) = start_serve(&config, &[("RUST_LOG", "warn")]);
        serve = p;
        *base.write().unwrap() = url;
    }
    (serve, done)
}

/// A TCP relay on a stable port to whichever service process is current: the Python client
/// is given one host, while each restart of the service listens on a new port. A kill
/// breaks the relayed connections, as it would behind a load balancer.
async fn relay(base: Arc<RwLock<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = base
                .read()
                .unwrap()
                .trim_start_matches("http://")
                .to_owned();
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Which client sends: `CHAOS_CLIENT=python|rust`; by default the official Python library
/// when `scripts/test` installed it under `.test-deps/`, else the Rust client.
fn python_client() -> bool {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".test-deps/python/segment/analytics/__init__.py")
        .exists();
    match std::env::var("CHAOS_CLIENT").as_deref() {
        Ok("python") => true,
        Ok("rust") => false,
        _ => installed,
    }
}

/// Sends every event through segment-analytics-python; returns the messageIds of batches it
/// gave up on.
async fn python_send(dir: &Path, host: &str, events: &[Gen]) -> Vec<String> {
    let path = dir.join("events.ndjson");
    let mut text = String::new();
    for g in events {
        text.push_str(&g.body.to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reliability_support/chaos_client.py");
    let mut child = Proc::spawn(
        std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(script)
            .arg(host)
            .arg(WRITE_KEY)
            .arg(&path),
    );
    let status = tokio::task::spawn_blocking(move || {
        let s = child.wait_exit(Duration::from_secs(1800));
        (s, child.output())
    })
    .await
    .unwrap();
    let (status, out) = status;
    assert!(status.success(), "the Python client failed:\n{out}");
    let last = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no summary from the Python client:\n{out}"));
    let v: Value = serde_json::from_str(last).expect("summary");
    assert_eq!(v["sent"], events.len(), "{out}");
    v["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

async fn settle(http: &reqwest::Client, base: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = http
            .get(format!("{base}/admin/status"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            && let Ok(st) = r.json::<Value>().await
            && st["backlog"] == 0
            && st["in_flight"] == 0
        {
            return st;
        }
        assert!(Instant::now() < deadline, "delivery did not settle");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The simulator's lists by name, with their ids (several lists under one name are all kept).
async fn sim_lists(
    http: &reqwest::Client,
    sim: &str,
) -> BTreeMap<String, Vec<(i64, BTreeSet<String>)>> {
    let lists: Value = http
        .get(format!("{sim}/_sim/projects/1001/lists"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: BTreeMap<String, Vec<(i64, BTreeSet<String>)>> = BTreeMap::new();
    for l in lists.as_array().expect("lists") {
        let id = l["id"].as_i64().expect("id");
        let members: BTreeSet<String> = http
            .get(format!("{sim}/_sim/projects/1001/lists/{id}/members"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.entry(l["name"].as_str().unwrap_or("").to_owned())
            .or_default()
            .push((id, members));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_lists_equal_the_model_after_faults_and_kills() {
    let p = params();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (sim_proc, sim) = start_sim(dir.path(), &sim_config(p.seed));
    let config = write_serve_config(dir.path(), &sim);
    let (serve, base) = start_serve(&config, &[("RUST_LOG", "warn")]);
    let base = Arc::new(RwLock::new(base));

    let events = generate(&p);
    let bad_total = events.iter().filter(|g| g.effect.is_none()).count();
    let mut batches = Vec::new();
    let mut bad_per_batch = Vec::new();
    for chunk in events.chunks(BATCH) {
        batches.push(chunk.iter().map(|g| g.body.clone()).collect::<Vec<_>>());
        bad_per_batch.push(chunk.iter().filter(|g| g.effect.is_none()).count());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let bursts = Arc::new(AtomicUsize::new(0));
    let driver = tokio::spawn(burst_driver(sim.clone(), stop.clone(), bursts.clone()));
    let acked = Arc::new(AtomicUsize::new(0));
    let client_done = Arc::new(AtomicBool::new(false));
    let use_python = python_client();
    let killer_task = {
        let (base, config, done) = (base.clone(), config.clone(), client_done.clone());
        let plan = if use_python {
            KillPlan::Timed
        } else {
            KillPlan::Progress(acked.clone())
        };
        let (total, kills, seed) = (p.events, p.kills, p.seed);
        tokio::task::spawn_blocking(move || {
            killer(serve, config, base, plan, done, total, kills, seed)
        })
    };
    let (stats, gave_up) = if use_python {
        let host = relay(base.clone()).await;
        let failed = python_send(dir.path(), &host, &events).await;
        (ClientStats::default(), failed)
    } else {
        let stats = client(base.clone(), batches, bad_per_batch, acked.clone()).await;
        (stats, Vec::new())
    };
    client_done.store(true, Ordering::SeqCst);
    let sent_at = started.elapsed();
    let (serve, kills) = killer_task.await.expect("killer");
    let http = reqwest::Client::new();
    let current = base.read().unwrap().clone();
    let settle_bound = Duration::from_secs(60 + (p.events as u64) / 100);
    settle(&http, &current, settle_bound).await;
    stop.store(true, Ordering::Relaxed);
    let _ = driver.await;

    // Lists against the model: the latest state per (audience, user), by timestamp (events
    // are generated in timestamp order and every batch was acknowledged).
    let unacked: std::collections::HashSet<&str> = gave_up.iter().map(String::as_str).collect();
    let acknowledged: Vec<&Gen> = events
        .iter()
        .filter(|g| !unacked.contains(g.message_id.as_str()))
        .collect();
    let mut model: HashMap<(usize, usize), bool> = HashMap::new();
    for g in &acknowledged {
        if let Some((a, u, m)) = g.effect {
            model.insert((a, u), m);
        }
    }
    let lists = sim_lists(&http, &sim).await;
    // The list each audience is bound to, per the admin API.
    let audiences: Value = http
        .get(format!("{current}/admin/destinations/engage/audiences"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bound: HashMap<String, i64> = audiences["audiences"]
        .as_array()
        .expect("audiences")
        .iter()
        .filter_map(|a| Some((a["key"].as_str()?.to_owned(), a["list_id"].as_i64()?)))
        .collect();
    let mut mismatches = 0usize;
    let mut duplicate_lists = 0usize;
    let mut orphan_members = 0usize;
    let mut members_total = 0usize;
    for a in 0..AUDIENCES {
        let key = audience(a);
        let want: BTreeSet<String> = model
            .iter()
            .filter(|((aa, _), m)| *aa == a && **m)
            .map(|((_, u), _)| format!("cu{u}@example.com"))
            .collect();
        members_total += want.len();
        let named = lists.get(&key).cloned().unwrap_or_default();
        duplicate_lists += named.len().saturating_sub(1);
        let mut got = BTreeSet::new();
        for (id, members) in named {
            if Some(&id) == bound.get(&key) {
                got = members;
            } else {
                // A second list under the audience's name (see RELIABILITY.md, findings):
                // nothing may have been sent to it.
                orphan_members += members.len();
            }
        }
        let diff = want.symmetric_difference(&got).count();
        if diff > 0 {
            eprintln!(
                "{key}: {diff} differ (missing {:?}, extra {:?})",
                want.difference(&got).take(5).collect::<Vec<_>>(),
                got.difference(&want).take(5).collect::<Vec<_>>()
            );
        }
        mismatches += diff;
    }

    // Faults the simulator injected, from its request log.
    let log: Vec<Value> = http
        .get(format!("{sim}/_sim/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Entries are logged as requests finish; gaps are sequence numbers with no entry.
    let max_seq = log.iter().filter_map(|e| e["seq"].as_u64()).max();
    let log_gaps = max_seq.map_or(0, |m| (m + 1) as usize - log.len());
    let mut faults: BTreeMap<String, usize> = BTreeMap::new();
    for e in &log {
        let path = e["path"].as_str().unwrap_or("");
        let status = e["status"].as_u64();
        let kind = match (e["fault"].as_str(), status) {
            (Some("error"), Some(429)) => Some("429 (injected)".to_owned()),
            (Some("error"), Some(s)) => Some(format!("{s}")),
            (Some("rate_limit"), _) => Some("429 (rate limit)".to_owned()),
            (Some("delay"), _) => Some("slow answer".to_owned()),
            (Some("cut_before"), _) => Some("reset before applying".to_owned()),
            (Some("cut_after"), _) => Some("reset after applying".to_owned()),
            (Some(other), _) => Some(other.to_owned()),
            (None, Some(400)) if path.contains("subscribe") => {
                Some("invalidListId (new list)".to_owned())
            }
            _ => None,
        };
        if let Some(k) = kind {
            *faults.entry(k).or_default() += 1;
        }
    }
    let faults_total: usize = faults.values().sum();
    if duplicate_lists > 0 {
        for e in log
            .iter()
            .filter(|e| e["method"] == "POST" && e["path"] == "/api/lists")
        {
            eprintln!(
                "create list: seq {} status {} fault {} body {}",
                e["seq"], e["status"], e["fault"], e["body"]
            );
        }
    }

    // Outcomes: stop the service, read the delivery log from the store.
    serve.signal("TERM");
    let mut serve = serve;
    serve.wait_exit(Duration::from_secs(60));
    drop(sim_proc);
    let store = store::SqliteStore::open(
        dir.path().join("ledger.db"),
        store::SqliteOptions::default(),
    )
    .expect("store opens after the service stopped");
    use store::Store as _;
    let entries = store
        .log(&store::LogQuery {
            destination: None,
            audience_key: None,
            identity: None,
            outcome: None,
            limit: usize::MAX,
        })
        .expect("log");
    let by_id: HashMap<&str, &store::LogEntry> =
        entries.iter().map(|e| (e.message_id.as_str(), e)).collect();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut unfinished = 0usize;
    let mut missing = 0usize;
    let mut wrong = Vec::new();
    for g in &acknowledged {
        let Some(e) = by_id.get(g.message_id.as_str()) else {
            missing += 1;
            continue;
        };
        let o = serde_json::to_value(e.outcome).unwrap();
        let o = o.as_str().unwrap_or("?").to_owned();
        *outcomes.entry(o.clone()).or_default() += 1;
        if !e.outcome.is_final() {
            unfinished += 1;
        }
        let reason_ok = e.reason.as_deref().is_some_and(|r| !r.trim().is_empty());
        match (&g.effect, o.as_str()) {
            (None, "rejected") if reason_ok => {}
            (Some(_), "delivered") => {}
            (Some(_), "skipped") if reason_ok => {}
            _ => wrong.push(format!(
                "{}: {o} {:?} {:?}",
                g.message_id, e.reason_code, e.reason
            )),
        }
    }
    let rejections_without_reason = entries
        .iter()
        .filter(|e| {
            serde_json::to_value(e.outcome).unwrap() == "rejected"
                && e.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        })
        .count();

    let requests = log.len();
    let figures = json!({
        "client": if use_python { "segment-analytics-python (official library)" } else { "rust (Segment-like retries)" },
        "events": p.events,
        "events_the_client_gave_up_on": gave_up.len(),
        "bad_events": bad_total,
        "users": p.users,
        "audiences": AUDIENCES,
        "batches": p.events.div_ceil(BATCH),
        "client_retries": (!use_python).then_some(stats.retries),
        "duplicates_answered": (!use_python).then_some(stats.duplicates),
        "kills": kills,
        "iterable_requests": requests,
        "request_log_gaps": log_gaps,
        "faults_injected": faults_total,
        "faults": faults,
        "rate_limit_bursts": bursts.load(Ordering::Relaxed),
        "outcomes": outcomes,
        "members_expected": members_total,
        "mismatches": mismatches,
        "duplicate_lists": duplicate_lists,
        "members_in_duplicate_lists": orphan_members,
        "events_without_log_entry": missing,
        "unfinished": unfinished,
        "wrong_outcomes": wrong.len(),
        "rejections_without_reason": rejections_without_reason,
        "seconds_sending": sent_at.as_secs_f64().round(),
        "seconds_total": started.elapsed().as_secs_f64().round(),
        "seed": p.seed,
    });
    println!(
        "chaos figures: {}",
        serde_json::to_string_pretty(&figures).unwrap()
    );
    if let Ok(path) = std::env::var("CHAOS_REPORT") {
        std::fs::write(path, serde_json::to_string_pretty(&figures).unwrap()).unwrap();
    }
    assert!(kills >= 3, "only {kills} kills");
    assert!(faults_total > 0, "no fault was injected");
    assert_eq!(mismatches, 0, "lists differ from the model: {figures}");
    assert_eq!(
        orphan_members, 0,
        "members in a second list of an audience: {figures}"
    );
    assert_eq!(
        missing, 0,
        "acknowledged events without an outcome: {figures}"
    );
    assert_eq!(unfinished, 0, "{figures}");
    assert!(
        wrong.is_empty(),
        "{}",
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(rejections_without_reason, 0, "{figures}");
}
