//! `pipwall explain`: every upstream file of a project, shown or hidden, with its reason.

use serde::Serialize;

use crate::dist::ProjectName;
use crate::policy::{Action, Code, FileDecision, decide_page};
use crate::upstream::{PageFetch, UpstreamError, Upstreams};

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
}

/// Decides a project's upstream page exactly as the proxy does. `version`, when given, keeps
/// only that version's files (compared as PEP 440 versions).
pub async fn explain(
    upstreams: &Upstreams,
    project: &ProjectName,
    version: Option<&str>,
) -> Result<Explained, UpstreamError> {
    let PageFetch::Fresh(fetched) = upstreams.project_page(project, None).await? else {
        return Err(UpstreamError::NotFound {
            url: project.to_string(),
        });
    };
    let upstream = upstreams
        .sources()
        .get(fetched.source)
        .map(|s| s.describe())
        .unwrap_or_default();
    let (_, decisions) = decide_page(project, fetched.page);
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
    let mut files: Vec<ExplainedFile> = decisions
        .into_iter()
        .filter(keep)
        .map(|d| ExplainedFile {
            reason: d.decision.sentence(),
            filename: d.filename,
            version: d.version,
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

impl Explained {
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let shown = self
            .files
            .iter()
            .filter(|f| f.action == Action::Show)
            .count();
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
            };
            let _ = writeln!(
                out,
                "  {verdict}  {}  [{}] {}",
                crate::server::sanitize(&f.filename),
                f.code,
                crate::server::sanitize(&f.reason)
            );
        }
        out
    }
}
