//! `[versions]`: version ranges required or denied per project, and how many of a project's
//! newest versions are shown (`max-count`).

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};
use std::ops::Range;

use pep440_rs::VersionSpecifiers;
use toml::de::DeValue;

use crate::policy::diag::{Diagnostic, Origin};
use crate::policy::names::{NameEntry, NameMap};
use crate::policy::walk::{Spot, Val, Walk, names};

pub(crate) const KEYS: &[&str] = &["require", "deny", "max-count"];

/// A project (or pattern) with a version range, and where it was written.
type Ranges = Vec<(NameEntry, VersionSpecifiers, Spot)>;

#[derive(Default)]
pub(crate) struct Raw {
    require: Ranges,
    deny: Ranges,
    max_count: Option<(usize, Origin)>,
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
            "require" | "deny" => {
                let entries = w.name_table(v, what, |w, val| w.specifiers(val, what));
                if key == "require" {
                    self.require.extend(entries);
                } else {
                    self.deny.extend(entries);
                }
            }
            "max-count" => {
                let n = match v.get_ref() {
                    DeValue::Integer(i) => i.as_str().parse::<usize>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) => self.max_count = Some((n, w.origin(kspan))),
                    None => w.error(
                        &v.span(),
                        "bad-value",
                        format!("{what} must be a whole number of versions (0: no limit)"),
                    ),
                }
            }
            _ => {}
        }
    }

    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> Versions {
        Versions {
            require: names(diags, self.require),
            deny: names(diags, self.deny),
            max_count: self.max_count.filter(|(n, _)| *n > 0),
        }
    }
}

/// The section once read: ranges by project, and how many of the newest versions are shown.
pub(crate) struct Versions {
    pub(crate) require: NameMap<VersionSpecifiers>,
    pub(crate) deny: NameMap<VersionSpecifiers>,
    pub(crate) max_count: Option<(usize, Origin)>,
}

/// The project's `required` ranges its version is outside, then `denied` ranges it is in.
pub(crate) fn file_hits<'a>(
    rule: &'a Rule,
    required: &[&'a (NameEntry, VersionSpecifiers)],
    denied: &[&'a (NameEntry, VersionSpecifiers)],
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    let mut out = Vec::new();
    let Some(ver) = f.version else {
        return out;
    };
    if rule.is_off() {
        return out;
    }
    let hit = |detail: String, e: &NameEntry| Hit {
        origin: Some(e.origin.clone()),
        ..Hit::of(RuleId::Versions, rule, Code::VersionExcluded, detail)
    };
    for (e, spec) in required.iter().copied() {
        if !spec.contains(ver) {
            out.push((hit(format!("{ver} is outside `{spec}`"), e), f.base));
        }
    }
    for (e, spec) in denied.iter().copied() {
        if spec.contains(ver) {
            out.push((hit(format!("{ver} is denied by `{spec}`"), e), f.base));
        }
    }
    out
}
