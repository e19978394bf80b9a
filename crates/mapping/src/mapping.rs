//! [`Mapping`]: a validated mapping-kit mapping, ready to apply to events.

use serde_json::{Map, Value};

use crate::compile::Compiler;
use crate::error::{EvalError, MappingError};
use crate::node::Node;

/// A mapping that passed validation. Applying it never re-validates.
///
/// ```
/// use serde_json::json;
/// let m = mapping::Mapping::compile(&json!({
///     "email": {"@path": "$.traits.email"},
///     "source": "crm",
/// })).unwrap();
/// let out = m.apply(&json!({"traits": {"email": "a@example.com"}})).unwrap();
/// assert_eq!(out, json!({"email": "a@example.com", "source": "crm"}));
/// ```
#[derive(Debug)]
pub struct Mapping {
    root: Node,
}

impl Mapping {
    /// Validates a mapping object (raw values, directives and, optionally, the root
    /// directive `__segment_internal_directive`). Every problem is reported, each with the
    /// path to its node, starting at `mapping`.
    pub fn compile(mapping: &Value) -> Result<Self, MappingError> {
        Self::compile_at(mapping, "mapping")
    }

    /// Like [`Mapping::compile`], naming the root `root` in error paths.
    pub fn compile_at(mapping: &Value, root: &str) -> Result<Self, MappingError> {
        let mut c = Compiler::new();
        let node = c.root(mapping, root);
        if c.errors.is_empty() {
            Ok(Self { root: node })
        } else {
            Err(MappingError { errors: c.errors })
        }
    }

    /// Applies the mapping to one event. Keys that resolve to nothing are absent from the
    /// result; `null` is kept.
    pub fn apply(&self, event: &Value) -> Result<Value, EvalError> {
        Ok(self
            .root
            .eval(event)?
            .unwrap_or_else(|| Value::Object(Map::new())))
    }
}

/// Validates and applies a mapping in one call (for tools; services should keep the
/// compiled [`Mapping`]).
pub fn transform(mapping: &Value, event: &Value) -> Result<Value, TransformError> {
    Ok(Mapping::compile(mapping)?.apply(event)?)
}

/// Why [`transform`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The mapping is not valid.
    #[error(transparent)]
    Invalid(#[from] MappingError),
    /// The mapping failed on this event.
    #[error(transparent)]
    Eval(#[from] EvalError),
}
