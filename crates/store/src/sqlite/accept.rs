//! Accepting batches of membership changes, and events that end before the ledger.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::journal::{HashKeyed, PendingRow, row_hash};
use super::{Inner, SqliteStore, json_text, sql};
use crate::StoreError;
use crate::types::{AcceptOutcome, AudienceId, Change, FinalEvent, Millis, Outcome};

const SUPERSEDED_ON_ARRIVAL: &str = "a newer event for this identity was already received";

pub(super) fn accept(
    store: &SqliteStore,
    batch: &[Change],
    now: Millis,
) -> Result<Vec<AcceptOutcome>, StoreError> {
    let mut inner = store.inner.lock();
    if inner.backlog >= store.backlog_bound {
        return Err(StoreError::Busy {
            backlog: inner.backlog,
            bound: store.backlog_bound,
        });
    }
    // Audience ids first (rarely new), then the batch in one transaction.
    let mut ids = Vec::with_capacity(batch.len());
    let mut settings_updates: Vec<(i64, String)> = Vec::new();
    for c in batch {
        let aid = inner.ensure_audience_id(&c.destination, &c.audience_key)?;
        let dest = inner.dest_of(AudienceId(aid))?;
        if let Some(s) = &c.audience_settings {
            let text = s.to_string();
            let cached = inner
                .by_id
                .get(&aid)
                .and_then(|a| a.event_settings.as_ref());
            if cached != Some(&text) {
                settings_updates.retain(|(id, _)| *id != aid);
                settings_updates.push((aid, text));
            }
        }
        ids.push((dest, aid));
    }
    if store.journal_max_entries > 0 {
        // A bounded journal keeps the overlay's memory bounded however large the backlog.
        if inner.overlay.entries + batch.len() as u64 > store.journal_max_entries {
            inner.apply_journal()?;
        }
        if let Some(outcomes) = accept_journaled(&mut inner, batch, &ids, &settings_updates, now)? {
            inner.cache_settings(settings_updates);
            return Ok(outcomes);
        }
    }
    inner.apply_journal()?;
    accept_direct(&mut inner, batch, &ids, settings_updates, now)
}

/// What the journal path decided about a key it looked up, before the batch commits.
enum Seen {
    /// The `messageId` was accepted before.
    Duplicate,
    /// Not seen: a new event.
    New,
    /// Two keys share a 64-bit hash in the overlay: the overlay cannot answer.
    Collision,
}

