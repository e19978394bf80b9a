//! Destination and per-audience settings, and the precedence that makes an audience's
//! effective settings (design decision 5: operator configuration, then the latest event
//! `audience_settings`, then the destination's defaults).
//!
//! Shapes are TOML-friendly: the service's configuration file embeds them.

use std::collections::BTreeMap;
use std::fmt;

use iterable::{ProjectType, Region};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{EventAudienceSettings, Reason, ReasonCode};

/// An Iterable API key. Never printed: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The key itself, for the `Api-Key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Request size limits (peers-and-field-problems.md §3, iterable-api.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchLimits {
    /// Most subscribers per request (default 1000).
    pub max_subscribers: usize,
    /// Most bytes per serialised request body (default 4 MB).
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_subscribers: 1000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Which existing list an audience is bound to by the operator (configuration only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ListBinding {
    /// A list id.
    Id(i64),
    /// A Standard list's exact name.
    Name(String),
}

/// Operator configuration for one audience. Unset fields fall through to the event's
/// `audience_settings`, then to the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudienceConfig {
    /// Bind the audience to an existing list: `list = { id = 42 }` or `list = { name = "…" }`.
    pub list: Option<ListBinding>,
    /// `updateExistingUsersOnly` for its subscribes.
    pub update_existing_users_only: Option<bool>,
    /// `channelUnsubscribe` for its unsubscribes (a global unsubscribe; default false).
    pub global_unsubscribe: Option<bool>,
    /// `campaignId` for its unsubscribes: a number, or a string of digits; anything else is a
    /// configuration error.
    #[serde(deserialize_with = "config_campaign_id")]
    pub campaign_id: Option<i64>,
}

/// Configuration errors found by [`DestinationSettings::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `endpoint` set without `allow_custom_endpoint = true`.
    #[error(
        "`endpoint` is set but `allow_custom_endpoint` is not true; refusing to send the API key elsewhere than Iterable"
    )]
    CustomEndpointNotAllowed,
    /// `endpoint` is not an http(s) URL.
    #[error("`endpoint` must start with http:// or https://, got {0:?}")]
    BadEndpoint(String),
    /// The API key is empty.
    #[error("`api_key` is empty")]
    EmptyApiKey,
    /// A batch limit is zero.
    #[error("`batch.{0}` must be at least 1")]
    ZeroLimit(&'static str),
    /// An email project in the EU region (Iterable does not offer it).
    #[error("Iterable has no email-based projects in the EU region")]
    EmailProjectInEu,
}

fn default_true() -> bool {
    true
}

/// One Iterable Lists destination (one Iterable project).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSettings {
    /// Server-side API key.
    pub api_key: ApiKey,
    /// `us` (default) or `eu`.
    #[serde(default)]
    pub region: Region,
    /// Base URL override, e.g. the simulator; only used when `allow_custom_endpoint` is true.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allows `endpoint`. Default false, so a stray override cannot leak the key.
    #[serde(default)]
    pub allow_custom_endpoint: bool,
    /// `email`, `userId` or `hybrid`.
    pub project_type: ProjectType,
    /// Email projects: send `preferUserId: true` for userId-only subscribers (default true).
    #[serde(default = "default_true")]
    pub prefer_user_id: bool,
    /// Names of traits (identify) or properties (track) copied into `dataFields`.
    #[serde(default)]
    pub data_fields: Vec<String>,
    /// Let an event's `globalUnsubscribe: true` take effect (default false).
    #[serde(default)]
    pub allow_event_global_unsubscribe: bool,
    /// Request size limits.
    #[serde(default)]
    pub batch: BatchLimits,
    /// Per-audience configuration, keyed by audience key.
    #[serde(default)]
    pub audiences: BTreeMap<String, AudienceConfig>,
}

impl DestinationSettings {
    /// Settings with defaults for everything but the key and project type.
    pub fn new(api_key: ApiKey, project_type: ProjectType) -> Self {
        DestinationSettings {
            api_key,
            region: Region::Us,
            endpoint: None,
            allow_custom_endpoint: false,
            project_type,
            prefer_user_id: true,
            data_fields: Vec::new(),
            allow_event_global_unsubscribe: false,
            batch: BatchLimits::default(),
            audiences: BTreeMap::new(),
        }
    }

