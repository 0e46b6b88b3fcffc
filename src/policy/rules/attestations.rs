//! `[attestations]`: which publishers a project's files must be attested by (PEP 740). The
//! audit verifies the attestations and records the identities their certificates prove
//! ([`crate::attest`]); this module says whether one of them is a publisher the policy names.

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};
use globset::GlobMatcher;

use std::ops::Range;

use globset::Glob;
use toml::de::DeValue;

use crate::attest::Identity;
use crate::policy::diag::Diagnostic;
use crate::policy::names::{NameEntry, NameMap};
use crate::policy::walk::{Spot, Val, Walk, names};

/// The OIDC issuer of GitHub Actions' workflow tokens.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The OIDC issuer of GitLab's hosted CI.
pub const GITLAB_ISSUER: &str = "https://gitlab.com";

/// A publisher a policy accepts: an OIDC issuer, and the identity and source repository its
/// certificate must name.
#[derive(Clone, Debug)]
pub struct Publisher {
    pub issuer: String,
    /// The source repository, exactly (ASCII case ignored), when required.
    pub repository: Option<String>,
    pub identity: IdentityMatch,
    /// How the policy wrote it, for messages.
    pub label: String,
}

#[derive(Clone, Debug)]
pub enum IdentityMatch {
    /// The certificate's identity starts with this (a workflow path up to its `@ref`).
    Prefix(String),
    Glob(GlobMatcher),
    Any,
}

impl Publisher {
    /// A GitHub Actions workflow of `repo` (`owner/name`): any workflow of the repository, or
    /// the one file `workflow` (e.g. `release.yml`).
    pub fn github(repo: &str, workflow: Option<&str>) -> Self {
        Self::hosted_ci(
            "github",
            GITHUB_ISSUER,
            "https://github.com",
            "/.github/workflows/",
            repo,
            workflow,
        )
    }

    /// A GitLab CI pipeline of `project` (`group/name`), optionally defined in `workflow`
    /// (the CI file's path, e.g. `.gitlab-ci.yml`).
    pub fn gitlab(project: &str, workflow: Option<&str>) -> Self {
        Self::hosted_ci(
            "gitlab",
            GITLAB_ISSUER,
            "https://gitlab.com",
            "//",
            project,
            workflow,
        )
    }

    /// A hosted CI's workflow identity: the repository's URL, then `workflows` (the path the
    /// CI puts between the repository and the workflow file), then the file and `@ref`.
    fn hosted_ci(
        kind: &str,
        issuer: &str,
        host: &str,
        workflows: &str,
        repo: &str,
        workflow: Option<&str>,
    ) -> Self {
        let base = format!("{host}/{repo}");
        let prefix = match workflow {
            Some(w) => format!("{base}{workflows}{w}@"),
            None => format!("{base}{workflows}"),
        };
        Self {
            issuer: issuer.into(),
            repository: Some(base),
            identity: IdentityMatch::Prefix(prefix),
            label: match workflow {
                Some(w) => format!("{kind} {repo} ({w})"),
                None => format!("{kind} {repo}"),
            },
        }
    }

    pub fn matches(&self, id: &Identity) -> bool {
        id.issuer == self.issuer
            && self.repository.as_deref().is_none_or(|want| {
                id.repository
                    .as_deref()
                    .is_some_and(|got| got.eq_ignore_ascii_case(want))
            })
            && match &self.identity {
                IdentityMatch::Prefix(p) => id
                    .identity
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p)),
                IdentityMatch::Glob(g) => g.is_match(&id.identity),
                IdentityMatch::Any => true,
            }
    }
}

/// An identity as a person reads it: who, by whom vouched.
pub fn describe(id: &Identity) -> String {
    format!("{} (issuer {})", id.identity, id.issuer)
}

pub(crate) const KEYS: &[&str] = &["require"];

#[derive(Default)]
pub(crate) struct Raw {
    publishers: Vec<(NameEntry, Publisher, Spot)>,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        _kspan: &Range<usize>,
        what: &str,
    ) {
        if key == "require" {
            let list = w.publisher_list(v, what);
            self.publishers.extend(list);
        }
    }

    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> NameMap<Publisher> {
        names(diags, self.publishers)
    }
}

