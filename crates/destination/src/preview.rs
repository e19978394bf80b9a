//! Test-mapping (issue 5): what one event would become under one mapping (or the default),
//! down to the exact Iterable request, without sending anything.
//!
//! The request is planned by [`crate::planner`] with the destination's settings and the
//! audience's effective settings (design decision 5), so its body is byte for byte what the
//! sender would post, except for the list id when the list is not known before sending: then
//! `listId` holds [`PLACEHOLDER_LIST_ID`]'s text and [`ListChoice`] says how it will be chosen
//! (design decision 7).

use serde::Serialize;
use serde_json::{Map, Value};

use segment::{Event, Limits, parse_event};

use crate::custom_mapping::MappingSet;
use crate::default_mapping::MapContext;
use crate::model::{Direction, MembershipChange, ProcessedEvent, Reason, ReasonCode};
use crate::planner::{self, PlanConfig, PlanItem};
use crate::settings::{DestinationSettings, EffectiveAudienceSettings, ListBinding};

/// The text that stands for a list id not known before sending.
pub const PLACEHOLDER_LIST_ID: &str = "<list id resolved at send time>";

/// What would happen to one event. Nothing is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The mapping that handled the event (`default` for the default mapping).
    pub mapping: Option<String>,
    /// Whether a trigger matched.
    pub trigger_matched: bool,
    /// The mapped fields object, as the mapping produced it (also shown when the trigger
    /// did not match, to help debugging).
    pub mapped_fields: Option<Value>,
    /// `change`, `skipped` or `rejected`.
    pub outcome: PreviewOutcome,
    /// The membership decision, for a change.
    pub membership: Option<MembershipDecision>,
    /// The request that would be sent, for a change.
    pub request: Option<PreviewRequest>,
    /// Why the event would be skipped or rejected (empty for a change).
    pub reasons: Vec<Reason>,
    /// Things an operator should know (ignored settings, list choice).
    pub warnings: Vec<String>,
}

/// The verdict on the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewOutcome {
    /// It becomes a membership change and a request.
    Change,
    /// Final, not an error.
    Skipped,
    /// Final, needs a person.
    Rejected,
}

/// In or out, for whom, on which audience.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipDecision {
    /// `subscribe` (enter) or `unsubscribe` (exit).
    pub direction: Direction,
    /// The audience key (the list name).
    pub audience_key: String,
    /// The normalised email, if any.
    pub email: Option<String>,
    /// The userId, if any.
    pub user_id: Option<String>,
    /// The ledger key (design decision 3), e.g. `u:u123` or `e:jane@example.com`.
    pub identity_key: String,
    /// The list id the event suggested.
    pub list_hint: Option<i64>,
    /// Data fields sent with a subscribe.
    pub data_fields: Map<String, Value>,
}

/// How the list of the request is chosen (design decision 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "source",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum ListChoice {
    /// The operator bound the audience to this list id.
    Binding {
        /// The bound list.
        list_id: i64,
    },
    /// The operator bound the audience to the Standard list with this name; its id is looked
    /// up at send time.
    BindingByName {
        /// The bound list's name.
        name: String,
    },
    /// The event's `external_audience_id`, used if that list exists (else the list named
    /// after the audience key is used or created).
    Event {
        /// The suggested list.
        list_id: i64,
    },
    /// No id is known: the list named exactly the audience key is used, or created.
    ByAudienceName {
        /// The list name.
        name: String,
    },
}

impl ListChoice {
    /// The id the body carries, when known now.
    pub fn list_id(&self) -> Option<i64> {
        match self {
            ListChoice::Binding { list_id } | ListChoice::Event { list_id } => Some(*list_id),
            ListChoice::BindingByName { .. } | ListChoice::ByAudienceName { .. } => None,
        }
    }
}

/// The request that would be sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRequest {
    /// Always `POST`.
    pub method: &'static str,
    /// The full URL (region or endpoint override, plus the path).
    pub url: String,
    /// `/api/lists/subscribe` or `/api/lists/unsubscribe`.
    pub path: &'static str,
    /// How the list is chosen.
    pub list: ListChoice,
    /// The audience's effective settings the body carries.
    pub settings: EffectiveAudienceSettings,
    /// The JSON body; `listId` is [`PLACEHOLDER_LIST_ID`] when the id is not known yet.
    pub body: Value,
}

impl Preview {
    /// True when the event would be rejected.
    pub fn is_rejected(&self) -> bool {
        self.outcome == PreviewOutcome::Rejected
    }

    fn ended(outcome: PreviewOutcome, reason: Reason) -> Self {
        Preview {
            mapping: None,
            trigger_matched: false,
            mapped_fields: None,
            outcome,
            membership: None,
            request: None,
            reasons: vec![reason],
            warnings: Vec::new(),
        }
    }
}

/// Previews one event given as JSON text: a body Segment's API would refuse is a rejection
/// with its reason (issue 3 item 1).
pub fn preview_json(
    body: &[u8],
    mappings: &MappingSet,
    settings: &DestinationSettings,
    ctx: MapContext,
) -> Preview {
    match parse_event(body, &Limits::default()) {
        Ok(event) => preview(&event, mappings, settings, ctx),
        Err(e) => Preview::ended(
            PreviewOutcome::Rejected,
            Reason::new(ReasonCode::BadInput, e.to_string()),
        ),
    }
}

