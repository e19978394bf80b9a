//! `iterable-lists lists`: a destination's Iterable lists with the member counts the store
//! holds, and optionally the sizes Iterable reports.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

use super::common::{StoreAccess, load_config, open_store, pick_destination};
use super::ingest_client::root_cause;

/// Iterable allows 5 calls a minute to `GET /api/lists/{id}/size` per project.
const SIZE_CALL_SPACING: Duration = Duration::from_secs(12);

/// Lists the audiences of a destination, the Iterable list each one is bound to, and what the
/// store holds for it: identities that should be in the list, how many of those Iterable has
/// confirmed, changes still to send, and changes Iterable rejected.
///
/// `--iterable-sizes` also asks Iterable for each list's size (`GET /api/lists/{id}/size`),
/// one call per list, paced to Iterable's limit of 5 calls a minute: a destination with 20
/// lists takes about 4 minutes. A size may differ from the store's count when people were
/// added to the list outside this service, or when Iterable merged or forgot users.
///
/// When a running service holds the store, the list ids and pending changes come from its
/// admin API (member counts then need the store: stop the service or use `status`).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  iterable-lists lists --config iterable-lists.toml
  iterable-lists lists --config iterable-lists.toml --destination engage --iterable-sizes
  iterable-lists lists --config iterable-lists.toml --json")]
pub struct ListsArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// The destination; required when the configuration has several.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,

    /// When a running service holds the store, ask it at this URL (default: `server.listen`).
    #[arg(long, value_name = "URL")]
    pub service: Option<String>,

    /// Also ask Iterable for each list's size (one call per list, 5 a minute).
    #[arg(long)]
    pub iterable_sizes: bool,

    /// Print one line of JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: ListsArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let dest = pick_destination(&config, &args.config, args.destination.as_deref(), false)?
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut from_service = false;
    let mut rows: Vec<Value> = match open_store(&config, &args.config, args.service.as_deref())? {
        StoreAccess::Local(store) => store
            .member_counts(Some(&dest))
            .context("cannot read the store")?
            .into_iter()
            .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
            .collect(),
        StoreAccess::Service(client) => {
            from_service = true;
            let v =
                rt.block_on(client.admin_get(&format!("/admin/destinations/{dest}/audiences")))?;
            v["audiences"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|a| {
                    json!({
                        "destination": dest,
                        "audience_key": a["key"],
                        "list_id": a["list_id"],
                        "list_created": a["list_created_by_service"],
                        "pending_subscribe": a["members"]["pending_subscribe"],
                        "pending_unsubscribe": a["members"]["pending_unsubscribe"],
                    })
                })
                .collect()
        }
    };
    if args.iterable_sizes {
        let dc = config
            .destination(&dest)
            .ok_or_else(|| anyhow!("no destination named {dest:?}"))?;
        let settings = dc.settings();
        let client = iterable::Client::new(iterable::ClientConfig::new(
            iterable::ApiKey::new(settings.api_key.expose()),
            iterable::Endpoint::Custom(settings.base_url().to_owned()),
        ))
        .map_err(|e| anyhow!("cannot build the Iterable client: {e}"))?;
        let total = rows.iter().filter(|r| r["list_id"].is_i64()).count();
        let mut asked = 0usize;
        rt.block_on(async {
            for r in rows.iter_mut() {
                let Some(id) = r["list_id"].as_i64() else {
                    continue;
                };
                if asked > 0 {
                    if !args.json {
                        eprintln!(
                            "waiting {}s before the next size call (Iterable allows 5 a minute; {asked}/{total} done)",
                            SIZE_CALL_SPACING.as_secs()
                        );
                    }
                    tokio::time::sleep(SIZE_CALL_SPACING).await;
                }
                asked += 1;
                match client.list_size(id).await {
                    Ok(n) => r["iterable_size"] = json!(n),
                    Err(e) => {
                        let msg = e.to_string();
                        if msg.contains("connect") || msg.contains("error sending request") {
                            return Err(anyhow!(
                                "cannot reach Iterable at {}: {}",
                                settings.base_url(),
                                root_cause(&e)
                            ));
                        }
                        r["iterable_size_error"] = json!(msg);
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        })?;
    }
    if args.json {
        println!("{}", json!({ "destination": dest, "lists": rows }));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("destination {dest}: no audience seen yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "audience", "list", "in", "confirmed", "to add", "to remove", "rejected"
    );
    let cell = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    for r in &rows {
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}{}",
            r["audience_key"].as_str().unwrap_or(""),
            cell(&r["list_id"]),
            cell(&r["desired_in"]),
            cell(&r["settled_in"]),
            cell(&r["pending_subscribe"]),
            cell(&r["pending_unsubscribe"]),
            cell(&r["rejected"]),
            match (&r["iterable_size"], &r["iterable_size_error"]) {
                (Value::Number(n), _) => format!("   Iterable size {n}"),
                (_, Value::String(e)) => format!("   Iterable size unknown: {e}"),
                _ => String::new(),
            }
        );
    }
    if from_service {
        println!("(a running service holds the store: member counts show once it is stopped)");
    }
    Ok(ExitCode::SUCCESS)
}
