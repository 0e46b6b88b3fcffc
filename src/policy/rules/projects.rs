//! `[projects]`: allow and deny lists of whole projects, and how a project they hide is
//! answered (`blocked`, which `[lock]` has too).

use crate::policy::check::ProjectHit;
use crate::policy::decision::{Blocked, Code};
use crate::policy::rule::{Rule, RuleId};
use std::ops::Range;

use crate::policy::diag::Diagnostic;
use crate::policy::names::{NameEntry, NameSet};
use crate::policy::walk::{Spot, Val, Walk, names};

pub(crate) const KEYS: &[&str] = &["allow", "deny", "blocked"];

impl Blocked {
    /// `blocked = "quarantine" | "not-found"`, reporting anything else.
    pub(crate) fn read(w: &mut Walk<'_>, v: &Val<'_>, what: &str) -> Option<Self> {
        match w.str(v, what) {
            Some("quarantine") => Some(Self::Quarantine),
            Some("not-found") => Some(Self::NotFound),
            Some(other) => {
                w.error(
                    &v.span(),
                    "bad-value",
                    format!("{what} must be \"quarantine\" or \"not-found\", not \"{other}\""),
                );
                None
            }
            None => None,
        }
    }
}

/// The section as written, across files.
#[derive(Default)]
pub(crate) struct Raw {
    allow: Vec<(NameEntry, Spot)>,
    deny: Vec<(NameEntry, Spot)>,
    blocked: Option<Blocked>,
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
        match key {
            "allow" => self.allow.extend(w.name_list(v, what, true)),
            "deny" => self.deny.extend(w.name_list(v, what, true)),
            "blocked" => self.blocked = Blocked::read(w, v, what).or(self.blocked),
            _ => {}
        }
    }

    /// The allow-list, the deny-list, and how a project they hide is answered.
    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> (NameSet, NameSet, Blocked) {
        let unit =
            |list: Vec<(NameEntry, Spot)>| list.into_iter().map(|(e, s)| (e, (), s)).collect();
        (
            names(diags, unit(self.allow)),
            names(diags, unit(self.deny)),
            self.blocked.unwrap_or(Blocked::Quarantine),
        )
    }
}

/// A project on the deny-list, or missing from a non-empty allow-list.
pub(crate) fn project_hits<'a>(
    rule: &'a Rule,
    deny: &NameSet,
    allow: &NameSet,
    blocked: Blocked,
    name: &str,
) -> Vec<ProjectHit<'a>> {
    if rule.is_off() {
        return Vec::new();
    }
    let hit = |code, detail, origin| ProjectHit {
        rule,
        id: RuleId::Projects,
        code,
        detail,
        origin,
        style: blocked,
    };
    if let Some((e, _)) = deny.find(name) {
        vec![hit(
            Code::ProjectDenied,
            reason_detail(e),
            Some(e.origin.clone()),
        )]
    } else if !allow.is_empty() && allow.find(name).is_none() {
        vec![hit(
            Code::ProjectNotAllowed,
            String::new(),
            allow.first_origin(),
        )]
    } else {
        Vec::new()
    }
}

/// The entry that matched, as a decision shows it.
fn reason_detail(e: &NameEntry) -> String {
    let what = if e.regex {
        format!("matches regex `{}`", e.pattern)
    } else {
        format!("`{}`", e.pattern)
    };
    match &e.reason {
        Some(r) => format!("{what}: {r}"),
        None => what,
    }
}
