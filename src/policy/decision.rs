//! Decision vocabulary: actions and stable reason codes.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Show,
    Hide,
    /// Shown, and logged as a warning (a rule whose action is `warn`).
    Warn,
    /// Shown because the rule (or the whole policy) is report-only; it would have been hidden
    /// (or yanked).
    WouldHide,
    /// Listed, marked yanked with the decision as the reason (a rule whose action is `yank`).
    Yank,
}

impl Action {
    /// Whether installers see the file.
    pub fn shows(self) -> bool {
        self != Action::Hide
    }
}

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

/// Stable, kebab-case reason codes. Renaming one breaks users' log queries and policies, so the
/// full list is pinned by a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A wheel that passed every rule.
    WheelShown,
    SdistHidden,
    NotADistribution,
    InvalidWheelFilename,
    UnsafeFilename,
    WrongProject,
    InvalidEntry,
    MissingSha256,
    DuplicateFilename,
    /// The wheel's contents contradict what it claims (see the audit report).
    AuditFailed,
    /// The audit had not finished when the page was answered; the next answer may list it.
    AuditPending,
    /// The wheel could not be audited (download failed, bytes not as promised): fail closed.
    AuditError,
    /// Listed before its audit (`[audit] listing = "held"`): its download waits for the audit,
    /// and is refused if it fails.
    AuditHeld,
    /// No installer environment pipwall knows (declared or seen) can install the wheel, so it
    /// was not fetched; listed held, or not listed under `listing = "audited"`.
    AuditNotDemanded,
    ProjectDenied,
    ProjectNotAllowed,
    ProjectNotInLock,
    NotInLock,
    Malicious,
    Vulnerable,
    AdvisoryDataStale,
    VersionExcluded,
    Prerelease,
    Yanked,
    TagNotAllowed,
    TooLarge,
    CooldownTooNew,
    UploadTimeMissing,
    AllowedByException,
    ProjectQuarantined,
    ProjectArchived,
    ProjectDeprecated,
    Unmaintained,
    VersionLimit,
    LicenseDenied,
    LicenseNotAllowed,
    LicenseUnknown,
    Typosquat,
    NamespaceNotOwned,
    NamespaceUnverified,
    AttestationMissing,
    AttestationInvalid,
    AttestationPublisherMismatch,
    HealthScoreLow,
    HealthCheckLow,
    HealthScoreMissing,
    HealthDataStale,
}

