//! The default mapping as a fast typed path (issue 3 item 3; design decisions 1, 4, 5, 6).
//!
//! - email: `traits.email`, else `context.traits.email`, else `properties.email` (T9);
//! - userId: `userId`;
//! - audience key: `context.personas.computation_key`; list hint: `external_audience_id`
//!   (present but not a number: rejected, T10);
//! - membership: [`crate::membership`];
//! - audience settings: `context.personas.audience_settings` (T7);
//! - data fields: none unless the destination names some (design decision 6).
//!
//! The mapping language (mapping crate) expresses the same defaults and must agree with this.

use std::borrow::Cow;

use segment::{Event, EventType, Timestamp, raw};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::identity::IdentityError;
use crate::membership::{self, AudienceClass};
use crate::model::{Identity, MembershipChange, ProcessedEvent, Reason, ReasonCode};
use crate::settings::{DestinationSettings, parse_event_audience_settings};

/// Profile fields Iterable manages itself, plus the identifiers: never sent in `dataFields`
/// (iterable-api.md §6.4).
pub const RESERVED_DATA_FIELDS: &[&str] = &[
    "email",
    "userId",
    "emailListIds",
    "userListIds",
    "itblInternal",
    "itblDS",
    "itblUserId",
    "profileUpdatedAt",
    "receivedSMSDisclaimer",
    "signupDate",
    "signupSource",
    "subscribedMessageTypeIds",
    "unsubscribedChannelIds",
    "unsubscribedMessageTypeIds",
    "createdAt",
];

/// What the ingest side knows about an event that the event does not say itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapContext {
    /// Arrival order (ties between equal timestamps go to the later arrival).
    pub received_order: u64,
    /// When it arrived: the timestamp of an event that carries none.
    pub received_at: Timestamp,
}

/// Maps one event with the default mapping.
pub fn map_event(event: &Event, settings: &DestinationSettings, ctx: MapContext) -> ProcessedEvent {
    match try_map(event, settings, ctx) {
        Ok(change) => ProcessedEvent::Change(Box::new(change)),
        Err(Verdict::Skip(r)) => ProcessedEvent::Skipped(r),
        Err(Verdict::Reject(r)) => ProcessedEvent::Rejected(r),
    }
}

enum Verdict {
    Skip(Reason),
    Reject(Reason),
}

fn reject(code: ReasonCode, msg: impl Into<String>) -> Verdict {
    Verdict::Reject(Reason::new(code, msg))
}

fn try_map(
    event: &Event,
    settings: &DestinationSettings,
    ctx: MapContext,
) -> Result<MembershipChange, Verdict> {
    if !matches!(event.kind, EventType::Identify | EventType::Track) {
        return Err(Verdict::Skip(Reason::new(
            ReasonCode::UnsupportedType,
            format!("{} calls are not audience events", event.kind),
        )));
    }
    // traits for identify, properties for track (engage-events.md §1.2).
    let fields = event.traits_or_properties_raw();
    // Design decision 1: personas present with an audience class, else skipped.
    let Some(personas) = event.personas() else {
        return Err(Verdict::Skip(Reason::new(
            ReasonCode::NotAudienceEvent,
            "no context.personas: not an audience event",
        )));
    };
    let Some(class) = AudienceClass::from_class(personas.computation_class.as_deref()) else {
        return Err(Verdict::Skip(Reason::new(
            ReasonCode::NotAudienceEvent,
            format!(
                "computation_class {:?} is not an audience",
                personas.computation_class.as_deref().unwrap_or_default()
            ),
        )));
    };
    // T17: a blank key is rejected, never used as a list name.
    let key: &str = match personas.computation_key.as_deref() {
        Some(k) if !k.trim().is_empty() => k,
        _ => {
            return Err(reject(
                ReasonCode::MissingAudienceKey,
                "context.personas.computation_key is missing or blank",
            ));
        }
    };
    let list_hint = match personas.external_audience_id {
        None => None,
        Some(v) => Some(list_id_of_raw(v).ok_or_else(|| {
            reject(
                ReasonCode::InvalidListId,
                format!(
                    "context.personas.external_audience_id {} is not a list id (a number)",
                    v.get()
                ),
            )
        })?),
    };
    // One pass over the membership fields finds the value and a possible email.
    let [value, own_email] = match fields {
        Some(f) => raw::find_n(f, [key, "email"]),
        None => [None, None],
    };
    let value: Option<Value> = value.and_then(|v| serde_json::from_str(v.get()).ok());
    let direction =
        membership::resolve_value(value.as_ref(), key, class).map_err(Verdict::Reject)?;
    let email = email_of(event, own_email).map_err(Verdict::Reject)?;
    let identity = Identity::new(
        email.as_deref(),
        event.user_id.as_deref(),
        settings.project_type,
    )
    .map_err(|e| match e {
        IdentityError::Missing => Verdict::Skip(e.reason()),
        _ => Verdict::Reject(e.reason()),
    })?;
    let audience_settings = match personas.audience_settings {
        None => None,
        Some(raw) => {
            let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            Some(parse_event_audience_settings(&v).map_err(Verdict::Reject)?)
        }
    };
    let data_fields = match fields {
        Some(f) if !settings.data_fields.is_empty() => {
            data_fields_of(f, key, &settings.data_fields)
        }
        _ => Map::new(),
    };
    let message_id = match &event.message_id {
        Some(m) if !m.is_empty() => m.clone(),
        // Segment's API assigns an id to calls without one; so do we, stable within one arrival.
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

/// `external_audience_id` as a list id: a positive integer, as a number or a string of digits.
pub fn list_id_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|n| *n > 0),
        Value::String(s) => digits(s),
        _ => None,
    }
}

