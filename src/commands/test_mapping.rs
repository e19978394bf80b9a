//! `iterable-lists test-mapping`: what one event would become under one mapping (or the
//! default), down to the exact Iterable request. Nothing is sent.
//!
//! Exit codes: 0 when the event becomes a change or is skipped, 1 when it would be rejected,
//! 2 for usage and configuration errors (reported by `main`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::MapContext;
use destination::model::Timestamp;
use destination::preview::{ListChoice, Preview, PreviewOutcome, preview_json};
use destination::settings::{ApiKey, DestinationSettings};
use iterable::ProjectType;
use serde_json::Value;

/// Shows what one event would become: whether the trigger matches, the mapped fields, the
/// membership decision, and the exact Iterable request (path and JSON body), or why the event
/// would be skipped or rejected. Nothing is sent to Iterable.
#[derive(Debug, clap::Args)]
pub struct TestMappingArgs {
    /// A JSON file holding one event; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// A JSON file holding one mapping: either `{"name", "trigger", "mapping": {…}, "enabled"}`
    /// or just the field mappings as pasted from Segment (`{"email": {"@path": …}, …}`, with
    /// the default trigger). Without it, the default mapping is used.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// The service's TOML configuration: the destination's settings (project type, data
    /// fields, audience bindings) shape the request. API keys are not needed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Which `[[destination]]` of the configuration (needed when it declares several).
    #[arg(long, value_name = "NAME", requires = "config")]
    pub destination: Option<String>,
    /// The Iterable project type: `email`, `userId` or `hybrid` (default `hybrid`, or the
    /// configuration's).
    #[arg(long, value_name = "T")]
    pub project_type: Option<String>,
    /// Print the preview as JSON (the admin API's form).
    #[arg(long)]
    pub json: bool,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut s = Vec::new();
        std::io::stdin()
            .read_to_end(&mut s)
            .with_context(|| format!("reading {what} from standard input"))?;
        return Ok(s);
    }
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

const CONFIG_KEYS: &[&str] = &["name", "trigger", "mapping", "fields", "enabled"];

/// Reads a mapping file in either accepted form.
fn mapping_config(path: &Path) -> anyhow::Result<MappingConfig> {
    let v: Value = serde_json::from_slice(&read(path, "the mapping")?)
        .with_context(|| format!("the mapping {} is not valid JSON", path.display()))?;
    let Value::Object(mut obj) = v else {
        bail!("the mapping {} must be a JSON object", path.display());
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("mapping")
        .to_owned();
    let is_config = !obj.is_empty() && obj.keys().all(|k| CONFIG_KEYS.contains(&k.as_str()));
    if is_config {
        obj.entry("name").or_insert(Value::String(stem));
        serde_json::from_value(Value::Object(obj))
            .with_context(|| format!("the mapping {} is not a valid mapping", path.display()))
    } else {
        let mut c = MappingConfig::new(stem);
        c.mapping = obj;
        Ok(c)
    }
}

fn project_type(s: &str) -> anyhow::Result<ProjectType> {
    serde_json::from_value(Value::String(s.to_owned()))
        .map_err(|_| anyhow::anyhow!("--project-type must be email, userId or hybrid, got {s:?}"))
}

/// The destination settings: from the configuration when given, else defaults.
fn settings(args: &TestMappingArgs) -> anyhow::Result<DestinationSettings> {
    let mut s = match &args.config {
        None => DestinationSettings::new(ApiKey::new("unused"), ProjectType::Hybrid),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the configuration {}", path.display()))?;
            // Nothing is sent, so a missing API key is filled with a stand-in.
            let config = delivery::config::Config::parse(&text, |k| {
                std::env::var(k)
                    .ok()
                    .or_else(|| k.ends_with("_API_KEY").then(|| "unused".to_owned()))
            })
            .with_context(|| format!("in {}", path.display()))?;
            let dest = match &args.destination {
                Some(name) => config.destination(name).with_context(|| {
                    format!("the configuration declares no destination named {name:?}")
                })?,
                None => match config.destinations.as_slice() {
                    [one] => one,
                    [] => bail!("the configuration declares no destination"),
                    _ => bail!(
                        "the configuration declares several destinations: choose one with --destination"
                    ),
                },
            };
            dest.settings()
        }
    };
    if let Some(t) = &args.project_type {
        s.project_type = project_type(t)?;
    }
    Ok(s)
}

/// Runs the command.
pub fn run(args: TestMappingArgs) -> anyhow::Result<ExitCode> {
    let event = read(&args.event, "the event")?;
    serde_json::from_slice::<Value>(&event)
        .with_context(|| format!("the event {} is not valid JSON", args.event.display()))?;
    let mappings = match &args.mapping {
        None => MappingSet::default_mapping(),
        Some(path) => MappingSet::single(&mapping_config(path)?)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("the mapping {} is invalid", path.display()))?,
    };
    let settings = settings(&args)?;
    let ctx = MapContext {
        received_order: 0,
        received_at: Timestamp::now(),
    };
    let p = preview_json(&event, &mappings, &settings, ctx);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", text(&p));
    }
    Ok(if p.is_rejected() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// The preview for a person.
fn text(p: &Preview) -> String {
    let mut out = String::new();
    let mapping = p.mapping.as_deref().unwrap_or("none");
    out.push_str(&format!(
        "mapping:    {mapping} (trigger {})\n",
        if p.trigger_matched {
            "matched"
        } else {
            "did not match"
        }
    ));
    let verdict = match p.outcome {
        PreviewOutcome::Change => "change",
        PreviewOutcome::Skipped => "skipped",
        PreviewOutcome::Rejected => "rejected",
    };
    out.push_str(&format!("outcome:    {verdict}\n"));
    for r in &p.reasons {
        out.push_str(&format!("reason:     {r}\n"));
    }
    if let Some(m) = &p.membership {
        let who: Vec<String> = [
            m.email.as_ref().map(|e| format!("email {e}")),
            m.user_id.as_ref().map(|u| format!("userId {u}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let verb = match m.direction {
            destination::model::Direction::Subscribe => "enters",
            destination::model::Direction::Unsubscribe => "exits",
        };
        out.push_str(&format!(
            "membership: {} {verb} audience {:?}\n",
            who.join(", "),
            m.audience_key
        ));
        if !m.data_fields.is_empty() {
            out.push_str(&format!(
                "dataFields: {}\n",
                Value::Object(m.data_fields.clone())
            ));
        }
    }
    if let Some(r) = &p.request {
        let list = match &r.list {
            ListChoice::Binding { list_id } => format!("list {list_id} (operator binding)"),
            ListChoice::BindingByName { name } => {
                format!("list named {name:?} (operator binding, id looked up at send time)")
            }
            ListChoice::Event { list_id } => format!("list {list_id} (from the event)"),
            ListChoice::ByAudienceName { name } => {
                format!("list named {name:?} (found or created at send time)")
            }
        };
        out.push_str(&format!("request:    {} {} to {list}\n", r.method, r.url));
        out.push_str(&indent(&pretty(&r.body)));
    }
    if let Some(f) = &p.mapped_fields {
        out.push_str("mapped fields:\n");
        out.push_str(&indent(&pretty(f)));
    }
    for w in &p.warnings {
        out.push_str(&format!("note:       {w}\n"));
    }
    out
}
