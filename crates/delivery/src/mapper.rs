//! The seam where mappings plug in: turning one parsed event into a membership change or a
//! final skip/rejection. The default mapping is built in; the mapping integration provides
//! its own [`Mapper`] per destination.

use destination::custom_mapping::MappingSet;
use destination::default_mapping::{MapContext, map_event};
use destination::model::ProcessedEvent;
use destination::settings::DestinationSettings;
use segment::Event;

/// Maps one event for one destination.
pub trait Mapper: Send + Sync + 'static {
    /// The change the event implies, or why it ends here (design decisions 1, 2, 8).
    fn map(&self, event: &Event, settings: &DestinationSettings, ctx: MapContext)
    -> ProcessedEvent;
}

/// The default mapping (design decision 8: used when a destination has no custom mapping).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultMapper;

impl Mapper for DefaultMapper {
    fn map(
        &self,
        event: &Event,
        settings: &DestinationSettings,
        ctx: MapContext,
    ) -> ProcessedEvent {
        map_event(event, settings, ctx)
    }
}

/// Custom mappings declared for a destination (design decision 8).
impl Mapper for MappingSet {
    fn map(
        &self,
        event: &Event,
        settings: &DestinationSettings,
        ctx: MapContext,
    ) -> ProcessedEvent {
        MappingSet::map(self, event, settings, ctx)
    }
}
