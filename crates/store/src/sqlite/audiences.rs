//! Audiences: creation, bound list, settings, re-sending after a list is re-created.

use rusqlite::{TransactionBehavior, params};
use serde_json::Value;

use super::{SqliteStore, json_text, load_audiences, sql};
use crate::StoreError;
use crate::types::{Audience, AudienceId, Millis};

pub(super) fn ensure_audience(
    store: &SqliteStore,
    destination: &str,
    audience_key: &str,
) -> Result<Audience, StoreError> {
    let mut inner = store.inner.lock();
    let id = inner.ensure_audience_id(destination, audience_key)?;
    inner.audience(AudienceId(id))
}

pub(super) fn audience(store: &SqliteStore, id: AudienceId) -> Result<Audience, StoreError> {
    store.inner.lock().audience(id)
}

pub(super) fn audiences(
    store: &SqliteStore,
    destination: Option<&str>,
) -> Result<Vec<Audience>, StoreError> {
    let inner = store.inner.lock();
    Ok(load_audiences(&inner.conn)?
        .into_iter()
        .filter(|a| destination.is_none_or(|d| a.destination == d))
        .collect())
}

pub(super) fn set_list(
    store: &SqliteStore,
    id: AudienceId,
    list_id: Option<i64>,
    created_by_service: bool,
) -> Result<(), StoreError> {
    let inner = store.inner.lock();
    inner.dest_of(id)?;
    inner.conn.prepare_cached(sql::SET_LIST)?.execute(params![
        id.0,
        list_id,
        created_by_service
    ])?;
    Ok(())
}

pub(super) fn set_settings(
    store: &SqliteStore,
    id: AudienceId,
    settings: Option<&Value>,
) -> Result<(), StoreError> {
    let inner = store.inner.lock();
    inner.dest_of(id)?;
    inner
        .conn
        .prepare_cached(sql::SET_SETTINGS)?
        .execute(params![id.0, json_text(settings)])?;
    Ok(())
}

pub(super) fn mark_in_dirty(
    store: &SqliteStore,
    id: AudienceId,
    now: Millis,
) -> Result<u64, StoreError> {
    let mut inner = store.applied()?;
    inner.dest_of(id)?;
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(sql::MARK_IN_DIRTY, params![id.0, now])?;
    tx.execute(sql::RESET_SUBSCRIBE_SENT, params![id.0])?;
    tx.commit()?;
    inner.backlog += n as u64;
    Ok(n as u64)
}
