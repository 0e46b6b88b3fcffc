//! Parsing one OSV record: the schema fields pipwall uses, each bounded and cleaned, and its
//! version ranges turned into intervals.

use std::str::FromStr;

use jiff::Timestamp;
use pep440_rs::Version;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::*;
use crate::dist::ProjectName;
use crate::sanitize::one_line;

/// The parts of the OSV schema pipwall uses. Everything is optional here so that one odd field
/// costs only that field, not the record; `details`, `references` and the rest are not kept.
#[derive(Deserialize)]
pub(super) struct RawRecord {
    pub(super) id: Option<String>,
    pub(super) aliases: Option<Vec<String>>,
    pub(super) summary: Option<String>,
    pub(super) details: Option<String>,
    pub(super) modified: Option<String>,
    pub(super) withdrawn: Option<IgnoredAny>,
    pub(super) affected: Option<Vec<RawAffected>>,
    pub(super) severity: Option<Vec<RawSeverity>>,
    pub(super) database_specific: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct RawAffected {
    pub(super) package: Option<RawPackage>,
    pub(super) ranges: Option<Vec<RawRange>>,
    pub(super) versions: Option<Vec<String>>,
    pub(super) severity: Option<Vec<RawSeverity>>,
    pub(super) database_specific: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct RawPackage {
    pub(super) ecosystem: Option<String>,
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawRange {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) events: Option<Vec<RawEvent>>,
}

#[derive(Deserialize)]
pub(super) struct RawEvent {
    pub(super) introduced: Option<String>,
    pub(super) fixed: Option<String>,
    pub(super) last_affected: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawSeverity {
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) score: Option<String>,
}

/// A record ready to be indexed.
pub(super) struct ParsedRecord {
    pub(super) record: OsvRecord,
    pub(super) withdrawn: bool,
    pub(super) projects: Vec<ParsedProject>,
    /// The record named no PyPI package; kept only to be counted.
    pub(super) not_pypi: bool,
}

/// One record's facts about one project.
#[derive(Default)]
pub(super) struct ParsedProject {
    pub(super) name: String,
    pub(super) spans: Vec<(Lo, Hi)>,
    pub(super) fixes: Vec<Version>,
    pub(super) files: Vec<[u8; 32]>,
}

#[derive(Clone, Debug)]
pub(super) enum Lo {
    /// `introduced: "0"`: before every version, pre-releases of 0 included.
    Min,
    Incl(Version),
}

#[derive(Clone, Debug)]
pub(super) enum Hi {
    Max,
    Excl(Version),
    Incl(Version),
}

pub(super) fn parse_record(
    bytes: &[u8],
    format: Format,
    source: String,
    path_withdrawn: bool,
    notes: &mut Notes,
) -> Option<ParsedRecord> {
    let raw: Result<RawRecord, String> = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Format::Yaml => serde_saphyr::from_slice(bytes).map_err(|e| e.to_string()),
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(e) => {
            let first_line = e.lines().next().unwrap_or_default();
            notes.push(format!(
                "{source}: not an OSV record: {}",
                one_line(first_line, 300)
            ));
            return None;
        }
    };
    let Some(id) = raw.id.as_deref().and_then(clean_id) else {
        notes.push(format!("{source}: record has no usable id"));
        return None;
    };
    let kind = if id.starts_with("MAL-") {
        RecordKind::Malware
    } else {
        RecordKind::Vulnerability
    };
    let aliases = raw
        .aliases
        .unwrap_or_default()
        .iter()
        .filter_map(|a| clean_id(a))
        .take(MAX_ALIASES)
        .collect();
    let summary = raw
        .summary
        .as_deref()
        .map(|s| one_line(s, MAX_SUMMARY_CHARS))
        .filter(|s| !s.is_empty())
        .or_else(|| {
            raw.details
                .as_deref()
                .map(|d| one_line(d, MAX_SUMMARY_CHARS))
        })
        .unwrap_or_default();
    let modified = raw
        .modified
        .as_deref()
        .and_then(|m| Timestamp::from_str(m.trim()).ok());

    let severity = raw
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
        .and_then(CvssSeverity::from_label);
    let cvss = severity_of(raw.severity.as_deref().unwrap_or_default());

    let found = affected_projects(raw.affected.unwrap_or_default(), kind, &id, &source, notes);
    let severity = severity.max(found.severity);
    let cvss = cvss.max(found.cvss);
    let (projects, fix_available, any_pypi) = (found.projects, found.fix_available, found.any_pypi);

    Some(ParsedRecord {
        record: OsvRecord {
            id,
            aliases,
            summary,
            kind,
            severity: severity.or(cvss),
            modified,
            source,
            fix_available,
        },
        withdrawn: path_withdrawn || raw.withdrawn.is_some(),
        projects,
        not_pypi: !any_pypi,
    })
}

/// What a record's `affected` entries say about PyPI projects: each project's affected
/// versions (and, for malware, file digests), whether any range has a fix, and the highest
/// severity they state. Entries of other ecosystems are skipped; bad ones are noted.
pub(super) struct Affected {
    pub(super) projects: Vec<ParsedProject>,
    pub(super) fix_available: bool,
    pub(super) any_pypi: bool,
    pub(super) cvss: Option<CvssSeverity>,
    pub(super) severity: Option<CvssSeverity>,
}

pub(super) fn affected_projects(
    affected: Vec<RawAffected>,
    kind: RecordKind,
    id: &str,
    source: &str,
    notes: &mut Notes,
) -> Affected {
    let mut projects: Vec<ParsedProject> = Vec::new();
    let mut fix_available = false;
    let mut any_pypi = false;
    let mut cvss = None;
    let mut severity = None;
    for affected in affected {
        let Some(package) = &affected.package else {
            continue;
        };
        if !package.ecosystem.as_deref().is_some_and(is_pypi) {
            continue;
        }
        any_pypi = true;
        let Some(raw_name) = package.name.as_deref() else {
            notes.push(format!("{source}: {id}: affected package has no name"));
            continue;
        };
        let name = match ProjectName::new(raw_name.trim()) {
            Ok(name) => name,
            Err(e) => {
                notes.push(format!(
                    "{source}: {id}: package name {:?}: {e}",
                    one_line(raw_name, 100)
                ));
                continue;
            }
        };
        let at = match projects.iter().position(|p| p.name == name.as_str()) {
            Some(at) => at,
            None => {
                projects.push(ParsedProject {
                    name: name.as_str().to_owned(),
                    ..ParsedProject::default()
                });
                projects.len() - 1
            }
        };
        let Some(project) = projects.get_mut(at) else {
            continue;
        };
        for v in affected.versions.iter().flatten() {
            if let Some(v) = parse_version(v) {
                project.spans.push((Lo::Incl(v.clone()), Hi::Incl(v)));
            }
        }
        for range in affected.ranges.iter().flatten() {
            let counts = range.kind.as_deref().is_some_and(|k| {
                k.eq_ignore_ascii_case("ECOSYSTEM") || k.eq_ignore_ascii_case("SEMVER")
            });
            if !counts {
                continue;
            }
            fix_available |= walk_events(
                range.events.as_deref().unwrap_or_default(),
                project,
                |event| notes.push(format!("{source}: {id}: {event}")),
            );
        }
        if let Some(found) = affected.severity.as_deref().and_then(severity_of) {
            cvss = cvss.max(Some(found));
        }
        if let Some(found) = affected
            .database_specific
            .as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(Value::as_str)
            .and_then(CvssSeverity::from_label)
        {
            severity = severity.max(Some(found));
        }
        if kind == RecordKind::Malware {
            collect_file_hashes(affected.database_specific.as_ref(), project, |bad| {
                notes.push(format!("{source}: {id}: {bad}"))
            });
        }
    }
    Affected {
        projects,
        fix_available,
        any_pypi,
        cvss,
        severity,
    }
}

/// `PyPI`, or `PyPI:<suffix>` (the schema allows ecosystem variants after a colon).
pub(super) fn is_pypi(ecosystem: &str) -> bool {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    base.trim().eq_ignore_ascii_case("pypi")
}

pub(super) fn parse_version(raw: &str) -> Option<Version> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_VERSION_CHARS {
        return None;
    }
    Version::from_str(raw).ok()
}