impl Code {
    pub const ALL: &[Code] = &[
        Code::WheelShown,
        Code::SdistHidden,
        Code::NotADistribution,
        Code::InvalidWheelFilename,
        Code::UnsafeFilename,
        Code::WrongProject,
        Code::InvalidEntry,
        Code::MissingSha256,
        Code::DuplicateFilename,
        Code::AuditFailed,
        Code::AuditPending,
        Code::AuditError,
        Code::AuditHeld,
        Code::AuditNotDemanded,
        Code::ProjectDenied,
        Code::ProjectNotAllowed,
        Code::ProjectNotInLock,
        Code::NotInLock,
        Code::Malicious,
        Code::Vulnerable,
        Code::AdvisoryDataStale,
        Code::VersionExcluded,
        Code::Prerelease,
        Code::Yanked,
        Code::TagNotAllowed,
        Code::TooLarge,
        Code::CooldownTooNew,
        Code::UploadTimeMissing,
        Code::AllowedByException,
        Code::ProjectQuarantined,
        Code::ProjectArchived,
        Code::ProjectDeprecated,
        Code::Unmaintained,
        Code::VersionLimit,
        Code::LicenseDenied,
        Code::LicenseNotAllowed,
        Code::LicenseUnknown,
        Code::Typosquat,
        Code::NamespaceNotOwned,
        Code::NamespaceUnverified,
        Code::AttestationMissing,
        Code::AttestationInvalid,
        Code::AttestationPublisherMismatch,
        Code::HealthScoreLow,
        Code::HealthCheckLow,
        Code::HealthScoreMissing,
        Code::HealthDataStale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::WheelShown => "wheel-shown",
            Code::SdistHidden => "sdist-hidden",
            Code::NotADistribution => "not-a-distribution",
            Code::InvalidWheelFilename => "invalid-wheel-filename",
            Code::UnsafeFilename => "unsafe-filename",
            Code::WrongProject => "wrong-project",
            Code::InvalidEntry => "invalid-entry",
            Code::MissingSha256 => "missing-sha256",
            Code::DuplicateFilename => "duplicate-filename",
            Code::AuditFailed => "audit-failed",
            Code::AuditPending => "audit-pending",
            Code::AuditError => "audit-error",
            Code::AuditHeld => "audit-held",
            Code::AuditNotDemanded => "audit-not-demanded",
            Code::ProjectDenied => "project-denied",
            Code::ProjectNotAllowed => "project-not-allowed",
            Code::ProjectNotInLock => "project-not-in-lock",
            Code::NotInLock => "not-in-lock",
            Code::Malicious => "malicious",
            Code::Vulnerable => "vulnerable",
            Code::AdvisoryDataStale => "advisory-data-stale",
            Code::VersionExcluded => "version-excluded",
            Code::Prerelease => "prerelease",
            Code::Yanked => "yanked",
            Code::TagNotAllowed => "tag-not-allowed",
            Code::TooLarge => "too-large",
            Code::CooldownTooNew => "cooldown-too-new",
            Code::UploadTimeMissing => "upload-time-missing",
            Code::AllowedByException => "allowed-by-exception",
            Code::ProjectQuarantined => "project-quarantined",
            Code::ProjectArchived => "project-archived",
            Code::ProjectDeprecated => "project-deprecated",
            Code::Unmaintained => "unmaintained",
            Code::VersionLimit => "version-limit",
            Code::LicenseDenied => "license-denied",
            Code::LicenseNotAllowed => "license-not-allowed",
            Code::LicenseUnknown => "license-unknown",
            Code::Typosquat => "typosquat",
            Code::NamespaceNotOwned => "namespace-not-owned",
            Code::NamespaceUnverified => "namespace-unverified",
            Code::AttestationMissing => "attestation-missing",
            Code::AttestationInvalid => "attestation-invalid",
            Code::AttestationPublisherMismatch => "attestation-publisher-mismatch",
            Code::HealthScoreLow => "health-score-low",
            Code::HealthCheckLow => "health-check-low",
            Code::HealthScoreMissing => "health-score-missing",
            Code::HealthDataStale => "health-data-stale",
        }
    }

    /// One sentence for people: what the code means and why pipwall acts on it.
    pub fn description(self) -> &'static str {
        match self {
            Code::WheelShown => "a wheel that passed every check",
            Code::SdistHidden => {
                "source distributions are hidden: building one runs its setup code on the installing machine"
            }
            Code::NotADistribution => "the file is neither a wheel nor a source distribution",
            Code::InvalidWheelFilename => {
                "the wheel's filename does not follow PEP 427 and PEP 425"
            }
            Code::UnsafeFilename => {
                "the filename could act as a path (separators, `..`, control characters)"
            }
            Code::WrongProject => {
                "the file belongs to another project than the page it is listed on"
            }
            Code::InvalidEntry => "the upstream page's entry for this file could not be read",
            Code::MissingSha256 => {
                "the upstream index gives no sha256 for the file, so its bytes cannot be checked"
            }
            Code::DuplicateFilename => "the upstream page lists this filename more than once",
            Code::AuditFailed => "the wheel's contents contradict what it claims",
            Code::AuditPending => {
                "the wheel's audit had not finished in time; it is listed once it passes"
            }
            Code::AuditError => {
                "the wheel could not be audited, and a wheel that was not vetted is not shown"
            }
            Code::AuditHeld => {
                "not audited yet: listed, and its download waits for its audit (refused if it fails)"
            }
            Code::AuditNotDemanded => {
                "no installer environment pipwall knows can install this wheel, so it was not fetched or audited yet"
            }
            Code::ProjectDenied => "the project is on the policy's deny-list",
            Code::ProjectNotAllowed => {
                "the policy allows only listed projects, and this one is not listed"
            }
            Code::ProjectNotInLock => "the project is not pinned by the policy's lock files",
            Code::NotInLock => "the lock files pin other files of this project, not this one",
            Code::Malicious => "a malware report names this file or version",
            Code::Vulnerable => "a known vulnerability affects this version",
            Code::AdvisoryDataStale => {
                "the advisory or malware data is older than the policy allows, so nothing can be vetted against it"
            }
            Code::VersionExcluded => "the policy's version rules exclude this version",
            Code::Prerelease => "pre-releases are hidden by the policy",
            Code::Yanked => "the file is yanked upstream and the policy hides yanked files",
            Code::TagNotAllowed => {
                "none of the wheel's tags is on the policy's allowed python, ABI and platform lists"
            }
            Code::TooLarge => "the file is larger than the policy's maximum size",
            Code::CooldownTooNew => "the file is newer than the policy's cooldown allows",
            Code::UploadTimeMissing => {
                "the index gives no upload time for the file, so its age cannot be checked"
            }
            Code::AllowedByException => {
                "a rule would hide the file, and a policy exception lifts it"
            }
            Code::ProjectQuarantined => {
                "the upstream index quarantines the project (PEP 792), usually while a malware report is reviewed"
            }
            Code::ProjectArchived => {
                "the upstream index marks the project archived (PEP 792): no updates are expected, security fixes included"
            }
            Code::ProjectDeprecated => {
                "the upstream index marks the project deprecated (PEP 792): its owners advise against new use"
            }
            Code::Unmaintained => {
                "the project's newest upload is older than the policy's maximum age: it may no longer be maintained"
            }
            Code::VersionLimit => {
                "the policy shows only a project's newest versions, and this one is older"
            }
            Code::LicenseDenied => {
                "the wheel's license cannot be met without a license the policy denies"
            }
            Code::LicenseNotAllowed => {
                "the wheel's license cannot be met with the licenses the policy allows"
            }
            Code::LicenseUnknown => "the wheel's metadata gives no license pipwall can read",
            Code::Typosquat => {
                "the project's name is one slip away from a well-known project's, the trick typosquats use to catch a mistyped install"
            }
            Code::NamespaceNotOwned => {
                "the upstream index lists the project in a namespace (PEP 752) whose grant its owner does not hold"
            }
            Code::NamespaceUnverified => {
                "the project's name falls in a namespace the policy requires to be owned, and the upstream index lists no grant of it held by the project's owner"
            }
            Code::AttestationMissing => {
                "the policy requires the project's files to be attested by a named publisher (PEP 740), and this file has no attestation pipwall could check"
            }
            Code::AttestationInvalid => {
                "the file's attestations (PEP 740) did not verify: none proves who published it"
            }
            Code::AttestationPublisherMismatch => {
                "the file's attestation verified, but names a publisher the policy does not accept for this project"
            }
            Code::HealthScoreLow => {
                "the project's OpenSSF Scorecard score, how many of the practices that keep a repository safe to depend on it follows, is below the policy's minimum"
            }
            Code::HealthCheckLow => {
                "an OpenSSF Scorecard check of the project's repository scores below the minimum the policy sets for it"
            }
            Code::HealthScoreMissing => {
                "the Scorecard data has no score the policy needs for the project, so its health cannot be judged"
            }
            Code::HealthDataStale => {
                "the OpenSSF Scorecard data is older than the policy allows, so its scores may no longer describe the projects"
            }
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on one file: the action and the reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub code: Code,
    /// Specific to this file (the parse error, the other project's name, …).
    pub detail: String,
    /// The policy line that made the decision; `None` for the built-in filename rules.
    pub origin: Option<super::diag::Origin>,
}

