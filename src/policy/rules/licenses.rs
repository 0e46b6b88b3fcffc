//! `[licenses]`: a wheel's license, read from the three generations of core metadata the audit
//! kept ([`LicenseFacts`]), judged against SPDX allow and deny lists.
//!
//! The expression is evaluated, not searched for names: `MIT OR GPL-3.0-only` passes a deny of
//! `GPL-3.0-only` (the MIT choice is open), `MIT AND GPL-3.0-only` does not.
//!
//! Metadata is written by each project and is sometimes wrong or silent; `clarify` lets a
//! policy state the license that holds instead, for a project and optionally some versions.

use crate::policy::check::Hit;
use crate::policy::decision::Code;
use crate::policy::rule::RuleId;
use pep440_rs::{Version, VersionSpecifiers};
use spdx::{Expression, LicenseReq, ParseMode};

use std::ops::Range;

use toml::de::DeValue;

use crate::audit::LicenseFacts;
use crate::policy::diag::{Diagnostic, Origin};
use crate::policy::names::{NameEntry, NameMap};
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Spot, Val, Walk, names};

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

pub(crate) const KEYS: &[&str] = &["allow", "deny", "unknown", "clarify"];

#[derive(Default)]
pub(crate) struct Raw {
    allow: Vec<&'static str>,
    allow_origin: Option<Origin>,
    deny: Vec<&'static str>,
    deny_origin: Option<Origin>,
    unknown: Option<(RuleAction, Origin)>,
    clarify: Vec<(NameEntry, Clarification, Spot)>,
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
            "allow" | "deny" => {
                let mut ids = Vec::new();
                for (s, span) in w.string_list(v, what) {
                    match spdx::license_id(&s).filter(|l| l.name == s) {
                        Some(l) => ids.push(l.name),
                        None => {
                            let hint = spdx::license_id(&s)
                                .or_else(|| spdx::imprecise_license_id(&s).map(|(l, _)| l))
                                .map(|l| format!(" (did you mean `{}`?)", l.name))
                                .unwrap_or_default();
                            w.error(
                                &span,
                                "bad-license",
                                format!("{what}: `{s}` is not an SPDX license id{hint}"),
                            );
                        }
                    }
                }
                let origin = Some(w.origin(kspan));
                if key == "allow" {
                    self.allow.extend(ids);
                    self.allow_origin = origin;
                } else {
                    self.deny.extend(ids);
                    self.deny_origin = origin;
                }
            }
            "clarify" => {
                let list = w.clarify_list(v, what);
                self.clarify.extend(list);
            }
            "unknown" => {
                if let Some(a) = w.action(v, what) {
                    self.unknown = Some((a, w.origin(kspan)));
                }
            }
            _ => {}
        }
    }

    /// Sets `rules`; `unknown` follows the section's report-only switch.
    pub(crate) fn finish(
        self,
        diags: &mut Vec<Diagnostic>,
        rules: &mut LicenseRules,
        section: &Rule,
    ) {
        rules.allow = self.allow;
        rules.allow_origin = self.allow_origin;
        rules.deny = self.deny;
        rules.deny_origin = self.deny_origin;
        if let Some((a, o)) = self.unknown {
            rules.unknown.action = a;
            rules.unknown.origin = Some(o);
        }
        rules.unknown.report_only = section.report_only;
        rules.clarify = names(diags, self.clarify);
    }
}

