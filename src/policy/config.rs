//! Policy files (TOML) → one validated [`Policy`].
//!
//! Files are read with spans (toml's `DeTable`), walked by hand, and every problem is collected
//! rather than stopping at the first: a person fixing a policy wants the whole list, each with
//! `file:line:col`. Several files merge in order: later files replace single values and extend
//! lists, so a site policy can be layered over a shipped one. Every value keeps the line it came
//! from, and each decision it makes points there.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use pep440_rs::VersionSpecifiers;
use toml::de::{DeTable, DeValue};

use super::diag::{Diagnostic, LineIndex, Origin, Severity};
use super::rules::health::HealthRules;

use super::names::{NameEntry, NameMap, NameSet};
use super::rule::{Rule, RuleAction, RuleId};
use super::rules::licenses::LicenseRules;
use super::rules::typosquat::Protected;
use super::rules::{
    attestations, audit, cooldown, feeds, health, licenses, lock, namespaces, project_status,
    projects, size, tags, typosquat, unmaintained, versions,
};

pub use super::walk::parse_duration;
use super::walk::{RULE_KEYS, Spot, Val, Walk, names};
use crate::data::lock::LockSet;

/// The policy `serve` uses when given none: shipped in `policies/default.toml`.
pub const DEFAULT_POLICY: &str = include_str!("../../policies/default.toml");

pub use super::decision::Blocked;
pub use super::rules::cooldown::Cooldown;
pub use super::rules::feeds::Feed;
pub use super::rules::health::DEFAULT_MIN_SCORE;
pub use super::rules::namespaces::NamespaceRules;
pub use super::rules::project_status::StatusRules;
pub use super::rules::tags::TagRules;

#[derive(Debug)]
pub struct PrivateRoute {
    pub names: NameSet,
    /// The label (or URL) of the upstream that alone answers for these names.
    pub upstream: String,
    pub origin: Origin,
}

/// A lifted rule: for the files in its scope, the named rules do not hide.
#[derive(Debug)]
pub struct Exception {
    pub rules: Vec<RuleId>,
    pub project: Option<NameSet>,
    pub versions: Option<VersionSpecifiers>,
    pub sha256: Option<String>,
    /// Advisories and malware: only this record (by id or alias).
    pub id: Option<String>,
    /// Audit: only this finding code.
    pub code: Option<String>,
    pub reason: String,
    pub expires: Option<jiff::civil::Date>,
    /// Advisories: lifts only while the record lists no fixed version; once a fix exists the
    /// way out is to upgrade, and the exception stops applying.
    pub until_fixed: bool,
    pub origin: Origin,
    pub used: AtomicBool,
}