/// Appends the batch to the journal and the log, deciding each outcome from the ledger (point
/// reads) and the overlay. `None` (nothing written) when a hash collision means the overlay
/// cannot answer.
fn accept_journaled(
    inner: &mut Inner,
    batch: &[Change],
    ids: &[(i64, i64)],
    settings_updates: &[(i64, String)],
    now: Millis,
) -> Result<Option<Vec<AcceptOutcome>>, StoreError> {
    let mut seq = inner.seq;
    let mut added: u64 = 0;
    let mut outcomes = Vec::with_capacity(batch.len());
    // This batch's additions to the overlay, merged only once the transaction commits.
    let mut rows: HashKeyed<u64, PendingRow> = HashKeyed::default();
    let mut messages: HashKeyed<i64, i64> = HashKeyed::default();
    let overlay = &inner.overlay;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_event = tx.prepare_cached(sql::INSERT_EVENT)?;
        let mut insert_journal = tx.prepare_cached(sql::INSERT_JOURNAL)?;
        let mut select = tx.prepare_cached(sql::SELECT_MEMBER_ORDER)?;
        let mut seen_get = tx.prepare_cached(sql::SEEN_GET)?;
        let mut event_key = tx.prepare_cached(sql::EVENT_KEY)?;
        let mut journal_key = tx.prepare_cached(sql::JOURNAL_KEY)?;
        for (c, (dest, aid)) in batch.iter().zip(ids) {
            seq += 1;
            let h = message_hash(*dest, &c.message_id);
            let pending = messages
                .get(&h)
                .or_else(|| overlay.messages.get(&h))
                .copied();
            match check_message(
                &mut seen_get,
                &mut event_key,
                pending,
                h,
                *dest,
                &c.message_id,
            )? {
                Seen::Duplicate => {
                    outcomes.push(AcceptOutcome::Duplicate);
                    continue;
                }
                Seen::Collision => return Ok(None),
                Seen::New => {}
            }
            messages.insert(h, seq);
            let rh = row_hash(*aid, &c.identity);
            let current = match rows.get(&rh).or_else(|| overlay.rows.get(&rh)).copied() {
                Some(p) => {
                    let key: Option<(i64, String)> = journal_key
                        .query_row([p.seq], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    match key {
                        Some((a, i)) if a == *aid && i == c.identity => {
                            Some((p.event_ts, p.seq, p.version, true, p.next_attempt))
                        }
                        _ => return Ok(None),
                    }
                }
                None => select
                    .query_row(params![aid, c.identity], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)? != 0,
                            r.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()?,
            };
            // Older than what the ledger holds: it loses (equal times: arrival order).
            let (version, due, prev_seq) = match current {
                Some((ts, ..)) if c.timestamp < ts => (0, now, None),
                // A dirty row keeps its place in line (and any backoff).
                Some((_, prev, version, dirty, next_attempt)) => {
                    if !dirty {
                        added += 1;
                    }
                    (
                        version + 1,
                        if dirty { next_attempt } else { now },
                        Some(prev),
                    )
                }
                None => {
                    added += 1;
                    (1, now, None)
                }
            };
            let (outcome, reason_code, reason) = if version == 0 {
                (
                    Outcome::Skipped,
                    Some("superseded"),
                    Some(SUPERSEDED_ON_ARRIVAL),
                )
            } else {
                (Outcome::Pending, None, None)
            };
            insert_event.execute(params![
                seq,
                dest,
                c.message_id,
                aid,
                c.identity,
                outcome.as_int(),
                reason_code,
                reason,
                now
            ])?;
            insert_journal.execute(params![
                seq,
                h,
                aid,
                c.identity,
                c.direction.as_int(),
                c.email,
                c.user_id,
                json_text(c.data_fields.as_ref()),
                c.timestamp,
                c.message_id,
                version,
                due,
                prev_seq,
                now
            ])?;
            if version == 0 {
                outcomes.push(AcceptOutcome::Superseded);
            } else {
                rows.insert(
                    rh,
                    PendingRow {
                        seq,
                        event_ts: c.timestamp,
                        version,
                        next_attempt: due,
                    },
                );
                outcomes.push(AcceptOutcome::Applied { version });
            }
        }
        write_settings(&tx, settings_updates)?;
    }
    tx.commit()?;
    inner.seq = seq;
    inner.backlog += added;
    inner.overlay.entries += messages.len() as u64;
    inner.overlay.rows.extend(rows);
    inner.overlay.messages.extend(messages);
    Ok(Some(outcomes))
}

/// Events that ended before the ledger, appended to the log and the journal (for their
/// de-duplication key). False (nothing written) on a hash collision in the overlay.
fn record_final_journaled(
    inner: &mut Inner,
    events: &[FinalEvent],
    ids: &[(i64, Option<i64>)],
    now: Millis,
) -> Result<bool, StoreError> {
    let mut seq = inner.seq;
    let mut messages: HashKeyed<i64, i64> = HashKeyed::default();
    let overlay = &inner.overlay;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_event = tx.prepare_cached(sql::INSERT_EVENT)?;
        let mut insert_journal = tx.prepare_cached(sql::INSERT_JOURNAL)?;
        let mut seen_get = tx.prepare_cached(sql::SEEN_GET)?;
        let mut event_key = tx.prepare_cached(sql::EVENT_KEY)?;
        for (e, (dest, aid)) in events.iter().zip(ids) {
            seq += 1;
            let h = message_hash(*dest, &e.message_id);
            let pending = messages
                .get(&h)
                .or_else(|| overlay.messages.get(&h))
                .copied();
            match check_message(
                &mut seen_get,
                &mut event_key,
                pending,
                h,
                *dest,
                &e.message_id,
            )? {
                Seen::Duplicate => continue,
                Seen::Collision => return Ok(false),
                Seen::New => {}
            }
            messages.insert(h, seq);
            insert_event.execute(params![
                seq,
                dest,
                e.message_id,
                aid,
                e.identity,
                e.outcome.as_int(),
                e.reason_code,
                e.reason,
                now
            ])?;
            insert_journal.execute(params![
                seq,
                h,
                aid.unwrap_or(0),
                "",
                0,
                Option::<&str>::None,
                Option::<&str>::None,
                Option::<&str>::None,
                0,
                e.message_id,
                0,
                now,
                Option::<i64>::None,
                now
            ])?;
        }
    }
    tx.commit()?;
    inner.seq = seq;
    inner.overlay.entries += messages.len() as u64;
    inner.overlay.messages.extend(messages);
    Ok(true)
}