impl Walk<'_> {
    /// `[licenses] clarify`: each item `{ project = "name or glob", versions = "…",
    /// expression = "SPDX", reason = "…" }`. The reason is required for the same cause as an
    /// exception's: a clarification overrides what the project itself declares.
    pub(crate) fn clarify_list(
        &mut self,
        v: &Val<'_>,
        what: &str,
    ) -> Vec<(NameEntry, Clarification, Spot)> {
        const KEYS: &[&str] = &["project", "versions", "expression", "reason"];
        let mut out = Vec::new();
        for item in self.array(v, what) {
            let DeValue::Table(t) = item.get_ref() else {
                self.error(
                    &item.span(),
                    "wrong-type",
                    format!(
                        "an entry of {what} must be a table: {{ project, expression, reason }}"
                    ),
                );
                continue;
            };
            let mut project = None;
            let mut versions = None;
            let mut expression = None;
            let mut reason: Option<String> = None;
            let mut ok = true;
            for (k, val, _) in self.keys(t, what, KEYS) {
                let key_what = format!("{what} {k}");
                match k {
                    "project" => {
                        project = self.name_pattern(val, &key_what);
                        ok &= project.is_some();
                    }
                    "versions" => {
                        versions = self.specifiers(val, &key_what);
                        ok &= versions.is_some();
                    }
                    "expression" => {
                        expression = self.spdx_expression(val, &key_what);
                        ok &= expression.is_some();
                    }
                    _ => reason = self.str(val, &key_what).map(str::to_owned),
                }
            }
            let span = item.span();
            if ok && project.is_none() {
                ok = false;
                self.error(
                    &span,
                    "missing-key",
                    format!("an entry of {what} needs `project`: the name or glob it clarifies"),
                );
            }
            if ok && expression.is_none() {
                ok = false;
                self.error(
                    &span,
                    "missing-key",
                    format!("an entry of {what} needs `expression`: the SPDX license that holds"),
                );
            }
            if reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                ok = false;
                self.error(
                    &span,
                    "missing-reason",
                    format!("an entry of {what} needs a `reason`: why the metadata is wrong"),
                );
            }
            if !ok {
                continue;
            }
            let (Some((pattern, spot)), Some(expression)) = (project, expression) else {
                continue;
            };
            let origin = self.origin(&span);
            out.push((
                NameEntry {
                    pattern,
                    reason,
                    origin,
                    regex: false,
                },
                Clarification {
                    versions,
                    expression,
                },
                spot,
            ));
        }
        out
    }

    /// An SPDX expression as a policy writes it: strict syntax and current SPDX ids only, as
    /// for the `allow` and `deny` lists, since a lenient reading would guess at the very
    /// license the policy is there to state.
    pub(crate) fn spdx_expression(&mut self, v: &Val<'_>, what: &str) -> Option<spdx::Expression> {
        let s = self.str(v, what)?;
        match spdx::Expression::parse(s) {
            Ok(e) => Some(e),
            Err(e) => {
                let term = s.get(e.span.clone()).unwrap_or_default();
                let hint = spdx::imprecise_license_id(term)
                    .map(|(l, _)| l)
                    .or_else(|| spdx::license_id(term))
                    .filter(|l| l.name != term)
                    .map(|l| format!(" (did you mean `{}`?)", l.name))
                    .unwrap_or_default();
                let at = if term.is_empty() {
                    String::new()
                } else {
                    format!(" at `{term}`")
                };
                self.error(
                    &v.span(),
                    "bad-license",
                    format!(
                        "{what}: `{s}` is not an SPDX expression{at}: {}{hint}",
                        e.reason
                    ),
                );
                None
            }
        }
    }
}

/// What the wheel's license facts (from its METADATA) say against the lists, after any
/// clarification for `project` at `version`.
pub(crate) fn report_hit<'a>(
    section: &'a Rule,
    lr: &'a LicenseRules,
    project: &str,
    version: Option<&Version>,
    facts: &LicenseFacts,
) -> Option<Hit<'a>> {
    if section.is_off() || !lr.is_active() {
        return None;
    }
    let clarified = lr.clarification(project, version);
    let (rule, code, detail, origin) = match lr.judge(facts, clarified) {
        LicenseVerdict::Ok => return None,
        LicenseVerdict::Denied(d) => (section, Code::LicenseDenied, d, lr.deny_origin.clone()),
        LicenseVerdict::NotAllowed(d) => {
            (section, Code::LicenseNotAllowed, d, lr.allow_origin.clone())
        }
        LicenseVerdict::Unknown(d) => (
            &lr.unknown,
            Code::LicenseUnknown,
            d,
            lr.unknown
                .origin
                .clone()
                .or_else(|| lr.allow_origin.clone())
                .or_else(|| lr.deny_origin.clone()),
        ),
    };
    Some(Hit {
        id: RuleId::Licenses,
        rule,
        code,
        detail,
        origin,
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
