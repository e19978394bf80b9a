//! Enter/exit resolution (engage-events.md §1.2, design decision 4).
//!
//! Identify reads `traits[key]`, track reads `properties[key]`. Booleans count, and so do the
//! strings `"true"` and `"false"` (Journeys V1 sends `"true"`, engage-events.md §1.3). For class
//! `journey_step` a missing value means enter. Anything else is rejected: never an exit.

use serde_json::{Map, Value};

use crate::model::{Direction, Reason, ReasonCode};

/// The computation classes that make an audience event (design decision 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceClass {
    /// `audience`, or no class at all.
    Audience,
    /// `journey_step`.
    JourneyStep,
}

impl AudienceClass {
    /// Reads `computation_class`: `None` (absent) counts as `audience`; any other class is not
    /// an audience event and gives `None`.
    pub fn from_class(class: Option<&str>) -> Option<Self> {
        match class {
            None | Some("audience") => Some(AudienceClass::Audience),
            Some("journey_step") => Some(AudienceClass::JourneyStep),
            Some(_) => None,
        }
    }
}

/// Resolves the direction from the value under the audience key in `fields` (traits for
/// identify, properties for track).
pub fn resolve(
    fields: &Map<String, Value>,
    audience_key: &str,
    class: AudienceClass,
) -> Result<Direction, Reason> {
    resolve_value(fields.get(audience_key), audience_key, class)
}

/// Resolves the direction from one membership value (`None` when the key is absent).
pub fn resolve_value(
    value: Option<&Value>,
    audience_key: &str,
    class: AudienceClass,
) -> Result<Direction, Reason> {
    match value {
        Some(Value::Bool(true)) => Ok(Direction::Subscribe),
        Some(Value::Bool(false)) => Ok(Direction::Unsubscribe),
        Some(Value::String(s)) if s == "true" => Ok(Direction::Subscribe),
        Some(Value::String(s)) if s == "false" => Ok(Direction::Unsubscribe),
        None | Some(Value::Null) if class == AudienceClass::JourneyStep => Ok(Direction::Subscribe),
        None => Err(Reason::new(
            ReasonCode::InvalidMembership,
            format!("membership value `{audience_key}` is missing; cannot tell enter from exit"),
        )),
        Some(other) => Err(Reason::new(
            ReasonCode::InvalidMembership,
            format!(
                "membership value `{audience_key}` is {other}, not true or false; cannot tell enter from exit"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir(v: Option<Value>, class: AudienceClass) -> Result<Direction, ReasonCode> {
        resolve_value(v.as_ref(), "k", class).map_err(|r| r.code)
    }

    // engage-events.md §1.2: booleans decide.
    #[test]
    fn booleans_enter_and_exit() {
        assert_eq!(
            dir(Some(json!(true)), AudienceClass::Audience),
            Ok(Direction::Subscribe)
        );
        assert_eq!(
            dir(Some(json!(false)), AudienceClass::Audience),
            Ok(Direction::Unsubscribe)
        );
    }

    // design decision 4, engage-events.md §1.3 (Journeys V1 sends "true").
    #[test]
    fn the_strings_true_and_false_count_as_booleans() {
        assert_eq!(
            dir(Some(json!("true")), AudienceClass::Audience),
            Ok(Direction::Subscribe)
        );
        assert_eq!(
            dir(Some(json!("false")), AudienceClass::Audience),
            Ok(Direction::Unsubscribe)
        );
    }

    // engage-events.md §1.2: a missing or non-boolean value is unknown, never "remove".
    #[test]
    fn missing_or_odd_values_are_rejected_not_treated_as_exit() {
        for v in [
            None,
            Some(json!(null)),
            Some(json!(0)),
            Some(json!(1)),
            Some(json!("")),
            Some(json!("yes")),
            Some(json!("TRUE")),
            Some(json!({})),
            Some(json!([])),
        ] {
            assert_eq!(
                dir(v.clone(), AudienceClass::Audience),
                Err(ReasonCode::InvalidMembership),
                "{v:?}"
            );
        }
    }

    // design decision 4 / engage-events.md §1.2 step 3: journey_step without a value enters.
    #[test]
    fn journey_step_without_a_value_enters() {
        assert_eq!(
            dir(None, AudienceClass::JourneyStep),
            Ok(Direction::Subscribe)
        );
        assert_eq!(
            dir(Some(json!(false)), AudienceClass::JourneyStep),
            Ok(Direction::Unsubscribe)
        );
        assert_eq!(
            dir(Some(json!(3)), AudienceClass::JourneyStep),
            Err(ReasonCode::InvalidMembership)
        );
    }

    // design decision 1: class absent counts as audience; other classes are not audiences.
    #[test]
    fn classes() {
        assert_eq!(
            AudienceClass::from_class(None),
            Some(AudienceClass::Audience)
        );
        assert_eq!(
            AudienceClass::from_class(Some("audience")),
            Some(AudienceClass::Audience)
        );
        assert_eq!(
            AudienceClass::from_class(Some("journey_step")),
            Some(AudienceClass::JourneyStep)
        );
        assert_eq!(AudienceClass::from_class(Some("trait")), None);
        assert_eq!(AudienceClass::from_class(Some("computed_trait")), None);
    }
}
