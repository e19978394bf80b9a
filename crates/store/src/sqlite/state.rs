//! Status, backlog, and small persistent key/value state.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{SqliteStore, parse_json, sql};
use crate::StoreError;
use crate::types::{Direction, PendingCount, Status};

pub(super) fn status(store: &SqliteStore) -> Result<Status, StoreError> {
    let inner = store.inner.lock();
    let mut stmt = inner.conn.prepare_cached(sql::PENDING_COUNTS)?;
    let rows = stmt.query_map([], |r| {
        Ok(PendingCount {
            destination: r.get(0)?,
            audience_key: r.get(1)?,
            list_id: r.get(2)?,
            direction: Direction::from_int(r.get(3)?),
            pending: r.get::<_, i64>(4)? as u64,
        })
    })?;
    let pending = rows.collect::<Result<_, _>>()?;
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