impl Exception {
    /// Expired once the whole `expires` day (UTC) has passed.
    pub fn is_expired(&self, now: jiff::Timestamp) -> bool {
        self.expires.is_some_and(|d| {
            d.tomorrow()
                .ok()
                .and_then(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                .is_none_or(|z| now >= z.timestamp())
        })
    }

    pub fn covers_project(&self, name: &str) -> bool {
        self.project.as_ref().is_none_or(|p| p.find(name).is_some())
    }

    pub fn mark_used(&self) {
        self.used.store(true, Ordering::Relaxed);
    }
}

/// A validated policy: what every decision consults. Built once per load, shared read-only.
#[derive(Debug)]
pub struct Policy {
    pub files: Vec<String>,
    pub report_only: bool,
    pub report_only_origin: Option<Origin>,
    pub projects: Rule,
    pub allow: NameSet,
    pub deny: NameSet,
    pub blocked: Blocked,
    pub sdists: Rule,
    pub versions: Rule,
    pub require_versions: NameMap<VersionSpecifiers>,
    pub deny_versions: NameMap<VersionSpecifiers>,
    /// Only this many of a project's newest versions are shown; `None`: no limit.
    pub max_versions: Option<(usize, Origin)>,
    pub tags: Rule,
    pub tag_rules: TagRules,
    pub prereleases: Rule,
    pub yanked: Rule,
    pub size: Rule,
    pub max_size: Option<u64>,
    pub cooldown: Rule,
    pub cooldown_rules: Cooldown,
    pub lock: Rule,
    pub lock_set: Option<LockSet>,
    pub lock_outside: Rule,
    pub lock_blocked: Blocked,
    pub advisories: Rule,
    pub advisory_feed: Option<Feed>,
    pub malware: Rule,
    pub malware_feed: Option<Feed>,
    pub audit: Rule,
    pub audit_codes: HashMap<String, (RuleAction, Origin)>,
    /// `[audit] listing` and `fleet`: what is audited before anyone asks, and how wheels not
    /// audited yet are listed.
    pub audit_demand: crate::demand::AuditDemand,
    /// The `[project-status]` section as a whole: its `report-only` switch.
    pub project_status: Rule,
    pub status_rules: StatusRules,
    pub unmaintained: Rule,
    /// A project whose newest upload is older than this is flagged; `None`: the rule is off.
    pub unmaintained_max_age: Option<(jiff::SignedDuration, Origin)>,
    pub licenses: Rule,
    pub license_rules: LicenseRules,
    pub typosquat: Rule,
    /// The shipped well-known names and `[typosquat] protect`, indexed once per load.
    pub typosquat_names: Protected,
    /// The `[namespaces]` section as a whole: its `report-only` switch.
    pub namespaces: Rule,
    pub namespace_rules: NamespaceRules,
    pub attestations: Rule,
    /// `[attestations] require`: per project name or glob, a publisher its files must be
    /// attested by (several entries for one project: any of them).
    pub attestation_publishers: NameMap<super::rules::attestations::Publisher>,
    pub health: Rule,
    /// The Scorecard data and the minimums; `None` without `data`: nothing to judge by.
    pub health_rules: Option<HealthRules>,
    pub private: Vec<PrivateRoute>,
    pub exceptions: Vec<Exception>,
}

impl Policy {
    /// The shipped default policy (`policies/default.toml`), which always loads.
    pub fn builtin() -> Self {
        match load_sources(&[("policies/default.toml".into(), DEFAULT_POLICY.into())]) {
            Ok((p, _)) => p,
            // The shipped file is checked by a test; this is the same policy written out.
            Err(_) => Self::empty(),
        }
    }

    fn empty() -> Self {
        Self {
            files: Vec::new(),
            report_only: false,
            report_only_origin: None,
            projects: Rule::new(RuleAction::Hide),
            allow: NameSet::default(),
            deny: NameSet::default(),
            blocked: Blocked::Quarantine,
            sdists: Rule::new(RuleAction::Hide),
            versions: Rule::new(RuleAction::Hide),
            require_versions: NameMap::default(),
            deny_versions: NameMap::default(),
            max_versions: None,
            tags: Rule::new(RuleAction::Hide),
            tag_rules: TagRules::default(),
            prereleases: Rule::new(RuleAction::Allow),
            yanked: Rule::new(RuleAction::Allow),
            size: Rule::new(RuleAction::Hide),
            max_size: None,
            cooldown: Rule::new(RuleAction::Hide),
            cooldown_rules: Cooldown {
                min_age: None,
                min_age_origin: None,
                as_of: None,
                as_of_origin: None,
                missing: Rule::new(RuleAction::Hide),
                projects: NameMap::default(),
                upstreams: Vec::new(),
                by_version: false,
            },
            lock: Rule::new(RuleAction::Hide),
            lock_set: None,
            lock_outside: Rule::new(RuleAction::Hide),
            lock_blocked: Blocked::NotFound,
            advisories: Rule::new(RuleAction::Hide),
            advisory_feed: None,
            malware: Rule::new(RuleAction::Hide),
            malware_feed: None,
            audit: Rule::new(RuleAction::Hide),
            audit_codes: HashMap::new(),
            audit_demand: crate::demand::AuditDemand::default(),
            project_status: Rule::new(RuleAction::Hide),
            status_rules: StatusRules {
                quarantined: Rule::new(RuleAction::Hide),
                archived: Rule::new(RuleAction::Warn),
                deprecated: Rule::new(RuleAction::Warn),
            },
            unmaintained: Rule::new(RuleAction::Warn),
            unmaintained_max_age: None,
            licenses: Rule::new(RuleAction::Hide),
            license_rules: LicenseRules {
                allow: Vec::new(),
                allow_origin: None,
                deny: Vec::new(),
                deny_origin: None,
                unknown: Rule::new(RuleAction::Warn),
                clarify: NameMap::default(),
            },
            typosquat: Rule::new(RuleAction::Warn),
            typosquat_names: Protected::default(),
            namespaces: Rule::new(RuleAction::Hide),
            attestations: Rule::new(RuleAction::Hide),
            attestation_publishers: NameMap::default(),
            namespace_rules: NamespaceRules {
                not_owned: Rule::new(RuleAction::Warn),
                unverified: Rule::new(RuleAction::Hide),
                required: Vec::new(),
            },
            health: Rule::new(RuleAction::Warn),
            health_rules: None,
            private: Vec::new(),
            exceptions: Vec::new(),
        }
    }

