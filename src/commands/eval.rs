//! `iterable-lists eval`: applies a mapping or a trigger to one event, for people writing
//! mappings. Nothing is sent anywhere.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

/// Applies a mapping (prints the mapped JSON) or a trigger (prints `true` or `false`) to one
/// event. Mappings and triggers are written as for Segment's actions framework.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["mapping", "trigger"])))]
pub struct EvalArgs {
    /// A JSON file holding a mapping object (raw values and directives such as `@path`).
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// A trigger expression, for example `type = "identify" or type = "track"`.
    #[arg(long, value_name = "EXPR")]
    pub trigger: Option<String>,
    /// A JSON file holding one event; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
}

fn read(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the event from standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json(path: &Path, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&read(path)?)
        .with_context(|| format!("{what} {} is not valid JSON", path.display()))
}

/// Runs the command.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let event = read_json(&args.event, "the event")?;
    if !event.is_object() {
        anyhow::bail!("the event must be a JSON object");
    }
    if let Some(expr) = args.trigger {
        let trigger = mapping::Trigger::parse(&expr)?;
        println!("{}", trigger.matches(&event));
    } else if let Some(path) = args.mapping {
        let spec = read_json(&path, "the mapping")?;
        let compiled = mapping::Mapping::compile(&spec)?;
        let out = compiled.apply(&event)?;
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(ExitCode::SUCCESS)
}
