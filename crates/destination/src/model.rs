//! The types the rest of the product shares: directions, identities, membership changes,
//! outcomes and their reason codes.
//!
//! Everything here is plain data with no I/O, serialisable so the store can persist it and
//! the service can report it.

use std::fmt;

use iterable::ProjectType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use segment::Timestamp;

/// Whether a change adds the identity to its list or removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Enter the audience: `POST /api/lists/subscribe`.
    Subscribe,
    /// Exit the audience: `POST /api/lists/unsubscribe`.
    Unsubscribe,
}

impl Direction {
    /// `"subscribe"` or `"unsubscribe"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Subscribe => "subscribe",
            Direction::Unsubscribe => "unsubscribe",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key of one identity in the ledger (design decision 3): the `userId` when the project
/// keys by it and one is present, else the lowercased email.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "camelCase")]
pub enum IdentityKey {
    /// Keyed by `userId` (exact, case-sensitive).
    UserId(String),
    /// Keyed by email (already lowercased).
    Email(String),
}

impl IdentityKey {
    /// A single string form for storage: `u:<userId>` or `e:<email>`.
    pub fn to_storage(&self) -> String {
        match self {
            IdentityKey::UserId(u) => format!("u:{u}"),
            IdentityKey::Email(e) => format!("e:{e}"),
        }
    }

    /// Reads [`IdentityKey::to_storage`]'s form back.
    pub fn from_storage(s: &str) -> Option<Self> {
        if let Some(u) = s.strip_prefix("u:") {
            Some(IdentityKey::UserId(u.to_owned()))
        } else {
            s.strip_prefix("e:")
                .map(|e| IdentityKey::Email(e.to_owned()))
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityKey::UserId(u) => write!(f, "userId {u}"),
            IdentityKey::Email(e) => write!(f, "email {e}"),
        }
    }
}

/// A validated, normalised Iterable identity: a trimmed lowercased email and/or an exact
/// `userId`, at least one present. Build it with [`Identity::new`], which applies the rules
/// (see [`crate::identity`]). Fields are private; deserialising trusts what the store wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
}

impl Identity {
    /// The normalised email, if any.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    /// The `userId`, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The ledger key for a project of this type (design decision 3).
    pub fn key(&self, project: ProjectType) -> IdentityKey {
        match (project, &self.user_id, &self.email) {
            (ProjectType::Email, _, Some(e)) => IdentityKey::Email(e.clone()),
            (_, Some(u), _) => IdentityKey::UserId(u.clone()),
            (_, None, Some(e)) => IdentityKey::Email(e.clone()),
            // Unreachable by construction (one identifier is always present); keep a total
            // function rather than a panic.
            (_, None, None) => IdentityKey::Email(String::new()),
        }
    }

    /// Which identifiers a request carries (design decision 3): hybrid sends both; userId
    /// projects the `userId`; email projects the email, or the `userId` when there is no email.
    pub fn request_identifiers(&self, project: ProjectType) -> (Option<&str>, Option<&str>) {
        let (email, user_id) = (self.email(), self.user_id());
        match project {
            ProjectType::Hybrid => (email, user_id),
            ProjectType::UserId => (None, user_id),
            ProjectType::Email => match email {
                Some(e) => (Some(e), None),
                None => (None, user_id),
            },
        }
    }
}

/// Per-audience settings as an event carried them (`context.personas.audience_settings`).
/// `None` means "not said"; see [`crate::settings`] for precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAudienceSettings {
    /// `updateExistingUsersOnly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_existing_users_only: Option<bool>,
    /// `globalUnsubscribe` (sent as `channelUnsubscribe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_unsubscribe: Option<bool>,
    /// `campaignId`, already validated as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<i64>,
}

/// One accepted audience event after mapping: identity `identity` should be in (or out of)
/// audience `audience_key`'s list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipChange {
    /// The event's `messageId`.
    pub message_id: String,
    /// The event's timestamp; the latest wins (design: Ledger, Plan).
    pub timestamp: Timestamp,
    /// Arrival order, breaking timestamp ties (higher = later).
    pub received_order: u64,
    /// The audience key (`context.personas.computation_key` by default).
    pub audience_key: String,
    /// The list id the event suggested (`external_audience_id`), already numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_hint: Option<i64>,
    /// In or out.
    pub direction: Direction,
    /// Who.
    pub identity: Identity,
    /// Profile fields to send with a subscribe; empty means none.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data_fields: Map<String, Value>,
    /// Audience settings the event carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience_settings: Option<EventAudienceSettings>,
}

/// Alias used where the event-centred name reads better.
pub type AudienceEvent = MembershipChange;

