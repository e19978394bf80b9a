//! Result attribution (iterable-api.md §3/§4, design decisions 2 and 9, peers T6/T14/T15/T16).

use destination::attribution::{Verdict, attribute, iterable_message};
use destination::model::{Direction, Identity, MembershipChange, Outcome, ReasonCode, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem, PlannedRequest};
use destination::settings::{BatchLimits, EffectiveAudienceSettings};
use iterable::ProjectType;
use serde_json::Map;

fn request(dir: Direction, ids: &[(Option<&str>, Option<&str>)]) -> PlannedRequest {
    let p = ProjectType::Hybrid;
    let changes: Vec<MembershipChange> = ids
        .iter()
        .enumerate()
        .map(|(n, (e, u))| MembershipChange {
            message_id: format!("m{n}"),
            timestamp: Timestamp::from_unix_millis(1),
            received_order: n as u64,
            audience_key: "aud".into(),
            list_hint: None,
            direction: dir,
            identity: Identity::new(*e, *u, p).unwrap(),
            data_fields: Map::new(),
            audience_settings: None,
        })
        .collect();
    let items: Vec<PlanItem<'_>> = changes
        .iter()
        .map(|change| PlanItem {
            list_id: 42,
            settings: EffectiveAudienceSettings::default(),
            change,
        })
        .collect();
    let cfg = PlanConfig {
        project_type: p,
        prefer_user_id: true,
        limits: BatchLimits::default(),
    };
    let mut plan = planner::plan(&cfg, &items);
    assert_eq!(plan.requests.len(), 1);
    plan.requests.remove(0)
}

fn codes(v: &Verdict) -> Vec<Option<ReasonCode>> {
    match v {
        Verdict::Completed { results, .. } => results
            .iter()
            .map(|(_, o)| match o {
                Outcome::Delivered => None,
                other => Some(other.reason().unwrap().code),
            })
            .collect(),
        other => panic!("expected Completed, got {other:?}"),
    }
}

// T14: forgotten is skipped (never retried), invalid and conflict rejected, the clean two
// delivered; results keep subscriber order.
#[test]
fn mixed_failures_are_attributed_per_subscriber() {
    let r = request(
        Direction::Subscribe,
        &[
            (Some("forgotten@example.com"), None),
            (Some("invalid@example.com"), None),
            (Some("conflict@example.com"), None),
            (Some("clean1@example.com"), None),
            (Some("clean2@example.com"), None),
        ],
    );
    let v = attribute(
        &r,
        200,
        br#"{"successCount":2,"failCount":3,"failedUpdates":{"forgottenEmails":["forgotten@example.com"],"invalidEmails":["invalid@example.com"],"conflictEmails":["conflict@example.com"]}}"#,
    );
    assert_eq!(
        codes(&v),
        vec![
            Some(ReasonCode::Forgotten),
            Some(ReasonCode::BadIdentifier),
            Some(ReasonCode::IdentityConflict),
            None,
            None
        ]
    );
    match &v {
        Verdict::Completed {
            results,
            unattributed_failures,
        } => {
            assert_eq!(
                results.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
                vec![0, 1, 2, 3, 4]
            );
            assert_eq!(*unattributed_failures, 0);
            assert!(matches!(results[0].1, Outcome::Skipped { .. }));
            assert!(matches!(results[1].1, Outcome::Rejected { .. }));
        }
        _ => unreachable!(),
    }
}

// T15: notFound on unsubscribe is a skip (already off); on subscribe a rejection.
#[test]
fn not_found_is_skipped_on_unsubscribe_and_rejected_on_subscribe() {
    let r = request(
        Direction::Unsubscribe,
        &[(None, Some("user_missing")), (None, Some("other"))],
    );
    let v = attribute(
        &r,
        200,
        br#"{"failCount":1,"failedUpdates":{"notFoundUserIds":["user_missing"]}}"#,
    );
    assert_eq!(
        codes(&v),
        vec![Some(ReasonCode::NotFoundOnUnsubscribe), None]
    );
    assert!(
        matches!(&v, Verdict::Completed { results, .. } if matches!(results[0].1, Outcome::Skipped { .. }))
    );

    let r = request(Direction::Subscribe, &[(Some("gone@x.com"), None)]);
    let v = attribute(
        &r,
        200,
        br#"{"successCount":0,"failCount":1,"failedUpdates":{"notFoundEmails":["gone@x.com"]}}"#,
    );
    assert_eq!(codes(&v), vec![Some(ReasonCode::NotFoundOnSubscribe)]);
    assert!(
        matches!(&v, Verdict::Completed { results, .. } if matches!(results[0].1, Outcome::Rejected { .. }))
    );
}

// iterable-api.md §7 G4: emails compare case-insensitively, userIds exactly.
#[test]
fn emails_match_case_insensitively_and_user_ids_exactly() {
    let r = request(
        Direction::Subscribe,
        &[
            (Some("jane@example.com"), None),
            (None, Some("User1")),
            (None, Some("user2")),
        ],
    );
    let v = attribute(
        &r,
        200,
        br#"{"failCount":2,"failedUpdates":{"invalidDataEmails":["JANE@Example.COM"],"conflictUserIds":["user1","user2"]}}"#,
    );
    assert_eq!(
        codes(&v),
        vec![
            Some(ReasonCode::InvalidData),
            None,
            Some(ReasonCode::IdentityConflict)
        ]
    );
    // "user1" named nobody we sent.
    assert!(matches!(
        v,
        Verdict::Completed {
            unattributed_failures: 0,
            ..
        }
    ));
}

