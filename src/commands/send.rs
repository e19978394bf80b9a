//! `iterable-lists send`: pushes files of events through the durable pipeline in-process and
//! waits for delivery.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use delivery::{Config, Engine, EngineError, EngineOptions, StatsSnapshot, WaitOutcome};
use segment::{ElementError, Event, Limits};
use serde::Serialize;

/// Reads NDJSON events or `/v1/batch` bodies, accepts them durably into the configured store,
/// waits until Iterable has them, and prints a summary.
///
/// Each NDJSON line stands alone, and so does each element of a batch body: a bad line is
/// rejected with its line number, the others go on. Use `-` to read standard input.
///
/// Exit status: 0 when every accepted event reached a final state and none was rejected; 1
/// when some were rejected; 2 on a usage or configuration error (or a store another process
/// holds); 3 when `--timeout` passed with work pending (it stays in the store and resumes on
/// the next run).
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Files of NDJSON events or `/v1/batch` bodies; `-` for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The configuration file (store, destinations, delivery settings).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// The destination to send to; required when the configuration has several.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,

    /// Stop waiting for delivery after this long (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Print the summary as one line of JSON.
    #[arg(long)]
    pub json: bool,

    /// Post the events to the running service at this URL (its `POST /v1/batch`, with the
    /// destination's `write_key`) instead of running the pipeline here; delivery is followed
    /// through the service's admin API when `server.admin_token` is set.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
}

/// Parses `500ms`, `30s`, `10m`, `1h` or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 10m or 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Events per accept call (one store transaction each).
const CHUNK: usize = 1000;

#[derive(Debug, Serialize)]
struct Summary {
    accepted: u64,
    duplicates: u64,
    delivered: u64,
    skipped: u64,
    skipped_by_reason: BTreeMap<String, u64>,
    rejected: u64,
    rejected_by_reason: BTreeMap<String, u64>,
    requests: u64,
    rate_limited: u64,
    pending: u64,
    outcome: &'static str,
}

