//! Every SQL statement of the SQLite engine, and its schema migrations.
//!
//! Tables:
//! - `destinations`: destination names, numbered to keep other keys small.
//! - `audiences`: per (destination, audience key): bound list, settings.
//! - `members`: the ledger, one row per (audience, identity), `WITHOUT ROWID` on that key.
//!   `dirty` is 1 while the desired state is not confirmed; `lease` is 1 while a worker holds
//!   the row; `next_attempt` is when the row is due (its change time for a fresh change).
//! - `events`: the delivery log, one row per accepted event; its rowid is the arrival sequence,
//!   so age and size compaction delete a prefix. It has no index on `message_id` or
//!   `identity`: random keys in a large B-tree cost a page write per event per index, which is
//!   what limits durable accept throughput.
//! - `seen`: the `messageId` de-duplication memory, keyed by a stable 64-bit hash of
//!   (destination, messageId) with linear probing; a hit is verified against the log entry.
//! - `kv`: small persistent key/value state (e.g. a discovered rate per Iterable project).
//! - `journal`: accepted changes not yet applied to `members` and `seen`, in arrival order
//!   (its rowid is the event's sequence). Accept only appends here and to `events`, so a
//!   commit writes a few sequential pages instead of one random page per event per B-tree;
//!   the journal is applied in one key-sorted pass later (see `journal.rs`).

/// Migrations, applied in order; `schema_version` records how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE destinations (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );
    CREATE TABLE audiences (
        id             INTEGER PRIMARY KEY,
        dest_id        INTEGER NOT NULL,
        audience_key   TEXT NOT NULL,
        list_id        INTEGER,
        list_created   INTEGER NOT NULL DEFAULT 0,
        settings       TEXT,
        event_settings TEXT,
        UNIQUE (dest_id, audience_key)
    );
    CREATE TABLE members (
        audience_id       INTEGER NOT NULL,
        identity          TEXT NOT NULL,
        desired           INTEGER NOT NULL,
        email             TEXT,
        user_id           TEXT,
        data              TEXT,
        event_ts          INTEGER NOT NULL,
        seq               INTEGER NOT NULL,
        message_id        TEXT NOT NULL,
        version           INTEGER NOT NULL,
        confirmed_version INTEGER NOT NULL DEFAULT 0,
        dirty             INTEGER NOT NULL,
        lease             INTEGER NOT NULL DEFAULT 0,
        next_attempt      INTEGER NOT NULL,
        attempts          INTEGER NOT NULL DEFAULT 0,
        subscribe_sent    INTEGER NOT NULL DEFAULT 0,
        rejected          INTEGER NOT NULL DEFAULT 0,
        changed_at        INTEGER NOT NULL,
        PRIMARY KEY (audience_id, identity)
    ) WITHOUT ROWID;
    CREATE INDEX members_due ON members (audience_id, desired, next_attempt)
        WHERE dirty = 1 AND lease = 0;
    CREATE INDEX members_leased ON members (audience_id) WHERE lease = 1;
    CREATE INDEX members_rejected ON members (audience_id) WHERE rejected = 1;
    CREATE TABLE events (
        seq          INTEGER PRIMARY KEY,
        dest_id      INTEGER NOT NULL,
        message_id   TEXT NOT NULL,
        audience_id  INTEGER,
        identity     TEXT,
        outcome      INTEGER NOT NULL,
        reason_code  TEXT,
        reason       TEXT,
        next_attempt INTEGER,
        request_id   TEXT,
        accepted_at  INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    CREATE INDEX events_audience ON events (audience_id, outcome);
    CREATE TABLE seen (
        h   INTEGER PRIMARY KEY,
        seq INTEGER NOT NULL
    );
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID;",
    // 2: the accept journal. `version`, `next_attempt` and `prev_seq` are decided at accept
    // time (from the ledger and the journal entries before it), so applying is mechanical.
    // `h` is the de-duplication key; version 0 marks an entry that only remembers its
    // `messageId` (an event superseded on arrival, or one that ended before the ledger).
    "CREATE TABLE journal (
        seq          INTEGER PRIMARY KEY,
        h            INTEGER NOT NULL,
        audience_id  INTEGER NOT NULL,
        identity     TEXT NOT NULL,
        desired      INTEGER NOT NULL,
        email        TEXT,
        user_id      TEXT,
        data         TEXT,
        event_ts     INTEGER NOT NULL,
        message_id   TEXT NOT NULL,
        version      INTEGER NOT NULL,
        next_attempt INTEGER NOT NULL,
        prev_seq     INTEGER,
        accepted_at  INTEGER NOT NULL
    );",
];