/// Whether `(destination, messageId)` was accepted before: first the journal's entry with the
/// same hash (`pending`), then the `seen` table, read only (applying the journal inserts it).
fn check_message(
    seen_get: &mut rusqlite::CachedStatement<'_>,
    event_key: &mut rusqlite::CachedStatement<'_>,
    pending: Option<i64>,
    h: i64,
    dest: i64,
    message_id: &str,
) -> Result<Seen, StoreError> {
    let same = |event_key: &mut rusqlite::CachedStatement<'_>, seq: i64| {
        event_key
            .query_row([seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()
            .map(|k| k.map(|(d, m)| d == dest && m == message_id))
    };
    if let Some(seq) = pending {
        return Ok(match same(event_key, seq)? {
            Some(true) => Seen::Duplicate,
            _ => Seen::Collision,
        });
    }
    for probe in 0..64i64 {
        let key = h.wrapping_add(probe);
        let found: Option<i64> = seen_get.query_row([key], |r| r.get(0)).optional()?;
        let Some(other) = found else {
            return Ok(Seen::New);
        };
        match same(event_key, other)? {
            Some(true) => return Ok(Seen::Duplicate),
            Some(false) => continue,
            // As in `remember_message`: a key whose log entry is gone counts as seen.
            None => return Ok(Seen::Duplicate),
        }
    }
    Ok(Seen::New)
}

fn write_settings(tx: &Transaction<'_>, updates: &[(i64, String)]) -> Result<(), StoreError> {
    let mut set_settings = tx.prepare_cached(sql::SET_EVENT_SETTINGS)?;
    for (aid, text) in updates {
        set_settings.execute(params![aid, text])?;
    }
    Ok(())
}

impl Inner {
    /// Remembers committed `audience_settings` so that unchanged ones are not rewritten.
    fn cache_settings(&mut self, updates: Vec<(i64, String)>) {
        for (aid, text) in updates {
            if let Some(a) = self.by_id.get_mut(&aid) {
                a.event_settings = Some(text);
            }
        }
    }
}

/// Writes the batch straight into the ledger and the de-duplication memory (one random page
/// per event per B-tree). Used when the journal is disabled or a hash collision makes the
/// overlay unable to answer; the journal must be empty.
fn accept_direct(
    inner: &mut Inner,
    batch: &[Change],
    ids: &[(i64, i64)],
    settings_updates: Vec<(i64, String)>,
    now: Millis,
) -> Result<Vec<AcceptOutcome>, StoreError> {
    let mut seq = inner.seq;
    let mut added: u64 = 0;
    let mut outcomes = Vec::with_capacity(batch.len());
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert_event = tx.prepare_cached(sql::INSERT_EVENT)?;
        let mut skip_event = tx.prepare_cached(sql::SET_EVENT_SKIPPED)?;
        let mut select = tx.prepare_cached(sql::SELECT_MEMBER_ORDER)?;
        let mut insert = tx.prepare_cached(sql::INSERT_MEMBER)?;
        let mut update = tx.prepare_cached(sql::UPDATE_MEMBER)?;
        let mut seen_get = tx.prepare_cached(sql::SEEN_GET)?;
        let mut seen_insert = tx.prepare_cached(sql::SEEN_INSERT)?;
        let mut event_key = tx.prepare_cached(sql::EVENT_KEY)?;
        for (c, (dest, aid)) in batch.iter().zip(ids) {
            seq += 1;
            let first = remember_message(
                &mut seen_get,
                &mut seen_insert,
                &mut event_key,
                *dest,
                &c.message_id,
                seq,
            )?;
            if !first {
                outcomes.push(AcceptOutcome::Duplicate);
                continue;
            }
            insert_event.execute(params![
                seq,
                dest,
                c.message_id,
                aid,
                c.identity,
                Outcome::Pending.as_int(),
                Option::<&str>::None,
                Option::<&str>::None,
                now
            ])?;
            let current = select
                .query_row(params![aid, c.identity], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)? != 0,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()?;
            let data = json_text(c.data_fields.as_ref());
            match current {
                // Older than what the ledger holds: it loses (equal times: arrival order).
                Some((ts, ..)) if c.timestamp < ts => {
                    skip_event.execute(params![
                        seq,
                        "superseded",
                        "a newer event for this identity was already received",
                        now
                    ])?;
                    outcomes.push(AcceptOutcome::Superseded);
                }
                Some((_, previous_seq, version, dirty, next_attempt)) => {
                    // A dirty row keeps its place in line (and any backoff).
                    let due = if dirty { next_attempt } else { now };
                    update.execute(params![
                        aid,
                        c.identity,
                        c.direction.as_int(),
                        c.email,
                        c.user_id,
                        data,
                        c.timestamp,
                        seq,
                        c.message_id,
                        due,
                        now
                    ])?;
                    skip_event.execute(params![
                        previous_seq,
                        "superseded",
                        "superseded by a newer event for this identity",
                        now
                    ])?;
                    if !dirty {
                        added += 1;
                    }
                    outcomes.push(AcceptOutcome::Applied {
                        version: version + 1,
                    });
                }
                None => {
                    insert.execute(params![
                        aid,
                        c.identity,
                        c.direction.as_int(),
                        c.email,
                        c.user_id,
                        data,
                        c.timestamp,
                        seq,
                        c.message_id,
                        now
                    ])?;
                    added += 1;
                    outcomes.push(AcceptOutcome::Applied { version: 1 });
                }
            }
        }
        write_settings(&tx, &settings_updates)?;
    }
    tx.commit()?;
    inner.seq = seq;
    inner.backlog += added;
    inner.cache_settings(settings_updates);
    Ok(outcomes)
}

