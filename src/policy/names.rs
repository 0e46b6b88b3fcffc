//! Project names in a policy: exact names, globs and regular expressions, matched against
//! PEP 503-normalized names ([`NameMap`]), and PEP 752 namespaces. A leaf below the loader and
//! every rule that lists projects.

use std::collections::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::{RegexSet, RegexSetBuilder};

use super::diag::Origin;

/// PEP 752: a grant over `ns` covers the project `ns` and every `ns-*` project (both
/// normalized).
pub fn in_namespace(project: &str, ns: &str) -> bool {
    project
        .strip_prefix(ns)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// A name, glob or regular expression in a policy, with its reason and line.
#[derive(Clone, Debug)]
pub struct NameEntry {
    pub pattern: String,
    pub reason: Option<String>,
    pub origin: Origin,
    /// `pattern` is a regular expression, written as the user wrote it (not normalized), so
    /// that its anchors and classes mean what they say against normalized names.
    pub regex: bool,
}

/// How large one regular expression in a policy may compile. A pattern over project names
/// such as `^acme-(internal|corp)-` needs a few KiB (a Unicode class like `\w` some 50 KiB a
/// repetition); the cap keeps a hostile or careless policy (`\w{1000}`, nested counted
/// repetitions) from claiming memory while it loads.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The same cap for all the regular expressions of one list compiled together, so a thousand
/// entries each under [`REGEX_SIZE_LIMIT`] still cannot add up to a gigabyte.
pub const REGEX_SET_SIZE_LIMIT: usize = 16 << 20;

/// A regular expression from a policy, compiled under the size cap.
pub(super) fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// The one line of a regex error worth showing in a `file:line:col` diagnostic: the syntax
/// error's last line (its first lines repeat the pattern with a caret under it).
pub(super) fn regex_why(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => {
            format!("it compiles to more than the {limit} bytes a policy pattern may take")
        }
        other => {
            let text = other.to_string();
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            last.map_or(text.clone(), |l| {
                l.trim().trim_start_matches("error: ").to_owned()
            })
        }
    }
}

/// Why a list of names could not be compiled, with the index of the entry to blame so the
/// builder can point at the line it came from.
#[derive(Debug, thiserror::Error)]
pub(super) enum PatternError {
    #[error("{why}")]
    Glob { index: usize, why: String },
    #[error("{why}")]
    Regex { index: usize, why: String },
}

impl PatternError {
    pub(super) fn index(&self) -> usize {
        match self {
            Self::Glob { index, .. } | Self::Regex { index, .. } => *index,
        }
    }

    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Glob { .. } => "bad-glob",
            Self::Regex { .. } => "bad-regex",
        }
    }
}

/// Project names, globs and regular expressions (names normalized as PEP 503 says before
/// matching), each with a payload. Exact names are a hash lookup, all globs one `GlobSet` and
/// all regular expressions one `RegexSet`, so a thousand entries cost about what one does.
#[derive(Debug)]
pub struct NameMap<T> {
    entries: Vec<(NameEntry, T)>,
    exact: HashMap<String, Vec<usize>>,
    globs: GlobSet,
    glob_entries: Vec<usize>,
    regexes: RegexSet,
    regex_entries: Vec<usize>,
}

impl<T> Default for NameMap<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            exact: HashMap::new(),
            globs: GlobSet::empty(),
            glob_entries: Vec::new(),
            regexes: RegexSet::empty(),
            regex_entries: Vec::new(),
        }
    }
}

