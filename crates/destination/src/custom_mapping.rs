//! Events through Segment-compatible mappings (design decisions 1, 4, 6, 8; engage-events.md
//! §1.2, §2.1–2.2): the same [`ProcessedEvent`] the typed default path gives, from mappings
//! written in the mapping language.
//!
//! A [`MappingSet`] holds compiled mappings in declared order. For one event:
//!
//! 1. The first enabled mapping whose trigger matches handles it (decision 8); none matches →
//!    skipped `no_trigger_matched`.
//! 2. Its fields are mapped: `segmentAudienceKey` must be a non-blank string (else rejected,
//!    decision 1); `segmentAudienceId`, when present, must be a list id (else rejected);
//!    membership is `traitsOrProperties[segmentAudienceKey]` under the *Membership values*
//!    rules ([`crate::membership`]); `email`/`userId` are validated by [`crate::identity`].
//! 3. `dataFields`: the destination's `data_fields` names copied from `traitsOrProperties`,
//!    then the mapping's `dataFields` over them; the audience-key boolean and the fields
//!    Iterable manages are never sent (decision 6).
//! 4. Audience settings come from `context.personas.audience_settings`, as on the default path.
//!
//! [`MappingSet::default_mapping`] is the default mapping in the language
//! ([`mapping::default_fields`] and [`mapping::DEFAULT_TRIGGER`]). It also applies decision 1's
//! audience-event test for the default mapping (`context.personas` with an audience class), which
//! a trigger cannot express with the same skip reasons; custom sets rely on their triggers alone.

use std::collections::HashSet;

use mapping::{ActionMapping, DEFAULT_TRIGGER, MappingSpec};
use segment::{Event, EventType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::default_mapping::{MapContext, RESERVED_DATA_FIELDS, list_id_of};
use crate::identity::IdentityError;
use crate::membership::{self, AudienceClass};
use crate::model::{Identity, MembershipChange, ProcessedEvent, Reason, ReasonCode};
use crate::settings::{DestinationSettings, parse_event_audience_settings};

/// One mapping as the configuration or the admin API declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// A name people use to refer to it; unique within a destination.
    pub name: String,
    /// The trigger (Segment's FQL); defaults to [`DEFAULT_TRIGGER`].
    #[serde(default = "default_trigger")]
    pub trigger: String,
    /// The action's field mappings (`email`, `userId`, `dataFields`, `traitsOrProperties`,
    /// `segmentAudienceKey`, `segmentAudienceId`, or the root directive), as pasted from
    /// Segment. A field absent here keeps its default.
    #[serde(default, alias = "fields")]
    pub mapping: Map<String, Value>,
    /// Disabled mappings never handle events (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_trigger() -> String {
    DEFAULT_TRIGGER.to_owned()
}

fn yes() -> bool {
    true
}

impl MappingConfig {
    /// A config with the default trigger and the default fields.
    pub fn new(name: impl Into<String>) -> Self {
        MappingConfig {
            name: name.into(),
            trigger: default_trigger(),
            mapping: Map::new(),
            enabled: true,
        }
    }

    fn spec(&self) -> MappingSpec {
        MappingSpec {
            name: Some(self.name.clone()),
            enabled: self.enabled,
            trigger: self.trigger.clone(),
            fields: self.mapping.clone(),
        }
    }
}

/// One invalid mapping: its name, position, and every problem with the path to its node
/// (`mapping.dataFields.plan: @path expects a string`, `trigger: … column 7`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping {name:?} (#{position}): {}", problems.join("; "))]
pub struct InvalidMapping {
    /// The mapping's name.
    pub name: String,
    /// Its 1-based position in declared order.
    pub position: usize,
    /// Each problem, one sentence with its path.
    pub problems: Vec<String>,
}

/// Why a set of mappings cannot be built. Nothing is built when any mapping is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct MappingSetError {
    /// One entry per invalid mapping, in declared order.
    pub errors: Vec<InvalidMapping>,
}

struct Compiled {
    name: String,
    action: ActionMapping,
}

