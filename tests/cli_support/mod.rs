//! Helpers of the command-line and end-to-end tests: the binary as separate processes
//! (`sim`, `serve`), configuration files, generated events, an independent model of the lists
//! the events imply, and the simulator's lists read through its control API.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_iterable-lists");
pub const API_KEY: &str = "e2e-api-key";
pub const WRITE_KEY: &str = "e2e-write-key";
pub const ADMIN_TOKEN: &str = "e2e-admin-token";
pub const PROJECT: i64 = 1001;

/// A child process, killed on drop.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads lines until one holds an `http://` address; returns it.
fn address_from(reader: impl std::io::Read + Send + 'static, what: &str) -> String {
    let mut lines = BufReader::new(reader).lines();
    for _ in 0..50 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(w) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return w.trim_end_matches(['/', ',', '.']).to_owned();
        }
    }
    panic!("{what} printed no address");
}

/// `iterable-lists sim` on a free port, one hybrid project answering [`API_KEY`].
pub fn start_sim(dir: &Path) -> Proc {
    let config = dir.join("sim.toml");
    std::fs::write(
        &config,
        format!("seed = 3\n[[projects]]\nid = {PROJECT}\ntype = \"hybrid\"\napi_keys = [\"{API_KEY}\"]\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim starts");
    let base = address_from(child.stdout.take().unwrap(), "sim");
    Proc { child, base }
}

/// A service configuration pointing at the simulator at `sim_base`.
pub fn write_config(dir: &Path, sim_base: &str, extra: &str) -> PathBuf {
    let path = dir.join("service.toml");
    let store = dir.join("ledger.db");
    std::fs::write(
        &path,
        format!(
            r#"[store]
path = {store:?}
synchronous = "normal"

[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"

[delivery]
flush_interval_ms = 200
tick_ms = 20
backoff_base_ms = 50
backoff_cap_ms = 1000

[[destination]]
name = "engage"
write_key = "{WRITE_KEY}"
api_key = "{API_KEY}"
endpoint = "{sim_base}"
allow_custom_endpoint = true
project_type = "hybrid"
{extra}
"#,
            store = store.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// `iterable-lists serve` on a free port.
pub fn start_serve(config: &Path) -> Proc {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let base = address_from(child.stderr.take().unwrap(), "serve");
    Proc { child, base }
}

/// Runs the binary with arguments and returns its output.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("the binary runs")
}

fn get(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    })
}

/// The simulator's lists by name, members as `getUsers?preferUserId=true` lists them (the
/// userId when the user has one, else the email).
pub fn sim_lists(base: &str) -> BTreeMap<String, BTreeSet<String>> {
    let lists = get(&format!("{base}/_sim/projects/{PROJECT}/lists"));
    let mut out = BTreeMap::new();
    for l in lists.as_array().unwrap() {
        let id = l["id"].as_i64().unwrap();
        let name = l["name"].as_str().unwrap().to_owned();
        let members = get(&format!(
            "{base}/_sim/projects/{PROJECT}/lists/{id}/members?preferUserId=true"
        ));
        let set: BTreeSet<String> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect();
        out.insert(name, set);
    }
    out
}

/// The model: for each audience, the identities (userId, else lowercased email) whose latest
/// audience event (by timestamp, later position breaking ties; a messageId counted once)
/// says "in". Only events with `context.personas`, a boolean value and a plausible identifier
/// count.
pub fn model(events: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let mut latest: BTreeMap<(String, String), (i64, usize, bool)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if let Some(id) = e["messageId"].as_str()
            && !seen.insert(id.to_owned())
        {
            continue;
        }
        let Some(key) = e["context"]["personas"]["computation_key"].as_str() else {
            continue;
        };
        let holder = if e["type"] == "track" {
            &e["properties"]
        } else {
            &e["traits"]
        };
        let Some(member) = holder[key].as_bool() else {
            continue;
        };
        let identity = match e["userId"].as_str().filter(|u| !u.is_empty()) {
            Some(u) => u.to_owned(),
            None => {
                let Some(email) = [&e["traits"]["email"], &e["context"]["traits"]["email"]]
                    .into_iter()
                    .find_map(Value::as_str)
                else {
                    continue;
                };
                if !email.contains('@') || email.contains(' ') {
                    continue;
                }
                email.to_lowercase()
            }
        };
        let ts = segment::Timestamp::parse(e["timestamp"].as_str().unwrap())
            .unwrap()
            .unix_millis();
        let slot = latest
            .entry((key.to_owned(), identity))
            .or_insert((i64::MIN, 0, false));
        if (ts, i) >= (slot.0, slot.1) {
            *slot = (ts, i, member);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((audience, identity), (_, _, member)) in latest {
        let set = out.entry(audience).or_default();
        if member {
            set.insert(identity);
        }
    }
    out
}

/// Every audience of the model equals the simulator's list of that name (a list that was
/// never created counts as empty), and the simulator holds no list the model does not know.
pub fn assert_lists_match(sim_base: &str, expected: &BTreeMap<String, BTreeSet<String>>) {
    let actual = sim_lists(sim_base);
    let empty = BTreeSet::new();
    for (name, want) in expected {
        let have = actual.get(name).unwrap_or(&empty);
        let missing: Vec<_> = want.difference(have).take(5).collect();
        let extra: Vec<_> = have.difference(want).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "list {name}: {} expected, {} held; missing e.g. {missing:?}, extra e.g. {extra:?}",
            want.len(),
            have.len()
        );
    }
    for name in actual.keys() {
        assert!(expected.contains_key(name), "unexpected list {name}");
    }
}

/// The example events shipped in `examples/engage/` (those the demo replays), as one NDJSON
/// file per input file in
/// `dir` (the pretty-printed `/v1/batch` body becomes one line), and every event parsed.
pub fn example_files(dir: &Path) -> (Vec<PathBuf>, Vec<Value>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/engage");
    let mut files = Vec::new();
    let mut events = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson" || x == "json"))
        .collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        let out = dir.join(p.file_name().unwrap()).with_extension("ndjson");
        if p.extension().unwrap() == "json" {
            let body: Value = serde_json::from_str(&text).unwrap();
            if body.get("batch").is_none() {
                continue; // event.json: the single event for `eval`, not part of the replay
            }
            events.extend(body["batch"].as_array().unwrap().iter().cloned());
            std::fs::write(&out, format!("{body}\n")).unwrap();
        } else {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                events.push(serde_json::from_str(line).unwrap());
            }
            std::fs::write(&out, &text).unwrap();
        }
        files.push(out);
    }
    (files, events)
}

