//! `[health]`: the minimums a policy sets on OpenSSF Scorecard results
//! ([`crate::data::scorecard`]), and the findings a project gets against them.

use std::path::PathBuf;

use jiff::Timestamp;

use super::diag::Origin;
use super::rule::Rule;
use crate::data::scorecard::ScorecardDb;

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
