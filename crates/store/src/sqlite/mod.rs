//! The embedded engine: one SQLite file in WAL mode, held by one process.
//!
//! One connection behind a mutex: SQLite has one writer anyway, and every call is a short
//! transaction. Caches of destination and audience ids and the backlog counter live in memory;
//! they are updated only after a transaction commits.

mod sql;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use crate::lock::ProcessLock;
use crate::types::{
    AcceptOutcome, Audience, AudienceId, Change, ClaimedRow, CompactStats, Direction, DueWork,
    FinalEvent, LogEntry, LogQuery, Millis, Outcome, PendingCount, Retention, RowRef, Status,
};
use crate::{Store, StoreError};

/// How hard SQLite syncs a commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL`: an acknowledged batch survives power loss (the default).
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a process crash; the last commits may be lost on power
    /// loss.
    Normal,
}

/// Options of the SQLite engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// SQLite page cache, in KiB (bounds the engine's memory).
    pub cache_kib: u32,
    /// Accept answers busy when this many changes are pending.
    pub backlog_bound: u64,
    /// Page size in bytes for a new file (a power of two, 512 to 65536). Small pages cut
    /// the bytes each commit writes: an event touches one page per randomly keyed B-tree.
    pub page_size: u32,
    /// WAL pages after which SQLite copies the WAL back into the file. Larger values write a
    /// page rewritten by many batches once per checkpoint rather than once per few batches,
    /// at the cost of a longer WAL (`pages × page_size` bytes on disk).
    pub wal_autocheckpoint_pages: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            cache_kib: 64 * 1024,
            backlog_bound: 10_000_000,
            page_size: 4096,
            wal_autocheckpoint_pages: 16384,
        }
    }
}

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = sql::MIGRATIONS.len() as i64;

#[derive(Debug, Clone)]
struct AudienceCache {
    dest_id: i64,
    event_settings: Option<String>,
}

struct Inner {
    conn: Connection,
    dests: HashMap<String, i64>,
    audiences: HashMap<(i64, String), i64>,
    by_id: HashMap<i64, AudienceCache>,
    seq: i64,
    backlog: u64,
}

/// The SQLite store. Opening it takes an exclusive lock on `<file>.lock` for the life of the
/// value.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    backlog_bound: u64,
    path: PathBuf,
    _lock: ProcessLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("backlog_bound", &self.backlog_bound)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file, refuses it if another process holds it,
    /// runs pending migrations, and frees claims left by a previous run.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lock = ProcessLock::acquire(&path)?;
        let mut conn = Connection::open(&path)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Takes effect only on a file that has no tables yet.
        conn.pragma_update(None, "page_size", options.page_size)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match options.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "cache_size", -i64::from(options.cache_kib))?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "wal_autocheckpoint", options.wal_autocheckpoint_pages)?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        migrate(&mut conn)?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let released = tx.execute(sql::RELEASE_ALL_LEASES, [])?;
        tx.commit()?;
        if released > 0 {
            tracing::info!(released, "freed claims left by a previous run");
        }

        let mut dests = HashMap::new();
        {
            let mut stmt = conn.prepare(sql::SELECT_DESTINATIONS)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, name) = row?;
                dests.insert(name, id);
            }
        }
        let mut audiences = HashMap::new();
        let mut by_id = HashMap::new();
        for a in load_audiences(&conn)? {
            let dest_id = dests.get(&a.destination).copied().unwrap_or_default();
            audiences.insert((dest_id, a.audience_key.clone()), a.id.0);
            by_id.insert(
                a.id.0,
                AudienceCache {
                    dest_id,
                    event_settings: a.event_settings.as_ref().map(Value::to_string),
                },
            );
        }
        let seq: i64 = conn
            .query_row(sql::MAX_SEQ, [], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(0);
        let backlog: i64 = conn.query_row(sql::COUNT_DIRTY, [], |r| r.get(0))?;
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                dests,
                audiences,
                by_id,
                seq,
                backlog: u64::try_from(backlog).unwrap_or(0),
            }),
            backlog_bound: options.backlog_bound,
            path,
            _lock: lock,
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of this build.
    pub fn schema_version() -> i64 {
        SCHEMA_VERSION
    }

    /// Counts dirty rows on disk (a full count; [`Store::backlog`] is the cheap figure).
    pub fn count_backlog(&self) -> Result<u64, StoreError> {
        let inner = self.inner.lock();
        let n: i64 = inner.conn.query_row(sql::COUNT_DIRTY, [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(sql::CREATE_VERSION_TABLE, [])?;
    let current: i64 = tx
        .query_row(sql::SELECT_VERSION, [], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, migration) in sql::MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version > current {
            tx.execute_batch(migration)?;
            tx.execute(sql::INSERT_VERSION, [version])?;
            tracing::info!(version, "store schema migrated");
        }
    }
    tx.commit()?;
    Ok(())
}

fn json_text(v: Option<&Value>) -> Option<String> {
    v.map(Value::to_string)
}

fn parse_json(s: Option<String>) -> Result<Option<Value>, StoreError> {
    s.map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(StoreError::from)
}

fn load_audiences(conn: &Connection) -> Result<Vec<Audience>, StoreError> {
    let mut stmt = conn.prepare_cached(sql::SELECT_AUDIENCES)?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, destination, audience_key, list_id, created, settings, event_settings) = row?;
        out.push(Audience {
            id: AudienceId(id),
            destination,
            audience_key,
            list_id,
            list_created: created != 0,
            settings: parse_json(settings)?,
            event_settings: parse_json(event_settings)?,
        });
    }
    Ok(out)
}

