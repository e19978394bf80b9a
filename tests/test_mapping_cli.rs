//! `iterable-lists test-mapping` end to end: the built binary, files in a temporary directory,
//! exit codes 0 (change or skip), 1 (rejected), 2 (usage or configuration error).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_iterable-lists");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("test-mapping")
        .args(args)
        // The configuration's API key must come from the file or be filled in, never from here.
        .env_remove("ITERABLE_LISTS_ENGAGE_API_KEY")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// engage-events.md §1.1 identify example.
fn enter_event() -> Value {
    json!({"type": "identify", "messageId": "m1", "userId": "u123",
           "traits": {"email": "Jane@Example.com", "first_time_shopper": true, "plan": "pro"},
           "context": {"personas": {"computation_class": "audience",
                                    "computation_key": "first_time_shopper",
                                    "external_audience_id": "4269566"}}})
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

// issue 5: event in, the exact Iterable request out (iterable-api.md §2.4), nothing sent.
#[test]
fn the_default_mapping_prints_the_subscribe_request() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let o = run(&["--event", path_str(&ev)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("trigger matched"), "{out}");
    assert!(out.contains("outcome:    change"), "{out}");
    assert!(
        out.contains("POST https://api.iterable.com/api/lists/subscribe"),
        "{out}"
    );
    assert!(out.contains("\"listId\": 4269566"), "{out}");
    assert!(out.contains("jane@example.com"), "{out}");
}

// The admin API's JSON form, with a custom mapping in the configuration form.
#[test]
fn json_output_with_a_custom_mapping_carries_its_data_fields() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let m = write(
        dir.path(),
        "vip.json",
        &json!({"name": "vip", "trigger": "type = \"identify\"",
                "mapping": {"dataFields": {"plan": {"@path": "$.traits.plan"}}}})
        .to_string(),
    );
    let o = run(&[
        "--event",
        path_str(&ev),
        "--mapping",
        path_str(&m),
        "--json",
        "--project-type",
        "userId",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mapping"], json!("vip"));
    assert_eq!(v["triggerMatched"], json!(true));
    assert_eq!(v["outcome"], json!("change"));
    // design decision 3: a userId project sends the userId only.
    assert_eq!(
        v["request"]["body"],
        json!({"listId": 4269566,
               "subscribers": [{"userId": "u123", "dataFields": {"plan": "pro"}}],
               "updateExistingUsersOnly": false})
    );
}

// Users paste Segment field mappings unchanged: a bare field object uses the default trigger.
#[test]
fn a_bare_field_mapping_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let m = write(
        dir.path(),
        "fields.json",
        r#"{"email": {"@path": "$.traits.email"}, "userId": null}"#,
    );
    let o = run(&[
        "--event",
        path_str(&ev),
        "--mapping",
        path_str(&m),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["mapping"], json!("fields"));
    assert_eq!(
        v["request"]["body"]["subscribers"],
        json!([{"email": "jane@example.com"}])
    );
}

// engage-events.md §1.2: a non-boolean value is rejected (exit 1), with the reason.
#[test]
fn a_rejected_event_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = enter_event();
    e["traits"]["first_time_shopper"] = json!("maybe");
    let ev = write(dir.path(), "event.json", &e.to_string());
    let o = run(&["--event", path_str(&ev)]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("outcome:    rejected"), "{out}");
    assert!(out.contains("invalid_membership"), "{out}");
    assert!(!out.contains("request:"), "{out}");
}

// design decision 2: a skip is not an error (exit 0).
#[test]
fn a_skipped_event_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(
        dir.path(),
        "event.json",
        r#"{"type": "page", "userId": "u1", "name": "Home"}"#,
    );
    let o = run(&["--event", path_str(&ev)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("outcome:    skipped"));
}

// issue 5 "Validation": an invalid mapping is reported with its path, exit 2, on stderr.
#[test]
fn an_invalid_mapping_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let m = write(
        dir.path(),
        "bad.json",
        r#"{"name": "bad", "mapping": {"dataFields": {"plan": {"@path": 5}}}}"#,
    );
    let o = run(&["--event", path_str(&ev), "--mapping", path_str(&m)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("mapping.dataFields.plan"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let missing = dir.path().join("missing.json");
    let not_json = write(dir.path(), "nope.json", "{not json");
    for args in [
        vec!["--event", path_str(&missing)],
        vec!["--event", path_str(&not_json)],
        vec!["--event", path_str(&ev), "--project-type", "phone"],
        vec!["--event", path_str(&ev), "--destination", "engage"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty());
    }
}

// design decisions 3 and 7: the configuration's destination shapes the request (project type,
// operator binding); no API key is needed to preview, and none is printed.
#[test]
fn the_configuration_sets_project_type_and_list_binding() {
    let dir = tempfile::tempdir().unwrap();
    let ev = write(dir.path(), "event.json", &enter_event().to_string());
    let cfg = write(
        dir.path(),
        "config.toml",
        r#"
[[destination]]
name = "other"
api_key = "other-secret"
project_type = "hybrid"

[[destination]]
name = "engage"
project_type = "email"

[destination.audiences.first_time_shopper]
list = { id = 4242 }
"#,
    );
    let o = run(&[
        "--event",
        path_str(&ev),
        "--config",
        path_str(&cfg),
        "--destination",
        "engage",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["request"]["list"],
        json!({"source": "binding", "listId": 4242})
    );
    assert_eq!(
        v["request"]["body"]["subscribers"],
        json!([{"email": "jane@example.com"}])
    );
    assert!(!stdout(&o).contains("secret"));
    // Several destinations and none chosen: a usage error.
    let o = run(&["--event", path_str(&ev), "--config", path_str(&cfg)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--destination"), "{}", stderr(&o));
}
