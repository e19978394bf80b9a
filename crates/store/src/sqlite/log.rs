//! The delivery log: queries, replay of rejected rows, retention.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, sql};
use crate::StoreError;
use crate::types::{CompactStats, LogEntry, LogQuery, Millis, Outcome, Retention};

pub(super) fn replay_rejected(
    store: &SqliteStore,
    destination: &str,
    audience_key: Option<&str>,
    now: Millis,
) -> Result<u64, StoreError> {
    let mut inner = store.applied()?;
    let Some(dest) = inner.dests.get(destination).copied() else {
        return Ok(0);
    };
    let targets: Vec<i64> = inner
        .audiences
        .iter()
        .filter(|((d, key), _)| *d == dest && audience_key.is_none_or(|k| k == key))
        .map(|(_, id)| *id)
        .collect();
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut total = 0u64;
    {
        let mut select = tx.prepare_cached(sql::REJECTED_ROWS)?;
        let mut requeue = tx.prepare_cached(sql::REQUEUE_REJECTED)?;
        let mut log = tx.prepare_cached(sql::EVENT_BACK_TO_PENDING)?;
        for aid in targets {
            // Rejected rows are few (kept for inspection); a batch at a time keeps memory flat.
            loop {
                let rows: Vec<(String, i64)> = select
                    .query_map(params![aid], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .take(1000)
                    .collect::<Result<_, _>>()?;
                if rows.is_empty() {
                    break;
                }
                for (identity, event_seq) in rows {
                    total += requeue.execute(params![aid, identity, now])? as u64;
                    log.execute(params![event_seq, now])?;
                }
            }
        }
    }
    tx.commit()?;
    inner.backlog += total;
    Ok(total)
}

pub(super) fn log(store: &SqliteStore, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
    let inner = store.applied()?;
    let dest = match &query.destination {
        Some(name) => match inner.dests.get(name) {
            Some(id) => Some(*id),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let audience = match (&query.audience_key, dest) {
        (Some(key), Some(d)) => match inner.audiences.get(&(d, key.clone())) {
            Some(id) => Some(*id),
            None => return Ok(Vec::new()),
        },
        (Some(key), None) => {
            let found: Vec<i64> = inner
                .audiences
                .iter()
                .filter(|((_, k), _)| k == key)
                .map(|(_, id)| *id)
                .collect();
            match found.as_slice() {
                [one] => Some(*one),
                [] => return Ok(Vec::new()),
                // The same key in several destinations: the caller must say which.
                _ => None,
            }
        }
        (None, _) => None,
    };
    let limit = if query.limit == 0 { 100 } else { query.limit };
    let text = sql::select_log(
        dest.is_some(),
        audience.is_some(),
        query.identity.is_some(),
        query.outcome.is_some(),
    );
    let mut stmt = inner.conn.prepare_cached(&text)?;
    // Unused positions still need a value: SQLite numbers parameters by the highest index.
    let mut bind: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Null; 5];
    if let Some(d) = dest {
        bind[0] = d.into();
    }
    if let Some(a) = audience {
        bind[1] = a.into();
    }
    if let Some(i) = &query.identity {
        bind[2] = i.clone().into();
    }
    if let Some(o) = query.outcome {
        bind[3] = o.as_int().into();
    }
    bind[4] = (limit as i64).into();
    let rows = stmt.query_map(rusqlite::params_from_iter(bind), |r| {
        Ok(LogEntry {
            message_id: r.get(0)?,
            destination: r.get(1)?,
            audience_key: r.get(2)?,
            identity: r.get(3)?,
            outcome: Outcome::from_int(r.get(4)?),
            reason_code: r.get(5)?,
            reason: r.get(6)?,
            next_attempt: r.get(7)?,
            request_id: r.get(8)?,
            accepted_at: r.get(9)?,
            updated_at: r.get(10)?,
        })
    })?;
    rows.collect::<Result<_, _>>().map_err(StoreError::from)
}

pub(super) fn compact(
    store: &SqliteStore,
    retention: &Retention,
    now: Millis,
) -> Result<CompactStats, StoreError> {
    let mut inner = store.applied()?;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stats = CompactStats::default();
    // Entries inside the dedup window are the de-duplication memory: never removed.
    let dedup_floor = first_since(&tx, now - retention.dedup_window_ms)?;
    let age_floor = first_since(&tx, now - retention.log_max_age_ms)?;
    let count: i64 = tx.query_row(sql::LOG_COUNT, [], |r| r.get(0))?;
    let excess = (count as u64).saturating_sub(retention.log_max_entries);
    let size_floor = if excess > 0 {
        tx.query_row(sql::LOG_SEQ_AT_OFFSET, [excess as i64], |r| r.get(0))
            .optional()?
    } else {
        None
    };
    let wanted = match size_floor {
        Some(s) => age_floor.max(s),
        None => age_floor,
    };
    let floor = wanted.min(dedup_floor);
    let removed = tx.execute(sql::LOG_DELETE_BELOW, [floor])? as u64;
    tx.execute(sql::SEEN_DELETE_BELOW, [floor])?;
    stats.log_entries_removed = removed;
    stats.log_entries_over_bound =
        ((count as u64) - removed).saturating_sub(retention.log_max_entries);
    stats.out_rows_removed = tx.execute(
        sql::DELETE_CONFIRMED_OUT,
        [now - retention.out_rows_max_age_ms],
    )? as u64;
    tx.commit()?;
    Ok(stats)
}

/// The first log sequence number at or after `since`; past the end when none is.
fn first_since(conn: &Connection, since: Millis) -> Result<i64, StoreError> {
    let found: Option<i64> = conn
        .query_row(sql::LOG_FIRST_SINCE, [since], |r| r.get(0))
        .optional()?;
    match found {
        Some(s) => Ok(s),
        None => {
            let max: Option<i64> = conn.query_row(sql::LOG_MAX_SEQ, [], |r| r.get(0))?;
            Ok(max.unwrap_or(0) + 1)
        }
    }
}
