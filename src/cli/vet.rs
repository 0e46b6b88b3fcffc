//! `pipwall vet`: decide and audit what a lock file pins, as `serve` would.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{
    Exit, OutputFormat, PolicyArgs, UpstreamArgs, default_cache_dir, refuse_without_audits,
    upstreams,
};

/// The flags of `pipwall vet`.
#[derive(clap::Args)]
pub struct VetArgs {
    /// A requirements.txt with --hash lines, a PEP 751 pylock.toml, or a uv.lock. Repeatable.
    #[arg(
        short = 'r',
        long = "requirement",
        required = true,
        value_name = "FILE"
    )]
    pub locks: Vec<PathBuf>,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Folder for downloaded wheels and audit reports; give `serve`'s so it starts warm
    /// (default: the user cache folder, as `serve`).
    #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Judge by filenames and policy only, without downloading and auditing wheels.
    #[arg(long)]
    pub no_audit: bool,
    /// Wheel audits running at once (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub async fn run(args: VetArgs) -> Result<Exit> {
    let VetArgs {
        locks,
        upstream,
        format,
        cache_dir,
        no_audit,
        jobs,
        policy,
    } = args;
    let policy = policy.load()?;
    if no_audit {
        refuse_without_audits(&policy)?;
    }
    let lock = crate::data::lock::LockSet::load(&locks).context("cannot read the lock file")?;
    for w in lock.warnings() {
        eprintln!("pipwall: {w}");
    }
    let upstreams = Arc::new(upstreams(&upstream)?);
    let cache = cache_dir.unwrap_or_else(default_cache_dir);
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get));
    let explainer =
        crate::explain::Explainer::new(upstreams, (!no_audit).then_some(cache.as_path()), jobs);
    let progress = indicatif::ProgressBar::with_draw_target(
        Some(lock.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} projects {elapsed} {msg}")
    {
        progress.set_style(style);
    }
    let vetted = crate::vet::vet(&explainer, &lock, &policy, |name| {
        progress.set_message(name.to_owned());
        progress.inc(1);
    })
    .await;
    progress.finish_and_clear();
    let out = match format {
        OutputFormat::Text => vetted.to_text(),
        OutputFormat::Json => serde_json::to_string_pretty(&vetted)? + "\n",
    };
    out!("{out}");
    Ok(if vetted.failed == 0 {
        Exit::Ok
    } else {
        Exit::Findings
    })
}
