//! A page decided: the filename rules every file must pass (a valid name for this project, a
//! sha256), then the policy ([`View::decide_file`]), then, for wheels, their audit
//! ([`apply_audits`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use pep440_rs::Version;

use super::decision::{Action, Code, Decision};
use super::eval::View;
use crate::audit::Report;
use crate::dist::filename::{DistRef, VersionCache, classify};
use crate::dist::{DistFilename, FilenameError, ProjectName};
use crate::index::render::ServedPage;
use crate::index::{FileEntry, ProjectPage};

/// One upstream entry and what was decided about it.
#[derive(Clone, Debug)]
pub struct FileDecision {
    /// The filename as upstream wrote it (or the raw link, for unreadable entries).
    pub filename: String,
    pub sha256: Option<String>,
    /// Shared by all the files of a version.
    pub version: Option<Arc<str>>,
    pub decision: Decision,
}

/// Decides every entry of an upstream page and builds the page pipwall serves.
///
/// A version stays in `versions` only when one of its files is shown, or when upstream lists it
/// with no files at all: a version whose only files are hidden disappears.
pub fn decide_page(
    project: &ProjectName,
    page: ProjectPage,
    view: &View<'_>,
) -> (ServedPage, Vec<FileDecision>) {
    let ProjectPage {
        files,
        invalid,
        versions: listed,
        status,
        namespaces,
    } = page;
    // A verdict on the whole project from the page itself (its PEP 792 status, its PEP 752
    // namespace grants, the age of its newest upload): a hide takes every file and listed
    // version with it; a note goes onto each file nothing else flagged.
    let note = view.judge_page(status.as_ref(), &namespaces, &files);
    let project_hidden = note.as_ref().is_some_and(|n| n.action == Action::Hide);
    let mut decisions = Vec::with_capacity(files.len() + invalid.len());
    for inv in invalid {
        decisions.push(FileDecision {
            filename: inv.label,
            sha256: None,
            version: None,
            decision: Decision::hide(Code::InvalidEntry, inv.reason),
        });
    }
    // Everything per file is borrowed from the page or cached per distinct version: a page
    // lists each version once per file, often a dozen times.
    let mut cache = VersionCache::default();
    // foldhash: seeded per process like std's hasher, and several times faster on short keys.
    let mut seen: HashSet<&str, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(files.len(), foldhash::fast::RandomState::default());
    // Each version with files: its display text, and whether one of its files is shown.
    let mut by_version: HashMap<Version, (Arc<str>, bool), foldhash::fast::RandomState> =
        HashMap::default();
    let limit = view.max_versions();
    // Each file's version, kept only when the version-count limit needs a second pass.
    let mut file_versions: Vec<Option<Version>> = Vec::new();
    let mut show = Vec::with_capacity(files.len());
    // Files a `yank` rule marks, with the reason they are served under; rare, so a short list.
    let mut yanks: Vec<(usize, String)> = Vec::new();
    // `basis = "version"`: each version's first upload, found in a pass of its own (only then).
    let first_upload: HashMap<Version, (Timestamp, &str), foldhash::fast::RandomState> =
        if view.cooldown_by_version() && !project_hidden {
            first_uploads(&files, project, &mut cache)
        } else {
            HashMap::default()
        };
    for file in &files {
        let parsed = classify(&file.filename, project, &mut cache);
        let version = parsed.as_ref().ok().and_then(DistRef::version);
        let decision = if seen.insert(file.filename.as_str()) {
            decide_file(
                view,
                file,
                &parsed,
                version,
                note.as_ref(),
                project_hidden,
                &first_upload,
            )
        } else {
            Decision::hide(Code::DuplicateFilename, "")
        };
        let shows = decision.action.shows();
        if decision.action == Action::Yank {
            yanks.push((show.len(), decision.yank_reason()));
        }
        let text = version.map(|v| {
            let slot = by_version
                .entry(v.clone())
                .or_insert_with(|| (Arc::from(v.to_string()), false));
            slot.1 |= shows;
            slot.0.clone()
        });
        decisions.push(FileDecision {
            filename: file.filename.clone(),
            sha256: file.sha256().map(str::to_owned),
            version: text,
            decision,
        });
        show.push(shows);
        if limit.is_some() {
            file_versions.push(version.cloned());
        }
    }
    if let Some(limit) = limit {
        let first = decisions.len() - show.len();
        limit_versions(
            limit,
            view,
            &file_versions,
            &mut show,
            decisions.get_mut(first..).unwrap_or_default(),
            &mut yanks,
            &mut by_version,
        );
    }
    let mut files = files;
    for (i, reason) in yanks {
        if let Some(f) = files.get_mut(i) {
            mark_yanked(f, reason);
        }
    }
    let shown: Vec<FileEntry> = files
        .into_iter()
        .zip(show)
        .filter_map(|(f, s)| s.then_some(f))
        .collect();
    let shown_versions = versions_shown(by_version, &listed, project_hidden);
    // A quarantine the policy only warns on (or reports) must not reach the client: installers
    // refuse a quarantined project's files, and the policy chose to show them.
    let status = status.filter(|s| project_hidden || s.status != "quarantined");
    // Files keep upstream's order: the output is still a function of the upstream page, and
    // sorting a 5,000-file page cost a tenth of serving it. Clients order candidates themselves.
    let served = ServedPage {
        name: project.to_string(),
        files: shown,
        versions: shown_versions.into_values().collect(),
        status,
    };
    (served, decisions)
}

