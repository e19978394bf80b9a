//! The Iterable Lists destination: settings, the default mapping, membership, audience
//! lifecycle, the request planner and result attribution.
//!
//! Pure logic, no I/O. The flow for one batch of events:
//!
//! 1. [`default_mapping::map_event`] turns a parsed [`segment::Event`] into a
//!    [`model::ProcessedEvent`]: a [`model::MembershipChange`] (who, which audience, in or out)
//!    or a final skip/rejection with a [`model::Reason`]. With custom mappings,
//!    [`custom_mapping::MappingSet::map`] does the same through Segment-compatible mappings.
//! 2. [`planner::plan`] groups changes per list and direction, keeps the latest state per
//!    identity, and chunks them into Iterable request bodies.
//! 3. [`attribution::attribute`] reads Iterable's answer to one planned request and says what
//!    became of each change it carried.

pub mod attribution;
pub mod custom_mapping;
pub mod default_mapping;
pub mod identity;
pub mod lists;
pub mod membership;
pub mod model;
pub mod planner;
pub mod preview;
pub mod settings;
pub mod sync;