/// A deterministic backfill: `n` identify events over `audiences` audiences, users entering
/// and leaving in shuffled time order, with some repeated messageIds.
pub fn backfill(n: usize, audiences: usize, seed: u64) -> Vec<Value> {
    let mut state = seed | 1;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let users = (n / audiences / 2).max(1) as u64;
    let base_ms: i64 = 1_790_000_000_000;
    let mut out: Vec<Value> = Vec::with_capacity(n);
    for i in 0..n {
        let r = next();
        if i > 0 && r % 500 == 0 {
            // A redelivered event (same messageId): applied once.
            let j = (next() as usize) % i;
            let dup: Value = out[j].clone();
            out.push(dup);
            continue;
        }
        let audience = format!("backfill_{:02}", (r >> 8) as usize % audiences);
        let user = (r >> 20) % users;
        let member = (r >> 40) % 3 != 0;
        let ts = base_ms + ((next() >> 20) % 86_400_000) as i64;
        out.push(json!({
            "type": "identify",
            "messageId": format!("bf-{i}"),
            "userId": format!("bu-{user}"),
            "anonymousId": null,
            "timestamp": segment::Timestamp::from_unix_millis(ts).to_rfc3339(),
            "traits": { "email": format!("bu-{user}@example.com"), audience.clone(): member },
            "context": { "personas": {
                "computation_class": "audience",
                "computation_key": audience,
                "computation_id": "aud_backfill",
            } }
        }));
    }
    out
}

/// Waits until `f` is true, polling; panics after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
