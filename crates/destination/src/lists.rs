//! Audience → list resolution (written by core-B).
