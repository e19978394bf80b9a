//! `iterable-lists status`: pending work per destination and list, rejected changes waiting
//! for a replay, and (from a running service) paused projects and recent warnings.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use store::Store;

use super::common::{StoreAccess, load_config, open_store, pick_destination};

/// Shows what is still to be sent to Iterable, per destination, list and direction, and the
/// changes Iterable rejected (replay them with `iterable-lists replay` once the cause is fixed).
///
/// Reads the store named by the configuration. When a running service holds the store, asks
/// that service instead (at `server.listen`, with `server.admin_token`), which also tells
/// which Iterable projects are paused (an API key Iterable refused) and recent warnings.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  iterable-lists status --config iterable-lists.toml
  iterable-lists status --config iterable-lists.toml --destination engage --json

Exit status: 0 when nothing is pending, rejected or paused; 1 when something is; 2 on a
configuration error or an unreachable service.")]
pub struct StatusArgs {
    /// The configuration file (TOML) of the service whose store to read.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Only this destination.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,

    /// When a running service holds the store, ask it at this URL (default: `server.listen`).
    #[arg(long, value_name = "URL")]
    pub service: Option<String>,

    /// Print the status as one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let dest = pick_destination(&config, &args.config, args.destination.as_deref(), true)?;
    let report = match open_store(&config, &args.config, args.service.as_deref())? {
        StoreAccess::Local(store) => {
            let st = store.status().context("cannot read the store")?;
            let counts = store
                .member_counts(dest.as_deref())
                .context("cannot read the store")?;
            let pending: Vec<Value> = st
                .pending
                .iter()
                .filter(|p| dest.as_deref().is_none_or(|d| p.destination == d))
                .map(|p| {
                    json!({
                        "destination": p.destination,
                        "audience_key": p.audience_key,
                        "list_id": p.list_id,
                        "direction": match p.direction {
                            store::Direction::In => "subscribe",
                            store::Direction::Out => "unsubscribe",
                        },
                        "pending": p.pending,
                    })
                })
                .collect();
            json!({
                "source": "store",
                "store": config.store.path,
                "service_running": false,
                "pending": pending,
                "rejected": rejected_json(&counts),
                "paused": [],
                "warnings": [],
            })
        }
        StoreAccess::Service(client) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let st = rt.block_on(client.admin_status())?;
            let pending: Vec<Value> = st["pending"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| {
                    dest.as_deref()
                        .is_none_or(|d| p["destination"].as_str() == Some(d))
                })
                .collect();
            let paused: Vec<Value> = st["projects"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|p| !p["paused"].is_null())
                .map(|p| json!({ "project": p["label"], "reason": p["paused"] }))
                .collect();
            json!({
                "source": "service",
                "service": client.base(),
                "service_running": true,
                "pending": pending,
                "rejected": [],
                "paused": paused,
                "in_flight": st["in_flight"],
                "warnings": st["warnings"],
            })
        }
    };
    let busy = ["pending", "rejected", "paused"]
        .iter()
        .any(|k| report[k].as_array().is_some_and(|a| !a.is_empty()));
    if args.json {
        println!("{report}");
    } else {
        print_report(&report);
    }
    Ok(if busy {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn rejected_json(counts: &[store::MemberCounts]) -> Vec<Value> {
    counts
        .iter()
        .filter(|c| c.rejected > 0)
        .map(|c| {
            json!({
                "destination": c.destination,
                "audience_key": c.audience_key,
                "list_id": c.list_id,
                "rejected": c.rejected,
            })
        })
        .collect()
}

fn list_label(v: &Value) -> String {
    v.as_i64()
        .map_or_else(|| "not resolved yet".to_owned(), |id| format!("list {id}"))
}

fn print_report(r: &Value) {
    if r["service_running"] == true {
        println!(
            "service at {} (the store is held by it)",
            r["service"].as_str().unwrap_or("?")
        );
    } else {
        println!(
            "store {} (no service holds it: pending work is sent by the next `serve` or `send`)",
            r["store"].as_str().unwrap_or("?")
        );
    }
    let pending = r["pending"].as_array().cloned().unwrap_or_default();
    if pending.is_empty() {
        println!("pending: nothing");
    } else {
        println!("pending:");
        for p in &pending {
            println!(
                "  {:<16} {:<28} {:<18} {:>9} {}",
                p["destination"].as_str().unwrap_or(""),
                p["audience_key"].as_str().unwrap_or(""),
                list_label(&p["list_id"]),
                p["pending"],
                p["direction"].as_str().unwrap_or("")
            );
        }
    }
    let rejected = r["rejected"].as_array().cloned().unwrap_or_default();
    if !rejected.is_empty() {
        println!("rejected (replay with `iterable-lists replay` once the cause is fixed):");
        for p in &rejected {
            println!(
                "  {:<16} {:<28} {:<18} {:>9}",
                p["destination"].as_str().unwrap_or(""),
                p["audience_key"].as_str().unwrap_or(""),
                list_label(&p["list_id"]),
                p["rejected"],
            );
        }
    }
    for p in r["paused"].as_array().cloned().unwrap_or_default() {
        println!(
            "paused: {}: {}",
            p["project"].as_str().unwrap_or("?"),
            p["reason"].as_str().unwrap_or("?")
        );
    }
    for w in r["warnings"].as_array().cloned().unwrap_or_default() {
        println!("warning: {}", w.as_str().unwrap_or(""));
    }
}