fn list_id_of_raw(v: &RawValue) -> Option<i64> {
    match raw::as_str(v) {
        Some(s) => digits(&s),
        None => v.get().parse::<i64>().ok().filter(|n| *n > 0),
    }
}

fn digits(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok().filter(|n: &i64| *n > 0)
    } else {
        None
    }
}

/// The first non-blank email string of `traits.email`, `context.traits.email`,
/// `properties.email` (T9). A non-string value where an email should be is rejected.
/// `own` is the email already found in the membership fields (traits or properties).
fn email_of<'a>(
    event: &'a Event,
    own: Option<&'a RawValue>,
) -> Result<Option<Cow<'a, str>>, Reason> {
    let (traits_email, properties_email) = match event.kind {
        EventType::Identify => (
            own,
            event
                .properties_raw()
                .and_then(|p| raw::find_n(p, ["email"])[0]),
        ),
        _ => (
            event
                .traits_raw()
                .and_then(|t| raw::find_n(t, ["email"])[0]),
            own,
        ),
    };
    if let Some(e) = email_at("traits.email", traits_email)? {
        return Ok(Some(e));
    }
    let context_email = event
        .context_traits_raw()
        .and_then(|t| raw::find_n(t, ["email"])[0]);
    if let Some(e) = email_at("context.traits.email", context_email)? {
        return Ok(Some(e));
    }
    email_at("properties.email", properties_email)
}

/// A usable email at `path`: `None` when absent, null or blank; an error when not a string.
fn email_at<'a>(path: &str, v: Option<&'a RawValue>) -> Result<Option<Cow<'a, str>>, Reason> {
    let Some(v) = v.filter(|v| !raw::is_null(v)) else {
        return Ok(None);
    };
    match raw::as_str(v) {
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => Ok(Some(s)),
        None => Err(Reason::new(
            ReasonCode::BadIdentifier,
            format!("{path} is {}, not an email string", v.get()),
        )),
    }
}

