//! Custom mappings per destination (`destination::custom_mapping`): those the configuration
//! declares are read-only, those created through the admin API live in the store (design
//! decision *Configuration*). A [`delivery::Mapper`] reads the current set on every event, so
//! that a change made through the admin API takes effect at once.
//!
//! With no mapping for a destination the default mapping applies; custom mappings replace it,
//! and an event is handled by the first enabled one whose trigger matches (design decision 8).
//! Mappings are named; the name identifies a mapping in the admin API.

use std::collections::HashMap;
use std::sync::Arc;

use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::{MapContext, map_event};
use destination::model::ProcessedEvent;
use destination::settings::DestinationSettings;
use parking_lot::RwLock;
use segment::Event;
use serde::{Deserialize, Serialize};
use store::Store;

/// The store namespace holding each destination's mappings (one JSON array per destination).
const NS: &str = "mappings";

/// Where a mapping comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingSource {
    /// Declared in the configuration file: read-only in the admin API.
    Config,
    /// Created through the admin API: lives in the store.
    Store,
}

/// A mapping as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingRecord {
    /// Config (read-only) or store.
    pub source: MappingSource,
    /// The mapping itself (its `name` identifies it).
    #[serde(flatten)]
    pub config: MappingConfig,
}

/// Why a mapping change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MappingChangeError {
    /// The destination is not configured.
    #[error("no destination named {0:?}")]
    UnknownDestination(String),
    /// No mapping with that name.
    #[error("no mapping named {0:?}")]
    NotFound(String),
    /// A mapping with that name exists already.
    #[error("a mapping named {0:?} exists already")]
    Exists(String),
    /// Declared in the configuration file: change it there.
    #[error("mapping {0:?} is declared in the configuration file and is read-only here")]
    ReadOnly(String),
    /// The mapping does not validate.
    #[error("invalid mapping: {0}")]
    Invalid(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

struct DestMappings {
    records: Vec<MappingRecord>,
    /// `None`: no custom mapping, the default (typed, fast) path applies.
    set: Option<Arc<MappingSet>>,
}

fn compile(records: &[MappingRecord]) -> Result<Option<Arc<MappingSet>>, MappingChangeError> {
    if records.is_empty() {
        return Ok(None);
    }
    let configs: Vec<MappingConfig> = records.iter().map(|r| r.config.clone()).collect();
    MappingSet::from_configs(&configs)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| MappingChangeError::Invalid(e.to_string()))
}

/// Every destination's mappings.
pub struct MappingRegistry {
    store: Arc<dyn Store>,
    dests: RwLock<HashMap<String, DestMappings>>,
}

impl std::fmt::Debug for MappingRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingRegistry").finish_non_exhaustive()
    }
}

impl MappingRegistry {
    /// Loads each destination's mappings: those `declared` in the configuration, then those
    /// stored through the admin API.
    pub fn load(
        store: Arc<dyn Store>,
        destinations: &[String],
        declared: &HashMap<String, Vec<MappingConfig>>,
    ) -> Result<Self, MappingChangeError> {
        let mut dests = HashMap::new();
        for d in destinations {
            let mut records: Vec<MappingRecord> = declared
                .get(d)
                .into_iter()
                .flatten()
                .map(|c| MappingRecord {
                    source: MappingSource::Config,
                    config: c.clone(),
                })
                .collect();
            let stored: Vec<MappingConfig> = match store.kv_get(NS, d)? {
                Some(v) => serde_json::from_value(v).map_err(store::StoreError::Json)?,
                None => Vec::new(),
            };
            records.extend(stored.into_iter().map(|c| MappingRecord {
                source: MappingSource::Store,
                config: c,
            }));
            let set = compile(&records)?;
            dests.insert(d.clone(), DestMappings { records, set });
        }
        Ok(MappingRegistry {
            store,
            dests: RwLock::new(dests),
        })
    }

    /// The mappings of a destination, in the order they are tried.
    pub fn list(&self, destination: &str) -> Option<Vec<MappingRecord>> {
        self.dests
            .read()
            .get(destination)
            .map(|d| d.records.clone())
    }