/// One file's decision once its name parsed (or failed to): the name rules, the whole-project
/// verdict (`note`, hiding every file when `project_hidden`), the policy's rules with the
/// cooldown counting from the version's first upload under `basis = "version"`, and a sha256
/// to check a download against.
fn decide_file(
    view: &View<'_>,
    file: &FileEntry,
    parsed: &Result<DistRef<'_>, FilenameError>,
    version: Option<&Version>,
    note: Option<&Decision>,
    project_hidden: bool,
    first_upload: &HashMap<Version, (Timestamp, &str), foldhash::fast::RandomState>,
) -> Decision {
    match parsed {
        Err(e) => filename_decision(e),
        Ok(_) if project_hidden => note.cloned().unwrap_or_else(Decision::show),
        Ok(parsed) => {
            let first = version.filter(|_| !first_upload.is_empty());
            let uploaded = match first.and_then(|v| first_upload.get(v)) {
                Some((_, first)) => Some(*first),
                None => file.upload_time.as_deref(),
            };
            let d = with_note(view.decide_file_aged(file, parsed, uploaded), note);
            if d.action.shows() && file.sha256().is_none() {
                // A download is checked against the sha256; without one it cannot be.
                Decision::hide(Code::MissingSha256, "")
            } else {
                d
            }
        }
    }
}

/// The versions the served page lists: those with a shown file, and those upstream lists with
/// no file at all (they carry no risk), unless the whole project is hidden.
fn versions_shown(
    by_version: HashMap<Version, (Arc<str>, bool), foldhash::fast::RandomState>,
    listed: &[String],
    project_hidden: bool,
) -> BTreeMap<VersionKey, String> {
    let with_files: BTreeSet<VersionKey> = by_version
        .keys()
        .map(|v| VersionKey::Parsed(v.clone()))
        .collect();
    let mut shown_versions: BTreeMap<VersionKey, String> = by_version
        .into_iter()
        .filter(|(_, (_, s))| *s)
        .map(|(v, (text, _))| (VersionKey::Parsed(v), text.to_string()))
        .collect();
    for v in listed.iter().filter(|_| !project_hidden) {
        let key = VersionKey::of(v);
        if !with_files.contains(&key) {
            shown_versions.entry(key).or_insert_with(|| v.clone());
        }
    }
    shown_versions
}

