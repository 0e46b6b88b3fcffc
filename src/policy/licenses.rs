//! `[licenses]`: a wheel's license, read from the three generations of core metadata the audit
//! kept ([`LicenseFacts`]), judged against SPDX allow and deny lists.
//!
//! The expression is evaluated, not searched for names: `MIT OR GPL-3.0-only` passes a deny of
//! `GPL-3.0-only` (the MIT choice is open), `MIT AND GPL-3.0-only` does not.
//!
//! Metadata is written by each project and is sometimes wrong or silent; `clarify` lets a
//! policy state the license that holds instead, for a project and optionally some versions.

use pep440_rs::{Version, VersionSpecifiers};
use spdx::{Expression, LicenseReq, ParseMode};

use super::diag::Origin;
use super::names::{NameEntry, NameMap};
use super::rule::Rule;
use crate::audit::LicenseFacts;

/// Trove license classifiers (after `License :: `) whose license is one SPDX id. Classifiers
/// that name a family (`BSD License`, `Academic Free License (AFL)`, `Public Domain`) are left
/// out on purpose: a wheel that says only that has an unknown license.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("OSI Approved :: MIT License", "MIT"),
    (
        "OSI Approved :: MIT No Attribution License (MIT-0)",
        "MIT-0",
    ),
    // The classifier carries no version; every current release of the license is 2.0.
    ("OSI Approved :: Apache Software License", "Apache-2.0"),
    ("OSI Approved :: ISC License (ISCL)", "ISC"),
    (
        "OSI Approved :: Python Software Foundation License",
        "PSF-2.0",
    ),
    (
        "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "MPL-2.0",
    ),
    (
        "OSI Approved :: GNU General Public License v2 (GPLv2)",
        "GPL-2.0-only",
    ),
    (
        "OSI Approved :: GNU General Public License v2 or later (GPLv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "OSI Approved :: GNU General Public License v3 (GPLv3)",
        "GPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU General Public License v3 or later (GPLv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)",
        "LGPL-2.0-only",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v2 or later (LGPLv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
        "LGPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "OSI Approved :: GNU Affero General Public License v3",
        "AGPL-3.0-only",
    ),
    (
        "OSI Approved :: GNU Affero General Public License v3 or later (AGPLv3+)",
        "AGPL-3.0-or-later",
    ),
    (
        "OSI Approved :: Boost Software License 1.0 (BSL-1.0)",
        "BSL-1.0",
    ),
    (
        "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)",
        "EPL-2.0",
    ),
    (
        "OSI Approved :: European Union Public Licence 1.2 (EUPL 1.2)",
        "EUPL-1.2",
    ),
    ("OSI Approved :: The Unlicense (Unlicense)", "Unlicense"),
    (
        "OSI Approved :: Universal Permissive License (UPL)",
        "UPL-1.0",
    ),
    ("OSI Approved :: zlib/libpng License", "Zlib"),
    (
        "OSI Approved :: Historical Permission Notice and Disclaimer (HPND)",
        "HPND",
    ),
    (
        "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication",
        "CC0-1.0",
    ),
];

/// The SPDX id a license classifier names, if it names exactly one.
pub fn classifier_license(classifier: &str) -> Option<&'static str> {
    CLASSIFIERS
        .iter()
        .find(|(c, _)| *c == classifier)
        .map(|(_, id)| *id)
}

/// The `[licenses]` lists, as SPDX ids checked at load time.
#[derive(Debug)]
pub struct LicenseRules {
    pub allow: Vec<&'static str>,
    pub allow_origin: Option<Origin>,
    pub deny: Vec<&'static str>,
    pub deny_origin: Option<Origin>,
    /// What a wheel whose license cannot be read gets.
    pub unknown: Rule,
    /// `clarify`: per project name or glob, the license its wheels are judged by instead of
    /// their metadata's; the entry's reason and line are kept for the decision.
    pub clarify: NameMap<Clarification>,
}

/// A `[licenses] clarify` entry's payload: the versions it covers and the license that holds.
#[derive(Debug)]
pub struct Clarification {
    /// `None`: every version.
    pub versions: Option<VersionSpecifiers>,
    pub expression: Expression,
}

