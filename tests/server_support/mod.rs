//! Shared harness of the server tests: an embedded simulator, a configuration with a fresh
//! store, the service on 127.0.0.1:0, and helpers to read the simulator's lists.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

pub const API_KEY: &str = "iterable-api-key-S3CRET-0001";
pub const WRITE_KEY: &str = "segment-write-key-S3CRET-0002";
pub const ADMIN_TOKEN: &str = "admin-token-S3CRET-0003";
pub const OTHER_WRITE_KEY: &str = "segment-write-key-S3CRET-0004";
pub const OTHER_API_KEY: &str = "iterable-api-key-S3CRET-0005";

/// A running simulator and service.
pub struct Harness {
    pub sim: Simulator,
    pub server: server::Server,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration text for a simulator at `sim_base`, with `extra` appended to the first
/// destination and `delivery` options.
pub fn config_text(store: &std::path::Path, sim_base: &str, delivery: &str, extra: &str) -> String {
    format!(
        r#"
[store]
path = "{store}"
synchronous = "normal"

[server]
admin_token = "{ADMIN_TOKEN}"

[delivery]
flush_interval_ms = 100
tick_ms = 20
backoff_base_ms = 50
backoff_cap_ms = 500
{delivery}

[[destination]]
name = "engage"
write_key = "{WRITE_KEY}"
api_key = "{API_KEY}"
endpoint = "{sim_base}"
allow_custom_endpoint = true
project_type = "hybrid"
{extra}

[[destination]]
name = "second"
write_key = "{OTHER_WRITE_KEY}"
api_key = "{OTHER_API_KEY}"
endpoint = "{sim_base}"
allow_custom_endpoint = true
project_type = "email"
"#,
        store = store.display()
    )
}

pub async fn start_sim() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .project(API_KEY, ProjectType::Hybrid)
            .project(OTHER_API_KEY, ProjectType::Email)
            .seed(7),
    )
    .await
    .expect("simulator starts")
}

impl Harness {
    /// Simulator and service with default test options.
    pub async fn start() -> Harness {
        Self::start_with("", "").await
    }

    /// With extra `[delivery]` lines and extra lines for the first destination.
    pub async fn start_with(delivery: &str, extra: &str) -> Harness {
        let sim = start_sim().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("ledger.db");
        let text = config_text(&store, &sim.base_url(), delivery, extra);
        Self::start_on(sim, dir, &text).await
    }

    /// With a complete configuration text.
    pub async fn start_on(sim: Simulator, dir: tempfile::TempDir, text: &str) -> Harness {
        let config = delivery::Config::parse(text, |_| None).expect("config parses");
        let server = server::Server::start(config).await.expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = server.clone();
        let task = tokio::spawn(async move {
            let _ = s
                .serve(
                    listener,
                    async move {
                        let _ = rx.await;
                    },
                    Duration::from_secs(5),
                )
                .await;
        });
        Harness {
            sim,
            server,
            base,
            dir,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Posts a JSON body to `/v1/batch` with Basic auth.
    pub async fn post_batch(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/batch"))
            .basic_auth(key, Some(""))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Waits until nothing is pending (generous bound).
    pub async fn settle(&self) {
        let out = self
            .server
            .engine()
            .wait_settled(Duration::from_secs(30))
            .await;
        assert_eq!(
            out,
            delivery::WaitOutcome::Settled,
            "delivery did not settle"
        );
    }

    /// Members of the list named `name` in the hybrid project (empty when the list is absent).
    pub fn members(&self, name: &str) -> BTreeSet<String> {
        members_of(&self.sim, API_KEY, name)
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(mut self) -> (Simulator, tempfile::TempDir) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        (self.sim, self.dir)
    }
}

pub fn members_of(sim: &Simulator, key: &str, name: &str) -> BTreeSet<String> {
    let s = sim.sim();
    let lists = s.lists(key).expect("lists");
    match lists.iter().find(|l| l.name == name) {
        Some(l) => s
            .list_members(key, l.id)
            .expect("members")
            .into_iter()
            .collect(),
        None => BTreeSet::new(),
    }
}

/// An Engage audience event (identify) for `user` entering (`true`) or leaving an audience.
pub fn audience_event(
    message_id: &str,
    user: &str,
    email: &str,
    audience: &str,
    member: bool,
) -> Value {
    json!({
        "type": "identify",
        "messageId": message_id,
        "userId": user,
        "timestamp": "2026-01-01T00:00:00Z",
        "traits": { "email": email, audience: member },
        "context": { "personas": { "computation_class": "audience", "computation_key": audience } }
    })
}

pub fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub type Shared<T> = Arc<T>;
