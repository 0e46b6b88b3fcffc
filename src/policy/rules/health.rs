//! `[health]`: the minimums a policy sets on OpenSSF Scorecard results
//! ([`crate::data::scorecard`]), and the findings a project gets against them.

use crate::policy::check::ProjectHit;
use crate::policy::decision::Blocked;
use crate::policy::decision::Code;
use crate::policy::rule::RuleId;
use std::ops::Range;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::data::scorecard::{KNOWN_CHECKS, ScorecardDb, ScorecardError};
use crate::policy::diag::{Diagnostic, Origin, Severity};
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Spot, Val, Walk, closest, error_at, whole_units};

pub(crate) const KEYS: &[&str] = &["data", "min-score", "checks", "missing", "max-age", "stale"];

/// `min-score` when the section gives data and no minimum: the middle of Scorecard's scale.
/// `0` turns the aggregate minimum off.
pub const DEFAULT_MIN_SCORE: f64 = 5.0;

#[derive(Default)]
pub(crate) struct Raw {
    /// `Some(None)`: a later file unset it with `""`.
    data: Option<Option<(PathBuf, Spot, Origin)>>,
    min_score: Option<(f64, Origin)>,
    /// In the order written; a later file's minimum for the same check replaces the earlier.
    checks: Vec<CheckMinimum>,
    missing: Option<(RuleAction, Origin)>,
    /// `Some(None)`: a later file unset it with `""`.
    max_age: Option<Option<(jiff::SignedDuration, Origin)>>,
    stale: Option<(RuleAction, Origin)>,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        kspan: &Range<usize>,
        what: &str,
    ) {
        match key {
            "data" if Walk::is_unset(v) => self.data = Some(None),
            "data" => {
                if let Some(raw) = w.str(v, what) {
                    let spot = w.spot(&v.span());
                    if let Some(path) = w.path(raw, &v.span()) {
                        self.data = Some(Some((path, spot, w.origin(kspan))));
                    }
                }
            }
            "min-score" => {
                if let Some(s) = w.score(v, what) {
                    self.min_score = Some((s, w.origin(kspan)));
                }
            }
            "checks" => {
                let Some(t) = w.table(v, what) else { return };
                for (k, val) in t.iter() {
                    let check: &str = k.get_ref();
                    let Some(min) = w.score(val, &format!("{what}: {check}")) else {
                        continue;
                    };
                    if !KNOWN_CHECKS.contains(&check) {
                        let hint = closest(check, KNOWN_CHECKS)
                            .map(|c| format!(" (did you mean `{c}`?)"))
                            .unwrap_or_default();
                        w.problem(
                            &k.span(),
                            Severity::Warning,
                            "unknown-check",
                            format!("{what}: `{check}` is not a check Scorecard runs{hint}; a result without it counts as missing"),
                        );
                    }
                    self.checks.retain(|c| c.check != check);
                    self.checks.push(CheckMinimum {
                        check: check.to_owned(),
                        min,
                        origin: w.origin(&k.span()),
                    });
                }
            }
            "missing" => {
                if let Some(a) = w.action(v, what) {
                    self.missing = Some((a, w.origin(kspan)));
                }
            }
            "max-age" if Walk::is_unset(v) => self.max_age = Some(None),
            "max-age" => {
                if let Some(d) = w.duration(v, what) {
                    self.max_age = Some(Some((d, w.origin(kspan))));
                }
            }
            "stale" => {
                if let Some(a) = w.action(v, what) {
                    self.stale = Some((a, w.origin(kspan)));
                }
            }
            _ => {}
        }
    }

    /// The minimums with their data, whose switches follow the section's report-only one.
    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>, section: &Rule) -> Option<HealthRules> {
        let mut rules = self.load(diags, section.is_off())?;
        rules.missing.report_only = section.report_only;
        rules.stale.report_only = section.report_only;
        Some(rules)
    }

    /// `[health]` with its data loaded, or `None` without `data`, with the rule off (a file of
    /// up to 256 MiB is not worth reading then), or when the data does not load (an error).
    fn load(self, diags: &mut Vec<Diagnostic>, off: bool) -> Option<HealthRules> {
        let (path, spot, data_origin) = self.data.flatten()?;
        if off {
            return None;
        }
        let db = match ScorecardDb::load(&path) {
            Ok(db) => db,
            Err(ScorecardError::Invalid {
                path,
                problems,
                total,
            }) => {
                let file = path.display().to_string();
                let listed = problems.len();
                for p in problems {
                    diags.push(Diagnostic {
                        file: file.clone(),
                        line: p.line,
                        col: p.col,
                        severity: Severity::Error,
                        code: "health-data",
                        message: p.message,
                    });
                }
                if total > listed {
                    error_at(
                        diags,
                        &spot,
                        "health-data",
                        format!(
                            "[health] data: {} more problem(s) in {file} not listed",
                            total - listed
                        ),
                    );
                }
                return None;
            }
            Err(e) => {
                error_at(
                    diags,
                    &spot,
                    "data-unreadable",
                    format!("[health] data: {e}"),
                );
                return None;
            }
        };
        let rule = |raw: Option<(RuleAction, Origin)>, default| {
            raw.map_or(Rule::new(default), |(action, origin)| Rule {
                action,
                report_only: false,
                origin: Some(origin),
            })
        };
        let (max_age, max_age_origin) = self
            .max_age
            .flatten()
            .filter(|(d, _)| !d.is_zero())
            .map_or((None, None), |(d, o)| (Some(d), Some(o)));
        let checks = self.checks;
        // A minimum no result can meet is most likely a misspelt name; said once, at load.
        // (A name Scorecard does not run was warned about where it was written.)
        let unseen = checks.iter().filter(|c| {
            KNOWN_CHECKS.contains(&c.check.as_str()) && !db.is_empty() && !db.knows_check(&c.check)
        });
        for c in unseen {
            diags.push(Diagnostic {
                file: c.origin.file.to_string(),
                line: c.origin.line as usize,
                col: 1,
                severity: Severity::Warning,
                code: "unknown-check",
                message: format!(
                    "[health] checks: no result in {} has a `{}` check; every project counts as missing it",
                    path.display(),
                    c.check
                ),
            });
        }
        let rules = HealthRules {
            db,
            source: path,
            data_origin,
            min_score: match self.min_score {
                Some((s, o)) => Some((s, Some(o))).filter(|(s, _)| *s > 0.0),
                None => Some((DEFAULT_MIN_SCORE, None)),
            },
            checks,
            missing: rule(self.missing, RuleAction::Allow),
            max_age,
            max_age_origin,
            stale: rule(self.stale, RuleAction::Warn),
        };
        // Old data is worth saying when the policy is checked, not only once it is served.
        if let (Some(max), Some(o)) = (rules.max_age, &rules.max_age_origin)
            && rules.is_stale(jiff::Timestamp::now())
        {
            let newest = rules
                .db
                .newest()
                .map_or("no date".to_owned(), |t| t.strftime("%Y-%m-%d").to_string());
            diags.push(Diagnostic {
                file: o.file.to_string(),
                line: o.line as usize,
                col: 1,
                severity: Severity::Warning,
                code: "health-data-stale",
                message: format!(
                    "the Scorecard data in {} is older than max-age ({}; newest result: {newest})",
                    rules.source.display(),
                    whole_units(max)
                ),
            });
        }
        Some(rules)
    }
}