// iterable-api.md §3 and G3/G18: the 2021 shape, deprecated top-level arrays, unknown fields.
#[test]
fn bulk_bodies_are_read_leniently() {
    let r = request(
        Direction::Subscribe,
        &[(Some("a@x.com"), None), (Some("b@x.com"), None)],
    );
    let v = attribute(
        &r,
        200,
        br#"{"successCount":1,"failCount":0,"invalidEmails":[],"invalidUserIds":[]}"#,
    );
    assert_eq!(codes(&v), vec![None, None]);
    let v = attribute(&r, 200, br#"{"successCount":1,"failCount":1,"invalidEmails":["b@x.com"],"noOpEmails":[],"failedUpdates":{"failedEmails":[]}}"#);
    assert_eq!(codes(&v), vec![None, Some(ReasonCode::BadIdentifier)]);
    let v = attribute(&r, 200, br#"{"successCount":2}"#);
    assert_eq!(codes(&v), vec![None, None]);
    let v = attribute(
        &r,
        200,
        br#"{"successCount":1,"failCount":1,"failedUpdates":{"invalidEmails":[7,"b@x.com"]}}"#,
    );
    assert_eq!(codes(&v), vec![None, Some(ReasonCode::BadIdentifier)]);
}

#[test]
fn failures_iterable_does_not_name_are_counted() {
    let r = request(Direction::Subscribe, &[(Some("a@x.com"), None)]);
    let v = attribute(&r, 200, br#"{"successCount":0,"failCount":1,"failedUpdates":{"forgottenEmails":["someone@else.com"]}}"#);
    assert_eq!(
        v,
        Verdict::Completed {
            results: vec![(0, Outcome::Delivered)],
            unattributed_failures: 1
        }
    );
}

// T16: a 429 with a text body never crashes and is retryable; issue 3 item 8 status classes.
#[test]
fn http_status_decides_before_the_body() {
    let r = request(
        Direction::Subscribe,
        &[(Some("a@x.com"), None), (Some("b@x.com"), None)],
    );
    let v = attribute(&r, 429, b"Rate limit exceeded. Please try again later.");
    assert_eq!(
        v,
        Verdict::Retryable {
            status: 429,
            message: "Rate limit exceeded. Please try again later.".into()
        }
    );
    for s in [408, 423, 500, 502, 503, 504, 599] {
        assert!(
            matches!(
                attribute(&r, s, b"<html>oops</html>"),
                Verdict::Retryable { .. }
            ),
            "{s}"
        );
    }
    // T6: a 500 is surfaced, never read as success.
    assert!(matches!(
        attribute(&r, 500, br#"{"msg":"Internal Server Error"}"#),
        Verdict::Retryable { status: 500, .. }
    ));
    for s in [401, 403] {
        assert!(
            matches!(
                attribute(
                    &r,
                    s,
                    br#"{"msg":"Invalid API key","code":"BadApiKey","params":null}"#
                ),
                Verdict::AuthFailed { .. }
            ),
            "{s}"
        );
    }
    // G2: invalidListId comes with code "Success" on a 400.
    assert!(matches!(
        attribute(&r, 400, br#"{"msg":"error.lists.invalidListId(999999999)","code":"Success","params":{"projectId":9079,"listId":999999999}}"#),
        Verdict::ListMissing { .. }
    ));
    assert!(matches!(attribute(&r, 400, br#"{"msg":"[/api/lists/subscribe] Invalid JSON body","code":"BadJsonBody","params":null}"#), Verdict::Split { status: 400, .. }));
    assert!(matches!(
        attribute(&r, 413, b""),
        Verdict::Split { status: 413, .. }
    ));
    for s in [404, 409, 501] {
        match attribute(&r, s, b"<title>Action not found</title>") {
            Verdict::RejectAll { status, reason } => {
                assert_eq!(status, s);
                assert_eq!(reason.code, ReasonCode::IterableRejected);
                assert!(
                    reason.message.contains("Action not found"),
                    "{}",
                    reason.message
                );
            }
            other => panic!("{s}: {other:?}"),
        }
    }
}

// design decision 9: a single subscriber cannot be split; its 400 rejects it with the message.
#[test]
fn a_single_subscriber_400_is_rejected_not_split() {
    let r = request(Direction::Subscribe, &[(Some("a@x.com"), None)]);
    match attribute(&r, 400, br#"{"msg":"Project 1: type mismatch","code":"RequestFieldsTypesMismatched","params":null}"#) {
        Verdict::RejectAll { reason, .. } => assert!(reason.message.contains("type mismatch (RequestFieldsTypesMismatched)")),
        other => panic!("{other:?}"),
    }
}

// A 200 whose body is not a bulk result is retried (subscribe/unsubscribe are idempotent).
#[test]
fn an_unreadable_success_body_is_retryable_not_a_crash() {
    let r = request(Direction::Subscribe, &[(Some("a@x.com"), None)]);
    assert!(matches!(
        attribute(&r, 200, b"OK"),
        Verdict::Retryable { status: 200, .. }
    ));
    assert!(matches!(
        attribute(&r, 200, b"[1,2]"),
        Verdict::Retryable { .. }
    ));
}

#[test]
fn iterable_messages_are_readable_and_bounded() {
    assert_eq!(iterable_message(b""), "(empty body)");
    assert_eq!(
        iterable_message(br#"{"msg":"Invalid API key","code":"BadApiKey"}"#),
        "Invalid API key (BadApiKey)"
    );
    assert_eq!(iterable_message(&[b'x'; 1000]).chars().count(), 301);
}
