//! Every command's failure modes speak to a person: one clear line on stderr, a non-zero exit,
//! never a panic or a backtrace (issue 7: a missing configuration file, an unknown
//! destination, a bad TOML key, an unreachable endpoint, a bad input file).

mod cli_support;

use std::path::Path;
use std::process::Output;

use cli_support::*;

/// Exit 2, exactly one line on stderr that contains `needle`, no panic.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

fn dead_url() -> String {
    // Nothing listens on a port that was just freed.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const OPERATOR_COMMANDS: [&str; 3] = ["status", "lists", "replay"];

#[test]
fn a_missing_configuration_file_is_one_line_naming_it_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.toml");
    let events = dir.path().join("e.ndjson");
    std::fs::write(&events, "{}\n").unwrap();
    for cmd in OPERATOR_COMMANDS.iter().chain(&["serve"]) {
        let out = run(&[cmd, "--config", s(&missing)]);
        assert_one_line_error(&out, "nowhere.toml");
    }
    let out = run(&["send", s(&events), "--config", s(&missing)]);
    assert_one_line_error(&out, "nowhere.toml");
}

#[test]
fn a_misspelt_configuration_key_is_one_line_naming_the_key_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "flush_intervall = 3");
    let events = dir.path().join("e.ndjson");
    std::fs::write(&events, "{}\n").unwrap();
    for cmd in OPERATOR_COMMANDS.iter().chain(&["serve"]) {
        let out = run(&[cmd, "--config", s(&config)]);
        assert_one_line_error(&out, "flush_intervall");
    }
    let out = run(&["send", s(&events), "--config", s(&config)]);
    assert_one_line_error(&out, "flush_intervall");
}

#[test]
fn an_unknown_destination_is_one_line_listing_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let events = dir.path().join("e.ndjson");
    std::fs::write(&events, "{}\n").unwrap();
    for cmd in OPERATOR_COMMANDS {
        let out = run(&[cmd, "--config", s(&config), "--destination", "nope"]);
        assert_one_line_error(&out, "no destination named \"nope\"");
        assert!(String::from_utf8_lossy(&out.stderr).contains("engage"));
    }
    let out = run(&[
        "send",
        s(&events),
        "--config",
        s(&config),
        "--destination",
        "nope",
    ]);
    assert_one_line_error(&out, "nope");
}

#[test]
fn operator_commands_on_a_store_that_does_not_exist_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    for cmd in OPERATOR_COMMANDS {
        let out = run(&[cmd, "--config", s(&config)]);
        assert_one_line_error(&out, "no store at");
    }
    assert!(
        !dir.path().join("ledger.db").exists(),
        "a store was created"
    );
}

#[test]
fn operator_commands_on_a_store_held_by_a_service_without_admin_token_explain_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    // Same configuration without the admin token.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("admin_token = \"{ADMIN_TOKEN}\"\n"), "");
    std::fs::write(&config, text).unwrap();
    let _held = store::SqliteStore::open(
        dir.path().join("ledger.db"),
        store::SqliteOptions::default(),
    )
    .unwrap();
    for cmd in OPERATOR_COMMANDS {
        let out = run(&[cmd, "--config", s(&config)]);
        assert_one_line_error(&out, "admin_token");
    }
}

#[test]
fn operator_commands_with_an_unreachable_service_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let _held = store::SqliteStore::open(
        dir.path().join("ledger.db"),
        store::SqliteOptions::default(),
    )
    .unwrap();
    let url = dead_url();
    for cmd in OPERATOR_COMMANDS {
        let out = run(&[cmd, "--config", s(&config), "--service", &url]);
        assert_one_line_error(&out, "cannot reach the service");
    }
}

#[test]
fn lists_with_iterable_sizes_and_an_unreachable_iterable_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &dead_url(), "");
    {
        use store::Store;
        let st = store::SqliteStore::open(
            dir.path().join("ledger.db"),
            store::SqliteOptions::default(),
        )
        .unwrap();
        let a = st.ensure_audience("engage", "vip").unwrap();
        st.set_list(a.id, Some(4242), true).unwrap();
    }
    let out = run(&["lists", "--config", s(&config), "--iterable-sizes"]);
    assert_one_line_error(&out, "cannot reach Iterable");
}

#[test]
fn send_with_a_missing_input_file_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let out = run(&["send", "no-such-events.ndjson", "--config", s(&config)]);
    assert_one_line_error(&out, "no-such-events.ndjson");
}

#[test]
fn sim_with_a_missing_or_malformed_configuration_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["sim", "--listen", "127.0.0.1:0", "--config", "no-sim.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("no-sim.toml") && !stderr.contains("panicked"),
        "{stderr}"
    );
    let bad = dir.path().join("sim.toml");
    std::fs::write(&bad, "[[projects]]\nid = \"x\"\n").unwrap();
    let out = run(&["sim", "--listen", "127.0.0.1:0", "--config", s(&bad)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_on_an_address_in_use_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&["serve", "--config", s(&config), "--listen", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn eval_with_a_missing_event_file_is_one_line() {
    let out = run(&[
        "eval",
        "--trigger",
        "type = \"identify\"",
        "--event",
        "no-event.json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no-event.json"), "{stderr}");
}
#[test]
fn send_to_an_unreachable_service_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let events = dir.path().join("e.ndjson");
    std::fs::write(&events, "{\"type\":\"identify\",\"userId\":\"u1\"}\n").unwrap();
    let out = run(&[
        "send",
        s(&events),
        "--config",
        s(&config),
        "--to",
        &dead_url(),
    ]);
    assert_one_line_error(&out, "cannot reach the service");
}