impl<T> NameMap<T> {
    pub(super) fn build(entries: Vec<(NameEntry, T)>) -> Result<Self, PatternError> {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut builder = GlobSetBuilder::new();
        let mut glob_entries = Vec::new();
        let mut regex_entries = Vec::new();
        for (i, (e, _)) in entries.iter().enumerate() {
            if e.regex {
                regex_entries.push(i);
            } else if is_glob(&e.pattern) {
                let g = Glob::new(&e.pattern).map_err(|err| PatternError::Glob {
                    index: i,
                    why: err.kind().to_string(),
                })?;
                builder.add(g);
                glob_entries.push(i);
            } else {
                exact.entry(e.pattern.clone()).or_default().push(i);
            }
        }
        let globs = builder.build().map_err(|e| PatternError::Glob {
            index: glob_entries.first().copied().unwrap_or(0),
            why: e.to_string(),
        })?;
        let regexes = if regex_entries.is_empty() {
            RegexSet::empty()
        } else {
            let patterns = regex_entries
                .iter()
                .filter_map(|i| entries.get(*i))
                .map(|(e, _)| e.pattern.as_str());
            RegexSetBuilder::new(patterns)
                .size_limit(REGEX_SET_SIZE_LIMIT)
                .build()
                .map_err(|e| PatternError::Regex {
                    // Each pattern compiled alone when it was read, so the set as a whole is
                    // too large: blame the last, which tipped it over.
                    index: regex_entries.last().copied().unwrap_or(0),
                    why: match e {
                        regex::Error::CompiledTooBig(limit) => format!(
                            "the {} regular expressions of this list together compile to more than {limit} bytes",
                            regex_entries.len()
                        ),
                        other => regex_why(&other),
                    },
                })?
        };
        Ok(Self {
            entries,
            exact,
            globs,
            glob_entries,
            regexes,
            regex_entries,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The line of the first entry: where a rule made of the whole list points.
    pub fn first_origin(&self) -> Option<Origin> {
        self.entries.first().map(|(e, _)| e.origin.clone())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Indices of the glob and regex entries matching `name`, in the order written.
    fn pattern_matches(&self, name: &str) -> Vec<usize> {
        let mut idx = Vec::new();
        if !self.glob_entries.is_empty() {
            idx.extend(
                self.globs
                    .matches(name)
                    .into_iter()
                    .filter_map(|g| self.glob_entries.get(g).copied()),
            );
        }
        if !self.regex_entries.is_empty() {
            idx.extend(
                self.regexes
                    .matches(name)
                    .into_iter()
                    .filter_map(|r| self.regex_entries.get(r).copied()),
            );
        }
        idx
    }

    /// Every entry matching `name` (already normalized), in the order they were written.
    pub fn find_all(&self, name: &str) -> Vec<&(NameEntry, T)> {
        let mut idx: Vec<usize> = self.exact.get(name).cloned().unwrap_or_default();
        idx.extend(self.pattern_matches(name));
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .filter_map(|i| self.entries.get(i))
            .collect()
    }

    /// The first entry matching `name`: exact names before globs and regular expressions,
    /// which count in the order written.
    pub fn find(&self, name: &str) -> Option<&(NameEntry, T)> {
        if let Some(i) = self.exact.get(name).and_then(|v| v.first()) {
            return self.entries.get(*i);
        }
        let first = self.pattern_matches(name).into_iter().min()?;
        self.entries.get(first)
    }
}

pub type NameSet = NameMap<()>;

pub(super) fn is_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

/// PEP 503 normalization of a pattern: the glob characters stay, the rest is lowercased and
/// runs of `-`, `_`, `.` become one `-`.
pub(super) fn normalize_pattern(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut sep = false;
    for c in p.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    if sep {
        out.push('-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_normalize_like_names() {
        assert_eq!(normalize_pattern("Acme_Corp.*"), "acme-corp-*");
        assert_eq!(normalize_pattern("foo--bar"), "foo-bar");
    }

    #[test]
    fn name_maps_match_exact_and_globs() {
        let o = Origin {
            file: "p.toml".into(),
            line: 1,
        };
        let e = |p: &str| NameEntry {
            pattern: p.into(),
            reason: None,
            origin: o.clone(),
            regex: false,
        };
        let m =
            NameMap::build(vec![(e("acme-*"), 1), (e("requests"), 2), (e("*-dev"), 3)]).unwrap();
        assert_eq!(m.find("requests").map(|x| x.1), Some(2));
        assert_eq!(m.find("acme-dev").map(|x| x.1), Some(1));
        assert_eq!(m.find_all("acme-dev").len(), 2);
        assert!(m.find("numpy").is_none());
    }

    #[test]
    fn name_maps_match_regexes_in_written_order_after_exact_names() {
        let o = Origin {
            file: "p.toml".into(),
            line: 1,
        };
        let e = |p: &str, regex| NameEntry {
            pattern: p.into(),
            reason: None,
            origin: o.clone(),
            regex,
        };
        let m = NameMap::build(vec![
            (e("^acme-(internal|corp)-", true), 1),
            (e("acme-*", false), 2),
            (e("acme-corp-billing", false), 3),
            (e("dev", true), 4),
        ])
        .unwrap();
        // (name, what find returns, how many entries match)
        let cases: &[(&str, Option<i32>, usize)] = &[
            ("acme-corp-billing", Some(3), 3),
            ("acme-internal-dev", Some(1), 3),
            ("acme-public", Some(2), 1),
            // Unanchored as written: `dev` matches anywhere.
            ("devtools", Some(4), 1),
            ("my-acme-internal-x", None, 0),
            ("numpy", None, 0),
        ];
        for (name, first, all) in cases {
            assert_eq!(m.find(name).map(|x| x.1), *first, "{name}");
            assert_eq!(m.find_all(name).len(), *all, "{name}");
        }
        let bad = NameMap::build(vec![(e("dev", true), ()), (e("(", true), ())]);
        assert!(
            matches!(&bad, Err(PatternError::Regex { index: 1, .. })),
            "{bad:?}"
        );
    }
}
