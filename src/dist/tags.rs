//! Wheel compatibility tags (PEP 425), including compressed tag sets (`py2.py3`).
//!
//! Only the shape is checked here: each tag is a non-empty run of ASCII letters, digits and `_`.
//! What a platform tag *means* (manylinux glibc floor, macOS minimum, …) is the audit's concern.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("{part} tag is empty")]
    Empty { part: &'static str },
    #[error("{part} tag `{tag}` has a character outside ASCII letters, digits and `_`")]
    BadCharacter { part: &'static str, tag: String },
}

/// The three tag sets of a wheel filename, each expanded from its `.`-compressed form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WheelTags {
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

impl WheelTags {
    pub fn parse(python: &str, abi: &str, platform: &str) -> Result<Self, TagError> {
        Ok(Self {
            python: split_set("python", python)?,
            abi: split_set("abi", abi)?,
            platform: split_set("platform", platform)?,
        })
    }

    /// Every `(python, abi, platform)` triple the compressed sets stand for.
    pub fn triples(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.python.iter().flat_map(move |py| {
            self.abi.iter().flat_map(move |abi| {
                self.platform
                    .iter()
                    .map(move |plat| (py.as_str(), abi.as_str(), plat.as_str()))
            })
        })
    }
}

/// Checks a compressed tag set as [`WheelTags::parse`] would, without building it.
pub fn check_set(part: &'static str, set: &str) -> Result<(), TagError> {
    // One pass over the bytes for the usual, valid set; the error is worked out only when it
    // fails (`str::split` costs a searcher per call, and pages hold thousands of tag sets).
    let b = set.as_bytes();
    let mut prev = b'.';
    let valid = b.iter().all(|&c| {
        let ok = c.is_ascii_alphanumeric() || c == b'_' || (c == b'.' && prev != b'.');
        prev = c;
        ok
    }) && prev != b'.';
    if valid {
        return Ok(());
    }
    for tag in set.split('.') {
        if tag.is_empty() {
            return Err(TagError::Empty { part });
        }
        if !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(TagError::BadCharacter {
                part,
                tag: tag.to_owned(),
            });
        }
    }
    Ok(())
}

fn split_set(part: &'static str, set: &str) -> Result<Vec<String>, TagError> {
    set.split('.')
        .map(|tag| {
            if tag.is_empty() {
                Err(TagError::Empty { part })
            } else if tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                Ok(tag.to_owned())
            } else {
                Err(TagError::BadCharacter {
                    part,
                    tag: tag.to_owned(),
                })
            }
        })
        .collect()
}

impl fmt::Display for WheelTags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.python.join("."),
            self.abi.join("."),
            self.platform.join(".")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_sets_expand() {
        let t = WheelTags::parse("py2.py3", "none", "any").unwrap();
        let all: Vec<_> = t.triples().collect();
        assert_eq!(all, vec![("py2", "none", "any"), ("py3", "none", "any")]);
    }

    #[test]
    fn manylinux_pair_round_trips() {
        let s = "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64";
        let mut parts = s.splitn(3, '-');
        let (a, b, c) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let t = WheelTags::parse(a, b, c).unwrap();
        assert_eq!(t.platform.len(), 2);
        assert_eq!(t.to_string(), s);
    }

    #[test]
    fn err_empty_member() {
        assert_eq!(
            WheelTags::parse("py3.", "none", "any"),
            Err(TagError::Empty { part: "python" })
        );
    }

    #[test]
    fn err_path_characters() {
        assert!(matches!(
            WheelTags::parse("py3", "none", "..\\any"),
            Err(TagError::Empty { .. } | TagError::BadCharacter { .. })
        ));
        assert!(matches!(
            WheelTags::parse("py3", "no/ne", "any"),
            Err(TagError::BadCharacter { .. })
        ));
    }
}
