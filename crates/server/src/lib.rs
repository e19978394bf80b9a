//! The HTTP service: Segment-compatible ingest, the admin API, metrics and health.
