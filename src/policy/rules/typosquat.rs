//! Names one slip away from a well-known project's: `reqeusts`, `urlib3`, `djang0`,
//! `python-dateutils`. A typosquat needs someone to mistype, so the check looks only at what
//! a person plausibly types instead: letters swapped, one added, dropped or changed, separators
//! moved, or a digit that looks like a letter.
//!
//! How near is near, by the length of the protected name:
//! - under 4 characters (`six`, `tox`, `py`): no edit distance at all. At that length one edit
//!   reaches dozens of real, unrelated projects (`sox`, `fox`, `pi`), so only the separator and
//!   lookalike confusions count;
//! - 4 to 7 characters: Damerau–Levenshtein distance 1 (optimal string alignment);
//! - 8 characters and more: distance 2.
//!
//! A name that is itself protected is never flagged: `boto` is not a typosquat of `boto3`, nor
//! `dash` of `dask`. The whole table is built once per policy load: names grouped by length,
//! plus two maps for the confusions that edit distance scores badly (`python-dateutil` →
//! `pythondateutil`, `requests` → `reque5ts`), so a lookup compares a requested name with the
//! few dozen names of nearby length only. It runs once per project page, never per file.

use crate::data::lock::LockSet;
use crate::policy::check::ProjectHit;
use crate::policy::decision::Blocked;
use crate::policy::decision::Code;
use crate::policy::names::NameSet;
use crate::policy::rule::RuleId;
use std::collections::{HashMap, HashSet};
use std::fmt;

use std::ops::Range;

use crate::data::popular::POPULAR;
use crate::policy::names::is_glob;
use crate::policy::rule::Rule;
use crate::policy::walk::{Val, Walk};

/// What makes a name resemble a protected one, in words for the decision's sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Likeness {
    /// The same name with `-`, `_` or `.` added, moved or removed.
    Separators,
    /// The same name with lookalike characters traded (`0`/`o`, `1`/`l`/`i`, `5`/`s`, `3`/`e`).
    Lookalike,
    Swapped,
    Added,
    Dropped,
    Changed,
    /// Two edits (names of 8 characters or more).
    TwoEdits,
}

impl fmt::Display for Likeness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Likeness::Separators => "the same but for separators",
            Likeness::Lookalike => "lookalike characters traded, like 0 for o or 1 for l",
            Likeness::Swapped => "two letters swapped",
            Likeness::Added => "one character added",
            Likeness::Dropped => "one character dropped",
            Likeness::Changed => "one character changed",
            Likeness::TwoEdits => "two characters different",
        })
    }
}

/// The protected names, indexed for cheap lookups.
#[derive(Debug, Default)]
pub struct Protected {
    names: Vec<Box<str>>,
    exact: HashSet<Box<str>>,
    /// Indexes into `names`, by byte length.
    by_len: Vec<Vec<u32>>,
    /// Separators removed → index.
    bare: HashMap<String, u32>,
    /// Separators removed, lookalike digits replaced → index.
    lookalike: HashMap<String, u32>,
}