    pub fn rule(&self, id: RuleId) -> &Rule {
        match id {
            RuleId::Projects => &self.projects,
            RuleId::Sdists => &self.sdists,
            RuleId::Versions => &self.versions,
            RuleId::Tags => &self.tags,
            RuleId::Prereleases => &self.prereleases,
            RuleId::Yanked => &self.yanked,
            RuleId::Size => &self.size,
            RuleId::Cooldown => &self.cooldown,
            RuleId::Lock => &self.lock,
            RuleId::Advisories => &self.advisories,
            RuleId::Malware => &self.malware,
            RuleId::Audit => &self.audit,
            RuleId::ProjectStatus => &self.project_status,
            RuleId::Unmaintained => &self.unmaintained,
            RuleId::Licenses => &self.licenses,
            RuleId::Typosquat => &self.typosquat,
            RuleId::Namespaces => &self.namespaces,
            RuleId::Attestations => &self.attestations,
            RuleId::Health => &self.health,
        }
    }

    /// Exceptions that lifted nothing since the policy was loaded: likely stale.
    pub fn unused_exceptions(&self) -> impl Iterator<Item = &Exception> {
        self.exceptions
            .iter()
            .filter(|e| !e.used.load(Ordering::Relaxed))
    }

    /// The upstream that alone may answer for `name`, when a `[[private]]` section claims it.
    /// Where the policy asks for something only a wheel audit can check (attestations), if it
    /// does: such a policy cannot be honoured with audits off.
    pub fn needs_audit(&self) -> Option<Origin> {
        if self.attestations.is_off() {
            return None;
        }
        self.attestation_publishers.first_origin()
    }

    pub fn private_upstream(&self, name: &str) -> Option<&PrivateRoute> {
        self.private.iter().find(|p| p.names.find(name).is_some())
    }
}

/// Why a policy could not be loaded: every problem found, errors and warnings.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the policy:\n{}", .0.iter().filter(|d| d.severity == Severity::Error).count(), render(.0))]
pub struct PolicyError(pub Vec<Diagnostic>);

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and validates policy files in order. Warnings come back with the policy; any error
/// fails the load with the whole list.
pub fn load_files(paths: &[PathBuf]) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let mut sources = Vec::with_capacity(paths.len());
    let mut diags = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => sources.push((p.display().to_string(), text)),
            Err(e) => diags.push(Diagnostic {
                file: p.display().to_string(),
                line: 1,
                col: 1,
                severity: Severity::Error,
                code: "unreadable",
                message: format!("cannot read the policy file: {e}"),
            }),
        }
    }
    if !diags.is_empty() {
        return Err(PolicyError(diags));
    }
    load_sources(&sources)
}

/// [`load_files`] on texts already read: `(name, text)`; relative paths inside a policy are
/// taken from the folder of `name`.
pub fn load_sources(
    sources: &[(String, String)],
) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
    let mut b = Builder::default();
    for (name, text) in sources {
        b.file(name, text);
    }
    b.finish()
}