/// A per-check minimum and the policy line that set it.
#[derive(Clone, Debug)]
pub struct CheckMinimum {
    pub check: String,
    pub min: f64,
    pub origin: Origin,
}

/// `[health]` once its data loaded. Absent from the policy without `data`: the rule then has
/// nothing to judge by.
#[derive(Debug)]
pub struct HealthRules {
    pub db: ScorecardDb,
    pub source: PathBuf,
    /// Where `data` was set: the line a missing-record decision points at when `missing` was
    /// not written.
    pub data_origin: Origin,
    /// Below this aggregate score a project is flagged; `None`: no aggregate minimum.
    pub min_score: Option<(f64, Option<Origin>)>,
    pub checks: Vec<CheckMinimum>,
    /// A project with no result, or no score for a check that has a minimum.
    pub missing: Rule,
    pub max_age: Option<jiff::SignedDuration>,
    pub max_age_origin: Option<Origin>,
    /// Data older than `max-age`.
    pub stale: Rule,
}

/// What `[health]` found about one project; each becomes its own decision code.
#[derive(Clone, Debug, PartialEq)]
pub enum HealthFinding {
    ScoreLow {
        detail: String,
        origin: Option<Origin>,
    },
    ChecksLow {
        detail: String,
        origin: Option<Origin>,
    },
    Missing {
        detail: String,
        origin: Option<Origin>,
    },
    Stale {
        detail: String,
        origin: Option<Origin>,
    },
}

impl HealthRules {
    /// Whether the data is older than `max-age` allows at `now`; data with no date at all is
    /// as old as it can be.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        match (self.max_age, self.db.newest()) {
            (Some(max), Some(t)) => now.duration_since(t) > max,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// When fresh data turns stale, for decisions that must be made again then.
    pub fn stale_from(&self) -> Option<Timestamp> {
        let max = self.max_age?;
        self.db.newest()?.checked_add(max).ok()
    }

