//! `pipwall warm`: audit ahead of installs what `serve` would audit for the machines it knows,
//! so a gateway's first answers need no download or audit.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::{Exit, PolicyArgs, UpstreamArgs, upstreams};
use crate::dist::ProjectName;
use crate::explain::Explainer;

/// The flags of `pipwall warm`.
#[derive(clap::Args)]
pub struct WarmArgs {
    /// Projects to warm (names; a version or marker after the name is ignored).
    pub projects: Vec<String>,
    /// Also warm the projects a requirements-style file names, one a line (`#` comments and
    /// `-` options skipped).
    #[arg(long = "from", value_name = "FILE")]
    pub from: Vec<PathBuf>,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    /// The cache folder `serve` uses: the reports are kept there.
    #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: PathBuf,
    /// Wheels audited at once.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub jobs: usize,
    // With `--state`, warm a cluster: verdicts go to the replicas' shared state, each audit
    // claimed so no replica repeats it, for the environments any replica saw.
    #[command(flatten)]
    pub db: super::state::StateArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The project a requirement line names: what comes before a version, marker, extra or URL.
fn requirement_name(line: &str) -> Option<&str> {
    let line = line.split('#').next().unwrap_or_default().trim();
    if line.is_empty() || line.starts_with('-') {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(line.len());
    Some(&line[..end]).filter(|n| !n.is_empty())
}

pub async fn run(args: WarmArgs) -> Result<Exit> {
    let WarmArgs {
        projects,
        from,
        upstream,
        cache_dir,
        jobs,
        db,
        policy,
    } = args;
    let policy = policy.load()?;
    let mut names: Vec<ProjectName> = Vec::new();
    let mut add = |raw: &str| -> Result<()> {
        let name = requirement_name(raw).unwrap_or(raw);
        let name =
            ProjectName::new(name).with_context(|| format!("`{name}` is not a project name"))?;
        if !names.contains(&name) {
            names.push(name);
        }
        Ok(())
    };
    for p in &projects {
        add(p)?;
    }
    for file in &from {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for line in text.lines().filter_map(requirement_name) {
            add(line)?;
        }
    }
    if names.is_empty() {
        bail!("name the projects to warm, or give --from FILE");
    }
    let upstreams = Arc::new(upstreams(&upstream)?);
    let mut explainer = Explainer::new(upstreams, Some(&cache_dir), jobs.max(1));
    if let Some(url) = &db.state {
        let shared = crate::state::SharedState::connect(
            url,
            db.state_ca.as_deref(),
            format!("warm-{}", std::process::id()),
            std::time::Duration::from_secs(30),
            Arc::new(crate::metrics::Metrics::new()),
        )
        .await
        .context("cannot warm the cluster without its shared state")?;
        explainer
            .share(shared)
            .await
            .context("cannot read the environments the replicas saw")?;
    }
    let envs = explainer.environments(&policy);
    if envs == 0 {
        bail!(
            "no environment to warm for: declare the machines you serve in the policy's [audit] fleet (or let serve see clients first)"
        );
    }
    let mut status = Exit::Ok;
    for name in &names {
        match explainer.warm(name, &policy).await {
            Ok(w) if w.blocked => outln!("{name}: blocked by the policy, nothing to audit"),
            Ok(w) => {
                outln!(
                    "{name}: {} wheel(s) audited for {envs} environment(s): {} passed, {} failed, {} could not be audited",
                    w.passed + w.failed + w.errors,
                    w.passed,
                    w.failed,
                    w.errors
                );
                if w.errors > 0 {
                    status = Exit::Failure;
                }
            }
            Err(e) => {
                outln!("{name}: {}", crate::error::chain(&e));
                status = Exit::Failure;
            }
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::requirement_name;

    #[test]
    fn requirement_lines_name_their_project() {
        for (line, name) in [
            ("numpy==2.1.0", Some("numpy")),
            (
                "  pandas>=2 ; python_version >= '3.10'  # data",
                Some("pandas"),
            ),
            ("requests[socks]~=2.31", Some("requests")),
            ("zope.interface", Some("zope.interface")),
            ("pkg @ https://example.invalid/pkg.whl", Some("pkg")),
            ("# a comment", None),
            ("--index-url x", None),
            ("-r other.txt", None),
            ("", None),
        ] {
            assert_eq!(requirement_name(line), name, "{line}");
        }
    }
}