/// Raw values gathered from all files, before names, globs and data are compiled.
#[derive(Default)]
struct Builder {
    diags: Vec<Diagnostic>,
    files: Vec<String>,
    report_only: Option<(bool, Origin)>,
    rules: HashMap<RuleId, RawRule>,
    /// Each rule's own keys ([`super::rules`]).
    raws: Raws,
    private: Vec<RawPrivate>,
    exceptions: Vec<RawException>,
}

/// A `[[private]]` section: its names, its upstream, its line.
type RawPrivate = (Vec<(NameEntry, Spot)>, String, Origin);

#[derive(Default)]
struct RawRule {
    action: Option<(RuleAction, Origin)>,
    report_only: Option<bool>,
}

struct RawException {
    rules: Vec<RuleId>,
    project: Option<(NameEntry, Spot)>,
    versions: Option<VersionSpecifiers>,
    sha256: Option<String>,
    id: Option<String>,
    code: Option<String>,
    reason: String,
    expires: Option<jiff::civil::Date>,
    until_fixed: bool,
    origin: Origin,
}

impl Builder {
    fn file(&mut self, name: &str, text: &str) {
        self.files.push(name.to_owned());
        let (doc, errors) = DeTable::parse_recoverable(text);
        let dir = Path::new(name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut w = Walk {
            name: name.into(),
            text,
            lines: LineIndex::new(text),
            dir,
            diags: Vec::new(),
        };
        for e in &errors {
            let span = e.span().unwrap_or(0..0);
            w.error(&span, "toml-syntax", e.message().trim().to_owned());
        }
        if !errors.is_empty() {
            self.diags.append(&mut w.diags);
            return;
        }
        let top: Vec<&str> = ["report-only", "private", "exceptions"]
            .into_iter()
            .chain(RuleId::ALL.iter().map(|r| r.as_str()))
            .collect();
        for (key, v, kspan) in w.keys(doc.get_ref(), "the policy", &top) {
            match key {
                "report-only" => {
                    if let Some(b) = w.bool(v, "report-only") {
                        self.report_only = Some((b, w.origin(&kspan)));
                    }
                }
                // `lock = ["requirements.txt"]`: the short form of `[lock] files = [...]`.
                "lock" if matches!(v.get_ref(), DeValue::Array(_)) => {
                    self.raws
                        .key(RuleId::Lock, &mut w, "files", v, &kspan, "lock");
                }
                "private" => {
                    for item in w.array(v, "[[private]]") {
                        if let Some(t) = w.table(item, "[[private]]") {
                            self.private_section(&mut w, t, &item.span());
                        }
                    }
                }
                "exceptions" => {
                    for item in w.array(v, "[[exceptions]]") {
                        if let Some(t) = w.table(item, "[[exceptions]]") {
                            self.exception(&mut w, t, &item.span());
                        }
                    }
                }
                _ => {
                    let Some(id) = RuleId::parse(key) else {
                        continue;
                    };
                    let section = format!("[{key}]");
                    if let Some(t) = w.table(v, &section) {
                        self.rule_section(&mut w, id, t, &section);
                    }
                }
            }
        }
        self.diags.append(&mut w.diags);
    }

    fn rule_section(&mut self, w: &mut Walk<'_>, id: RuleId, t: &DeTable<'_>, section: &str) {
        let extra = Raws::keys(id);
        // Each status (each namespace case) has its own action; one `action` for the section
        // would say nothing.
        let base: &[&str] = if matches!(id, RuleId::ProjectStatus | RuleId::Namespaces) {
            &["report-only"]
        } else {
            RULE_KEYS
        };
        let known: Vec<&str> = base.iter().chain(extra).copied().collect();
        for (key, v, kspan) in w.keys(t, section, &known) {
            let what = format!("{section} {key}");
            match key {
                "action" => {
                    if let Some(a) = w.action(v, &what) {
                        self.rules.entry(id).or_default().action = Some((a, w.origin(&kspan)));
                    }
                }
                "report-only" => {
                    if let Some(b) = w.bool(v, &what) {
                        self.rules.entry(id).or_default().report_only = Some(b);
                    }
                }
                _ => self.raws.key(id, w, key, v, &kspan, &what),
            }
        }
    }

    fn private_section(&mut self, w: &mut Walk<'_>, t: &DeTable<'_>, span: &Range<usize>) {
        let mut names = Vec::new();
        let mut upstream = None;
        for (key, v, _) in w.keys(t, "[[private]]", &["names", "upstream"]) {
            match key {
                "names" => names = w.name_list(v, "[[private]] names", false),
                _ => upstream = w.str(v, "[[private]] upstream").map(str::to_owned),
            }
        }
        match upstream {
            Some(u) if !names.is_empty() => {
                let origin = w.origin(span);
                self.private.push((names, u, origin));
            }
            _ => w.error(
                span,
                "missing-key",
                "a [[private]] section needs `names` (at least one) and `upstream`",
            ),
        }
    }

    fn exception(&mut self, w: &mut Walk<'_>, t: &DeTable<'_>, span: &Range<usize>) {
        const KEYS: &[&str] = &[
            "rule",
            "project",
            "versions",
            "sha256",
            "id",
            "code",
            "reason",
            "expires",
            "until-fixed",
        ];
        let mut rules = Vec::new();
        let mut project = None;
        let mut versions = None;
        let mut sha256 = None;
        let mut id = None;
        let mut code = None;
        let mut reason: Option<String> = None;
        let mut expires = None;
        let mut until_fixed = None;
        let mut ok = true;
        for (key, v, _) in w.keys(t, "[[exceptions]]", KEYS) {
            let what = format!("[[exceptions]] {key}");
            match key {
                "rule" => ok &= exception_rules(w, v, &what, &mut rules),
                "project" => {
                    project = w.name_pattern(v, &what).map(|(pattern, spot)| {
                        let origin = w.origin(&v.span());
                        (
                            NameEntry {
                                pattern,
                                reason: None,
                                origin,
                                regex: false,
                            },
                            spot,
                        )
                    });
                    ok &= project.is_some();
                }
                "versions" => {
                    versions = w.specifiers(v, &what);
                    ok &= versions.is_some();
                }
                "sha256" => {
                    sha256 = w.str(v, &what).and_then(|s| {
                        let s = s.to_ascii_lowercase();
                        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                            Some(s)
                        } else {
                            w.error(
                                &v.span(),
                                "bad-value",
                                format!("{what} must be 64 hex digits"),
                            );
                            None
                        }
                    });
                    ok &= sha256.is_some();
                }
                "id" => id = w.str(v, &what).map(str::to_owned),
                "code" => code = w.str(v, &what).map(str::to_owned),
                "reason" => reason = w.str(v, &what).map(str::to_owned),
                "until-fixed" => {
                    until_fixed = w.bool(v, &what).map(|b| (b, v.span()));
                    ok &= until_fixed.is_some();
                }
                _ => {
                    expires = w.date(v, &what);
                    ok &= expires.is_some();
                }
            }
        }
        let whole = exception_is_whole(
            w,
            span,
            ok,
            &ExceptionParts {
                rules: &rules,
                reason: reason.as_deref(),
                has_project: project.is_some(),
                has_digest_or_id: sha256.is_some() || id.is_some(),
                has_versions: versions.is_some(),
                until_fixed: until_fixed.as_ref(),
            },
        );
        ok &= whole;
        let origin = w.origin(span);
        if let Some(d) = expires
            && d < jiff::Timestamp::now()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date()
        {
            w.problem(
                span,
                Severity::Warning,
                "expired-exception",
                format!("this exception expired on {d}; it no longer applies"),
            );
        }
        if ok && let Some(reason) = reason {
            self.exceptions.push(RawException {
                rules,
                project,
                versions,
                sha256,
                id,
                code,
                reason,
                expires,
                until_fixed: until_fixed.is_some_and(|(b, _)| b),
                origin,
            });
        }
    }

