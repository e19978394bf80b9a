//! Event parsing on arbitrary bytes: the `/v1/batch` envelope, NDJSON and single events,
//! then the default mapping for each project type. Nothing may panic, every element keeps
//! its position, and every change that comes out carries a valid identity.

#![no_main]

use destination::default_mapping::{MapContext, map_event};
use destination::identity::{normalize_email, validate_user_id};
use destination::model::ProcessedEvent;
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use libfuzzer_sys::fuzz_target;
use segment::{Limits, Timestamp};

fn check(event: &segment::Event, order: u64) {
    for project in [ProjectType::Hybrid, ProjectType::Email, ProjectType::UserId] {
        let mut settings = DestinationSettings::new(ApiKey::new("fuzz-key"), project);
        settings.data_fields = vec!["first_name".into(), "email".into(), "a".into()];
        let ctx = MapContext {
            received_order: order,
            received_at: Timestamp::from_unix_millis(1_700_000_000_000),
        };
        if let ProcessedEvent::Change(c) = map_event(event, &settings, ctx) {
            let id = &c.identity;
            assert!(id.email().is_some() || id.user_id().is_some(), "{c:?}");
            if let Some(e) = id.email() {
                assert_eq!(normalize_email(e).as_deref(), Ok(e), "{c:?}");
            }
            if let Some(u) = id.user_id() {
                assert!(validate_user_id(u).is_ok(), "{c:?}");
            }
            if project == ProjectType::UserId {
                assert!(id.user_id().is_some(), "{c:?}");
            }
            assert!(!c.audience_key.trim().is_empty(), "{c:?}");
            assert!(!c.message_id.is_empty(), "{c:?}");
            assert!(!c.data_fields.contains_key("email"), "{c:?}");
        }
        let _ = event.traits();
        let _ = event.context();
        let _ = event.properties();
    }
}

fuzz_target!(|data: &[u8]| {
    // Small limits too, so that the size checks are reached often.
    for limits in [Limits::default(), Limits { max_event_bytes: 64, max_batch_bytes: 256 }] {
        if let Ok(batch) = segment::parse_batch(data, &limits) {
            for (i, el) in batch.elements.iter().enumerate() {
                match el {
                    Ok(e) => check(e, i as u64),
                    Err(err) => {
                        assert_eq!(err.index, i);
                        assert!(!err.reason.is_empty());
                    }
                }
            }
        }
        let lines = data.split(|&b| b == b'\n').count();
        for el in segment::ndjson_iter(data, &limits) {
            match el {
                Ok(e) => check(&e, 0),
                Err(err) => {
                    assert!(err.index < lines, "line {} of {lines}", err.index);
                    assert!(!err.reason.is_empty());
                }
            }
        }
        if let Ok(e) = segment::parse_event(data, &limits) {
            check(&e, 0);
        }
    }
});