impl Walk<'_> {
    /// `[attestations] require`: each item `{ project = "…", github = "owner/repo",
    /// workflow = "release.yml" }`, `{ project, gitlab = "group/project", workflow }`, or
    /// `{ project, issuer = "https://…", identity = "glob", repository = "…" }`.
    pub(crate) fn publisher_list(
        &mut self,
        v: &Val<'_>,
        what: &str,
    ) -> Vec<(NameEntry, Publisher, Spot)> {
        const KEYS: &[&str] = &[
            "project",
            "github",
            "gitlab",
            "workflow",
            "issuer",
            "identity",
            "repository",
            "reason",
        ];
        let mut out = Vec::new();
        for item in self.array(v, what) {
            let DeValue::Table(t) = item.get_ref() else {
                self.error(
                    &item.span(),
                    "wrong-type",
                    format!("an entry of {what} must be a table such as {{ project = \"…\", github = \"owner/repo\" }}"),
                );
                continue;
            };
            let mut project = None;
            let mut text: std::collections::HashMap<&str, String> = Default::default();
            let mut reason = None;
            for (k, val, _) in self.keys(t, what, KEYS) {
                match k {
                    "project" => project = Some(val),
                    "reason" => reason = self.str(val, "reason").map(str::to_owned),
                    _ => {
                        if let Some(s) = self.str(val, &format!("{what} {k}")) {
                            text.insert(k, s.to_owned());
                        }
                    }
                }
            }
            let Some(project) = project else {
                self.error(
                    &item.span(),
                    "missing-key",
                    format!("an entry of {what} needs `project`"),
                );
                continue;
            };
            let Some(publisher) = self.publisher(&text, &item.span(), what) else {
                continue;
            };
            if let Some((pattern, spot)) = self.name_pattern(project, what) {
                let origin = self.origin(&item.span());
                out.push((
                    NameEntry {
                        pattern,
                        reason,
                        origin,
                        regex: false,
                    },
                    publisher,
                    spot,
                ));
            }
        }
        out
    }

    /// The publisher an `[attestations] require` entry names (its string keys in `text`):
    /// `github` or `gitlab` with a repository path, or an `issuer` with `identity` or
    /// `repository`; anything else is reported at `span`.
    fn publisher(
        &mut self,
        text: &std::collections::HashMap<&str, String>,
        span: &Range<usize>,
        what: &str,
    ) -> Option<Publisher> {
        let workflow = text.get("workflow").map(String::as_str);
        let repo_like = |s: &str| {
            let mut parts = s.split('/');
            parts.clone().count() >= 2
                && parts.all(|p| {
                    !p.is_empty()
                        && p != ".."
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                })
        };
        let publisher = match (text.get("github"), text.get("gitlab"), text.get("issuer")) {
            (Some(r), None, None) if repo_like(r) => Publisher::github(r, workflow),
            (None, Some(r), None) if repo_like(r) => Publisher::gitlab(r, workflow),
            (Some(r), None, None) | (None, Some(r), None) => {
                self.error(
                    span,
                    "bad-value",
                    format!("{what}: `{r}` is not a repository path such as `owner/name`"),
                );
                return None;
            }
            (None, None, Some(issuer))
                if text.contains_key("identity") || text.contains_key("repository") =>
            {
                let identity = match text.get("identity") {
                    None => IdentityMatch::Any,
                    Some(g) => match Glob::new(g) {
                        Ok(g) => IdentityMatch::Glob(g.compile_matcher()),
                        Err(e) => {
                            self.error(
                                span,
                                "bad-glob",
                                format!("{what} identity: `{g}` is not a valid glob: {}", e.kind()),
                            );
                            return None;
                        }
                    },
                };
                Publisher {
                    issuer: issuer.clone(),
                    repository: text.get("repository").cloned(),
                    identity,
                    label: format!(
                        "{} from {issuer}",
                        text.get("identity")
                            .or(text.get("repository"))
                            .map_or("", String::as_str)
                    ),
                }
            }
            (None, None, Some(_)) => {
                self.error(
                    span,
                    "missing-key",
                    format!("{what}: an `issuer` alone would accept anyone it vouches for; add `identity` or `repository`"),
                );
                return None;
            }
            _ => {
                self.error(
                    span,
                    "missing-key",
                    format!("{what}: name one publisher: `github`, `gitlab`, or `issuer` with `identity`"),
                );
                return None;
            }
        };
        Some(publisher)
    }
}

