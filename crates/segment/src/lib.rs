//! The Segment event model: identify and track calls, the `/v1/batch` envelope, size limits
//! and the parsing rules that real Segment clients rely on.
