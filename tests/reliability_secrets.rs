//! Secrets and access over a full run of real processes: the simulator and the service
//! (`iterable-lists sim`, `iterable-lists serve` at `RUST_LOG=trace`), traffic with good and
//! bad write keys, every admin read with good and bad tokens, a destination whose API key
//! Iterable refuses (401), then a search of every output for every secret: logs, metrics,
//! HTTP answers (errors included), admin answers, the delivery log, the store's files.
//!
//! And the endpoint rule: a configuration that points a destination anywhere but Iterable's
//! two official hosts is refused unless it says `allow_custom_endpoint = true`, so that a
//! configuration cannot turn the service into a relay of the API key.

mod reliability_support;

use std::process::Command;
use std::time::{Duration, Instant};

use reliability_support::process::{BIN, start_serve, start_sim};
use serde_json::{Value, json};

const API_KEY: &str = "itbl-key-RELIAB-S3CRET-a1";
const REFUSED_API_KEY: &str = "itbl-key-RELIAB-S3CRET-refused-b2";
const WRITE_KEY: &str = "seg-wk-RELIAB-S3CRET-c3";
const REFUSED_WRITE_KEY: &str = "seg-wk-RELIAB-S3CRET-d4";
const ADMIN_TOKEN: &str = "adm-RELIAB-S3CRET-e5";

fn secrets() -> Vec<String> {
    let b64 = |s: &str| base64(format!("{s}:").as_bytes());
    let mut v: Vec<String> = [
        API_KEY,
        REFUSED_API_KEY,
        WRITE_KEY,
        REFUSED_WRITE_KEY,
        ADMIN_TOKEN,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The Basic header forms of the write keys, as a header dump would show them.
    v.push(b64(WRITE_KEY));
    v.push(b64(REFUSED_WRITE_KEY));
    v
}

/// Standard base64 with padding (the Basic auth header's encoding).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn event(id: &str, user: &str, audience: &str, member: bool) -> Value {
    json!({
        "type": "identify", "messageId": id, "userId": user,
        "traits": { "email": format!("{user}@example.com"), audience: member },
        "context": { "personas": { "computation_class": "audience", "computation_key": audience } }
    })
}

/// Records status, headers and body of an answer for the secret search.
async fn record(seen: &mut String, resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    seen.push_str(&format!("{status}\n"));
    for (k, v) in resp.headers() {
        seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
    }
    let body = resp.text().await.expect("body");
    seen.push_str(&body);
    seen.push('\n');
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output_of_a_full_run_with_a_refused_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_url) = start_sim(
        dir.path(),
        &format!(
            "seed = 5\n[[projects]]\nid = 1001\ntype = \"hybrid\"\napi_keys = [\"{API_KEY}\"]\n"
        ),
    );
    // Secrets from the file (write keys) and from the environment (API keys, admin token).
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
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
name = "good"
write_key = "{WRITE_KEY}"
endpoint = "{sim_url}"
allow_custom_endpoint = true
project_type = "hybrid"