/// Compiled mappings in declared order, ready to map events (design decision 8).
pub struct MappingSet {
    mappings: Vec<Compiled>,
    /// Decision 1's audience-event test for the default mapping.
    default_gate: bool,
}

impl std::fmt::Debug for MappingSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingSet")
            .field("mappings", &self.names())
            .field("default", &self.default_gate)
            .finish()
    }
}

/// Name of the default mapping in previews and logs.
pub const DEFAULT_MAPPING_NAME: &str = "default";

impl MappingSet {
    /// The default mapping in the language (design decision 8).
    pub fn default_mapping() -> Self {
        MappingSet {
            mappings: vec![Compiled {
                name: DEFAULT_MAPPING_NAME.to_owned(),
                action: ActionMapping::default_mapping(),
            }],
            default_gate: true,
        }
    }

    /// Compiles custom mappings. An empty list gives the default mapping (custom mappings
    /// replace it only when there are some). Every invalid mapping is reported, and names
    /// must be unique and non-blank.
    pub fn from_configs(configs: &[MappingConfig]) -> Result<Self, MappingSetError> {
        if configs.is_empty() {
            return Ok(Self::default_mapping());
        }
        let mut errors = Vec::new();
        let mut mappings = Vec::with_capacity(configs.len());
        let mut seen = HashSet::new();
        for (i, c) in configs.iter().enumerate() {
            let mut problems = Vec::new();
            if c.name.trim().is_empty() {
                problems.push("name: must not be blank".to_owned());
            } else if !seen.insert(c.name.as_str()) {
                problems.push("name: another mapping has the same name".to_owned());
            }
            match ActionMapping::compile(&c.spec()) {
                Ok(action) if problems.is_empty() => mappings.push(Compiled {
                    name: c.name.clone(),
                    action,
                }),
                Ok(_) => {}
                Err(e) => problems.extend(e.reasons()),
            }
            if !problems.is_empty() {
                errors.push(InvalidMapping {
                    name: c.name.clone(),
                    position: i + 1,
                    problems,
                });
            }
        }
        if errors.is_empty() {
            Ok(MappingSet {
                mappings,
                default_gate: false,
            })
        } else {
            Err(MappingSetError { errors })
        }
    }

    /// One mapping on its own, treated as enabled (what test-mapping previews).
    pub fn single(config: &MappingConfig) -> Result<Self, MappingSetError> {
        let mut c = config.clone();
        c.enabled = true;
        Self::from_configs(std::slice::from_ref(&c))
    }

    /// Whether this is the default mapping.
    pub fn is_default(&self) -> bool {
        self.default_gate
    }

    /// The mappings' names, in declared order.
    pub fn names(&self) -> Vec<&str> {
        self.mappings.iter().map(|m| m.name.as_str()).collect()
    }

    /// Maps one event (the [`crate::default_mapping::map_event`] contract).
    pub fn map(
        &self,
        event: &Event,
        settings: &DestinationSettings,
        ctx: MapContext,
    ) -> ProcessedEvent {
        self.map_traced(event, settings, ctx).processed
    }

