//! A second *process* opening a store that a running process holds is refused, and may open
//! it once the holder is gone. Runs without the test harness: the same binary is the holder
//! and, started again with `STORE_LOCK_PROBE`, the prober.

use std::process::{Command, ExitCode};

use store::{SqliteOptions, SqliteStore, StoreError};

const PROBE: &str = "STORE_LOCK_PROBE";
const REFUSED: u8 = 10;
const OPENED: u8 = 11;

fn probe(path: &str) -> ExitCode {
    match SqliteStore::open(path, SqliteOptions::default()) {
        Err(StoreError::Locked { .. }) => ExitCode::from(REFUSED),
        Ok(_) => ExitCode::from(OPENED),
        Err(e) => {
            eprintln!("probe failed otherwise: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_probe(path: &std::path::Path) -> Option<i32> {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .env(PROBE, path)
        .status()
        .expect("start the probe process")
        .code()
}

fn main() -> ExitCode {
    if let Ok(path) = std::env::var(PROBE) {
        return probe(&path);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let held = SqliteStore::open(&path, SqliteOptions::default()).expect("first open");
    let while_held = run_probe(&path);
    drop(held);
    let after = run_probe(&path);
    if while_held == Some(i32::from(REFUSED)) && after == Some(i32::from(OPENED)) {
        println!("test another_process_is_refused_while_the_store_is_held ... ok");
        ExitCode::SUCCESS
    } else {
        eprintln!("while held: {while_held:?} (want {REFUSED}), after: {after:?} (want {OPENED})");
        ExitCode::FAILURE
    }
}