impl Inner {
    /// Destination and audience ids, creating them (in their own small transaction, so that
    /// the caches never refer to rows a rolled-back transaction created).
    fn ensure_audience_id(&mut self, destination: &str, key: &str) -> Result<i64, StoreError> {
        let dest_id = match self.dests.get(destination) {
            Some(id) => *id,
            None => {
                self.conn
                    .prepare_cached(sql::INSERT_DESTINATION)?
                    .execute([destination])?;
                let id = self.conn.last_insert_rowid();
                self.dests.insert(destination.to_owned(), id);
                id
            }
        };
        if let Some(id) = self.audiences.get(&(dest_id, key.to_owned())) {
            return Ok(*id);
        }
        self.conn
            .prepare_cached(sql::INSERT_AUDIENCE)?
            .execute(params![dest_id, key])?;
        let id = self.conn.last_insert_rowid();
        self.audiences.insert((dest_id, key.to_owned()), id);
        self.by_id.insert(
            id,
            AudienceCache {
                dest_id,
                event_settings: None,
            },
        );
        Ok(id)
    }

    fn dest_of(&self, audience: AudienceId) -> Result<i64, StoreError> {
        self.by_id
            .get(&audience.0)
            .map(|a| a.dest_id)
            .ok_or(StoreError::UnknownAudience(audience.0))
    }

    fn audience(&self, id: AudienceId) -> Result<Audience, StoreError> {
        load_audiences(&self.conn)?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(StoreError::UnknownAudience(id.0))
    }
}

/// Log entry outcome written by a result call.
struct LogUpdate<'a> {
    outcome: Outcome,
    reason_code: Option<&'a str>,
    reason: Option<&'a str>,
    next_attempt: Option<Millis>,
    request_id: Option<&'a str>,
}

