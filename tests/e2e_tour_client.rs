//! The README tour's step with a real Segment client: `examples/segment_python_client.py`
//! (the official `segment-analytics-python`, installed in `.test-deps/` by `scripts/test`)
//! against `serve` and `sim` processes.

mod cli_support;

use std::process::Command;

use cli_support::*;

#[test]
fn the_tour_python_client_fills_the_list_the_readme_promises() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join(".test-deps/python/segment").is_dir(),
        "segment-analytics-python is not in .test-deps/python: run ./scripts/test (or tests/clients/install.sh)"
    );
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(dir.path());
    let config = write_config(dir.path(), &sim.base, "");
    let service = start_serve(&config);

    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(root.join("examples/segment_python_client.py"))
        .args([&service.base, WRITE_KEY])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let want: std::collections::BTreeSet<String> =
        ["py-1", "py-3"].iter().map(|s| s.to_string()).collect();
    wait_for(
        std::time::Duration::from_secs(60),
        "python_fans to fill",
        || sim_lists(&sim.base).get("python_fans") == Some(&want),
    );
}
