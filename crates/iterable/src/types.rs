//! Request and response bodies of Iterable's list API, field for field as Iterable's published
//! API description (Swagger 2.0, v1.8) names them.
//!
//! Responses are parsed leniently: every field but the required counters is optional, unknown
//! fields are ignored, and deprecated top-level arrays are kept, because Iterable's answers
//! drift from its own description (reference: iterable-api.md §3, gotcha G18).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which data centre an Iterable project lives in. API keys are bound to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// `https://api.iterable.com`
    #[default]
    Us,
    /// `https://api.eu.iterable.com` (never email-based projects).
    Eu,
}

impl Region {
    /// The base URL of the region's API host, without a trailing slash.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Us => "https://api.iterable.com",
            Region::Eu => "https://api.eu.iterable.com",
        }
    }
}

/// How an Iterable project identifies its users. It cannot be discovered through the API, so
/// the operator declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProjectType {
    /// Users are identified by email; a `userId` alone needs `preferUserId`.
    #[serde(rename = "email", alias = "Email", alias = "email_based")]
    Email,
    /// Users are identified by `userId` only.
    #[serde(
        rename = "userId",
        alias = "userid",
        alias = "user_id",
        alias = "userid_based"
    )]
    UserId,
    /// Users are identified by email or `userId`, both unique.
    #[serde(rename = "hybrid", alias = "Hybrid")]
    Hybrid,
}

impl ProjectType {
    /// The name used in configuration files and in the simulator's control API.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectType::Email => "email",
            ProjectType::UserId => "userId",
            ProjectType::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for ProjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ProjectType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email" | "email_based" => Ok(ProjectType::Email),
            "userId" | "userid" | "user_id" | "userid_based" => Ok(ProjectType::UserId),
            "hybrid" => Ok(ProjectType::Hybrid),
            other => Err(format!(
                "unknown project type {other:?}: expected email, userId or hybrid"
            )),
        }
    }
}

/// `ListDetails.listType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListType {
    /// A static list (created through the API or the UI).
    Standard,
    /// A segment-based list; never a sync target.
    Dynamic,
    /// A suppression list.
    Suppression,
    /// Iterable's own lists.
    Internal,
    /// Any type this version does not know yet.
    #[serde(other)]
    Unknown,
}

/// One entry of `GET /api/lists`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListDetails {
    /// The list id.
    pub id: i64,
    /// The list name; several lists may share one.
    pub name: String,
    /// Epoch milliseconds (does not fit the int32 the description claims).
    #[serde(default)]
    pub created_at: i64,
    /// The list's type.
    pub list_type: ListType,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Present only on suppression lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_global_suppression_enabled: Option<bool>,
}

/// `GET /api/lists` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GetListsResponse {
    /// Every list of the project, of every type.
    #[serde(default)]
    pub lists: Vec<ListDetails>,
}

/// `POST /api/lists` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateListRequest {
    /// The new list's name.
    pub name: String,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /api/lists` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateListResponse {
    /// The id Iterable assigned.
    pub list_id: i64,
}

/// `OptionalApiUser`: one subscriber of `POST /api/lists/subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Subscriber {
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Profile fields to merge into the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fields: Option<Map<String, Value>>,
    /// Email projects only: create a placeholder-email user for an unknown `userId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_user_id: Option<bool>,
    /// Merge top-level objects of `dataFields` instead of overwriting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_nested_objects: Option<bool>,
}

/// `POST /api/lists/subscribe` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    /// The static list.
    pub list_id: i64,
    /// The users to add.
    pub subscribers: Vec<Subscriber>,
    /// userId and hybrid projects only: skip users that do not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_existing_users_only: Option<bool>,
}

/// `Unsubscriber`: one user of `POST /api/lists/unsubscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Unsubscriber {
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `POST /api/lists/unsubscribe` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeRequest {
    /// The static list.
    pub list_id: i64,
    /// The users to remove.
    pub subscribers: Vec<Unsubscriber>,
    /// Attribute the unsubscribe to a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<i64>,
    /// Also unsubscribe from the list's channel: essentially a global unsubscribe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_unsubscribe: Option<bool>,
}

/// `FailedUserUpdates`: per-identity failures inside a 200 answer. Every array is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct FailedUpdates {
    /// Emails that prevented identity updates (hybrid).
    pub conflict_emails: Vec<String>,
    /// User ids that prevented identity updates (hybrid).
    pub conflict_user_ids: Vec<String>,
    /// GDPR-forgotten emails.
    pub forgotten_emails: Vec<String>,
    /// GDPR-forgotten user ids.
    pub forgotten_user_ids: Vec<String>,
    /// Emails whose `dataFields` were invalid (e.g. a type mismatch).
    pub invalid_data_emails: Vec<String>,
    /// User ids whose `dataFields` were invalid.
    pub invalid_data_user_ids: Vec<String>,
    /// Malformed emails.
    pub invalid_emails: Vec<String>,
    /// Malformed user ids.
    pub invalid_user_ids: Vec<String>,
    /// Emails not found (subscribe/unsubscribe only).
    pub not_found_emails: Vec<String>,
    /// User ids not found (subscribe/unsubscribe only).
    pub not_found_user_ids: Vec<String>,
}

