//! Posting events to a running service's Segment-compatible ingest (`POST /v1/batch`), for
//! `demo` and `send --to`, and reading its admin status while delivery settles.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;

/// Most events per `/v1/batch` body (Segment's clients send at most 100 as well).
pub const BATCH_EVENTS: usize = 100;
/// Most bytes per body, under the service's 500 KB batch limit.
pub const BATCH_BYTES: usize = 450 * 1024;

/// The service's answer to one batch (Segment's `success` plus our counts).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IngestReply {
    /// Written to the ledger.
    #[serde(default)]
    pub accepted: u64,
    /// Seen before (same `messageId`).
    #[serde(default)]
    pub duplicates: u64,
    /// Final and not an error.
    #[serde(default)]
    pub skipped: u64,
    /// Refused, each in `errors`.
    #[serde(default)]
    pub rejected: u64,
    /// Index, `messageId` and reason of each refused element.
    #[serde(default)]
    pub errors: Vec<RejectedElement>,
}

/// One element the service refused.
#[derive(Debug, Clone, Deserialize)]
pub struct RejectedElement {
    /// Position in the batch.
    #[serde(default)]
    pub index: usize,
    /// Its `messageId`.
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
    /// Stable reason code.
    #[serde(default)]
    pub code: String,
    /// Reason for a person.
    #[serde(default)]
    pub reason: String,
}

/// A client of one running service.
#[derive(Clone)]
pub struct IngestClient {
    http: reqwest::Client,
    base: String,
    write_key: String,
    admin_token: Option<String>,
}

impl std::fmt::Debug for IngestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl IngestClient {
    /// A client of the service at `base` (e.g. `http://127.0.0.1:8088`).
    pub fn new(base: &str, write_key: &str, admin_token: Option<&str>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("{base:?} is not a service URL such as http://127.0.0.1:8088");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(IngestClient {
            http,
            base,
            write_key: write_key.to_owned(),
            admin_token: admin_token.map(str::to_owned),
        })
    }

    /// The service's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// True when `GET /readyz` answers 200 within `wait`.
    pub async fn wait_ready(&self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let ok = self
                .http
                .get(format!("{}/readyz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Posts one `/v1/batch` body; waits and retries on 429 (honouring `Retry-After`) and on
    /// 5xx or a refused connection, a few times, before giving up with one clear line.
    pub async fn post_batch(&self, events: &[Value]) -> anyhow::Result<IngestReply> {
        let body = serde_json::json!({ "batch": events });
        let url = format!("{}/v1/batch", self.base);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = self
                .http
                .post(&url)
                .basic_auth(&self.write_key, Some(""))
                .json(&body)
                .send()
                .await;
            let retry_in = match sent {
                Ok(resp) if resp.status().is_success() => {
                    return resp.json::<IngestReply>().await.with_context(|| {
                        format!("{url} answered 200 with a body that is not an ingest reply")
                    });
                }
                Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                    let wait = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or(Duration::from_millis(500 * u64::from(attempt)));
                    if attempt >= 20 {
                        bail!(
                            "{url} kept answering {} after {attempt} attempts",
                            resp.status()
                        );
                    }
                    wait.min(Duration::from_secs(10))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| {
                            v.get("message")
                                .or_else(|| v.get("error"))
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .unwrap_or(text);
                    bail!("{url} refused the batch ({status}): {}", message.trim());
                }
                Err(e) if attempt < 5 && (e.is_connect() || e.is_timeout()) => {
                    Duration::from_millis(300 * u64::from(attempt))
                }
                Err(e) => {
                    return Err(anyhow!(
                        "cannot reach the service at {}: {}",
                        self.base,
                        root_cause(&e)
                    ));
                }
            };
            tokio::time::sleep(retry_in).await;
        }
    }

    /// `GET /admin/status` (needs the admin token).
    pub async fn admin_status(&self) -> anyhow::Result<Value> {
        self.admin_get("/admin/status").await
    }

    /// `GET` of an admin path, with the bearer token.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        let Some(token) = &self.admin_token else {
            bail!(
                "the configuration has no `server.admin_token`, so the service's admin API cannot be asked"
            );
        };
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the service at {}: {}",
                    self.base,
                    root_cause(&e)
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            bail!("{url} answered {status} (is the admin token right?)");
        }
        resp.json::<Value>()
            .await
            .with_context(|| format!("{url} answered something that is not JSON"))
    }

    /// `POST` of a JSON body to an admin path, with the bearer token.
    pub async fn admin_post_json(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let Some(token) = &self.admin_token else {
            bail!(
                "the configuration has no `server.admin_token`, so the service's admin API cannot be asked"
            );
        };
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the service at {}: {}",
                    self.base,
                    root_cause(&e)
                )
            })?;
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            bail!("{url} answered {status}: {msg}");
        }
        Ok(body)
    }
}

/// The innermost cause of an HTTP error ("Connection refused" rather than a chain).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Splits events into `/v1/batch` bodies of at most [`BATCH_EVENTS`] events and about
/// [`BATCH_BYTES`] bytes.
pub fn chunk_events(events: Vec<Value>) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0usize;
    for e in events {
        let size = e.to_string().len() + 1;
        if !cur.is_empty() && (cur.len() >= BATCH_EVENTS || bytes + size > BATCH_BYTES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += size;
        cur.push(e);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_one_hundred_events() {
        let events: Vec<Value> = (0..250).map(|i| serde_json::json!({ "i": i })).collect();
        let chunks = chunk_events(events);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
    }

    #[test]
    fn batches_stay_under_the_byte_bound() {
        let big = "x".repeat(20 * 1024);
        let events: Vec<Value> = (0..60).map(|_| serde_json::json!({ "p": big })).collect();
        let chunks = chunk_events(events);
        assert!(chunks.len() >= 3, "{}", chunks.len());
        for c in &chunks {
            let bytes: usize = c.iter().map(|e| e.to_string().len() + 1).sum();
            assert!(bytes <= BATCH_BYTES, "{bytes}");
        }
    }
}
