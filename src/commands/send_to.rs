//! `send --to URL`: posts files of events to a running service's `POST /v1/batch` (with the
//! destination's write key, as a Segment client would) instead of running the pipeline
//! in-process, then follows delivery through the service's admin API.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use delivery::Config;
use serde::Serialize;
use serde_json::Value;

use super::ingest_client::{BATCH_BYTES, BATCH_EVENTS, IngestClient};

/// What `send --to` needs from the command line.
#[derive(Debug)]
pub struct SendTo<'a> {
    /// The service's base URL.
    pub url: &'a str,
    /// Input files (`-` for standard input).
    pub files: &'a [PathBuf],
    /// The loaded configuration (write key, admin token).
    pub config: &'a Config,
    /// The destination whose write key authenticates the posts.
    pub destination: &'a str,
    /// How long to wait for delivery.
    pub timeout: Duration,
    /// One line of JSON instead of text.
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    accepted: u64,
    duplicates: u64,
    delivered: u64,
    skipped: u64,
    skipped_by_reason: BTreeMap<String, u64>,
    rejected: u64,
    rejected_by_reason: BTreeMap<String, u64>,
    requests: u64,
    rate_limited: u64,
    pending: u64,
    outcome: &'static str,
}

/// Runs `send --to`.
pub fn run(s: SendTo<'_>) -> anyhow::Result<ExitCode> {
    let dest = s
        .config
        .destination(s.destination)
        .with_context(|| format!("no destination named {:?}", s.destination))?;
    let Some(write_key) = dest.write_key.as_ref() else {
        bail!(
            "destination {:?} has no `write_key`: --to needs it to authenticate with the service (set it in the file or in {}WRITE_KEY)",
            s.destination,
            dest.env_prefix()
        );
    };
    let token = s.config.server.admin_token.as_ref().map(|t| t.expose());
    let client = IngestClient::new(s.url, write_key.expose(), token)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(send(s, client))
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n.saturating_sub(*before.get(k).unwrap_or(&0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

async fn send(s: SendTo<'_>, client: IngestClient) -> anyhow::Result<ExitCode> {
    let can_follow = s.config.server.admin_token.is_some();
    let before = if can_follow {
        Some(client.admin_status().await?["stats"].clone())
    } else {
        None
    };
    let mut local_rejects: BTreeMap<String, u64> = BTreeMap::new();
    let mut ingest = Summary::default();
    let mut batch: Vec<Value> = Vec::with_capacity(BATCH_EVENTS);
    let mut bytes = 0usize;
    let mut posted = 0u64;
    let mut last_line = Instant::now();
    for file in s.files {
        let reader: Box<dyn Read> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            )
        };
        for (i, line) in BufReader::new(reader).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", file.display()))?;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let elements = match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(mut o)) => match o.remove("batch") {
                    Some(Value::Array(items)) => items,
                    Some(other) => {
                        o.insert("batch".into(), other);
                        vec![Value::Object(o)]
                    }
                    None => vec![Value::Object(o)],
                },
                _ => {
                    tracing::info!(file = %file.display(), line = i + 1, "not a JSON object: rejected");
                    *local_rejects.entry("bad_input".into()).or_default() += 1;
                    continue;
                }
            };
            for e in elements {
                let size = e.to_string().len() + 1;
                if !batch.is_empty() && (batch.len() >= BATCH_EVENTS || bytes + size > BATCH_BYTES)
                {
                    posted += post(&client, &mut batch, &mut ingest).await?;
                    bytes = 0;
                    if !s.json && last_line.elapsed() >= Duration::from_secs(5) {
                        eprintln!("posted {posted} events to {}", client.base());
                        last_line = Instant::now();
                    }
                }
                bytes += size;
                batch.push(e);
            }
        }
    }
    if !batch.is_empty() {
        post(&client, &mut batch, &mut ingest).await?;
    }

    let mut summary = Summary::default();
    let outcome;
    match before {
        Some(before) => {
            // Follow delivery in the service until nothing is pending.
            let deadline = Instant::now() + s.timeout;
            let (status, result) = loop {
                let st = client.admin_status().await?;
                let backlog = st["backlog"].as_u64().unwrap_or(0);
                let in_flight = st["in_flight"].as_u64().unwrap_or(0);
                let paused = st["projects"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| !p["paused"].is_null()));
                if backlog == 0 && in_flight == 0 {
                    break (st, "settled");
                }
                if paused {
                    break (st, "paused");
                }
                if Instant::now() >= deadline {
                    break (st, "timeout");
                }
                if !s.json && last_line.elapsed() >= Duration::from_secs(5) {
                    eprintln!("delivering: {backlog} changes pending in the service");
                    last_line = Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let a = &status["stats"];
            let n = |k: &str| {
                a[k].as_u64()
                    .unwrap_or(0)
                    .saturating_sub(before[k].as_u64().unwrap_or(0))
            };
            summary.accepted = n("accepted");
            summary.duplicates = n("duplicates");
            summary.delivered = n("delivered");
            summary.requests = n("requests");
            summary.rate_limited = n("rate_limited");
            summary.skipped_by_reason = delta(&counts(&a["skipped"]), &counts(&before["skipped"]));
            summary.rejected_by_reason =
                delta(&counts(&a["rejected"]), &counts(&before["rejected"]));
            summary.pending = status["backlog"].as_u64().unwrap_or(0);
            outcome = result;
            if result != "settled" {
                for p in status["pending"].as_array().cloned().unwrap_or_default() {
                    eprintln!(
                        "  {} / {}: {} {} pending",
                        p["destination"].as_str().unwrap_or(""),
                        p["audience_key"].as_str().unwrap_or(""),
                        p["pending"],
                        p["direction"].as_str().unwrap_or("")
                    );
                }
            }
        }
        None => {
            eprintln!(
                "note: the configuration has no `server.admin_token`, so delivery cannot be followed; the service delivers on its own"
            );
            summary.accepted = ingest.accepted;
            summary.duplicates = ingest.duplicates;
            summary.skipped = ingest.skipped;
            summary.rejected_by_reason = ingest.rejected_by_reason.clone();
            outcome = "accepted";
        }
    }
    for (k, n) in local_rejects {
        *summary.rejected_by_reason.entry(k).or_default() += n;
    }
    summary.skipped = summary
        .skipped
        .max(summary.skipped_by_reason.values().sum());
    summary.rejected = summary.rejected_by_reason.values().sum();
    summary.outcome = match outcome {
        "settled" if summary.rejected > 0 => "rejected",
        "accepted" if summary.rejected > 0 => "rejected",
        other => other,
    };
    let code = match outcome {
        "timeout" | "paused" => 3,
        _ if summary.rejected > 0 => 1,
        _ => 0,
    };
    if s.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "accepted {}, duplicates {}, delivered {}, skipped {}, rejected {}, requests sent {} ({} answered 429)",
            summary.accepted,
            summary.duplicates,
            summary.delivered,
            summary.skipped,
            summary.rejected,
            summary.requests,
            summary.rate_limited
        );
        for (reason, n) in &summary.skipped_by_reason {
            println!("  skipped  {n:>8}  {reason}");
        }
        for (reason, n) in &summary.rejected_by_reason {
            println!("  rejected {n:>8}  {reason}");
        }
    }
    match outcome {
        "timeout" => eprintln!(
            "timed out after {:?} with {} changes pending in the service; it keeps delivering them",
            s.timeout, summary.pending
        ),
        "paused" => eprintln!(
            "delivery is paused in the service (an API key Iterable refused) with {} changes pending",
            summary.pending
        ),
        _ => {}
    }
    Ok(ExitCode::from(code))
}

/// Posts one batch and adds the reply's counts (the batch is emptied).
async fn post(
    client: &IngestClient,
    batch: &mut Vec<Value>,
    into: &mut Summary,
) -> anyhow::Result<u64> {
    let events = std::mem::take(batch);
    let n = events.len() as u64;
    let reply = client.post_batch(&events).await?;
    into.accepted += reply.accepted;
    into.duplicates += reply.duplicates;
    into.skipped += reply.skipped;
    for e in &reply.errors {
        tracing::info!(index = e.index, message_id = ?e.message_id, reason = %e.reason, "rejected by the service");
        *into.rejected_by_reason.entry(e.code.clone()).or_default() += 1;
    }
    if reply.errors.is_empty() && reply.rejected > 0 {
        *into
            .rejected_by_reason
            .entry("rejected".into())
            .or_default() += reply.rejected;
    }
    Ok(n)
}
