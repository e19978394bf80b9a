//! `iterable-lists sim`: runs the Iterable simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use iterable::types::ProjectType;
use iterable_sim::{
    CutMode, Endpoint, LimitBody, LimitRule, Limits, ProjectConfig, RetryAfter, SimConfig,
    Simulator,
};

/// Runs a local Iterable simulator: Iterable's list API (`/api/lists…`) for several projects,
/// with optional rate limits and faults, plus a control API under `/_sim/`.
///
/// Without `--config` or `--project`, one hybrid project (id 1001) answers the key `sim-key`.
///
/// `--realistic-limits` applies Iterable's documented limits (`GET /api/lists` 100/s;
/// `getUsers`, `previewUsers`, `size` 5/min, per project) and, where Iterable publishes none,
/// these assumptions: subscribe and unsubscribe 500/s per project sharing one bucket; create
/// list 10/s; delete list 10/s.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub listen: SocketAddr,

    /// TOML file declaring projects, keys, lists, faults and limits.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Seed of every random decision (faults, placeholder emails); overrides the file's.
    #[arg(long)]
    pub seed: Option<u64>,

    /// A project as KEY=TYPE (TYPE: email, userId or hybrid); repeatable. Ids are allocated
    /// after the file's projects.
    #[arg(long = "project", value_name = "KEY=TYPE")]
    pub projects: Vec<String>,

    /// Apply Iterable's documented rate limits plus the assumptions above.
    #[arg(long)]
    pub realistic_limits: bool,

    /// Rate limits and faults (boxed: they are many, and the command enum stays small).
    #[command(flatten)]
    pub behaviour: Box<BehaviourArgs>,
}

/// Flags for rate limits, faults and the request log.
#[derive(Debug, clap::Args)]
pub struct BehaviourArgs {
    /// Limit subscribe and unsubscribe together to this many requests per second per project.
    #[arg(long, value_name = "R")]
    pub write_rate: Option<f64>,

    /// Body of a 429: json or text.
    #[arg(long, value_name = "json|text")]
    pub limit_body: Option<String>,

    /// Retry-After on a 429: none, computed, or a number of seconds.
    #[arg(long, value_name = "none|computed|SECS")]
    pub retry_after: Option<String>,

    /// Fraction of requests answered with an error status.
    #[arg(long, value_name = "FRACTION")]
    pub error_rate: Option<f64>,

    /// Statuses for --error-rate, comma-separated (500, 502, 503, 504, 429).
    #[arg(long, value_delimiter = ',', value_name = "STATUS,…")]
    pub error_statuses: Vec<u16>,

    /// Fraction of requests delayed.
    #[arg(long, value_name = "FRACTION")]
    pub delay_rate: Option<f64>,

    /// Delay range in milliseconds, MIN-MAX.
    #[arg(long, value_name = "MIN-MAX")]
    pub delay_ms: Option<String>,

    /// Fraction of requests whose connection is cut before they are applied.
    #[arg(long, value_name = "FRACTION")]
    pub cut_before_rate: Option<f64>,

    /// Fraction of requests whose connection is cut after they were applied.
    #[arg(long, value_name = "FRACTION")]
    pub cut_after_rate: Option<f64>,

    /// How a cut looks: reset (TCP reset) or hang (no answer until the client gives up).
    #[arg(long, value_name = "reset|hang")]
    pub cut_mode: Option<String>,

    /// Milliseconds during which a list created through the API answers invalidListId.
    #[arg(long, value_name = "MS")]
    pub new_list_delay_ms: Option<u64>,

    /// Most requests kept in the request log.
    #[arg(long, value_name = "N")]
    pub log_capacity: Option<usize>,
}

