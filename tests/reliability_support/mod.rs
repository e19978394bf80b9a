//! Shared helpers of the reliability campaign's tests.

#![allow(dead_code)]

pub mod corpus;
pub mod process;