/// Runs the command.
pub fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = Config::load(&args.config)?;
    let destination = match &args.destination {
        Some(d) => {
            if config.destination(d).is_none() {
                bail!(
                    "no destination named {d:?} in {} (configured: {})",
                    args.config.display(),
                    names(&config)
                );
            }
            d.clone()
        }
        None => match config.destinations.as_slice() {
            [one] => one.name.clone(),
            [] => bail!("{} declares no [[destination]]", args.config.display()),
            _ => bail!(
                "{} declares several destinations ({}); choose one with --destination",
                args.config.display(),
                names(&config)
            ),
        },
    };
    for f in &args.files {
        if f.as_os_str() != "-" && !f.is_file() {
            bail!("cannot read {}: no such file", f.display());
        }
    }
    if let Some(url) = &args.to {
        return super::send_to::run(super::send_to::SendTo {
            url,
            files: &args.files,
            config: &config,
            destination: &destination,
            timeout: args.timeout,
            json: args.json,
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(send(args, config, destination))
}

fn names(config: &Config) -> String {
    config
        .destinations
        .iter()
        .map(|d| d.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            last_line: Instant::now(),
        }
    }

    fn show(&mut self, phase: &str, s: &StatsSnapshot, pending: u64) {
        let line = format!(
            "{phase}: {} accepted, {} delivered, {} skipped, {} rejected, {pending} pending, {} requests",
            s.accepted,
            s.delivered,
            s.skipped_total(),
            s.rejected_total(),
            s.requests
        );
        match &self.bar {
            Some(b) => b.set_message(line),
            None => {
                if self.last_line.elapsed() >= Duration::from_secs(5) {
                    eprintln!("{line}");
                    self.last_line = Instant::now();
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

async fn send(args: SendArgs, config: Config, destination: String) -> anyhow::Result<ExitCode> {
    let engine = Engine::start(config, EngineOptions::default())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut progress = Progress::new();
    for file in &args.files {
        let reader: Box<dyn Read + Send> = if file.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
            )
        };
        let mut lines = BufReader::new(reader);
        let mut chunk: Vec<Result<Event, ElementError>> = Vec::with_capacity(CHUNK);
        let mut buf = String::new();
        let mut line_no = 0usize;
        let limits = Limits::default();
        loop {
            buf.clear();
            let n = lines
                .read_line(&mut buf)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            let index = line_no;
            line_no += 1;
            let text = buf.trim();
            if text.is_empty() {
                continue;
            }
            parse_line(text, index, &limits, &mut chunk);
            if chunk.len() >= CHUNK {
                accept(
                    &engine,
                    &destination,
                    std::mem::take(&mut chunk),
                    &mut progress,
                )
                .await?;
            }
        }
        if !chunk.is_empty() {
            accept(&engine, &destination, chunk, &mut progress).await?;
        }
    }

    // Wait for delivery, showing progress.
    let deadline = Instant::now() + args.timeout;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let step = left.min(Duration::from_millis(500));
        match engine.wait_settled(step).await {
            WaitOutcome::TimedOut { pending } if !left.is_zero() && step < left => {
                progress.show("delivering", &engine.stats(), pending);
            }
            other => break other,
        }
    };
    progress.finish();
    let status = engine.status().await.map_err(|e| anyhow!("{e}"))?;
    engine.shutdown(Duration::from_secs(5)).await;
    let s = status.stats.clone();
    let (code, outcome_name) = match &outcome {
        WaitOutcome::Settled if s.rejected_total() > 0 => (1, "rejected"),
        WaitOutcome::Settled => (0, "settled"),
        WaitOutcome::TimedOut { .. } => (3, "timeout"),
        WaitOutcome::Paused { .. } => (3, "paused"),
    };
    let summary = Summary {
        accepted: s.accepted,
        duplicates: s.duplicates,
        delivered: s.delivered,
        skipped: s.skipped_total(),
        skipped_by_reason: s.skipped.clone(),
        rejected: s.rejected_total(),
        rejected_by_reason: s.rejected.clone(),
        requests: s.requests,
        rate_limited: s.rate_limited,
        pending: status.backlog,
        outcome: outcome_name,
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "accepted {}, duplicates {}, delivered {}, skipped {}, rejected {}, requests sent {} ({} answered 429)",
            summary.accepted,
            summary.duplicates,
            summary.delivered,
            summary.skipped,
            summary.rejected,
            summary.requests,
            summary.rate_limited
        );
        for (reason, n) in &summary.skipped_by_reason {
            println!("  skipped  {n:>8}  {reason}");
        }
        for (reason, n) in &summary.rejected_by_reason {
            println!("  rejected {n:>8}  {reason}");
        }
    }
    match &outcome {
        WaitOutcome::TimedOut { pending } => {
            eprintln!(
                "timed out after {:?} with {pending} changes pending; they stay in the store and resume on the next run:",
                args.timeout
            );
            for p in &status.pending {
                eprintln!(
                    "  {} / {} (list {}): {} {} pending",
                    p.destination,
                    p.audience_key,
                    p.list_id
                        .map_or_else(|| "not resolved".to_owned(), |l| l.to_string()),
                    p.pending,
                    p.direction
                );
            }
        }
        WaitOutcome::Paused { pending, reasons } => {
            eprintln!("delivery paused with {pending} changes pending:");
            for r in reasons {
                eprintln!("  {r}");
            }
        }
        WaitOutcome::Settled => {}
    }
    for w in &status.warnings {
        eprintln!("warning: {w}");
    }
    Ok(ExitCode::from(code))
}

/// One input line: an event, or a `/v1/batch` body whose elements each stand alone.
fn parse_line(
    text: &str,
    index: usize,
    limits: &Limits,
    out: &mut Vec<Result<Event, ElementError>>,
) {
    if text.starts_with('{') && text.contains("\"batch\"") {
        let big = Limits {
            max_batch_bytes: usize::MAX,
            ..*limits
        };
        if let Ok(batch) = segment::parse_batch(text.as_bytes(), &big) {
            out.extend(batch.elements.into_iter().map(|r| {
                r.map_err(|e| ElementError {
                    reason: format!("line {}: {}", index + 1, e),
                    ..e
                })
            }));
            return;
        }
    }
    out.push(segment::parse_element(text, index, limits));
}

async fn accept(
    engine: &Engine,
    destination: &str,
    chunk: Vec<Result<Event, ElementError>>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    loop {
        match engine.accept_batch(destination, chunk.clone()).await {
            Ok(report) => {
                for e in &report.events {
                    if let delivery::EventResult::Rejected { reason } = &e.result {
                        tracing::info!(line = e.index + 1, %reason, "event rejected");
                    }
                }
                progress.show("accepting", &engine.stats(), engine.backlog());
                return Ok(());
            }
            Err(EngineError::Busy { retry_after, .. }) => {
                // Backpressure: let delivery catch up.
                progress.show("backlog full, waiting", &engine.stats(), engine.backlog());
                tokio::time::sleep(retry_after.min(Duration::from_secs(1))).await;
            }
            Err(e) => return Err(anyhow!("{e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