impl Protected {
    /// The shipped list plus `extra` (PEP 503-normalized names).
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let mut p = Self::default();
        for name in POPULAR.iter().copied().chain(extra) {
            if p.exact.contains(name) {
                continue;
            }
            let Ok(i) = u32::try_from(p.names.len()) else {
                break;
            };
            p.exact.insert(name.into());
            p.names.push(name.into());
            if p.by_len.len() <= name.len() {
                p.by_len.resize_with(name.len() + 1, Vec::new);
            }
            if let Some(slot) = p.by_len.get_mut(name.len()) {
                slot.push(i);
            }
            p.bare.entry(bare(name)).or_insert(i);
            p.lookalike.entry(lookalike(name)).or_insert(i);
        }
        p
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.exact.contains(name)
    }

    /// The protected name `name` (normalized) imitates, and how; `None` when it is protected
    /// itself or not near any.
    pub fn resembles(&self, name: &str) -> Option<(&str, Likeness)> {
        if self.exact.contains(name) {
            return None;
        }
        let get = |i: u32| self.names.get(i as usize).map(|n| &**n);
        if let Some(hit) = self.bare.get(&bare(name)).and_then(|i| get(*i)) {
            return Some((hit, Likeness::Separators));
        }
        if let Some(hit) = self.lookalike.get(&lookalike(name)).and_then(|i| get(*i)) {
            return Some((hit, Likeness::Lookalike));
        }
        let (a, n) = (name.as_bytes(), name.len());
        let mut best: Option<(usize, &str)> = None;
        for len in n.saturating_sub(2)..=n + 2 {
            let max = max_distance(len);
            if max == 0 || n.abs_diff(len) > max {
                continue;
            }
            for &i in self.by_len.get(len).into_iter().flatten() {
                let Some(candidate) = get(i) else { continue };
                let d = osa_distance(a, candidate.as_bytes(), max);
                if d <= max && best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, candidate));
                }
            }
        }
        let (d, hit) = best?;
        Some((hit, likeness(name, hit, d)))
    }
}

/// The edit distance allowed from a protected name of `len` bytes (see the module docs).
fn max_distance(len: usize) -> usize {
    match len {
        0..4 => 0,
        4..8 => 1,
        _ => 2,
    }
}

fn bare(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect()
}

/// Separators out, digits that pass for letters turned into them (`0` → `o`, `5` → `s`, `3` →
/// `e`), and `1` and `i` into `l`, since a `1` reads as either.
fn lookalike(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| match c {
            '0' => 'o',
            '1' | 'i' => 'l',
            '5' => 's',
            '3' => 'e',
            c => c,
        })
        .collect()
}

fn likeness(name: &str, protected: &str, distance: usize) -> Likeness {
    if distance >= 2 {
        return Likeness::TwoEdits;
    }
    match name.len().cmp(&protected.len()) {
        std::cmp::Ordering::Greater => Likeness::Added,
        std::cmp::Ordering::Less => Likeness::Dropped,
        std::cmp::Ordering::Equal => {
            let diff: Vec<usize> = name
                .bytes()
                .zip(protected.bytes())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, _)| i)
                .collect();
            if diff.len() == 2 && diff[1] == diff[0] + 1 {
                Likeness::Swapped
            } else {
                Likeness::Changed
            }
        }
    }
}

/// Damerau–Levenshtein distance in its optimal-string-alignment form (an adjacent swap costs
/// one), giving up with `max + 1` once every cell of a row exceeds `max`.
fn osa_distance(a: &[u8], b: &[u8], max: usize) -> usize {
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let w = b.len() + 1;
    // Three rows: two back (for swaps), the previous one, the current one.
    let mut rows = vec![0usize; 3 * w];
    let (mut r2, mut r1, mut r0) = (0, w, 2 * w);
    for (j, cell) in rows.iter_mut().skip(w).take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[r0] = i;
        let mut row_min = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[r1 + j] + 1)
                .min(rows[r0 + j - 1] + 1)
                .min(rows[r1 + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[r2 + j - 2] + 1);
            }
            rows[r0 + j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return max + 1;
        }
        (r2, r1, r0) = (r1, r0, r2);
    }
    rows[r1 + b.len()]
}

pub(crate) const KEYS: &[&str] = &["protect"];

#[derive(Default)]
pub(crate) struct Raw {
    protect: Vec<String>,
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
        if key != "protect" {
            return;
        }
        for (s, span) in w.string_list(v, what) {
            match crate::dist::ProjectName::new(&s) {
                Ok(n) if !is_glob(&s) => self.protect.push(n.as_str().to_owned()),
                Ok(_) | Err(_) => w.error(
                    &span,
                    "bad-name",
                    format!("{what}: `{s}` is not a project name (globs protect nothing: name each project)"),
                ),
            }
        }
    }

    /// The protected names, indexed; `None` with the rule off (the table is not worth
    /// building then).
    pub(crate) fn finish(self, section: &Rule) -> Option<Protected> {
        (!section.is_off()).then(|| Protected::new(self.protect.iter().map(String::as_str)))
    }
}

