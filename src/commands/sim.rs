//! `iterable-lists sim`: runs the Iterable simulator.

use std::process::ExitCode;

/// Runs a local Iterable simulator (the list API, faults and rate limits) for tests and demos.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub listen: String,
}

/// Runs the simulator until interrupted.
pub fn run(_args: SimArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the simulator is not built yet")
}
