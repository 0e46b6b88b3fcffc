//! `[advisories]` and `[malware]`: OSV records read from local files
//! ([`crate::data::osv`]), how old they may get, and what happens when they are older.

use std::ops::Range;
use std::path::PathBuf;

use crate::data::osv::{OsvDb, Severity as CvssSeverity};
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
