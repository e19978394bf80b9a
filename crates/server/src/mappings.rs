//! Custom mappings per destination: validated with the `mapping` crate, kept in the store
//! when created through the admin API (design decision *Configuration*), and applied to
//! events by a [`delivery::Mapper`] that reads the current set on every event, so that a
//! change made through the admin API takes effect at once.
//!
//! With no mapping for a destination the default mapping applies; custom mappings replace it,
//! and an event is handled by the first enabled one whose trigger matches (design decision 8).

use std::collections::HashMap;
use std::sync::Arc;

use destination::default_mapping::{MapContext, RESERVED_DATA_FIELDS, list_id_of, map_event};
use destination::identity::IdentityError;
use destination::membership::{AudienceClass, resolve_value};
use destination::model::{Identity, MembershipChange, ProcessedEvent, Reason, ReasonCode};
use destination::settings::{DestinationSettings, parse_event_audience_settings};
use mapping::{ActionMapping, MappingSpec};
use parking_lot::RwLock;
use segment::Event;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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
    /// Stable id within the destination.
    pub id: String,
    /// Config (read-only) or store.
    pub source: MappingSource,
    /// The mapping itself.
    #[serde(flatten)]
    pub spec: MappingSpec,
}

/// Why a mapping change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MappingChangeError {
    /// The destination is not configured.
    #[error("no destination named {0:?}")]
    UnknownDestination(String),
    /// No mapping with that id.
    #[error("no mapping {0:?}")]
    NotFound(String),
    /// Declared in the configuration file: change it there.
    #[error("mapping {0:?} is declared in the configuration file and is read-only here")]
    ReadOnly(String),
    /// The mapping does not validate.
    #[error("invalid mapping: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