pub(crate) const CREATE_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
pub(crate) const SELECT_VERSION: &str = "SELECT max(version) FROM schema_version";
pub(crate) const INSERT_VERSION: &str = "INSERT INTO schema_version (version) VALUES (?1)";

pub(crate) const SELECT_DESTINATIONS: &str = "SELECT id, name FROM destinations";
pub(crate) const INSERT_DESTINATION: &str = "INSERT INTO destinations (name) VALUES (?1)";
pub(crate) const SELECT_AUDIENCES: &str =
    "SELECT a.id, d.name, a.audience_key, a.list_id, a.list_created, a.settings, a.event_settings
     FROM audiences a JOIN destinations d ON d.id = a.dest_id ORDER BY a.id";
pub(crate) const INSERT_AUDIENCE: &str =
    "INSERT INTO audiences (dest_id, audience_key) VALUES (?1, ?2)";
pub(crate) const SET_LIST: &str =
    "UPDATE audiences SET list_id = ?2, list_created = ?3 WHERE id = ?1";
pub(crate) const SET_SETTINGS: &str = "UPDATE audiences SET settings = ?2 WHERE id = ?1";
pub(crate) const SET_EVENT_SETTINGS: &str =
    "UPDATE audiences SET event_settings = ?2 WHERE id = ?1";

pub(crate) const MAX_SEQ: &str = "SELECT max(s) FROM (SELECT max(seq) AS s FROM events
     UNION ALL SELECT max(seq) FROM members)";
pub(crate) const COUNT_DIRTY: &str = "SELECT count(*) FROM members WHERE dirty = 1";
pub(crate) const RELEASE_ALL_LEASES: &str = "UPDATE members SET lease = 0 WHERE lease = 1";

// Accept.
pub(crate) const SEEN_GET: &str = "SELECT seq FROM seen WHERE h = ?1";
pub(crate) const SEEN_INSERT: &str = "INSERT INTO seen (h, seq) VALUES (?1, ?2)";
pub(crate) const EVENT_KEY: &str = "SELECT dest_id, message_id FROM events WHERE seq = ?1";
pub(crate) const INSERT_EVENT: &str = "INSERT INTO events (seq, dest_id, message_id, audience_id, identity, outcome, reason_code, reason,
        accepted_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
pub(crate) const SET_EVENT_SKIPPED: &str = "UPDATE events SET outcome = 3, reason_code = ?2, reason = ?3, next_attempt = NULL, updated_at = ?4
     WHERE seq = ?1 AND outcome IN (0, 1)";
pub(crate) const SELECT_MEMBER_ORDER: &str =
    "SELECT event_ts, seq, version, dirty, next_attempt FROM members
     WHERE audience_id = ?1 AND identity = ?2";
pub(crate) const INSERT_MEMBER: &str = "INSERT INTO members (audience_id, identity, desired, email, user_id, data, event_ts, seq, message_id,
        version, dirty, next_attempt, changed_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 1, ?10, ?10)";
pub(crate) const UPDATE_MEMBER: &str =
    "UPDATE members SET desired = ?3, email = ?4, user_id = ?5, data = ?6, event_ts = ?7, seq = ?8,
        message_id = ?9, version = version + 1, dirty = 1, rejected = 0, next_attempt = ?10,
        changed_at = ?11
     WHERE audience_id = ?1 AND identity = ?2";

// Journal.
pub(crate) const INSERT_JOURNAL: &str =
    "INSERT INTO journal (seq, h, audience_id, identity, desired, email, user_id, data, event_ts,
        message_id, version, next_attempt, prev_seq, accepted_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
