//! `[namespaces]`: what PEP 752 namespace grants on an upstream page do to a project.

use crate::index::Namespace;
use crate::policy::check::Hit;
use crate::policy::decision::Code;
use crate::policy::rule::RuleId;
use std::collections::HashMap;
use std::ops::Range;

use crate::policy::diag::Origin;
use crate::policy::names::{in_namespace, is_glob};
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Val, Walk};

pub(crate) const KEYS: &[&str] = &["not-owned", "unverified", "require-owned"];

#[derive(Clone, Debug)]
pub struct NamespaceRules {
    /// A project upstream lists in a grant its owner does not hold.
    pub not_owned: Rule,
    /// A project in a `require-owned` namespace without an owned grant listed for it.
    pub unverified: Rule,
    /// Normalized namespace names (`acme` covers `acme` and `acme-*`), each with its line.
    pub required: Vec<(String, Origin)>,
}

impl NamespaceRules {
    /// The `require-owned` namespace that covers `project`, the longest if several do.
    pub fn required_for(&self, project: &str) -> Option<&(String, Origin)> {
        self.required
            .iter()
            .filter(|(ns, _)| in_namespace(project, ns))
            .max_by_key(|(ns, _)| ns.len())
    }
}

#[derive(Default)]
pub(crate) struct Raw {
    actions: HashMap<&'static str, (RuleAction, Origin)>,
    required: Vec<(String, Origin)>,
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
            "not-owned" | "unverified" => {
                if let Some(a) = w.action(v, what) {
                    let key = if key == "not-owned" {
                        "not-owned"
                    } else {
                        "unverified"
                    };
                    self.actions.insert(key, (a, w.origin(kspan)));
                }
            }
            "require-owned" => {
                for (s, span) in w.string_list(v, what) {
                    match crate::dist::ProjectName::new(&s) {
                        Ok(n) if !is_glob(&s) => {
                            let origin = w.origin(&span);
                            self.required.push((n.as_str().to_owned(), origin));
                        }
                        Ok(_) | Err(_) => w.error(
                            &span,
                            "bad-name",
                            format!("{what}: `{s}` is not a namespace name (a project name such as `acme`; it covers `acme` and `acme-*`)"),
                        ),
                    }
                }
            }
            _ => {}
        }
    }

    /// Sets `rules`; both cases follow the section's report-only switch.
    pub(crate) fn finish(self, rules: &mut NamespaceRules, section: &Rule) {
        for (key, (action, origin)) in self.actions {
            let rule = if key == "not-owned" {
                &mut rules.not_owned
            } else {
                &mut rules.unverified
            };
            rule.action = action;
            rule.origin = Some(origin);
        }
        rules.required = self.required;
        rules.not_owned.report_only = section.report_only;
        rules.unverified.report_only = section.report_only;
    }
}

/// What the rules say of the grants upstream lists for `project`. A namespace the policy
/// requires to be owned is checked first: its absence is what a squatted name or an index
/// without PEP 752 looks like, and both fail closed by default. A name a `[[private]]` section
/// routes (`routed_private`) is exempt: it is only ever fetched from the private upstream,
/// which vouches for it (and seldom speaks PEP 752).
pub(crate) fn page_hit<'a>(
    rules: &'a NamespaceRules,
    project: &str,
    routed_private: bool,
    grants: &[Namespace],
) -> Option<Hit<'a>> {
    if let Some((ns, origin)) = rules.required_for(project)
        && !rules.unverified.is_off()
        && !routed_private
    {
        let covering: Vec<&Namespace> = grants
            .iter()
            .filter(|g| in_namespace(project, &g.name))
            .collect();
        if !covering.iter().any(|g| g.owned) {
            let detail = match covering.first() {
                Some(g) => format!(
                    "`{ns}` is required to be owned; upstream lists the grant `{}` as not held by the project's owner",
                    g.name
                ),
                None if grants.is_empty() => format!(
                    "`{ns}` is required to be owned; upstream lists no namespace grant for the project (it may not speak PEP 752)"
                ),
                None => format!(
                    "`{ns}` is required to be owned; upstream lists no grant covering the project"
                ),
            };
            return Some(Hit {
                origin: Some(origin.clone()),
                ..Hit::of(
                    RuleId::Namespaces,
                    &rules.unverified,
                    Code::NamespaceUnverified,
                    detail,
                )
            });
        }
    }
    let unowned = grants.iter().find(|g| !g.owned)?;
    if rules.not_owned.is_off() {
        return None;
    }
    Some(Hit::of(
        RuleId::Namespaces,
        &rules.not_owned,
        Code::NamespaceNotOwned,
        format!(
            "upstream lists it in the namespace `{}`, whose grant its owner does not hold",
            unowned.name
        ),
    ))
}