impl FailedUpdates {
    /// True when no array holds anything.
    pub fn is_empty(&self) -> bool {
        self.conflict_emails.is_empty()
            && self.conflict_user_ids.is_empty()
            && self.forgotten_emails.is_empty()
            && self.forgotten_user_ids.is_empty()
            && self.invalid_data_emails.is_empty()
            && self.invalid_data_user_ids.is_empty()
            && self.invalid_emails.is_empty()
            && self.invalid_user_ids.is_empty()
            && self.not_found_emails.is_empty()
            && self.not_found_user_ids.is_empty()
    }
}

/// `UserBulkUpdateListResponse`: the 200 answer of subscribe and unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct BulkResponse {
    /// Users updated.
    pub success_count: i64,
    /// Users not updated; see `failed_updates`.
    pub fail_count: i64,
    /// Profile fields the request created.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created_fields: Vec<String>,
    /// Profile fields the project dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filtered_out_fields: Vec<String>,
    /// Deprecated top-level copy of `failedUpdates.invalidEmails`.
    pub invalid_emails: Vec<String>,
    /// Deprecated top-level copy of `failedUpdates.invalidUserIds`.
    pub invalid_user_ids: Vec<String>,
    /// Per-identity failures.
    pub failed_updates: FailedUpdates,
}

/// `IterableApiResponse`: the generic `{msg, code, params}` body of errors (and of a delete).
/// Parsed best-effort; `code` may say `"Success"` on an error, so HTTP status decides first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ApiResponse {
    /// Human-readable message.
    #[serde(default)]
    pub msg: String,
    /// One of Iterable's codes (`BadApiKey`, `BadJsonBody`, `RateLimitExceeded`, …).
    #[serde(default)]
    pub code: String,
    /// Extra parameters; may be null, an object, or even a string.
    #[serde(default)]
    pub params: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // iterable-api.md §3: the 2021 recording has no failedUpdates and no createdFields.
    #[test]
    fn bulk_response_parses_the_2021_shape() {
        let r: BulkResponse = serde_json::from_str(
            r#"{"successCount":1,"failCount":0,"invalidEmails":[],"invalidUserIds":[]}"#,
        )
        .unwrap();
        assert_eq!(r.success_count, 1);
        assert!(r.failed_updates.is_empty());
    }

    // iterable-api.md §3: undocumented noOp arrays appear and must be ignored.
    #[test]
    fn bulk_response_ignores_unknown_fields() {
        let r: BulkResponse = serde_json::from_str(
            r#"{"successCount":2,"failCount":1,"noOpEmails":[],"failedUpdates":{"forgottenEmails":["a@x.com"],"failedEmails":[]}}"#,
        )
        .unwrap();
        assert_eq!(r.failed_updates.forgotten_emails, vec!["a@x.com"]);
    }

    // iterable-api.md §2.1: createdAt does not fit an int32; unknown list types are tolerated.
    #[test]
    fn list_details_take_millisecond_timestamps_and_unknown_types() {
        let r: GetListsResponse = serde_json::from_str(
            r#"{"lists":[{"id":1068689,"name":"List Four","createdAt":1625162843262,"listType":"Standard"},{"id":2,"name":"x","createdAt":1,"listType":"Brand New"}]}"#,
        )
        .unwrap();
        assert_eq!(r.lists[0].created_at, 1625162843262);
        assert_eq!(r.lists[1].list_type, ListType::Unknown);
    }

    // iterable-api.md §2.4/§2.5: optional flags are omitted when unset.
    #[test]
    fn unset_optional_fields_are_not_serialized() {
        let s = serde_json::to_string(&SubscribeRequest {
            list_id: 7,
            subscribers: vec![Subscriber {
                user_id: Some("u1".into()),
                ..Default::default()
            }],
            update_existing_users_only: None,
        })
        .unwrap();
        assert_eq!(s, r#"{"listId":7,"subscribers":[{"userId":"u1"}]}"#);
        let s = serde_json::to_string(&UnsubscribeRequest {
            list_id: 7,
            subscribers: vec![Unsubscriber {
                email: Some("a@x.com".into()),
                user_id: None,
            }],
            campaign_id: None,
            channel_unsubscribe: Some(false),
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"listId":7,"subscribers":[{"email":"a@x.com"}],"channelUnsubscribe":false}"#
        );
    }
}