/// The identity of a journal entry, to verify an in-memory hash hit.
pub(crate) const JOURNAL_KEY: &str = "SELECT audience_id, identity FROM journal WHERE seq = ?1";
pub(crate) const JOURNAL_COUNT: &str = "SELECT count(*) FROM journal";
/// Journal entries in ledger key order, so that applying them walks the ledger's B-tree once.
/// Only the keys go through the sort, which keeps its memory small.
pub(crate) const JOURNAL_BY_KEY: &str =
    "SELECT seq FROM journal WHERE version > 0 ORDER BY audience_id, identity, seq";
pub(crate) const JOURNAL_ENTRY: &str =
    "SELECT audience_id, identity, desired, email, user_id, data, event_ts, seq, message_id,
        version, next_attempt, prev_seq, accepted_at
     FROM journal WHERE seq = ?1";
/// De-duplication keys in hash order, so that the `seen` B-tree is walked once.
pub(crate) const JOURNAL_BY_HASH: &str = "SELECT h, seq FROM journal ORDER BY h";
pub(crate) const JOURNAL_CLEAR: &str = "DELETE FROM journal";
/// Applies one journal entry: its version and due time were decided at accept.
pub(crate) const UPSERT_MEMBER: &str = "INSERT INTO members (audience_id, identity, desired, email, user_id, data, event_ts, seq, message_id,
        version, dirty, next_attempt, changed_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12)
     ON CONFLICT (audience_id, identity) DO UPDATE SET desired = excluded.desired,
        email = excluded.email, user_id = excluded.user_id, data = excluded.data,
        event_ts = excluded.event_ts, seq = excluded.seq, message_id = excluded.message_id,
        version = excluded.version, dirty = 1, rejected = 0,
        next_attempt = excluded.next_attempt, changed_at = excluded.changed_at";

// Deliver.
pub(crate) const DUE_FOR: &str = "SELECT count(*), min(next_attempt) FROM (
        SELECT next_attempt FROM members
        WHERE audience_id = ?1 AND desired = ?2 AND dirty = 1 AND lease = 0 AND next_attempt <= ?3
        ORDER BY next_attempt LIMIT ?4)";
pub(crate) const CLAIM_SELECT: &str = "SELECT identity, version, seq, message_id, email, user_id, data, subscribe_sent, attempts, next_attempt
     FROM members
     WHERE audience_id = ?1 AND desired = ?2 AND dirty = 1 AND lease = 0 AND next_attempt <= ?3
     ORDER BY next_attempt LIMIT ?4";
pub(crate) const LEASE_ROW: &str =
    "UPDATE members SET lease = 1 WHERE audience_id = ?1 AND identity = ?2";
pub(crate) const RELEASE_ROW: &str =
    "UPDATE members SET lease = 0 WHERE audience_id = ?1 AND identity = ?2";
pub(crate) const MARK_SUBSCRIBE_SENT: &str =
    "UPDATE members SET subscribe_sent = 1 WHERE audience_id = ?1 AND identity = ?2";
/// Version-guarded: the row becomes clean only if it is still at the version sent.
pub(crate) const CONFIRM_ROW: &str =
    "UPDATE members SET confirmed_version = ?3, dirty = 0, lease = 0, attempts = 0
     WHERE audience_id = ?1 AND identity = ?2 AND version = ?3 AND dirty = 1";
pub(crate) const REJECT_ROW: &str = "UPDATE members SET dirty = 0, lease = 0, rejected = 1
     WHERE audience_id = ?1 AND identity = ?2 AND version = ?3 AND dirty = 1";
/// When the version moved on while the request was out: free the row for the newer version.
pub(crate) const UNLEASE_MOVED_ROW: &str =
    "UPDATE members SET lease = 0, confirmed_version = max(confirmed_version, ?3)
     WHERE audience_id = ?1 AND identity = ?2";

pub(crate) const RETRY_ROW: &str =
    "UPDATE members SET lease = 0, attempts = attempts + 1, next_attempt = max(next_attempt, ?3)
     WHERE audience_id = ?1 AND identity = ?2";
/// Final outcomes are never overwritten here (only a replay brings an event back to pending).
pub(crate) const SET_EVENT_OUTCOME: &str = "UPDATE events SET outcome = ?2, reason_code = ?3, reason = ?4, next_attempt = ?5, request_id = ?6,
        updated_at = ?7
     WHERE seq = ?1 AND outcome IN (0, 1)";

