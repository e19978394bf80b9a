//! Store faults at ingest: a full disk, a read-only store and a busy database give a clear
//! status (503 or 429 with `Retry-After`), never a crash, and acknowledged events are still
//! delivered once the fault clears. The faults are real SQLite result codes, injected by a
//! store wrapper in front of the SQLite engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use store::{
    AcceptOutcome, Audience, AudienceId, Change, ClaimedRow, CompactStats, Direction, DueWork,
    FinalEvent, LogEntry, LogQuery, Millis, Retention, RowRef, SqliteOptions, SqliteStore, Status,
    Store, StoreError,
};

const NONE: u8 = 0;
const FULL: u8 = 1;
const READ_ONLY: u8 = 2;
const LOCKED: u8 = 3;

/// The SQLite engine, with writes at ingest failing as `fault` says.
struct Faulty {
    inner: SqliteStore,
    fault: Arc<AtomicU8>,
}

impl Faulty {
    fn check(&self) -> Result<(), StoreError> {
        let code = match self.fault.load(Ordering::SeqCst) {
            FULL => rusqlite::ffi::SQLITE_FULL,
            READ_ONLY => rusqlite::ffi::SQLITE_READONLY,
            LOCKED => rusqlite::ffi::SQLITE_BUSY,
            _ => return Ok(()),
        };
        Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        )))
    }
}

impl Store for Faulty {
    fn accept(&self, batch: &[Change], now: Millis) -> Result<Vec<AcceptOutcome>, StoreError> {
        self.check()?;
        self.inner.accept(batch, now)
    }
    fn record_final(&self, events: &[FinalEvent], now: Millis) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_final(events, now)
    }
    fn ensure_audience(&self, d: &str, k: &str) -> Result<Audience, StoreError> {
        self.inner.ensure_audience(d, k)
    }
    fn audience(&self, id: AudienceId) -> Result<Audience, StoreError> {
        self.inner.audience(id)
    }
    fn audiences(&self, d: Option<&str>) -> Result<Vec<Audience>, StoreError> {
        self.inner.audiences(d)
    }
    fn set_list(&self, id: AudienceId, l: Option<i64>, c: bool) -> Result<(), StoreError> {
        self.inner.set_list(id, l, c)
    }
    fn set_settings(&self, id: AudienceId, s: Option<&Value>) -> Result<(), StoreError> {
        self.inner.set_settings(id, s)
    }
    fn mark_in_dirty(&self, id: AudienceId, now: Millis) -> Result<u64, StoreError> {
        self.inner.mark_in_dirty(id, now)
    }
    fn due(&self, now: Millis, cap: u64) -> Result<Vec<DueWork>, StoreError> {
        self.inner.due(now, cap)
    }
    fn claim(
        &self,
        id: AudienceId,
        d: Direction,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClaimedRow>, StoreError> {
        self.inner.claim(id, d, now, limit)
    }
    fn release(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        self.inner.release(rows)
    }
    fn mark_subscribe_sent(&self, rows: &[RowRef]) -> Result<(), StoreError> {
        self.inner.mark_subscribe_sent(rows)
    }
    fn confirm(&self, rows: &[RowRef], req: &str, now: Millis) -> Result<Vec<bool>, StoreError> {
        self.inner.confirm(rows, req, now)
    }
    fn settle_skipped(
        &self,
        rows: &[RowRef],
        code: &str,
        reason: &str,
        req: Option<&str>,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        self.inner.settle_skipped(rows, code, reason, req, now)
    }
    fn retry(
        &self,
        rows: &[RowRef],
        next: Millis,
        code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.inner.retry(rows, next, code, reason, now)
    }
    fn reject(
        &self,
        rows: &[RowRef],
        code: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        self.inner.reject(rows, code, reason, now)
    }
    fn replay_rejected(&self, d: &str, a: Option<&str>, now: Millis) -> Result<u64, StoreError> {
        self.inner.replay_rejected(d, a, now)
    }
    fn log(&self, q: &LogQuery) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.log(q)
    }
    fn compact(&self, r: &Retention, now: Millis) -> Result<CompactStats, StoreError> {
        self.inner.compact(r, now)
    }
    fn status(&self) -> Result<Status, StoreError> {
        self.inner.status()
    }
    fn backlog(&self) -> u64 {
        self.inner.backlog()
    }
    fn kv_get(&self, ns: &str, k: &str) -> Result<Option<Value>, StoreError> {
        self.inner.kv_get(ns, k)
    }
    fn kv_set(&self, ns: &str, k: &str, v: Option<&Value>) -> Result<(), StoreError> {
        self.inner.kv_set(ns, k, v)
    }
    fn member_counts(&self, d: Option<&str>) -> Result<Vec<store::MemberCounts>, StoreError> {
        Store::member_counts(&self.inner, d)
    }
}

fn batch(id: &str, user: &str) -> Value {
    json!({ "batch": [{
        "type": "identify", "messageId": id, "userId": user,
        "traits": { "email": format!("{user}@example.com"), "faults": true },
        "context": { "personas": { "computation_class": "audience", "computation_key": "faults" } }
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_answer_clear_statuses_and_acknowledged_events_still_arrive() {
    let sim = Simulator::start(SimConfig::new().project("fault-key", ProjectType::Hybrid))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\n[delivery]\nflush_interval_ms = 50\ntick_ms = 20\n\
         [[destination]]\nname = \"engage\"\nwrite_key = \"wk\"\napi_key = \"fault-key\"\n\
         endpoint = \"{}\"\nallow_custom_endpoint = true\nproject_type = \"hybrid\"\n",
        dir.path().join("s.db").display(),
        sim.base_url()
    );
    let config = delivery::Config::parse(&text, |_| None).unwrap();
    let fault = Arc::new(AtomicU8::new(NONE));
    let inner = SqliteStore::open(&config.store.path, SqliteOptions::default()).unwrap();
    let store = Arc::new(Faulty {
        inner,
        fault: fault.clone(),
    });
    let server = server::Server::start_on_store(config, store, delivery::EngineOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = server.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{base}/v1/batch"))
            .basic_auth("wk", Some(""))
            .json(&body)
            .send()
    };

    assert_eq!(post(batch("f0", "before")).await.unwrap().status(), 200);
    for (mode, status, code) in [
        (FULL, 503, "store_full"),
        (READ_ONLY, 503, "store_read_only"),
        (LOCKED, 429, "store_busy"),
    ] {
        fault.store(mode, Ordering::SeqCst);
        let resp = post(batch(&format!("f{mode}"), &format!("during{mode}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{code}");
        assert!(
            resp.headers().contains_key("retry-after"),
            "{code}: no Retry-After"
        );
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["code"], code);
        assert!(
            err["message"].as_str().unwrap().contains("not accepted"),
            "{err}"
        );
    }
    fault.store(NONE, Ordering::SeqCst);
    assert_eq!(post(batch("f9", "after")).await.unwrap().status(), 200);
    let out = server.engine().wait_settled(Duration::from_secs(30)).await;
    assert_eq!(out, delivery::WaitOutcome::Settled);
    let s = sim.sim();
    let list = s.lists("fault-key").unwrap();
    let members = s.list_members("fault-key", list[0].id).unwrap();
    let mut members: Vec<_> = members.into_iter().collect();
    members.sort();
    assert_eq!(members, vec!["after@example.com", "before@example.com"]);
}
