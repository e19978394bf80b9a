//! Segment-compatible ingest: `/v1/batch` (and `/v1/import`), and the single-call routes
//! `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias`.
//!
//! The write key comes from Basic auth (key as user name) or the body's `writeKey`, and
//! selects the destination. A body that cannot be read, is not JSON, is not a batch or is
//! over the limit is refused whole with 400; inside a well-formed batch each element stands
//! alone (design decisions *Isolation* and *Ingest reply*).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use delivery::{AcceptReport, EventResult};
use segment::{BodyError, ElementError, Event};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::basic_write_key;
use crate::body::{over_limit, read_body};
use crate::error::ApiError;
use crate::state::AppState;

/// The 200 answer: Segment's `{"success": true}` plus what became of each element.
#[derive(Debug, Serialize)]
pub struct IngestReply {
    /// Always true on a 200 (Segment's clients read only this).
    pub success: bool,
    /// Elements in the body.
    pub received: usize,
    /// Written to the ledger; delivery follows.
    pub accepted: usize,
    /// Already accepted before (same `messageId`): applied once.
    pub duplicates: usize,
    /// Final and not an error (not an audience event, no identifier, superseded…).
    pub skipped: usize,
    /// Refused, each listed in `errors`.
    pub rejected: usize,
    /// The index and reason of each rejected element.
    pub errors: Vec<RejectedElement>,
}

/// One rejected element.
#[derive(Debug, Serialize)]
pub struct RejectedElement {
    /// Position in `batch` (0 for a single call).
    pub index: usize,
    /// Its `messageId`, when it had one.
    #[serde(rename = "messageId", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Stable reason code.
    pub code: String,
    /// Reason for a person.
    pub reason: String,
}

impl IngestReply {
    fn from_report(report: &AcceptReport) -> Self {
        let errors = report
            .events
            .iter()
            .filter_map(|e| match &e.result {
                EventResult::Rejected { reason } => Some(RejectedElement {
                    index: e.index,
                    message_id: e.message_id.clone(),
                    code: reason.code.as_str().to_owned(),
                    reason: reason.message.clone(),
                }),
                _ => None,
            })
            .collect();
        IngestReply {
            success: true,
            received: report.events.len(),
            accepted: report.accepted(),
            duplicates: report.duplicates(),
            skipped: report.skipped(),
            rejected: report.rejected(),
            errors,
        }
    }
}

/// Resolves the write key (header first, then body) to a destination, or 401.
fn destination_for(
    state: &AppState,
    header_key: Option<&str>,
    body_key: Option<&str>,
) -> Result<String, ApiError> {
    let Some(key) = header_key.or(body_key).filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_write_key",
            "no write key: send it as the Basic auth user name or as `writeKey` in the body",
        ));
    };
    state
        .write_keys
        .destination(key)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown_write_key",
                "the write key does not match any configured destination",
            )
        })
}

async fn accept(
    state: &AppState,
    destination: &str,
    elements: Vec<Result<Event, ElementError>>,
) -> Result<Response, ApiError> {
    let received = elements.len();
    match state.group.accept(destination, elements).await {
        Ok(report) => {
            state.metrics.record_accept(destination, received, &report);
            tracing::debug!(
                destination,
                received,
                accepted = report.accepted(),
                rejected = report.rejected(),
                "batch accepted"
            );
            Ok(Json(IngestReply::from_report(&report)).into_response())
        }
        Err(e) => {
            let err = ApiError::from_engine(&e);
            tracing::warn!(
                destination,
                code = err.code,
                "batch refused: {}",
                err.message
            );
            Err(err)
        }
    }
}

fn finish(
    state: &AppState,
    route: &str,
    started: Instant,
    r: Result<Response, ApiError>,
) -> Response {
    let resp = r.unwrap_or_else(IntoResponse::into_response);
    state.metrics.record_request(
        route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `POST /v1/batch` and `POST /v1/import`.
pub async fn batch(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let r = batch_inner(&state, &headers, body).await;
    finish(&state, "batch", started, r)
}

async fn batch_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let header_key = basic_write_key(headers);
    // A key in the header is checked before the body is even read.
    let early = match &header_key {
        Some(k) => Some(destination_for(state, Some(k), None)?),
        None => None,
    };
    let limits = state.limits;
    let bytes = read_body(headers, body, limits.max_batch_bytes)
        .await
        .inspect_err(|e| state.metrics.record_refused_body(early.as_deref(), e.code))?;
    let parsed = segment::parse_batch(&bytes, &limits).map_err(|e| {
        let err = body_error(&e);
        state
            .metrics
            .record_refused_body(early.as_deref(), err.code);
        err
    })?;
    let destination = match early {
        Some(d) => d,
        None => destination_for(state, None, parsed.write_key.as_ref().map(|k| k.expose()))?,
    };
    accept(state, &destination, parsed.elements).await
}

fn body_error(e: &BodyError) -> ApiError {
    match e {
        BodyError::TooLarge { limit, .. } => over_limit(*limit),
        BodyError::NotJson(m) => {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {m}"))
        }
        BodyError::NotABatch(m) => ApiError::bad_request(
            "not_a_batch",
            format!("the body is not a batch (expected {{\"batch\": [...]}}): {m}"),
        ),
    }
}

macro_rules! single_route {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("`POST /v1/", $kind, "`: one call, as a batch of one.")]
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            headers: HeaderMap,
            body: Body,
        ) -> Response {
            let started = Instant::now();
            let r = single_inner(&state, &headers, body, $kind).await;
            finish(&state, $kind, started, r)
        }
    };
}

single_route!(identify, "identify");
single_route!(track, "track");
single_route!(page, "page");
single_route!(screen, "screen");
single_route!(group, "group");
single_route!(alias, "alias");

async fn single_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    kind: &str,
) -> Result<Response, ApiError> {
    let header_key = basic_write_key(headers);
    let early = match &header_key {
        Some(k) => Some(destination_for(state, Some(k), None)?),
        None => None,
    };
    let limits = state.limits;
    let bytes = read_body(headers, body, limits.max_event_bytes)
        .await
        .inspect_err(|e| state.metrics.record_refused_body(early.as_deref(), e.code))?;
    let mut obj: Map<String, Value> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(ApiError::bad_request(
                "not_an_object",
                "the body must be a JSON object",
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            ));
        }
    };
    let body_key = match obj.remove("writeKey") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let destination = match early {
        Some(d) => d,
        None => destination_for(state, None, body_key.as_deref())?,
    };
    // The route names the call type, as Segment's API does.
    obj.insert("type".to_owned(), Value::String(kind.to_owned()));
    let text = serde_json::to_string(&obj)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let element = segment::parse_element(&text, 0, &limits);
    accept(state, &destination, vec![element]).await
}
