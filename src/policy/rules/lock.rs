//! `[lock]`: lock files whose pins are the only files shown (`outside`: what happens to the
//! rest), and how a project no lock names is answered.

use crate::policy::check::ProjectHit;
use crate::policy::check::{FileFacts, FileHits, Hit};
use crate::policy::decision::Code;
use crate::policy::rule::RuleId;
use std::ops::Range;
use std::path::PathBuf;

use crate::data::lock::{LockError, LockSet, LockedProject};
use crate::policy::decision::Blocked;
use crate::policy::diag::{Diagnostic, Origin, Severity};
use crate::policy::rule::{Rule, RuleAction};
use crate::policy::walk::{Spot, Val, Walk};

pub(crate) const KEYS: &[&str] = &["files", "outside", "blocked"];

#[derive(Default)]
pub(crate) struct Raw {
    files: Vec<(PathBuf, Spot)>,
    outside: Option<(RuleAction, Origin)>,
    blocked: Option<Blocked>,
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
            "files" => {
                for (s, span) in w.string_list(v, what) {
                    let spot = w.spot(&span);
                    if let Some(path) = w.path(&s, &span) {
                        self.files.push((path, spot));
                    }
                }
            }
            "outside" => {
                if let Some(a) = w.action(v, what) {
                    self.outside = Some((a, w.origin(kspan)));
                }
            }
            "blocked" => self.blocked = Blocked::read(w, v, what).or(self.blocked),
            _ => {}
        }
    }

    /// The pins, what happens to files outside them (`lock`: the section's own rule, whose
    /// report-only switch and line the `outside` rule inherits), and how a project no lock
    /// names is answered.
    pub(crate) fn finish(
        self,
        diags: &mut Vec<Diagnostic>,
        lock: &Rule,
    ) -> (Option<LockSet>, Rule, Blocked) {
        let mut set = None;
        if let Some((_, spot)) = self.files.first() {
            let paths: Vec<PathBuf> = self.files.iter().map(|(p, _)| p.clone()).collect();
            match LockSet::load(&paths) {
                Ok(loaded) => {
                    for w in loaded.warnings() {
                        diags.push(Diagnostic {
                            file: w.file.clone(),
                            line: w.line.max(1),
                            col: 1,
                            severity: Severity::Warning,
                            code: "lock-outside-index",
                            message: w.message.clone(),
                        });
                    }
                    set = Some(loaded);
                }
                Err(e) => {
                    for (file, line, message) in problems(&e) {
                        diags.push(Diagnostic {
                            file: file.unwrap_or_else(|| spot.file.clone()),
                            line: line.unwrap_or(spot.line),
                            col: if line.is_some() { 1 } else { spot.col },
                            severity: Severity::Error,
                            code: "lock-file",
                            message,
                        });
                    }
                }
            }
        }
        let outside = match self.outside {
            Some((a, o)) => Rule {
                action: a,
                report_only: lock.report_only,
                origin: Some(o),
            },
            None => Rule {
                origin: lock.origin.clone(),
                ..Rule::new(RuleAction::Hide)
            },
        };
        (set, outside, self.blocked.unwrap_or(Blocked::NotFound))
    }
}

/// `(file, line, message)` for each problem a lock file load reported.
fn problems(e: &LockError) -> Vec<(Option<String>, Option<usize>, String)> {
    match e {
        LockError::Invalid { problems } => problems
            .iter()
            .map(|p| (Some(p.file.clone()), Some(p.line), p.message.clone()))
            .collect(),
        other => vec![(None, None, other.to_string())],
    }
}

/// A file the project's pins (`locked`, when a lock names the project) do not name.
pub(crate) fn file_hits<'a>(
    rule: &'a Rule,
    locked: Option<&LockedProject>,
    f: &FileFacts<'a>,
) -> FileHits<'a> {
    match locked {
        Some(locked) if !rule.is_off() && !locked.pins_file(&f.file.filename, &f.file.hashes) => {
            vec![(
                Hit::of(
                    RuleId::Lock,
                    rule,
                    Code::NotInLock,
                    format!("pinned from {}", locked.origin),
                ),
                f.base,
            )]
        }
        _ => Vec::new(),
    }
}

/// A project no lock names (`outside`: the rule for those).
pub(crate) fn project_hits<'a>(
    outside: &'a Rule,
    set: Option<&LockSet>,
    blocked: Blocked,
    name: &str,
) -> Vec<ProjectHit<'a>> {
    match set {
        Some(set) if !outside.is_off() && set.project(name).is_none() => vec![ProjectHit {
            rule: outside,
            id: RuleId::Lock,
            code: Code::ProjectNotInLock,
            detail: String::new(),
            origin: outside.origin.clone(),
            style: blocked,
        }],
        _ => Vec::new(),
    }
}
