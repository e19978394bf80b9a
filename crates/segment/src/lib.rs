//! The Segment event model: identify and track calls, the `/v1/batch` envelope, size limits
//! and the parsing rules that real Segment clients rely on.
//!
//! - [`Event`]: one call, typed where the product needs it, raw JSON maps where mappings read
//!   arbitrary paths (`traits`, `properties`, `context`).
//! - [`parse_batch`], [`parse_ndjson`], [`parse_event`]: bodies in, one result per element out.
//!   A body that is not JSON or over [`Limits`] fails whole ([`BodyError`]); inside it each
//!   element stands alone ([`ElementError`] names index, field and reason).
//! - [`raw`]: single-key reads of raw JSON objects, for the fast default-mapping path.
//! - [`Timestamp`]: ISO-8601 with offsets, as nanoseconds since the epoch.

mod event;
mod parse;
pub mod raw;
mod timestamp;

pub use event::{Event, EventType, Personas};
pub use parse::{
    Batch, BodyError, ElementError, Limits, WriteKey, ndjson_iter, parse_batch, parse_element,
    parse_event, parse_ndjson,
};
pub use timestamp::{Timestamp, TimestampError};
