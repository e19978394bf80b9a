//! `demo`, `status`, `lists` and `replay` doing their job, and every command's `--help`
//! teaching with examples.

mod cli_support;

use cli_support::*;
use store::{Change, Direction, SqliteOptions, SqliteStore, Store};

// issue 7: `demo` exits 0 and prints each list with its members.
#[test]
fn demo_exits_0_and_prints_the_lists_and_each_event() {
    let out = run(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("through POST http://127.0.0.1:"),
        "{stdout}"
    );
    for line in [
        "first_time_shopper",
        "u-1001, u-1003",
        "fay@example.com, u-2003",
        "weekend_browsers",
        "OK: every list equals",
    ] {
        assert!(stdout.contains(line), "{line:?} not in {stdout}");
    }
    // The bad email is rejected and the ordinary track call skipped, each with its reason.
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {stdout}"))
            .to_owned()
    };
    assert!(row("personas_0026").contains("rejected"), "{stdout}");
    assert!(row("web_0001").contains("skipped"), "{stdout}");
    assert!(row("personas_0025").contains("delivered"), "{stdout}");
}

// issue 7: without the HTTP ingest, the demo goes through the engine, and says so.
#[test]
fn demo_direct_goes_through_the_engine_says_so_and_still_checks_the_lists() {
    let out = run(&["demo", "--direct"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("straight into the delivery engine instead of over HTTP"),
        "{stdout}"
    );
    assert!(stdout.contains("OK: every list equals"), "{stdout}");
}

fn change(identity: &str, direction: Direction, id: &str) -> Change {
    Change {
        destination: "engage".into(),
        audience_key: "vip".into(),
        identity: identity.into(),
        email: None,
        user_id: Some(identity.into()),
        direction,
        data_fields: None,
        message_id: id.into(),
        timestamp: 1,
        audience_settings: None,
    }
}

// A store where Iterable confirmed one member and rejected another.
fn store_with_a_rejection(dir: &std::path::Path) {
    let st = SqliteStore::open(dir.join("ledger.db"), SqliteOptions::default()).unwrap();
    st.accept(
        &[
            change("u1", Direction::In, "m1"),
            change("u2", Direction::In, "m2"),
        ],
        10,
    )
    .unwrap();
    let a = st.ensure_audience("engage", "vip").unwrap();
    st.set_list(a.id, Some(4242), true).unwrap();
    let rows = st.claim(a.id, Direction::In, 10, 10).unwrap();
    let (ok, bad): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.row.identity == "u1");
    let refs = |v: Vec<store::ClaimedRow>| v.into_iter().map(|r| r.row).collect::<Vec<_>>();
    st.confirm(&refs(ok), "req-1", 11).unwrap();
    st.reject(&refs(bad), "not_found", "not found on subscribe", 11)
        .unwrap();
}

#[test]
fn status_shows_rejections_and_replay_requeues_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    store_with_a_rejection(dir.path());
    let c = config.to_str().unwrap();

    let out = run(&["status", "--config", c, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rejected"][0]["audience_key"], "vip", "{v}");
    assert_eq!(v["rejected"][0]["rejected"], 1, "{v}");
    assert_eq!(v["pending"].as_array().unwrap().len(), 0, "{v}");

    let out = run(&["lists", "--config", c, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vip = &v["lists"][0];
    assert_eq!(vip["list_id"], 4242, "{v}");
    assert_eq!(vip["desired_in"], 2, "{v}");
    assert_eq!(vip["settled_in"], 1, "{v}");
    assert_eq!(vip["rejected"], 1, "{v}");

    let out = run(&["replay", "--config", c, "--audience", "vip"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("1 rejected changes re-queued"), "{stdout}");

    let out = run(&["status", "--config", c, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rejected"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["pending"][0]["direction"], "subscribe", "{v}");
    assert_eq!(v["pending"][0]["pending"], 1, "{v}");

    let out = run(&["replay", "--config", c, "--audience", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

// design.md, "What users must be told (README and `--help`)".
#[test]
fn the_top_level_help_tells_what_users_must_know() {
    let out = run(&["--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "ListAPI",
        "first minutes",
        "lowercases emails",
        "iterable-lists demo",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in {stdout}");
    }
}

#[test]
fn every_command_help_teaches_with_examples() {
    for cmd in [
        "demo", "send", "serve", "sim", "eval", "lists", "status", "replay",
    ] {
        let out = run(&[cmd, "--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {stdout}");
        assert!(
            stdout.contains("Example"),
            "`{cmd} --help` shows no example:\n{stdout}"
        );
    }
}

// issue 7: `lists --iterable-sizes` asks Iterable (here the simulator) for each list's size.
#[test]
fn lists_with_iterable_sizes_shows_the_store_counts_beside_iterable_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let config = write_config(dir.path(), &sim.base, "");
    let events: String = (0..3)
        .map(|i| {
            serde_json::json!({
                "type": "identify", "messageId": format!("m{i}"), "userId": format!("u{i}"),
                "timestamp": "2026-11-02T09:30:22Z",
                "traits": { "email": format!("u{i}@example.com"), "vip": true },
                "context": { "personas": { "computation_class": "audience", "computation_key": "vip" } }
            })
            .to_string()
                + "\n"
        })
        .collect();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, events).unwrap();
    let c = config.to_str().unwrap();
    let out = run(&[
        "send",
        file.to_str().unwrap(),
        "--config",
        c,
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["lists", "--config", c, "--iterable-sizes", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vip = &v["lists"][0];
    assert_eq!(vip["audience_key"], "vip", "{v}");
    assert_eq!(vip["desired_in"], 3, "{v}");
    assert_eq!(vip["settled_in"], 3, "{v}");
    assert_eq!(vip["iterable_size"], 3, "{v}");
}