    fn finish(mut self) -> Result<(Policy, Vec<Diagnostic>), PolicyError> {
        let mut p = Policy::empty();
        p.files = std::mem::take(&mut self.files);
        if let Some((b, o)) = self.report_only.take() {
            p.report_only = b;
            p.report_only_origin = Some(o);
        }
        for id in RuleId::ALL {
            let Some(raw) = self.rules.remove(id) else {
                continue;
            };
            let rule = match id {
                RuleId::Projects => &mut p.projects,
                RuleId::Sdists => &mut p.sdists,
                RuleId::Versions => &mut p.versions,
                RuleId::Tags => &mut p.tags,
                RuleId::Prereleases => &mut p.prereleases,
                RuleId::Yanked => &mut p.yanked,
                RuleId::Size => &mut p.size,
                RuleId::Cooldown => &mut p.cooldown,
                RuleId::Lock => &mut p.lock,
                RuleId::Advisories => &mut p.advisories,
                RuleId::Malware => &mut p.malware,
                RuleId::Audit => &mut p.audit,
                RuleId::ProjectStatus => &mut p.project_status,
                RuleId::Unmaintained => &mut p.unmaintained,
                RuleId::Licenses => &mut p.licenses,
                RuleId::Typosquat => &mut p.typosquat,
                RuleId::Namespaces => &mut p.namespaces,
                RuleId::Attestations => &mut p.attestations,
                RuleId::Health => &mut p.health,
            };
            if let Some((a, o)) = raw.action {
                rule.action = a;
                rule.origin = Some(o);
            }
            if let Some(r) = raw.report_only {
                rule.report_only = r;
            }
        }
        std::mem::take(&mut self.raws).finish(&mut self.diags, &mut p);
        for (listed, upstream, origin) in std::mem::take(&mut self.private) {
            let names = names(
                &mut self.diags,
                listed.into_iter().map(|(e, s)| (e, (), s)).collect(),
            );
            p.private.push(PrivateRoute {
                names,
                upstream,
                origin,
            });
        }
        for raw in std::mem::take(&mut self.exceptions) {
            let project = raw
                .project
                .map(|(e, spot)| names(&mut self.diags, vec![(e, (), spot)]));
            p.exceptions.push(Exception {
                rules: raw.rules,
                project,
                versions: raw.versions,
                sha256: raw.sha256,
                id: raw.id,
                code: raw.code,
                reason: raw.reason,
                expires: raw.expires,
                until_fixed: raw.until_fixed,
                origin: raw.origin,
                used: AtomicBool::new(false),
            });
        }
        // Like an expired date, a fix that exists already is worth saying at load time.
        if let Some(feed) = &p.advisory_feed {
            for e in p.exceptions.iter().filter(|e| e.until_fixed) {
                let Some(id) = &e.id else { continue };
                let fixed =
                    feed.db.records().iter().any(|r| {
                        r.fix_available && (r.id == *id || r.aliases.iter().any(|a| a == id))
                    });
                if fixed {
                    self.diags.push(Diagnostic {
                        file: e.origin.file.to_string(),
                        line: e.origin.line as usize,
                        col: 1,
                        severity: Severity::Warning,
                        code: "fixed-exception",
                        message: format!(
                            "{id} now lists a fixed version; this until-fixed exception no longer applies (upgrade instead)"
                        ),
                    });
                }
            }
        }
        let mut diags = std::mem::take(&mut self.diags);
        // Files in the order given, problems in the order of their position.
        let order: HashMap<String, usize> = p
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.clone(), i))
            .collect();
        diags.sort_by_key(|d| (order.get(&d.file).copied(), d.line, d.col));
        if diags.iter().any(|d| d.severity == Severity::Error) {
            Err(PolicyError(diags))
        } else {
            Ok((p, diags))
        }
    }
}

