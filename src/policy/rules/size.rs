//! `[size]`: the largest file shown.

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};
use std::ops::Range;

use toml::de::DeValue;

use crate::policy::walk::{Val, Walk};

pub(crate) const KEYS: &[&str] = &["max"];

#[derive(Default)]
pub(crate) struct Raw {
    max: Option<u64>,
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
        if key != "max" {
            return;
        }
        let size = match v.get_ref() {
            DeValue::Integer(i) => i.as_str().parse::<u64>().ok(),
            DeValue::String(s) => crate::size::parse(s).ok(),
            _ => None,
        };
        match size {
            Some(s) => self.max = Some(s),
            None => w.error(
                &v.span(),
                "bad-size",
                format!("{what} must be a byte count or a size like \"500MiB\" or \"2GB\""),
            ),
        }
    }

    /// The largest file size shown; `None`: no limit.
    pub(crate) fn finish(self) -> Option<u64> {
        self.max
    }
}

/// A file larger than `max`.
pub(crate) fn file_hits<'a>(rule: &'a Rule, max: Option<u64>, f: &FileFacts<'a>) -> FileHits<'a> {
    match (max, f.file.size) {
        (Some(max), Some(size)) if size > max && !rule.is_off() => vec![(
            Hit::of(
                RuleId::Size,
                rule,
                Code::TooLarge,
                format!("{size} bytes, the limit is {max}"),
            ),
            f.base,
        )],
        _ => Vec::new(),
    }
}
