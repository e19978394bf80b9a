//! Behaviour of the SQLite store on real files in temporary directories.

use serde_json::json;
use store::{
    AcceptOutcome, Change, Direction, LogQuery, Outcome, Retention, SqliteOptions, SqliteStore,
    Store, StoreError,
};

const T0: i64 = 1_700_000_000_000;

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("ledger.db"), SqliteOptions::default()).unwrap()
}

fn change(identity: &str, direction: Direction, message_id: &str, timestamp: i64) -> Change {
    Change {
        destination: "iterable".into(),
        audience_key: "vip".into(),
        identity: identity.into(),
        email: Some(format!("{identity}@example.com")),
        user_id: None,
        direction,
        data_fields: None,
        message_id: message_id.into(),
        timestamp,
        audience_settings: None,
    }
}

fn log_of(store: &SqliteStore, message_id: &str) -> store::LogEntry {
    store
        .log(&LogQuery {
            limit: 10_000,
            ..LogQuery::default()
        })
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == message_id)
        .unwrap_or_else(|| panic!("no log entry for {message_id}"))
}

#[test]
fn older_event_never_overwrites_newer_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let out = store
        .accept(
            &[
                change("ann", Direction::Out, "m2", T0 + 10),
                change("ann", Direction::In, "m1", T0),
            ],
            T0,
        )
        .unwrap();
    assert_eq!(
        out,
        vec![
            AcceptOutcome::Applied { version: 1 },
            AcceptOutcome::Superseded
        ]
    );
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert!(
        store
            .claim(aud.id, Direction::In, T0, 10)
            .unwrap()
            .is_empty()
    );
    let rows = store.claim(aud.id, Direction::Out, T0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row.message_id, "m2");
    let late = log_of(&store, "m1");
    assert_eq!(late.outcome, Outcome::Skipped);
    assert_eq!(late.reason_code.as_deref(), Some("superseded"));
}

#[test]
fn equal_timestamps_are_ordered_by_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(&[change("bob", Direction::In, "a", T0)], T0)
        .unwrap();
    let out = store
        .accept(&[change("bob", Direction::Out, "b", T0)], T0 + 1)
        .unwrap();
    assert_eq!(out, vec![AcceptOutcome::Applied { version: 2 }]);
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert_eq!(
        store
            .claim(aud.id, Direction::Out, T0 + 1, 10)
            .unwrap()
            .len(),
        1
    );
    // The first event was superseded before it was delivered.
    assert_eq!(log_of(&store, "a").outcome, Outcome::Skipped);
    assert_eq!(log_of(&store, "b").outcome, Outcome::Pending);
}

#[test]
fn enter_exit_enter_in_one_flush_leaves_one_subscribe() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(
            &[
                change("cy", Direction::In, "e1", T0),
                change("cy", Direction::Out, "e2", T0 + 1),
                change("cy", Direction::In, "e3", T0 + 2),
            ],
            T0,
        )
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert!(
        store
            .claim(aud.id, Direction::Out, T0, 10)
            .unwrap()
            .is_empty()
    );
    let rows = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row.version, 3);
    assert_eq!(store.backlog(), 1);
}