pub(super) fn record_final(
    store: &SqliteStore,
    events: &[FinalEvent],
    now: Millis,
) -> Result<(), StoreError> {
    let mut inner = store.inner.lock();
    let mut ids: Vec<(i64, Option<i64>)> = Vec::with_capacity(events.len());
    for e in events {
        let (dest, aid) = match &e.audience_key {
            Some(key) => {
                let aid = inner.ensure_audience_id(&e.destination, key)?;
                (inner.dest_of(AudienceId(aid))?, Some(aid))
            }
            None => {
                // A destination with no audience yet: create its id through a placeholder-free path.
                let dest = match inner.dests.get(&e.destination) {
                    Some(d) => *d,
                    None => {
                        inner
                            .conn
                            .prepare_cached(sql::INSERT_DESTINATION)?
                            .execute([&e.destination])?;
                        let id = inner.conn.last_insert_rowid();
                        inner.dests.insert(e.destination.clone(), id);
                        id
                    }
                };
                (dest, None)
            }
        };
        ids.push((dest, aid));
    }
    if store.journal_max_entries > 0 {
        if inner.overlay.entries + events.len() as u64 > store.journal_max_entries {
            inner.apply_journal()?;
        }
        if record_final_journaled(&mut inner, events, &ids, now)? {
            return Ok(());
        }
    }
    inner.apply_journal()?;
    let mut seq = inner.seq;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(sql::INSERT_EVENT)?;
        let mut seen_get = tx.prepare_cached(sql::SEEN_GET)?;
        let mut seen_insert = tx.prepare_cached(sql::SEEN_INSERT)?;
        let mut event_key = tx.prepare_cached(sql::EVENT_KEY)?;
        for (e, (dest, aid)) in events.iter().zip(&ids) {
            seq += 1;
            if !remember_message(
                &mut seen_get,
                &mut seen_insert,
                &mut event_key,
                *dest,
                &e.message_id,
                seq,
            )? {
                continue;
            }
            insert.execute(params![
                seq,
                dest,
                e.message_id,
                aid,
                e.identity,
                e.outcome.as_int(),
                e.reason_code,
                e.reason,
                now
            ])?;
        }
    }
    tx.commit()?;
    inner.seq = seq;
    Ok(())
}

