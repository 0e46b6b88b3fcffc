//! `pipwall explain`: every upstream file of a project, shown or hidden, with its reason.

use serde::Serialize;

use std::path::Path;
use std::sync::Arc;

use crate::cache::audits::Audits;
use crate::demand::{Candidate, KnownEnvironments, Listing, Plan};
use crate::dist::ProjectName;
use crate::pipeline::{self, FetchError};
use crate::policy::{Action, AuditState, Code, FileDecision, Gate, Policy, apply_audits};
use crate::upstream::{PageFetch, UpstreamError, Upstreams};

/// What `pipwall warm` did for one project.
#[derive(Debug, Default, Serialize)]
pub struct Warmed {
    /// The policy hides the project whole: nothing to audit.
    pub blocked: bool,
    pub passed: usize,
    pub failed: usize,
    /// Wheels that could not be audited (download failed, bytes not as promised).
    pub errors: usize,
}

#[derive(Serialize)]
pub struct Explained {
    pub project: String,
    pub upstream: String,
    pub files: Vec<ExplainedFile>,
}

#[derive(Serialize)]
pub struct ExplainedFile {
    pub filename: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub action: Action,
    pub code: Code,
    pub reason: String,
    /// The policy file and line that decided, when a policy rule did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Decides a project's upstream page exactly as the proxy does. `version`, when given, keeps
/// only that version's files (compared as PEP 440 versions). With `audit_cache`, every wheel the
/// policy shows is audited as the proxy would (reports already stored there by `serve` are
/// reused), so the reasons include audit findings.
pub async fn explain(
    upstreams: Arc<Upstreams>,
    project: &ProjectName,
    version: Option<&str>,
    audit_cache: Option<&Path>,
    policy: &Policy,
) -> Result<Explained, FetchError> {
    Explainer::new(upstreams, audit_cache, 2)
        .explain(project, version, policy)
        .await
}

/// What explaining needs across many projects (`pipwall vet`): the upstreams, and one audit
/// table and file cache shared by all of them.
pub struct Explainer {
    upstreams: Arc<Upstreams>,
    audits: Option<Arc<Audits>>,
    /// The environments `serve` saw, when it shares the cache folder: what it would audit.
    environments: KnownEnvironments,
}

impl Explainer {
    pub fn new(upstreams: Arc<Upstreams>, audit_cache: Option<&Path>, jobs: usize) -> Self {
        let audits = audit_cache.map(|cache| {
            Audits::new(
                cache,
                upstreams.clone(),
                jobs,
                jobs.saturating_mul(4),
                Arc::new(crate::metrics::Metrics::new()),
                Arc::new(crate::cache::files::FileCache::open_logged(
                    cache.join("files"),
                    u64::MAX,
                )),
            )
        });
        let environments =
            audit_cache.map_or_else(KnownEnvironments::in_memory, KnownEnvironments::open);
        Self {
            upstreams,
            audits,
            environments,
        }
    }

    /// Keeps verdicts in the shared state from now on (`warm --state`), and takes in the
    /// environments the replicas saw.
    pub async fn share(
        &mut self,
        state: Arc<crate::state::SharedState>,
    ) -> Result<(), crate::state::StateError> {
        let seen = state
            .environments(
                crate::demand::FORGET_AFTER.unsigned_abs(),
                crate::demand::MAX_KNOWN,
            )
            .await?;
        self.environments.merge(&seen);
        if let Some(audits) = &self.audits {
            audits.share(state);
        }
        Ok(())
    }

    /// `pipwall warm`: audits, for `project`, what `serve` would queue in the background
    /// for the environments it knows (the policy's `[audit] fleet` and those seen): the
    /// newest final version each can install (every version under `listing = "audited"`).
    /// Reports land in the cache folder `serve` reads, so its first answers need no audit.
    pub async fn warm(&self, project: &ProjectName, policy: &Policy) -> Result<Warmed, FetchError> {
        let mut warmed = Warmed::default();
        let Some(audits) = &self.audits else {
            return Ok(warmed);
        };
        let Gate::Open(mut view) = pipeline::gate(policy, project, jiff::Timestamp::now()) else {
            warmed.blocked = true;
            return Ok(warmed);
        };
        let PageFetch::Fresh(fetched) =
            pipeline::fetch_page(&self.upstreams, policy, project, None).await?
        else {
            return Err(UpstreamError::NotFound {
                url: project.to_string(),
            }
            .into());
        };
        let decided = pipeline::decide(
            &self.upstreams,
            &mut view,
            project,
            fetched.source,
            fetched.page,
        );
        let candidates = pipeline::candidates(&decided.served);
        let seen = self.environments.all();
        let plan = Plan::new(&candidates, None, &policy.audit_demand, &seen);
        let states = pipeline::audit(
            audits,
            plan.background.iter().filter_map(|&(i, _)| {
                let c = candidates.get(i)?;
                Some((c.sha256.as_str(), &c.file))
            }),
            None,
        )
        .await;
        for state in states.values() {
            match state {
                AuditState::Done(r) if r.verdict == crate::audit::Verdict::Pass => {
                    warmed.passed += 1;
                }
                AuditState::Done(_) => warmed.failed += 1,
                _ => warmed.errors += 1,
            }
        }
        Ok(warmed)
    }