#[test]
fn duplicate_message_id_is_applied_once_per_destination() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = store
        .accept(&[change("dee", Direction::In, "dup", T0)], T0)
        .unwrap();
    // Same id again, even with another state and a later time: ignored.
    let again = store
        .accept(
            &[
                change("dee", Direction::Out, "dup", T0 + 5),
                change("dee", Direction::Out, "dup", T0 + 6),
            ],
            T0 + 1,
        )
        .unwrap();
    assert_eq!(first, vec![AcceptOutcome::Applied { version: 1 }]);
    assert_eq!(
        again,
        vec![AcceptOutcome::Duplicate, AcceptOutcome::Duplicate]
    );
    // Another destination has its own de-duplication memory.
    let mut other = change("dee", Direction::In, "dup", T0);
    other.destination = "other".into();
    assert_eq!(
        store.accept(&[other], T0 + 2).unwrap(),
        vec![AcceptOutcome::Applied { version: 1 }]
    );
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert_eq!(
        store
            .claim(aud.id, Direction::In, T0 + 2, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim(aud.id, Direction::Out, T0 + 2, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn confirm_cleans_a_row_only_at_the_version_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(&[change("eve", Direction::In, "v1", T0)], T0)
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let sent = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    assert_eq!(sent.len(), 1);
    // A claimed row is not claimed twice.
    assert!(
        store
            .claim(aud.id, Direction::In, T0, 10)
            .unwrap()
            .is_empty()
    );
    // A newer event arrives while the request is out.
    store
        .accept(&[change("eve", Direction::Out, "v2", T0 + 1)], T0 + 1)
        .unwrap();
    let refs: Vec<_> = sent.iter().map(|r| r.row.clone()).collect();
    assert_eq!(store.confirm(&refs, "req-1", T0 + 2).unwrap(), vec![false]);
    assert_eq!(store.backlog(), 1);
    let next = store.claim(aud.id, Direction::Out, T0 + 2, 10).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].row.version, 2);
    let refs: Vec<_> = next.iter().map(|r| r.row.clone()).collect();
    assert_eq!(store.confirm(&refs, "req-2", T0 + 3).unwrap(), vec![true]);
    assert_eq!(store.backlog(), 0);
    assert_eq!(store.count_backlog().unwrap(), 0);
    let delivered = log_of(&store, "v2");
    assert_eq!(delivered.outcome, Outcome::Delivered);
    assert_eq!(delivered.request_id.as_deref(), Some("req-2"));
    // The superseded first event stays skipped: final outcomes are never rewritten.
    assert_eq!(log_of(&store, "v1").outcome, Outcome::Skipped);
}

#[test]
fn retry_waits_for_next_attempt_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(&[change("fay", Direction::In, "r1", T0)], T0)
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let rows = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
    store
        .retry(
            &refs,
            T0 + 30_000,
            "rate_limited",
            "429 from Iterable",
            T0 + 1,
        )
        .unwrap();
    assert!(
        store
            .claim(aud.id, Direction::In, T0 + 29_999, 10)
            .unwrap()
            .is_empty()
    );
    assert!(store.due(T0 + 29_999, 1000).unwrap().is_empty());
    let entry = log_of(&store, "r1");
    assert_eq!(entry.outcome, Outcome::Retrying);
    assert_eq!(entry.next_attempt, Some(T0 + 30_000));
    let due = store.due(T0 + 30_000, 1000).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].oldest_due_at, T0 + 30_000);
    let again = store.claim(aud.id, Direction::In, T0 + 30_000, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
}

#[test]
fn due_lists_audiences_and_directions_oldest_first_with_capped_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.push(change(
            &format!("in{i}"),
            Direction::In,
            &format!("i{i}"),
            T0,
        ));
    }
    let mut other = change("o", Direction::Out, "o1", T0);
    other.audience_key = "churned".into();
    store.accept(&[other], T0 - 100).unwrap();
    store.accept(&batch, T0).unwrap();
    let due = store.due(T0, 3).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].audience_key, "churned");
    assert_eq!(due[0].direction, Direction::Out);
    assert_eq!(due[0].oldest_due_at, T0 - 100);
    assert_eq!(due[1].audience_key, "vip");
    assert_eq!(due[1].count, 3);
    // Claims take the oldest first and at most the limit.
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert_eq!(store.claim(aud.id, Direction::In, T0, 2).unwrap().len(), 2);
    assert_eq!(store.claim(aud.id, Direction::In, T0, 10).unwrap().len(), 3);
}

#[test]
fn rejected_rows_are_kept_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(
            &[
                change("gus", Direction::In, "g1", T0),
                change("hal", Direction::In, "h1", T0),
            ],
            T0,
        )
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let rows = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    let (gus, hal): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.row.identity == "gus");
    store
        .reject(
            &[gus[0].row.clone()],
            "invalid_email",
            "invalid email address",
            T0 + 1,
        )
        .unwrap();
    store.confirm(&[hal[0].row.clone()], "req", T0 + 1).unwrap();
    assert_eq!(store.backlog(), 0);
    let rejected = store
        .log(&LogQuery {
            destination: Some("iterable".into()),
            audience_key: Some("vip".into()),
            outcome: Some(Outcome::Rejected),
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].message_id, "g1");
    assert_eq!(rejected[0].reason.as_deref(), Some("invalid email address"));

    assert_eq!(
        store
            .replay_rejected("iterable", Some("vip"), T0 + 2)
            .unwrap(),
        1
    );
    assert_eq!(store.backlog(), 1);
    assert_eq!(log_of(&store, "g1").outcome, Outcome::Pending);
    let again = store.claim(aud.id, Direction::In, T0 + 2, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].row.identity, "gus");
    // Nothing left to replay.
    assert_eq!(store.replay_rejected("iterable", None, T0 + 3).unwrap(), 0);
}

