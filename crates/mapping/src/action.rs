//! The Iterable Lists action: its fields, their default mappings (written in the mapping
//! language), the default trigger, presets, and applying one mapping to one event.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::compile::ROOT_DIRECTIVE_KEY;
use crate::error::{EvalError, MappingError, TriggerError};
use crate::js;
use crate::mapping::Mapping;
use crate::trigger::{DEFAULT_TRIGGER, Trigger};

/// The action's fields, in the order they are documented.
pub const ACTION_FIELDS: &[&str] = &[
    "email",
    "userId",
    "dataFields",
    "traitsOrProperties",
    "segmentAudienceKey",
    "segmentAudienceId",
];

/// Default `email`: the first of `traits.email`, `context.traits.email`, `properties.email`
/// that is present and not blank, as the typed default path picks it. "Blank" is written in
/// the language as: absent or `null` (`@if exists`), or a value whose JSON text is empty once
/// quotes and spaces are removed (`@json` + `@replace` + `@if blank`). So `""` and `"  "` are
/// skipped, while a number, boolean or object is picked (and then rejected as not a string).
/// Only strings of tabs or newlines alone differ: they are picked, where the typed path skips.
pub const DEFAULT_EMAIL: &str = r#"{"@if":{"exists":{"@path":"$.traits.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.traits.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.traits.email"},"else":{"@if":{"exists":{"@path":"$.context.traits.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.context.traits.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.context.traits.email"},"else":{"@if":{"exists":{"@path":"$.properties.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.properties.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.properties.email"}}}}}}},"else":{"@if":{"exists":{"@path":"$.properties.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.properties.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.properties.email"}}}}}}}}},"else":{"@if":{"exists":{"@path":"$.context.traits.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.context.traits.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.context.traits.email"},"else":{"@if":{"exists":{"@path":"$.properties.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.properties.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.properties.email"}}}}}}},"else":{"@if":{"exists":{"@path":"$.properties.email"},"then":{"@if":{"blank":{"@replace":{"value":{"@json":{"mode":"encode","value":{"@path":"$.properties.email"}}},"pattern":"\"","replacement":"","pattern2":" ","replacement2":""}},"then":{"@path":"$.properties.email"}}}}}}}}}"#;

/// Default `userId`.
pub const DEFAULT_USER_ID: &str = r#"{"@path":"$.userId"}"#;

/// Default `traitsOrProperties`: `traits` on identify events, `properties` on track events,
/// nothing on others. The path is computed from `type`: `@replace` turns `_.identify` into
/// `traits` and `_.track` into `properties` (both within the 10-character limit); any other
/// type gives a path under the key `_`, which Segment events do not have.
pub const DEFAULT_TRAITS_OR_PROPERTIES: &str = r#"{"@path":{"@replace":{"value":{"@template":"_.{{type}}"},"pattern":"_.identify","replacement":"traits","pattern2":"_.track","replacement2":"properties"}}}"#;

/// Default `segmentAudienceKey`.
pub const DEFAULT_SEGMENT_AUDIENCE_KEY: &str = r#"{"@path":"$.context.personas.computation_key"}"#;

/// Default `segmentAudienceId`.
pub const DEFAULT_SEGMENT_AUDIENCE_ID: &str =
    r#"{"@path":"$.context.personas.external_audience_id"}"#;

/// The default field mapping as one JSON object. `dataFields` has no default: none are sent
/// unless configured (design decision 6).
pub fn default_fields() -> Map<String, Value> {
    let mut m = Map::new();
    for (k, src) in [
        ("email", DEFAULT_EMAIL),
        ("userId", DEFAULT_USER_ID),
        ("traitsOrProperties", DEFAULT_TRAITS_OR_PROPERTIES),
        ("segmentAudienceKey", DEFAULT_SEGMENT_AUDIENCE_KEY),
        ("segmentAudienceId", DEFAULT_SEGMENT_AUDIENCE_ID),
    ] {
        // The constants are fixed JSON, checked by the tests.
        m.insert(
            k.to_owned(),
            serde_json::from_str(src).unwrap_or(Value::Null),
        );
    }
    m
}

/// A mapping as users write it (in the configuration file or the admin API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Disabled mappings never handle events.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The trigger; defaults to [`DEFAULT_TRIGGER`].
    #[serde(default = "default_trigger")]
    pub trigger: String,
    /// Field mappings. Each overrides the field's default; a field absent here keeps its
    /// default, and a field mapped to `null` is left unset. May hold the root directive.
    #[serde(default)]
    pub fields: Map<String, Value>,
}

fn yes() -> bool {
    true
}

fn default_trigger() -> String {
    DEFAULT_TRIGGER.to_owned()
}

impl Default for MappingSpec {
    fn default() -> Self {
        Self {
            name: None,
            enabled: true,
            trigger: default_trigger(),
            fields: Map::new(),
        }
    }
}

/// Why a [`MappingSpec`] is invalid: the trigger, the fields, or both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.reasons().join("; "))]
pub struct SpecError {
    /// The trigger's syntax error, if any.
    pub trigger: Option<TriggerError>,
    /// The field mapping's problems, if any.
    pub mapping: Option<MappingError>,
}

