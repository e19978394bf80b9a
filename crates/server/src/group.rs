//! Group commit across concurrent requests: batches that arrive while the store is writing
//! are merged into the next transaction, per destination.
//!
//! One SQLite transaction per request makes concurrent clients queue for the write lock and
//! pay one commit (and fsync) each. Here a single committer per destination takes the first
//! waiting batch plus every batch queued behind it (up to a bound), hands them to the engine
//! as one batch, and splits the report back. An idle service adds no delay: a lone request is
//! committed at once. Each element is still judged alone (design decision *Isolation*); a
//! refusal of the whole transaction (busy, store fault) is the answer to every request in it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use delivery::{AcceptReport, Engine, EngineError};
use segment::{ElementError, Event};
use tokio::sync::{mpsc, oneshot};

/// Most events merged into one transaction.
const MAX_GROUP_EVENTS: usize = 20_000;

type Reply = oneshot::Sender<Result<AcceptReport, Arc<EngineError>>>;

struct Job {
    events: Vec<Result<Event, ElementError>>,
    reply: Reply,
}

/// One committer per destination.
pub struct GroupCommit {
    senders: HashMap<String, mpsc::Sender<Job>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts a committer for each destination of the engine (inside a tokio runtime).
    pub fn start(engine: Arc<Engine>) -> Self {
        let senders = engine
            .destinations()
            .into_iter()
            .map(|d| {
                let (tx, rx) = mpsc::channel::<Job>(1024);
                // A weak reference: the committer never keeps the engine (and its store lock)
                // alive once the service is gone.
                tokio::spawn(committer(Arc::downgrade(&engine), d.clone(), rx));
                (d, tx)
            })
            .collect();
        GroupCommit { senders }
    }

    /// Accepts a batch for `destination`, possibly in one transaction with others.
    pub async fn accept(
        &self,
        destination: &str,
        events: Vec<Result<Event, ElementError>>,
    ) -> Result<AcceptReport, Arc<EngineError>> {
        let Some(tx) = self.senders.get(destination) else {
            return Err(Arc::new(EngineError::UnknownDestination(
                destination.to_owned(),
            )));
        };
        let (reply, rx) = oneshot::channel();
        if tx.send(Job { events, reply }).await.is_err() {
            return Err(Arc::new(EngineError::ShutDown));
        }
        rx.await.unwrap_or(Err(Arc::new(EngineError::ShutDown)))
    }
}

async fn committer(engine: Weak<Engine>, destination: String, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut total = jobs[0].events.len();
        while total < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(j) => {
                    total += j.events.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let mut counts = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        let mut events = Vec::with_capacity(total);
        for j in jobs {
            counts.push(j.events.len());
            events.extend(j.events);
            replies.push(j.reply);
        }
        let Some(engine) = engine.upgrade() else {
            for reply in replies {
                let _ = reply.send(Err(Arc::new(EngineError::ShutDown)));
            }
            return;
        };
        let result = engine.accept_batch(&destination, events).await;
        drop(engine);
        match result {
            Ok(report) => {
                // One report per input, in input order: slice it back per request.
                let mut rest = report.events.into_iter();
                for (n, reply) in counts.into_iter().zip(replies) {
                    let mut part: Vec<_> = rest.by_ref().take(n).collect();
                    for (k, e) in part.iter_mut().enumerate() {
                        e.index = k;
                    }
                    let _ = reply.send(Ok(AcceptReport { events: part }));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