    /// The environments audits are planned for: the fleet, then those seen.
    pub fn environments(&self, policy: &Policy) -> usize {
        policy.audit_demand.fleet.len() + self.environments.len()
    }

    /// What `explain PROJECT` audits with no version named: what a page answer would wait
    /// for if the client did not say what it is ([`crate::demand`]): the newest version the
    /// declared fleet or the environments seen can install (a version whose wheels all fail
    /// gives way to the next), or, with none of those, the newest version's wheels.
    async fn planned(
        &self,
        audits: &Arc<Audits>,
        candidates: &[Candidate],
        plan: &Plan,
        policy: &Policy,
        view: &crate::policy::View<'_>,
    ) -> Vec<usize> {
        let mut picked = Vec::new();
        for group in &plan.waited {
            picked.extend(group.iter().copied());
            if policy.audit_demand.listing == Listing::Audited {
                continue;
            }
            let states = pipeline::audit(
                audits,
                group.iter().filter_map(|&i| {
                    let c = candidates.get(i)?;
                    Some((c.sha256.as_str(), &c.file))
                }),
                None,
            )
            .await;
            let passed = group.iter().any(|&i| {
                candidates.get(i).is_some_and(|c| {
                    c.settles
                        && matches!(states.get(&c.sha256), Some(AuditState::Done(r))
                            if view.judge_audit(&c.sha256, c.wheel.as_ref().map(|w| &w.version), r).action.shows())
                })
            });
            if passed {
                break;
            }
        }
        picked
    }

    /// See [`explain`].
    pub async fn explain(
        &self,
        project: &ProjectName,
        version: Option<&str>,
        policy: &Policy,
    ) -> Result<Explained, FetchError> {
        self.explain_auditing(project, version, policy, None).await
    }

