//! The typed Iterable API client: request and response types, regions, error classes.

pub mod types;

pub use types::*;