/// The earliest upload time of each version's files on the page (PEP 700 text, checked on
/// parse, compared as instants: fraction digits vary).
fn first_uploads<'f>(
    files: &'f [FileEntry],
    project: &ProjectName,
    cache: &mut VersionCache<'f>,
) -> HashMap<Version, (Timestamp, &'f str), foldhash::fast::RandomState> {
    let mut out: HashMap<Version, (Timestamp, &'f str), foldhash::fast::RandomState> =
        HashMap::default();
    for file in files {
        let Some(text) = file.upload_time.as_deref() else {
            continue;
        };
        let Ok(at) = text.parse::<Timestamp>() else {
            continue;
        };
        let parsed = classify(&file.filename, project, cache);
        let Some(version) = parsed.as_ref().ok().and_then(DistRef::version) else {
            continue;
        };
        out.entry(version.clone())
            .and_modify(|e| {
                if at < e.0 {
                    *e = (at, text);
                }
            })
            .or_insert((at, text));
    }
    out
}

/// What is known of a shown wheel's audit when a page is answered.
#[derive(Clone, Debug)]
pub enum AuditState {
    Done(Arc<Report>),
    /// Waited for, and not ended in time: hidden, and the answer is not to be kept.
    Pending,
    Error(String),
    /// Not audited yet, listed with its download held (`[audit] listing = "held"`).
    Held,
    /// No environment pipwall knows can install it: not fetched; `listed` under "held".
    NotDemanded {
        listed: bool,
    },
}

/// Whether a shown file is audited: wheels are; an sdist is shown only by a policy exception,
/// and there is nothing in it to audit without running it.
pub fn is_audited(filename: &str) -> bool {
    filename.ends_with(".whl")
}

/// Takes the audits into account: wheels that did not pass (yet) leave the served page, and a
/// version whose every shown file left drops out of `versions`, as sdist-only versions do.
/// Returns the page to serve and every decision of the page, the audited wheels' updated.
pub fn apply_audits(
    served: &ServedPage,
    decisions: &[FileDecision],
    view: &View<'_>,
    state: impl Fn(&str) -> AuditState,
) -> (ServedPage, Vec<FileDecision>) {
    let mut kept = Vec::with_capacity(served.files.len());
    let mut updated: HashMap<&str, Decision> = HashMap::new();
    let mut kept_versions: BTreeSet<VersionKey> = BTreeSet::new();
    let mut hidden_versions: BTreeSet<VersionKey> = BTreeSet::new();
    let project = ProjectName::new(&served.name).ok();
    for file in &served.files {
        let sha = file.sha256().unwrap_or_default();
        let version = project
            .as_ref()
            .and_then(|p| DistFilename::parse(&file.filename, p).ok())
            .and_then(|d| d.version().cloned());
        let decision = if is_audited(&file.filename) {
            match state(sha) {
                AuditState::Done(r) => view.judge_audit(sha, version.as_ref(), &r),
                AuditState::Pending => Decision::hide(Code::AuditPending, ""),
                AuditState::Error(why) => Decision::hide(Code::AuditError, why),
                AuditState::Held => Decision {
                    code: Code::AuditHeld,
                    ..Decision::show()
                },
                AuditState::NotDemanded { listed: true } => Decision {
                    code: Code::AuditNotDemanded,
                    ..Decision::show()
                },
                AuditState::NotDemanded { listed: false } => {
                    Decision::hide(Code::AuditNotDemanded, "")
                }
            }
        } else {
            Decision::show()
        };
        if decision.action.shows() {
            if let Some(v) = version {
                kept_versions.insert(VersionKey::Parsed(v));
            }
            let mut file = file.clone();
            // A file the policy already yanked keeps that reason; the audit's is in the log.
            let by_policy = file
                .yanked
                .as_deref()
                .is_some_and(|y| y.starts_with("pipwall "));
            if decision.action == Action::Yank && !by_policy {
                mark_yanked(&mut file, decision.yank_reason());
            }
            kept.push(file);
        } else if let Some(v) = version {
            hidden_versions.insert(VersionKey::Parsed(v));
        }
        updated.insert(file.filename.as_str(), decision);
    }
    let all = decisions
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if d.decision.action.shows()
                && let Some(audit) = updated.get(d.filename.as_str())
            {
                // A policy warning or exception stays visible unless the audit hides or warns.
                let plain =
                    d.decision.action == super::Action::Show && d.decision.code == Code::WheelShown;
                if !audit.action.shows() || plain || audit.action != super::Action::Show {
                    d.decision = audit.clone();
                }
            }
            d
        })
        .collect();
    let gone: BTreeSet<&VersionKey> = hidden_versions.difference(&kept_versions).collect();
    let versions = served
        .versions
        .iter()
        .filter(|v| !gone.contains(&VersionKey::of(v)))
        .cloned()
        .collect();
    let page = ServedPage {
        name: served.name.clone(),
        files: kept,
        versions,
        status: served.status.clone(),
    };
    (page, all)
}

