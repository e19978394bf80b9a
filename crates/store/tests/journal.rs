//! The accept journal: accepted changes reach the ledger exactly as if accept had written them
//! there itself, before any delivery read, and after a crash between accept and apply.

use rusqlite::Connection;
use store::{
    AcceptOutcome, Change, Direction, FinalEvent, LogQuery, Outcome, SqliteOptions, SqliteStore,
    Store, Synchronous,
};

const T0: i64 = 1_700_000_000_000;

fn change(audience: &str, identity: &str, direction: Direction, id: &str, ts: i64) -> Change {
    Change {
        destination: "iterable".into(),
        audience_key: audience.into(),
        identity: identity.into(),
        email: Some(format!("{identity}@example.com")),
        user_id: None,
        direction,
        data_fields: Some(serde_json::json!({ "id": id })),
        message_id: id.into(),
        timestamp: ts,
        audience_settings: None,
    }
}

/// A small deterministic generator, so that the workload is the same in both stores.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One step of the workload.
enum Step {
    Accept(Vec<Change>),
    Final(Vec<FinalEvent>),
    /// Claim up to 3 rows of an audience and direction, then confirm, retry or reject them.
    Deliver(usize, Direction, u64),
}

/// Churn, out-of-order timestamps, duplicates inside and across batches, events that end
/// before the ledger, and delivery in between.
fn workload(seed: u64) -> Vec<Step> {
    let mut rng = Lcg(seed);
    let mut steps = Vec::new();
    let mut next_id = 0u64;
    for _ in 0..60 {
        match rng.next(6) {
            0 => {
                let events = (0..rng.next(4) + 1)
                    .map(|_| {
                        next_id += 1;
                        let id = if rng.next(4) == 0 && next_id > 1 {
                            format!("m{}", rng.next(next_id))
                        } else {
                            format!("m{next_id}")
                        };
                        FinalEvent {
                            destination: "iterable".into(),
                            audience_key: None,
                            identity: Some("x".into()),
                            message_id: id,
                            outcome: Outcome::Skipped,
                            reason_code: "not_audience_event".into(),
                            reason: "not an audience event".into(),
                        }
                    })
                    .collect();
                steps.push(Step::Final(events));
            }
            1 => steps.push(Step::Deliver(
                rng.next(2) as usize,
                if rng.next(2) == 0 {
                    Direction::In
                } else {
                    Direction::Out
                },
                rng.next(3),
            )),
            _ => {
                let batch = (0..rng.next(8) + 1)
                    .map(|_| {
                        next_id += 1;
                        // A quarter of the ids repeat an earlier one.
                        let id = if rng.next(4) == 0 && next_id > 1 {
                            format!("m{}", rng.next(next_id))
                        } else {
                            format!("m{next_id}")
                        };
                        let audience = ["vip", "churned"][rng.next(2) as usize];
                        let identity = format!("u{}", rng.next(6));
                        let direction = if rng.next(2) == 0 {
                            Direction::In
                        } else {
                            Direction::Out
                        };
                        // Timestamps move forward with some events arriving late.
                        let ts = T0 + next_id as i64 * 10 - rng.next(50) as i64;
                        change(audience, &identity, direction, &id, ts)
                    })
                    .collect();
                steps.push(Step::Accept(batch));
            }
        }
    }
    steps
}

/// Runs the workload and returns everything observable: accept outcomes, claims, result
/// calls, and at the end the whole log, the status and the ledger rows.
fn observe(store: &SqliteStore, steps: &[Step]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut now = T0;
    for step in steps {
        now += 7;
        match step {
            Step::Accept(batch) => {
                let out = store.accept(batch, now).unwrap();
                seen.push(format!("accept {out:?}"));
            }
            Step::Final(events) => {
                store.record_final(events, now).unwrap();
                seen.push("final".into());
            }
            Step::Deliver(audience, direction, result) => {
                let key = ["vip", "churned"][*audience];
                let aud = store.ensure_audience("iterable", key).unwrap();
                let rows = store.claim(aud.id, *direction, now, 3).unwrap();
                seen.push(format!("claim {rows:?}"));
                let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
                match result {
                    0 => seen.push(format!("confirm {:?}", store.confirm(&refs, "r", now))),
                    1 => {
                        store
                            .retry(&refs, now + 20, "http_503", "down", now)
                            .unwrap();
                        seen.push("retry".into());
                    }
                    _ => seen.push(format!("reject {:?}", store.reject(&refs, "x", "bad", now))),
                }
            }
        }
        seen.push(format!("backlog {}", store.backlog()));
    }
    let log = store
        .log(&LogQuery {
            limit: 100_000,
            ..LogQuery::default()
        })
        .unwrap();
    for e in log {
        seen.push(format!("{e:?}"));
    }
    seen.push(format!("{:?}", store.status().unwrap()));
    seen.push(format!("{:?}", store.due(now + 1000, 1000).unwrap()));
    seen.push(format!("{}", store.count_backlog().unwrap()));
    seen
}

