//! `[attestations]`: which publishers a project's files must be attested by (PEP 740). The
//! audit verifies the attestations and records the identities their certificates prove
//! ([`crate::attest`]); this module says whether one of them is a publisher the policy names.

use globset::GlobMatcher;

use crate::attest::Identity;

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