/// `[versions] max-count`: of the versions that still have a shown file, only the newest
/// `limit` (PEP 440 order) keep them. Counting after the other rules means a hidden newest
/// version does not use up a place.
fn limit_versions(
    limit: usize,
    view: &View<'_>,
    versions: &[Option<Version>],
    show: &mut [bool],
    decisions: &mut [FileDecision],
    yanks: &mut Vec<(usize, String)>,
    by_version: &mut HashMap<Version, (Arc<str>, bool), foldhash::fast::RandomState>,
) {
    let mut shown: Vec<&Version> = by_version
        .iter()
        .filter(|(_, (_, s))| *s)
        .map(|(v, _)| v)
        .collect();
    if shown.len() <= limit {
        return;
    }
    shown.sort_unstable_by(|a, b| b.cmp(a));
    let Some(oldest_kept) = shown.get(limit.saturating_sub(1)).map(|v| (*v).clone()) else {
        return;
    };
    for (i, d) in decisions.iter_mut().enumerate() {
        let Some(Some(version)) = versions.get(i) else {
            continue;
        };
        if !show.get(i).copied().unwrap_or(false) || *version >= oldest_kept {
            continue;
        }
        let Some(new) = view.version_limit(version, d.sha256.as_deref(), limit) else {
            continue;
        };
        let replace = match new.action {
            Action::Hide => true,
            Action::Yank => d.decision.action != Action::Hide,
            _ => d.decision.action == Action::Show,
        };
        if !replace {
            continue;
        }
        if new.action == Action::Yank {
            yanks.retain(|(j, _)| *j != i);
            yanks.push((i, new.yank_reason()));
        }
        if let Some(s) = show.get_mut(i) {
            *s = new.action.shows();
        }
        d.decision = new;
    }
    // A version keeps its place in `versions` only while one of its files is still shown.
    for (_, slot) in by_version.values_mut() {
        *slot = false;
    }
    for (i, v) in versions.iter().enumerate() {
        if let (Some(v), true) = (v, show.get(i).copied().unwrap_or(false))
            && let Some(slot) = by_version.get_mut(v)
        {
            slot.1 = true;
        }
    }
}

/// A file's own decision, with the page's shared note where no rule of the file's own spoke
/// (a shared yank also over a file's warning: it changes what is served).
fn with_note(d: Decision, note: Option<&Decision>) -> Decision {
    match note {
        Some(n) if d.action == Action::Show => n.clone(),
        Some(n)
            if n.action == Action::Yank && matches!(d.action, Action::Warn | Action::WouldHide) =>
        {
            n.clone()
        }
        _ => d,
    }
}

/// Marks a served file yanked with pipwall's reason; a reason upstream gave is kept after it.
fn mark_yanked(file: &mut FileEntry, reason: String) {
    file.yanked = Some(match file.yanked.take() {
        Some(up) if !up.is_empty() => format!("{reason}; upstream: {up}"),
        _ => reason,
    });
}

fn filename_decision(e: &FilenameError) -> Decision {
    let code = match e {
        FilenameError::Unsafe | FilenameError::TooLong | FilenameError::Empty => {
            Code::UnsafeFilename
        }
        FilenameError::UnknownKind => Code::NotADistribution,
        FilenameError::WrongProject { .. } => Code::WrongProject,
        _ => Code::InvalidWheelFilename,
    };
    Decision::hide(code, e.to_string())
}

/// Orders and compares versions by PEP 440 (`1.0` equals `1.0.0`) where they parse; the rest
/// sort after, as text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum VersionKey {
    Parsed(Version),
    Raw(String),
}

