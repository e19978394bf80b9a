//! The typed Iterable API client: request and response types, regions, error classes.
//!
//! - [`Client`] talks to one Iterable project (an [`ApiKey`] and an [`Endpoint`]: a region's
//!   host or an explicit base URL such as the simulator's). Membership calls return the
//!   [`RawResponse`] (status, body bytes, `Retry-After`) that attribution needs; list calls
//!   return typed results.
//! - [`classify`] turns an answer into an [`ErrorClass`]: the HTTP status decides before any
//!   body `code`.
//! - [`ListApi`] is what the destination needs from a project; [`Client`] and the do-nothing
//!   [`NullSink`] implement it.
//!
//! The API key is sent only in the `Api-Key` header and never appears in `Debug` output, logs
//! or error messages.

#![warn(missing_docs)]

pub mod api;
pub mod client;
pub mod error;
pub mod types;

pub use api::{ListApi, NullSink};
pub use client::{
    ApiKey, Client, ClientConfig, Endpoint, MembershipOp, RawResponse, parse_retry_after, to_bytes,
};
pub use error::{Error, ErrorBody, ErrorClass, TransportError, classify, describe_status};
pub use types::*;