/// Copies the named fields (design decision 6), never the audience-key boolean nor the fields
/// Iterable manages. Values are copied as they are, objects included (T4).
fn data_fields_of(fields: &RawValue, audience_key: &str, names: &[String]) -> Map<String, Value> {
    let wanted: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != audience_key && !RESERVED_DATA_FIELDS.contains(n))
        .collect();
    let mut found = vec![None; wanted.len()];
    raw::find(fields, &wanted, &mut found);
    let mut out = Map::new();
    for (name, v) in wanted.iter().zip(found) {
        if let Some(v) = v.and_then(|v| serde_json::from_str::<Value>(v.get()).ok()) {
            out.insert((*name).to_owned(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Direction;
    use crate::settings::ApiKey;
    use iterable::ProjectType;
    use serde_json::json;

    fn settings(p: ProjectType) -> DestinationSettings {
        DestinationSettings::new(ApiKey::new("k"), p)
    }

    fn ctx() -> MapContext {
        MapContext {
            received_order: 3,
            received_at: Timestamp::from_unix_millis(1_000),
        }
    }

    fn map(v: Value, s: &DestinationSettings) -> ProcessedEvent {
        let e: Event = serde_json::from_value(v).unwrap();
        map_event(&e, s, ctx())
    }

    fn change(p: ProcessedEvent) -> MembershipChange {
        match p {
            ProcessedEvent::Change(c) => *c,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    fn code(p: ProcessedEvent) -> (&'static str, ReasonCode) {
        match p {
            ProcessedEvent::Skipped(r) => ("skipped", r.code),
            ProcessedEvent::Rejected(r) => ("rejected", r.code),
            ProcessedEvent::Change(_) => ("change", ReasonCode::BadInput),
        }
    }

    fn identify(key: &str, value: Value) -> Value {
        json!({
            "type": "identify", "messageId": "m1", "userId": "u123",
            "timestamp": "2024-05-06T09:30:22.829Z",
            "traits": {"email": "Jane@Example.com", key: value, "first_name": "Jane", "vip": true},
            "context": {"personas": {"computation_class": "audience", "computation_key": key,
                                     "external_audience_id": "4269566"}}
        })
    }

    // engage-events.md §1.1 identify example.
    #[test]
    fn identify_enter_maps_to_a_subscribe_change() {
        let c = change(map(
            identify("first_time_shopper", json!(true)),
            &settings(ProjectType::Hybrid),
        ));
        assert_eq!(c.direction, Direction::Subscribe);
        assert_eq!(c.audience_key, "first_time_shopper");
        assert_eq!(c.list_hint, Some(4269566));
        assert_eq!(c.identity.email(), Some("jane@example.com"));
        assert_eq!(c.identity.user_id(), Some("u123"));
        assert_eq!(c.message_id, "m1");
        assert_eq!(c.received_order, 3);
        assert_eq!(
            c.timestamp,
            Timestamp::parse("2024-05-06T09:30:22.829Z").unwrap()
        );
        assert!(
            c.data_fields.is_empty(),
            "design decision 6: none by default"
        );
        assert_eq!(c.audience_settings, None);
    }

    // T9: track with the email only in context.traits, no userId, hybrid project.
    #[test]
    fn track_finds_the_email_in_context_traits() {
        let c = change(map(
            json!({"type": "track", "event": "Audience Entered", "messageId": "m",
                   "properties": {"audience_key": "a", "a": true},
                   "context": {"traits": {"email": "a@x.com"},
                               "personas": {"computation_class": "audience", "computation_key": "a"}}}),
            &settings(ProjectType::Hybrid),
        ));
        assert_eq!(c.identity.email(), Some("a@x.com"));
        assert_eq!(c.identity.user_id(), None);
        assert_eq!(c.list_hint, None);
    }

    // issue 3 item 3: properties.email is the last fallback; traits.email wins over the others.
    #[test]
    fn email_lookup_order_is_traits_then_context_traits_then_properties() {
        let base = |traits: Value, ctx_traits: Value, props: Value| {
            let mut p = props;
            p["a"] = json!(true);
            json!({"type": "track", "messageId": "m", "traits": traits, "properties": p,
                   "context": {"traits": ctx_traits,
                               "personas": {"computation_key": "a"}}})
        };
        let s = settings(ProjectType::Hybrid);
        let e = |v| change(map(v, &s)).identity.email().map(str::to_owned);
        assert_eq!(
            e(base(
                json!({"email": "t@x.com"}),
                json!({"email": "c@x.com"}),
                json!({"email": "p@x.com"})
            ))
            .as_deref(),
            Some("t@x.com")
        );
        assert_eq!(
            e(base(
                json!({}),
                json!({"email": "c@x.com"}),
                json!({"email": "p@x.com"})
            ))
            .as_deref(),
            Some("c@x.com")
        );
        assert_eq!(
            e(base(
                json!({"email": ""}),
                json!({}),
                json!({"email": "p@x.com"})
            ))
            .as_deref(),
            Some("p@x.com")
        );
    }

    // design decision 1.
    #[test]
    fn non_audience_events_are_skipped_and_blank_keys_rejected() {
        let s = settings(ProjectType::Hybrid);
        assert_eq!(
            code(map(json!({"type": "page", "userId": "u"}), &s)),
            ("skipped", ReasonCode::UnsupportedType)
        );
        assert_eq!(
            code(map(
                json!({"type": "identify", "userId": "u", "traits": {"a": true}}),
                &s
            )),
            ("skipped", ReasonCode::NotAudienceEvent)
        );
        let mut v = identify("a", json!(true));
        v["context"]["personas"]["computation_class"] = json!("trait");
        assert_eq!(code(map(v, &s)), ("skipped", ReasonCode::NotAudienceEvent));
        // T17: "" and "   " keys are rejected.
        for k in ["", "   "] {
            let mut v = identify("a", json!(true));
            v["context"]["personas"]["computation_key"] = json!(k);
            assert_eq!(
                code(map(v, &s)),
                ("rejected", ReasonCode::MissingAudienceKey)
            );
        }
        let mut v = identify("a", json!(true));
        v["context"]["personas"]
            .as_object_mut()
            .unwrap()
            .remove("computation_key");
        assert_eq!(
            code(map(v, &s)),
            ("rejected", ReasonCode::MissingAudienceKey)
        );
    }

    // T10: a present but non-numeric list id is rejected; a numeric one (string or number) is read.
    #[test]
    fn non_numeric_external_audience_id_is_rejected() {
        let s = settings(ProjectType::Hybrid);
        for bad in [
            json!("abc"),
            json!(""),
            json!("12a"),
            json!(-4),
            json!(1.5),
            json!(true),
        ] {
            let mut v = identify("a", json!(true));
            v["context"]["personas"]["external_audience_id"] = bad.clone();
            assert_eq!(
                code(map(v, &s)),
                ("rejected", ReasonCode::InvalidListId),
                "{bad}"
            );
        }
        let mut v = identify("a", json!(true));
        v["context"]["personas"]["external_audience_id"] = json!(77);
        assert_eq!(change(map(v, &s)).list_hint, Some(77));
    }

    // design decision 2: only an anonymousId is a skip, not an error.
    #[test]
    fn anonymous_only_events_are_skipped() {
        let s = settings(ProjectType::Hybrid);
        let v = json!({"type": "identify", "anonymousId": "anon", "userId": null, "traits": {"a": true},
                       "context": {"personas": {"computation_class": "audience", "computation_key": "a"}}});
        assert_eq!(code(map(v, &s)), ("skipped", ReasonCode::NoIdentifier));
    }

    // issue 3 item 5: one bad identifier rejects that event with a reason.
    #[test]
    fn bad_identifiers_reject_the_event() {
        let s = settings(ProjectType::Hybrid);
        let mut v = identify("a", json!(true));
        v["traits"]["email"] = json!("user @example.com");
        assert_eq!(code(map(v, &s)), ("rejected", ReasonCode::BadIdentifier));
        let mut v = identify("a", json!(true));
        v["userId"] = json!("u123 ");
        assert_eq!(code(map(v, &s)), ("rejected", ReasonCode::BadIdentifier));
    }

    // engage-events.md §1.2: missing value on an audience class is rejected, never an exit.
    #[test]
    fn missing_membership_value_is_rejected() {
        let s = settings(ProjectType::Hybrid);
        let mut v = identify("a", json!(true));
        v["traits"].as_object_mut().unwrap().remove("a");
        assert_eq!(
            code(map(v, &s)),
            ("rejected", ReasonCode::InvalidMembership)
        );
    }

    // design decision 6 and T4: named fields are copied (objects too); the audience key,
    // Iterable-managed fields, email and userId never are.
    #[test]
    fn data_fields_copy_only_named_non_reserved_fields() {
        let mut s = settings(ProjectType::Hybrid);
        s.data_fields = [
            "first_name",
            "address",
            "a",
            "email",
            "signupDate",
            "missing",
        ]
        .map(String::from)
        .to_vec();
        let mut v = identify("a", json!(true));
        v["traits"]["address"] = json!({"city": "Lyon"});
        v["traits"]["signupDate"] = json!("2020-01-01");
        let c = change(map(v, &s));
        assert_eq!(
            Value::Object(c.data_fields),
            json!({"first_name": "Jane", "address": {"city": "Lyon"}})
        );
    }

    // T7(a): personas without audience_settings proceed with defaults; bad campaignId rejects.
    #[test]
    fn audience_settings_are_optional_and_validated() {
        let s = settings(ProjectType::Hybrid);
        assert_eq!(
            change(map(identify("a", json!(true)), &s)).audience_settings,
            None
        );
        let mut v = identify("a", json!(false));
        v["context"]["personas"]["audience_settings"] = json!({"campaignId": "12345"});
        assert_eq!(
            change(map(v, &s)).audience_settings.unwrap().campaign_id,
            Some(12345)
        );
        let mut v = identify("a", json!(false));
        v["context"]["personas"]["audience_settings"] = json!({"campaignId": "abc"});
        assert_eq!(
            code(map(v, &s)),
            ("rejected", ReasonCode::InvalidAudienceSettings)
        );
    }

    #[test]
    fn missing_timestamp_and_message_id_fall_back_to_arrival() {
        let s = settings(ProjectType::Hybrid);
        let mut v = identify("a", json!(true));
        v.as_object_mut().unwrap().remove("timestamp");
        v.as_object_mut().unwrap().remove("messageId");
        let c = change(map(v, &s));
        assert_eq!(c.timestamp, Timestamp::from_unix_millis(1_000));
        assert_eq!(c.message_id, "generated-1000000000-3");
    }

    // design decision 3: a userId project needs a userId.
    #[test]
    fn user_id_project_rejects_email_only_events() {
        let s = settings(ProjectType::UserId);
        let mut v = identify("a", json!(true));
        v.as_object_mut().unwrap().remove("userId");
        assert_eq!(code(map(v, &s)), ("rejected", ReasonCode::BadIdentifier));
    }

    // engage-events.md §1.2: identify reads traits[key], track reads properties[key], never
    // the other one.
    #[test]
    fn identify_reads_traits_and_track_reads_properties() {
        let s = settings(ProjectType::Hybrid);
        let personas =
            json!({"personas": {"computation_class": "audience", "computation_key": "a"}});
        let v = json!({"type": "identify", "userId": "u", "traits": {}, "properties": {"a": true}, "context": personas});
        assert_eq!(
            code(map(v, &s)),
            ("rejected", ReasonCode::InvalidMembership)
        );
        let v = json!({"type": "track", "userId": "u", "traits": {"a": true}, "properties": {"a": false}, "context": personas});
        assert_eq!(change(map(v, &s)).direction, Direction::Unsubscribe);
    }

    // engage-events.md §1.3 and design decision 4: a journey step without a value enters;
    // Journeys V1 sends the string "true".
    #[test]
    fn journey_steps_and_string_values_enter() {
        let s = settings(ProjectType::Hybrid);
        let v = json!({"type": "track", "event": "Step", "userId": "u", "properties": {},
                       "context": {"personas": {"computation_class": "journey_step", "computation_key": "j__s_1"}}});
        assert_eq!(change(map(v, &s)).direction, Direction::Subscribe);
        let v = json!({"type": "track", "event": "Audience Entered", "userId": "u",
                       "properties": {"j_o_first": "true"},
                       "context": {"personas": {"computation_class": "audience", "computation_key": "j_o_first"}}});
        assert_eq!(change(map(v, &s)).direction, Direction::Subscribe);
    }

    // A key with JSON escapes is still found (the raw reader unescapes keys).
    #[test]
    fn escaped_keys_and_values_are_read() {
        let s = settings(ProjectType::Hybrid);
        let e: Event = serde_json::from_str(
            r#"{"type":"identify","userId":"u\u0031","traits":{"em\u0061il":"A\u0040x.com","a":true},
                "context":{"personas":{"computation_key":"\u0061"}}}"#,
        )
        .unwrap();
        let c = change(map_event(&e, &s, ctx()));
        assert_eq!(c.identity.email(), Some("a@x.com"));
        assert_eq!(c.identity.user_id(), Some("u1"));
        assert_eq!(c.audience_key, "a");
    }
}
