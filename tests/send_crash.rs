//! `send` killed with SIGKILL in the middle of delivery against a faulty simulator, then
//! restarted: every list ends equal to the model (latest state per identity).

mod send_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use send_support::*;
use serde_json::Value;

/// Users enter and exit audiences over time, with out-of-order timestamps and duplicates.
fn history() -> Vec<Value> {
    let mut events = Vec::new();
    let mut ts = 1_000_000i64;
    for round in 0..2u32 {
        for user in 0..6000u32 {
            let audience = format!("crash_{}", user % 4);
            let member = (user + round) % 3 != 0;
            ts += 1;
            // Every 7th event carries an older timestamp than its neighbours.
            let t = if user % 7 == 0 { ts - 5_000 } else { ts };
            events.push(send_support::event(
                &format!("r{round}-u{user}"),
                user,
                &audience,
                member,
                t,
            ));
        }
    }
    // Duplicates of earlier events, re-sent at the end.
    let dups: Vec<Value> = events.iter().step_by(97).cloned().collect();
    events.extend(dups);
    events
}

// issue 4, Done when: kill -9 in the middle of delivery loses nothing acknowledged.
#[test]
fn send_killed_mid_delivery_and_restarted_ends_with_lists_equal_to_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(
        dir.path(),
        "[faults]\nerror_rate = 0.15\nerror_statuses = [500, 503]\ncut_after_rate = 0.05\ncut_before_rate = 0.05\ndelay_rate = 0.2\ndelay_min_ms = 5\ndelay_max_ms = 60\n",
    );
    // Small requests at a modest rate, so that delivery takes a while and the kill lands in it.
    let config = write_config(
        dir.path(),
        &sim.base,
        "rate_per_second = 20.0\nconcurrency = 2\nbatch = { max_subscribers = 20 }",
    );
    let events = history();
    let file = dir.path().join("events.ndjson");
    write_ndjson(&file, &events);

    let mut first = send(&config, &[&file], &["--timeout", "10m"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while membership_requests(&sim.base) < 40 {
        if let Some(status) = first.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("send finished ({status}) before it could be killed: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no delivery started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let out = send(&config, &[&file], &["--timeout", "10m", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["pending"], 0);
    // The second run found work left by the first: the kill landed mid-delivery.
    assert!(summary["delivered"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["duplicates"].as_u64().unwrap() > 0, "{summary}");

    let want = model(&events);
    let got = sim_lists(&sim.base);
    for (audience, members) in &want {
        let have = got.get(audience).cloned().unwrap_or_default();
        assert_eq!(have.len(), members.len(), "{audience}");
        assert_eq!(&have, members, "{audience}");
    }
}
