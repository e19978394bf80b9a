//! `send` as a person runs it: exit statuses, the timeout with Iterable down, resumption.

mod send_support;

use send_support::*;

// issue 4, Done when: Iterable down → exit 3 after --timeout, pending work kept and resumed.
#[test]
fn send_times_out_with_iterable_down_then_resumes_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: every request fails to connect.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let events: Vec<_> = (0..20u32)
        .map(|u| event(&format!("m{u}"), u, "vip", u % 4 != 0, 1_000))
        .collect();
    let file = dir.path().join("events.ndjson");
    write_ndjson(&file, &events);

    let config = write_config(dir.path(), &dead_url, "");
    let out = send(&config, &[&file], &["--timeout", "2s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("pending"), "{stderr}");
    assert!(stderr.contains("vip"), "{stderr}");

    // Iterable is back: the same store resumes; the file's events are duplicates now.
    let sim = start_sim(dir.path(), "");
    let config = write_config(dir.path(), &sim.base, "");
    let out = send(&config, &[&file], &["--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["duplicates"], 20);
    assert_eq!(summary["pending"], 0);
    assert_eq!(sim_lists(&sim.base)["vip"], model(&events)["vip"]);
}

// design decision 2: `send` exits 1 when an event was rejected, and names the reason.
#[test]
fn send_exits_1_when_an_event_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path(), "");
    let config = write_config(dir.path(), &sim.base, "");
    let mut bad = event("bad", 1, "vip", true, 1_000);
    bad["traits"]["email"] = serde_json::json!("user @example.com");
    let file = dir.path().join("events.ndjson");
    write_ndjson(&file, &[event("good", 2, "vip", true, 1_000), bad]);
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "this is not json\n",
    )
    .unwrap();
    let out = send(&config, &[&file], &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bad_identifier"), "{stdout}");
    assert!(stdout.contains("bad_input"), "{stdout}");
    assert_eq!(sim_lists(&sim.base)["vip"].len(), 1);
}

// issue 7: a bad configuration key is one clear line and exit 2.
#[test]
fn send_with_an_unknown_configuration_key_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "flush_intervall = 3");
    let file = dir.path().join("events.ndjson");
    write_ndjson(&file, &[event("a", 1, "vip", true, 1_000)]);
    let out = send(&config, &[&file], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("flush_intervall"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

// issue 4: send refuses a store that a running process holds.
#[test]
fn send_refuses_a_store_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let _held = store::SqliteStore::open(
        dir.path().join("ledger.db"),
        store::SqliteOptions::default(),
    )
    .unwrap();
    let file = dir.path().join("events.ndjson");
    write_ndjson(&file, &[event("a", 1, "vip", true, 1_000)]);
    let out = send(&config, &[&file], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
}