/// Turns one range's events into intervals, the way the schema's evaluation walk reads them:
/// sorted by version (stable, `introduced: "0"` first), an `introduced` opens an interval, a
/// `fixed` closes it before its version and a `last_affected` closes it after its version.
/// Returns whether any `fixed` event was present.
pub(super) fn walk_events(
    events: &[RawEvent],
    project: &mut ParsedProject,
    mut note: impl FnMut(String),
) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Introduced,
        Fixed,
        LastAffected,
    }
    let mut parsed: Vec<(Kind, Option<Version>)> = Vec::with_capacity(events.len());
    let mut any_fixed = false;
    for event in events {
        let fields = [
            (Kind::Introduced, event.introduced.as_deref()),
            (Kind::Fixed, event.fixed.as_deref()),
            (Kind::LastAffected, event.last_affected.as_deref()),
        ];
        for (kind, raw) in fields {
            let Some(raw) = raw else {
                continue;
            };
            if kind == Kind::Fixed {
                any_fixed = true;
            }
            if kind == Kind::Introduced && raw.trim() == "0" {
                parsed.push((kind, None));
                continue;
            }
            match parse_version(raw) {
                Some(v) => parsed.push((kind, Some(v))),
                None => note(format!(
                    "event version {:?} is not a PEP 440 version; event skipped",
                    one_line(raw, 60)
                )),
            }
        }
    }
    // `None` (introduced "0") sorts before every version; the sort is stable, as the schema's
    // reference evaluation is.
    parsed.sort_by(|a, b| a.1.cmp(&b.1));
    let mut open: Option<Lo> = None;
    for (kind, at) in parsed {
        match (kind, at) {
            (Kind::Introduced, at) => {
                if open.is_none() {
                    open = Some(at.map_or(Lo::Min, Lo::Incl));
                }
            }
            (Kind::Fixed, Some(v)) => {
                project.fixes.push(v.clone());
                if let Some(lo) = open.take() {
                    project.spans.push((lo, Hi::Excl(v)));
                }
            }
            (Kind::LastAffected, Some(v)) => {
                if let Some(lo) = open.take() {
                    project.spans.push((lo, Hi::Incl(v)));
                }
            }
            (Kind::Fixed | Kind::LastAffected, None) => {}
        }
    }
    if let Some(lo) = open {
        project.spans.push((lo, Hi::Max));
    }
    any_fixed
}

