//! Mappings declared in the configuration file drive the engine (design decision 8), and a
//! bad one is refused when the file is read.

mod support;

use serde_json::json;
use support::*;

const MAPPINGS: &str = r#"
[[destination.mappings]]
name = "customer-email"
trigger = 'type = "identify"'
mapping = { email = { "@path" = "$.traits.customer_email" } }
"#;

// design decision 8: the first enabled declared mapping whose trigger matches handles the
// event; an event no trigger matches is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_mapping_chooses_the_email_and_unmatched_events_are_skipped() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&dir.path().join("s.db"), &sim.base_url(), "", MAPPINGS);
    let engine = engine(&text).await;
    let events = vec![
        json!({
            "type": "identify", "messageId": "m1", "userId": "u1",
            "timestamp": "2026-11-02T09:30:22.829Z",
            "traits": {"customer_email": "Custom@Example.com", "vip": true},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip"}}
        }),
        json!({
            "type": "track", "event": "Audience Entered", "messageId": "m2", "userId": "u2",
            "timestamp": "2026-11-02T09:30:23.000Z",
            "properties": {"audience_key": "vip", "vip": true},
            "context": {"traits": {"email": "two@example.com"},
                        "personas": {"computation_class": "audience", "computation_key": "vip"}}
        }),
    ];
    let report = engine
        .accept_batch("engage", parsed(&events))
        .await
        .unwrap();
    assert_eq!(report.accepted(), 1, "{report:?}");
    assert_eq!(report.skipped(), 1, "{report:?}");
    let skip = format!("{:?}", report.events[1].result);
    assert!(
        skip.contains("no_trigger_matched") || skip.contains("NoTriggerMatched"),
        "{skip}"
    );
    settle(&engine, 30).await;
    let lists = sim_lists(&sim.sim());
    assert_eq!(
        lists["vip"].iter().cloned().collect::<Vec<_>>(),
        vec!["custom@example.com".to_owned()]
    );
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

#[test]
fn an_invalid_declared_mapping_is_refused_with_its_name_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"
[[destination.mappings]]
name = "broken"
mapping = { dataFields = { plan = { "@path" = 3 } } }
"#;
    let text = config_text(&dir.path().join("s.db"), "http://127.0.0.1:9", "", bad);
    let err = delivery::Config::parse(&text, |_| None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("engage"), "{err}");
    assert!(err.contains("broken"), "{err}");
    assert!(err.contains("dataFields.plan"), "{err}");
}
