//! `[advisories]` and `[malware]`: OSV records read from local files
//! ([`crate::data::osv`]), how old they may get, and what happens when they are older.

use crate::data::osv::RecordKind;
use crate::policy::check::ProjectHit;
use crate::policy::check::{FileFacts, FileHits, Hit, Scope};
use crate::policy::decision::Blocked;
use crate::policy::decision::Code;
use std::ops::Range;
use std::path::PathBuf;

use crate::data::osv::{CvssSeverity, OsvDb};
use crate::policy::diag::{Diagnostic, Origin, Severity};
use crate::policy::rule::{Rule, RuleAction, RuleId};
use crate::policy::walk::{Spot, Val, Walk, newest_mtime};

pub(crate) const ADVISORY_KEYS: &[&str] = &["sources", "max-age", "stale", "min-severity"];
pub(crate) const MALWARE_KEYS: &[&str] = &["sources", "max-age", "stale"];

/// Advisory or malware data and what to do when it is old.
#[derive(Debug)]
pub struct Feed {
    pub db: OsvDb,
    pub sources: Vec<PathBuf>,
    /// The newest record's `modified`, else the newest source file's modification time.
    pub as_of: Option<jiff::Timestamp>,
    pub max_age: Option<jiff::SignedDuration>,
    pub stale: Rule,
    pub min_severity: Option<CvssSeverity>,
}