fn build_config(args: &SimArgs) -> anyhow::Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            SimConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => SimConfig::new(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    for spec in &args.projects {
        let (key, ty) = spec
            .split_once('=')
            .with_context(|| format!("--project {spec:?}: expected KEY=TYPE"))?;
        let ty: ProjectType = ty.parse().map_err(anyhow::Error::msg)?;
        let id = config.projects.iter().map(|p| p.id).max().unwrap_or(1000) + 1;
        config
            .projects
            .push(ProjectConfig::new(id, ty).with_key(key));
    }
    if config.projects.is_empty() {
        config = config.project("sim-key", ProjectType::Hybrid);
    }
    if args.realistic_limits {
        let response = config.limits.response;
        config.limits = Limits::realistic().response(response);
    }
    let args = &args.behaviour;
    if let Some(r) = args.write_rate {
        config.limits.rules.push(LimitRule::per_second(
            &[Endpoint::Subscribe, Endpoint::Unsubscribe],
            r,
        ));
    }
    match args.limit_body.as_deref() {
        None => {}
        Some("json") => config.limits.response.body = LimitBody::Json,
        Some("text") => config.limits.response.body = LimitBody::Text,
        Some(other) => anyhow::bail!("--limit-body {other:?}: expected json or text"),
    }
    match args.retry_after.as_deref() {
        None => {}
        Some("none") => config.limits.response.retry_after = RetryAfter::None,
        Some("computed") => config.limits.response.retry_after = RetryAfter::Computed,
        Some(secs) => {
            let s = secs.parse().with_context(|| {
                format!("--retry-after {secs:?}: expected none, computed or seconds")
            })?;
            config.limits.response.retry_after = RetryAfter::Seconds(s);
        }
    }
    let f = &mut config.faults;
    if let Some(r) = args.error_rate {
        f.error_rate = r;
    }
    if !args.error_statuses.is_empty() {
        f.error_statuses = args.error_statuses.clone();
    }
    if let Some(r) = args.delay_rate {
        f.delay_rate = r;
    }
    if let Some(range) = &args.delay_ms {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        f.delay_min_ms = lo.trim().parse().context("--delay-ms")?;
        f.delay_max_ms = hi.trim().parse().context("--delay-ms")?;
    }
    if let Some(r) = args.cut_before_rate {
        f.cut_before_rate = r;
    }
    if let Some(r) = args.cut_after_rate {
        f.cut_after_rate = r;
    }
    match args.cut_mode.as_deref() {
        None => {}
        Some("reset") => f.cut_mode = CutMode::Reset,
        Some("hang") => f.cut_mode = CutMode::Hang,
        Some(other) => anyhow::bail!("--cut-mode {other:?}: expected reset or hang"),
    }
    if let Some(ms) = args.new_list_delay_ms {
        f.new_list_invisible_ms = ms;
    }
    if let Some(n) = args.log_capacity {
        config.request_log.capacity = n;
    }
    Ok(config)
}

/// Runs the simulator until interrupted (Ctrl-C).
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let config = build_config(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let projects: Vec<String> = config
            .projects
            .iter()
            .map(|p| format!("{} ({}, {} key(s))", p.id, p.project_type, p.api_keys.len()))
            .collect();
        let sim = Simulator::bind(args.listen, config)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        println!("iterable simulator on {}", sim.base_url());
        println!("projects: {}", projects.join(", "));
        println!("control API: {}/_sim/", sim.base_url());
        sim.serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }

    #[test]
    fn flags_build_the_configuration() {
        let cli = Cli::parse_from([
            "sim",
            "--project",
            "k1=email",
            "--project",
            "k2=userId",
            "--seed",
            "9",
            "--write-rate",
            "50",
            "--retry-after",
            "computed",
            "--error-rate",
            "0.1",
            "--error-statuses",
            "503,429",
            "--delay-ms",
            "5-10",
            "--cut-mode",
            "hang",
        ]);
        let c = build_config(&cli.args).unwrap();
        assert_eq!(c.seed, 9);
        assert_eq!(c.projects.len(), 2);
        assert_eq!(c.projects[1].project_type, ProjectType::UserId);
        assert_eq!(
            c.limits.rules[0].endpoints,
            vec![Endpoint::Subscribe, Endpoint::Unsubscribe]
        );
        assert_eq!(c.limits.response.retry_after, RetryAfter::Computed);
        assert_eq!(c.faults.error_statuses, vec![503, 429]);
        assert_eq!((c.faults.delay_min_ms, c.faults.delay_max_ms), (5, 10));
        assert_eq!(c.faults.cut_mode, CutMode::Hang);
    }

    #[test]
    fn a_config_file_is_read_and_flags_add_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.toml");
        std::fs::write(
            &path,
            "seed = 3\n[[projects]]\nid = 50\ntype = \"email\"\napi_keys = [\"f\"]\n",
        )
        .unwrap();
        let path = path.to_string_lossy().into_owned();
        let cli = Cli::parse_from(["sim", "--config", &path, "--project", "k=hybrid"]);
        let c = build_config(&cli.args).unwrap();
        assert_eq!(c.seed, 3);
        assert_eq!(
            c.projects.iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![50, 51]
        );
        let cli = Cli::parse_from(["sim", "--project", "k=nonsense"]);
        assert!(build_config(&cli.args).is_err());
    }

    #[test]
    fn without_projects_a_default_hybrid_project_answers_sim_key() {
        let cli = Cli::parse_from(["sim", "--realistic-limits"]);
        let c = build_config(&cli.args).unwrap();
        assert_eq!(c.projects.len(), 1);
        assert_eq!(c.projects[0].project_type, ProjectType::Hybrid);
        assert_eq!(c.limits, Limits::realistic());
    }
}