/// Previews one parsed event through `mappings` (one mapping, or the default) for a
/// destination.
pub fn preview(
    event: &Event,
    mappings: &MappingSet,
    settings: &DestinationSettings,
    ctx: MapContext,
) -> Preview {
    let trace = mappings.map_traced(event, settings, ctx);
    // With one custom mapping whose trigger did not match, show its fields anyway.
    let mapped_fields = match (&trace.mapped, mappings.names().len(), trace.trigger_matched) {
        (Some(m), _, _) => Some(m.clone()),
        (None, 1, false) if !mappings.is_default() => mappings.mapped_fields(0, event),
        _ => None,
    };
    let mut p = Preview {
        mapping: trace.mapping,
        trigger_matched: trace.trigger_matched,
        mapped_fields,
        outcome: PreviewOutcome::Change,
        membership: None,
        request: None,
        reasons: Vec::new(),
        warnings: Vec::new(),
    };
    match trace.processed {
        ProcessedEvent::Skipped(r) => {
            p.outcome = PreviewOutcome::Skipped;
            p.reasons.push(r);
        }
        ProcessedEvent::Rejected(r) => {
            p.outcome = PreviewOutcome::Rejected;
            p.reasons.push(r);
        }
        ProcessedEvent::Change(change) => {
            let (request, warnings) = request_for(&change, settings);
            p.warnings = warnings;
            p.membership = Some(MembershipDecision {
                direction: change.direction,
                audience_key: change.audience_key.clone(),
                email: change.identity.email().map(str::to_owned),
                user_id: change.identity.user_id().map(str::to_owned),
                identity_key: change.identity.key(settings.project_type).to_storage(),
                list_hint: change.list_hint,
                data_fields: change.data_fields.clone(),
            });
            match request {
                Ok(r) => p.request = Some(r),
                Err(reason) => {
                    p.outcome = PreviewOutcome::Rejected;
                    p.reasons.push(reason);
                }
            }
        }
    }
    p
}

fn list_choice(change: &MembershipChange, settings: &DestinationSettings) -> ListChoice {
    match settings
        .audience(&change.audience_key)
        .and_then(|a| a.list.as_ref())
    {
        Some(ListBinding::Id(id)) => ListChoice::Binding { list_id: *id },
        Some(ListBinding::Name(n)) => ListChoice::BindingByName { name: n.clone() },
        None => match change.list_hint {
            Some(id) => ListChoice::Event { list_id: id },
            None => ListChoice::ByAudienceName {
                name: change.audience_key.clone(),
            },
        },
    }
}

/// Plans the one request the change implies, exactly as the sender would.
fn request_for(
    change: &MembershipChange,
    settings: &DestinationSettings,
) -> (Result<PreviewRequest, Reason>, Vec<String>) {
    let (eff, mut warnings) =
        settings.effective(&change.audience_key, change.audience_settings.as_ref());
    let list = list_choice(change, settings);
    match &list {
        ListChoice::Event { list_id } => warnings.push(format!(
            "list {list_id} (from the event) is used if it exists in Iterable; otherwise the \
             Standard list named {:?} is used or created",
            change.audience_key
        )),
        ListChoice::ByAudienceName { name } => warnings.push(format!(
            "no list id is known yet: the Standard list named {name:?} is used, or created \
             on the first send; listId in the body is a placeholder"
        )),
        ListChoice::BindingByName { name } => warnings.push(format!(
            "the audience is bound to the list named {name:?}; its id is looked up at send \
             time; listId in the body is a placeholder"
        )),
        ListChoice::Binding { .. } => {}
    }
    if change.direction == Direction::Unsubscribe {
        warnings.push(
            "on a list this service created, an exit is skipped when no subscribe was ever \
             sent for this identity (design decision 2)"
                .to_owned(),
        );
    }
    // 0 is never a real list id; the placeholder replaces it below.
    let item = PlanItem {
        list_id: list.list_id().unwrap_or(0),
        settings: eff,
        change,
    };
    let plan = planner::plan(&PlanConfig::from_settings(settings), &[item]);
    if let Some((_, outcome)) = plan.settled.first() {
        let reason = outcome.reason().cloned().unwrap_or_else(|| {
            Reason::new(
                ReasonCode::BadInput,
                "the planner could not place this change",
            )
        });
        return (Err(reason), warnings);
    }
    let Some(req) = plan.requests.first() else {
        return (
            Err(Reason::new(
                ReasonCode::BadInput,
                "the planner produced no request for this change",
            )),
            warnings,
        );
    };
    let mut body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return (
                Err(Reason::new(
                    ReasonCode::BadInput,
                    format!("the planned body is not JSON: {e}"),
                )),
                warnings,
            );
        }
    };
    if list.list_id().is_none() {
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "listId".to_owned(),
                Value::String(PLACEHOLDER_LIST_ID.to_owned()),
            );
        }
    }
    let path = req.path();
    (
        Ok(PreviewRequest {
            method: "POST",
            url: format!("{}{path}", settings.base_url()),
            path,
            list,
            settings: eff,
            body,
        }),
        warnings,
    )
}