#[test]
fn subscribe_sent_is_recorded_and_reset_for_a_new_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(
            &[
                change("ida", Direction::In, "s1", T0),
                change("jon", Direction::Out, "s2", T0),
            ],
            T0,
        )
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    store.set_list(aud.id, Some(42), true).unwrap();
    let rows = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    assert!(!rows[0].subscribe_sent);
    let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
    store.mark_subscribe_sent(&refs).unwrap();
    store.confirm(&refs, "req", T0 + 1).unwrap();

    // The list disappears and is re-created: members' rows are kept, `in` rows are dirty again,
    // and nothing counts as sent to the new list.
    store.set_list(aud.id, Some(43), true).unwrap();
    assert_eq!(store.mark_in_dirty(aud.id, T0 + 2).unwrap(), 1);
    let audience = store.audience(aud.id).unwrap();
    assert_eq!(audience.list_id, Some(43));
    assert!(audience.list_created);
    let again = store.claim(aud.id, Direction::In, T0 + 2, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].row.identity, "ida");
    assert!(!again[0].subscribe_sent);
}

#[test]
fn audience_settings_from_events_and_operator_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut c = change("kim", Direction::In, "a1", T0);
    c.audience_settings = Some(json!({"updateExistingUsersOnly": true}));
    c.data_fields = Some(json!({"plan": "gold"}));
    store.accept(&[c], T0).unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert_eq!(
        aud.event_settings,
        Some(json!({"updateExistingUsersOnly": true}))
    );
    store
        .set_settings(aud.id, Some(&json!({"channelId": 7})))
        .unwrap();
    assert_eq!(
        store.audience(aud.id).unwrap().settings,
        Some(json!({"channelId": 7}))
    );
    let rows = store.claim(aud.id, Direction::In, T0, 1).unwrap();
    assert_eq!(rows[0].data_fields, Some(json!({"plan": "gold"})));
    assert_eq!(rows[0].email.as_deref(), Some("kim@example.com"));
}

#[test]
fn busy_when_backlog_reaches_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("ledger.db"),
        SqliteOptions {
            backlog_bound: 2,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    store
        .accept(
            &[
                change("a", Direction::In, "1", T0),
                change("b", Direction::In, "2", T0),
            ],
            T0,
        )
        .unwrap();
    match store.accept(&[change("c", Direction::In, "3", T0)], T0) {
        Err(StoreError::Busy { backlog, bound }) => assert_eq!((backlog, bound), (2, 2)),
        other => panic!("expected busy, got {other:?}"),
    }
    // Nothing of the refused batch was written.
    assert!(
        store
            .log(&LogQuery::default())
            .unwrap()
            .iter()
            .all(|e| e.message_id != "3")
    );
    // Delivering drains the backlog and accepting works again.
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let refs: Vec<_> = store
        .claim(aud.id, Direction::In, T0, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    store.confirm(&refs, "req", T0).unwrap();
    assert!(
        store
            .accept(&[change("c", Direction::In, "3", T0)], T0)
            .is_ok()
    );
}

#[test]
fn data_persists_after_reopen_and_claims_are_freed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store
            .accept(
                &[
                    change("lou", Direction::In, "p1", T0),
                    change("max", Direction::Out, "p2", T0),
                ],
                T0,
            )
            .unwrap();
        let aud = store.ensure_audience("iterable", "vip").unwrap();
        store.set_list(aud.id, Some(9), false).unwrap();
        // Claimed, then the process goes away before any result.
        assert_eq!(store.claim(aud.id, Direction::In, T0, 10).unwrap().len(), 1);
        store
            .kv_set("rate", "project-a", Some(&json!({"per_second": 7.5})))
            .unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.backlog(), 2);
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    assert_eq!(aud.list_id, Some(9));
    assert_eq!(store.claim(aud.id, Direction::In, T0, 10).unwrap().len(), 1);
    assert_eq!(
        store.kv_get("rate", "project-a").unwrap(),
        Some(json!({"per_second": 7.5}))
    );
    // De-duplication memory survives too.
    assert_eq!(
        store
            .accept(&[change("lou", Direction::Out, "p1", T0 + 9)], T0 + 9)
            .unwrap(),
        vec![AcceptOutcome::Duplicate]
    );
    store.kv_set("rate", "project-a", None).unwrap();
    assert_eq!(store.kv_get("rate", "project-a").unwrap(), None);
}

