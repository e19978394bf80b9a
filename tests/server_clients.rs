//! Real traffic from the official Segment clients (`segment-analytics-python` from PyPI and
//! `@segment/analytics-node` from npm), pointed at the service by their host setting; the
//! simulator's lists are checked afterwards. `scripts/test` installs both clients into
//! `.test-deps/`; without them these tests fail and say so (they never skip silently).

mod server_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use server_support::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed ({} is missing): run scripts/test, which installs the \
         test-only Segment clients into .test-deps/ (or run tests/clients/install.sh)",
        path.display()
    );
}

async fn run(mut cmd: tokio::process::Command) -> String {
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("client finished within 120 s")
        .expect("client started");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "client failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

/// Users `prefix-0..n` entered; every third left.
fn expected(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("{prefix}-{i}@example.com"))
        .collect()
}

async fn python(h: &Harness, audience: &str, count: usize, gzip: bool) -> String {
    require(
        &root().join(".test-deps/python/segment/analytics"),
        "segment-analytics-python",
    );
    let mut cmd =
        tokio::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    cmd.arg(root().join("tests/clients/send_python.py"))
        .arg(&h.base)
        .arg(WRITE_KEY)
        .arg(audience)
        .arg(count.to_string());
    if gzip {
        cmd.arg("--gzip");
    }
    run(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_events_end_in_the_simulator_list() {
    let h = Harness::start().await;
    let out = python(&h, "py_audience", 250, false).await;
    assert!(out.contains("\"sent\": 334"), "{out}");
    h.settle().await;
    assert_eq!(h.members("py_audience"), expected("py", 250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_with_gzip_end_in_the_simulator_list() {
    let h = Harness::start().await;
    python(&h, "py_gzip", 60, true).await;
    h.settle().await;
    assert_eq!(h.members("py_gzip"), expected("py", 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_events_end_in_the_simulator_list() {
    let h = Harness::start().await;
    require(
        &root().join(".test-deps/node/node_modules/@segment/analytics-node/package.json"),
        "@segment/analytics-node",
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root().join("tests/clients/send_node.js"))
        .arg(&h.base)
        .arg(WRITE_KEY)
        .arg("node_audience")
        .arg("250");
    let out = run(cmd).await;
    assert!(out.contains("\"sent\":334"), "{out}");
    h.settle().await;
    assert_eq!(h.members("node_audience"), expected("node", 250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_with_a_wrong_write_key_reports_an_error_and_nothing_lands() {
    let h = Harness::start().await;
    require(
        &root().join(".test-deps/python/segment/analytics"),
        "segment-analytics-python",
    );
    let out =
        tokio::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(root().join("tests/clients/send_python.py"))
            .arg(&h.base)
            .arg("not-the-write-key")
            .arg("py_denied")
            .arg("5")
            .output()
            .await
            .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.settle().await;
    assert!(h.members("py_denied").is_empty());
}