    /// [`Self::explain`], auditing only the wheels whose sha256 is in `audit_only` when it is
    /// given (`vet` audits what a lock pins, not every wheel of every version: a 14-pin lock
    /// fetched 5.8 GB before). The others keep their filename and policy decisions.
    pub async fn explain_auditing(
        &self,
        project: &ProjectName,
        version: Option<&str>,
        policy: &Policy,
        audit_only: Option<&std::collections::HashSet<&str>>,
    ) -> Result<Explained, FetchError> {
        let upstreams = &self.upstreams;
        let now = jiff::Timestamp::now();
        let mut view = match pipeline::gate(policy, project, now) {
            Gate::Open(view) => view,
            Gate::Blocked { decision, .. } => {
                return Ok(Explained {
                    project: project.to_string(),
                    upstream: "(not asked: the policy blocks the project)".into(),
                    files: vec![ExplainedFile {
                        filename: format!("{project} (every file)"),
                        version: None,
                        sha256: None,
                        action: decision.action,
                        code: decision.code,
                        reason: decision.sentence(),
                        policy: decision.origin.as_ref().map(ToString::to_string),
                    }],
                });
            }
        };
        let PageFetch::Fresh(fetched) =
            pipeline::fetch_page(upstreams, policy, project, None).await?
        else {
            return Err(UpstreamError::NotFound {
                url: project.to_string(),
            }
            .into());
        };
        let fetched = *fetched;
        let pipeline::Decided {
            served,
            mut decisions,
            upstream,
            ..
        } = pipeline::decide(upstreams, &mut view, project, fetched.source, fetched.page);
        let wanted = version.map(|v| v.parse::<pep440_rs::Version>().map_err(|_| v.to_owned()));
        let keep = |d: &FileDecision| match &wanted {
            None => true,
            Some(Ok(w)) => d
                .version
                .as_deref()
                .and_then(|v| v.parse::<pep440_rs::Version>().ok())
                .is_some_and(|v| &v == w),
            Some(Err(raw)) => d.version.as_deref() == Some(raw.as_str()),
        };
        if let Some(audits) = &self.audits {
            let candidates = pipeline::candidates(&served);
            let seen = self.environments.all();
            let plan = Plan::new(&candidates, None, &policy.audit_demand, &seen);
            let picked: Vec<usize> = match (audit_only, &wanted) {
                (Some(only), _) => (0..candidates.len())
                    .filter(|&i| only.contains(candidates[i].sha256.as_str()))
                    .collect(),
                (None, Some(Ok(v))) => (0..candidates.len())
                    .filter(|&i| {
                        candidates[i]
                            .wheel
                            .as_ref()
                            .is_some_and(|w| &w.version == v)
                    })
                    .collect(),
                (None, Some(Err(_))) => Vec::new(),
                (None, None) => {
                    self.planned(audits, &candidates, &plan, policy, &view)
                        .await
                }
            };
            let _ = pipeline::audit(
                audits,
                picked.iter().filter_map(|&i| {
                    let c = candidates.get(i)?;
                    Some((c.sha256.as_str(), &c.file))
                }),
                None,
            )
            .await;
            let states = pipeline::known_states(
                audits,
                &candidates,
                &plan,
                policy.audit_demand.listing,
                false,
            );
            let (_, all) = apply_audits(&served, &decisions, &view, |sha| {
                states.get(sha).cloned().unwrap_or(AuditState::Pending)
            });
            decisions = all;
        }
        let mut files: Vec<ExplainedFile> = decisions
            .into_iter()
            .filter(keep)
            .map(|d| ExplainedFile {
                reason: d.decision.sentence(),
                policy: d.decision.origin.as_ref().map(ToString::to_string),
                filename: d.filename,
                version: d.version.map(|v| v.to_string()),
                sha256: d.sha256,
                action: d.decision.action,
                code: d.decision.code,
            })
            .collect();
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        Ok(Explained {
            project: project.to_string(),
            upstream,
            files,
        })
    }
}

impl Explained {
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let shown = self.files.iter().filter(|f| f.action.shows()).count();
        let mut out = format!(
            "{}: {} of {} files shown (upstream {})\n",
            self.project,
            shown,
            self.files.len(),
            self.upstream
        );
        for f in &self.files {
            let verdict = match f.action {
                Action::Show => "shown ",
                Action::Hide => "hidden",
                Action::Warn => "warn  ",
                Action::WouldHide => "would hide",
                Action::Yank => "yanked",
            };
            let _ = writeln!(
                out,
                "  {verdict}  {}  [{}] {}",
                crate::sanitize::escape(&f.filename),
                f.code,
                crate::sanitize::escape(&f.reason)
            );
        }
        // The next step for a person who disagrees: a reviewed exception, not a switch.
        if let Some(f) = self
            .files
            .iter()
            .find(|f| !f.action.shows() && f.code.rule().is_some())
        {
            // A row without a digest is the project hidden whole, decided by its name before
            // any file was seen: an exception scoped to a file's sha256 would never lift it.
            let (scope, sha) = match &f.sha256 {
                Some(sha) => ("one file", format!(" --sha256 {sha}")),
                None => ("this project", String::new()),
            };
            let _ = writeln!(
                out,
                "To lift a rule for {scope}, add an exception with a reason, e.g.:\n  pipwall policy waive {} --code {}{sha} --reason \"…\" --expires YYYY-MM-DD --to POLICY.toml",
                self.project, f.code,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(filename: &str, sha256: Option<&str>, code: Code) -> ExplainedFile {
        ExplainedFile {
            filename: filename.into(),
            version: None,
            sha256: sha256.map(Into::into),
            action: Action::Hide,
            code,
            reason: code.description().into(),
            policy: None,
        }
    }

    #[test]
    fn the_waive_hint_scopes_to_the_file_or_to_a_project_hidden_whole() {
        let sha = "ab".repeat(32);
        let file = Explained {
            project: "demo".into(),
            upstream: "up".into(),
            files: vec![hidden(
                "demo-1.1-py3-none-any.whl",
                Some(&sha),
                Code::CooldownTooNew,
            )],
        };
        assert!(
            file.to_text().contains(&format!(
                "To lift a rule for one file, add an exception with a reason, e.g.:\n  pipwall policy waive demo --code cooldown-too-new --sha256 {sha} --reason"
            )),
            "{}",
            file.to_text()
        );
        let whole = Explained {
            project: "demo".into(),
            upstream: "(not asked: the policy blocks the project)".into(),
            files: vec![hidden("demo (every file)", None, Code::HealthScoreLow)],
        };
        assert!(
            whole.to_text().contains(
                "To lift a rule for this project, add an exception with a reason, e.g.:\n  pipwall policy waive demo --code health-score-low --reason"
            ),
            "{}",
            whole.to_text()
        );
    }
}