impl LicenseRules {
    pub fn is_active(&self) -> bool {
        !self.allow.is_empty() || !self.deny.is_empty()
    }

    /// The clarification that covers `project` (normalized) at `version`: the last one written
    /// that matches, so a later policy file can correct a clarification an earlier one ships.
    /// An entry scoped to versions never covers a file whose version is not known.
    pub fn clarification(
        &self,
        project: &str,
        version: Option<&Version>,
    ) -> Option<&(NameEntry, Clarification)> {
        self.clarify
            .find_all(project)
            .into_iter()
            .rev()
            .find(|(_, c)| match (&c.versions, version) {
                (None, _) => true,
                (Some(spec), Some(v)) => spec.contains(v),
                (Some(_), None) => false,
            })
    }

    /// Judges one wheel's license facts, or, when a clarification covers the wheel, the
    /// clarified expression in their place. The verdict's text names the clarification's line
    /// and what the metadata said, since that is what someone reading the decision will check.
    pub fn judge(
        &self,
        facts: &LicenseFacts,
        clarified: Option<&(NameEntry, Clarification)>,
    ) -> LicenseVerdict {
        let read_expr;
        let (expr, from) = match clarified {
            Some((entry, c)) => {
                let said = match read(facts) {
                    Ok((x, field)) => format!("the metadata's {field} says `{x}`"),
                    Err(_) if facts.is_empty() => "the metadata names none".to_owned(),
                    Err(_) => "no SPDX license can be read from the metadata".to_owned(),
                };
                let why = entry
                    .reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(": {r}"));
                (
                    &c.expression,
                    format!("clarified at {}{why}; {said}", entry.origin),
                )
            }
            None => match read(facts) {
                Ok((x, field)) => {
                    read_expr = x;
                    (&read_expr, format!("from {field}"))
                }
                Err(why) => return LicenseVerdict::Unknown(why),
            },
        };
        let denied = |r: &LicenseReq| {
            r.license
                .id()
                .is_some_and(|id| self.deny.contains(&id.name))
        };
        if !self.deny.is_empty() && !expr.evaluate(|r| !denied(r)) {
            return LicenseVerdict::Denied(format!(
                "`{expr}` ({from}) cannot be met without a denied license"
            ));
        }
        let allowed = |r: &LicenseReq| {
            r.license
                .id()
                .is_some_and(|id| self.allow.contains(&id.name))
        };
        if !self.allow.is_empty() && !expr.evaluate(|r| allowed(r) && !denied(r)) {
            return LicenseVerdict::NotAllowed(format!(
                "`{expr}` ({from}) cannot be met with the allowed licenses"
            ));
        }
        LicenseVerdict::Ok
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum LicenseVerdict {
    Ok,
    Denied(String),
    NotAllowed(String),
    Unknown(String),
}

/// The license expression a wheel declares, and which field it came from. PEP 639's
/// `License-Expression` is authoritative when present; else a `License` field that parses as
/// an expression (leniently: `Apache 2.0`, `GPLv3+`, `MIT/X11` are common); else the license
/// classifiers, which can only say "one of these", so several are read as a choice.
fn read(facts: &LicenseFacts) -> Result<(Expression, &'static str), String> {
    if let Some(e) = &facts.expression {
        return Expression::parse(e)
            .map(|x| (x, "License-Expression"))
            .map_err(|_| format!("License-Expression `{e}` is not an SPDX expression"));
    }
    if let Some(l) = &facts.license
        && let Ok(x) = Expression::parse_mode(l, ParseMode::LAX)
    {
        return Ok((x, "License"));
    }
    let ids: Vec<&str> = facts
        .classifiers
        .iter()
        .filter_map(|c| classifier_license(c))
        .collect();
    if !ids.is_empty()
        && let Ok(x) = Expression::parse(&ids.join(" OR "))
    {
        return Ok((x, "classifiers"));
    }
    Err(if facts.is_empty() {
        "the wheel's metadata names no license".to_owned()
    } else {
        "no SPDX license could be read from the wheel's License field or classifiers".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rule::RuleAction;

    fn rules(allow: &[&'static str], deny: &[&'static str]) -> LicenseRules {
        LicenseRules {
            allow: allow.to_vec(),
            allow_origin: None,
            deny: deny.to_vec(),
            deny_origin: None,
            unknown: Rule {
                action: RuleAction::Warn,
                report_only: false,
                origin: None,
            },
            clarify: NameMap::default(),
        }
    }

    impl LicenseRules {
        /// The judgement with no clarification in play: what the metadata alone decides.
        fn judge_metadata(&self, facts: &LicenseFacts) -> LicenseVerdict {
            self.judge(facts, None)
        }
    }

    fn expr(e: &str) -> LicenseFacts {
        LicenseFacts {
            expression: Some(e.into()),
            ..LicenseFacts::default()
        }
    }

    #[test]
    fn expressions_are_evaluated_not_searched() {
        let deny = rules(&[], &["GPL-3.0-only"]);
        assert_eq!(
            deny.judge_metadata(&expr("MIT OR GPL-3.0-only")),
            LicenseVerdict::Ok
        );
        assert!(matches!(
            deny.judge_metadata(&expr("MIT AND GPL-3.0-only")),
            LicenseVerdict::Denied(_)
        ));
        let allow = rules(&["MIT", "Apache-2.0"], &[]);
        assert_eq!(
            allow.judge_metadata(&expr("(MIT OR GPL-2.0-only) AND Apache-2.0")),
            LicenseVerdict::Ok
        );
        assert!(matches!(
            allow.judge_metadata(&expr("MIT AND LGPL-2.1-or-later")),
            LicenseVerdict::NotAllowed(_)
        ));
        // A license both allowed and denied counts as denied.
        let both = rules(&["MIT"], &["MIT"]);
        assert!(matches!(
            both.judge_metadata(&expr("MIT")),
            LicenseVerdict::Denied(_)
        ));
    }

    #[test]
    fn each_metadata_generation_is_read_in_order() {
        let allow = rules(&["MIT"], &[]);
        let legacy = LicenseFacts {
            license: Some("MIT".into()),
            classifiers: vec!["OSI Approved :: GNU General Public License v3 (GPLv3)".into()],
            ..LicenseFacts::default()
        };
        assert_eq!(
            allow.judge_metadata(&legacy),
            LicenseVerdict::Ok,
            "License before classifiers"
        );
        let classifiers = LicenseFacts {
            license: Some("see LICENSE.txt".into()),
            classifiers: vec![
                "OSI Approved :: BSD License".into(),
                "OSI Approved :: MIT License".into(),
            ],
            ..LicenseFacts::default()
        };
        assert_eq!(allow.judge_metadata(&classifiers), LicenseVerdict::Ok);
        let v = allow.judge_metadata(&LicenseFacts {
            expression: Some("GPL-3.0-only".into()),
            license: Some("MIT".into()),
            ..LicenseFacts::default()
        });
        assert!(
            matches!(&v, LicenseVerdict::NotAllowed(d) if d.contains("License-Expression")),
            "{v:?}"
        );
        let lax = rules(&["Apache-2.0"], &[]);
        let v = lax.judge_metadata(&LicenseFacts {
            license: Some("Apache 2.0".into()),
            ..LicenseFacts::default()
        });
        assert_eq!(v, LicenseVerdict::Ok);
    }

    #[test]
    fn unreadable_licenses_are_unknown() {
        let allow = rules(&["MIT"], &[]);
        for facts in [
            LicenseFacts::default(),
            LicenseFacts {
                license: Some("UNKNOWN".into()),
                classifiers: vec!["OSI Approved :: BSD License".into()],
                ..LicenseFacts::default()
            },
            expr("MIT OR"),
        ] {
            assert!(
                matches!(allow.judge_metadata(&facts), LicenseVerdict::Unknown(_)),
                "{facts:?}"
            );
        }
    }

    #[test]
    fn every_classifier_maps_to_a_known_spdx_id() {
        for (c, id) in CLASSIFIERS {
            assert!(
                spdx::license_id(id).is_some_and(|l| l.name == *id),
                "{c}: {id}"
            );
        }
    }
}
