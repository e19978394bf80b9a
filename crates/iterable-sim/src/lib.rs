//! A faithful local stand-in for Iterable's list API, for tests, demos and benchmarks.
