//! Reads Iterable's answer to one planned request and says what became of each change
//! (issue 3 item 8; design decision 2; iterable-api.md §3, §4).
//!
//! HTTP status decides before any body `code` (G2: Iterable sends `code: "Success"` on errors):
//! 429, 408, 423 and 5xx except 501 are retryable; 401/403 stop the destination; 400 naming
//! `invalidListId` means the list is missing; other 400s and 413 split the request; any other
//! status rejects the request's changes with Iterable's message. On 2xx the bulk body is read
//! leniently (missing arrays, unknown fields, deprecated top-level arrays) and each failure is
//! traced back by identity: emails case-insensitively, userIds exactly.

use std::collections::HashMap;

use iterable::ApiResponse;
use serde_json::Value;

use crate::model::{Direction, Outcome, Reason, ReasonCode};
use crate::planner::PlannedRequest;

/// The classification of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Iterable processed the request: one final outcome per change it carried.
    Completed {
        /// `(change index, outcome)` for every subscriber, in body order.
        results: Vec<(usize, Outcome)>,
        /// Failures Iterable counted but named no identifier of ours for (those changes are
        /// reported delivered; the count is for the delivery log).
        unattributed_failures: u64,
    },
    /// Send the same request again later (429, 408, 423, 5xx except 501, unreadable 2xx body).
    Retryable {
        /// The HTTP status.
        status: u16,
        /// What Iterable said.
        message: String,
    },
    /// The API key was refused: stop the destination until an operator acts.
    AuthFailed {
        /// The HTTP status (401 or 403).
        status: u16,
        /// What Iterable said.
        message: String,
    },
    /// Iterable does not know the list (400 `invalidListId`): resolve the list again.
    ListMissing {
        /// What Iterable said.
        message: String,
    },
    /// Iterable refused the request as a whole (400, 413): split it in halves and retry each
    /// (design decision 9). Never returned for a single-subscriber request.
    Split {
        /// The HTTP status.
        status: u16,
        /// What Iterable said.
        message: String,
    },
    /// Every change of the request is rejected with this reason.
    RejectAll {
        /// The HTTP status.
        status: u16,
        /// Why.
        reason: Reason,
    },
}

/// Classifies Iterable's answer (`status`, `body`) to `request`.
pub fn attribute(request: &PlannedRequest, status: u16, body: &[u8]) -> Verdict {
    match status {
        200..=299 => completed(request, status, body),
        429 | 408 | 423 => Verdict::Retryable {
            status,
            message: iterable_message(body),
        },
        500..=599 if status != 501 => Verdict::Retryable {
            status,
            message: iterable_message(body),
        },
        401 | 403 => Verdict::AuthFailed {
            status,
            message: iterable_message(body),
        },
        400 if mentions_invalid_list_id(body) => Verdict::ListMissing {
            message: iterable_message(body),
        },
        400 | 413 if request.changes.len() > 1 => Verdict::Split {
            status,
            message: iterable_message(body),
        },
        _ => Verdict::RejectAll {
            status,
            reason: Reason::new(
                ReasonCode::IterableRejected,
                format!("Iterable answered {status}: {}", iterable_message(body)),
            ),
        },
    }
}