[[destination]]
name = "refused"
write_key = "{REFUSED_WRITE_KEY}"
endpoint = "{sim_url}"
allow_custom_endpoint = true
project_type = "hybrid"
"#,
            store = dir.path().join("ledger.db").display()
        ),
    )
    .unwrap();
    let (mut serve, base) = start_serve(
        &config,
        &[
            ("RUST_LOG", "trace"),
            ("ITERABLE_LISTS_GOOD_API_KEY", API_KEY),
            ("ITERABLE_LISTS_REFUSED_API_KEY", REFUSED_API_KEY),
            ("ITERABLE_LISTS_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    );
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{base}{p}");
    let mut seen = String::new();

    // Traffic: good key, unknown key, key in the body, key for the refused project.
    let batch =
        json!({ "batch": [event("g1", "u1", "vault", true), event("g2", "u2", "vault", true)] });
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    for bad in [
        format!("{WRITE_KEY}-x"),
        WRITE_KEY[..10].to_owned(),
        String::new(),
    ] {
        let r = http
            .post(url("/v1/batch"))
            .basic_auth(&bad, Some(""))
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(record(&mut seen, r).await.0, 401, "write key {bad:?}");
    }
    let r = http
        .post(url("/v1/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 401, "no write key");
    let mut in_body = json!({ "batch": [event("r1", "u9", "vault", true)] });
    in_body["writeKey"] = json!(REFUSED_WRITE_KEY);
    let r = http
        .post(url("/v1/batch"))
        .json(&in_body)
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);
    // A malformed body whose text holds the write key: the error must not echo it.
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .body(format!(
            "{{\"writeKey\": \"{WRITE_KEY}\", \"batch\": [{{\"type\": 5}}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(record(&mut seen, r).await.0, 400);
    // A rejected element, so that rejection reasons are part of the answers and the log.
    // (Event fields are the client's data and are kept as sent: a secret a client puts in a
    // messageId is its own business, so the elements here hold none.)
    let rejected = json!({ "batch": [{ "type": "identify", "userId": "u7", "messageId": "x1",
        "traits": { "email": "not an email", "vault": true },
        "context": { "personas": { "computation_key": "vault" } } }] });
    let r = http
        .post(url("/v1/batch"))
        .basic_auth(WRITE_KEY, Some(""))
        .json(&rejected)
        .send()
        .await
        .unwrap();
    let (status, reply) = record(&mut seen, r).await;
    assert_eq!(status, 200);
    assert_eq!(reply["rejected"], 1, "{reply}");

    // The good destination delivers; the refused one is paused with a clear status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let r = http
            .get(url("/admin/status"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let (code, st) = record(&mut seen, r).await;
        assert_eq!(code, 200);
        let text = st.to_string();
        if text.contains("401") || text.to_lowercase().contains("paused") && st["backlog"] == 1 {
            break st;
        }
        assert!(Instant::now() < deadline, "no pause after the 401: {st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.to_string().to_lowercase().contains("key"),
        "the pause should say the API key was refused: {status}"
    );

    // Admin: wrong tokens, then every read and a few writes with the right one.
    for bad in [format!("{ADMIN_TOKEN}x"), ADMIN_TOKEN[..8].to_owned()] {
        let r = http
            .get(url("/admin/destinations"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(record(&mut seen, r).await.0, 401);
    }
    let r = http.get(url("/admin/status")).send().await.unwrap();
    assert_eq!(record(&mut seen, r).await.0, 401, "no token");
    for p in [
        "/admin/status",
        "/admin/destinations",
        "/admin/destinations/good",
        "/admin/destinations/refused",
        "/admin/destinations/good/audiences",
        "/admin/destinations/refused/audiences",
        "/admin/destinations/good/mappings",
        "/admin/log?limit=10000",
        "/admin/log?outcome=rejected",
        "/admin/log?destination=refused",
        "/admin/openapi.json",
        "/metrics",
        "/readyz",
        "/healthz",
    ] {
        let r = http
            .get(url(p))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(record(&mut seen, r).await.0, 200, "{p}");
    }
    for (p, body) in [
        ("/admin/destinations/refused/resume", Value::Null),
        ("/admin/destinations/good/replay", Value::Null),
        (
            "/admin/destinations/good/test-mapping",
            json!({ "event": event("t1", "u5", "vault", true) }),
        ),
    ] {
        let mut req = http.post(url(p)).bearer_auth(ADMIN_TOKEN);
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        assert_eq!(record(&mut seen, r).await.0, 200, "{p}");
    }
    // Metrics after the 401.
    let r = http.get(url("/metrics")).send().await.unwrap();
    assert_eq!(record(&mut seen, r).await.0, 200);

    serve.signal("TERM");
    serve.wait_exit(Duration::from_secs(30));
    let logs = serve.output();
    assert!(
        logs.lines().filter(|l| l.contains("TRACE")).count() > 10,
        "trace level was on: {logs}"
    );
    let mut store = String::new();
    for f in ["ledger.db", "ledger.db-wal"] {
        if let Ok(b) = std::fs::read(dir.path().join(f)) {
            store.push_str(&String::from_utf8_lossy(&b));
        }
    }
    let sim_out = sim.output();
    let mut leaks = Vec::new();
    for s in secrets() {
        for (what, text) in [
            ("service logs", &logs),
            ("HTTP answers", &seen),
            ("store files", &store),
            ("simulator output", &sim_out),
        ] {
            if text.contains(&s) {
                leaks.push(format!("{s} in {what}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// `serve` and `send` with a configuration text; returns (exit success, output).
fn run_with(dir: &std::path::Path, text: &str, command: &str) -> (bool, String) {
    let config = dir.join("config.toml");
    std::fs::write(&config, text).unwrap();
    let events = dir.join("events.ndjson");
    std::fs::write(&events, "").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg(command);
    if command == "send" {
        cmd.arg(&events);
    }
    let out = cmd
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "trace")
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_endpoint_override_without_the_allow_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ledger.db");
    for endpoint in [
        "http://127.0.0.1:9",
        "https://api.iterable.com.relay.example",
        "https://api.iterable.com",
    ] {
        for allow in ["", "allow_custom_endpoint = false\n"] {
            let text = format!(
                "[store]\npath = \"{}\"\n[server]\nlisten = \"127.0.0.1:0\"\n[[destination]]\nname = \"d\"\n\
                 api_key = \"{API_KEY}\"\nwrite_key = \"{WRITE_KEY}\"\nproject_type = \"hybrid\"\n\
                 endpoint = \"{endpoint}\"\n{allow}",
                store.display()
            );
            for command in ["serve", "send"] {
                let (ok, out) = run_with(dir.path(), &text, command);
                assert!(!ok, "{command} accepted endpoint {endpoint:?}: {out}");
                assert!(
                    out.contains("allow_custom_endpoint"),
                    "{command}: the refusal should name the flag: {out}"
                );
                for s in secrets() {
                    assert!(!out.contains(&s), "{command} printed a secret: {out}");
                }
            }
            assert!(
                !store.exists(),
                "a refused configuration must not open the store"
            );
        }
    }
}

#[test]
fn without_an_override_the_hosts_are_iterables_own() {
    for (region, host) in [
        ("us", "https://api.iterable.com"),
        ("eu", "https://api.eu.iterable.com"),
    ] {
        let text = format!(
            "[[destination]]\nname = \"d\"\napi_key = \"k\"\nproject_type = \"hybrid\"\nregion = \"{region}\"\n"
        );
        let c = delivery::Config::parse(&text, |_| None).expect("config");
        assert_eq!(c.destinations[0].settings().base_url(), host);
    }
    // With the flag but no endpoint, the official host still applies.
    let text = "[[destination]]\nname = \"d\"\napi_key = \"k\"\nproject_type = \"hybrid\"\nallow_custom_endpoint = true\n";
    let c = delivery::Config::parse(text, |_| None).expect("config");
    assert_eq!(
        c.destinations[0].settings().base_url(),
        "https://api.iterable.com"
    );
}
