//! Child processes of the reliability tests (`iterable-lists sim`, `serve`, `send`) with their
//! whole output collected, and small HTTP helpers.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_iterable-lists");

/// A child process whose stdout and stderr are collected in full.
pub struct Proc {
    pub child: Child,
    out: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `cmd` with piped output.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("process starts");
        let out = Arc::new(Mutex::new(String::new()));
        let streams: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for stream in streams {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Proc { child, out }
    }

    /// Waits (up to a minute) for a line containing `marker`; returns the URL after it.
    pub fn wait_url(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self
                .out
                .lock()
                .unwrap()
                .lines()
                .find(|l| l.contains(marker))
                && let Some(at) = line.find("http://")
            {
                return line[at..]
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "process exited ({status}) before {marker:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {marker:?} line in:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Sends a signal by name (`KILL`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the exit (bounded), then lets the readers drain.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                std::thread::sleep(Duration::from_millis(150));
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `iterable-lists sim` on 127.0.0.1:0 with a TOML configuration; returns it and its
/// base URL.
pub fn start_sim(dir: &Path, toml: &str) -> (Proc, String) {
    let path = dir.join("sim.toml");
    std::fs::write(&path, toml).expect("sim config");
    let mut p = Proc::spawn(
        Command::new(BIN)
            .args(["sim", "--listen", "127.0.0.1:0", "--config"])
            .arg(&path),
    );
    let url = p.wait_url("iterable simulator on");
    (p, url)
}

/// Starts `iterable-lists serve --config FILE` with extra environment variables; returns it
/// and its base URL.
pub fn start_serve(config: &Path, env: &[(&str, &str)]) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--shutdown-timeout",
        "3",
        "--log-format",
        "json",
        "--config",
    ])
    .arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc::spawn(&mut cmd);
    let url = p.wait_url("listening on");
    (p, url)
}
