//! `iterable-lists replay`: re-queues the changes Iterable rejected, after the cause was fixed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use store::Store;

use super::common::{StoreAccess, load_config, open_store, pick_destination};

/// Re-queues the changes of a destination (or of one audience) that Iterable rejected, once
/// the cause is fixed: a list bound by the operator, an audience's
/// `update_existing_users_only` turned off, users created in Iterable… Each one is sent again
/// with its latest desired state; its event goes back to `pending` in the delivery log.
///
/// When a running service holds the store, the service replays (admin API at
/// `server.listen`, with `server.admin_token`) and delivers at once; otherwise the changes are
/// marked in the store and the next `serve` or `send` delivers them.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  iterable-lists replay --config iterable-lists.toml
  iterable-lists replay --config iterable-lists.toml --destination engage --audience vip_customers
  iterable-lists status --config iterable-lists.toml    # what is rejected, per list")]
pub struct ReplayArgs {
    /// The configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// The destination; required when the configuration has several.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,

    /// When a running service holds the store, ask it at this URL (default: `server.listen`).
    #[arg(long, value_name = "URL")]
    pub service: Option<String>,

    /// Only this audience (its key, e.g. `vip_customers`).
    #[arg(long, value_name = "KEY")]
    pub audience: Option<String>,
}

/// Runs the command.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let dest = pick_destination(&config, &args.config, args.destination.as_deref(), false)?
        .unwrap_or_default();
    let (requeued, by_service) = match open_store(&config, &args.config, args.service.as_deref())? {
        StoreAccess::Local(store) => {
            if let Some(a) = &args.audience
                && !store
                    .audiences(Some(&dest))
                    .context("cannot read the store")?
                    .iter()
                    .any(|x| &x.audience_key == a)
            {
                anyhow::bail!("destination {dest:?} has no audience {a:?} in the store");
            }
            let n = store
                .replay_rejected(&dest, args.audience.as_deref(), delivery::now_ms())
                .context("cannot write the store")?;
            (n, false)
        }
        StoreAccess::Service(client) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let path = format!("/admin/destinations/{dest}/replay");
            let body = json!({ "audience": args.audience });
            let v = rt.block_on(client.admin_post_json(&path, &body))?;
            (v["requeued"].as_u64().unwrap_or(0), true)
        }
    };
    let scope = match &args.audience {
        Some(a) => format!("{dest}/{a}"),
        None => dest.clone(),
    };
    match (requeued, by_service) {
        (0, _) => println!("{scope}: nothing rejected to replay"),
        (n, true) => {
            println!("{scope}: {n} rejected changes re-queued; the service is sending them")
        }
        (n, false) => println!(
            "{scope}: {n} rejected changes re-queued; the next `serve` or `send` with this configuration sends them"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
