//! `pipwall vet`: every file a lock file pins, decided and audited as `serve` would, before a CI
//! job installs. It warms the cache (each shown wheel is downloaded, hash-checked and audited)
//! and says, per locked project, whether the install can succeed.
//!
//! A project passes when at least one of its pinned files is shown: a lock usually pins every
//! file of a version (the sdist and each platform's wheel), and the installer takes whichever
//! of them is listed and fits its platform.

use futures_util::StreamExt;
use serde::Serialize;

use crate::data::lock::{HashAlg, LockSet, LockedProject};
use crate::dist::ProjectName;
use crate::explain::{ExplainedFile, Explainer};
use crate::policy::Policy;

#[derive(Serialize)]
pub struct Vetted {
    pub projects: Vec<VettedProject>,
    /// Projects with no pinned file shown: their install would fail.
    pub failed: usize,
}

#[derive(Serialize)]
pub struct VettedProject {
    pub project: String,
    /// Where the lock pins it (`file:line`).
    pub pinned_at: String,
    pub ok: bool,
    /// The pinned files the index lists, each with pipwall's decision.
    pub files: Vec<ExplainedFile>,
    /// sha256 digests the lock pins that the index does not list.
    pub missing: Vec<String>,
    /// Why the project could not be looked at (upstream error), when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Projects looked at once: each one's wheels are audited by the shared audit jobs anyway.
const PROJECTS_AT_ONCE: usize = 4;

/// Vets every project of `lock`; `tick` is called once per project done (a progress bar).
pub async fn vet(
    explainer: &Explainer,
    lock: &LockSet,
    policy: &Policy,
    tick: impl Fn(&str),
) -> Vetted {
    let jobs: Vec<(String, &LockedProject)> = lock
        .projects()
        .map(|(name, p)| (name.to_owned(), p))
        .collect();
    let mut projects: Vec<VettedProject> = futures_util::stream::iter(jobs)
        .map(|(name, locked)| async move { vet_one(explainer, &name, locked, policy).await })
        .buffer_unordered(PROJECTS_AT_ONCE)
        .inspect(|p| tick(&p.project))
        .collect()
        .await;
    projects.sort_by(|a, b| a.project.cmp(&b.project));
    let failed = projects.iter().filter(|p| !p.ok).count();
    Vetted { projects, failed }
}

async fn vet_one(
    explainer: &Explainer,
    name: &str,
    locked: &LockedProject,
    policy: &Policy,
) -> VettedProject {
    let mut out = VettedProject {
        project: name.to_owned(),
        pinned_at: locked.origin.clone(),
        ok: false,
        files: Vec::new(),
        missing: Vec::new(),
        error: None,
    };
    let project = match ProjectName::new(name) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let pinned_sha256: Vec<&str> = locked
        .hashes
        .iter()
        .filter(|(alg, _)| *alg == HashAlg::Sha256)
        .map(|(_, hex)| hex.as_str())
        .collect();
    // Only what the lock pins is audited, whatever the policy (issue 15).
    let pinned: std::collections::HashSet<&str> = pinned_sha256.iter().copied().collect();
    let explained = match explainer
        .explain_auditing(&project, None, policy, Some(&pinned))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            out.error = Some(crate::error::chain(&e));
            return out;
        }
    };
    // A project blocked whole has one entry for all its files: it decides them all.
    let blocked = explained.files.len() == 1 && explained.files[0].sha256.is_none();
    for f in explained.files {
        let pinned = blocked
            || f.sha256
                .as_deref()
                .is_some_and(|s| pinned_sha256.contains(&s));
        if pinned {
            out.files.push(f);
        }
    }
    out.missing = pinned_sha256
        .iter()
        .filter(|s| !blocked && !out.files.iter().any(|f| f.sha256.as_deref() == Some(**s)))
        .map(|s| (*s).to_owned())
        .collect();
    out.ok = out.files.iter().any(|f| f.action.shows());
    out
}

impl Vetted {
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for p in &self.projects {
            let shown = p.files.iter().filter(|f| f.action.shows()).count();
            let verdict = if p.ok { "ok" } else { "FAILS" };
            let _ = writeln!(
                out,
                "{}: {verdict}: {shown} of {} pinned files shown (pinned at {})",
                p.project,
                p.files.len() + p.missing.len(),
                p.pinned_at
            );
            if let Some(e) = &p.error {
                let _ = writeln!(out, "  error   {}", crate::sanitize::escape(e));
            }
            for f in &p.files {
                let what = if f.action.shows() { "shown " } else { "hidden" };
                let _ = writeln!(
                    out,
                    "  {what}  {}  [{}] {}",
                    crate::sanitize::escape(&f.filename),
                    f.code,
                    crate::sanitize::escape(&f.reason)
                );
            }
            for m in &p.missing {
                let _ = writeln!(
                    out,
                    "  missing sha256:{m}: the index lists no file with this digest"
                );
            }
        }
        let _ = writeln!(
            out,
            "vet: {} projects, {} would fail to install",
            self.projects.len(),
            self.failed
        );
        out
    }
}
