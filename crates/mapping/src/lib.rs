//! Segment-compatible mapping directives and the trigger language. Pure functions, no I/O.
//!
//! Users arrive with mappings written for Segment's actions framework; this crate accepts
//! them unchanged and reproduces the framework's semantics, quirks included
//! (`engage-events.md` §2.1–2.2):
//!
//! - [`Mapping`]: a validated mapping-kit mapping (`@path`, `@if`, `@template`, `@literal`,
//!   `@arrayPath`, `@case`, `@replace`, `@merge`, `@transform`, `@flatten`, `@json`,
//!   `@excludeWhenNull`, `@liquid`, and the root directive `__segment_internal_directive`).
//!   Validation reports each problem with the path to its node; applying never re-validates.
//! - [`Trigger`]: the trigger (FQL) language, with Segment's grouping and typing rules.
//! - [`ActionMapping`], [`MappingSpec`], [`MappedFields`]: the Iterable Lists action's
//!   fields, their defaults written in the mapping language, presets, and
//!   [`test_mapping`] for one event and one mapping.

#![warn(missing_docs)]

mod action;
mod compile;
mod error;
mod js;
mod liquid_tpl;
mod liquid_view;
mod mapping;
mod node;
mod path;
mod template;
mod trigger;

pub use action::{
    ACTION_FIELDS, ActionMapping, DEFAULT_EMAIL, DEFAULT_SEGMENT_AUDIENCE_ID,
    DEFAULT_SEGMENT_AUDIENCE_KEY, DEFAULT_TRAITS_OR_PROPERTIES, DEFAULT_USER_ID, MapError,
    MappedFields, MappingSpec, PRESET_IDENTIFY, PRESET_JOURNEY_STEP, PRESET_LINKED_AUDIENCE,
    PRESET_TRACK, PRESETS, Preset, SpecError, TestMappingReport, default_fields,
    linked_audience_root_directive, select, test_mapping,
};
pub use compile::{DIRECTIVES, MAX_REPLACE_LENGTH, ROOT_DIRECTIVE_KEY};
pub use error::{EvalError, MappingError, TriggerError, ValidationError};
pub use liquid_tpl::{DISABLED_FILTERS, DISABLED_TAGS, MAX_LIQUID_LENGTH};
pub use mapping::{Mapping, TransformError, transform};
pub use path::Path;
pub use trigger::{
    CompareOp, Condition, DEFAULT_TRIGGER, Field, Group, GroupOp, Literal, TextFn, Trigger,
};