    /// The compiled set of a destination (`None`: the default mapping applies).
    pub fn set(&self, destination: &str) -> Option<Arc<MappingSet>> {
        self.dests
            .read()
            .get(destination)
            .and_then(|d| d.set.clone())
    }

    /// Validates and adds a mapping (tried after the existing ones).
    pub fn create(
        &self,
        destination: &str,
        config: MappingConfig,
    ) -> Result<MappingRecord, MappingChangeError> {
        MappingSet::single(&config).map_err(|e| MappingChangeError::Invalid(e.to_string()))?;
        self.change(destination, |records| {
            if records.iter().any(|r| r.config.name == config.name) {
                return Err(MappingChangeError::Exists(config.name.clone()));
            }
            let rec = MappingRecord {
                source: MappingSource::Store,
                config,
            };
            records.push(rec.clone());
            Ok(rec)
        })
    }

    /// Validates and replaces a stored mapping (keeping its place in the order).
    pub fn replace(
        &self,
        destination: &str,
        name: &str,
        mut config: MappingConfig,
    ) -> Result<MappingRecord, MappingChangeError> {
        config.name = name.to_owned();
        MappingSet::single(&config).map_err(|e| MappingChangeError::Invalid(e.to_string()))?;
        self.change(destination, |records| {
            let rec = writable(records, name)?;
            rec.config = config;
            Ok(rec.clone())
        })
    }

    /// Enables or disables a stored mapping.
    pub fn set_enabled(
        &self,
        destination: &str,
        name: &str,
        enabled: bool,
    ) -> Result<MappingRecord, MappingChangeError> {
        self.change(destination, |records| {
            let rec = writable(records, name)?;
            rec.config.enabled = enabled;
            Ok(rec.clone())
        })
    }

    /// Deletes a stored mapping.
    pub fn delete(&self, destination: &str, name: &str) -> Result<(), MappingChangeError> {
        self.change(destination, |records| {
            writable(records, name)?;
            records.retain(|r| r.config.name != name);
            Ok(())
        })
    }

    /// Applies `f` to a copy, compiles the whole set, persists the stored part, then
    /// publishes: a change that does not compile or cannot be stored changes nothing.
    fn change<T>(
        &self,
        destination: &str,
        f: impl FnOnce(&mut Vec<MappingRecord>) -> Result<T, MappingChangeError>,
    ) -> Result<T, MappingChangeError> {
        let mut all = self.dests.write();
        let d = all
            .get_mut(destination)
            .ok_or_else(|| MappingChangeError::UnknownDestination(destination.to_owned()))?;
        let mut records = d.records.clone();
        let out = f(&mut records)?;
        let set = compile(&records)?;
        let stored: Vec<&MappingConfig> = records
            .iter()
            .filter(|r| r.source == MappingSource::Store)
            .map(|r| &r.config)
            .collect();
        let value = serde_json::to_value(&stored).map_err(store::StoreError::Json)?;
        self.store.kv_set(NS, destination, Some(&value))?;
        d.records = records;
        d.set = set;
        Ok(out)
    }
}

fn writable<'a>(
    records: &'a mut [MappingRecord],
    name: &str,
) -> Result<&'a mut MappingRecord, MappingChangeError> {
    let rec = records
        .iter_mut()
        .find(|r| r.config.name == name)
        .ok_or_else(|| MappingChangeError::NotFound(name.to_owned()))?;
    if rec.source == MappingSource::Config {
        return Err(MappingChangeError::ReadOnly(name.to_owned()));
    }
    Ok(rec)
}

/// The [`delivery::Mapper`] of one destination: its custom mappings when it has any, the
/// default mapping otherwise.
pub struct RegistryMapper {
    registry: Arc<MappingRegistry>,
    destination: String,
}

impl RegistryMapper {
    /// The mapper of `destination`.
    pub fn new(registry: Arc<MappingRegistry>, destination: &str) -> Self {
        RegistryMapper {
            registry,
            destination: destination.to_owned(),
        }
    }
}

impl delivery::Mapper for RegistryMapper {
    fn map(
        &self,
        event: &Event,
        settings: &DestinationSettings,
        ctx: MapContext,
    ) -> ProcessedEvent {
        match self.registry.set(&self.destination) {
            Some(set) => set.map(event, settings, ctx),
            None => map_event(event, settings, ctx),
        }
    }
}
