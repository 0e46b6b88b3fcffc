//! `pipwall explain`: every upstream file of a project, shown or hidden, with its reason.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{Exit, OutputFormat, PolicyArgs, UpstreamArgs, refuse_without_audits, upstreams};
use crate::dist::ProjectName;

/// The flags of `pipwall explain`.
#[derive(clap::Args)]
pub struct ExplainArgs {
    /// PROJECT or PROJECT==VERSION.
    pub project: String,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Folder for downloaded wheels and audit reports; give `serve`'s to reuse its reports
    /// (default: a temporary folder).
    #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Judge by filenames only, without downloading and auditing the shown wheels.
    #[arg(long)]
    pub no_audit: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

pub async fn run(args: ExplainArgs) -> Result<Exit> {
    let ExplainArgs {
        project,
        upstream,
        format,
        cache_dir,
        no_audit,
        policy,
    } = args;
    let policy = policy.load()?;
    if no_audit {
        refuse_without_audits(&policy)?;
    }
    let (name, version) = match project.split_once("==") {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (project.trim(), None),
    };
    let name = ProjectName::new(name).with_context(|| format!("`{name}` is not a project name"))?;
    let upstreams = Arc::new(upstreams(&upstream)?);
    let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
    let cache = cache_dir.unwrap_or_else(|| temp.path().to_owned());
    let audit_cache = (!no_audit).then_some(cache.as_path());
    let explained = crate::explain::explain(upstreams, &name, version, audit_cache, &policy)
        .await
        .with_context(|| format!("cannot explain {name}"))?;
    let out = match format {
        OutputFormat::Text => explained.to_text(),
        OutputFormat::Json => serde_json::to_string_pretty(&explained)? + "\n",
    };
    out!("{out}");
    Ok(Exit::Ok)
}
