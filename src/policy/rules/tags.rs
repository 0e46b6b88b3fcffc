//! `[tags]`: globs on a wheel's Python, ABI and platform tags; a wheel is shown when one of its
//! tag triples matches all three lists.

use crate::dist::filename::DistRef;
use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};
use std::ops::Range;

use globset::{Glob, GlobSet};

use crate::policy::diag::Diagnostic;
use crate::policy::walk::{Spot, Val, Walk, globs};

pub(crate) const KEYS: &[&str] = &["python", "abi", "platform"];

#[derive(Debug, Default)]
pub struct TagRules {
    pub python: Option<GlobSet>,
    pub abi: Option<GlobSet>,
    pub platform: Option<GlobSet>,
}

impl TagRules {
    pub fn is_empty(&self) -> bool {
        self.python.is_none() && self.abi.is_none() && self.platform.is_none()
    }

    /// True when one of the wheel's tag triples is allowed by all three lists.
    pub fn allows<'a>(
        &self,
        mut triples: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> bool {
        let ok = |set: &Option<GlobSet>, tag: &str| set.as_ref().is_none_or(|s| s.is_match(tag));
        triples.any(|(py, abi, plat)| {
            ok(&self.python, py) && ok(&self.abi, abi) && ok(&self.platform, plat)
        })
    }
}

/// A list of globs as written, and where.
type Globs = Option<(Vec<String>, Spot)>;

#[derive(Default)]
pub(crate) struct Raw {
    python: Globs,
    abi: Globs,
    platform: Globs,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        _kspan: &Range<usize>,
        what: &str,
    ) {
        let list: Vec<String> = w
            .string_list(v, what)
            .into_iter()
            .map(|(s, _)| s.to_ascii_lowercase())
            .collect();
        let spot = w.spot(&v.span());
        for (s, span) in w.string_list(v, what) {
            if let Err(e) = Glob::new(&s.to_ascii_lowercase()) {
                w.error(
                    &span,
                    "bad-glob",
                    format!("{what}: `{s}` is not a valid glob: {}", e.kind()),
                );
            }
        }
        let slot = match key {
            "python" => &mut self.python,
            "abi" => &mut self.abi,
            _ => &mut self.platform,
        };
        *slot = Some((list, spot));
    }

    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> TagRules {
        TagRules {
            python: globs(diags, self.python),
            abi: globs(diags, self.abi),
            platform: globs(diags, self.platform),
        }
    }
}

/// A wheel none of whose tag triples the three lists allow.
pub(crate) fn file_hits<'a>(rule: &'a Rule, tags: &TagRules, f: &FileFacts<'a>) -> FileHits<'a> {
    match f.parsed {
        DistRef::Wheel { tags: wheel, .. }
            if !rule.is_off() && !tags.is_empty() && !tags.allows(wheel.triples()) =>
        {
            vec![(Hit::of(RuleId::Tags, rule, Code::TagNotAllowed, ""), f.base)]
        }
        _ => Vec::new(),
    }
}