impl Feed {
    /// Whether the data is older than allowed at `now`.
    pub fn is_stale(&self, now: jiff::Timestamp) -> bool {
        match (self.max_age, self.as_of) {
            (Some(max), Some(t)) => now.duration_since(t) > max,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// One of the two sections as written, across files.
pub(crate) struct Raw {
    id: RuleId,
    sources: Vec<(PathBuf, Spot)>,
    max_age: Option<jiff::SignedDuration>,
    stale: Option<(RuleAction, Origin)>,
    min_severity: Option<CvssSeverity>,
}

impl Raw {
    pub(crate) fn new(id: RuleId) -> Self {
        Self {
            id,
            sources: Vec::new(),
            max_age: None,
            stale: None,
            min_severity: None,
        }
    }

    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        kspan: &Range<usize>,
        what: &str,
    ) {
        match key {
            "sources" => {
                for (s, span) in w.string_list(v, what) {
                    let spot = w.spot(&span);
                    if let Some(path) = w.path(&s, &span) {
                        self.sources.push((path, spot));
                    }
                }
            }
            "max-age" if Walk::is_unset(v) => {}
            "max-age" => {
                if let Some(d) = w.duration(v, what) {
                    self.max_age = Some(d);
                }
            }
            "stale" => {
                if let Some(a) = w.action(v, what) {
                    self.stale = Some((a, w.origin(kspan)));
                }
            }
            "min-severity" => {
                let sev = match w.str(v, what) {
                    Some("low") => Some(CvssSeverity::Low),
                    Some("medium") => Some(CvssSeverity::Medium),
                    Some("high") => Some(CvssSeverity::High),
                    Some("critical") => Some(CvssSeverity::Critical),
                    Some(other) => {
                        w.error(
                            &v.span(),
                            "bad-value",
                            format!(
                                "{what} must be \"low\", \"medium\", \"high\" or \"critical\", not \"{other}\""
                            ),
                        );
                        None
                    }
                    None => None,
                };
                if sev.is_some() {
                    self.min_severity = sev;
                }
            }
            _ => {}
        }
    }

    /// The data loaded, or `None` without sources or when they do not load (an error).
    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> Option<Feed> {
        self.load(diags)
    }

    fn load(&self, diags: &mut Vec<Diagnostic>) -> Option<Feed> {
        let (_, spot) = self.sources.first()?;
        let paths: Vec<PathBuf> = self.sources.iter().map(|(p, _)| p.clone()).collect();
        let (db, report) = match OsvDb::load(&paths) {
            Ok(x) => x,
            Err(e) => {
                diags.push(Diagnostic {
                    file: spot.file.clone(),
                    line: spot.line,
                    col: spot.col,
                    severity: Severity::Error,
                    code: "data-unreadable",
                    message: format!("[{}] sources: {e}", self.id.as_str()),
                });
                return None;
            }
        };
        let as_of = report.newest.or_else(|| newest_mtime(&paths));
        let (stale_action, stale_origin) = self
            .stale
            .clone()
            .map_or((RuleAction::Hide, None), |(a, o)| (a, Some(o)));
        Some(Feed {
            db,
            sources: paths,
            as_of,
            max_age: self.max_age,
            stale: Rule {
                action: stale_action,
                report_only: false,
                origin: stale_origin,
            },
            min_severity: self.min_severity,
        })
    }
}

impl Feed {
    /// How old the data is, for a stale-data decision.
    pub(crate) fn stale_detail(&self) -> String {
        match self.as_of {
            Some(t) => format!("newest record from {t}"),
            None => "the data has no date".into(),
        }
    }
}

/// The hit of data older than its `max-age` (first of a feed's hits), when it is.
fn stale_hit<'a>(id: RuleId, feed: &'a Feed, stale: bool, f: &FileFacts<'a>) -> FileHits<'a> {
    if !stale {
        return Vec::new();
    }
    vec![(
        Hit::of(
            id,
            &feed.stale,
            Code::AdvisoryDataStale,
            feed.stale_detail(),
        ),
        f.base,
    )]
}

/// Malware reports naming the file by its digest, then those on its version (of `project`);
/// stale data first.
pub(crate) fn malware_file_hits<'a>(
    rule: &'a Rule,
    feed: Option<&'a Feed>,
    stale: bool,
    project: &str,
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    let Some(feed) = feed.filter(|_| !rule.is_off()) else {
        return Vec::new();
    };
    let mut out = stale_hit(RuleId::Malware, feed, stale, f);
    let by_file = f
        .base
        .sha256
        .and_then(|sha| feed.db.malicious_file(project, sha))
        .map(|rec| (rec, format!("{} names this file: {}", rec.id, rec.summary)));
    let by_version = f.version.into_iter().flat_map(|ver| {
        feed.db
            .affecting(project, ver)
            .filter(|rec| rec.kind == RecordKind::Malware)
            .map(|rec| (rec, format!("{}: {}", rec.id, rec.summary)))
    });
    for (rec, detail) in by_file.into_iter().chain(by_version) {
        out.push((
            Hit::of(RuleId::Malware, rule, Code::Malicious, detail),
            Scope {
                ids: Some((&rec.id, &rec.aliases)),
                ..f.base
            },
        ));
    }
    out
}

/// Advisories on the file's version (of `project`) at or above `min-severity`; stale data
/// first.
pub(crate) fn advisory_file_hits<'a>(
    rule: &'a Rule,
    feed: Option<&'a Feed>,
    stale: bool,
    project: &str,
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    let Some(feed) = feed.filter(|_| !rule.is_off()) else {
        return Vec::new();
    };
    let mut out = stale_hit(RuleId::Advisories, feed, stale, f);
    let Some(ver) = f.version else {
        return out;
    };
    for hit in feed.db.hits(project, ver) {
        let rec = hit.record;
        if rec.kind != RecordKind::Vulnerability
            || feed
                .min_severity
                .is_some_and(|min| rec.severity.is_some_and(|s| s < min))
        {
            continue;
        }
        let fixed = hit
            .fixed_in
            .map(|f| format!("; fixed in {f}"))
            .unwrap_or_default();
        let sev = rec
            .severity
            .map(|s| format!(" ({} severity)", s.as_str()))
            .unwrap_or_default();
        out.push((
            Hit::of(
                RuleId::Advisories,
                rule,
                Code::Vulnerable,
                format!("{}{sev}: {}{fixed}", rec.id, rec.summary),
            ),
            Scope {
                ids: Some((&rec.id, &rec.aliases)),
                fixed: rec.fix_available,
                ..f.base
            },
        ));
    }
    out
}

/// A malware report on every version of the project.
pub(crate) fn malware_project_hits<'a>(
    rule: &'a Rule,
    feed: Option<&Feed>,
    name: &str,
) -> Vec<ProjectHit<'a>> {
    let Some(feed) = feed else {
        return Vec::new();
    };
    if rule.is_off() {
        return Vec::new();
    }
    let Some(rec) = feed.db.malicious_project(name) else {
        return Vec::new();
    };
    vec![ProjectHit {
        rule,
        id: RuleId::Malware,
        code: Code::Malicious,
        detail: format!("{}: every version ({})", rec.id, rec.summary),
        origin: rule.origin.clone(),
        style: Blocked::Quarantine,
    }]
}