/// Every rule's own keys as written, across all files: one `Raw` per rule
/// ([`super::rules`]), read and finished by its module.
struct Raws {
    projects: projects::Raw,
    versions: versions::Raw,
    tags: tags::Raw,
    size: size::Raw,
    cooldown: cooldown::Raw,
    lock: lock::Raw,
    advisories: feeds::Raw,
    malware: feeds::Raw,
    audit: audit::Raw,
    project_status: project_status::Raw,
    unmaintained: unmaintained::Raw,
    licenses: licenses::Raw,
    typosquat: typosquat::Raw,
    namespaces: namespaces::Raw,
    attestations: attestations::Raw,
    health: health::Raw,
}

impl Default for Raws {
    fn default() -> Self {
        Self {
            projects: projects::Raw::default(),
            versions: versions::Raw::default(),
            tags: tags::Raw::default(),
            size: size::Raw::default(),
            cooldown: cooldown::Raw::default(),
            lock: lock::Raw::default(),
            advisories: feeds::Raw::new(RuleId::Advisories),
            malware: feeds::Raw::new(RuleId::Malware),
            audit: audit::Raw::default(),
            project_status: project_status::Raw::default(),
            unmaintained: unmaintained::Raw::default(),
            licenses: licenses::Raw::default(),
            typosquat: typosquat::Raw::default(),
            namespaces: namespaces::Raw::default(),
            attestations: attestations::Raw::default(),
            health: health::Raw::default(),
        }
    }
}

