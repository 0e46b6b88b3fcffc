//! What a rule's check returns: hits on a file, each with the scope exceptions are matched
//! against, or hits on a whole project, each with how a block by it is answered.
//! The evaluator (`eval`) runs the checks in its order and weighs each hit (action,
//! report-only, exceptions); a check only says what matched, from its rule's own settings.

use pep440_rs::Version;

use super::decision::Blocked;
use super::decision::Code;
use super::diag::Origin;
use super::rule::{Rule, RuleId};
use crate::dist::filename::DistRef;
use crate::index::FileEntry;

/// The narrower scope a rule hit has, matched against exceptions.
#[derive(Default, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) version: Option<&'a Version>,
    pub(crate) sha256: Option<&'a str>,
    /// Advisory record id and aliases.
    pub(crate) ids: Option<(&'a str, &'a [String])>,
    pub(crate) code: Option<&'a str>,
    /// The advisory record lists a fixed version (an OSV `fixed` event).
    pub(crate) fixed: bool,
}

/// A rule that matched a file: which, what it says, and the line that set it.
pub(crate) struct Hit<'a> {
    pub(crate) id: RuleId,
    pub(crate) rule: &'a Rule,
    pub(crate) code: Code,
    pub(crate) detail: String,
    pub(crate) origin: Option<Origin>,
}

impl<'a> Hit<'a> {
    /// A hit of `rule` (rule `id`) with `code`, pointing at the line that set the rule.
    pub(crate) fn of(id: RuleId, rule: &'a Rule, code: Code, detail: impl Into<String>) -> Self {
        Self {
            id,
            rule,
            code,
            detail: detail.into(),
            origin: rule.origin.clone(),
        }
    }
}

/// What a file's checks see of it.
pub(crate) struct FileFacts<'f> {
    pub(crate) file: &'f FileEntry,
    pub(crate) parsed: &'f DistRef<'f>,
    pub(crate) version: Option<&'f Version>,
    /// When its age counts from: its own upload, or its version's first under
    /// `[cooldown] basis = "version"`.
    pub(crate) uploaded: Option<&'f str>,
    /// Its version and digest, the scope exceptions are matched against.
    pub(crate) base: Scope<'f>,
}

/// The hits one rule finds on one file, in the order they are weighed.
pub(crate) type FileHits<'a> = Vec<(Hit<'a>, Scope<'a>)>;

/// A project-wide rule that matched, and how a block by it is answered.
pub(crate) struct ProjectHit<'a> {
    pub(crate) rule: &'a Rule,
    pub(crate) id: RuleId,
    pub(crate) code: Code,
    pub(crate) detail: String,
    pub(crate) origin: Option<Origin>,
    pub(crate) style: Blocked,
}
