//! Helpers of the `send` process tests: a simulator process, configuration files, events,
//! and reading lists back through the simulator's control API.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_iterable-lists");
pub const KEY: &str = "send-test-key";
pub const PROJECT: i64 = 1001;

/// A simulator process; killed on drop.
pub struct SimProcess {
    pub child: Child,
    pub base: String,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `iterable-lists sim` on a free port with `extra` TOML (faults, limits) appended to
/// a one-project configuration.
pub fn start_sim(dir: &Path, extra: &str) -> SimProcess {
    let config = dir.join("sim.toml");
    std::fs::write(
        &config,
        format!(
            "seed = 11\n[[projects]]\nid = {PROJECT}\ntype = \"hybrid\"\napi_keys = [\"{KEY}\"]\n\n{extra}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["sim", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sim starts");
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    // Keep reading, so that the simulator never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    SimProcess { child, base }
}

/// A `send` configuration file pointing at `base`.
pub fn write_config(dir: &Path, base: &str, extra: &str) -> PathBuf {
    let path = dir.join("send.toml");
    let store = dir.join("ledger.db");
    std::fs::write(
        &path,
        format!(
            "[store]\npath = {:?}\n\n[delivery]\nflush_interval_ms = 100\ntick_ms = 20\nbackoff_base_ms = 50\nbackoff_cap_ms = 1000\nsend_timeout_ms = 2000\nnew_list_grace_ms = 3000\n\n[[destination]]\nname = \"engage\"\napi_key = \"{KEY}\"\nendpoint = \"{base}\"\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n{extra}\n",
            store.display().to_string()
        ),
    )
    .unwrap();
    path
}

pub fn event(id: &str, user: u32, audience: &str, member: bool, ts_ms: i64) -> Value {
    serde_json::json!({
        "type": "identify",
        "messageId": id,
        "userId": format!("u{user}"),
        "timestamp": segment::Timestamp::from_unix_millis(ts_ms).to_rfc3339(),
        "traits": {"email": format!("user{user}@example.com"), audience: member},
        "context": {"personas": {"computation_class": "audience", "computation_key": audience}}
    })
}

pub fn write_ndjson(path: &Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Latest state per (audience, email), each messageId counted once (its first occurrence).
pub fn model(events: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    let mut latest: BTreeMap<(String, String), (i64, usize, bool)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if !seen.insert(e["messageId"].as_str().unwrap().to_owned()) {
            continue;
        }
        let audience = e["context"]["personas"]["computation_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let email = e["traits"]["email"].as_str().unwrap().to_lowercase();
        let ts = segment::Timestamp::parse(e["timestamp"].as_str().unwrap())
            .unwrap()
            .unix_millis();
        let member = e["traits"][&audience].as_bool().unwrap();
        let slot = latest
            .entry((audience, email))
            .or_insert((i64::MIN, 0, false));
        if (ts, i) >= (slot.0, slot.1) {
            *slot = (ts, i, member);
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((audience, email), (_, _, member)) in latest {
        let set = out.entry(audience).or_default();
        if member {
            set.insert(email);
        }
    }
    out
}

fn get(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    })
}

/// The simulator's lists by name, with their members, through the control API.
pub fn sim_lists(base: &str) -> BTreeMap<String, BTreeSet<String>> {
    let lists = get(&format!("{base}/_sim/projects/{PROJECT}/lists"));
    let mut out = BTreeMap::new();
    for l in lists.as_array().unwrap() {
        let id = l["id"].as_i64().unwrap();
        let name = l["name"].as_str().unwrap().to_owned();
        let members = get(&format!(
            "{base}/_sim/projects/{PROJECT}/lists/{id}/members"
        ));
        let set: BTreeSet<String> = members
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_lowercase())
            .collect();
        out.insert(name, set);
    }
    out
}

/// Membership requests the simulator served so far.
pub fn membership_requests(base: &str) -> usize {
    get(&format!("{base}/_sim/log"))
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["path"].as_str().is_some_and(|p| p.contains("subscribe")))
                .count()
        })
        .unwrap_or(0)
}

pub fn send(config: &Path, files: &[&Path], extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("send")
        .args(files)
        .arg("--config")
        .arg(config)
        .args(extra);
    c
}
