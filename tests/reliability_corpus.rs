//! The bad-input corpus through the library path: `segment` parsing (batch envelope and
//! NDJSON), the service's gzip decoding, the default mapping and the in-memory executor
//! against the simulator.
//!
//! Each case gets the outcome `tests/corpus/cases.toml` prescribes (design decisions
//! *Audience events*, *Outcomes*, *Isolation*), with a reason that names the problem, and its
//! two valid neighbours are delivered all the same: per element of a well-formed batch and
//! per line of NDJSON. The same corpus runs through the HTTP ingest in
//! `reliability_corpus_http.rs`.

mod reliability_support;

use std::collections::BTreeSet;
use std::sync::Arc;

use destination::model::Outcome;
use destination::settings::{ApiKey, DestinationSettings};
use destination::sync::{Executor, SyncSettings, client_for};
use iterable::{Client, ProjectType};
use iterable_sim::{SimConfig, Simulator};
use reliability_support::corpus::{self, AUDIENCE, Case};
use segment::{BodyError, Limits};

const KEY: &str = "corpus-sim-key";

async fn env() -> (Simulator, Executor<Client>) {
    let sim = Simulator::start(SimConfig::new().project(KEY, ProjectType::Hybrid).seed(3))
        .await
        .expect("simulator starts");
    let mut dest = DestinationSettings::new(ApiKey::new(KEY), ProjectType::Hybrid);
    dest.endpoint = Some(sim.base_url());
    dest.allow_custom_endpoint = true;
    let client = client_for(&dest).expect("client");
    let settings = SyncSettings {
        jitter_seed: Some(1),
        ..SyncSettings::default()
    };
    (sim, Executor::new(dest, Arc::new(client), settings))
}

/// What an outcome says, checked against the case.
fn check_outcome(case: &Case, got: &Outcome) -> Result<(), String> {
    match (case.expect.as_str(), got) {
        ("delivered", Outcome::Delivered) => Ok(()),
        ("skipped", Outcome::Skipped { reason }) | ("rejected", Outcome::Rejected { reason }) => {
            corpus::check_reason(case, reason.code.as_str(), &reason.message)
        }
        (want, got) => Err(format!("outcome {got:?}, want {want}")),
    }
}

fn members(sim: &Simulator) -> BTreeSet<String> {
    let s = sim.sim();
    let lists = s.lists(KEY).expect("lists");
    let Some(list) = lists.iter().find(|l| l.name == AUDIENCE) else {
        return BTreeSet::new();
    };
    s.list_members(KEY, list.id)
        .expect("members")
        .into_iter()
        .collect()
}

/// Runs every element and line case: the bad one in the middle, valid neighbours around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_element_gets_its_outcome_and_its_neighbours_are_delivered() {
    let (sim, exec) = env().await;
    let limits = Limits::default();
    let mut failures = Vec::new();
    let mut expected_members = BTreeSet::new();
    let mut ran = 0;
    for case in corpus::cases() {
        let mut runs: Vec<(&str, Vec<Result<segment::Event, segment::ElementError>>)> = Vec::new();
        match case.form.as_str() {
            "element" => {
                let batch = corpus::batch_around(&case, "lib-batch");
                match segment::parse_batch(&batch, &limits) {
                    Ok(b) => runs.push(("lib-batch", b.elements)),
                    Err(e) => {
                        failures.push(format!("{}: batch refused whole: {e}", case.file));
                        continue;
                    }
                }
                let nd = corpus::ndjson_around(&case, "lib-ndjson");
                runs.push(("lib-ndjson", segment::parse_ndjson(&nd, &limits)));
            }
            "line" => {
                let nd = corpus::ndjson_around(&case, "lib-ndjson");
                runs.push(("lib-ndjson", segment::parse_ndjson(&nd, &limits)));
            }
            _ => continue,
        }
        for (via, elements) in runs {
            ran += 1;
            if elements.len() != 3 {
                failures.push(format!(
                    "{} via {via}: {} elements, want 3",
                    case.file,
                    elements.len()
                ));
                continue;
            }
            let report = exec.sync_parsed(&elements).await;
            let (before, after) = corpus::neighbours(&case, via);
            for (i, who) in [(0, &before), (2, &after)] {
                if report.outcomes[i] != Outcome::Delivered {
                    failures.push(format!(
                        "{} via {via}: neighbour {who} not delivered: {:?}",
                        case.file, report.outcomes[i]
                    ));
                }
                expected_members.insert(format!("{who}@example.com"));
            }
            if let Err(e) = check_outcome(&case, &report.outcomes[1]) {
                failures.push(format!("{} via {via}: {e}", case.file));
            }
        }
    }
    assert!(ran > 100, "only {ran} runs: is the corpus there?");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every neighbour is in the list; whatever else is there came from cases expected to be
    // delivered.
    let got = members(&sim);
    let missing: Vec<_> = expected_members.difference(&got).collect();
    assert!(
        missing.is_empty(),
        "neighbours missing from the list: {missing:?}"
    );
}

/// The service's body decoding (gzip) then `segment::parse_batch`.
fn read_body(case: &Case) -> Result<segment::Batch, (String, String)> {
    let raw = corpus::bytes(case);
    let limits = Limits::default();
    let body = match case.encoding.as_deref() {
        Some("gzip") => server::body::gunzip(&raw, limits.max_batch_bytes)
            .map_err(|e| (e.code.to_owned(), e.message))?,
        _ => raw,
    };
    segment::parse_batch(&body, &limits).map_err(|e| {
        let code = match &e {
            BodyError::TooLarge { .. } => "body_too_large",
            BodyError::NotJson(_) => "invalid_json",
            BodyError::NotABatch(_) => "not_a_batch",
        };
        (code.to_owned(), e.to_string())
    })
}

/// Whole bodies: refused whole with the prescribed code, or read as the case says.
#[test]
fn bad_bodies_are_refused_whole_with_a_reason() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in corpus::cases().into_iter().filter(|c| c.form == "body") {
        ran += 1;
        match (case.expect.as_str(), read_body(&case)) {
            ("refused", Err((code, message))) => {
                if let Err(e) = corpus::check_reason(&case, &code, &message) {
                    failures.push(format!("{}: {e}", case.file));
                }
            }
            ("ok", Ok(batch)) => {
                let bad = batch.elements.iter().filter(|e| e.is_err()).count();
                if Some(bad) != case.rejected.or(Some(0)) {
                    failures.push(format!("{}: {bad} elements refused", case.file));
                }
                if Some(batch.elements.len()) != case.received {
                    failures.push(format!(
                        "{}: {} elements, want {:?}",
                        case.file,
                        batch.elements.len(),
                        case.received
                    ));
                }
            }
            (want, got) => failures.push(format!(
                "{}: want {want}, got {:?}",
                case.file,
                got.map(|b| b.elements.len())
            )),
        }
    }
    assert!(ran >= 10, "only {ran} body cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An empty NDJSON file and one of blank lines hold no events and fail nothing.
#[test]
fn empty_ndjson_holds_no_events() {
    let limits = Limits::default();
    assert!(segment::parse_ndjson(b"", &limits).is_empty());
    assert!(segment::parse_ndjson(b"\n\r\n  \n", &limits).is_empty());
}
