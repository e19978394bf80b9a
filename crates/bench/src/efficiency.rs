//! Figure 3: Iterable requests per net membership change on a stream with churn, against the
//! ideal (net changes per list and direction ÷ 1000, rounded up), and the anchor's count.

use std::path::Path;

use crate::anchor::{self, Sink};
use crate::common::{self, API_KEY, EngineKnobs};
use crate::events::{AUDS, Churn};
use crate::report::{Figure, median};

const LIST_BASE: i64 = 5000;

/// Our subscribe and unsubscribe requests on one run. The service creates its lists while
/// the baseline lands (the events' `external_audience_id`s name no existing list), as it does
/// when it syncs an audience from the start.
async fn ours(
    churn: &crate::events::ChurnStream,
    work: &Path,
    users: usize,
) -> anyhow::Result<(usize, usize)> {
    let sim = common::simulator(1_000_000).await?;
    let dir = tempfile::tempdir_in(work)?;
    let text = common::config_text(
        &dir.path().join("s.db"),
        &sim.base_url(),
        &EngineKnobs::default(),
    );
    // Before the stream: the baseline members are in their lists, confirmed.
    let e = common::engine(&text, false).await?;
    common::accept_ndjson(&e, &churn.baseline, 1000).await?;
    common::settle(&e, 300).await?;
    e.shutdown(std::time::Duration::from_secs(5)).await;
    drop(e);
    sim.clear_request_log();
    // The stream lands inside one flush window: accepted while nothing is sent.
    let e = common::engine(&text, true).await?;
    common::accept_ndjson(&e, &churn.stream, 1000).await?;
    e.shutdown(std::time::Duration::from_secs(5)).await;
    drop(e);
    let e = common::engine(&text, false).await?;
    common::settle(&e, 300).await?;
    e.shutdown(std::time::Duration::from_secs(5)).await;
    drop(e);
    let (sub, unsub, limited, _) = common::count_requests(&sim.request_log());
    anyhow::ensure!(
        limited == 0,
        "no limit was set, yet {limited} answers were 429"
    );
    // Classes 0, 3 and 5 end in every list.
    let want = (0..users).filter(|u| matches!(u % 6, 0 | 3 | 5)).count();
    let lists = sim.lists(API_KEY)?;
    anyhow::ensure!(
        lists.len() == AUDS,
        "{} lists, expected {AUDS}",
        lists.len()
    );
    for l in lists {
        let got = sim.list_members(API_KEY, l.id)?.len();
        anyhow::ensure!(got == want, "list {}: {got} members, expected {want}", l.id);
    }
    sim.shutdown().await;
    Ok((sub, unsub))
}

/// Runs figure 3 `runs` times with `users` users per audience.
pub async fn run(
    anchor_dir: &Path,
    work: &Path,
    users: usize,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let churn = Churn { users }.build(LIST_BASE);
    let per_list = churn.net_in.div_ceil(1000) + churn.net_out.div_ceil(1000);
    let ideal = (per_list * AUDS) as f64;
    let net = ((churn.net_in + churn.net_out) * AUDS) as f64;
    let file = work.join("churn-stream.ndjson");
    std::fs::write(&file, &churn.stream)?;
    let (mut our, mut their, mut split) = (Vec::new(), Vec::new(), String::new());
    for run in 0..runs {
        let (sub, unsub) = ours(&churn, work, users).await?;
        let n = (sub + unsub) as f64;
        split = format!("{sub} subscribe + {unsub} unsubscribe");
        let sink = Sink::start(anchor_dir).await?;
        let (dir, f, port) = (anchor_dir.to_path_buf(), file.clone(), sink.port);
        let t = tokio::task::spawn_blocking(move || anchor::run_ref(&dir, &f, port)).await??;
        let s = sink.stats().await?;
        drop(sink);
        let m = s["requests"].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "  efficiency run {}: ours {n} requests, anchor {m} requests ({} failed batches), ideal {ideal}, net changes {net}",
            run + 1,
            t["failed_batches"]
        );
        our.push(n);
        their.push(m);
    }
    let stream = format!(
        "{} events, {} audiences, {} users each; {} net changes ({} in, {} out per list)",
        churn.events, AUDS, users, net, churn.net_in, churn.net_out
    );
    let o = median(&our);
    Ok(vec![
        Figure::new(
            "3 efficiency",
            "iterable-lists membership requests",
            o,
            "",
            runs,
        )
        .samples(&our)
        .goal(&format!("= ideal ({ideal})"), o <= ideal)
        .note(&format!(
            "{split}; {:.2} per 1000 net changes; {stream}",
            1000.0 * o / net
        )),
        Figure::new("3 efficiency", "ideal requests", ideal, "", runs)
            .note(&format!("{:.2} per 1000 net changes", 1000.0 * ideal / net)),
        Figure::new(
            "3 efficiency",
            "Segment (node) requests, same stream",
            median(&their),
            "",
            runs,
        )
        .samples(&their)
        .note(&format!(
            "{:.2} per 1000 net changes; {:.1}x the ideal",
            1000.0 * median(&their) / net,
            median(&their) / ideal
        )),
    ])
}
