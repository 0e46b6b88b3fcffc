//! `[cooldown]`: files younger than a minimum age are held back (a window for a malicious
//! release to be found and removed), per project and per upstream, by file or by version.

use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::RuleId;
use std::ops::Range;

use crate::policy::diag::{Diagnostic, Origin};
use crate::policy::names::{NameEntry, NameMap};
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Spot, Val, Walk, names};

pub(crate) const KEYS: &[&str] = &[
    "min-age",
    "as-of",
    "missing-upload-time",
    "projects",
    "basis",
    "upstreams",
];

#[derive(Debug)]
pub struct Cooldown {
    pub min_age: Option<jiff::SignedDuration>,
    pub min_age_origin: Option<Origin>,
    pub as_of: Option<jiff::Timestamp>,
    pub as_of_origin: Option<Origin>,
    pub missing: Rule,
    pub projects: NameMap<jiff::SignedDuration>,
    /// `upstreams = { internal = "0" }`: minimum ages by upstream label, for the projects no
    /// `projects` entry names.
    pub upstreams: Vec<(String, jiff::SignedDuration, Origin)>,
    /// `basis = "version"`: a file's age is its version's first upload on the page, so a wheel
    /// added later to an old release is not held back (and a new release is, whole).
    pub by_version: bool,
}

impl Cooldown {
    pub fn is_active(&self) -> bool {
        self.min_age.is_some_and(|d| !d.is_zero())
            || self.as_of.is_some()
            || !self.projects.is_empty()
            || self.upstreams.iter().any(|(_, d, _)| !d.is_zero())
    }
}

#[derive(Default)]
pub(crate) struct Raw {
    min_age: Option<(jiff::SignedDuration, Origin)>,
    as_of: Option<(jiff::Timestamp, Origin)>,
    missing_upload_time: Option<(RuleAction, Origin)>,
    by_version: Option<bool>,
    upstreams: Vec<(String, jiff::SignedDuration, Origin)>,
    projects: Vec<(NameEntry, jiff::SignedDuration, Spot)>,
}

impl Raw {
    pub(crate) fn key(
        &mut self,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        kspan: &Range<usize>,
        what: &str,
    ) {
        match key {
            "min-age" => {
                if let Some(d) = w.duration(v, what) {
                    self.min_age = Some((d, w.origin(kspan)));
                }
            }
            "as-of" if Walk::is_unset(v) => {}
            "as-of" => {
                if let Some(t) = w.timestamp(v, what) {
                    self.as_of = Some((t, w.origin(kspan)));
                }
            }
            "missing-upload-time" => {
                if let Some(a) = w.action(v, what) {
                    self.missing_upload_time = Some((a, w.origin(kspan)));
                }
            }
            "basis" => match w.str(v, what) {
                Some("file") => self.by_version = Some(false),
                Some("version") => self.by_version = Some(true),
                Some(other) => w.error(
                    &v.span(),
                    "bad-value",
                    format!("{what} must be \"file\" or \"version\", not \"{other}\""),
                ),
                None => {}
            },
            "upstreams" => {
                let Some(t) = w.table(v, what) else { return };
                for (k, val) in t.iter() {
                    let label: &str = k.get_ref();
                    if let Some(d) = w.duration(val, &format!("{what}: {label}")) {
                        // A later file's age for the same upstream replaces the earlier one.
                        self.upstreams.retain(|(l, _, _)| l != label);
                        self.upstreams
                            .push((label.to_owned(), d, w.origin(&k.span())));
                    }
                }
            }
            "projects" => {
                let entries = w.name_table(v, what, |w, val| w.duration(val, what));
                self.projects.extend(entries);
            }
            _ => {}
        }
    }

    pub(crate) fn finish(self, diags: &mut Vec<Diagnostic>) -> Cooldown {
        let (min_age, min_age_origin) = self
            .min_age
            .map_or((None, None), |(d, o)| (Some(d), Some(o)));
        let (as_of, as_of_origin) = self.as_of.map_or((None, None), |(t, o)| (Some(t), Some(o)));
        Cooldown {
            min_age,
            min_age_origin,
            as_of,
            as_of_origin,
            missing: self
                .missing_upload_time
                .map_or(Rule::new(RuleAction::Hide), |(a, o)| Rule {
                    action: a,
                    report_only: false,
                    origin: Some(o),
                }),
            projects: names(diags, self.projects),
            upstreams: self.upstreams,
            by_version: self.by_version.unwrap_or(false),
        }
    }
}

/// At most one hit: no upload time when one is needed, uploaded after `as-of`, or younger
/// than `min_age` (the project's minimum age, looked up once per page); `recheck_by` is told
/// when such a file comes of age, so its page is decided again then.
pub(crate) fn file_hits<'a>(
    rule: &'a Rule,
    c: &'a Cooldown,
    min_age: Option<&(jiff::SignedDuration, Option<Origin>)>,
    now: jiff::Timestamp,
    recheck_by: impl Fn(jiff::Timestamp),
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    if rule.is_off() || !c.is_active() {
        return Vec::new();
    }
    let hit = |rule, code, detail: String, origin| {
        vec![(
            Hit {
                id: RuleId::Cooldown,
                rule,
                code,
                detail,
                origin,
            },
            f.base,
        )]
    };
    let Some(uploaded) = f.uploaded.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        if min_age.is_some() || c.as_of.is_some() {
            // The line that chose what to do, else the one that made the cooldown apply.
            let origin = c
                .missing
                .origin
                .clone()
                .or_else(|| min_age.and_then(|(_, o)| o.clone()))
                .or_else(|| c.as_of_origin.clone());
            return hit(&c.missing, Code::UploadTimeMissing, String::new(), origin);
        }
        return Vec::new();
    };
    if let Some(as_of) = c.as_of
        && uploaded > as_of
    {
        return hit(
            rule,
            Code::CooldownTooNew,
            format!("uploaded {uploaded}, after the policy's date {as_of}"),
            c.as_of_origin.clone(),
        );
    }
    if let Some((min, origin)) = min_age
        && let Ok(ready) = uploaded.checked_add(*min)
        && ready > now
    {
        recheck_by(ready);
        return hit(
            rule,
            Code::CooldownTooNew,
            format!("uploaded {uploaded}; listed from {ready}"),
            origin.clone(),
        );
    }
    Vec::new()
}
