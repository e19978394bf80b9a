//! Iterable's answers on arbitrary bytes: the bulk-response reader that traces each
//! per-subscriber failure back to its change, the error-body reader and the status
//! classifier. Nothing may panic, and a completed answer gives exactly one outcome per change.

#![no_main]

use destination::attribution::{Verdict, attribute, iterable_message};
use destination::model::Direction;
use destination::planner::PlannedRequest;
use destination::settings::EffectiveAudienceSettings;
use libfuzzer_sys::fuzz_target;

const SUBSCRIBERS: &[u8] = br#"{"listId":7,"subscribers":[{"email":"a@example.com","userId":"u1"},{"email":"B@Example.com"},{"userId":"u3"},{"email":"a@example.com"}],"updateExistingUsersOnly":false}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let Some((&low, body)) = rest.split_first() else { return };
    // Mostly 200s (the bulk body is read), the rest spread over every status.
    let status = match head % 4 {
        0 | 1 => 200,
        2 => 400,
        _ => 100 + (u16::from(head) * 256 + u16::from(low)) % 500,
    };
    let direction = if low % 2 == 0 { Direction::Subscribe } else { Direction::Unsubscribe };
    for n in [1usize, 4] {
        let request = PlannedRequest {
            list_id: 7,
            direction,
            settings: EffectiveAudienceSettings::default(),
            body: SUBSCRIBERS.to_vec(),
            changes: (0..n).collect(),
        };
        match attribute(&request, status, body) {
            Verdict::Completed { results, .. } => {
                assert!((200..300).contains(&status));
                let mut seen: Vec<usize> = results.iter().map(|(i, _)| *i).collect();
                seen.sort_unstable();
                assert_eq!(seen, request.changes, "one outcome per change");
                assert!(results.iter().all(|(_, o)| o.is_final()), "{results:?}");
            }
            Verdict::Split { .. } => assert!(n > 1, "a single subscriber is never split"),
            _ => {}
        }
    }
    let _ = iterable_message(body);
    let _ = iterable::classify(status, body);
    let _ = iterable::describe_status(status, body);
    let _ = iterable::ErrorBody::parse(body);
    let _ = serde_json::from_slice::<iterable::BulkResponse>(body);
});