impl SpecError {
    /// Every problem, one sentence each.
    pub fn reasons(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .trigger
            .iter()
            .map(|e| format!("trigger: {e}"))
            .collect();
        if let Some(m) = &self.mapping {
            out.extend(m.errors.iter().map(ToString::to_string));
        }
        out
    }
}

/// The action's fields after mapping one event, typed. A field that resolved to nothing (or
/// to `null`) is `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedFields {
    /// The subscriber's email.
    pub email: Option<String>,
    /// The subscriber's user id (a number is taken as its decimal text).
    pub user_id: Option<String>,
    /// Data fields to send with a subscribe.
    pub data_fields: Option<Map<String, Value>>,
    /// Where the membership boolean is read (`traitsOrProperties[segmentAudienceKey]`).
    pub traits_or_properties: Option<Map<String, Value>>,
    /// The audience key (the list name).
    pub segment_audience_key: Option<String>,
    /// The Iterable list id known to the CDP.
    pub segment_audience_id: Option<String>,
}

/// Why one event could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// A directive failed on this event.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Fields resolved to the wrong type, one message each.
    #[error("{}", .0.join("; "))]
    Fields(Vec<String>),
}

/// A validated mapping of the action: a trigger and the field mapping (defaults included).
#[derive(Debug)]
pub struct ActionMapping {
    name: Option<String>,
    enabled: bool,
    trigger: Trigger,
    mapping: Mapping,
}

impl ActionMapping {
    /// Validates a spec: the trigger parses, every field key is one of [`ACTION_FIELDS`] (or
    /// the root directive), every field mapping validates.
    pub fn compile(spec: &MappingSpec) -> Result<Self, SpecError> {
        let trigger = Trigger::parse(&spec.trigger);
        let mut fields = default_fields();
        let mut unknown = Vec::new();
        for (k, v) in &spec.fields {
            if !ACTION_FIELDS.contains(&k.as_str()) && k != ROOT_DIRECTIVE_KEY {
                unknown.push(crate::error::ValidationError {
                    path: format!("mapping.{k}"),
                    message: format!(
                        "unknown field (the fields are {})",
                        ACTION_FIELDS.join(", ")
                    ),
                });
            }
            fields.insert(k.clone(), v.clone());
        }
        let mapping = Mapping::compile(&Value::Object(fields));
        let mapping_err = match (&mapping, unknown.is_empty()) {
            (Ok(_), true) => None,
            (Ok(_), false) => Some(MappingError { errors: unknown }),
            (Err(e), _) => {
                unknown.extend(e.errors.iter().cloned());
                Some(MappingError { errors: unknown })
            }
        };
        match (trigger, mapping, mapping_err) {
            (Ok(trigger), Ok(mapping), None) => Ok(Self {
                name: spec.name.clone(),
                enabled: spec.enabled,
                trigger,
                mapping,
            }),
            (trigger, _, mapping) => Err(SpecError {
                trigger: trigger.err(),
                mapping,
            }),
        }
    }

    /// The default mapping: [`DEFAULT_TRIGGER`] and the default fields.
    pub fn default_mapping() -> Self {
        match Self::compile(&MappingSpec::default()) {
            Ok(m) => m,
            // The defaults are constants covered by tests; failing here is a build defect.
            Err(e) => unreachable!("the default mapping is invalid: {e}"),
        }
    }

    /// The mapping's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether the mapping may handle events.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The trigger.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }

    /// Whether the trigger matches the event (regardless of `enabled`).
    pub fn matches(&self, event: &Value) -> bool {
        self.trigger.matches(event)
    }

    /// The raw mapped object (what `eval --mapping` prints).
    pub fn map_raw(&self, event: &Value) -> Result<Value, EvalError> {
        self.mapping.apply(event)
    }

    /// Maps the event to the action's typed fields.
    pub fn map(&self, event: &Value) -> Result<MappedFields, MapError> {
        typed_fields(self.mapping.apply(event)?)
    }
}

fn typed_fields(raw: Value) -> Result<MappedFields, MapError> {
    let mut raw = match raw {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut problems = Vec::new();
    let mut text = |key: &str, numbers_ok: bool| -> Option<String> {
        match raw.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) if numbers_ok => Some(js::json_number_to_string(&n)),
            Some(other) => {
                problems.push(format!("{key} must be a string, got {}", kind(&other)));
                None
            }
        }
    };
    let email = text("email", false);
    let user_id = text("userId", true);
    let segment_audience_key = text("segmentAudienceKey", true);
    let segment_audience_id = text("segmentAudienceId", true);
    let mut object = |key: &str| -> Option<Map<String, Value>> {
        match raw.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                problems.push(format!("{key} must be an object, got {}", kind(&other)));
                None
            }
        }
    };
    let data_fields = object("dataFields");
    let traits_or_properties = object("traitsOrProperties");
    if !problems.is_empty() {
        return Err(MapError::Fields(problems));
    }
    Ok(MappedFields {
        email,
        user_id,
        data_fields,
        traits_or_properties,
        segment_audience_key,
        segment_audience_id,
    })
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

