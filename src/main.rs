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
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Sim(commands::sim::SimArgs),
    Eval(commands::eval::EvalArgs),
    Send(commands::send::SendArgs),
    Serve(commands::serve::ServeArgs),
    Demo(commands::demo::DemoArgs),
    Lists(commands::lists::ListsArgs),
    Status(commands::status::StatusArgs),
    Replay(commands::replay::ReplayArgs),
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