/// Records `(destination, messageId)` in the de-duplication memory; false when it was already
/// there. Keys are a stable hash with linear probing; a hit is compared with its log entry, so
/// a hash collision never drops an event.
fn remember_message(
    get: &mut rusqlite::CachedStatement<'_>,
    insert: &mut rusqlite::CachedStatement<'_>,
    event_key: &mut rusqlite::CachedStatement<'_>,
    dest: i64,
    message_id: &str,
    seq: i64,
) -> Result<bool, StoreError> {
    let h = message_hash(dest, message_id);
    for probe in 0..64i64 {
        let key = h.wrapping_add(probe);
        let found: Option<i64> = get.query_row([key], |r| r.get(0)).optional()?;
        let Some(other) = found else {
            insert.execute([key, seq])?;
            return Ok(true);
        };
        let logged: Option<(i64, String)> = event_key
            .query_row([other], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match logged {
            Some((d, m)) if d == dest && m == message_id => return Ok(false),
            Some(_) => continue,
            // The log entry is gone while its key stayed: compaction removes both together, so
            // only a crash mid-way could leave this; treat it as seen.
            None => return Ok(false),
        }
    }
    // 64 colliding neighbours: practically impossible; accept the event without a key.
    tracing::warn!(dest, "message de-duplication table: probe limit reached");
    Ok(true)
}

/// FNV-1a over the destination id and the message id, then a 64-bit finalizer: stable across
/// builds and platforms, since it is persisted.
fn message_hash(dest: i64, message_id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dest.to_le_bytes().iter().chain(message_id.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as i64
}

#[cfg(test)]
mod tests {
    use super::message_hash;
    use crate::sqlite::journal::row_hash;
    use crate::{AcceptOutcome, Change, Direction, SqliteOptions, SqliteStore, Store};

    fn change(identity: &str, id: &str, ts: i64) -> Change {
        Change {
            destination: "engage".into(),
            audience_key: "vip".into(),
            identity: identity.into(),
            email: None,
            user_id: Some(identity.into()),
            direction: Direction::In,
            data_fields: None,
            message_id: id.into(),
            timestamp: ts,
            audience_settings: None,
        }
    }

    fn claimed(store: &SqliteStore) -> Vec<(String, i64, String)> {
        let aud = store.ensure_audience("engage", "vip").unwrap();
        let rows = store.claim(aud.id, Direction::In, 100, 10).unwrap();
        let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
        store.release(&refs).unwrap();
        let mut got: Vec<_> = rows
            .into_iter()
            .map(|r| (r.row.identity, r.row.version, r.row.message_id))
            .collect();
        got.sort();
        got
    }

    /// A real 64-bit collision cannot be found for a test, so one is planted in the overlay:
    /// the hash of a new key is made to point at another key's journal entry.
    #[test]
    fn overlay_hash_collisions_fall_back_to_writing_the_ledger_directly() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), SqliteOptions::default()).unwrap();
        store.accept(&[change("a", "m1", 1)], 10).unwrap();
        let aid = *store.inner.lock().audiences.values().next().unwrap();
        let dest = store.inner.lock().dest_of(crate::AudienceId(aid)).unwrap();

        // The messageId "m2" collides with the pending "m1".
        {
            let mut inner = store.inner.lock();
            let seq_m1 = inner.overlay.messages.values().copied().next().unwrap();
            inner
                .overlay
                .messages
                .insert(message_hash(dest, "m2"), seq_m1);
        }
        let out = store.accept(&[change("b", "m2", 2)], 11).unwrap();
        assert_eq!(out, vec![AcceptOutcome::Applied { version: 1 }]);
        assert_eq!(
            store.inner.lock().overlay.entries,
            0,
            "took the direct path"
        );

        // The identity "c" collides with the pending change of "a".
        store.accept(&[change("a", "m3", 3)], 12).unwrap();
        {
            let mut inner = store.inner.lock();
            let planted = inner.overlay.rows[&row_hash(aid, "a")];
            inner.overlay.rows.insert(row_hash(aid, "c"), planted);
        }
        let out = store.accept(&[change("c", "m4", 4)], 13).unwrap();
        assert_eq!(out, vec![AcceptOutcome::Applied { version: 1 }]);
        assert_eq!(
            store.inner.lock().overlay.entries,
            0,
            "took the direct path"
        );

        assert_eq!(
            store
                .accept(&[change("b", "m2", 5), change("a", "m1", 5)], 14)
                .unwrap(),
            vec![AcceptOutcome::Duplicate, AcceptOutcome::Duplicate]
        );
        assert_eq!(
            claimed(&store),
            vec![
                ("a".into(), 2, "m3".into()),
                ("b".into(), 1, "m2".into()),
                ("c".into(), 1, "m4".into())
            ]
        );
    }
}