// Audience lifecycle and replay.
pub(crate) const MARK_IN_DIRTY: &str =
    "UPDATE members SET dirty = 1, rejected = 0, next_attempt = ?2, attempts = 0
     WHERE audience_id = ?1 AND desired = 1 AND dirty = 0";
pub(crate) const RESET_SUBSCRIBE_SENT: &str =
    "UPDATE members SET subscribe_sent = 0 WHERE audience_id = ?1 AND subscribe_sent = 1";
pub(crate) const REJECTED_ROWS: &str =
    "SELECT identity, seq FROM members WHERE audience_id = ?1 AND rejected = 1";
pub(crate) const REQUEUE_REJECTED: &str =
    "UPDATE members SET dirty = 1, rejected = 0, next_attempt = ?3, attempts = 0
     WHERE audience_id = ?1 AND identity = ?2 AND rejected = 1";
pub(crate) const EVENT_BACK_TO_PENDING: &str = "UPDATE events SET outcome = 0, reason_code = NULL, reason = NULL, next_attempt = NULL, updated_at = ?2
     WHERE seq = ?1";

// Log queries, final events.
/// The log query with only the filters given, so that SQLite can use `events_audience`
/// (`audience_id`, `outcome`, then arrival order) instead of scanning the log. Parameters are
/// numbered by position: destination, audience, identity, outcome, then the limit as `?5`.
pub(crate) fn select_log(dest: bool, audience: bool, identity: bool, outcome: bool) -> String {
    let mut sql = String::from(
        "SELECT e.message_id, d.name, a.audience_key, e.identity, e.outcome, e.reason_code, e.reason,
            e.next_attempt, e.request_id, e.accepted_at, e.updated_at
         FROM events e JOIN destinations d ON d.id = e.dest_id LEFT JOIN audiences a ON a.id = e.audience_id
         WHERE 1",
    );
    for (on, clause) in [
        (dest, " AND e.dest_id = ?1"),
        (audience, " AND e.audience_id = ?2"),
        (identity, " AND e.identity = ?3"),
        (outcome, " AND e.outcome = ?4"),
    ] {
        if on {
            sql.push_str(clause);
        }
    }
    sql.push_str(" ORDER BY e.seq DESC LIMIT ?5");
    sql
}

// Status.
/// Per audience, a range of the primary key: no sort and no temporary table, so memory stays
/// flat however large the backlog (a global GROUP BY sorted millions of rows in memory).
pub(crate) const PENDING_COUNT_FOR: &str = "SELECT desired, count(*) FROM members
     WHERE audience_id = ?1 AND dirty = 1 GROUP BY desired";

// Compaction.
pub(crate) const LOG_COUNT: &str = "SELECT count(*) FROM events";
/// The first log entry accepted at or after a time; the log's rowid follows arrival, so every
/// entry before it is older.
pub(crate) const LOG_FIRST_SINCE: &str =
    "SELECT seq FROM events WHERE accepted_at >= ?1 ORDER BY seq LIMIT 1";
pub(crate) const LOG_SEQ_AT_OFFSET: &str = "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?1";
pub(crate) const LOG_MAX_SEQ: &str = "SELECT max(seq) FROM events";
pub(crate) const LOG_DELETE_BELOW: &str = "DELETE FROM events WHERE seq < ?1";
pub(crate) const SEEN_DELETE_BELOW: &str = "DELETE FROM seen WHERE seq < ?1";
pub(crate) const DELETE_CONFIRMED_OUT: &str =
    "DELETE FROM members WHERE desired = 0 AND dirty = 0 AND lease = 0 AND rejected = 0
       AND confirmed_version = version AND changed_at < ?1";

// Key/value.
pub(crate) const KV_GET: &str = "SELECT value FROM kv WHERE namespace = ?1 AND key = ?2";
pub(crate) const KV_SET: &str = "INSERT INTO kv (namespace, key, value) VALUES (?1, ?2, ?3)
     ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value";
pub(crate) const KV_DELETE: &str = "DELETE FROM kv WHERE namespace = ?1 AND key = ?2";
