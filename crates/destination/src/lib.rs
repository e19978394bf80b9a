//! The Iterable Lists destination: settings, the default mapping, membership, audience
//! lifecycle, the request planner and result attribution.
