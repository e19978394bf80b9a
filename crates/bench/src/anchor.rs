//! Segment's published destination, run by the harness in `shared/anchor/` (installed by
//! `scripts/bench` into a temporary directory), and its stand-in for Iterable, `sink.js`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// `node sink.js PORT`, killed on drop.
pub struct Sink {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The port.
    pub port: u16,
}

impl Sink {
    /// Starts the sink of the installed anchor in `dir` and waits until it answers.
    pub async fn start(dir: &Path) -> anyhow::Result<Sink> {
        let port = crate::proc::free_port()?;
        let child = Command::new("node")
            .arg("sink.js")
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start node sink.js (is node installed?)")?;
        let sink = Sink {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        let t = Instant::now();
        while sink.stats().await.is_err() {
            if t.elapsed() > Duration::from_secs(20) {
                bail!("sink.js did not answer within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(sink)
    }

    /// `GET /stats`: `{"requests","subscribers","bytes","lists"}`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        Ok(reqwest::get(format!("{}/stats", self.base))
            .await?
            .json()
            .await?)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `EVENTS=file PORT=port node bench-ref.js` and returns its JSON figures.
pub fn run_ref(dir: &Path, events: &Path, port: u16) -> anyhow::Result<Value> {
    let out = Command::new("node")
        .arg("bench-ref.js")
        .env("EVENTS", events)
        .env("PORT", port.to_string())
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run node bench-ref.js")?;
    if !out.status.success() {
        bail!("bench-ref.js failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("bench-ref.js printed no figures")?;
    Ok(serde_json::from_str(line)?)
}

/// Checks that `dir` holds an installed anchor (`npm install` ran).
pub fn check(dir: &Path) -> anyhow::Result<PathBuf> {
    for f in [
        "bench-ref.js",
        "sink.js",
        "node_modules/@segment/action-destinations",
    ] {
        if !dir.join(f).exists() {
            bail!(
                "{} is not an installed anchor (missing {f}); scripts/bench installs one",
                dir.display()
            );
        }
    }
    Ok(dir.to_path_buf())
}
