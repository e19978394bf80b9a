//! Every fixture in tests/fixtures/engage (copied from the shared fixtures) through parse →
//! default mapping → planner, with every request answered as a success: the final list
//! membership must be what the fixtures' README states.

use std::collections::{BTreeMap, BTreeSet};

use destination::default_mapping::{MapContext, map_event};
use destination::model::{Direction, ProcessedEvent, Timestamp};
use destination::planner::{self, PlanConfig, PlanItem};
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use segment::{Event, Limits, parse_batch, parse_ndjson};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/engage");

fn events(file: &str) -> Vec<Event> {
    let body = std::fs::read(format!("{DIR}/{file}")).unwrap();
    let limits = Limits::default();
    let parsed = if file.ends_with(".ndjson") {
        parse_ndjson(&body, &limits)
    } else {
        parse_batch(&body, &limits).unwrap().elements
    };
    parsed.into_iter().map(|r| r.unwrap()).collect()
}

/// Final membership per list, each member named by userId when sent, else email.
fn run(file: &str, project: ProjectType) -> BTreeMap<i64, BTreeSet<String>> {
    let settings = DestinationSettings::new(ApiKey::new("k"), project);
    let mut changes = Vec::new();
    for (i, e) in events(file).iter().enumerate() {
        let ctx = MapContext {
            received_order: i as u64,
            received_at: Timestamp::from_unix_millis(0),
        };
        match map_event(e, &settings, ctx) {
            ProcessedEvent::Change(c) => changes.push(*c),
            other => panic!("{file} event {i}: {other:?}"),
        }
    }
    let items: Vec<PlanItem<'_>> = changes
        .iter()
        .map(|c| {
            let (eff, _) = settings.effective(&c.audience_key, c.audience_settings.as_ref());
            PlanItem {
                list_id: c.list_hint.expect("fixtures carry list ids"),
                settings: eff,
                change: c,
            }
        })
        .collect();
    let plan = planner::plan(&PlanConfig::from_settings(&settings), &items);
    let mut lists: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for r in &plan.requests {
        let members = lists.entry(r.list_id).or_default();
        for (email, user_id) in r.sent_identifiers() {
            let who = user_id.or(email).unwrap();
            match r.direction {
                Direction::Subscribe => members.insert(who),
                Direction::Unsubscribe => members.remove(&who),
            };
        }
    }
    lists.retain(|_, m| !m.is_empty());
    lists
}

fn expect(pairs: &[(i64, &[&str])]) -> BTreeMap<i64, BTreeSet<String>> {
    pairs
        .iter()
        .map(|(l, ms)| (*l, ms.iter().map(|m| m.to_string()).collect()))
        .collect()
}

// README: 4269566: ana (u-1001), chloe (u-1003). 4269570: dev (u-1004).
#[test]
fn identify_audiences_fixture_ends_with_the_stated_membership() {
    assert_eq!(
        run("identify-audiences.ndjson", ProjectType::Hybrid),
        expect(&[(4269566, &["u-1001", "u-1003"]), (4269570, &["u-1004"])])
    );
}

// README: 4269581: fay@example.com, u-2003.
#[test]
fn track_audiences_fixture_ends_with_the_stated_membership() {
    assert_eq!(
        run("track-audiences.ndjson", ProjectType::Hybrid),
        expect(&[(4269581, &["fay@example.com", "u-2003"])])
    );
}

// README: 4242: u1.
#[test]
fn python_client_batch_fixture_ends_with_the_stated_membership() {
    assert_eq!(
        run("v1-batch-python-client.json", ProjectType::Hybrid),
        expect(&[(4242, &["u1"])])
    );
}

// The vip_customers audience carries campaignId 731204: ana's exit is attributed to it.
#[test]
fn identify_fixture_exit_carries_the_campaign_id() {
    let settings = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
    let e = &events("identify-audiences.ndjson")[6];
    let ProcessedEvent::Change(c) = map_event(
        e,
        &settings,
        MapContext {
            received_order: 6,
            received_at: Timestamp::default(),
        },
    ) else {
        panic!()
    };
    let (eff, _) = settings.effective(&c.audience_key, c.audience_settings.as_ref());
    let items = [PlanItem {
        list_id: 4269570,
        settings: eff,
        change: &c,
    }];
    let plan = planner::plan(&PlanConfig::from_settings(&settings), &items);
    let body: serde_json::Value = serde_json::from_slice(&plan.requests[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"listId": 4269570, "subscribers": [{"email": "ana@example.com", "userId": "u-1001"}],
                           "campaignId": 731204, "channelUnsubscribe": false})
    );
}