    /// Maps one event and says which mapping handled it and what it mapped.
    pub fn map_traced(
        &self,
        event: &Event,
        settings: &DestinationSettings,
        ctx: MapContext,
    ) -> MappingTrace {
        let mut trace = MappingTrace {
            mapping: None,
            trigger_matched: false,
            mapped: None,
            processed: ProcessedEvent::Skipped(Reason::new(
                ReasonCode::NoTriggerMatched,
                "no enabled mapping's trigger matches this event",
            )),
        };
        let class = if self.default_gate {
            match default_gate(event) {
                Ok(c) => c,
                Err(r) => {
                    trace.processed = ProcessedEvent::Skipped(r);
                    return trace;
                }
            }
        } else {
            // A custom mapping decides by its trigger; the class only picks the journey rule.
            event
                .personas()
                .and_then(|p| AudienceClass::from_class(p.computation_class.as_deref()))
                .unwrap_or(AudienceClass::Audience)
        };
        let value = match event_value(event) {
            Ok(v) => v,
            Err(r) => {
                trace.processed = ProcessedEvent::Rejected(r);
                return trace;
            }
        };
        let Some(m) = self
            .mappings
            .iter()
            .find(|m| m.action.enabled() && m.action.matches(&value))
        else {
            return trace;
        };
        trace.mapping = Some(m.name.clone());
        trace.trigger_matched = true;
        let raw = match m.action.map_raw(&value) {
            Ok(raw) => raw,
            Err(e) => {
                trace.processed = ProcessedEvent::Rejected(Reason::new(
                    ReasonCode::BadInput,
                    format!("mapping {:?} failed on this event: {e}", m.name),
                ));
                return trace;
            }
        };
        trace.processed = match change_of(event, &raw, class, settings, ctx) {
            Ok(c) => ProcessedEvent::Change(Box::new(c)),
            Err(Verdict::Skip(r)) => ProcessedEvent::Skipped(r),
            Err(Verdict::Reject(r)) => ProcessedEvent::Rejected(r),
        };
        trace.mapped = Some(raw);
        trace
    }

    /// Applies one mapping by position whether or not its trigger matches (test-mapping shows
    /// the fields of a non-matching event too). `None` when there is no such mapping or it
    /// failed on the event.
    pub fn mapped_fields(&self, index: usize, event: &Event) -> Option<Value> {
        let m = self.mappings.get(index)?;
        m.action.map_raw(&event_value(event).ok()?).ok()
    }
}

/// What [`MappingSet::map_traced`] found for one event.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingTrace {
    /// The name of the mapping that handled the event.
    pub mapping: Option<String>,
    /// Whether some enabled mapping's trigger matched.
    pub trigger_matched: bool,
    /// The mapped fields object, when a mapping ran.
    pub mapped: Option<Value>,
    /// The result.
    pub processed: ProcessedEvent,
}

enum Verdict {
    Skip(Reason),
    Reject(Reason),
}

fn reject(code: ReasonCode, msg: impl Into<String>) -> Verdict {
    Verdict::Reject(Reason::new(code, msg))
}

/// Design decision 1 for the default mapping, with the typed path's reasons.
fn default_gate(event: &Event) -> Result<AudienceClass, Reason> {
    if !matches!(event.kind, EventType::Identify | EventType::Track) {
        return Err(Reason::new(
            ReasonCode::UnsupportedType,
            format!("{} calls are not audience events", event.kind),
        ));
    }
    let Some(personas) = event.personas() else {
        return Err(Reason::new(
            ReasonCode::NotAudienceEvent,
            "no context.personas: not an audience event",
        ));
    };
    AudienceClass::from_class(personas.computation_class.as_deref()).ok_or_else(|| {
        Reason::new(
            ReasonCode::NotAudienceEvent,
            format!(
                "computation_class {:?} is not an audience",
                personas.computation_class.as_deref().unwrap_or_default()
            ),
        )
    })
}

/// The event as the JSON tree mappings and triggers read.
pub fn event_value(event: &Event) -> Result<Value, Reason> {
    serde_json::to_value(event).map_err(|e| {
        Reason::new(
            ReasonCode::BadInput,
            format!("the event cannot be read as JSON: {e}"),
        )
    })
}

/// The mapped fields object (anything else maps to nothing).
fn field<'a>(raw: &'a Value, name: &str) -> Option<&'a Value> {
    raw.as_object()?.get(name).filter(|v| !v.is_null())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The checks run in the typed path's order, so an event with several problems gets the same