    /// Checks what deserialisation cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.api_key.expose().trim().is_empty() {
            return Err(ConfigError::EmptyApiKey);
        }
        if let Some(ep) = &self.endpoint {
            if !self.allow_custom_endpoint {
                return Err(ConfigError::CustomEndpointNotAllowed);
            }
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(ConfigError::BadEndpoint(ep.clone()));
            }
        }
        if self.batch.max_subscribers == 0 {
            return Err(ConfigError::ZeroLimit("max_subscribers"));
        }
        if self.batch.max_bytes == 0 {
            return Err(ConfigError::ZeroLimit("max_bytes"));
        }
        if self.region == Region::Eu && self.project_type == ProjectType::Email {
            return Err(ConfigError::EmailProjectInEu);
        }
        Ok(())
    }

    /// The API base URL without a trailing slash: the override when allowed, else the region's.
    pub fn base_url(&self) -> &str {
        match (&self.endpoint, self.allow_custom_endpoint) {
            (Some(ep), true) => ep.trim_end_matches('/'),
            _ => self.region.base_url(),
        }
    }

    /// The operator's configuration for an audience, if any.
    pub fn audience(&self, audience_key: &str) -> Option<&AudienceConfig> {
        self.audiences.get(audience_key)
    }

    /// An audience's effective settings (design decision 5), with warnings for the delivery log.
    pub fn effective(
        &self,
        audience_key: &str,
        latest_event: Option<&EventAudienceSettings>,
    ) -> (EffectiveAudienceSettings, Vec<String>) {
        let op = self.audience(audience_key);
        let ev = latest_event.copied().unwrap_or_default();
        let mut warnings = Vec::new();
        let event_global = match ev.global_unsubscribe {
            Some(true) if !self.allow_event_global_unsubscribe => {
                warnings.push(format!(
                    "audience {audience_key}: the event asks for globalUnsubscribe, ignored because \
                     allow_event_global_unsubscribe is false (a consent change needs an operator)"
                ));
                None
            }
            other => other,
        };
        let eff = EffectiveAudienceSettings {
            update_existing_users_only: op
                .and_then(|o| o.update_existing_users_only)
                .or(ev.update_existing_users_only)
                .unwrap_or(false),
            channel_unsubscribe: op
                .and_then(|o| o.global_unsubscribe)
                .or(event_global)
                .unwrap_or(false),
            campaign_id: op.and_then(|o| o.campaign_id).or(ev.campaign_id),
        };
        (eff, warnings)
    }
}

/// The settings every request for one audience's list uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct EffectiveAudienceSettings {
    /// `updateExistingUsersOnly` on subscribes (always sent).
    pub update_existing_users_only: bool,
    /// `channelUnsubscribe` on unsubscribes (always sent).
    pub channel_unsubscribe: bool,
    /// `campaignId` on unsubscribes, only when set.
    pub campaign_id: Option<i64>,
}

/// Reads `context.personas.audience_settings` from an event. Unknown keys are ignored;
/// `null` or `""` mean unset; booleans may be the strings `"true"`/`"false"`; a campaignId
/// that is not a number rejects the event (T7).
pub fn parse_event_audience_settings(v: &Value) -> Result<EventAudienceSettings, Reason> {
    let bad = |m: String| Reason::new(ReasonCode::InvalidAudienceSettings, m);
    let Some(obj) = v.as_object() else {
        return Err(bad("audience_settings is not an object".into()));
    };
    let flag = |name: &str| -> Result<Option<bool>, Reason> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(bad(format!(
                "audience_settings.{name} must be true or false, got {other}"
            ))),
        }
    };
    let campaign_id = match obj.get("campaignId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some(campaign_id_of(v).ok_or_else(|| {
            bad(format!(
                "audience_settings.campaignId must be a number, got {v}; no request is sent with it"
            ))
        })?),
    };
    Ok(EventAudienceSettings {
        update_existing_users_only: flag("updateExistingUsersOnly")?,
        global_unsubscribe: flag("globalUnsubscribe")?,
        campaign_id,
    })
}

/// A campaign id from a JSON number or a string of digits.
fn campaign_id_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().filter(|n| *n >= 0),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

