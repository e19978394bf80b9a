//! In-memory executor (written by core-B).