    /// Every finding about `project` (normalized), the most specific first: a low score, then
    /// low checks, then a missing score, then stale data.
    pub fn judge(&self, project: &str, now: Timestamp) -> Vec<HealthFinding> {
        let mut out = Vec::new();
        let missing_origin = || {
            self.missing
                .origin
                .clone()
                .or_else(|| Some(self.data_origin.clone()))
        };
        match self.db.get(project) {
            None => out.push(HealthFinding::Missing {
                detail: format!(
                    "no Scorecard result names `{project}` in {}",
                    self.source.display()
                ),
                origin: missing_origin(),
            }),
            Some(card) => {
                let when = card
                    .date
                    .map(|d| format!(" (Scorecard of {})", d.strftime("%Y-%m-%d")))
                    .unwrap_or_default();
                let mut absent: Vec<String> = Vec::new();
                if let Some((min, origin)) = &self.min_score {
                    match card.score {
                        Some(s) if s < *min => out.push(HealthFinding::ScoreLow {
                            detail: format!(
                                "{} scores {s:.1}, the minimum is {min:.1}{when}",
                                card.repo
                            ),
                            // The default minimum was switched on by `data`.
                            origin: origin.clone().or_else(|| Some(self.data_origin.clone())),
                        }),
                        Some(_) => {}
                        None => absent.push("an aggregate score".into()),
                    }
                }
                let mut low: Vec<String> = Vec::new();
                let mut low_origin = None;
                for c in &self.checks {
                    match self.db.check_score(card, &c.check) {
                        Some(s) if s >= 0.0 => {
                            if s < c.min {
                                low.push(format!("{} {s} (minimum {})", c.check, c.min));
                                low_origin.get_or_insert_with(|| c.origin.clone());
                            }
                        }
                        Some(_) => absent.push(format!("{} (the check did not run)", c.check)),
                        None => absent.push(format!("{} (not in the result)", c.check)),
                    }
                }
                if !low.is_empty() {
                    out.push(HealthFinding::ChecksLow {
                        detail: format!("{}: {}{when}", card.repo, low.join(", ")),
                        origin: low_origin,
                    });
                }
                if !absent.is_empty() {
                    out.push(HealthFinding::Missing {
                        detail: format!(
                            "{} has no score for {}{when}",
                            card.repo,
                            absent.join(", ")
                        ),
                        origin: missing_origin(),
                    });
                }
            }
        }
        if self.is_stale(now) {
            let detail = match self.db.newest() {
                Some(t) => format!(
                    "the newest result in {} is from {}",
                    self.source.display(),
                    t.strftime("%Y-%m-%d")
                ),
                None => format!("no result in {} has a date", self.source.display()),
            };
            out.push(HealthFinding::Stale {
                detail,
                origin: self
                    .stale
                    .origin
                    .clone()
                    .or_else(|| self.max_age_origin.clone()),
            });
        }
        out
    }
}

/// The project's Scorecard findings under `section`'s minimums; `recheck_by` is told when the
/// data turns stale, so pages are decided again then.
pub(crate) fn project_hits<'a>(
    section: &'a Rule,
    health: Option<&'a HealthRules>,
    blocked: Blocked,
    name: &str,
    now: Timestamp,
    recheck_by: impl Fn(Timestamp),
) -> Vec<ProjectHit<'a>> {
    let mut out = Vec::new();
    let Some(h) = health else {
        return out;
    };
    if section.is_off() {
        return out;
    }
    if !h.stale.is_off()
        && let Some(t) = h.stale_from()
        && t > now
    {
        recheck_by(t);
    }
    for finding in h.judge(name, now) {
        let (rule, code, detail, origin) = match finding {
            HealthFinding::ScoreLow { detail, origin } => {
                (section, Code::HealthScoreLow, detail, origin)
            }
            HealthFinding::ChecksLow { detail, origin } => {
                (section, Code::HealthCheckLow, detail, origin)
            }
            HealthFinding::Missing { detail, origin } => {
                (&h.missing, Code::HealthScoreMissing, detail, origin)
            }
            HealthFinding::Stale { detail, origin } => {
                (&h.stale, Code::HealthDataStale, detail, origin)
            }
        };
        // An exception must not count as used for a finding that does nothing.
        if rule.is_off() {
            continue;
        }
        out.push(ProjectHit {
            rule,
            id: RuleId::Health,
            code,
            detail,
            origin,
            style: blocked,
        });
    }
    out
}
