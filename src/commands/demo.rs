//! `iterable-lists demo`: the whole product on one machine, in one command. Starts the
//! Iterable simulator and the service on free loopback ports, replays the example Engage
//! events through the service's Segment-compatible ingest, waits for delivery, prints the
//! lists and what became of each event, and checks the lists against what the events imply.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use iterable::types::ProjectType;
use iterable_sim::{SimConfig, Simulator};
use serde_json::Value;

use super::demo_model::{Expected, expected_lists};
use super::ingest_client::{IngestClient, chunk_events};

/// The example events, compiled in so that the demo runs from any directory.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "examples/engage/identify-audiences.ndjson",
        include_str!("../../examples/engage/identify-audiences.ndjson"),
    ),
    (
        "examples/engage/track-audiences.ndjson",
        include_str!("../../examples/engage/track-audiences.ndjson"),
    ),
    (
        "examples/engage/v1-batch-python-client.json",
        include_str!("../../examples/engage/v1-batch-python-client.json"),
    ),
    (
        "examples/engage/more-cases.ndjson",
        include_str!("../../examples/engage/more-cases.ndjson"),
    ),
];

const API_KEY: &str = "demo-api-key";
const WRITE_KEY: &str = "demo-write-key";
const ADMIN_TOKEN: &str = "demo-admin-token";
const DESTINATION: &str = "demo";

/// Runs the whole product on this machine: the Iterable simulator (one hybrid project) and the
/// service, on free loopback ports; replays the example Engage events shipped in `examples/`
/// through the service's `POST /v1/batch` (as a Segment client would); waits until delivery
/// settles; prints each list with its members and what became of each event.
///
/// The example list ids do not exist in a fresh simulator, so each audience resolves to the
/// list named after its key, created on first use (the design's *Which list* decision).
///
/// Exits 0 when every list equals what the events imply (for each audience and identity, the
/// state of its latest event), computed independently of the pipeline; 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo run --release -- demo
  iterable-lists demo --keep-running     # then try the printed curl command

Nothing is installed and nothing leaves the machine: the store is a temporary SQLite file,
removed at the end unless --keep-running.")]
pub struct DemoArgs {
    /// Leave the simulator and the service running after the check and print how to reach
    /// them (URLs, the write key, a curl example); Ctrl-C stops both.
    #[arg(long)]
    pub keep_running: bool,

    /// Accept the events straight into the delivery engine instead of over HTTP (what the
    /// demo also does when the service does not answer `/readyz`).
    #[arg(long)]
    pub direct: bool,

    /// Give up waiting for delivery after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

/// One example event, where it came from.
struct Example {
    file: &'static str,
    event: Value,
}

fn load_examples() -> anyhow::Result<Vec<Example>> {
    let mut out = Vec::new();
    for (file, text) in EXAMPLES {
        if file.ends_with(".json") {
            let body: Value =
                serde_json::from_str(text).with_context(|| format!("{file} is not JSON"))?;
            for e in body["batch"].as_array().cloned().unwrap_or_default() {
                out.push(Example { file, event: e });
            }
        } else {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let event = serde_json::from_str(line)
                    .with_context(|| format!("{file}:{}: not JSON", i + 1))?;
                out.push(Example { file, event });
            }
        }
    }
    Ok(out)
}

/// Runs the command.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let dir = temp_dir()?;
    let result = runtime.block_on(demo(&args, &dir));
    if !args.keep_running {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn temp_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "iterable-lists-demo-{}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo folder {}", dir.display()))?;
    Ok(dir)
}

fn config_text(store: &std::path::Path, sim_base: &str, listen: std::net::SocketAddr) -> String {
    format!(
        r#"# Written by `iterable-lists demo`.
[store]
path = {store:?}
synchronous = "normal"

[server]
listen = "{listen}"
admin_token = "{ADMIN_TOKEN}"

[delivery]
flush_interval_ms = 200
tick_ms = 20
backoff_base_ms = 100
backoff_cap_ms = 2000

[[destination]]
name = "{DESTINATION}"
write_key = "{WRITE_KEY}"
api_key = "{API_KEY}"
endpoint = "{sim_base}"
allow_custom_endpoint = true
project_type = "hybrid"
"#,
        store = store.display().to_string(),
    )
}