fn mentions_invalid_list_id(body: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"invalidListId";
    body.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// Iterable's message from an error body: `msg (code)` plus `params` from a
/// `{msg, code, params}` envelope, else the text itself (trimmed, at most 300 characters).
pub fn iterable_message(body: &[u8]) -> String {
    if let Ok(r) = serde_json::from_slice::<ApiResponse>(body) {
        if !r.msg.is_empty() || !r.code.is_empty() {
            let mut m = r.msg;
            if !r.code.is_empty() {
                m = format!("{m} ({})", r.code);
            }
            match r.params {
                None | Some(Value::Null) => {}
                Some(p) => m = format!("{m} {p}"),
            }
            return truncate(m.trim());
        }
    }
    let text = String::from_utf8_lossy(body);
    let t = text.trim();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        truncate(t)
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The identity arrays of a bulk answer, read leniently: missing arrays are empty, non-string
/// entries are ignored, unknown fields are ignored.
#[derive(Debug, Default)]
struct Failures {
    fail_count: u64,
    forgotten_emails: Vec<String>,
    forgotten_user_ids: Vec<String>,
    invalid_emails: Vec<String>,
    invalid_user_ids: Vec<String>,
    conflict_emails: Vec<String>,
    conflict_user_ids: Vec<String>,
    invalid_data_emails: Vec<String>,
    invalid_data_user_ids: Vec<String>,
    not_found_emails: Vec<String>,
    not_found_user_ids: Vec<String>,
}

impl Failures {
    fn read(v: &Value) -> Option<Failures> {
        let top = v.as_object()?;
        let fu = top.get("failedUpdates").and_then(Value::as_object);
        let arr = |obj: Option<&serde_json::Map<String, Value>>, name: &str| -> Vec<String> {
            obj.and_then(|o| o.get(name))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let both = |name: &str| {
            // Deprecated top-level copies (G3) count as much as failedUpdates.
            let mut v = arr(fu, name);
            v.extend(arr(Some(top), name));
            v
        };
        Some(Failures {
            fail_count: top.get("failCount").and_then(Value::as_u64).unwrap_or(0),
            forgotten_emails: arr(fu, "forgottenEmails"),
            forgotten_user_ids: arr(fu, "forgottenUserIds"),
            invalid_emails: both("invalidEmails"),
            invalid_user_ids: both("invalidUserIds"),
            conflict_emails: arr(fu, "conflictEmails"),
            conflict_user_ids: arr(fu, "conflictUserIds"),
            invalid_data_emails: arr(fu, "invalidDataEmails"),
            invalid_data_user_ids: arr(fu, "invalidDataUserIds"),
            not_found_emails: both("notFoundEmails"),
            not_found_user_ids: both("notFoundUserIds"),
        })
    }

    fn is_empty(&self) -> bool {
        [
            &self.forgotten_emails,
            &self.forgotten_user_ids,
            &self.invalid_emails,
            &self.invalid_user_ids,
            &self.conflict_emails,
            &self.conflict_user_ids,
            &self.invalid_data_emails,
            &self.invalid_data_user_ids,
            &self.not_found_emails,
            &self.not_found_user_ids,
        ]
        .iter()
        .all(|v| v.is_empty())
    }
}

fn completed(request: &PlannedRequest, status: u16, body: &[u8]) -> Verdict {
    let failures = serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(Failures::read);
    let Some(f) = failures else {
        // Subscribe and unsubscribe are idempotent, so sending again is safe.
        return Verdict::Retryable {
            status,
            message: format!(
                "Iterable answered {status} with a body that is not a bulk result: {}",
                iterable_message(body)
            ),
        };
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; request.changes.len()];
    let mut attributed = 0u64;
    if !f.is_empty() {
        let sent = request.sent_identifiers();
        let mut by_email: HashMap<String, usize> = HashMap::new();
        let mut by_user: HashMap<&str, usize> = HashMap::new();
        for (pos, (e, u)) in sent.iter().enumerate() {
            if let Some(e) = e {
                by_email.insert(e.to_lowercase(), pos);
            }
            if let Some(u) = u {
                by_user.insert(u.as_str(), pos);
            }
        }
        let unsubscribe = request.direction == Direction::Unsubscribe;
        let not_found = if unsubscribe {
            Outcome::skipped(
                ReasonCode::NotFoundOnUnsubscribe,
                "Iterable does not know this user: already off the list",
            )
        } else {
            Outcome::rejected(
                ReasonCode::NotFoundOnSubscribe,
                "Iterable does not know this user and the audience only updates existing users",
            )
        };
        // The first classification of a subscriber sticks; the order puts the most specific first.
        let classes: [(&Vec<String>, &Vec<String>, Outcome); 5] = [
            (
                &f.forgotten_emails,
                &f.forgotten_user_ids,
                Outcome::skipped(
                    ReasonCode::Forgotten,
                    "the user is GDPR-forgotten in Iterable; never sent again",
                ),
            ),
            (
                &f.invalid_emails,
                &f.invalid_user_ids,
                Outcome::rejected(
                    ReasonCode::BadIdentifier,
                    "Iterable refused the email or userId as malformed",
                ),
            ),
            (
                &f.conflict_emails,
                &f.conflict_user_ids,
                Outcome::rejected(
                    ReasonCode::IdentityConflict,
                    "the email and userId belong to different Iterable users",
                ),
            ),
            (
                &f.invalid_data_emails,
                &f.invalid_data_user_ids,
                Outcome::rejected(
                    ReasonCode::InvalidData,
                    "Iterable refused the data fields (e.g. a type differs from earlier data)",
                ),
            ),
            (&f.not_found_emails, &f.not_found_user_ids, not_found),
        ];
        for (emails, user_ids, outcome) in classes {
            let hits = emails
                .iter()
                .filter_map(|e| by_email.get(&e.trim().to_lowercase()).copied())
                .chain(
                    user_ids
                        .iter()
                        .filter_map(|u| by_user.get(u.as_str()).copied()),
                );
            for pos in hits {
                if let Some(slot) = outcomes.get_mut(pos) {
                    if slot.is_none() {
                        *slot = Some(outcome.clone());
                        attributed += 1;
                    }
                }
            }
        }
    }
    let unattributed_failures = f.fail_count.saturating_sub(attributed);
    if unattributed_failures > 0 {
        tracing::warn!(
            list_id = request.list_id,
            direction = %request.direction,
            unattributed_failures,
            "Iterable counted failures it did not name"
        );
    }
    let results = request
        .changes
        .iter()
        .zip(outcomes)
        .map(|(&i, o)| (i, o.unwrap_or(Outcome::Delivered)))
        .collect();
    Verdict::Completed {
        results,
        unattributed_failures,
    }
}
