//! The embedded engine: one SQLite file in WAL mode, held by one process.
//!
//! One connection behind a mutex: SQLite has one writer anyway, and every call is a short
//! transaction. Caches of destination and audience ids and the backlog counter live in memory;
//! they are updated only after a transaction commits.

mod accept;
mod audiences;
mod counts;
mod deliver;
mod journal;
mod log;
mod sql;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;

pub use counts::MemberCounts;

use crate::lock::ProcessLock;
use crate::types::{
    AcceptOutcome, Audience, AudienceId, Change, ClaimedRow, CompactStats, Direction, DueWork,
    FinalEvent, LogEntry, LogQuery, Millis, Retention, RowRef, Status,
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
    /// Accepted changes kept in the journal before accept applies them to the ledger itself.
    /// Applying sorts the journal by ledger key, so larger values write fewer pages per
    /// change; each pending change costs about 60 bytes of memory until applied.
    pub journal_max_entries: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            cache_kib: 64 * 1024,
            backlog_bound: 10_000_000,
            page_size: 4096,
            wal_autocheckpoint_pages: 16384,
            journal_max_entries: 200_000,
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
    overlay: journal::Overlay,
}

/// The SQLite store. Opening it takes an exclusive lock on `<file>.lock` for the life of the
/// value.
pub struct SqliteStore {
    inner: Mutex<Inner>,
    backlog_bound: u64,
    journal_max_entries: u64,
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
        conn.pragma_update(None, "wal_autocheckpoint", options.wal_autocheckpoint_pages)?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        migrate(&mut conn)?;

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let released = tx.execute(sql::RELEASE_ALL_LEASES, [])?;
        tx.commit()?;
        if released > 0 {
            tracing::info!(released, "freed claims left by a previous run");
        }
        // Changes a previous run accepted but did not apply (e.g. killed): apply them now.
        if journal::count(&conn)? > 0 {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let applied = journal::apply(&tx)?;
            tx.commit()?;
            tracing::info!(applied, "applied accepted changes left by a previous run");
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
                overlay: journal::Overlay::default(),
            }),
            backlog_bound: options.backlog_bound,
            journal_max_entries: options.journal_max_entries,
            path,
            _lock: lock,
        })
    }

    /// The engine, locked, with the journal applied: what every operation that reads or
    /// changes ledger rows or log entries starts with.
    fn applied(&self) -> Result<parking_lot::MutexGuard<'_, Inner>, StoreError> {
        let mut inner = self.inner.lock();
        inner.apply_journal()?;
        Ok(inner)
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
        let inner = self.applied()?;
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

impl Store for SqliteStore {
    fn accept(&self, batch: &[Change], now: Millis) -> Result<Vec<AcceptOutcome>, StoreError> {
        accept::accept(self, batch, now)
    }

    fn record_final(&self, events: &[FinalEvent], now: Millis) -> Result<(), StoreError> {
        accept::record_final(self, events, now)
    }

    fn ensure_audience(
        &self,
        destination: &str,
        audience_key: &str,
    ) -> Result<Audience, StoreError> {
        audiences::ensure_audience(self, destination, audience_key)
    }

    fn audience(&self, id: AudienceId) -> Result<Audience, StoreError> {
        audiences::audience(self, id)
    }

    fn audiences(&self, destination: Option<&str>) -> Result<Vec<Audience>, StoreError> {
        audiences::audiences(self, destination)
    }

    fn set_list(
        &self,
        id: AudienceId,
        list_id: Option<i64>,
        created_by_service: bool,
    ) -> Result<(), StoreError> {
        audiences::set_list(self, id, list_id, created_by_service)
    }

    fn set_settings(&self, id: AudienceId, settings: Option<&Value>) -> Result<(), StoreError> {
        audiences::set_settings(self, id, settings)
    }

    fn mark_in_dirty(&self, id: AudienceId, now: Millis) -> Result<u64, StoreError> {
        audiences::mark_in_dirty(self, id, now)
    }

    fn due(&self, now: Millis, cap: u64) -> Result<Vec<DueWork>, StoreError> {
        deliver::due(self, now, cap)
    }

    fn claim(
        &self,
        id: AudienceId,
        direction: Direction,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        deliver::claim(self, id, direction, now, limit)
    }

    fn release(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        deliver::release(self, rows)
    }

    fn mark_subscribe_sent(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        deliver::mark_subscribe_sent(self, rows)
    }

    fn confirm(
        &self,
        rows: &[RowRef],
        request_id: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        deliver::confirm(self, rows, request_id, now)
    }

    fn settle_skipped(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        request_id: Option<&str>,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        deliver::settle_skipped(self, rows, reason_code, reason, request_id, now)
    }

    fn retry(
        &self,
        rows: &[RowRef],
        next_attempt: Millis,
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        deliver::retry(self, rows, next_attempt, reason_code, reason, now)
    }

    fn reject(
        &self,
        rows: &[RowRef],
        reason_code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        deliver::reject(self, rows, reason_code, reason, now)
    }

    fn replay_rejected(
        &self,
        destination: &str,
        audience_key: Option<&str>,
        now: Millis,
    ) -> Result<u64, StoreError> {
        log::replay_rejected(self, destination, audience_key, now)
    }

    fn log(&self, query: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        log::log(self, query)
    }

    fn compact(&self, retention: &Retention, now: Millis) -> Result<CompactStats, StoreError> {
        log::compact(self, retention, now)
    }

    fn status(&self) -> Result<Status, StoreError> {
        state::status(self)
    }

    fn backlog(&self) -> u64 {
        state::backlog(self)
    }

    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<Value>, StoreError> {
        state::kv_get(self, namespace, key)
    }

    fn kv_set(&self, namespace: &str, key: &str, value: Option<&Value>) -> Result<(), StoreError> {
        state::kv_set(self, namespace, key, value)
    }

    fn member_counts(&self, destination: Option<&str>) -> Result<Vec<MemberCounts>, StoreError> {
        // The inherent method of the same name does the work.
        SqliteStore::member_counts(self, destination)
    }
}