impl Decision {
    pub fn show() -> Self {
        Self {
            action: Action::Show,
            code: Code::WheelShown,
            detail: String::new(),
            origin: None,
        }
    }

    pub fn hide(code: Code, detail: impl Into<String>) -> Self {
        Self {
            action: Action::Hide,
            code,
            detail: detail.into(),
            origin: None,
        }
    }

    pub fn with_origin(mut self, origin: Option<super::diag::Origin>) -> Self {
        self.origin = origin;
        self
    }

    /// The PEP 592 yank reason a `yank` decision puts on the served file: the code first, so
    /// the line pip prints can be searched in the decision log and the policy.
    pub fn yank_reason(&self) -> String {
        format!("pipwall {}: {}", self.code, self.sentence())
    }

    /// The sentence shown to people: the code's description, the detail, and the policy line.
    pub fn sentence(&self) -> String {
        let mut s = self.code.description().to_owned();
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        if self.action == Action::WouldHide {
            s.push_str(" (report-only: shown)");
        }
        if let Some(o) = &self.origin {
            s.push_str(&format!(" [policy {o}]"));
        }
        s
    }
}

impl Code {
    /// The policy rule whose decisions carry this code; `None` for the built-in filename and
    /// integrity rules, which no exception lifts.
    pub fn rule(self) -> Option<super::rule::RuleId> {
        use super::rule::RuleId;
        Some(match self {
            Code::SdistHidden => RuleId::Sdists,
            Code::AuditFailed
            | Code::AuditPending
            | Code::AuditError
            | Code::AuditHeld
            | Code::AuditNotDemanded => RuleId::Audit,
            Code::ProjectDenied | Code::ProjectNotAllowed => RuleId::Projects,
            Code::ProjectNotInLock | Code::NotInLock => RuleId::Lock,
            Code::Malicious => RuleId::Malware,
            Code::Vulnerable => RuleId::Advisories,
            Code::VersionExcluded | Code::VersionLimit => RuleId::Versions,
            Code::Prerelease => RuleId::Prereleases,
            Code::Yanked => RuleId::Yanked,
            Code::TagNotAllowed => RuleId::Tags,
            Code::TooLarge => RuleId::Size,
            Code::CooldownTooNew | Code::UploadTimeMissing => RuleId::Cooldown,
            Code::ProjectQuarantined | Code::ProjectArchived | Code::ProjectDeprecated => {
                RuleId::ProjectStatus
            }
            Code::Unmaintained => RuleId::Unmaintained,
            Code::Typosquat => RuleId::Typosquat,
            Code::NamespaceNotOwned | Code::NamespaceUnverified => RuleId::Namespaces,
            Code::AttestationMissing
            | Code::AttestationInvalid
            | Code::AttestationPublisherMismatch => RuleId::Attestations,
            Code::HealthScoreLow
            | Code::HealthCheckLow
            | Code::HealthScoreMissing
            | Code::HealthDataStale => RuleId::Health,
            Code::LicenseDenied | Code::LicenseNotAllowed | Code::LicenseUnknown => {
                RuleId::Licenses
            }
            // Stale data is judged per feed (advisories or malware): the waiver names the rule.
            Code::AdvisoryDataStale
            | Code::WheelShown
            | Code::NotADistribution
            | Code::InvalidWheelFilename
            | Code::UnsafeFilename
            | Code::WrongProject
            | Code::InvalidEntry
            | Code::MissingSha256
            | Code::DuplicateFilename
            | Code::AllowedByException => return None,
        })
    }

    pub fn from_name(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let names: Vec<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "wheel-shown",
                "sdist-hidden",
                "not-a-distribution",
                "invalid-wheel-filename",
                "unsafe-filename",
                "wrong-project",
                "invalid-entry",
                "missing-sha256",
                "duplicate-filename",
                "audit-failed",
                "audit-pending",
                "audit-error",
                "audit-held",
                "audit-not-demanded",
                "project-denied",
                "project-not-allowed",
                "project-not-in-lock",
                "not-in-lock",
                "malicious",
                "vulnerable",
                "advisory-data-stale",
                "version-excluded",
                "prerelease",
                "yanked",
                "tag-not-allowed",
                "too-large",
                "cooldown-too-new",
                "upload-time-missing",
                "allowed-by-exception",
                "project-quarantined",
                "project-archived",
                "project-deprecated",
                "unmaintained",
                "version-limit",
                "license-denied",
                "license-not-allowed",
                "license-unknown",
                "typosquat",
                "namespace-not-owned",
                "namespace-unverified",
                "attestation-missing",
                "attestation-invalid",
                "attestation-publisher-mismatch",
                "health-score-low",
                "health-check-low",
                "health-score-missing",
                "health-data-stale",
            ]
        );
        for c in Code::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
