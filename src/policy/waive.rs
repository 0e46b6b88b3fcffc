//! `pipwall policy waive`: writes an `[[exceptions]]` entry for a decision someone has looked at
//! and accepted, so the exception is a reviewed line in a policy file (a pull request), never a
//! switch flipped on the server. The entry is checked by the same loader `serve` uses before the
//! file is touched, and the file is replaced whole (temp file + rename): a failed waive leaves
//! the policy as it was.

use std::path::{Path, PathBuf};

use super::config::{PolicyError, load_sources};
use super::decision::Code;
use super::diag::{Diagnostic, Severity};
use super::rule::RuleId;

/// What to lift, for what, and why.
#[derive(Clone, Debug, Default)]
pub struct Waiver {
    pub project: String,
    /// Rule names as the policy spells them; empty: the rule that gives `code`.
    pub rules: Vec<String>,
    /// A decision code from `explain` or the decision log; also narrows audit exceptions.
    pub code: Option<String>,
    pub versions: Option<String>,
    pub sha256: Option<String>,
    /// An advisory or malware record id.
    pub id: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`.
    pub expires: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WaiveError {
    #[error("decision code `{0}` is not one pipwall gives (see `pipwall explain`)")]
    UnknownCode(String),
    #[error(
        "`{0}` is decided by pipwall's built-in rules (a file that cannot be read or checked), not by a policy rule: no exception can lift it"
    )]
    NotWaivable(String),
    #[error("say which rule to lift: --rule NAME (one of {0}) or --code CODE")]
    NoRule(String),
    #[error("--expires: `{0}` is not a date (write YYYY-MM-DD)")]
    BadDate(String),
    #[error("the exception would not load")]
    Invalid(Vec<Diagnostic>),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An audit finding's code (`abi3-newer-than-tag`), as against a decision's (`audit-failed`).
fn is_finding_code(code: &str) -> bool {
    crate::audit::FindingCode::ALL
        .iter()
        .any(|c| c.as_str() == code)
}

/// A TOML basic string, escaped.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

impl Waiver {
    /// The rules the entry lifts: as given, else the one behind `code`.
    fn rule_names(&self) -> Result<Vec<String>, WaiveError> {
        if !self.rules.is_empty() {
            return Ok(self.rules.clone());
        }
        let Some(code) = &self.code else {
            let names: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
            return Err(WaiveError::NoRule(names.join(", ")));
        };
        if is_finding_code(code) {
            return Ok(vec![RuleId::Audit.as_str().to_owned()]);
        }
        let parsed = Code::from_name(code).ok_or_else(|| WaiveError::UnknownCode(code.clone()))?;
        let rule = parsed
            .rule()
            .ok_or_else(|| WaiveError::NotWaivable(code.clone()))?;
        Ok(vec![rule.as_str().to_owned()])
    }

    /// The `[[exceptions]]` entry, one key per line, with the date it was written.
    pub fn to_toml(&self, today: &str) -> Result<String, WaiveError> {
        let rules = self.rule_names()?;
        let mut out = format!("\n# Added by `pipwall policy waive` on {today}.\n[[exceptions]]\n");
        let rule = match rules.as_slice() {
            [one] => quoted(one),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|r| quoted(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        out.push_str(&format!("rule = {rule}\n"));
        out.push_str(&format!("project = {}\n", quoted(&self.project)));
        if let Some(v) = &self.versions {
            out.push_str(&format!("versions = {}\n", quoted(v)));
        }
        if let Some(s) = &self.sha256 {
            out.push_str(&format!("sha256 = {}\n", quoted(s)));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id = {}\n", quoted(id)));
        }
        // A code narrows only what codes tell apart (audit findings); for the other rules the
        // rule is the scope, and the code would only be noise.
        if let Some(code) = &self.code
            && rules.iter().any(|r| r == "audit")
            && is_finding_code(code)
        {
            out.push_str(&format!("code = {}\n", quoted(code)));
        }
        out.push_str(&format!("reason = {}\n", quoted(&self.reason)));
        if let Some(e) = &self.expires {
            // Written as a TOML date, unquoted: only a date may be written so.
            let date: jiff::civil::Date = e.parse().map_err(|_| WaiveError::BadDate(e.clone()))?;
            out.push_str(&format!("expires = {date}\n"));
        }
        Ok(out)
    }
}

/// Appends the waiver to `file` (created if missing) once the whole file, with it, loads
/// without an error. Returns the entry written and the loader's warnings.
pub fn add_to(file: &Path, waiver: &Waiver) -> Result<(String, Vec<Diagnostic>), WaiveError> {
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let entry = waiver.to_toml(&today)?;
    let old = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(WaiveError::Read {
                path: file.to_owned(),
                source,
            });
        }
    };
    let mut text = old;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&entry);
    let warnings = match load_sources(&[(file.display().to_string(), text.clone())]) {
        Ok((_, warnings)) => warnings,
        Err(PolicyError(diags)) => return Err(WaiveError::Invalid(diags)),
    };
    write_atomically(file, text.as_bytes()).map_err(|source| WaiveError::Write {
        path: file.to_owned(),
        source,
    })?;
    Ok((entry, warnings))
}

/// Only the entry's own problems matter to the person waiving; the file's older warnings are
/// theirs to see with `policy check`.
pub fn errors(diags: &[Diagnostic]) -> impl Iterator<Item = &Diagnostic> {
    diags.iter().filter(|d| d.severity == Severity::Error)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiver() -> Waiver {
        Waiver {
            project: "demo".into(),
            code: Some("cooldown-too-new".into()),
            versions: Some("==1.2".into()),
            reason: "security fix we need now; \"reviewed\" by A. B.".into(),
            expires: Some("2099-01-31".into()),
            ..Waiver::default()
        }
    }

    #[test]
    fn every_policy_code_maps_to_a_rule_the_loader_knows() {
        for code in Code::ALL {
            if let Some(rule) = code.rule() {
                assert_eq!(
                    Some(rule),
                    RuleId::ALL
                        .iter()
                        .copied()
                        .find(|r| r.as_str() == rule.as_str()),
                    "{code:?}"
                );
            }
        }
        assert_eq!(Code::SdistHidden.rule(), Some(RuleId::Sdists));
        assert_eq!(Code::MissingSha256.rule(), None);
    }

    #[test]
    fn the_entry_loads_and_lifts_the_rule_behind_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.toml");
        std::fs::write(&file, "[cooldown]\nmin-age = \"7d\"").unwrap();
        let (entry, warnings) = add_to(&file, &waiver()).unwrap();
        assert!(entry.contains("rule = \"cooldown\"\n"), "{entry}");
        assert!(warnings.is_empty(), "{warnings:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("[cooldown]\nmin-age = \"7d\"\n\n# Added by"));
        let (policy, _) = crate::policy::load_files(&[file]).unwrap();
        assert_eq!(policy.exceptions.len(), 1);
        // Quotes in the reason survive TOML's quoting.
        assert_eq!(policy.exceptions[0].reason, waiver().reason);
    }

    #[test]
    fn a_bad_entry_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("local.toml");
        std::fs::write(&file, "report-only = false\n").unwrap();
        assert!(matches!(
            add_to(
                &file,
                &Waiver {
                    expires: Some("next = 1".into()),
                    ..waiver()
                }
            ),
            Err(WaiveError::BadDate(_))
        ));
        for bad in [
            Waiver {
                expires: Some("2020-01-01".into()),
                sha256: Some("xyz".into()),
                ..waiver()
            },
            Waiver {
                versions: Some("=>1".into()),
                ..waiver()
            },
            Waiver {
                reason: " ".into(),
                ..waiver()
            },
        ] {
            match add_to(&file, &bad) {
                Err(WaiveError::Invalid(d)) => assert!(errors(&d).count() > 0),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "report-only = false\n"
        );
    }

    #[test]
    fn codes_without_a_rule_are_refused_with_why() {
        let w = Waiver {
            code: Some("missing-sha256".into()),
            ..waiver()
        };
        assert!(matches!(w.to_toml("d"), Err(WaiveError::NotWaivable(_))));
        let w = Waiver {
            code: Some("nope".into()),
            ..waiver()
        };
        assert!(matches!(w.to_toml("d"), Err(WaiveError::UnknownCode(_))));
        let w = Waiver {
            code: None,
            ..waiver()
        };
        assert!(matches!(w.to_toml("d"), Err(WaiveError::NoRule(_))));
    }

    #[test]
    fn audit_finding_codes_narrow_the_exception() {
        let alone = Waiver {
            code: Some("abi3-newer-than-tag".into()),
            ..waiver()
        };
        let entry = alone.to_toml("d").unwrap();
        assert!(entry.contains("rule = \"audit\"\n"), "{entry}");
        assert!(
            entry.contains("code = \"abi3-newer-than-tag\"\n"),
            "{entry}"
        );
        let w = Waiver {
            rules: vec!["audit".into()],
            code: Some("abi3-newer-than-tag".into()),
            sha256: Some("ab".repeat(32)),
            ..waiver()
        };
        let entry = w.to_toml("d").unwrap();
        assert!(
            entry.contains("code = \"abi3-newer-than-tag\"\n"),
            "{entry}"
        );
        assert!(entry.contains(&format!("sha256 = \"{}\"\n", "ab".repeat(32))));
    }
}