/// Picks the mapping that handles an event: the first enabled one, in declared order, whose
/// trigger matches (design decision 8). `None` means the event is skipped.
pub fn select<'a>(
    mappings: &'a [ActionMapping],
    event: &Value,
) -> Option<(usize, &'a ActionMapping)> {
    mappings
        .iter()
        .enumerate()
        .find(|(_, m)| m.enabled && m.matches(event))
}

/// What [`test_mapping`] found for one event and one mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestMappingReport {
    /// Whether the trigger matched. The fields are mapped either way, to help debugging.
    pub trigger_matched: bool,
    /// The mapped object as the mapping produced it.
    pub raw: Option<Value>,
    /// The typed fields, when mapping succeeded.
    pub fields: Option<MappedFields>,
    /// Why the event would be rejected (empty when it would not).
    pub reasons: Vec<String>,
}

/// Test-mapping core: validates the mapping, then applies its trigger and fields to the event.
/// An invalid mapping is an `Err` with every reason.
pub fn test_mapping(event: &Value, spec: &MappingSpec) -> Result<TestMappingReport, SpecError> {
    let m = ActionMapping::compile(spec)?;
    let trigger_matched = m.matches(event);
    let mut reasons = Vec::new();
    if !event.is_object() {
        reasons.push("the event must be a JSON object".to_owned());
    }
    let (raw, fields) = match m.mapping.apply(event) {
        Ok(raw) => match typed_fields(raw.clone()) {
            Ok(f) => (Some(raw), Some(f)),
            Err(e) => {
                reasons.push(e.to_string());
                (Some(raw), None)
            }
        },
        Err(e) => {
            reasons.push(e.to_string());
            (None, None)
        }
    };
    if !trigger_matched {
        reasons.push(format!(
            "the trigger `{}` does not match this event",
            m.trigger
        ));
    }
    Ok(TestMappingReport {
        trigger_matched,
        raw,
        fields,
        reasons,
    })
}

/// A ready-made mapping for a common kind of audience event.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Stable identifier (Segment's event-emitter slug where one exists).
    pub slug: &'static str,
    /// Name for people.
    pub name: &'static str,
    /// The trigger.
    pub trigger: &'static str,
}

/// Identify audience events.
pub const PRESET_IDENTIFY: Preset = Preset {
    slug: "identify_audience_membership",
    name: "Audience membership (identify)",
    trigger: r#"type = "identify""#,
};

/// Track audience events: `Audience Entered` / `Audience Exited`.
pub const PRESET_TRACK: Preset = Preset {
    slug: "track_audience_entered_exited",
    name: "Audience Entered / Exited (track)",
    trigger: r#"type = "track" and (event = "Audience Entered" or event = "Audience Exited")"#,
};

/// Linked Audiences: "Entities Audience Membership Changed" (engage-events.md §1.4).
pub const PRESET_LINKED_AUDIENCE: Preset = Preset {
    slug: "warehouse_audience_membership_changed_identify",
    name: "Entities Audience Membership Changed",
    trigger: r#"type = "identify" and context.personas.event_emitter_id != null"#,
};

/// Journeys: step entered.
pub const PRESET_JOURNEY_STEP: Preset = Preset {
    slug: "journeys_step_entered_track",
    name: "Journeys Step Entered",
    trigger: r#"type = "track" and context.personas.computation_class = "journey_step""#,
};

/// Every preset.
pub const PRESETS: &[Preset] = &[
    PRESET_IDENTIFY,
    PRESET_TRACK,
    PRESET_LINKED_AUDIENCE,
    PRESET_JOURNEY_STEP,
];

/// The Linked Audiences root directive: flattens `<container>.data_graph_entity_context`
/// into `<container>` with `__` and arrays kept whole, then removes the context key
/// (`@excludeWhenNull` of `null` always yields nothing, and nothing overrides in `@merge`).
pub fn linked_audience_root_directive(container: &str) -> Value {
    serde_json::json!({
        "@transform": {
            "apply": {
                "@merge": {
                    "direction": "right",
                    "objects": [
                        {"@path": "$."},
                        {container: {"@merge": {
                            "direction": "right",
                            "objects": [
                                {"@path": format!("$.{container}")},
                                {"@flatten": {
                                    "value": {"@path": format!("$.{container}.data_graph_entity_context")},
                                    "separator": "__",
                                    "omitArrays": true
                                }},
                                {"data_graph_entity_context": {"@excludeWhenNull": null}}
                            ]
                        }}}
                    ]
                }
            }
        }
    })
}

impl Preset {
    /// The preset as a spec: its trigger and the default fields (plus, for Linked
    /// Audiences, the root directive over `traits`).
    pub fn spec(&self) -> MappingSpec {
        let mut fields = Map::new();
        if self.slug == PRESET_LINKED_AUDIENCE.slug {
            fields.insert(
                ROOT_DIRECTIVE_KEY.to_owned(),
                linked_audience_root_directive("traits"),
            );
        }
        MappingSpec {
            name: Some(self.name.to_owned()),
            enabled: true,
            trigger: self.trigger.to_owned(),
            fields,
        }
    }
}
