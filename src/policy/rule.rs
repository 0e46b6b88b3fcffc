//! A rule's identity and switch: the name its section has in a policy file ([`RuleId`]), what
//! it does to a file it matches ([`RuleAction`]) and the line that set it ([`Rule`]). A leaf
//! below the loader, the rules and the decisions that name them.

use serde::Serialize;

use super::diag::Origin;

/// What a rule does to a file it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    /// Not listed: the resolver falls back to another file or version.
    Hide,
    /// Listed, and the decision is logged as a warning.
    Warn,
    /// Listed but marked yanked (PEP 592) with the rule's code and sentence as the reason:
    /// resolvers pass over it unless it is pinned with `==`, and print why when it is. A soft
    /// block people can see from pip itself.
    Yank,
    /// The rule is off.
    Allow,
}

impl RuleAction {
    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "hide" => Some(Self::Hide),
            "warn" => Some(Self::Warn),
            "yank" => Some(Self::Yank),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// One rule's switch: its action, whether it only reports, and the line that set them.
#[derive(Clone, Debug)]
pub struct Rule {
    pub action: RuleAction,
    pub report_only: bool,
    pub origin: Option<Origin>,
}

impl Rule {
    pub(super) const fn new(action: RuleAction) -> Self {
        Self {
            action,
            report_only: false,
            origin: None,
        }
    }

    pub fn is_off(&self) -> bool {
        self.action == RuleAction::Allow
    }
}

/// The rules, by the name their section has in a policy file. Exceptions name the rule they
/// lift with these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    Projects,
    Sdists,
    Versions,
    Tags,
    Prereleases,
    Yanked,
    Size,
    Cooldown,
    Lock,
    Advisories,
    Malware,
    Audit,
    ProjectStatus,
    Unmaintained,
    Licenses,
    Typosquat,
    Namespaces,
    Attestations,
    Health,
}

impl RuleId {
    pub const ALL: &[RuleId] = &[
        RuleId::Projects,
        RuleId::Sdists,
        RuleId::Versions,
        RuleId::Tags,
        RuleId::Prereleases,
        RuleId::Yanked,
        RuleId::Size,
        RuleId::Cooldown,
        RuleId::Lock,
        RuleId::Advisories,
        RuleId::Malware,
        RuleId::Audit,
        RuleId::ProjectStatus,
        RuleId::Unmaintained,
        RuleId::Licenses,
        RuleId::Typosquat,
        RuleId::Namespaces,
        RuleId::Attestations,
        RuleId::Health,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Projects => "projects",
            RuleId::Sdists => "sdists",
            RuleId::Versions => "versions",
            RuleId::Tags => "tags",
            RuleId::Prereleases => "prereleases",
            RuleId::Yanked => "yanked",
            RuleId::Size => "size",
            RuleId::Cooldown => "cooldown",
            RuleId::Lock => "lock",
            RuleId::Advisories => "advisories",
            RuleId::Malware => "malware",
            RuleId::Audit => "audit",
            RuleId::ProjectStatus => "project-status",
            RuleId::Unmaintained => "unmaintained",
            RuleId::Licenses => "licenses",
            RuleId::Typosquat => "typosquat",
            RuleId::Namespaces => "namespaces",
            RuleId::Attestations => "attestations",
            RuleId::Health => "health",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }
}