#[test]
fn second_open_of_a_held_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&dir);
    match SqliteStore::open(dir.path().join("ledger.db"), SqliteOptions::default()) {
        Err(StoreError::Locked { path }) => assert_eq!(path, dir.path().join("ledger.db")),
        other => panic!("expected a lock refusal, got {other:?}"),
    }
    drop(first);
    // Released with the store.
    assert!(SqliteStore::open(dir.path().join("ledger.db"), SqliteOptions::default()).is_ok());
}

#[test]
fn compaction_removes_old_log_entries_and_old_confirmed_out_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    const DAY: i64 = 24 * 3600 * 1000;
    store
        .accept(
            &[
                change("old-out", Direction::Out, "c1", T0),
                change("old-in", Direction::In, "c2", T0),
            ],
            T0,
        )
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    for dir in [Direction::Out, Direction::In] {
        let refs: Vec<_> = store
            .claim(aud.id, dir, T0, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.row)
            .collect();
        store.confirm(&refs, "req", T0).unwrap();
    }
    store
        .accept(
            &[change("new", Direction::In, "c3", T0 + 10 * DAY)],
            T0 + 10 * DAY,
        )
        .unwrap();
    let retention = Retention {
        dedup_window_ms: 7 * DAY,
        log_max_age_ms: 7 * DAY,
        log_max_entries: 1_000,
        out_rows_max_age_ms: 5 * DAY,
    };
    let stats = store.compact(&retention, T0 + 10 * DAY).unwrap();
    assert_eq!(stats.log_entries_removed, 2);
    assert_eq!(stats.out_rows_removed, 1);
    let left: Vec<_> = store
        .log(&LogQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(left, vec!["c3".to_string()]);
    // Outside the window an old messageId is new again.
    assert_eq!(
        store
            .accept(
                &[change("old-in", Direction::Out, "c2", T0 + 11 * DAY)],
                T0 + 11 * DAY
            )
            .unwrap(),
        vec![AcceptOutcome::Applied { version: 2 }]
    );
}

#[test]
fn size_bound_never_cuts_into_the_dedup_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let batch: Vec<_> = (0..10)
        .map(|i| change(&format!("u{i}"), Direction::In, &format!("m{i}"), T0))
        .collect();
    store.accept(&batch, T0).unwrap();
    let mut retention = Retention {
        log_max_entries: 4,
        ..Retention::default()
    };
    let stats = store.compact(&retention, T0 + 1).unwrap();
    assert_eq!(stats.log_entries_removed, 0);
    assert_eq!(stats.log_entries_over_bound, 6);
    // Once the window has passed, the size bound applies: the oldest go first.
    retention.dedup_window_ms = 0;
    retention.log_max_age_ms = i64::MAX / 4;
    let stats = store.compact(&retention, T0 + 1).unwrap();
    assert_eq!(stats.log_entries_removed, 6);
    let left: Vec<_> = store
        .log(&LogQuery::default())
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    assert_eq!(left, vec!["m9", "m8", "m7", "m6"]);
}