/// reason on both paths.
fn change_of(
    event: &Event,
    raw: &Value,
    class: AudienceClass,
    settings: &DestinationSettings,
    ctx: MapContext,
) -> Result<MembershipChange, Verdict> {
    // Decision 1: the mapped audience key must be a non-blank string.
    let key = match field(raw, "segmentAudienceKey") {
        Some(Value::String(k)) if !k.trim().is_empty() => k.as_str(),
        Some(Value::String(_)) | None => {
            return Err(reject(
                ReasonCode::MissingAudienceKey,
                "the mapped segmentAudienceKey is missing or blank",
            ));
        }
        Some(other) => {
            return Err(reject(
                ReasonCode::MissingAudienceKey,
                format!(
                    "the mapped segmentAudienceKey is {}, not a string",
                    kind(other)
                ),
            ));
        }
    };
    // Issue 3 item 6: a list id that is present but not a number is rejected.
    let list_hint = match field(raw, "segmentAudienceId") {
        None => None,
        Some(v) => Some(list_id_of(v).ok_or_else(|| {
            reject(
                ReasonCode::InvalidListId,
                format!("the mapped segmentAudienceId {v} is not a list id (a number)"),
            )
        })?),
    };
    let fields = match field(raw, "traitsOrProperties") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(reject(
                ReasonCode::BadInput,
                format!(
                    "the mapped traitsOrProperties is {}, not an object",
                    kind(other)
                ),
            ));
        }
    };
    // engage-events.md §1.2, decision 4: never an exit by default.
    let direction = membership::resolve_value(fields.and_then(|f| f.get(key)), key, class)
        .map_err(Verdict::Reject)?;
    let email = identifier(raw, "email", false)?;
    let user_id = identifier(raw, "userId", true)?;
    let identity = Identity::new(email.as_deref(), user_id.as_deref(), settings.project_type)
        .map_err(|e| match e {
            IdentityError::Missing => Verdict::Skip(e.reason()),
            _ => Verdict::Reject(e.reason()),
        })?;
    let audience_settings = match event.personas().and_then(|p| p.audience_settings) {
        None => None,
        Some(raw) => {
            let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            Some(parse_event_audience_settings(&v).map_err(Verdict::Reject)?)
        }
    };
    let data_fields = data_fields_of(raw, fields, key, &settings.data_fields)?;
    let message_id = match &event.message_id {
        Some(m) if !m.is_empty() => m.clone(),
        _ => format!(
            "generated-{}-{}",
            ctx.received_at.unix_nanos(),
            ctx.received_order
        ),
    };
    Ok(MembershipChange {
        message_id,
        timestamp: event.timestamp.unwrap_or(ctx.received_at),
        received_order: ctx.received_order,
        audience_key: key.to_owned(),
        list_hint,
        direction,
        identity,
        data_fields,
        audience_settings,
    })
}

/// A mapped identifier as text: strings as they are, numbers (for `userId`) as their decimal
/// text; anything else rejects the event.
fn identifier(raw: &Value, name: &str, numbers_ok: bool) -> Result<Option<String>, Verdict> {
    match field(raw, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if numbers_ok => Ok(Some(n.to_string())),
        Some(other) => Err(reject(
            ReasonCode::BadIdentifier,
            format!("the mapped {name} is {other}, not a string"),
        )),
    }
}

fn allowed(name: &str, audience_key: &str) -> bool {
    name != audience_key && !RESERVED_DATA_FIELDS.contains(&name)
}

/// Decision 6: the destination's named fields from traitsOrProperties, then the mapping's
/// `dataFields` over them; never the audience key nor Iterable-managed fields.
fn data_fields_of(
    raw: &Value,
    fields: Option<&Map<String, Value>>,
    audience_key: &str,
    names: &[String],
) -> Result<Map<String, Value>, Verdict> {
    let mut out = Map::new();
    if let Some(f) = fields {
        for name in names.iter().filter(|n| allowed(n, audience_key)) {
            if let Some(v) = f.get(name) {
                out.insert(name.clone(), v.clone());
            }
        }
    }
    match field(raw, "dataFields") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m.iter().filter(|(k, _)| allowed(k, audience_key)) {
                out.insert(k.clone(), v.clone());
            }
        }
        Some(other) => {
            return Err(reject(
                ReasonCode::BadInput,
                format!("the mapped dataFields is {}, not an object", kind(other)),
            ));
        }
    }
    Ok(out)
}
