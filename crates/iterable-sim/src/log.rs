//! The request log: every request to Iterable's endpoints with its body and outcome, bounded
//! in entries and in body bytes so that memory does not grow with traffic.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::RequestLogConfig;

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Sequence number of the request (0-based, over the simulator's lifetime).
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    /// The project the key designated, if any.
    pub project_id: Option<i64>,
    /// The body (lossy UTF-8).
    pub body: String,
    /// The status answered; `None` when the connection was cut instead.
    pub status: Option<u16>,
    /// The fault injected, if any: `error`, `delay`, `cut_before`, `cut_after`, `rate_limit`.
    pub fault: Option<String>,
}

pub(crate) struct Entry {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub project_id: Option<i64>,
    pub body: Bytes,
    pub status: Option<u16>,
    pub fault: Option<&'static str>,
}

impl Entry {
    fn to_public(&self) -> LoggedRequest {
        LoggedRequest {
            seq: self.seq,
            method: self.method.clone(),
            path: self.path.clone(),
            project_id: self.project_id,
            body: String::from_utf8_lossy(&self.body).into_owned(),
            status: self.status,
            fault: self.fault.map(str::to_owned),
        }
    }
}

pub(crate) struct RequestLog {
    inner: Mutex<LogInner>,
}

struct LogInner {
    config: RequestLogConfig,
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl RequestLog {
    pub fn new(config: RequestLogConfig) -> Self {
        RequestLog {
            inner: Mutex::new(LogInner {
                config,
                entries: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    pub fn push(&self, entry: Entry) {
        let mut g = self.inner.lock();
        if g.config.capacity == 0 {
            return;
        }
        g.bytes += entry.body.len();
        g.entries.push_back(entry);
        while g.entries.len() > g.config.capacity
            || (g.bytes > g.config.max_body_bytes && g.entries.len() > 1)
        {
            if let Some(old) = g.entries.pop_front() {
                g.bytes -= old.body.len();
            }
        }
    }

    pub fn snapshot(&self) -> Vec<LoggedRequest> {
        self.inner
            .lock()
            .entries
            .iter()
            .map(Entry::to_public)
            .collect()
    }

    pub fn clear(&self) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.bytes = 0;
    }
}
