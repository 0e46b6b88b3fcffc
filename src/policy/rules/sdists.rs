//! `[sdists]`: source distributions are hidden (building one runs its setup code on the
//! installing machine, even for `pip download`), unless an exception names one.

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::{Rule, RuleId};

pub(crate) fn file_hits<'a>(rule: &'a Rule, f: &FileFacts<'a>) -> FileHits<'a> {
    if !f.parsed.is_sdist() {
        return Vec::new();
    }
    vec![(Hit::of(RuleId::Sdists, rule, Code::SdistHidden, ""), f.base)]
}
