//! `pipwall policy`: check policy files, and add reviewed exceptions to them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use clap::ValueEnum;

use super::Exit;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate policy files as `serve` would load them (merged in order): every problem with
    /// file:line:col. Exits 1 on any error.
    Check {
        /// Policy files (TOML), merged in the order given; see policies/template.toml.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `text` (`file:line:col: error[code]: message`), `json`, or `sarif` (SARIF 2.1.0, for
        /// code-scanning tools).
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Add an exception (`[[exceptions]]`) to a policy file, after checking that the file
    /// still loads with it; the file is left untouched otherwise. Take the project, code and
    /// sha256 from `pipwall explain`, e.g. `pipwall policy waive demo --code cooldown-too-new
    /// --versions ==1.2 --reason "fix for CVE-…" --expires 2027-01-31 --to policies/local.toml`.
    Waive {
        /// The project (a name or a glob).
        project: String,
        /// Why this is acceptable; required, and kept in the policy for the next reader.
        #[arg(long)]
        reason: String,
        /// A decision code from `explain` or the decision log (e.g. `cooldown-too-new`): lifts
        /// the rule behind it. An audit finding code (e.g. `abi3-newer-than-tag`) lifts only that finding.
        #[arg(long)]
        code: Option<String>,
        /// A rule to lift (repeatable): projects, sdists, versions, tags, prereleases, yanked,
        /// size, cooldown, lock, advisories, malware, audit, project-status, unmaintained,
        /// licenses, typosquat, namespaces, attestations, health. Default: the rule behind --code.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// Only these versions (PEP 440 specifiers, e.g. `==1.2` or `>=2,<3`).
        #[arg(long)]
        versions: Option<String>,
        /// Only the file with this sha256.
        #[arg(long)]
        sha256: Option<String>,
        /// Only this advisory or malware record (or one of its aliases).
        #[arg(long)]
        id: Option<String>,
        /// From the day after this date (YYYY-MM-DD) the exception no longer applies.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// The policy file to add it to (created if missing); without it, the entry is printed.
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Sarif,
}

pub fn run(command: PolicyCommand) -> Result<Exit> {
    match command {
        PolicyCommand::Check { files, format } => {
            let (ok, diags) = match crate::policy::load_files(&files) {
                Ok((_, warnings)) => (true, warnings),
                Err(e) => (false, e.0),
            };
            match format {
                CheckFormat::Text => {
                    for d in &diags {
                        outln!("{d}");
                    }
                    let errors = diags
                        .iter()
                        .filter(|d| d.severity == crate::policy::Severity::Error)
                        .count();
                    if ok {
                        eprintln!(
                            "policy ok ({} file(s), {} warning(s))",
                            files.len(),
                            diags.len()
                        );
                    } else {
                        eprintln!("{errors} error(s)");
                    }
                }
                CheckFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"ok": ok, "problems": diags})
                    )?
                ),
                CheckFormat::Sarif => outln!(
                    "{}",
                    serde_json::to_string_pretty(&crate::policy::diag::sarif(&diags))?
                ),
            }
            Ok(if ok { Exit::Ok } else { Exit::Findings })
        }
        PolicyCommand::Waive {
            project,
            reason,
            code,
            rules,
            versions,
            sha256,
            id,
            expires,
            to,
        } => {
            use crate::policy::waive::{WaiveError, Waiver, add_to, errors};
            let waiver = Waiver {
                project,
                rules,
                code,
                versions,
                sha256,
                id,
                reason,
                expires,
            };
            // Without --to, the entry is checked in a scratch file and printed.
            let scratch = tempfile::tempdir()?;
            let print_only = to.is_none();
            let file = to.unwrap_or_else(|| scratch.path().join("waive.toml"));
            match add_to(&file, &waiver) {
                Ok((entry, _)) if print_only => {
                    out!("{}", entry.trim_start());
                    Ok(Exit::Ok)
                }
                Ok((entry, _)) => {
                    eprint!("added to {}:\n{}", file.display(), entry.trim_start());
                    Ok(Exit::Ok)
                }
                Err(WaiveError::Invalid(diags)) => {
                    for d in errors(&diags) {
                        eprintln!("{d}");
                    }
                    eprintln!("nothing was written: the exception would not load");
                    Ok(Exit::Findings)
                }
                Err(e) => {
                    eprintln!("{e}; nothing was written");
                    Ok(Exit::Findings)
                }
            }
        }
    }
}