/// A name that resembles a well-known or protected one. A name someone allowed or locked was
/// chosen on purpose, so those are not flagged.
pub(crate) fn project_hits<'a>(
    rule: &'a Rule,
    names: &Protected,
    allow: &NameSet,
    locks: Option<&LockSet>,
    blocked: Blocked,
    name: &str,
) -> Vec<ProjectHit<'a>> {
    if rule.is_off()
        || allow.find(name).is_some()
        || locks.is_some_and(|l| l.project(name).is_some())
    {
        return Vec::new();
    }
    let Some((like, how)) = names.resembles(name) else {
        return Vec::new();
    };
    vec![ProjectHit {
        rule,
        id: RuleId::Typosquat,
        code: Code::Typosquat,
        detail: format!("`{name}` resembles `{like}` ({how})"),
        origin: rule.origin.clone(),
        style: blocked,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        let d = |a: &str, b: &str| osa_distance(a.as_bytes(), b.as_bytes(), 5);
        assert_eq!(d("requests", "requests"), 0);
        assert_eq!(d("reqeusts", "requests"), 1);
        assert_eq!(d("urlib3", "urllib3"), 1);
        assert_eq!(d("numpyy", "numpy"), 1);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(
            d("ca", "abc"),
            3,
            "OSA, not unrestricted Damerau–Levenshtein"
        );
        assert_eq!(
            osa_distance(b"abcdefgh", b"hgfedcba", 1),
            2,
            "gives up early"
        );
        assert_eq!(d("", "abc"), 3);
    }

    #[test]
    fn typosquats_and_names_that_are_not() {
        let p = Protected::new(["acme-billing"]);
        let cases: &[(&str, Option<(&str, Likeness)>)] = &[
            ("reqeusts", Some(("requests", Likeness::Swapped))),
            ("requets", Some(("requests", Likeness::Dropped))),
            ("requestss", Some(("requests", Likeness::Added))),
            (
                "python-dateutils",
                Some(("python-dateutil", Likeness::Added)),
            ),
            (
                "pythondateutil",
                Some(("python-dateutil", Likeness::Separators)),
            ),
            ("urlib3", Some(("urllib3", Likeness::Dropped))),
            ("numpyy", Some(("numpy", Likeness::Added))),
            ("djang0", Some(("django", Likeness::Lookalike))),
            ("c1ick", Some(("click", Likeness::Lookalike))),
            ("s1x", Some(("six", Likeness::Lookalike))),
            ("reqursts", Some(("requests", Likeness::Changed))),
            ("beautifulsoup", Some(("beautifulsoup4", Likeness::Dropped))),
            ("beautfulsoup", Some(("beautifulsoup4", Likeness::TwoEdits))),
            (
                "request-toolbelt",
                Some(("requests-toolbelt", Likeness::Dropped)),
            ),
            ("acme-biling", Some(("acme-billing", Likeness::Dropped))),
            ("py-yaml", Some(("pyyaml", Likeness::Separators))),
            // Protected names themselves, and real neighbours that are protected too.
            ("requests", None),
            ("requests-toolbelt", None),
            ("boto", None),
            ("dash", None),
            ("acme-billing", None),
            // Short protected names get no edit distance.
            ("sox", None),
            ("tix", None),
            ("pyy", None),
            // Far enough.
            ("demo", None),
            ("requests-cache", None),
            ("numpy-financial", None),
            ("my-internal-tool", None),
        ];
        for (name, expected) in cases {
            assert_eq!(p.resembles(name), *expected, "{name}");
        }
        assert!(p.contains("acme-billing") && p.contains("numpy"));
        assert_eq!(p.len(), POPULAR.len() + 1);
        assert!(!Protected::default().contains("numpy") && Protected::default().is_empty());
    }

    #[test]
    fn sentences_read() {
        assert_eq!(Likeness::Swapped.to_string(), "two letters swapped");
    }
}
