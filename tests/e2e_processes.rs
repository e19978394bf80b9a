//! End to end, as an operator runs it: `sim`, `serve` and `send --to` as three separate
//! processes; the lists in the simulator are checked against a model computed from the events
//! alone (latest state per identity). Issue 7, "Done when".

mod cli_support;

use std::process::Command;

use cli_support::*;

fn send_to(config: &std::path::Path, url: &str, files: &[std::path::PathBuf]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("send")
        .args(files)
        .arg("--config")
        .arg(config)
        .args(["--to", url, "--json", "--timeout", "5m"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut summary: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout:?}, stderr {stderr:?}"));
    summary["exit"] = serde_json::json!(out.status.code());
    summary
}

#[test]
fn example_events_through_sim_serve_and_send_end_in_the_lists_they_imply() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let config = write_config(dir.path(), &sim.base, "");
    let service = start_serve(&config);
    let (mut files, events) = example_files(dir.path());
    // A line that is not JSON stands alone: rejected, the others go on.
    let broken = dir.path().join("broken.ndjson");
    std::fs::write(&broken, "this is not json\n").unwrap();
    files.push(broken);

    let summary = send_to(&config, &service.base, &files);
    // more-cases.ndjson holds one bad email without a userId, plus the broken line: exit 1.
    assert_eq!(summary["exit"], 1, "{summary}");
    assert_eq!(summary["rejected"], 2, "{summary}");
    assert_eq!(
        summary["rejected_by_reason"]["bad_identifier"], 1,
        "{summary}"
    );
    assert_eq!(summary["rejected_by_reason"]["bad_input"], 1, "{summary}");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(summary["outcome"], "rejected", "{summary}");

    let expected = model(&events);
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert_lists_match(&sim.base, &expected);

    // The operator commands ask the running service, which holds the store.
    let c = config.to_str().unwrap();
    let out = run(&[
        "status",
        "--config",
        c,
        "--service",
        &service.base,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["source"], "service", "{v}");
    assert_eq!(v["pending"].as_array().unwrap().len(), 0, "{v}");
    let out = run(&["lists", "--config", c, "--service", &service.base, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: std::collections::BTreeSet<&str> = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["list_id"].is_i64())
        .map(|l| l["audience_key"].as_str().unwrap())
        .collect();
    let want: std::collections::BTreeSet<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(keys, want, "{v}");
}

// issue 7, Done when: a generated backfill of 100,000 events over 20 audiences.
#[test]
fn a_backfill_of_100000_events_over_20_audiences_ends_in_the_modelled_lists() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let config = write_config(dir.path(), &sim.base, "");
    let service = start_serve(&config);
    let events = backfill(100_000, 20, 42);
    let file = dir.path().join("backfill.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).unwrap();

    let summary = send_to(&config, &service.base, &[file]);
    assert_eq!(summary["exit"], 0, "{summary}");
    assert_eq!(summary["pending"], 0, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");
    let duplicates = summary["duplicates"].as_u64().unwrap();
    assert!(duplicates > 0, "{summary}");
    // Every event is accepted, a duplicate, or skipped at ingest as superseded (an accepted
    // event may be skipped later too, so the sum may exceed the count, never fall short).
    let accepted = summary["accepted"].as_u64().unwrap();
    let skipped = summary["skipped"].as_u64().unwrap();
    assert!(accepted + duplicates <= 100_000, "{summary}");
    assert!(accepted + duplicates + skipped >= 100_000, "{summary}");

    let expected = model(&events);
    assert_eq!(expected.len(), 20);
    assert_lists_match(&sim.base, &expected);
}
