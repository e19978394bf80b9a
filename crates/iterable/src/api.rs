//! The operations the destination needs, as a trait, so that the real client, the embedded
//! simulator's client and a do-nothing sink are interchangeable.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;

use crate::client::{Client, MembershipOp, RawResponse};
use crate::error::{Error, TransportError};
use crate::types::GetListsResponse;

/// What the destination asks of an Iterable project.
pub trait ListApi: Send + Sync + 'static {
    /// `GET /api/lists`.
    fn get_lists(&self) -> impl Future<Output = Result<GetListsResponse, Error>> + Send;
    /// `POST /api/lists`; the new list's id.
    fn create_list(&self, name: &str) -> impl Future<Output = Result<i64, Error>> + Send;
    /// `POST /api/lists/subscribe|unsubscribe` with a serialized body; the raw answer.
    fn membership(
        &self,
        op: MembershipOp,
        body: Bytes,
    ) -> impl Future<Output = Result<RawResponse, TransportError>> + Send;
}

impl ListApi for Client {
    async fn get_lists(&self) -> Result<GetListsResponse, Error> {
        Client::get_lists(self).await
    }

    async fn create_list(&self, name: &str) -> Result<i64, Error> {
        Client::create_list(self, name, None).await
    }

    async fn membership(
        &self,
        op: MembershipOp,
        body: Bytes,
    ) -> Result<RawResponse, TransportError> {
        self.membership_raw(op, body).await
    }
}

/// A sink that accepts everything without I/O: it knows no lists and creates any, every
/// membership request answers
/// `200 {"successCount":0,"failCount":0}` (no failures, so every subscriber counts as
/// delivered). For benchmarks of everything but the network.
#[derive(Debug, Default)]
pub struct NullSink {
    next_list_id: AtomicI64,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl NullSink {
    /// A new sink.
    pub fn new() -> Self {
        NullSink {
            next_list_id: AtomicI64::new(1),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Membership requests received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

const NULL_ANSWER: &[u8] = br#"{"successCount":0,"failCount":0}"#;

impl ListApi for NullSink {
    async fn get_lists(&self) -> Result<GetListsResponse, Error> {
        Ok(GetListsResponse::default())
    }

    async fn create_list(&self, _name: &str) -> Result<i64, Error> {
        Ok(self.next_list_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn membership(
        &self,
        _op: MembershipOp,
        body: Bytes,
    ) -> Result<RawResponse, TransportError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(RawResponse {
            status: 200,
            body: Bytes::from_static(NULL_ANSWER),
            retry_after: None,
        })
    }
}
