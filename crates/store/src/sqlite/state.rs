//! Status, backlog, and small persistent key/value state.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{SqliteStore, load_audiences, parse_json, sql};
use crate::StoreError;
use crate::types::{Direction, PendingCount, Status};

pub(super) fn status(store: &SqliteStore) -> Result<Status, StoreError> {
    let inner = store.applied()?;
    let audiences = load_audiences(&inner.conn)?;
    let mut stmt = inner.conn.prepare_cached(sql::PENDING_COUNT_FOR)?;
    let mut pending = Vec::new();
    for a in audiences {
        let counts = stmt.query_map([a.id.0], |r| {
            Ok((Direction::from_int(r.get(0)?), r.get::<_, i64>(1)?))
        })?;
        for c in counts {
            let (direction, n) = c?;
            pending.push(PendingCount {
                destination: a.destination.clone(),
                audience_key: a.audience_key.clone(),
                list_id: a.list_id,
                direction,
                pending: u64::try_from(n).unwrap_or(0),
            });
        }
    }
    pending.sort_by(|x, y| {
        (&x.destination, &x.audience_key, x.direction.as_int()).cmp(&(
            &y.destination,
            &y.audience_key,
            y.direction.as_int(),
        ))
    });
    Ok(Status {
        backlog: inner.backlog,
        backlog_bound: store.backlog_bound,
        pending,
    })
}

pub(super) fn backlog(store: &SqliteStore) -> u64 {
    store.inner.lock().backlog
}

pub(super) fn kv_get(
    store: &SqliteStore,
    namespace: &str,
    key: &str,
) -> Result<Option<Value>, StoreError> {
    let inner = store.inner.lock();
    let text: Option<String> = inner
        .conn
        .prepare_cached(sql::KV_GET)?
        .query_row(params![namespace, key], |r| r.get(0))
        .optional()?;
    parse_json(text)
}

pub(super) fn kv_set(
    store: &SqliteStore,
    namespace: &str,
    key: &str,
    value: Option<&Value>,
) -> Result<(), StoreError> {
    let inner = store.inner.lock();
    match value {
        Some(v) => inner.conn.prepare_cached(sql::KV_SET)?.execute(params![
            namespace,
            key,
            v.to_string()
        ])?,
        None => inner
            .conn
            .prepare_cached(sql::KV_DELETE)?
            .execute(params![namespace, key])?,
    };
    Ok(())
}
