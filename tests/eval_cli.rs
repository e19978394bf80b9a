//! `iterable-lists eval` run as a user runs it: the built binary, files on disk.

use std::path::Path;
use std::process::{Command, Output};

fn eval(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iterable-lists"))
        .arg("eval")
        .args(args)
        .output()
        .expect("the binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("temp file");
    p.to_string_lossy().into_owned()
}

const EVENT: &str = r#"{"type": "identify", "userId": "u-1",
  "traits": {"email": "Ana@Example.com", "plan": "pro", "first_time_shopper": true},
  "context": {"personas": {"computation_key": "first_time_shopper"}}}"#;

#[test]
fn eval_mapping_prints_the_mapped_json() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", EVENT);
    let m = write(
        dir.path(),
        "mapping.json",
        r#"{"email": {"@case": {"operator": "lower", "value": {"@path": "$.traits.email"}}},
            "dataFields": {"plan": {"@path": "$.traits.plan"}, "gone": {"@path": "$.traits.nope"}}}"#,
    );
    let out = eval(&["--mapping", &m, "--event", &ev]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        serde_json::json!({"email": "ana@example.com", "dataFields": {"plan": "pro"}})
    );
}

#[test]
fn eval_trigger_prints_true_or_false() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", EVENT);
    let yes = eval(&[
        "--trigger",
        r#"type = "identify" and traits.first_time_shopper = true"#,
        "--event",
        &ev,
    ]);
    assert!(yes.status.success());
    assert_eq!(String::from_utf8_lossy(&yes.stdout).trim(), "true");
    let no = eval(&["--trigger", r#"type = "track""#, "--event", &ev]);
    assert!(no.status.success());
    assert_eq!(String::from_utf8_lossy(&no.stdout).trim(), "false");
}

#[test]
fn eval_errors_go_to_stderr_with_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", EVENT);
    let bad_trigger = eval(&["--trigger", r#"type = "identify" or"#, "--event", &ev]);
    assert!(!bad_trigger.status.success());
    assert!(bad_trigger.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad_trigger.stderr).contains("column 21"));

    let m = write(
        dir.path(),
        "mapping.json",
        r#"{"dataFields": {"plan": {"@path": 5}}}"#,
    );
    let bad_mapping = eval(&["--mapping", &m, "--event", &ev]);
    assert!(!bad_mapping.status.success());
    assert!(
        String::from_utf8_lossy(&bad_mapping.stderr)
            .contains("mapping.dataFields.plan: @path expects a string")
    );

    let missing = eval(&["--mapping", &m, "--event", "/nonexistent/event.json"]);
    assert!(!missing.status.success());
    assert!(!missing.stderr.is_empty());
}