fn config_campaign_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a campaign id: a number such as 12345 or a string of digits")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            if v < 0 {
                return Err(E::custom("campaign_id must not be negative"));
            }
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("campaign_id is too large"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            campaign_id_of(&Value::String(v.to_owned()))
                .map(Some)
                .ok_or_else(|| E::custom(format!("campaign_id must be a number, got {v:?}")))
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(toml_text: &str) -> Result<DestinationSettings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn defaults_follow_the_design() {
        let s = parse("api_key = \"k\"\nproject_type = \"hybrid\"").unwrap();
        assert_eq!(s.region, Region::Us);
        assert!(s.prefer_user_id);
        assert!(!s.allow_event_global_unsubscribe);
        assert_eq!(
            s.batch,
            BatchLimits {
                max_subscribers: 1000,
                max_bytes: 4 * 1024 * 1024
            }
        );
        assert!(s.data_fields.is_empty());
        assert_eq!(s.base_url(), "https://api.iterable.com");
        s.validate().unwrap();
    }

    #[test]
    fn api_key_never_appears_in_debug_output() {
        let s = parse("api_key = \"sekrit-123\"\nproject_type = \"email\"").unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("sekrit-123"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    // iterable-api.md §1.3: EU base URL.
    #[test]
    fn eu_region_uses_the_eu_host() {
        let s = parse("api_key = \"k\"\nproject_type = \"userId\"\nregion = \"eu\"").unwrap();
        assert_eq!(s.base_url(), "https://api.eu.iterable.com");
    }

    #[test]
    fn endpoint_override_needs_explicit_permission() {
        let s =
            parse("api_key = \"k\"\nproject_type = \"hybrid\"\nendpoint = \"http://127.0.0.1:9\"")
                .unwrap();
        assert_eq!(s.validate(), Err(ConfigError::CustomEndpointNotAllowed));
        assert_eq!(s.base_url(), "https://api.iterable.com");
        let s = parse(
            "api_key = \"k\"\nproject_type = \"hybrid\"\nendpoint = \"http://127.0.0.1:9/\"\nallow_custom_endpoint = true",
        )
        .unwrap();
        s.validate().unwrap();
        assert_eq!(s.base_url(), "http://127.0.0.1:9");
    }

    // peers-and-field-problems.md T7(b): "12345" is accepted as the number 12345; a
    // non-numeric value is a configuration error.
    #[test]
    fn configured_campaign_id_must_be_numeric() {
        let base = "api_key = \"k\"\nproject_type = \"hybrid\"\n[audiences.vip]\n";
        let s = parse(&format!("{base}campaign_id = \"12345\"")).unwrap();
        assert_eq!(s.audiences["vip"].campaign_id, Some(12345));
        let s = parse(&format!("{base}campaign_id = 731204\nlist = {{ id = 42 }}")).unwrap();
        assert_eq!(s.audiences["vip"].campaign_id, Some(731204));
        assert_eq!(s.audiences["vip"].list, Some(ListBinding::Id(42)));
        let err = parse(&format!("{base}campaign_id = \"abc\"")).unwrap_err();
        assert!(
            err.to_string().contains("campaign_id must be a number"),
            "{err}"
        );
        let s = parse(&format!("{base}list = {{ name = \"VIP list\" }}")).unwrap();
        assert_eq!(
            s.audiences["vip"].list,
            Some(ListBinding::Name("VIP list".into()))
        );
    }

    // design decision 5: operator config, then the latest event settings, then defaults.
    #[test]
    fn operator_config_wins_over_event_settings_which_win_over_defaults() {
        let mut s = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
        s.audiences.insert(
            "vip".into(),
            AudienceConfig {
                update_existing_users_only: Some(false),
                ..Default::default()
            },
        );
        let ev = EventAudienceSettings {
            update_existing_users_only: Some(true),
            global_unsubscribe: Some(false),
            campaign_id: Some(7),
        };
        let (eff, w) = s.effective("vip", Some(&ev));
        assert_eq!(
            eff,
            EffectiveAudienceSettings {
                update_existing_users_only: false,
                channel_unsubscribe: false,
                campaign_id: Some(7)
            }
        );
        assert!(w.is_empty());
        let (eff, _) = s.effective("other", Some(&ev));
        assert!(eff.update_existing_users_only);
        let (eff, _) = s.effective("other", None);
        assert_eq!(eff, EffectiveAudienceSettings::default());
    }

    // design decision 5: an event's globalUnsubscribe only counts when the destination allows it.
    #[test]
    fn event_global_unsubscribe_is_ignored_with_a_warning_unless_allowed() {
        let mut s = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
        let ev = EventAudienceSettings {
            global_unsubscribe: Some(true),
            ..Default::default()
        };
        let (eff, w) = s.effective("a", Some(&ev));
        assert!(!eff.channel_unsubscribe);
        assert_eq!(w.len(), 1);
        s.allow_event_global_unsubscribe = true;
        let (eff, w) = s.effective("a", Some(&ev));
        assert!(eff.channel_unsubscribe);
        assert!(w.is_empty());
    }

    // T7: campaignId in an event must be numeric; "12345" counts, "abc" rejects the event.
    #[test]
    fn event_audience_settings_are_read_leniently_but_campaign_id_strictly() {
        let s = parse_event_audience_settings(&json!({
            "updateExistingUsersOnly": "true", "globalUnsubscribe": false, "campaignId": "12345", "x": 1
        }))
        .unwrap();
        assert_eq!(s.update_existing_users_only, Some(true));
        assert_eq!(s.global_unsubscribe, Some(false));
        assert_eq!(s.campaign_id, Some(12345));
        let s = parse_event_audience_settings(&json!({"campaignId": ""})).unwrap();
        assert_eq!(s.campaign_id, None);
        let r = parse_event_audience_settings(&json!({"campaignId": "abc"})).unwrap_err();
        assert_eq!(r.code, ReasonCode::InvalidAudienceSettings);
        let r = parse_event_audience_settings(&json!({"campaignId": 1.5})).unwrap_err();
        assert_eq!(r.code, ReasonCode::InvalidAudienceSettings);
    }
}