impl VersionKey {
    fn of(s: &str) -> Self {
        Version::from_str(s).map_or_else(|_| Self::Raw(s.to_owned()), Self::Parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{CoreMetadata, InvalidEntry};
    use url::Url;

    fn entry(name: &str, sha: bool) -> FileEntry {
        FileEntry {
            filename: name.into(),
            url: crate::index::FileUrl::Resolved(Box::new(
                Url::parse(&format!("https://up/{name}")).unwrap(),
            )),
            hashes: if sha {
                crate::index::Hashes::sha256("ab".repeat(32))
            } else {
                crate::index::Hashes::default()
            },
            requires_python: None,
            yanked: None,
            core_metadata: CoreMetadata::Absent,
            provenance: None,
            size: None,
            upload_time: None,
        }
    }

    fn run(files: Vec<FileEntry>, versions: &[&str]) -> (ServedPage, Vec<FileDecision>) {
        let policy = crate::policy::Policy::builtin();
        let name = ProjectName::new("demo").unwrap();
        let crate::policy::Gate::Open(view) = policy.gate(&name, jiff::Timestamp::now()) else {
            panic!("the default policy blocks no project");
        };
        let page = ProjectPage {
            files,
            versions: versions.iter().map(|s| (*s).to_owned()).collect(),
            invalid: vec![InvalidEntry {
                label: "x".into(),
                reason: "bad".into(),
            }],
            status: None,
            namespaces: Vec::new(),
        };
        decide_page(&name, page, &view)
    }

    fn code_of(d: &[FileDecision], f: &str) -> Code {
        d.iter().find(|x| x.filename == f).unwrap().decision.code
    }

    #[test]
    fn wheels_shown_sdists_hidden_and_sdist_only_versions_dropped() {
        let (served, d) = run(
            vec![
                entry("demo-1.0.tar.gz", true),
                entry("demo-1.0-py3-none-any.whl", true),
                entry("demo-2.0.tar.gz", true),
            ],
            &["1.0", "2.0", "0.9"],
        );
        assert_eq!(served.files.len(), 1);
        assert_eq!(served.versions, vec!["0.9", "1.0"]);
        assert_eq!(code_of(&d, "demo-1.0.tar.gz"), Code::SdistHidden);
        assert_eq!(code_of(&d, "demo-2.0.tar.gz"), Code::SdistHidden);
        assert_eq!(code_of(&d, "demo-1.0-py3-none-any.whl"), Code::WheelShown);
        assert_eq!(code_of(&d, "x"), Code::InvalidEntry);
    }

    #[test]
    fn every_hidden_kind_has_its_code() {
        let (served, d) = run(
            vec![
                entry("demo-1.0-py3-none-any.whl", false),
                entry("other-1.0-py3-none-any.whl", true),
                entry("demo-1.0.egg", true),
                entry("demo-1.0-py3-none.whl", true),
                entry("demo-1.1-py3-none-any.whl", true),
                entry("demo-1.1-py3-none-any.whl", true),
            ],
            &[],
        );
        assert_eq!(
            code_of(&d, "demo-1.0-py3-none-any.whl"),
            Code::MissingSha256
        );
        assert_eq!(
            code_of(&d, "other-1.0-py3-none-any.whl"),
            Code::WrongProject
        );
        assert_eq!(code_of(&d, "demo-1.0.egg"), Code::NotADistribution);
        assert_eq!(
            code_of(&d, "demo-1.0-py3-none.whl"),
            Code::InvalidWheelFilename
        );
        let dup: Vec<_> = d
            .iter()
            .filter(|x| x.filename == "demo-1.1-py3-none-any.whl")
            .collect();
        assert_eq!(dup[1].decision.code, Code::DuplicateFilename);
        assert_eq!(served.files.len(), 1);
        assert_eq!(served.versions, vec!["1.1"]);
    }

    #[test]
    fn versions_compare_normalized() {
        let (served, _) = run(
            vec![entry("demo-1.0.tar.gz", true)],
            &["1.0.0", "1.0a1", "1.0-alpha1"],
        );
        // 1.0.0 == 1.0 has only an sdist; 1.0a1 (listed twice, in two spellings) has no files.
        assert_eq!(served.versions, vec!["1.0a1"]);
    }
}