/// OSSF malware reports list the digests of the offending files under
/// `database_specific.indicators.package_integrity[].hashes.sha256`; a file can be refused by
/// digest even when its version string is reused.
pub(super) fn collect_file_hashes(
    specific: Option<&Value>,
    project: &mut ParsedProject,
    mut note: impl FnMut(String),
) {
    let Some(entries) = specific
        .and_then(|d| d.get("indicators"))
        .and_then(|i| i.get("package_integrity"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for entry in entries {
        let Some(sha) = entry
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        match parse_sha256(sha) {
            Some(digest) => project.files.push(digest),
            None => note(format!(
                "package_integrity sha256 {:?} is not 64 hex digits",
                one_line(sha, 80)
            )),
        }
    }
}

/// The highest severity any CVSS v3 or v4 vector in `entries` scores.
pub(super) fn severity_of(entries: &[RawSeverity]) -> Option<CvssSeverity> {
    entries
        .iter()
        .filter_map(|entry| {
            let kind = entry.kind.as_deref()?;
            let vector = entry.score.as_deref()?.trim();
            if vector.len() > 256 {
                return None;
            }
            if kind.eq_ignore_ascii_case("CVSS_V3") {
                cvss_v3_severity(vector)
            } else if kind.eq_ignore_ascii_case("CVSS_V4") {
                cvss_v4_severity(vector)
            } else {
                None
            }
        })
        .max()
}

/// The `cvss` crate scores a v3 vector with missing base metrics as if they were zero; a vector
/// without all eight is not a score, so it must name each of them.
pub(super) fn cvss_v3_severity(vector: &str) -> Option<CvssSeverity> {
    const BASE: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
    let present = |metric: &str| {
        vector
            .split('/')
            .skip(1)
            .any(|part| part.split(':').next() == Some(metric))
    };
    if !vector.starts_with("CVSS:3.") || !BASE.iter().all(|m| present(m)) {
        return None;
    }
    let parsed = cvss::v3::Vector::from_str(vector).ok()?;
    CvssSeverity::from_score(parsed.score().value())
}

pub(super) fn cvss_v4_severity(vector: &str) -> Option<CvssSeverity> {
    if !vector.starts_with("CVSS:4.") {
        return None;
    }
    let parsed = cvss::v4::Vector::from_str(vector).ok()?;
    CvssSeverity::from_score(parsed.score().value())
}

/// OSV ids and aliases are short ASCII tokens (`PYSEC-2021-839`, `GHSA-…`, `CVE-…`); anything
/// else would end up verbatim in logs and pages, so it is not accepted.
pub(super) fn clean_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ID_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    ok.then(|| raw.to_owned())
}
