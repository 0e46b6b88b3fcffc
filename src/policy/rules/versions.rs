//! `[versions]`: version ranges required or denied per project, and how many of a project's
//! newest versions are shown (`max-count`).

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
