//! `[projects]`: allow and deny lists of whole projects, and how a project they hide is
//! answered (`blocked`, which `[lock]` has too).

use std::ops::Range;

use serde::Serialize;

use crate::policy::diag::Diagnostic;
use crate::policy::names::{NameEntry, NameSet};
use crate::policy::walk::{Spot, Val, Walk, names};

pub(crate) const KEYS: &[&str] = &["allow", "deny", "blocked"];

/// How a project hidden whole is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blocked {
    /// `200` with no files and a PEP 792 `quarantined` status: uv stops there instead of
    /// trying the next index, and the reason reaches the user.
    Quarantine,
    /// `404`: the client may fall through to another index it was given.
    NotFound,
}

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
