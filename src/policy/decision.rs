//! Decision vocabulary: actions and stable reason codes.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Show,
    Hide,
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
}

impl Decision {
    pub fn show() -> Self {
        Self {
            action: Action::Show,
            code: Code::WheelShown,
            detail: String::new(),
        }
    }

    pub fn hide(code: Code, detail: impl Into<String>) -> Self {
        Self {
            action: Action::Hide,
            code,
            detail: detail.into(),
        }
    }

    /// The sentence shown to people: the code's description, then the detail.
    pub fn sentence(&self) -> String {
        if self.detail.is_empty() {
            self.code.description().to_owned()
        } else {
            format!("{}: {}", self.code.description(), self.detail)
        }
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
            ]
        );
        for c in Code::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
