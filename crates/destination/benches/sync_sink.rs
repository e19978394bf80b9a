//! The in-memory executor end to end: events → map → resolve → plan → send → attribute, to a
//! do-nothing sink (no I/O) and to the embedded simulator over loopback HTTP. Prints events
//! per second of wall time on a single-threaded runtime. Run with
//! `cargo bench -p destination --bench sync_sink`.

use std::sync::Arc;
use std::time::Instant;

use destination::model::{Outcome, Timestamp};
use destination::settings::{ApiKey, DestinationSettings};
use destination::sync::{Executor, SyncSettings, client_for};
use iterable::{NullSink, ProjectType};
use iterable_sim::{SimConfig, Simulator};
use segment::{Event, Limits, parse_ndjson};

const AUDS: usize = 10;

fn events(n: usize) -> Vec<Event> {
    let mut body = String::with_capacity(n * 330);
    for i in 0..n {
        let a = i % AUDS;
        let ts = Timestamp::from_unix_millis(1_760_000_000_000 + i as i64);
        body.push_str(&format!(
            concat!(
                r#"{{"type":"identify","userId":"user-{i}","messageId":"m-{i}","timestamp":"{ts}","#,
                r#""traits":{{"email":"user-{i}@example.com","aud_{a}":{member}}},"#,
                r#""context":{{"personas":{{"computation_class":"audience","computation_key":"aud_{a}"}}}}}}"#,
                "\n"
            ),
            i = i,
            a = a,
            ts = ts,
            member = i % 7 != 0,
        ));
    }
    parse_ndjson(body.as_bytes(), &Limits::default())
        .into_iter()
        .map(|e| e.expect("generated events parse"))
        .collect()
}

fn delivered_or_skipped(o: &Outcome) -> bool {
    matches!(o, Outcome::Delivered | Outcome::Skipped { .. })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let n = 200_000;
        let evs = events(n);
        let dest = DestinationSettings::new(ApiKey::new("k"), ProjectType::Hybrid);
        let exec = Executor::new(dest, Arc::new(NullSink::new()), SyncSettings::default());
        let t = Instant::now();
        let report = exec.sync_events(&evs).await;
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.count(delivered_or_skipped), n);
        println!(
            "sync to null sink: {n} events in {secs:.3} s = {:.0} events/s ({} requests)",
            n as f64 / secs,
            report.requests.len()
        );

        let n = 50_000;
        let evs = events(n);
        let sim = Simulator::start(SimConfig::new().project("bench-key", ProjectType::Hybrid))
            .await
            .expect("simulator");
        let mut dest = DestinationSettings::new(ApiKey::new("bench-key"), ProjectType::Hybrid);
        dest.endpoint = Some(sim.base_url());
        dest.allow_custom_endpoint = true;
        let exec = Executor::new(
            dest.clone(),
            Arc::new(client_for(&dest).expect("client")),
            SyncSettings::default(),
        );
        let t = Instant::now();
        let report = exec.sync_events(&evs).await;
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.count(delivered_or_skipped), n);
        println!(
            "sync to embedded simulator (same thread): {n} events in {secs:.3} s = {:.0} events/s ({} requests)",
            n as f64 / secs,
            report.requests.len()
        );
    });
}
