//! Error answers: one JSON shape for every refusal, with the status a client can act on.
//!
//! Messages are written for a person and never carry a secret: they name what was wrong
//! ("unknown write key"), never the value that was sent.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use delivery::EngineError;
use serde::Serialize;

/// A refusal: status, stable machine code, message, and an optional `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`unauthorized`, `body_too_large`, …).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Seconds to wait before retrying (429 and 503 answers).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// A refusal without `Retry-After`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_secs().max(1));
        self
    }

    /// Maps an engine error to the answer a client can act on: busy and transient store
    /// conditions are 429 with `Retry-After`; a store that cannot write (disk full, read-only,
    /// failing) is 503 with `Retry-After`; a stopped engine is 503.
    pub fn from_engine(e: &EngineError) -> Self {
        match e {
            EngineError::Busy { retry_after, .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                format!("{e}; the batch was not accepted"),
            )
            .retry_after(*retry_after),
            EngineError::UnknownDestination(_) => {
                Self::new(StatusCode::NOT_FOUND, "unknown_destination", e.to_string())
            }
            EngineError::ShutDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down; the batch was not accepted",
            )
            .retry_after(Duration::from_secs(5)),
            EngineError::Store(se) => store_fault(se),
            EngineError::StoreLocked(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is held by another process; the batch was not accepted",
            )
            .retry_after(Duration::from_secs(5)),
            EngineError::Config(_) | EngineError::Client { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the service is misconfigured; see its log",
            ),
            // `EngineError` is not exhaustive in spirit: anything new is a server fault.
            #[allow(unreachable_patterns)]
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the service log",
            ),
        }
    }
}

/// Classifies a store failure by SQLite's primary result code.
fn store_fault(e: &store::StoreError) -> ApiError {
    use rusqlite::ErrorCode;
    let code = match e {
        store::StoreError::Sqlite(s) => s.sqlite_error_code(),
        _ => None,
    };
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "store_busy",
            "the store is busy; the batch was not accepted, retry later",
        )
        .retry_after(Duration::from_secs(2)),
        Some(ErrorCode::DiskFull) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_full",
            "the store's disk is full; the batch was not accepted (free space, then retry)",
        )
        .retry_after(Duration::from_secs(30)),
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_read_only",
                "the store cannot be written (read-only file or directory); the batch was not accepted",
            )
            .retry_after(Duration::from_secs(30))
        }
        Some(ErrorCode::SystemIoFailure) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_io_error",
            "the store failed to write (I/O error); the batch was not accepted",
        )
        .retry_after(Duration::from_secs(30)),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_error",
            format!("the store failed ({e}); the batch was not accepted"),
        )
        .retry_after(Duration::from_secs(10)),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            success: false,
            code: self.code,
            message: &self.message,
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
