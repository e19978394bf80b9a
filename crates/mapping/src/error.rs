//! Typed errors: a mapping that does not validate, a mapping that fails on one event, a
//! trigger that does not parse.

use std::fmt;

/// One problem found while validating a mapping, with the path to the bad node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where the bad node sits, for example `mapping.dataFields.plan`.
    pub path: String,
    /// What is wrong with it, for example `@path expects a string`.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A mapping that failed validation; it holds every problem found, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mapping: {}", join(.errors))]
pub struct MappingError {
    /// The problems, never empty.
    pub errors: Vec<ValidationError>,
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A valid mapping that could not be applied to one event (for example a `@path` whose
/// computed argument is not a string, or a Liquid template that fails to render).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EvalError {
    /// The mapping node that failed.
    pub path: String,
    /// Why it failed on this event.
    pub message: String,
}

/// A trigger that does not parse. The column is 1-based and counts characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trigger syntax error at column {column}: {message}")]
pub struct TriggerError {
    /// 1-based column (in characters) where the problem was found.
    pub column: usize,
    /// What was expected or found there.
    pub message: String,
}