/// Attestations are checked by the audit, and only wheels are audited: any other file of a
/// project (`project`) that must be attested cannot be shown.
pub(crate) fn file_hits<'a>(
    rule: &'a Rule,
    publishers: &NameMap<Publisher>,
    project: &str,
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    if rule.is_off() || publishers.is_empty() || crate::policy::is_audited(&f.file.filename) {
        return Vec::new();
    }
    let Some((entry, _)) = publishers.find(project) else {
        return Vec::new();
    };
    vec![(
        Hit {
            origin: Some(entry.origin.clone()),
            ..Hit::of(
                RuleId::Attestations,
                rule,
                Code::AttestationMissing,
                "only wheels are audited, so this file's attestation cannot be checked",
            )
        },
        f.base,
    )]
}

/// What the audit's provenance facts say against the publishers `project` must be attested by:
/// none listed, none verified, or verified for someone else.
pub(crate) fn report_hit<'a>(
    rule: &'a Rule,
    publishers: &NameMap<Publisher>,
    project: &str,
    provenance: Option<&crate::attest::ProvenanceFacts>,
) -> Option<Hit<'a>> {
    if rule.is_off() {
        return None;
    }
    let accepted = publishers.find_all(project);
    let (first, _) = accepted.first()?;
    let (code, detail) = match provenance {
        None => (
            Code::AttestationMissing,
            "the index lists no provenance for the file".to_owned(),
        ),
        Some(f) if f.verified.is_empty() => {
            let mut problems: Vec<String> = f
                .problems
                .iter()
                .take(3)
                .map(|s| crate::sanitize::one_line(s, 300))
                .collect();
            if problems.is_empty() {
                problems.push("no attestation".into());
            }
            (Code::AttestationInvalid, problems.join("; "))
        }
        Some(f) => {
            if f.verified
                .iter()
                .any(|id| accepted.iter().any(|(_, pb)| pb.matches(id)))
            {
                return None;
            }
            let seen: Vec<String> = f
                .verified
                .iter()
                .take(3)
                .map(|id| crate::sanitize::one_line(&describe(id), 300))
                .collect();
            let wanted: Vec<&str> = accepted.iter().map(|(_, pb)| pb.label.as_str()).collect();
            (
                Code::AttestationPublisherMismatch,
                format!(
                    "attested by {}; the policy accepts {}",
                    seen.join(", "),
                    wanted.join(" or ")
                ),
            )
        }
    };
    Some(Hit {
        origin: Some(first.origin.clone()),
        ..Hit::of(RuleId::Attestations, rule, code, detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(issuer: &str, identity: &str, repository: Option<&str>) -> Identity {
        Identity {
            issuer: issuer.into(),
            identity: identity.into(),
            repository: repository.map(Into::into),
        }
    }

    #[test]
    fn github_and_gitlab_publishers_match_their_workflows_only() {
        let release = id(
            GITHUB_ISSUER,
            "https://github.com/Acme/Tool/.github/workflows/release.yml@refs/tags/v1",
            Some("https://github.com/Acme/Tool"),
        );
        assert!(Publisher::github("acme/tool", None).matches(&release));
        assert!(Publisher::github("acme/tool", Some("release.yml")).matches(&release));
        assert!(!Publisher::github("acme/tool", Some("nightly.yml")).matches(&release));
        assert!(!Publisher::github("acme/tool2", None).matches(&release));
        // The same workflow path from another issuer, or a fork's repository, is someone else.
        let forged = Identity {
            issuer: "https://issuer.example".into(),
            ..release.clone()
        };
        assert!(!Publisher::github("acme/tool", None).matches(&forged));
        let fork = Identity {
            repository: Some("https://github.com/mallory/tool".into()),
            ..release.clone()
        };
        assert!(!Publisher::github("acme/tool", None).matches(&fork));
        let gl = id(
            GITLAB_ISSUER,
            "https://gitlab.com/group/proj//.gitlab-ci.yml@refs/heads/main",
            Some("https://gitlab.com/group/proj"),
        );
        assert!(Publisher::gitlab("group/proj", Some(".gitlab-ci.yml")).matches(&gl));
        assert!(!Publisher::gitlab("group/proj", Some("other.yml")).matches(&gl));
        assert!(!Publisher::github("group/proj", None).matches(&gl));
    }
}
