//! `pipwall audit`: wheels audited offline, as text, JSON or SARIF.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::Exit;

/// The flags of `pipwall audit`.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Wheel files, or folders searched for `*.whl`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// `text` for people, `json` for tools, `sarif` for code scanning.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub format: AuditFormat,
    /// Wheels audited at once (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(args: AuditArgs) -> Result<Exit> {
    let AuditArgs {
        paths,
        format,
        jobs,
    } = args;
    audit(&paths, format, jobs)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for code-scanning tools: one result per finding.
    Sarif,
}

/// Every wheel named on the command line or found (recursively) in a named folder, sorted so
/// reports come in a stable order.
pub fn wheel_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            for entry in
                std::fs::read_dir(&p).with_context(|| format!("cannot list {}", p.display()))?
            {
                let path = entry?.path();
                if path.is_dir() || path.extension().is_some_and(|e| e == "whl") {
                    stack.push(path);
                }
            }
        } else {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

pub fn audit(paths: &[PathBuf], format: AuditFormat, jobs: Option<usize>) -> Result<Exit> {
    use crate::audit::{self, Report, Verdict};
    let wheels = wheel_paths(paths)?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, wheels.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let limits = audit::ArchiveLimits::default();
    let mut results: Vec<Option<Result<Report>>> = (0..wheels.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    // Drawn on a terminal only: in a pipe or CI log it stays silent.
    let progress = indicatif::ProgressBar::with_draw_target(
        Some(wheels.len() as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} wheels {elapsed} {msg}")
    {
        progress.set_style(style);
    }
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = wheels.get(i) else { break };
                    let filename = path
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let report = audit::audit_file(path, &filename, None, &limits)
                        .with_context(|| format!("cannot audit {}", path.display()));
                    if let Ok(mut slots) = slots.lock()
                        && let Some(slot) = slots.get_mut(i)
                    {
                        *slot = Some(report);
                    }
                    progress.set_message(filename);
                    progress.inc(1);
                }
            });
        }
    });
    progress.finish_and_clear();
    let mut reports = Vec::with_capacity(results.len());
    for r in results.into_iter().flatten() {
        reports.push(r?);
    }
    match format {
        AuditFormat::Json => {
            let doc = serde_json::json!({ "auditor": audit::AUDITOR, "reports": reports });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
        AuditFormat::Sarif => {
            // One result per finding, on the wheel file as given; the member is in the text.
            let results = reports.iter().zip(&wheels).flat_map(|(r, path)| {
                r.findings.iter().map(move |f| {
                    let member = if f.file.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", f.file)
                    };
                    crate::policy::diag::SarifResult {
                        rule: f.code.as_str(),
                        level: if f.hides { "error" } else { "note" },
                        message: format!("{}: {member}{}", r.wheel, f.detail),
                        file: path.to_str().unwrap_or(&r.wheel),
                        region: None,
                    }
                })
            });
            let doc = crate::policy::diag::sarif_log(results);
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        }
        AuditFormat::Text => {
            for r in &reports {
                let verdict = match r.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "FAIL",
                };
                outln!("{verdict}  {}  (sha256 {})", r.wheel, r.sha256);
                for f in &r.findings {
                    let mark = if f.hides { "hides" } else { "note " };
                    let file = if f.file.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", f.file)
                    };
                    outln!("  {mark} {}  {file}{}", f.code, f.detail);
                }
            }
            let failed = reports
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .count();
            outln!("{} wheels audited, {failed} failed", reports.len());
        }
    }
    Ok(if reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Exit::Findings
    } else {
        Exit::Ok
    })
}
