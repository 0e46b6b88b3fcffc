//! Project names (PEP 503 normalization, PEP 508 validity).
//!
//! Every name that reaches pipwall comes from a URL path or an upstream page, so it is validated
//! before it is used to build an upstream URL, a cache key or a log line.

use std::fmt;

/// Longest project name accepted. No real project comes near it; the cap keeps hostile paths
/// from becoming huge upstream URLs and cache keys.
pub const MAX_NAME_LEN: usize = 200;

/// A PEP 503-normalized project name: lowercase ASCII letters, digits and single `-` separators.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("project name is empty")]
    Empty,
    #[error("project name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("project name has a character outside ASCII letters, digits, `.`, `-` and `_`")]
    BadCharacter,
    #[error("project name must start and end with a letter or digit")]
    BadEdge,
}

impl ProjectName {
    /// Validates `raw` as a PEP 508 name and normalizes it as PEP 503 says: runs of `-`, `_`
    /// and `.` become one `-`, and letters are lowercased.
    pub fn new(raw: &str) -> Result<Self, NameError> {
        check(raw)?;
        Ok(Self(normalize(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `raw` is already in normalized form, so a request for it needs no redirect.
    pub fn is_normalized(raw: &str) -> bool {
        Self::new(raw).is_ok_and(|n| n.0 == raw)
    }
}

/// Whether `raw` is a valid PEP 508 name (what [`ProjectName::new`] accepts).
pub fn check(raw: &str) -> Result<(), NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    if raw.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let bytes = raw.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NameError::BadCharacter);
    }
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    if !edge_ok(bytes.first()) || !edge_ok(bytes.last()) {
        return Err(NameError::BadEdge);
    }
    Ok(())
}

/// Whether `raw`, a valid name, normalizes to `project`, compared without allocating.
pub fn normalizes_to(raw: &str, project: &ProjectName) -> Result<bool, NameError> {
    check(raw)?;
    let mut want = project.as_str().bytes();
    let mut in_sep = false;
    for b in raw.bytes() {
        let got = if matches!(b, b'-' | b'_' | b'.') {
            if in_sep {
                continue;
            }
            in_sep = true;
            b'-'
        } else {
            in_sep = false;
            b.to_ascii_lowercase()
        };
        if want.next() != Some(got) {
            return Ok(false);
        }
    }
    Ok(want.next().is_none())
}

/// PEP 503 normalization of a string already known to hold only name characters.
fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_sep = false;
    for c in raw.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_sep = false;
        }
    }
    out
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_runs_of_separators() {
        assert_eq!(ProjectName::new("Foo.._-Bar").unwrap().as_str(), "foo-bar");
        assert_eq!(
            ProjectName::new("zope.interface").unwrap().as_str(),
            "zope-interface"
        );
        assert_eq!(ProjectName::new("A").unwrap().as_str(), "a");
    }

    #[test]
    fn is_normalized_only_for_canonical_form() {
        assert!(ProjectName::is_normalized("foo-bar"));
        assert!(!ProjectName::is_normalized("Foo-Bar"));
        assert!(!ProjectName::is_normalized("foo_bar"));
        assert!(!ProjectName::is_normalized("foo--bar"));
    }

    #[test]
    fn err_path_traversal() {
        assert_eq!(ProjectName::new(".."), Err(NameError::BadEdge));
        assert_eq!(ProjectName::new("../etc"), Err(NameError::BadCharacter));
        assert_eq!(ProjectName::new("a/b"), Err(NameError::BadCharacter));
        assert_eq!(ProjectName::new("%2e%2e"), Err(NameError::BadCharacter));
    }

    #[test]
    fn err_control_and_unicode() {
        assert_eq!(ProjectName::new("a\nb"), Err(NameError::BadCharacter));
        assert_eq!(ProjectName::new("a\0b"), Err(NameError::BadCharacter));
        assert_eq!(ProjectName::new("café"), Err(NameError::BadCharacter));
    }

    #[test]
    fn err_edges_and_length() {
        assert_eq!(ProjectName::new(""), Err(NameError::Empty));
        assert_eq!(ProjectName::new("-a"), Err(NameError::BadEdge));
        assert_eq!(ProjectName::new("a_"), Err(NameError::BadEdge));
        assert_eq!(ProjectName::new(&"a".repeat(201)), Err(NameError::TooLong));
        assert!(ProjectName::new(&"a".repeat(200)).is_ok());
    }
}
