//! Delivery: due work, claims, and the version-guarded result calls.

use std::collections::HashMap;

use rusqlite::{TransactionBehavior, params};

use super::{SqliteStore, parse_json, sql};
use crate::StoreError;
use crate::types::{AudienceId, ClaimedRow, Direction, DueWork, Millis, Outcome, RowRef};

pub(super) fn due(store: &SqliteStore, now: Millis, cap: u64) -> Result<Vec<DueWork>, StoreError> {
    let inner = store.applied()?;
    let mut names: HashMap<i64, &str> = HashMap::new();
    for (name, id) in &inner.dests {
        names.insert(*id, name);
    }
    let mut out = Vec::new();
    let mut stmt = inner.conn.prepare_cached(sql::DUE_FOR)?;
    for ((dest_id, key), aid) in &inner.audiences {
        for direction in [Direction::In, Direction::Out] {
            let (count, oldest): (i64, Option<i64>) = stmt
                .query_row(params![aid, direction.as_int(), now, cap as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if let (true, Some(oldest)) = (count > 0, oldest) {
                out.push(DueWork {
                    audience: AudienceId(*aid),
                    destination: names.get(dest_id).copied().unwrap_or_default().to_owned(),
                    audience_key: key.clone(),
                    direction,
                    count: count as u64,
                    oldest_due_at: oldest,
                });
            }
        }
    }
    out.sort_by_key(|d| (d.oldest_due_at, d.audience, d.direction.as_int()));
    Ok(out)
}

pub(super) fn claim(
    store: &SqliteStore,
    id: AudienceId,
    direction: Direction,
    now: Millis,
    limit: usize,
) -> Result<Vec<ClaimedRow>, StoreError> {
    let mut inner = store.applied()?;
    inner.dest_of(id)?;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut raw = Vec::new();
    {
        let mut select = tx.prepare_cached(sql::CLAIM_SELECT)?;
        let rows = select.query_map(params![id.0, direction.as_int(), now, limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, i64>(7)? != 0,
                r.get::<_, i64>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?;
        for row in rows {
            raw.push(row?);
        }
        let mut lease = tx.prepare_cached(sql::LEASE_ROW)?;
        for r in &raw {
            lease.execute(params![id.0, r.0])?;
        }
    }
    tx.commit()?;
    raw.into_iter()
        .map(
            |(
                identity,
                version,
                event_seq,
                message_id,
                email,
                user_id,
                data,
                sent,
                attempts,
                due,
            )| {
                Ok(ClaimedRow {
                    row: RowRef {
                        audience: id,
                        identity,
                        version,
                        message_id,
                        event_seq,
                    },
                    email,
                    user_id,
                    direction,
                    data_fields: parse_json(data)?,
                    subscribe_sent: sent,
                    attempts,
                    due_at: due,
                })
            },
        )
        .collect()
}

pub(super) fn release(store: &SqliteStore, rows: &[RowRef]) -> Result<(), StoreError> {
    let mut inner = store.applied()?;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(sql::RELEASE_ROW)?;
        for r in rows {
            stmt.execute(params![r.audience.0, r.identity])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn mark_subscribe_sent(store: &SqliteStore, rows: &[RowRef]) -> Result<(), StoreError> {
    let mut inner = store.applied()?;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(sql::MARK_SUBSCRIBE_SENT)?;
        for r in rows {
            stmt.execute(params![r.audience.0, r.identity])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn confirm(
    store: &SqliteStore,
    rows: &[RowRef],
    request_id: &str,
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    settle(
        store,
        rows,
        &LogUpdate {
            outcome: Outcome::Delivered,
            reason_code: None,
            reason: None,
            next_attempt: None,
            request_id: Some(request_id),
        },
        now,
    )
}

pub(super) fn settle_skipped(
    store: &SqliteStore,
    rows: &[RowRef],
    reason_code: &str,
    reason: &str,
    request_id: Option<&str>,
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    settle(
        store,
        rows,
        &LogUpdate {
            outcome: Outcome::Skipped,
            reason_code: Some(reason_code),
            reason: Some(reason),
            next_attempt: None,
            request_id,
        },
        now,
    )
}

pub(super) fn retry(
    store: &SqliteStore,
    rows: &[RowRef],
    next_attempt: Millis,
    reason_code: &str,
    reason: &str,
    now: Millis,
) -> Result<(), StoreError> {
    let mut inner = store.applied()?;
    for r in rows {
        inner.dest_of(r.audience)?;
    }
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut retry = tx.prepare_cached(sql::RETRY_ROW)?;
        let mut log = tx.prepare_cached(sql::SET_EVENT_OUTCOME)?;
        for row in rows {
            retry.execute(params![row.audience.0, row.identity, next_attempt])?;
            log.execute(params![
                row.event_seq,
                Outcome::Retrying.as_int(),
                reason_code,
                reason,
                next_attempt,
                Option::<&str>::None,
                now
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn reject(
    store: &SqliteStore,
    rows: &[RowRef],
    reason_code: &str,
    reason: &str,
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    let mut inner = store.applied()?;
    for r in rows {
        inner.dest_of(r.audience)?;
    }
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut rejected = Vec::with_capacity(rows.len());
    {
        let mut reject = tx.prepare_cached(sql::REJECT_ROW)?;
        let mut release = tx.prepare_cached(sql::RELEASE_ROW)?;
        let mut log = tx.prepare_cached(sql::SET_EVENT_OUTCOME)?;
        for row in rows {
            let n = reject.execute(params![row.audience.0, row.identity, row.version])?;
            if n == 1 {
                log.execute(params![
                    row.event_seq,
                    Outcome::Rejected.as_int(),
                    reason_code,
                    reason,
                    Option::<i64>::None,
                    Option::<&str>::None,
                    now
                ])?;
            } else {
                release.execute(params![row.audience.0, row.identity])?;
            }
            rejected.push(n == 1);
        }
    }
    tx.commit()?;
    let n = rejected.iter().filter(|r| **r).count() as u64;
    inner.backlog = inner.backlog.saturating_sub(n);
    Ok(rejected)
}

/// Log entry outcome written by a result call.
struct LogUpdate<'a> {
    outcome: Outcome,
    reason_code: Option<&'a str>,
    reason: Option<&'a str>,
    next_attempt: Option<Millis>,
    request_id: Option<&'a str>,
}

/// Version-guarded settle (confirm or skip): clean if still at the version sent.
fn settle(
    store: &SqliteStore,
    rows: &[RowRef],
    update: &LogUpdate<'_>,
    now: Millis,
) -> Result<Vec<bool>, StoreError> {
    let mut inner = store.applied()?;
    for r in rows {
        inner.dest_of(r.audience)?;
    }
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut cleaned = Vec::with_capacity(rows.len());
    {
        let mut confirm = tx.prepare_cached(sql::CONFIRM_ROW)?;
        let mut moved = tx.prepare_cached(sql::UNLEASE_MOVED_ROW)?;
        let mut log = tx.prepare_cached(sql::SET_EVENT_OUTCOME)?;
        for row in rows {
            let n = confirm.execute(params![row.audience.0, row.identity, row.version])?;
            if n == 1 {
                log.execute(params![
                    row.event_seq,
                    update.outcome.as_int(),
                    update.reason_code,
                    update.reason,
                    update.next_attempt,
                    update.request_id,
                    now
                ])?;
            } else {
                moved.execute(params![row.audience.0, row.identity, row.version])?;
            }
            cleaned.push(n == 1);
        }
    }
    tx.commit()?;
    let n = cleaned.iter().filter(|c| **c).count() as u64;
    inner.backlog = inner.backlog.saturating_sub(n);
    Ok(cleaned)
}