async fn demo(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let examples = load_examples()?;
    let sim = Simulator::start(
        SimConfig::new()
            .project(API_KEY, ProjectType::Hybrid)
            .seed(7),
    )
    .await
    .map_err(|e| anyhow!("cannot start the simulator: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on a loopback port")?;
    let service_addr = listener.local_addr()?;
    let config_path = dir.join("demo.toml");
    let text = config_text(&dir.join("demo.db"), &sim.base_url(), service_addr);
    std::fs::write(&config_path, &text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = delivery::Config::parse(&text, |_| None)?;
    let server = server::Server::start(config)
        .await
        .map_err(|e| anyhow!("cannot start the service: {e}"))?;
    let engine = server.engine().clone();
    let store = engine.store();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(
        listener,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    let service = format!("http://{service_addr}");
    println!("iterable-lists demo");
    println!(
        "  Iterable simulator  {}  (one hybrid project, API key {API_KEY})",
        sim.base_url()
    );
    println!("  service             {service}  (write key {WRITE_KEY})");

    // Replay through the real ingest when the service answers, else straight into the engine.
    let client = IngestClient::new(&service, WRITE_KEY, Some(ADMIN_TOKEN))?;
    let files: BTreeSet<&str> = examples.iter().map(|e| e.file).collect();
    let started = Instant::now();
    let events: Vec<Value> = examples.iter().map(|e| e.event.clone()).collect();
    if !args.direct && client.wait_ready(Duration::from_secs(10)).await {
        println!(
            "replaying {} events from {} files through POST {service}/v1/batch",
            events.len(),
            files.len()
        );
        for chunk in chunk_events(events.clone()) {
            client.post_batch(&chunk).await?;
        }
    } else {
        println!(
            "{}: replaying {} events straight into the delivery engine instead of over HTTP",
            if args.direct {
                "--direct"
            } else {
                "the service did not answer /readyz"
            },
            events.len()
        );
        let limits = segment::Limits::default();
        let parsed = events
            .iter()
            .enumerate()
            .map(|(i, e)| segment::parse_element(&e.to_string(), i, &limits))
            .collect();
        engine
            .accept_batch(DESTINATION, parsed)
            .await
            .map_err(|e| anyhow!("{e}"))?;
    }
    let outcome = engine.wait_settled(Duration::from_secs(args.timeout)).await;
    let stats = engine.stats();
    match &outcome {
        delivery::WaitOutcome::Settled => println!(
            "delivery settled in {:.1} s: {} requests to Iterable",
            started.elapsed().as_secs_f64(),
            stats.requests
        ),
        delivery::WaitOutcome::TimedOut { pending } => println!(
            "delivery did not settle within {} s: {pending} changes pending",
            args.timeout
        ),
        delivery::WaitOutcome::Paused { reasons, .. } => {
            println!("delivery paused: {}", reasons.join("; "))
        }
    }

    // What the simulator holds: list name → members (userId when the user has one, else email).
    let sim_state = sim.sim();
    let mut actual: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
    for l in sim_state
        .lists(API_KEY)
        .map_err(|e| anyhow!("cannot read the simulator: {e}"))?
    {
        let members = sim_state
            .list_members_by(API_KEY, l.id, true)
            .map_err(|e| anyhow!("cannot read the simulator: {e}"))?;
        actual.insert(l.name, (l.id, members.into_iter().collect()));
    }
    println!();
    println!("Lists in the simulator (members: userId, else email):");
    for (name, (id, members)) in &actual {
        let shown: Vec<&str> = members.iter().map(String::as_str).collect();
        println!(
            "  {name:<20} list {id:<6} {} member{}: {}",
            members.len(),
            if members.len() == 1 { "" } else { "s" },
            if shown.is_empty() {
                "(none)".to_owned()
            } else {
                shown.join(", ")
            }
        );
    }

    // What became of each event, from the delivery log.
    let log = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            store.log(&store::LogQuery {
                destination: Some(DESTINATION.to_owned()),
                limit: 100_000,
                ..store::LogQuery::default()
            })
        })
        .await
        .map_err(|e| anyhow!("{e}"))?
        .map_err(|e| anyhow!("cannot read the delivery log: {e}"))?
    };
    let by_id: BTreeMap<&str, &store::LogEntry> =
        log.iter().map(|e| (e.message_id.as_str(), e)).collect();
    println!();
    println!("What became of each event:");
    println!(
        "  {:<38} {:<9} {:<18} {:<17} {:<10} reason",
        "messageId", "type", "audience", "identity", "outcome"
    );
    let mut not_final = 0usize;
    for ex in &examples {
        let e = &ex.event;
        let id = e["messageId"].as_str().unwrap_or("");
        let entry = by_id.get(id);
        let outcome = entry.map(|l| l.outcome);
        if !outcome.is_some_and(|o| o.is_final()) {
            not_final += 1;
        }
        let audience = entry
            .and_then(|l| l.audience_key.clone())
            .or_else(|| {
                e["context"]["personas"]["computation_key"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "-".to_owned());
        // The ledger keys identities as `u:<userId>` or `e:<email>`; show the identifier.
        let identity = entry
            .and_then(|l| l.identity.clone())
            .map(|i| match i.split_once(':') {
                Some(("u" | "e", rest)) => rest.to_owned(),
                _ => i,
            })
            .unwrap_or_else(|| "-".to_owned());
        let kind = match (e["type"].as_str(), e["event"].as_str()) {
            (Some("track"), Some(name)) if name.starts_with("Audience ") => {
                name.trim_start_matches("Audience ").to_lowercase()
            }
            (Some(t), _) => t.to_owned(),
            _ => "?".to_owned(),
        };
        println!(
            "  {:<38} {:<9} {:<18} {:<17} {:<10} {}",
            id,
            kind,
            audience,
            identity,
            outcome.map_or("not logged".to_owned(), |o| format!("{o:?}").to_lowercase()),
            entry.and_then(|l| l.reason.clone()).unwrap_or_default()
        );
    }

    // The check.
    let expected = expected_lists(&events);
    let problems = compare(&expected, &actual);
    println!();
    let ok = problems.is_empty() && not_final == 0 && outcome == delivery::WaitOutcome::Settled;
    if ok {
        println!(
            "OK: every list equals what the events imply (latest state per identity), and every event reached a final outcome."
        );
    } else {
        println!("MISMATCH:");
        for p in &problems {
            println!("  {p}");
        }
        if not_final > 0 {
            println!("  {not_final} events have no final outcome");
        }
    }

    if args.keep_running {
        print_how_to_reach(&sim.base_url(), &service, &config_path);
        let _ = tokio::signal::ctrl_c().await;
        println!("stopping…");
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    sim.shutdown().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Differences between the expected and the simulator's lists, one line each.
fn compare(expected: &Expected, actual: &BTreeMap<String, (i64, BTreeSet<String>)>) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = BTreeSet::new();
    let names: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    for name in names {
        let want = expected.get(name).unwrap_or(&empty);
        let have = actual.get(name).map_or(&empty, |(_, m)| m);
        let missing: Vec<&String> = want.difference(have).collect();
        let extra: Vec<&String> = have.difference(want).collect();
        if !missing.is_empty() {
            problems.push(format!("{name}: missing {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!("{name}: should not hold {extra:?}"));
        }
    }
    problems
}

fn print_how_to_reach(sim: &str, service: &str, config: &std::path::Path) {
    let config = config.display();
    println!();
    println!("Both keep running until Ctrl-C.");
    println!("  service (Segment-compatible):  {service}/v1/batch   write key: {WRITE_KEY}");
    println!("  admin API:                     {service}/admin/status   token: {ADMIN_TOKEN}");
    println!("  metrics:                       {service}/metrics");
    println!("  Iterable simulator:            {sim}   API key: {API_KEY}");
    println!("  configuration:                 {config}");
    println!();
    println!("Send an audience event as a Segment client would:");
    println!(
        r#"  curl -u {WRITE_KEY}: {service}/v1/identify -H 'content-type: application/json' \
    -d '{{"userId":"u-9","traits":{{"email":"zoe@example.com","curl_fans":true}},"context":{{"personas":{{"computation_class":"audience","computation_key":"curl_fans"}}}}}}'"#
    );
    println!("Then look:");
    println!("  curl {sim}/_sim/projects/1001/lists");
    println!("  iterable-lists status --config {config}");
    println!(
        "  iterable-lists lists --config {config}     # member counts need the store: after Ctrl-C"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_examples_parse_and_imply_the_documented_lists() {
        let examples = load_examples().unwrap();
        let events: Vec<Value> = examples.into_iter().map(|e| e.event).collect();
        let lists = expected_lists(&events);
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        // fixtures/engage/README.md and examples/engage/README.md
        assert_eq!(lists["first_time_shopper"], set(&["u-1001", "u-1003"]));
        assert_eq!(lists["vip_customers"], set(&["u-1004"]));
        assert_eq!(
            lists["cart_abandoners"],
            set(&["fay@example.com", "u-2003"])
        );
        assert_eq!(lists["my_aud"], set(&["u1"]));
        assert_eq!(lists["weekend_browsers"], set(&["u-3001"]));
    }

    #[test]
    fn compare_names_missing_and_extra_members() {
        let mut expected = Expected::new();
        expected.insert("vip".into(), BTreeSet::from(["a".to_owned()]));
        let mut actual = BTreeMap::new();
        actual.insert("vip".to_owned(), (1, BTreeSet::from(["b".to_owned()])));
        actual.insert("old".to_owned(), (2, BTreeSet::new()));
        let p = compare(&expected, &actual);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("missing") && p[0].contains('a'));
        assert!(p[1].contains("should not hold") && p[1].contains('b'));
    }
}