impl Raws {
    /// The keys a rule's section takes besides `action` and `report-only`.
    fn keys(id: RuleId) -> &'static [&'static str] {
        match id {
            RuleId::Projects => projects::KEYS,
            RuleId::Versions => versions::KEYS,
            RuleId::Tags => tags::KEYS,
            RuleId::Size => size::KEYS,
            RuleId::Cooldown => cooldown::KEYS,
            RuleId::Lock => lock::KEYS,
            RuleId::Advisories => feeds::ADVISORY_KEYS,
            RuleId::Malware => feeds::MALWARE_KEYS,
            RuleId::Audit => audit::KEYS,
            RuleId::ProjectStatus => project_status::KEYS,
            RuleId::Unmaintained => unmaintained::KEYS,
            RuleId::Licenses => licenses::KEYS,
            RuleId::Typosquat => typosquat::KEYS,
            RuleId::Namespaces => namespaces::KEYS,
            RuleId::Attestations => attestations::KEYS,
            RuleId::Health => health::KEYS,
            RuleId::Sdists | RuleId::Prereleases | RuleId::Yanked => &[],
        }
    }

    /// One key of a rule's section (one of [`Self::keys`]), as a file is walked.
    fn key(
        &mut self,
        id: RuleId,
        w: &mut Walk<'_>,
        key: &str,
        v: &Val<'_>,
        kspan: &Range<usize>,
        what: &str,
    ) {
        match id {
            RuleId::Projects => self.projects.key(w, key, v, kspan, what),
            RuleId::Versions => self.versions.key(w, key, v, kspan, what),
            RuleId::Tags => self.tags.key(w, key, v, kspan, what),
            RuleId::Size => self.size.key(w, key, v, kspan, what),
            RuleId::Cooldown => self.cooldown.key(w, key, v, kspan, what),
            RuleId::Lock => self.lock.key(w, key, v, kspan, what),
            RuleId::Advisories => self.advisories.key(w, key, v, kspan, what),
            RuleId::Malware => self.malware.key(w, key, v, kspan, what),
            RuleId::Audit => self.audit.key(w, key, v, kspan, what),
            RuleId::ProjectStatus => self.project_status.key(w, key, v, kspan, what),
            RuleId::Unmaintained => self.unmaintained.key(w, key, v, kspan, what),
            RuleId::Licenses => self.licenses.key(w, key, v, kspan, what),
            RuleId::Typosquat => self.typosquat.key(w, key, v, kspan, what),
            RuleId::Namespaces => self.namespaces.key(w, key, v, kspan, what),
            RuleId::Attestations => self.attestations.key(w, key, v, kspan, what),
            RuleId::Health => self.health.key(w, key, v, kspan, what),
            RuleId::Sdists | RuleId::Prereleases | RuleId::Yanked => {}
        }
    }

    /// Every section into `p`, once all files are walked and every rule's `action` and
    /// `report-only` are set (some settings inherit them). Problems go to `diags`.
    fn finish(self, diags: &mut Vec<Diagnostic>, p: &mut Policy) {
        (p.allow, p.deny, p.blocked) = self.projects.finish(diags);
        let versions = self.versions.finish(diags);
        p.require_versions = versions.require;
        p.deny_versions = versions.deny;
        p.max_versions = versions.max_count;
        p.tag_rules = self.tags.finish(diags);
        p.max_size = self.size.finish();
        p.cooldown_rules = self.cooldown.finish(diags);
        (p.lock_set, p.lock_outside, p.lock_blocked) = self.lock.finish(diags, &p.lock);
        p.advisory_feed = self.advisories.finish(diags);
        p.malware_feed = self.malware.finish(diags);
        (p.audit_codes, p.audit_demand) = self.audit.finish();
        self.project_status
            .finish(&mut p.status_rules, &p.project_status);
        p.unmaintained_max_age = self.unmaintained.finish();
        self.licenses
            .finish(diags, &mut p.license_rules, &p.licenses);
        if let Some(names) = self.typosquat.finish(&p.typosquat) {
            p.typosquat_names = names;
        }
        self.namespaces
            .finish(&mut p.namespace_rules, &p.namespaces);
        p.attestation_publishers = self.attestations.finish(diags);
        p.health_rules = self.health.finish(diags, &p.health);
    }
}

