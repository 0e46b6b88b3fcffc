//! `[prereleases]`: versions with a pre-release or development part.

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};

pub(crate) fn file_hits<'a>(rule: &'a Rule, f: &FileFacts<'a>) -> FileHits<'a> {
    match f.version {
        Some(ver) if !rule.is_off() && ver.any_prerelease() => vec![(
            Hit::of(RuleId::Prereleases, rule, Code::Prerelease, ver.to_string()),
            f.base,
        )],
        _ => Vec::new(),
    }
}