fn ledger_rows(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT * FROM members ORDER BY audience_id, identity")
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let mut row = String::new();
        for i in 0..n {
            row.push_str(&format!("{:?},", r.get_ref(i)?));
        }
        Ok(row)
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn journaled_accept_is_indistinguishable_from_writing_the_ledger_directly() {
    for seed in [1, 2, 3, 4, 5] {
        let dir = tempfile::tempdir().unwrap();
        let steps = workload(seed);
        let direct_path = dir.path().join("direct.db");
        let journal_path = dir.path().join("journal.db");
        let tiny_path = dir.path().join("tiny.db");
        let run = |path: &std::path::Path, journal_max_entries: u64| {
            let store = SqliteStore::open(
                path,
                SqliteOptions {
                    journal_max_entries,
                    // Durability is not what this test is about; fsyncs would only slow it.
                    synchronous: Synchronous::Normal,
                    ..SqliteOptions::default()
                },
            )
            .unwrap();
            observe(&store, &steps)
        };
        let direct = run(&direct_path, 0);
        // A journal bound smaller than some batches forces applies inside accept.
        for (path, bound) in [(&journal_path, 100_000), (&tiny_path, 3)] {
            let journaled = run(path, bound);
            assert_eq!(direct.len(), journaled.len());
            for (d, j) in direct.iter().zip(&journaled) {
                assert_eq!(d, j, "seed {seed}, journal bound {bound}");
            }
            assert_eq!(ledger_rows(&direct_path), ledger_rows(path), "seed {seed}");
        }
    }
}

fn journal_len(path: &std::path::Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn changes_accepted_but_not_applied_when_the_process_ends_are_applied_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let out = store
            .accept(
                &[
                    change("vip", "ann", Direction::In, "a1", T0),
                    change("vip", "bob", Direction::In, "b1", T0),
                    change("vip", "ann", Direction::Out, "a2", T0 + 1),
                ],
                T0,
            )
            .unwrap();
        assert_eq!(
            out,
            vec![
                AcceptOutcome::Applied { version: 1 },
                AcceptOutcome::Applied { version: 1 },
                AcceptOutcome::Applied { version: 2 },
            ]
        );
        // Dropped without any delivery call: the changes are only in the journal, as after
        // a kill -9 right after the acknowledgement.
    }
    assert_eq!(journal_len(&path), 3);
    assert!(ledger_rows(&path).is_empty());

    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(journal_len(&path), 0);
    assert_eq!(store.backlog(), 2);
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let ins = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].row.identity, "bob");
    let outs = store.claim(aud.id, Direction::Out, T0, 10).unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(
        (outs[0].row.identity.as_str(), outs[0].row.version),
        ("ann", 2)
    );
    // The de-duplication memory came back too.
    assert_eq!(
        store
            .accept(&[change("vip", "bob", Direction::Out, "b1", T0 + 5)], T0)
            .unwrap(),
        vec![AcceptOutcome::Duplicate]
    );
}

#[test]
fn delivery_reads_see_changes_accepted_just_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ledger.db"), SqliteOptions::default()).unwrap();
    store
        .accept(&[change("vip", "cy", Direction::In, "c1", T0)], T0)
        .unwrap();
    let due = store.due(T0, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].count, 1);
    let status = store.status().unwrap();
    assert_eq!(status.pending.len(), 1);
    assert_eq!(status.pending[0].pending, 1);
    // A change accepted while the row is claimed makes the confirm of the old version fail.
    let aud = store.ensure_audience("iterable", "vip").unwrap();
    let rows = store.claim(aud.id, Direction::In, T0, 10).unwrap();
    store
        .accept(&[change("vip", "cy", Direction::Out, "c2", T0 + 1)], T0 + 1)
        .unwrap();
    let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
    assert_eq!(store.confirm(&refs, "req", T0 + 2).unwrap(), vec![false]);
}

#[test]
fn a_store_written_by_the_previous_schema_is_upgraded_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let store = SqliteStore::open(
            &path,
            SqliteOptions {
                journal_max_entries: 0,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        store
            .accept(&[change("vip", "dee", Direction::In, "d1", T0)], T0)
            .unwrap();
    }
    // Back to schema 1: no journal table.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE journal; DELETE FROM schema_version WHERE version > 1;")
            .unwrap();
    }
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(journal_len(&path), 0);
    assert_eq!(
        store
            .accept(
                &[
                    change("vip", "dee", Direction::Out, "d1", T0 + 1),
                    change("vip", "dee", Direction::Out, "d2", T0 + 1),
                ],
                T0 + 1
            )
            .unwrap(),
        vec![
            AcceptOutcome::Duplicate,
            AcceptOutcome::Applied { version: 2 }
        ]
    );
}
