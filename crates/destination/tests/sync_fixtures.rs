//! The Engage fixtures (`tests/fixtures/engage/`) end in the membership their README states, through the embedded simulator.

mod sync_support;

use std::time::Duration;

use destination::lists::ListSettings;
use destination::sync::SyncSettings;
use iterable::ProjectType;
use iterable_sim::Faults;
use segment::{Limits, parse_ndjson};
use sync_support::*;

const IDENTIFY: &str = include_str!("fixtures/engage/identify-audiences.ndjson");
const TRACK: &str = include_str!("fixtures/engage/track-audiences.ndjson");

fn expected(sim: &iterable_sim::Simulator, ids: [i64; 3]) {
    assert_eq!(
        members(sim, ids[0], false),
        vec!["ana@example.com", "chloe@example.com"]
    );
    assert_eq!(members(sim, ids[1], false), vec!["dev@example.com"]);
    assert_eq!(
        members(sim, ids[2], false),
        vec!["fay@example.com", "u-2003"]
    );
}

// Lists that already exist (the CDP holds their ids): each line sent as its own batch.
#[tokio::test]
async fn fixtures_one_event_at_a_time_into_existing_lists() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    for (id, name) in [
        (4269566, "first_time_shopper"),
        (4269570, "vip_customers"),
        (4269581, "cart_abandoners"),
    ] {
        e.sim.create_list(KEY, id, name).unwrap();
    }
    for body in [IDENTIFY, TRACK] {
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = parse_ndjson(line.as_bytes(), &Limits::default());
            let r = e.exec.sync_parsed(&parsed).await;
            assert!(!r.any_rejected(), "{line}: {:?}", r.outcomes);
        }
    }
    expected(&e.sim, [4269566, 4269570, 4269581]);
}

// An empty project, whole files as batches, with lists created on the way (and not visible
// at once, iterable-api.md §7 G1).
#[tokio::test]
async fn fixtures_as_batches_into_an_empty_project() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    e.sim.set_faults(Faults {
        new_list_invisible_ms: 300,
        ..Faults::none()
    });
    let settings = SyncSettings {
        lists: ListSettings {
            new_list_first_retry: Duration::from_millis(100),
            ..ListSettings::default()
        },
        ..fast_settings()
    };
    let exec = executor(&e.dest, settings, true);
    for body in [IDENTIFY, TRACK] {
        let parsed = parse_ndjson(body.as_bytes(), &Limits::default());
        let r = exec.sync_parsed(&parsed).await;
        assert!(!r.any_rejected(), "{:?}", r.outcomes);
        assert_eq!(r.outcomes.len(), parsed.len());
    }
    expected(
        &e.sim,
        [
            list_id(&e.sim, "first_time_shopper"),
            list_id(&e.sim, "vip_customers"),
            list_id(&e.sim, "cart_abandoners"),
        ],
    );
    assert_eq!(e.sim.lists(KEY).unwrap().len(), 3);
}

// design decision 9: a line that does not parse is rejected alone.
#[tokio::test]
async fn unparsable_line_is_rejected_alone() {
    let e = env(ProjectType::Hybrid, |_| {}).await;
    let mut body = String::from("{not json\n");
    body.push_str(IDENTIFY.lines().next().unwrap());
    let parsed = parse_ndjson(body.as_bytes(), &Limits::default());
    let r = e.exec.sync_parsed(&parsed).await;
    assert!(rejected_with(
        &r.outcomes[0],
        destination::model::ReasonCode::BadInput
    ));
    assert!(is_delivered(&r.outcomes[1]), "{:?}", r.outcomes);
}
