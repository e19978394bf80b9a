//! Schema migrations run on open, once each, and a file from a newer build is refused.

use rusqlite::Connection;
use store::{Change, Direction, SqliteOptions, SqliteStore, Store, StoreError};

fn versions(path: &std::path::Path) -> Vec<i64> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn tables(path: &std::path::Path) -> Vec<String> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn fresh_file_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let want: Vec<i64> = (1..=SqliteStore::schema_version()).collect();
    assert_eq!(versions(&path), want);
    let t = tables(&path);
    for name in [
        "audiences",
        "events",
        "kv",
        "members",
        "schema_version",
        "seen",
    ] {
        assert!(t.iter().any(|x| x == name), "missing table {name} in {t:?}");
    }
}

#[test]
fn existing_file_is_opened_without_running_migrations_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("existing.db");
    {
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        store
            .accept(
                &[Change {
                    destination: "d".into(),
                    audience_key: "a".into(),
                    identity: "u".into(),
                    email: None,
                    user_id: Some("u".into()),
                    direction: Direction::In,
                    data_fields: None,
                    message_id: "m".into(),
                    timestamp: 1,
                    audience_settings: None,
                }],
                1,
            )
            .unwrap();
    }
    let before = versions(&path);
    let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
    assert_eq!(store.backlog(), 1);
    drop(store);
    assert_eq!(versions(&path), before);
}

#[test]
fn file_with_only_a_version_table_is_brought_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty-versioned.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")
            .unwrap();
    }
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    let want: Vec<i64> = (1..=SqliteStore::schema_version()).collect();
    assert_eq!(versions(&path), want);
}

#[test]
fn file_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [SqliteStore::schema_version() + 1],
        )
        .unwrap();
    }
    match SqliteStore::open(&path, SqliteOptions::default()) {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!(found, SqliteStore::schema_version() + 1);
            assert_eq!(supported, SqliteStore::schema_version());
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}
