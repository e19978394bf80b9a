//! Benchmark of the SQLite store: sustained accepted events per second (durable commits,
//! unique `messageId`s, batches of 100 and of 1000) and peak resident memory with a large
//! backlog.
//!
//! ```text
//! cargo run --release -p store --bin store-bench -- [DIR] [--events N] [--backlog N] [--normal]
//! ```
//!
//! Defaults: 500,000 events per batch-size run, a 5,000,000-event backlog, `synchronous=FULL`,
//! files under `target/store-bench`. Each run uses a fresh store file.

use std::path::PathBuf;
use std::time::Instant;

use store::{Change, Direction, SqliteOptions, SqliteStore, Store, Synchronous};

struct Args {
    dir: PathBuf,
    events: u64,
    backlog: u64,
    synchronous: Synchronous,
    page_size: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: PathBuf::from("target/store-bench"),
        events: 500_000,
        backlog: 5_000_000,
        synchronous: Synchronous::Full,
        page_size: SqliteOptions::default().page_size,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => args.events = number(it.next())?,
            "--backlog" => args.backlog = number(it.next())?,
            "--page-size" => args.page_size = number(it.next())? as u32,
            "--normal" => args.synchronous = Synchronous::Normal,
            other if !other.starts_with("--") => args.dir = PathBuf::from(other),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

fn number(v: Option<String>) -> Result<u64, String> {
    v.ok_or("missing number")?
        .replace('_', "")
        .parse()
        .map_err(|e| format!("bad number: {e}"))
}

/// A well-mixed 64-bit value, so that ids land all over the indexes as real ids do.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn change(i: u64, audiences: u64) -> Change {
    let id = mix(i);
    Change {
        destination: "bench".into(),
        audience_key: format!("audience_{}", i % audiences),
        identity: format!("user-{id:016x}"),
        email: Some(format!("user-{id:016x}@example.com")),
        user_id: Some(format!("user-{id:016x}")),
        direction: if i % 5 == 0 {
            Direction::Out
        } else {
            Direction::In
        },
        data_fields: None,
        message_id: format!("{:016x}-{:016x}", mix(i ^ 0xABCD), id),
        timestamp: 1_700_000_000_000 + i as i64,
        audience_settings: None,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Bytes this process caused to be written to storage (`write_bytes` in /proc/self/io).
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find(|l| l.starts_with("write_bytes:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn print_peak(when: &str) {
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS (VmHWM) {when}: {:.1} MB", kib as f64 / 1024.0),
        None => println!("peak RSS: /proc/self/status unavailable"),
    }
}

fn fresh(
    dir: &std::path::Path,
    name: &str,
    args: &Args,
) -> Result<SqliteStore, Box<dyn std::error::Error>> {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    Ok(SqliteStore::open(
        &path,
        SqliteOptions {
            synchronous: args.synchronous,
            page_size: args.page_size,
            backlog_bound: u64::MAX,
            ..SqliteOptions::default()
        },
    )?)
}

/// Accepts `events` changes in batches, printing the rate per slice; returns the overall rate,
/// including the time to apply what is left in the journal at the end.
fn accept_run(
    store: &SqliteStore,
    events: u64,
    batch: u64,
    report_every: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let written_before = written_bytes();
    let mut slice_start = Instant::now();
    let mut done = 0u64;
    let mut buf = Vec::with_capacity(batch as usize);
    while done < events {
        buf.clear();
        for i in done..(done + batch).min(events) {
            buf.push(change(i, 10));
        }
        store.accept(&buf, now_ms())?;
        let before = done;
        done += buf.len() as u64;
        if done / report_every != before / report_every {
            let rate = report_every as f64 / slice_start.elapsed().as_secs_f64();
            println!(
                "    {:>9} events accepted, last slice {:>9.0} events/s",
                done, rate
            );
            slice_start = Instant::now();
        }
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    // Accepted changes may still wait in the journal: the time to apply them to the ledger
    // (what the delivery side's next call would do) belongs to the sustained figure.
    let t = Instant::now();
    store.count_backlog()?;
    println!(
        "  accept {rate:.0} events/s; with the rest of the journal applied ({:?}): {:.0} events/s",
        t.elapsed(),
        events as f64 / start.elapsed().as_secs_f64()
    );
    let rate = events as f64 / start.elapsed().as_secs_f64();
    if let (Some(a), Some(b)) = (written_before, written_bytes()) {
        println!(
            "  written to storage: {:.0} MB, {:.0} bytes per event",
            (b - a) as f64 / 1e6,
            (b - a) as f64 / events as f64
        );
    }
    Ok(rate)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    std::fs::create_dir_all(&args.dir)?;
    println!(
        "store-bench: dir {}, synchronous {:?}, page size {}",
        args.dir.display(),
        args.synchronous,
        args.page_size
    );
    for batch in [100u64, 1000] {
        if args.events == 0 {
            break;
        }
        let store = fresh(&args.dir, &format!("accept-{batch}.db"), &args)?;
        println!("accept, batches of {batch}, {} unique events:", args.events);
        let rate = accept_run(&store, args.events, batch, args.events.div_ceil(5))?;
        println!("  sustained: {rate:.0} events/s (batches of {batch})");
    }

    if args.backlog == 0 {
        return Ok(());
    }
    let store = fresh(&args.dir, "backlog.db", &args)?;
    println!("backlog of {} events, batches of 1000:", args.backlog);
    let rate = accept_run(&store, args.backlog, 1000, 1_000_000)?;
    println!("  sustained: {rate:.0} events/s");
    println!("  backlog now {}", store.backlog());
    print_peak("after accepting the backlog");
    let t = Instant::now();
    let due = store.due(now_ms() + 1, 1000)?;
    println!(
        "  due(): {} audience/direction pairs in {:?}",
        due.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let mut claimed = 0;
    if let Some(first) = due.first() {
        let rows = store.claim(first.audience, first.direction, now_ms() + 1, 1000)?;
        claimed = rows.len();
        let refs: Vec<_> = rows.into_iter().map(|r| r.row).collect();
        store.confirm(&refs, "bench-request", now_ms())?;
    }
    println!("  claim+confirm of {claimed} rows in {:?}", t.elapsed());
    print_peak("after due, claim and confirm");
    let t = Instant::now();
    let status = store.status()?;
    println!(
        "  status(): {} pending rows in {} groups, in {:?}",
        status.pending.iter().map(|p| p.pending).sum::<u64>(),
        status.pending.len(),
        t.elapsed()
    );
    print_peak("at the end (process lifetime)");
    Ok(())
}