/// `rule = "…"` or `rule = ["…", …]` of an exception, each checked to be a rule. Returns
/// whether every name was one.
fn exception_rules(w: &mut Walk<'_>, v: &Val<'_>, what: &str, rules: &mut Vec<RuleId>) -> bool {
    let mut ok = true;
    let items: Vec<(String, Range<usize>)> = match v.get_ref() {
        DeValue::Array(_) => w.string_list(v, what),
        _ => w
            .str(v, what)
            .map(|s| vec![(s.to_owned(), v.span())])
            .unwrap_or_default(),
    };
    for (s, sp) in items {
        match RuleId::parse(&s) {
            Some(r) => rules.push(r),
            None => {
                ok = false;
                let names: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
                w.error(
                    &sp,
                    "unknown-rule",
                    format!("{what}: `{s}` is not a rule (one of {})", names.join(", ")),
                );
            }
        }
    }
    ok
}

/// What [`exception_is_whole`] weighs of one exception as read.
struct ExceptionParts<'a> {
    rules: &'a [RuleId],
    reason: Option<&'a str>,
    has_project: bool,
    has_digest_or_id: bool,
    has_versions: bool,
    until_fixed: Option<&'a (bool, Range<usize>)>,
}

/// Whether an exception has all it needs: a rule, a reason, a scope, and `until-fixed` and
/// `versions` only where they mean something. Each missing part is reported at the exception
/// (a missing rule only when nothing else was wrong, `read_ok`: an unknown rule name already
/// said so).
fn exception_is_whole(
    w: &mut Walk<'_>,
    span: &Range<usize>,
    read_ok: bool,
    e: &ExceptionParts<'_>,
) -> bool {
    let mut ok = true;
    if e.rules.is_empty() && read_ok {
        ok = false;
        w.error(
            span,
            "missing-key",
            "an exception needs `rule`: the rule (or rules) it lifts",
        );
    }
    if e.reason.is_none_or(|r| r.trim().is_empty()) {
        ok = false;
        w.error(
            span,
            "missing-reason",
            "an exception needs a `reason`: the next person to read the policy must know why",
        );
    }
    if !e.has_project && !e.has_digest_or_id {
        ok = false;
        w.error(
            span,
            "missing-scope",
            "an exception needs a scope: `project` (with optional `versions`), `sha256` or `id`",
        );
    }
    if let Some((true, sp)) = e.until_fixed
        && e.rules.iter().any(|r| *r != RuleId::Advisories)
    {
        ok = false;
        w.error(
            sp,
            "until-fixed-scope",
            "`until-fixed` needs `rule = \"advisories\"` alone: only an advisory lists fixed versions",
        );
    }
    if e.has_versions && !e.has_project {
        ok = false;
        w.error(span, "missing-scope", "`versions` needs `project`");
    }
    ok
}

#[cfg(test)]
mod tests;
