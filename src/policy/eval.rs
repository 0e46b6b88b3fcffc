//! A policy applied to one project ([`Policy::gate`]) and then to each of its files
//! ([`View::decide_file`]), and to each wheel's audit report ([`View::judge_audit`]).
//!
//! Everything that depends only on the project (its version rules, cooldown, lock pins, the
//! exceptions that name it) is looked up once per page in the gate, so a file costs a few hash
//! and glob lookups however many rules the policy has. Rules run in a fixed order; the first
//! that hides a file decides it, `warn` and report-only results are kept and the next rules
//! still run, and an exception lifts a rule for the files in its scope.

use std::cell::Cell;

use jiff::Timestamp;
use pep440_rs::{Version, VersionSpecifiers};

use super::check::{FileFacts, Hit, ProjectHit, Scope};
use super::config::{Blocked, Exception, Policy};
use super::decision::{Action, Code, Decision};
use super::diag::Origin;
use super::names::NameEntry;
use super::rule::{Rule, RuleAction, RuleId};
use super::rules;
use crate::audit::Report;
use crate::data::lock::LockedProject;
use crate::dist::ProjectName;
use crate::dist::filename::DistRef;
use crate::index::{FileEntry, Namespace, ProjectStatus};

/// What the policy says about a project before any file is looked at.
pub enum Gate<'p> {
    Open(Box<View<'p>>),
    /// Hidden whole: no upstream is asked.
    Blocked {
        decision: Decision,
        style: Blocked,
    },
}

/// The policy narrowed to one project at one instant.
pub struct View<'p> {
    policy: &'p Policy,
    project: String,
    now: Timestamp,
    required: Vec<&'p (NameEntry, VersionSpecifiers)>,
    denied: Vec<&'p (NameEntry, VersionSpecifiers)>,
    min_age: Option<(jiff::SignedDuration, Option<Origin>)>,
    /// Whether `min_age` is the project's own (`[cooldown] projects`), which an upstream's
    /// does not override.
    min_age_own: bool,
    lock: Option<&'p LockedProject>,
    exceptions: Vec<&'p Exception>,
    advisories_stale: bool,
    malware_stale: bool,
    /// A project-wide verdict that did not hide (warn or report-only), carried onto each file.
    project_note: Option<Decision>,
    /// The earliest instant a decision made here may change (a cooldown ends, an exception
    /// expires): the page must be decided again then.
    recheck: Cell<Option<Timestamp>>,
}

