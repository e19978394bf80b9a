//! What the operator commands (`lists`, `status`, `replay`) share: loading the configuration,
//! choosing a destination, opening the store or, when a running service holds it, reaching
//! that service's admin API instead.

use std::path::Path;

use anyhow::bail;
use delivery::Config;
use store::{SqliteOptions, SqliteStore, StoreError};

use super::ingest_client::IngestClient;

/// Loads and validates the configuration; the error is one line naming the file and the key.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

/// The destination named by `--destination`, or the only one; `None` for "every destination"
/// when `all_allowed` and nothing was named.
pub fn pick_destination(
    config: &Config,
    path: &Path,
    wanted: Option<&str>,
    all_allowed: bool,
) -> anyhow::Result<Option<String>> {
    let names = || {
        config
            .destinations
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(d) if config.destination(d).is_some() => Ok(Some(d.to_owned())),
        Some(d) => bail!(
            "no destination named {d:?} in {} (configured: {})",
            path.display(),
            if config.destinations.is_empty() {
                "none".to_owned()
            } else {
                names()
            }
        ),
        None if all_allowed => Ok(None),
        None => match config.destinations.as_slice() {
            [one] => Ok(Some(one.name.clone())),
            [] => bail!("{} declares no [[destination]]", path.display()),
            _ => bail!(
                "{} declares several destinations ({}); choose one with --destination",
                path.display(),
                names()
            ),
        },
    }
}

/// Where the store can be read.
pub enum StoreAccess {
    /// Opened here (no service holds it).
    Local(Box<SqliteStore>),
    /// A running service holds it: its admin API answers instead.
    Service(IngestClient),
}

/// Opens the configured store for an operator command. A store that does not exist yet is an
/// error (nothing was ever accepted with this configuration), not a new empty file. When a
/// running service holds the store, returns a client of its admin API (at `service`, else
/// `server.listen`, with `server.admin_token`), or says how to make that possible.
pub fn open_store(
    config: &Config,
    config_path: &Path,
    service: Option<&str>,
) -> anyhow::Result<StoreAccess> {
    let path = &config.store.path;
    if !path.exists() {
        bail!(
            "no store at {} yet (nothing was accepted with {}; `store.path` sets where it lives)",
            path.display(),
            config_path.display()
        );
    }
    match SqliteStore::open(path, SqliteOptions::default()) {
        Ok(s) => Ok(StoreAccess::Local(Box::new(s))),
        Err(StoreError::Locked { .. }) => {
            let base = service
                .map(str::to_owned)
                .unwrap_or_else(|| format!("http://{}", config.server.listen));
            match config.server.admin_token.as_ref() {
                Some(token) => Ok(StoreAccess::Service(IngestClient::new(
                    &base,
                    "",
                    Some(token.expose()),
                )?)),
                None => bail!(
                    "the store {} is held by a running service; set `server.admin_token` so that this command can ask the service at {base}",
                    path.display()
                ),
            }
        }
        Err(e) => bail!("cannot open the store {}: {e}", path.display()),
    }
}
