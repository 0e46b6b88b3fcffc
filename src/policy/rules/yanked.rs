//! `[yanked]`: files upstream marked yanked (PEP 592).

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};

pub(crate) fn file_hits<'a>(rule: &'a Rule, f: &FileFacts<'a>) -> FileHits<'a> {
    match &f.file.yanked {
        Some(why) if !rule.is_off() => vec![(
            Hit::of(RuleId::Yanked, rule, Code::Yanked, why.clone()),
            f.base,
        )],
        _ => Vec::new(),
    }
}