#[test]
fn status_counts_pending_per_list_and_direction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut batch = vec![
        change("a", Direction::In, "1", T0),
        change("b", Direction::In, "2", T0),
        change("c", Direction::Out, "3", T0),
    ];
    let mut other = change("d", Direction::In, "4", T0);
    other.audience_key = "trial".into();
    batch.push(other);
    store.accept(&batch, T0).unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    store.set_list(aud.id, Some(5), false).unwrap();
    let status = store.status().unwrap();
    assert_eq!(status.backlog, 4);
    let summary: Vec<_> = status
        .pending
        .iter()
        .map(|p| (p.audience_key.as_str(), p.list_id, p.direction, p.pending))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("trial", None, Direction::In, 1),
            ("vip", Some(5), Direction::Out, 1),
            ("vip", Some(5), Direction::In, 2),
        ]
    );
}

#[test]
fn final_events_are_logged_and_queryable_by_identity() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .record_final(
            &[store::FinalEvent {
                destination: "iterable".into(),
                audience_key: None,
                identity: None,
                message_id: "anon".into(),
                outcome: Outcome::Skipped,
                reason_code: "no_identifier".into(),
                reason: "only an anonymousId".into(),
            }],
            T0,
        )
        .unwrap();
    store
        .accept(&[change("zed", Direction::In, "z1", T0)], T0)
        .unwrap();
    let skipped = log_of(&store, "anon");
    assert_eq!(skipped.outcome, Outcome::Skipped);
    assert_eq!(skipped.reason_code.as_deref(), Some("no_identifier"));
    let by_identity = store
        .log(&LogQuery {
            identity: Some("zed".into()),
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(by_identity.len(), 1);
    assert_eq!(by_identity[0].audience_key.as_deref(), Some("vip"));
}

#[test]
fn skipped_results_clean_the_row_and_log_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(&[change("nia", Direction::Out, "x1", T0)], T0)
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let refs: Vec<_> = store
        .claim(aud.id, Direction::Out, T0, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    let cleaned = store
        .settle_skipped(
            &refs,
            "not_found",
            "not found in Iterable on unsubscribe",
            Some("req-9"),
            T0 + 1,
        )
        .unwrap();
    assert_eq!(cleaned, vec![true]);
    assert_eq!(store.backlog(), 0);
    let entry = log_of(&store, "x1");
    assert_eq!(entry.outcome, Outcome::Skipped);
    assert_eq!(entry.reason_code.as_deref(), Some("not_found"));
    assert_eq!(entry.request_id.as_deref(), Some("req-9"));
}

#[test]
fn released_rows_can_be_claimed_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .accept(&[change("oli", Direction::In, "y1", T0)], T0)
        .unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let refs: Vec<_> = store
        .claim(aud.id, Direction::In, T0, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    assert!(
        store
            .claim(aud.id, Direction::In, T0, 10)
            .unwrap()
            .is_empty()
    );
    store.release(&refs).unwrap();
    assert_eq!(store.claim(aud.id, Direction::In, T0, 10).unwrap().len(), 1);
}

#[test]
fn backlog_counter_matches_the_rows_on_disk_through_every_transition() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let batch: Vec<_> = (0..20)
        .map(|i| {
            let dir = if i % 3 == 0 {
                Direction::Out
            } else {
                Direction::In
            };
            change(&format!("p{i}"), dir, &format!("q{i}"), T0 + i)
        })
        .collect();
    store.accept(&batch, T0).unwrap();
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let check = |store: &SqliteStore| assert_eq!(store.backlog(), store.count_backlog().unwrap());
    check(&store);
    let rows: Vec<_> = store
        .claim(aud.id, Direction::In, T0 + 100, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    store.confirm(&rows[..4], "r", T0 + 101).unwrap();
    check(&store);
    store.reject(&rows[4..6], "bad", "bad", T0 + 101).unwrap();
    check(&store);
    store
        .retry(&rows[6..], T0 + 500, "down", "down", T0 + 101)
        .unwrap();
    check(&store);
    // New events on clean, rejected and dirty rows.
    let more: Vec<_> = ["p1", "p4", "p7", "p0"]
        .iter()
        .enumerate()
        .map(|(n, id)| change(id, Direction::Out, &format!("late{n}"), T0 + 1000))
        .collect();
    store.accept(&more, T0 + 102).unwrap();
    check(&store);
    store.mark_in_dirty(aud.id, T0 + 103).unwrap();
    check(&store);
    store.replay_rejected("iterable", None, T0 + 104).unwrap();
    check(&store);
    drop(store);
    let store = open(&dir);
    check(&store);
}
