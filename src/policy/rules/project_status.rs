//! `[project-status]`: what each PEP 792 status an upstream page declares does to the
//! project's files.

use crate::index::ProjectStatus;
use crate::policy::check::Hit;
use crate::policy::rule::RuleId;
use std::collections::HashMap;
use std::ops::Range;

use crate::policy::decision::Code;
use crate::policy::diag::Origin;
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Val, Walk};

pub(crate) const KEYS: &[&str] = &["quarantined", "archived", "deprecated"];

/// Each status is its own switch, so `quarantined` can hide while `archived` only warns.
#[derive(Debug)]
pub struct StatusRules {
    pub quarantined: Rule,
    pub archived: Rule,
    pub deprecated: Rule,
}

impl StatusRules {
    /// The switch for a status as upstream spells it; `active` and statuses PEP 792 does not
    /// define have none.
    pub fn for_status(&self, status: &str) -> Option<(&Rule, Code)> {
        match status {
            "quarantined" => Some((&self.quarantined, Code::ProjectQuarantined)),
            "archived" => Some((&self.archived, Code::ProjectArchived)),
            "deprecated" => Some((&self.deprecated, Code::ProjectDeprecated)),
            _ => None,
        }
    }
}

#[derive(Default)]
pub(crate) struct Raw {
    statuses: HashMap<&'static str, (RuleAction, Origin)>,
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
        let Some(&key) = KEYS.iter().find(|k| **k == key) else {
            return;
        };
        if let Some(a) = w.action(v, what) {
            self.statuses.insert(key, (a, w.origin(kspan)));
        }
    }

    /// Sets each status's switch in `rules`; all follow the section's report-only switch.
    pub(crate) fn finish(self, rules: &mut StatusRules, section: &Rule) {
        for (key, (action, origin)) in self.statuses {
            let rule = match key {
                "quarantined" => &mut rules.quarantined,
                "archived" => &mut rules.archived,
                _ => &mut rules.deprecated,
            };
            rule.action = action;
            rule.origin = Some(origin);
        }
        for rule in [
            &mut rules.quarantined,
            &mut rules.archived,
            &mut rules.deprecated,
        ] {
            rule.report_only = section.report_only;
        }
    }
}

/// The switch for the PEP 792 status upstream declares, with upstream's reason.
pub(crate) fn page_hit<'a>(
    rules: &'a StatusRules,
    status: Option<&ProjectStatus>,
) -> Option<Hit<'a>> {
    let st = status?;
    let (rule, code) = rules.for_status(&st.status)?;
    if rule.is_off() {
        return None;
    }
    let detail = st
        .reason
        .as_deref()
        .map(|r| format!("upstream says: {}", crate::sanitize::one_line(r, 200)))
        .unwrap_or_default();
    Some(Hit::of(RuleId::ProjectStatus, rule, code, detail))
}
