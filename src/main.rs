//! `iterable-lists`: keeps Iterable static lists in step with customer audiences.
//!
//! Each subcommand lives in its own module under `commands/`; this file only parses the
//! command line and reports errors to a person.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps Iterable static lists in step with customer audiences.
///
/// A customer-data platform (Segment Engage or anything that speaks the Segment spec) emits an
/// event each time a user enters or leaves an audience. iterable-lists turns those events into
/// Iterable list subscribes and unsubscribes, durably, within Iterable's rate limits.
#[derive(Debug, Parser)]
#[command(
    name = "iterable-lists",
    version,
    about,
    long_about,
    propagate_version = true,
    after_help = "Start here:
  iterable-lists demo                 # the whole product on this machine, checked
  iterable-lists sim                  # an Iterable stand-in on 127.0.0.1:8099
  iterable-lists serve --config examples/iterable-lists.toml
  iterable-lists send examples/engage/*.ndjson --config examples/iterable-lists.toml

Know this before running against a real Iterable project:
  - A list exit made through lists/unsubscribe is logged by Iterable as an email unsubscribe
    event (source ListAPI) and fires its unsubscribe webhook: systems reading that webhook as
    an opt-out will see audience exits as opt-outs.
  - Journeys triggered by \"subscribed to list\" miss users added in the first minutes after
    the journey is switched on: start a backfill after the journey is live.
  - Iterable lowercases emails, and user ids are case-sensitive: a list may show another case
    than the CDP sent.

Every configuration option: docs/configuration.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(after_help = "Examples:
  iterable-lists sim                                   # 127.0.0.1:8099, one hybrid project, key sim-key
  iterable-lists sim --project k-email=email --write-rate 50 --error-rate 0.05
  curl http://127.0.0.1:8099/_sim/projects/1001/lists  # what the lists hold")]
    Sim(commands::sim::SimArgs),
    #[command(after_help = "Examples:
  iterable-lists eval --trigger 'type = \"identify\"' --event examples/engage/event.json
  iterable-lists eval --mapping mapping.json --event event.json")]
    Eval(commands::eval::EvalArgs),
    #[command(after_help = "Examples:
  iterable-lists send examples/engage/*.ndjson --config examples/iterable-lists.toml
  iterable-lists send backfill.ndjson --config prod.toml --destination engage --timeout 1h
      (a journey triggered by \"subscribed to list\" misses users added in its first minutes:
       switch it on before the backfill)
  iterable-lists send events.ndjson --config examples/iterable-lists.toml --to http://127.0.0.1:8088
  cat events.ndjson | iterable-lists send - --config prod.toml --json")]
    Send(commands::send::SendArgs),
    #[command(after_help = "Examples:
  iterable-lists serve --config examples/iterable-lists.toml
  ITERABLE_LISTS_ENGAGE_API_KEY=... iterable-lists serve --config prod.toml --log-format json
  curl -u tour-write-key: http://127.0.0.1:8088/v1/batch -d @batch.json -H 'content-type: application/json'")]
    Serve(commands::serve::ServeArgs),
    Demo(commands::demo::DemoArgs),
    Lists(commands::lists::ListsArgs),
    Status(commands::status::StatusArgs),
    Replay(commands::replay::ReplayArgs),
    #[command(after_help = "Examples:
  iterable-lists test-mapping --event examples/engage/event.json
  iterable-lists test-mapping --event event.json --mapping mapping.json --config prod.toml")]
    TestMapping(commands::test_mapping::TestMappingArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(args) => commands::sim::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Send(args) => commands::send::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Demo(args) => commands::demo::run(args),
        Command::Lists(args) => commands::lists::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::TestMapping(args) => commands::test_mapping::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
