//! Figure 4: a 1,000,000-member backfill across 10 lists, accepted into the store first, then
//! delivered to a simulator that allows subscribe and unsubscribe together R = 50 requests/s
//! per project; time from the first answered request to the last confirmation, against the
//! ideal (1000 requests / R = 20 s), and the 429s. Once told R, once not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iterable_sim::{Endpoint, LimitRule, Limits};

use crate::common::{self, API_KEY, EngineKnobs};
use crate::report::{Figure, median};

const LISTS: usize = 10;
const R: f64 = 50.0;

fn member_events(members: usize) -> String {
    let mut s = String::with_capacity(members * 260);
    let per = members / LISTS;
    for a in 0..LISTS {
        for u in 0..per {
            crate::events::membership_event(
                &mut s,
                &format!("bf-{a}-{u}"),
                &format!("bf-{a}-{u}"),
                &format!("backfill_{a}"),
                None,
                true,
                1_760_000_000_000 + u as i64,
            );
            s.push('\n');
        }
    }
    s
}

/// Accepts the backfill once, with delivery off; returns the directory holding the store.
async fn prepare(work: &Path, members: usize) -> anyhow::Result<(tempfile::TempDir, f64)> {
    let dir = tempfile::tempdir_in(work)?;
    let text = common::config_text(
        &dir.path().join("s.db"),
        "http://127.0.0.1:9",
        &EngineKnobs::default(),
    );
    let e = common::engine(&text, true).await?;
    let events = member_events(members);
    let t = Instant::now();
    let n = common::accept_ndjson(&e, &events, 1000).await?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(n == members, "accepted {n} of {members}");
    e.shutdown(Duration::from_secs(5)).await;
    Ok((dir, secs))
}

fn copy_store(from: &Path, to: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(to.join("s.db"))
}

struct Run {
    seconds: f64,
    requests: u64,
    limited: u64,
}

async fn one(base: &Path, work: &Path, members: usize, rate: Option<f64>) -> anyhow::Result<Run> {
    let sim = common::simulator(0).await?;
    sim.set_limits(Limits::none().rule(LimitRule::per_second(
        &[Endpoint::Subscribe, Endpoint::Unsubscribe],
        R,
    )));
    let dir = tempfile::tempdir_in(work)?;
    let store = copy_store(base, dir.path())?;
    let text = common::config_text(
        &store,
        &sim.base_url(),
        &EngineKnobs {
            rate,
            ..Default::default()
        },
    );
    let e = common::engine(&text, false).await?;
    // The first answer marks the first request (one loopback round trip later); the last
    // confirmation is when the delivered count reaches every member.
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let last = loop {
        let s = e.stats();
        let now = Instant::now();
        if first.is_none() && s.requests > 0 {
            first = Some(now);
        }
        if s.delivered >= members as u64 {
            break now;
        }
        anyhow::ensure!(now < deadline, "backfill did not finish in 600 s: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    common::settle(&e, 60).await?;
    let s = e.stats();
    e.shutdown(Duration::from_secs(5)).await;
    let mut got = 0;
    for l in sim.lists(API_KEY)? {
        got += sim.list_members(API_KEY, l.id)?.len();
    }
    anyhow::ensure!(
        got == members,
        "the simulator holds {got} members of {members}"
    );
    sim.shutdown().await;
    let first = first.unwrap_or(last);
    Ok(Run {
        seconds: (last - first).as_secs_f64(),
        requests: s.requests,
        limited: s.rate_limited,
    })
}

/// Runs figure 4: `runs` runs told R, `runs` runs not told.
pub async fn run(work: &Path, members: usize, runs: usize) -> anyhow::Result<Vec<Figure>> {
    let (base, accept_s) = prepare(work, members).await?;
    eprintln!("  backfill: {members} members accepted in {accept_s:.1} s");
    let ideal = (members as f64 / 1000.0) / R;
    let mut figures = Vec::new();
    for (label, rate, within) in [("told R", Some(R), 0.10), ("not told R (AIMD)", None, 0.50)] {
        let (mut secs, mut pct, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs {
            let r = one(base.path(), work, members, rate).await?;
            let p = 100.0 * r.limited as f64 / r.requests.max(1) as f64;
            eprintln!(
                "  backfill {label} run {}: {:.1} s (ideal {ideal:.0} s), {} requests, {} answered 429 ({p:.2} %)",
                i + 1,
                r.seconds,
                r.requests,
                r.limited
            );
            notes.push(format!("{} req, {} x 429", r.requests, r.limited));
            secs.push(r.seconds);
            pct.push(p);
        }
        let m = median(&secs);
        let p = median(&pct);
        let met = m <= ideal * (1.0 + within) && (rate.is_none() || p < 1.0);
        figures.push(
            Figure::new(
                "4 backfill",
                &format!("{label}: first request to last confirmation"),
                m,
                " s",
                runs,
            )
            .samples(&secs)
            .goal(
                &if rate.is_some() {
                    format!("<= {:.0} s, < 1 % 429", ideal * (1.0 + within))
                } else {
                    format!("<= {:.0} s", ideal * (1.0 + within))
                },
                met,
            )
            .note(&format!(
                "ideal {ideal:.0} s; {:.2} % answered 429 (median); {}",
                p,
                notes.join("; ")
            )),
        );
    }
    Ok(figures)
}
