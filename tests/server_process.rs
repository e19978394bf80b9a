//! The service as a separate process (`iterable-lists serve`) next to the simulator
//! (`iterable-lists sim`): no secret in any output of a full run, graceful shutdown on
//! SIGTERM, and a restart after `kill -9` that delivers the work left pending.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_iterable-lists");
const API_KEY: &str = "itbl-api-key-PROC-S3CRET-11";
const WRITE_KEY: &str = "seg-write-key-PROC-S3CRET-22";
const ADMIN_TOKEN: &str = "adm-token-PROC-S3CRET-33";

/// A child process whose stdout and stderr are collected in full.
struct Proc {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("process starts");
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Proc { child, out }
    }

    /// Waits for a line containing `marker` and returns the URL that follows "http://".
    fn wait_url(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self
                .out
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains(marker))
            {
                let at = line.find("http://").expect("url in line");
                return line[at..].split_whitespace().next().unwrap().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no {marker:?} line in:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain.
                std::thread::sleep(Duration::from_millis(100));
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim() -> (Proc, String) {
    let p = Proc::spawn(
        Command::new(BIN)
            .args(["sim", "--listen", "127.0.0.1:0", "--project"])
            .arg(format!("{API_KEY}=hybrid")),
    );
    let url = p.wait_url("iterable simulator on");
    (p, url)
}

fn write_config(dir: &Path, sim: &str) -> std::path::PathBuf {
    // The API key and the admin token come from the environment, the write key from the file.
    let text = format!(
        r#"
[store]
path = "{store}"

[server]
listen = "127.0.0.1:0"

[delivery]
flush_interval_ms = 100
tick_ms = 20
backoff_base_ms = 50
backoff_cap_ms = 300

[[destination]]
name = "engage"
write_key = "{WRITE_KEY}"
endpoint = "{sim}"
allow_custom_endpoint = true
project_type = "hybrid"
"#,
        store = dir.join("ledger.db").display()
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_serve(config: &Path, log_format: &str) -> (Proc, String) {
    let p = Proc::spawn(
        Command::new(BIN)
            .args([
                "serve",
                "--shutdown-timeout",
                "3",
                "--log-format",
                log_format,
                "--config",
            ])
            .arg(config)
            .env("RUST_LOG", "trace")
            .env("ITERABLE_LISTS_ENGAGE_API_KEY", API_KEY)
            .env("ITERABLE_LISTS_ADMIN_TOKEN", ADMIN_TOKEN),
    );
    let url = p.wait_url("listening on");
    (p, url)
}

fn event(id: &str, user: &str, audience: &str, member: bool) -> Value {
    json!({
        "type": "identify", "messageId": id, "userId": user,
        "traits": { "email": format!("{user}@example.com"), audience: member },
        "context": { "personas": { "computation_class": "audience", "computation_key": audience } }
    })
}

/// Members of the list named `name`, through the simulator's HTTP API.
async fn members(http: &reqwest::Client, sim: &str, name: &str) -> Vec<String> {
    let lists: Value = http
        .get(format!("{sim}/api/lists"))
        .header("Api-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(id) = lists["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .map(|l| l["id"].as_i64().unwrap())
    else {
        return Vec::new();
    };
    let text = http
        .get(format!("{sim}/api/lists/getUsers?listId={id}"))
        .header("Api-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

async fn wait_members(http: &reqwest::Client, sim: &str, name: &str, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = members(http, sim, name).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "list {name}: {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Records every response (status, headers, body) for the secret search.
async fn record(seen: &mut String, resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    seen.push_str(&format!("{status}\n"));
    for (k, v) in resp.headers() {
        seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
    }
    let body = resp.text().await.unwrap();
    seen.push_str(&body);
    seen.push('\n');
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_metrics_errors_or_admin_responses() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_url) = start_sim();
    let config = write_config(dir.path(), &sim_url);
    let (mut serve, base) = start_serve(&config, "json");
    let http = reqwest::Client::new();
    let mut seen = String::new();
    let url = |p: &str| format!("{base}{p}");

    // Ingest: good, wrong key, key in body, malformed, truncated gzip, oversized, single call.
    let good = json!({ "batch": [event("s1", "u1", "secrets", true), "bad element",
        { "type": "identify", "messageId": "s3", "userId": "u3", "traits": { "secrets": 7 },
          "context": { "personas": { "computation_key": "secrets" } } }] });
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(format!("{WRITE_KEY}x"), Some(""))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 401);
    let mut in_body = good.clone();
    in_body["writeKey"] = json!(WRITE_KEY);
    let r = http
        .post(url("/v1/batch"))
        .json(&in_body)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .body(format!("{{\"writeKey\": \"{WRITE_KEY}\", \"batch\": ["))
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 400);
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 8, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 400);
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .body(vec![b' '; 600 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 400);
    let mut single = event("s4", "u4", "secrets", true);
    single["writeKey"] = json!(WRITE_KEY);
    let r = http
        .post(url("/v1/identify"))
        .json(&single)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    wait_members(
        &http,
        &sim_url,
        "secrets",
        &["u1@example.com", "u4@example.com"],
    )
    .await;

    // Admin: wrong token, then every read with the right one.
    let r = http
        .get(url("/admin/status"))
        .bearer_auth(format!("{ADMIN_TOKEN}0"))
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 401);
    for p in [
        "/admin/status",
        "/admin/destinations",
        "/admin/destinations/engage",
        "/admin/destinations/engage/audiences",
        "/admin/destinations/engage/mappings",
        "/admin/log?limit=1000",
        "/admin/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        let r = http
            .get(url(p))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(record(&mut seen, r).await.0, 200, "{p}");
    }
    let r = http
        .post(url("/admin/destinations/engage/test-mapping"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "event": single }))
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    let r = http
        .post(url("/admin/destinations/engage/mappings"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "trigger": "type = ", "fields": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 422);
    let r = http
        .post(url("/admin/destinations/engage/replay"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);

    serve.signal("TERM");
    let status = serve.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "serve exited with {status}");
    let logs = serve.output();
    assert!(logs.contains("shutdown complete"), "{logs}");
    // The logs are JSON lines, and trace level was on: the run said a lot.
    assert!(
        logs.lines().filter(|l| l.starts_with('{')).count() > 20,
        "{logs}"
    );
    let store_bytes = std::fs::read(dir.path().join("ledger.db")).unwrap();
    let store_text = String::from_utf8_lossy(&store_bytes);
    for secret in [API_KEY, WRITE_KEY, ADMIN_TOKEN] {
        assert!(!logs.contains(secret), "{secret} in the service's logs");
        assert!(!seen.contains(secret), "{secret} in an HTTP answer");
        assert!(!store_text.contains(secret), "{secret} in the store file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_work_survives_kill_and_is_delivered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_url) = start_sim();
    let http = reqwest::Client::new();
    // Iterable is down: every request answers 503.
    let r = http
        .put(format!("{sim_url}/_sim/faults"))
        .json(&json!({ "error_rate": 1.0, "error_statuses": [503] }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let config = write_config(dir.path(), &sim_url);
    let (mut serve, base) = start_serve(&config, "text");
    let batch = json!({ "batch": [
        event("k1", "u1", "restart", true),
        event("k2", "u2", "restart", true),
        event("k3", "u3", "restart", true),
    ]});
    let r = http
        .post(format!("{base}/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let exit = json!({ "batch": [event("k4", "u2", "restart", false)] });
    let r = http
        .post(format!("{base}/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&exit)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    serve.signal("KILL");
    serve.wait_exit(Duration::from_secs(10));

    // Iterable is back; nothing was delivered yet; the next start delivers what was
    // acknowledged.
    http.put(format!("{sim_url}/_sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(members(&http, &sim_url, "restart").await.is_empty());
    let (mut serve, _base) = start_serve(&config, "text");
    wait_members(
        &http,
        &sim_url,
        "restart",
        &["u1@example.com", "u3@example.com"],
    )
    .await;

    // A graceful stop exits 0 within its bound.
    serve.signal("TERM");
    assert!(serve.wait_exit(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_iterable_down_exits_within_the_flush_bound_keeping_pending_work() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, sim_url) = start_sim();
    let http = reqwest::Client::new();
    http.put(format!("{sim_url}/_sim/faults"))
        .json(&json!({ "error_rate": 1.0, "error_statuses": [503] }))
        .send()
        .await
        .unwrap();
    let config = write_config(dir.path(), &sim_url);
    let (mut serve, base) = start_serve(&config, "text");
    let batch = json!({ "batch": [event("t1", "u1", "term", true)] });
    let r = http
        .post(format!("{base}/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let asked = Instant::now();
    serve.signal("TERM");
    // --shutdown-timeout 3: the flush gives up after about 3 s; generous margin for a busy machine.
    let status = serve.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "did not try to flush"
    );
    let logs = serve.output();
    assert!(logs.contains("stay in the store"), "{logs}");
    // The next start delivers it.
    http.put(format!("{sim_url}/_sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (_serve, _) = start_serve(&config, "text");
    wait_members(&http, &sim_url, "term", &["u1@example.com"]).await;
}