impl SqliteStore {
    /// Version-guarded settle (confirm or skip): clean if still at the version sent.
    fn settle(
        &self,
        rows: &[RowRef],
        update: &LogUpdate<'_>,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        let mut inner = self.inner.lock();
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
}

impl Store for SqliteStore {
    fn accept(&self, batch: &[Change], now: Millis) -> Result<Vec<AcceptOutcome>, StoreError> {
        let mut inner = self.inner.lock();
        if inner.backlog >= self.backlog_bound {
            return Err(StoreError::Busy {
                backlog: inner.backlog,
                bound: self.backlog_bound,
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
            for (c, (dest, aid)) in batch.iter().zip(&ids) {
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
            let mut set_settings = tx.prepare_cached(sql::SET_EVENT_SETTINGS)?;
            for (aid, text) in &settings_updates {
                set_settings.execute(params![aid, text])?;
            }
        }
        tx.commit()?;
        inner.seq = seq;
        inner.backlog += added;
        for (aid, text) in settings_updates {
            if let Some(a) = inner.by_id.get_mut(&aid) {
                a.event_settings = Some(text);
            }
        }
        Ok(outcomes)
    }

    fn record_final(&self, events: &[FinalEvent], now: Millis) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let mut ids = Vec::with_capacity(events.len());
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

    fn ensure_audience(
        &self,
        destination: &str,
        audience_key: &str,
    ) -> Result<Audience, StoreError> {
        let mut inner = self.inner.lock();
        let id = inner.ensure_audience_id(destination, audience_key)?;
        inner.audience(AudienceId(id))
    }

    fn audience(&self, id: AudienceId) -> Result<Audience, StoreError> {
        self.inner.lock().audience(id)
    }

    fn audiences(&self, destination: Option<&str>) -> Result<Vec<Audience>, StoreError> {
        let inner = self.inner.lock();
        Ok(load_audiences(&inner.conn)?
            .into_iter()
            .filter(|a| destination.is_none_or(|d| a.destination == d))
            .collect())
    }

    fn set_list(
        &self,
        id: AudienceId,
        list_id: Option<i64>,
        created_by_service: bool,
    ) -> Result<(), StoreError> {
        let inner = self.inner.lock();
        inner.dest_of(id)?;
        inner.conn.prepare_cached(sql::SET_LIST)?.execute(params![
            id.0,
            list_id,
            created_by_service
        ])?;
        Ok(())
    }

    fn set_settings(&self, id: AudienceId, settings: Option<&Value>) -> Result<(), StoreError> {
        let inner = self.inner.lock();
        inner.dest_of(id)?;
        inner
            .conn
            .prepare_cached(sql::SET_SETTINGS)?
            .execute(params![id.0, json_text(settings)])?;
        Ok(())
    }

    fn mark_in_dirty(&self, id: AudienceId, now: Millis) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
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

    fn due(&self, now: Millis, cap: u64) -> Result<Vec<DueWork>, StoreError> {
        let inner = self.inner.lock();
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

    fn claim(
        &self,
        id: AudienceId,
        direction: Direction,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        let mut inner = self.inner.lock();
        inner.dest_of(id)?;
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut raw = Vec::new();
        {
            let mut select = tx.prepare_cached(sql::CLAIM_SELECT)?;
            let rows =
                select.query_map(params![id.0, direction.as_int(), now, limit as i64], |r| {
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

    fn release(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
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

    fn mark_subscribe_sent(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
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

    fn confirm(
        &self,
        rows: &[RowRef],
        request_id: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        self.settle(
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

    fn settle_skipped(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        request_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        self.settle(
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

    fn retry(
        &self,
        rows: &[RowRef],
        next_attempt: Millis,
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
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

    fn reject(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        let mut inner = self.inner.lock();
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

    fn replay_rejected(
        &self,
        destination: &str,
        audience_key: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let mut inner = self.inner.lock();
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

    fn log(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        let inner = self.inner.lock();
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

    fn compact(&self, retention: &Retention, now: Millis) -> Result<CompactStats, StoreError> {
        let mut inner = self.inner.lock();
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

    fn status(&self) -> Result<Status, StoreError> {
        let inner = self.inner.lock();
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
            backlog_bound: self.backlog_bound,
            pending,
        })
    }

    fn backlog(&self) -> u64 {
        self.inner.lock().backlog
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Value>, StoreError> {
        let inner = self.inner.lock();
        let text: Option<String> = inner
            .conn
            .prepare_cached(sql::KV_GET)?
            .query_row(params![namespace, key], |r| r.get(0))
            .optional()?;
        parse_json(text)
    }

    fn kv_set(&self, namespace: &str, key: &str, value: Option<&Value>) -> Result<(), StoreError> {
        let inner = self.inner.lock();
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