/// What an exception lookup found.
enum Lift<'p> {
    None,
    Lifted(&'p Exception),
    Expired(&'p Exception),
    /// An `until-fixed` exception whose advisory now lists a fix: upgrading is the way out.
    Fixed(&'p Exception),
}

/// Running verdict for one file.
#[derive(Default)]
struct Verdict {
    yank: Option<Decision>,
    warn: Option<Decision>,
    would_hide: Option<Decision>,
    lifted: Option<Decision>,
}

impl Policy {
    /// Decides whether `project` may be looked up at all: deny-list, allow-list, lock files,
    /// whole-project malware reports, typosquats and Scorecard health; everything here needs
    /// only the name, so a project hidden whole costs no upstream request.
    pub fn gate(&self, project: &ProjectName, now: Timestamp) -> Gate<'_> {
        let name = project.as_str();
        let exceptions: Vec<&Exception> = self
            .exceptions
            .iter()
            .filter(|e| e.covers_project(name))
            .collect();
        let own_cooldown = self.cooldown_rules.projects.find(name);
        let mut view = View {
            policy: self,
            project: name.to_owned(),
            now,
            required: self.require_versions.find_all(name),
            denied: self.deny_versions.find_all(name),
            min_age: own_cooldown
                .map(|(e, d)| (*d, Some(e.origin.clone())))
                .or_else(|| {
                    self.cooldown_rules
                        .min_age
                        .filter(|d| !d.is_zero())
                        .map(|d| (d, self.cooldown_rules.min_age_origin.clone()))
                }),
            min_age_own: own_cooldown.is_some(),
            lock: self.lock_set.as_ref().and_then(|l| l.project(name)),
            exceptions,
            advisories_stale: self.advisory_feed.as_ref().is_some_and(|f| f.is_stale(now)),
            malware_stale: self.malware_feed.as_ref().is_some_and(|f| f.is_stale(now)),
            project_note: None,
            recheck: Cell::new(None),
        };
        // Strongest first: a deny, the lock or a malware report says more than a resemblance,
        // and a score says how a repository is run, not that anything is wrong with what it
        // published.
        let mut checks = rules::projects::project_hits(
            &self.projects,
            &self.deny,
            &self.allow,
            self.blocked,
            name,
        );
        checks.extend(rules::lock::project_hits(
            &self.lock_outside,
            self.lock_set.as_ref(),
            self.lock_blocked,
            name,
        ));
        checks.extend(rules::feeds::malware_project_hits(
            &self.malware,
            self.malware_feed.as_ref(),
            name,
        ));
        checks.extend(rules::typosquat::project_hits(
            &self.typosquat,
            &self.typosquat_names,
            &self.allow,
            self.lock_set.as_ref(),
            self.blocked,
            name,
        ));
        checks.extend(rules::health::project_hits(
            &self.health,
            self.health_rules.as_ref(),
            self.blocked,
            name,
            now,
            |t| view.recheck_by(t),
        ));
        match view.weigh_project(checks) {
            Some((decision, style)) => Gate::Blocked { decision, style },
            None => Gate::Open(Box::new(view)),
        }
    }
}

fn feed_record_ids(p: &Policy, name: &str) -> Option<(String, Vec<String>)> {
    let rec = p.malware_feed.as_ref()?.db.malicious_project(name)?;
    Some((rec.id.clone(), rec.aliases.clone()))
}

/// What a deny-list entry says about the project: the name or glob it was written as, or the
/// regular expression it matched (a regex alone reads like a name otherwise), and its reason.
impl View<'_> {
    /// Weighs the project-wide hits in order: the first that hides blocks the project (with
    /// how that is answered); a warning or report-only result becomes the note every file
    /// carries; an exception lifts a hit in its scope.
    fn weigh_project(&mut self, checks: Vec<ProjectHit<'_>>) -> Option<(Decision, Blocked)> {
        for ProjectHit {
            rule,
            id,
            code,
            detail,
            origin,
            style,
        } in checks
        {
            let ids = (code == Code::Malicious)
                .then(|| feed_record_ids(self.policy, &self.project))
                .flatten();
            let scope = Scope {
                ids: ids.as_ref().map(|(i, a)| (i.as_str(), a.as_slice())),
                ..Scope::default()
            };
            match self.lift(id, scope) {
                Lift::Lifted(e) => {
                    e.mark_used();
                    continue;
                }
                Lift::Expired(_) | Lift::Fixed(_) | Lift::None => {}
            }
            let decision = Decision {
                action: Action::Hide,
                code,
                detail,
                origin,
            };
            match rule.action {
                RuleAction::Allow => {}
                RuleAction::Warn => {
                    self.project_note.get_or_insert(Decision {
                        action: Action::Warn,
                        ..decision
                    });
                }
                RuleAction::Yank | RuleAction::Hide
                    if self.policy.report_only || rule.report_only =>
                {
                    self.project_note.get_or_insert(Decision {
                        action: Action::WouldHide,
                        ..decision
                    });
                }
                RuleAction::Yank => {
                    // A yank changes what is served, so it wins over an earlier warning.
                    if self
                        .project_note
                        .as_ref()
                        .is_none_or(|n| n.action != Action::Yank)
                    {
                        self.project_note = Some(Decision {
                            action: Action::Yank,
                            ..decision
                        });
                    }
                }
                RuleAction::Hide => return Some((decision, style)),
            }
        }
        None
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// When the decisions made through this view may change on their own.
    pub fn recheck_at(&self) -> Option<Timestamp> {
        self.recheck.get()
    }

    fn recheck_by(&self, t: Timestamp) {
        let cur = self.recheck.get();
        if cur.is_none_or(|c| t < c) {
            self.recheck.set(Some(t));
        }
    }

    fn lift(&self, rule: RuleId, scope: Scope<'_>) -> Lift<'_> {
        let mut expired = None;
        for e in &self.exceptions {
            if !e.rules.contains(&rule) {
                continue;
            }
            if let Some(spec) = &e.versions
                && !scope.version.is_some_and(|v| spec.contains(v))
            {
                continue;
            }
            if let Some(sha) = &e.sha256
                && scope.sha256 != Some(sha.as_str())
            {
                continue;
            }
            if let Some(id) = &e.id
                && !scope
                    .ids
                    .is_some_and(|(rid, aliases)| rid == id || aliases.iter().any(|a| a == id))
            {
                continue;
            }
            if let Some(code) = &e.code
                && scope.code != Some(code.as_str())
            {
                continue;
            }
            if e.is_expired(self.now) {
                expired = Some(Lift::Expired(e));
                continue;
            }
            if e.until_fixed && scope.fixed {
                expired = Some(Lift::Fixed(e));
                continue;
            }
            if let Some(d) = e.expires
                && let Ok(z) = d
                    .tomorrow()
                    .and_then(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC))
            {
                self.recheck_by(z.timestamp());
            }
            return Lift::Lifted(e);
        }
        expired.unwrap_or(Lift::None)
    }

    /// Weighs one rule hit. Returns the decision when it hides the file.
    fn hit(&self, verdict: &mut Verdict, hit: Hit<'_>, scope: Scope<'_>) -> Option<Decision> {
        let Hit {
            id,
            rule,
            code,
            mut detail,
            origin,
        } = hit;
        match self.lift(id, scope) {
            Lift::Lifted(e) => {
                e.mark_used();
                verdict.lifted.get_or_insert_with(|| Decision {
                    action: Action::Show,
                    code: Code::AllowedByException,
                    detail: format!("{code} lifted: {}", e.reason),
                    origin: Some(e.origin.clone()),
                });
                return None;
            }
            Lift::Expired(e) => {
                let until = e.expires.map(|d| d.to_string()).unwrap_or_default();
                detail.push_str(&format!(
                    "; the exception at {} expired on {until}",
                    e.origin
                ));
            }
            Lift::Fixed(e) => {
                detail.push_str(&format!(
                    "; the exception at {} applied until a fix, and the advisory now lists one",
                    e.origin
                ));
            }
            Lift::None => {}
        }
        let decision = Decision {
            action: Action::Hide,
            code,
            detail,
            origin,
        };
        match rule.action {
            RuleAction::Allow => None,
            RuleAction::Warn => {
                verdict.warn.get_or_insert(Decision {
                    action: Action::Warn,
                    ..decision
                });
                None
            }
            RuleAction::Yank | RuleAction::Hide if self.policy.report_only || rule.report_only => {
                verdict.would_hide.get_or_insert(Decision {
                    action: Action::WouldHide,
                    ..decision
                });
                None
            }
            RuleAction::Yank => {
                verdict.yank.get_or_insert(Decision {
                    action: Action::Yank,
                    ..decision
                });
                None
            }
            RuleAction::Hide => Some(decision),
        }
    }

    fn finish(&self, verdict: Verdict, shown: Decision) -> Decision {
        // A yank changes the served page, so it is the decision that must be recorded.
        let project_yank = self
            .project_note
            .as_ref()
            .filter(|n| n.action == Action::Yank);
        verdict
            .yank
            .or_else(|| project_yank.cloned())
            .or(verdict.would_hide)
            .or(verdict.warn)
            .or_else(|| self.project_note.clone())
            .or(verdict.lifted)
            .unwrap_or(shown)
    }

    /// Weighs what an upstream page says about the whole project: its PEP 792 status, its PEP
    /// 752 namespace grants, and how long ago anything was uploaded. The verdict is shared by
    /// every file of the page: a hide, or a note (yank, warning, report-only, lifted) carried
    /// onto each file no other rule flagged, so a page pays for it once.
    pub fn judge_page(
        &self,
        status: Option<&ProjectStatus>,
        namespaces: &[Namespace],
        files: &[FileEntry],
    ) -> Option<Decision> {
        let p = self.policy;
        let mut v = Verdict::default();
        let hits = rules::namespaces::page_hit(
            &p.namespace_rules,
            &self.project,
            p.private_upstream(&self.project).is_some(),
            namespaces,
        )
        .into_iter()
        .chain(rules::project_status::page_hit(&p.status_rules, status))
        .chain(rules::unmaintained::page_hit(
            &p.unmaintained,
            p.unmaintained_max_age.as_ref(),
            files,
            self.now,
            |t| self.recheck_by(t),
        ));
        for hit in hits {
            if let Some(d) = self.hit(&mut v, hit, Scope::default()) {
                return Some(d);
            }
        }
        v.yank.or(v.would_hide).or(v.warn).or(v.lifted)
    }

    /// `[versions] max-count`, when it applies to this project: the number of newest versions
    /// shown.
    pub fn max_versions(&self) -> Option<usize> {
        let p = self.policy;
        p.max_versions
            .as_ref()
            .filter(|_| !p.versions.is_off())
            .map(|(n, _)| *n)
    }

    /// Weighs the version-count limit for a file of a version older than the newest `limit`:
    /// the decision that replaces the file's, `None` when an exception or the action lets it be.
    pub fn version_limit(
        &self,
        version: &Version,
        sha256: Option<&str>,
        limit: usize,
    ) -> Option<Decision> {
        let p = self.policy;
        let origin = p.max_versions.as_ref().map(|(_, o)| o.clone());
        let mut v = Verdict::default();
        let hit = Hit {
            id: RuleId::Versions,
            rule: &p.versions,
            code: Code::VersionLimit,
            detail: format!("{version} is not among the {limit} newest"),
            origin,
        };
        let scope = Scope {
            version: Some(version),
            sha256,
            ..Scope::default()
        };
        if let Some(d) = self.hit(&mut v, hit, scope) {
            return Some(d);
        }
        v.yank.or(v.would_hide).or(v.warn).or(v.lifted)
    }

    /// Decides one upstream file whose name parsed. The filename rules that are not policy
    /// (a valid name, a sha256) have already passed.
    /// The upstream that answered for the project (its label): `[cooldown] upstreams` then
    /// sets the minimum age, unless a `projects` entry names the project.
    pub fn answered_by(&mut self, label: &str) {
        if self.min_age_own {
            return;
        }
        if let Some((_, d, origin)) = self
            .policy
            .cooldown_rules
            .upstreams
            .iter()
            .find(|(l, _, _)| l == label)
        {
            self.min_age = (!d.is_zero()).then(|| (*d, Some(origin.clone())));
        }
    }

    /// Whether the cooldown ages files by their version's first upload (`basis = "version"`).
    pub fn cooldown_by_version(&self) -> bool {
        let p = self.policy;
        p.cooldown_rules.by_version && !p.cooldown.is_off() && p.cooldown_rules.is_active()
    }

    pub fn decide_file(&self, file: &FileEntry, parsed: &DistRef<'_>) -> Decision {
        self.decide_file_aged(file, parsed, file.upload_time.as_deref())
    }

    /// [`Self::decide_file`], with the cooldown counting from `uploaded` (the version's first
    /// upload under `basis = "version"`) rather than the file's own upload time.
    pub fn decide_file_aged(
        &self,
        file: &FileEntry,
        parsed: &DistRef<'_>,
        uploaded: Option<&str>,
    ) -> Decision {
        let mut v = Verdict::default();
        let version = parsed.version();
        let facts = FileFacts {
            file,
            parsed,
            version,
            uploaded,
            base: Scope {
                version,
                sha256: file.sha256(),
                ..Scope::default()
            },
        };
        let p = self.policy;
        let project = self.project.as_str();
        // The checks in the order they run: the first hit that hides the file decides it.
        macro_rules! weigh {
            ($hits:expr) => {
                let hits = $hits;
                // Most files match no rule: an empty list is skipped without an iterator.
                if !hits.is_empty() {
                    for (hit, scope) in hits {
                        if let Some(d) = self.hit(&mut v, hit, scope) {
                            return d;
                        }
                    }
                }
            };
        }
        weigh!(rules::sdists::file_hits(&p.sdists, &facts));
        weigh!(rules::lock::file_hits(&p.lock, self.lock, &facts));
        weigh!(rules::feeds::malware_file_hits(
            &p.malware,
            p.malware_feed.as_ref(),
            self.malware_stale,
            project,
            &facts
        ));
        weigh!(rules::feeds::advisory_file_hits(
            &p.advisories,
            p.advisory_feed.as_ref(),
            self.advisories_stale,
            project,
            &facts
        ));
        weigh!(rules::versions::file_hits(
            &p.versions,
            &self.required,
            &self.denied,
            &facts
        ));
        weigh!(rules::prereleases::file_hits(&p.prereleases, &facts));
        weigh!(rules::yanked::file_hits(&p.yanked, &facts));
        weigh!(rules::tags::file_hits(&p.tags, &p.tag_rules, &facts));
        weigh!(rules::size::file_hits(&p.size, p.max_size, &facts));
        weigh!(rules::cooldown::file_hits(
            &p.cooldown,
            &p.cooldown_rules,
            self.min_age.as_ref(),
            self.now,
            |t| self.recheck_by(t),
            &facts
        ));
        weigh!(rules::attestations::file_hits(
            &p.attestations,
            &p.attestation_publishers,
            project,
            &facts
        ));
        // An sdist gets here only when an exception lifted its rule; `lifted` says which.
        self.finish(v, Decision::show())
    }

    /// Weighs an audit report's findings. Each finding's action comes from `[audit] codes`,
    /// else the section's action for findings that are violations, else `warn` for notices
    /// (a `.pth` import line).
    pub fn judge_audit(
        &self,
        sha256: &str,
        version: Option<&Version>,
        report: &Report,
    ) -> Decision {
        let p = self.policy;
        let mut v = Verdict::default();
        let mut hiding: Vec<String> = Vec::new();
        let mut origin = None;
        for f in &report.findings {
            let code = f.code.as_str();
            let (action, o) = match p.audit_codes.get(code) {
                Some((a, o)) => (*a, Some(o.clone())),
                None if f.hides => (p.audit.action, p.audit.origin.clone()),
                None => (RuleAction::Warn, None),
            };
            let rule = Rule {
                action,
                report_only: p.audit.report_only,
                origin: o.clone(),
            };
            let text = if f.file.is_empty() {
                format!("{code} ({})", f.detail)
            } else {
                format!("{code} in {} ({})", f.file, f.detail)
            };
            let scope = Scope {
                version,
                sha256: Some(sha256),
                code: Some(code),
                ids: None,
                fixed: false,
            };
            if let Some(d) = self.hit(
                &mut v,
                Hit {
                    id: RuleId::Audit,
                    rule: &rule,
                    code: Code::AuditFailed,
                    detail: text,
                    origin: o,
                },
                scope,
            ) {
                if origin.is_none() {
                    origin = d.origin.clone();
                }
                hiding.push(d.detail);
            }
        }
        if hiding.is_empty() {
            let scope = Scope {
                version,
                sha256: Some(sha256),
                ..Scope::default()
            };
            let hits = rules::licenses::report_hit(
                &p.licenses,
                &p.license_rules,
                &self.project,
                version,
                &report.license,
            )
            .into_iter()
            .chain(rules::attestations::report_hit(
                &p.attestations,
                &p.attestation_publishers,
                &self.project,
                report.provenance.as_ref(),
            ));
            for hit in hits {
                if let Some(d) = self.hit(&mut v, hit, scope) {
                    return d;
                }
            }
        }
        if !hiding.is_empty() {
            const MAX: usize = 8;
            let more = hiding.len().saturating_sub(MAX);
            hiding.truncate(MAX);
            let mut detail = hiding.join("; ");
            if more > 0 {
                detail.push_str(&format!("; and {more} more"));
            }
            return Decision {
                action: Action::Hide,
                code: Code::AuditFailed,
                detail,
                origin,
            };
        }
        self.finish(v, Decision::show())
    }
}

#[cfg(test)]
mod tests;
