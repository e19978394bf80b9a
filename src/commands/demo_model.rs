//! What a set of Engage events implies for the lists, computed from the events alone (no code
//! of the pipeline), so that `demo` can check the pipeline against it: per audience, the
//! identities whose latest event says "in".
//!
//! It follows the design's decisions in their simplest reading: an audience event carries
//! `context.personas` with a non-empty `computation_key` and class `audience`, `journey_step`
//! or none; the value is `traits[key]` (identify) or `properties[key]` (track), a boolean or
//! `"true"`/`"false"`, and missing means enter for a journey step; the identity is the
//! `userId`, else the lowercased email; the latest timestamp wins, a later line breaking ties;
//! a `messageId` counts once.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

/// Audience key → identities that should be in its list.
pub type Expected = BTreeMap<String, BTreeSet<String>>;

/// The lists the events imply.
pub fn expected_lists(events: &[Value]) -> Expected {
    let mut seen = HashSet::new();
    // (audience, identity) → (timestamp, position, in?)
    let mut latest: BTreeMap<(String, String), (i64, usize, bool)> = BTreeMap::new();
    for (pos, e) in events.iter().enumerate() {
        if let Some(id) = e["messageId"].as_str()
            && !seen.insert(id.to_owned())
        {
            continue;
        }
        let Some((audience, identity, member)) = membership(e) else {
            continue;
        };
        let ts = e["timestamp"]
            .as_str()
            .and_then(|t| segment::Timestamp::parse(t).ok())
            .map_or(0, |t| t.unix_millis());
        let slot = latest
            .entry((audience, identity))
            .or_insert((i64::MIN, 0, false));
        if (ts, pos) >= (slot.0, slot.1) {
            *slot = (ts, pos, member);
        }
    }
    let mut out = Expected::new();
    for ((audience, identity), (_, _, member)) in latest {
        let set = out.entry(audience).or_default();
        if member {
            set.insert(identity);
        }
    }
    out
}

/// `(audience key, identity, in?)` of an audience event with a usable identifier.
pub fn membership(e: &Value) -> Option<(String, String, bool)> {
    let personas = e["context"].get("personas")?;
    let class = personas["computation_class"].as_str().unwrap_or("audience");
    if class != "audience" && class != "journey_step" {
        return None;
    }
    let key = personas["computation_key"].as_str()?.trim();
    if key.is_empty() {
        return None;
    }
    let holder = match e["type"].as_str()? {
        "identify" => &e["traits"],
        "track" => &e["properties"],
        _ => return None,
    };
    let member = match &holder[key] {
        Value::Bool(b) => *b,
        Value::String(s) if s == "true" => true,
        Value::String(s) if s == "false" => false,
        Value::Null if class == "journey_step" => true,
        _ => return None,
    };
    let user_id = e["userId"]
        .as_str()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let identity = match user_id {
        Some(u) => u.to_owned(),
        None => {
            let email = [
                &e["traits"]["email"],
                &e["context"]["traits"]["email"],
                &e["properties"]["email"],
            ]
            .into_iter()
            .find_map(Value::as_str)?
            .trim()
            .to_lowercase();
            if !plausible_email(&email) {
                return None;
            }
            email
        }
    };
    Some((key.to_owned(), identity, member))
}

/// One `@`, something on each side, a dot in the domain, no spaces.
fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identify(id: &str, user: Option<&str>, email: &str, key: &str, v: Value, ts: &str) -> Value {
        let mut e = json!({
            "type": "identify", "messageId": id, "timestamp": ts,
            "traits": { "email": email, key: v },
            "context": { "personas": { "computation_class": "audience", "computation_key": key } }
        });
        if let Some(u) = user {
            e["userId"] = json!(u);
        }
        e
    }

    #[test]
    fn latest_event_per_identity_wins_whatever_the_order() {
        let events = vec![
            identify(
                "3",
                Some("u1"),
                "a@x.io",
                "vip",
                json!(true),
                "2026-01-03T00:00:00Z",
            ),
            identify(
                "1",
                Some("u1"),
                "a@x.io",
                "vip",
                json!(false),
                "2026-01-01T00:00:00Z",
            ),
            identify(
                "2",
                Some("u2"),
                "b@x.io",
                "vip",
                json!(true),
                "2026-01-01T00:00:00Z",
            ),
            identify(
                "4",
                Some("u2"),
                "b@x.io",
                "vip",
                json!("false"),
                "2026-01-02T00:00:00Z",
            ),
        ];
        let lists = expected_lists(&events);
        assert_eq!(lists["vip"], BTreeSet::from(["u1".to_owned()]));
    }

    #[test]
    fn events_without_a_usable_identity_or_audience_imply_nothing() {
        let mut anon = identify("1", None, "", "vip", json!(true), "2026-01-01T00:00:00Z");
        anon["traits"].as_object_mut().unwrap().remove("email");
        let bad = identify(
            "2",
            None,
            "x at y.com",
            "vip",
            json!(true),
            "2026-01-01T00:00:00Z",
        );
        let plain =
            json!({"type": "track", "event": "Order Completed", "messageId": "3", "userId": "u9"});
        let email_only = identify(
            "4",
            None,
            "Fay@X.io",
            "vip",
            json!(true),
            "2026-01-01T00:00:00Z",
        );
        let lists = expected_lists(&[anon, bad, plain, email_only]);
        assert_eq!(lists.len(), 1);
        assert_eq!(lists["vip"], BTreeSet::from(["fay@x.io".to_owned()]));
    }

    #[test]
    fn a_repeated_message_id_counts_once() {
        let first = identify(
            "m",
            Some("u1"),
            "a@x.io",
            "vip",
            json!(true),
            "2026-01-01T00:00:00Z",
        );
        let again = identify(
            "m",
            Some("u1"),
            "a@x.io",
            "vip",
            json!(false),
            "2026-01-02T00:00:00Z",
        );
        assert_eq!(
            expected_lists(&[first, again])["vip"],
            BTreeSet::from(["u1".to_owned()])
        );
    }
}