/// Machine-readable reason codes for skipped and rejected events (design decision 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasonCode {
    // ---- skipped (final, not an error) ----
    /// A call type other than identify/track.
    UnsupportedType,
    /// No `context.personas`, or a computation class that is not an audience.
    NotAudienceEvent,
    /// No enabled mapping's trigger matched.
    NoTriggerMatched,
    /// Neither email nor userId (only an anonymousId).
    NoIdentifier,
    /// The user is GDPR-forgotten in Iterable.
    Forgotten,
    /// Iterable did not know the user on an unsubscribe: already off the list.
    NotFoundOnUnsubscribe,
    /// An exit for an identity never subscribed to a list this service created.
    ExitNeverSent,
    /// A newer event for the same identity and list replaced this one.
    Superseded,
    // ---- rejected (final, needs a person) ----
    /// The event is malformed (body, size, field types).
    BadInput,
    /// The audience key is missing or blank.
    MissingAudienceKey,
    /// `external_audience_id` is present but not a number.
    InvalidListId,
    /// The membership value is missing or not a boolean.
    InvalidMembership,
    /// `audience_settings` holds a bad value (e.g. a non-numeric campaignId).
    InvalidAudienceSettings,
    /// An email or userId fails Iterable's rules, or the project type needs another one.
    BadIdentifier,
    /// Iterable reported an identity conflict.
    IdentityConflict,
    /// Iterable did not know the user on a subscribe (update-existing-users-only).
    NotFoundOnSubscribe,
    /// Iterable refused the `dataFields`.
    InvalidData,
    /// Several Standard lists carry the audience's name.
    AmbiguousList,
    /// The list is gone and may not be re-created.
    ListMissing,
    /// Iterable refused the request for another reason (its message is in the text).
    IterableRejected,
    // ---- not final ----
    /// A retryable failure (429, 5xx, timeout…).
    Transient,
}

impl ReasonCode {
    /// The snake_case code, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::UnsupportedType => "unsupported_type",
            ReasonCode::NotAudienceEvent => "not_audience_event",
            ReasonCode::NoTriggerMatched => "no_trigger_matched",
            ReasonCode::NoIdentifier => "no_identifier",
            ReasonCode::Forgotten => "forgotten",
            ReasonCode::NotFoundOnUnsubscribe => "not_found_on_unsubscribe",
            ReasonCode::ExitNeverSent => "exit_never_sent",
            ReasonCode::Superseded => "superseded",
            ReasonCode::BadInput => "bad_input",
            ReasonCode::MissingAudienceKey => "missing_audience_key",
            ReasonCode::InvalidListId => "invalid_list_id",
            ReasonCode::InvalidMembership => "invalid_membership",
            ReasonCode::InvalidAudienceSettings => "invalid_audience_settings",
            ReasonCode::BadIdentifier => "bad_identifier",
            ReasonCode::IdentityConflict => "identity_conflict",
            ReasonCode::NotFoundOnSubscribe => "not_found_on_subscribe",
            ReasonCode::InvalidData => "invalid_data",
            ReasonCode::AmbiguousList => "ambiguous_list",
            ReasonCode::ListMissing => "list_missing",
            ReasonCode::IterableRejected => "iterable_rejected",
            ReasonCode::Transient => "transient",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason code plus text a person understands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reason {
    /// Machine-readable code.
    pub code: ReasonCode,
    /// Human text (never holds an API key).
    pub message: String,
}

impl Reason {
    /// A reason with its code and text.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Reason {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Where an accepted event stands (design decision 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Iterable confirmed the state it implies.
    Delivered,
    /// Final and not an error.
    Skipped {
        /// Why.
        reason: Reason,
    },
    /// Final, needs a person; may be replayed once the cause is fixed.
    Rejected {
        /// Why.
        reason: Reason,
    },
    /// Not final: will be sent again.
    Retrying {
        /// When the next attempt is due.
        next_attempt: Timestamp,
        /// What failed last.
        reason: Reason,
    },
    /// Not final: accepted, not yet confirmed.
    Pending,
}

impl Outcome {
    /// A skip with this code and text.
    pub fn skipped(code: ReasonCode, message: impl Into<String>) -> Self {
        Outcome::Skipped {
            reason: Reason::new(code, message),
        }
    }

    /// A rejection with this code and text.
    pub fn rejected(code: ReasonCode, message: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason: Reason::new(code, message),
        }
    }

    /// True for delivered, skipped and rejected.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Outcome::Delivered | Outcome::Skipped { .. } | Outcome::Rejected { .. }
        )
    }

    /// The reason, when there is one.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Outcome::Skipped { reason }
            | Outcome::Rejected { reason }
            | Outcome::Retrying { reason, .. } => Some(reason),
            Outcome::Delivered | Outcome::Pending => None,
        }
    }
}

/// The result of mapping one parsed event: a change to apply, or a final skip/reject.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessedEvent {
    /// An audience event that becomes a membership change.
    Change(Box<MembershipChange>),
    /// Not an audience event, or nothing Iterable can identify: final, not an error.
    Skipped(Reason),
    /// Bad input: final, with a reason.
    Rejected(Reason),
}

impl ProcessedEvent {
    /// The outcome this result already fixes (`Pending` for a change).
    pub fn outcome(&self) -> Outcome {
        match self {
            ProcessedEvent::Change(_) => Outcome::Pending,
            ProcessedEvent::Skipped(r) => Outcome::Skipped { reason: r.clone() },
            ProcessedEvent::Rejected(r) => Outcome::Rejected { reason: r.clone() },
        }
    }
}