struct DestMappings {
    records: Vec<MappingRecord>,
    compiled: Arc<Vec<ActionMapping>>,
    next_id: u64,
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

fn compile_all(records: &[MappingRecord]) -> Result<Vec<ActionMapping>, MappingChangeError> {
    records
        .iter()
        .map(|r| {
            ActionMapping::compile(&r.spec).map_err(|e| MappingChangeError::Invalid(e.reasons()))
        })
        .collect()
}

impl MappingRegistry {
    /// Loads each destination's stored mappings (after the configured ones, `declared`).
    pub fn load(
        store: Arc<dyn Store>,
        destinations: &[String],
        declared: &HashMap<String, Vec<MappingSpec>>,
    ) -> Result<Self, MappingChangeError> {
        let mut dests = HashMap::new();
        for d in destinations {
            let mut records: Vec<MappingRecord> = declared
                .get(d)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, spec)| MappingRecord {
                    id: format!("config-{}", i + 1),
                    source: MappingSource::Config,
                    spec: spec.clone(),
                })
                .collect();
            let stored: Vec<MappingRecord> = match store.kv_get(NS, d)? {
                Some(v) => serde_json::from_value(v).map_err(store::StoreError::Json)?,
                None => Vec::new(),
            };
            let next_id = stored
                .iter()
                .filter_map(|r| r.id.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            records.extend(stored);
            let compiled = Arc::new(compile_all(&records)?);
            dests.insert(
                d.clone(),
                DestMappings {
                    records,
                    compiled,
                    next_id,
                },
            );
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

    /// The compiled mappings of a destination (empty: the default mapping applies).
    pub fn compiled(&self, destination: &str) -> Arc<Vec<ActionMapping>> {
        self.dests
            .read()
            .get(destination)
            .map(|d| d.compiled.clone())
            .unwrap_or_default()
    }

    /// Validates and adds a mapping (tried after the existing ones).
    pub fn create(
        &self,
        destination: &str,
        spec: MappingSpec,
    ) -> Result<MappingRecord, MappingChangeError> {
        ActionMapping::compile(&spec).map_err(|e| MappingChangeError::Invalid(e.reasons()))?;
        self.change(destination, |d| {
            let rec = MappingRecord {
                id: d.next_id.to_string(),
                source: MappingSource::Store,
                spec,
            };
            d.records.push(rec.clone());
            Ok(rec)
        })
    }

    /// Validates and replaces a stored mapping.
    pub fn replace(
        &self,
        destination: &str,
        id: &str,
        spec: MappingSpec,
    ) -> Result<MappingRecord, MappingChangeError> {
        ActionMapping::compile(&spec).map_err(|e| MappingChangeError::Invalid(e.reasons()))?;
        self.change(destination, |d| {
            let rec = writable(d, id)?;
            rec.spec = spec;
            Ok(rec.clone())
        })
    }

    /// Enables or disables a stored mapping.
    pub fn set_enabled(
        &self,
        destination: &str,
        id: &str,
        enabled: bool,
    ) -> Result<MappingRecord, MappingChangeError> {
        self.change(destination, |d| {
            let rec = writable(d, id)?;
            rec.spec.enabled = enabled;
            Ok(rec.clone())
        })
    }

    /// Deletes a stored mapping.
    pub fn delete(&self, destination: &str, id: &str) -> Result<(), MappingChangeError> {
        self.change(destination, |d| {
            writable(d, id)?;
            d.records.retain(|r| r.id != id);
            Ok(())
        })
    }

    /// Applies `f` to a copy, compiles, persists the stored part, then publishes.
    fn change<T>(
        &self,
        destination: &str,
        f: impl FnOnce(&mut DestMappings) -> Result<T, MappingChangeError>,
    ) -> Result<T, MappingChangeError> {
        let mut all = self.dests.write();
        let d = all
            .get_mut(destination)
            .ok_or_else(|| MappingChangeError::UnknownDestination(destination.to_owned()))?;
        let mut work = DestMappings {
            records: d.records.clone(),
            compiled: d.compiled.clone(),
            next_id: d.next_id,
        };
        let out = f(&mut work)?;
        let compiled = compile_all(&work.records)?;
        let stored: Vec<&MappingRecord> = work
            .records
            .iter()
            .filter(|r| r.source == MappingSource::Store)
            .collect();
        let value = serde_json::to_value(&stored).map_err(store::StoreError::Json)?;
        self.store.kv_set(NS, destination, Some(&value))?;
        d.records = work.records;
        d.compiled = Arc::new(compiled);
        d.next_id = d
            .records
            .iter()
            .filter_map(|r| r.id.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            .max(work.next_id - 1)
            + 1;
        Ok(out)
    }
}

fn writable<'a>(
    d: &'a mut DestMappings,
    id: &str,
) -> Result<&'a mut MappingRecord, MappingChangeError> {
    let rec = d
        .records
        .iter_mut()
        .find(|r| r.id == id)
        .ok_or_else(|| MappingChangeError::NotFound(id.to_owned()))?;
    if rec.source == MappingSource::Config {
        return Err(MappingChangeError::ReadOnly(id.to_owned()));
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
        let mappings = self.registry.compiled(&self.destination);
        if mappings.is_empty() {
            return map_event(event, settings, ctx);
        }
        map_custom(&mappings, event, settings, ctx)
    }
}

fn rejected(code: ReasonCode, msg: impl Into<String>) -> ProcessedEvent {
    ProcessedEvent::Rejected(Reason::new(code, msg))
}

/// Applies custom mappings to one event (design decisions 1, 3, 4, 6, 8).
pub fn map_custom(
    mappings: &[ActionMapping],
    event: &Event,
    settings: &DestinationSettings,
    ctx: MapContext,
) -> ProcessedEvent {
    let json = match serde_json::to_value(event) {
        Ok(v) => v,
        Err(e) => return rejected(ReasonCode::BadInput, format!("event cannot be read: {e}")),
    };
    let Some((_, m)) = mapping::select(mappings, &json) else {
        return ProcessedEvent::Skipped(Reason::new(
            ReasonCode::NoTriggerMatched,
            "no enabled mapping's trigger matched this event",
        ));
    };
    let fields = match m.map(&json) {
        Ok(f) => f,
        Err(e) => return rejected(ReasonCode::BadInput, format!("mapping failed: {e}")),
    };
    let key = match fields.segment_audience_key.as_deref() {
        Some(k) if !k.trim().is_empty() => k.to_owned(),
        _ => {
            return rejected(
                ReasonCode::MissingAudienceKey,
                "the mapped audience key (segmentAudienceKey) is missing or blank",
            );
        }
    };
    let list_hint = match fields.segment_audience_id.as_deref() {
        None => None,
        Some(s) => match list_id_of(&Value::String(s.to_owned())) {
            Some(id) => Some(id),
            None => {
                return rejected(
                    ReasonCode::InvalidListId,
                    format!("the mapped segmentAudienceId {s:?} is not a list id (a number)"),
                );
            }
        },
    };
    let personas = event.personas();
    let class = match personas
        .as_ref()
        .and_then(|p| p.computation_class.as_deref())
    {
        Some("journey_step") => AudienceClass::JourneyStep,
        _ => AudienceClass::Audience,
    };
    let value = fields
        .traits_or_properties
        .as_ref()
        .and_then(|t| t.get(&key));
    let direction = match resolve_value(value, &key, class) {
        Ok(d) => d,
        Err(r) => return ProcessedEvent::Rejected(r),
    };
    let identity = match Identity::new(
        fields.email.as_deref(),
        fields.user_id.as_deref(),
        settings.project_type,
    ) {
        Ok(i) => i,
        Err(e @ IdentityError::Missing) => return ProcessedEvent::Skipped(e.reason()),
        Err(e) => return ProcessedEvent::Rejected(e.reason()),
    };
    let audience_settings = match personas.as_ref().and_then(|p| p.audience_settings) {
        None => None,
        Some(raw) => {
            let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            match parse_event_audience_settings(&v) {
                Ok(s) => Some(s),
                Err(r) => return ProcessedEvent::Rejected(r),
            }
        }
    };
    // Design decision 6: the audience-key boolean and fields Iterable manages are never sent.
    let data_fields: Map<String, Value> = fields
        .data_fields
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| *k != key && !RESERVED_DATA_FIELDS.contains(&k.as_str()))
        .collect();
    let message_id = match &event.message_id {
        Some(m) if !m.is_empty() => m.clone(),
        _ => format!(
            "generated-{}-{}",
            ctx.received_at.unix_nanos(),
            ctx.received_order
        ),
    };
    ProcessedEvent::Change(Box::new(MembershipChange {
        message_id,
        timestamp: event.timestamp.unwrap_or(ctx.received_at),
        received_order: ctx.received_order,
        audience_key: key,
        list_hint,
        direction,
        identity,
        data_fields,
        audience_settings,
    }))
}
