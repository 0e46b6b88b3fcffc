//! The phases of a project request, as functions `serve`, `explain` and `vet` all call: one
//! orchestration of what is shown and why, so the proxy and the commands that explain it cannot
//! drift apart.
//!
//! | phase | function | job |
//! |---|---|---|
//! | gate | [`gate`] | the policy on the project's name alone: a blocked project is answered before any upstream is asked |
//! | fetch_page | [`fetch_page`] | the project's page from its upstream (a `[[private]]` route picks one), conditional on what was seen before |
//! | parse_page | [`crate::index::json::parse`], [`crate::index::html::parse`] | called by the upstream client as the bytes arrive: one model, a bad entry hides one file |
//! | classify, decide | [`decide`] | each file by its name (PEP 427/425/625), then by the policy's rules |
//! | audit | [`candidates`], [`Plan`], [`audit`], [`queue_background`], [`known_states`] | the wheels the rules showed, newest first; those some installer can install ([`crate::demand`]) downloaded once and audited ([`crate::cache`]) |
//! | apply_audits | [`crate::policy::apply_audits`] | the policy on the audit findings |
//! | record | [`record`] | one decision-log line per decided file, and the decision counters |
//! | render | [`render()`] | the page in the negotiated format (PEP 503 HTML or PEP 691 JSON) |
//!
//! What stays with the callers is what differs between them: `serve` keeps decided pages and
//! the shown-file table, waits for audits only until a deadline and answers HTTP; `explain`
//! and `vet` wait for every audit they ask for and print.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::ShownFile;
use crate::cache::audits::{Audits, Cause, Status};
use crate::decision_log::DecisionLog;
use crate::demand::{Candidate, Listing, Plan};
use crate::dist::{ProjectName, WheelFilename};
use crate::index::render::{self, ServedPage};
use crate::index::{Format, ProjectPage};
use crate::metrics::Metrics;
use crate::policy::{AuditState, FileDecision, Gate, Policy, View, decide_page, is_audited};
use crate::upstream::{PageFetch, UpstreamError, Upstreams, Validators};

/// Why a page could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A `[[private]]` route names an upstream `serve` was not given (checked at start, so only
    /// a command run with other upstreams meets it).
    #[error("{origin}: the private upstream `{upstream}` is not configured")]
    UnknownPrivateUpstream { origin: String, upstream: String },
}

/// gate: the policy on the project alone, before any upstream is asked.
pub fn gate<'p>(policy: &'p Policy, name: &ProjectName, now: jiff::Timestamp) -> Gate<'p> {
    policy.gate(name, now)
}

/// fetch_page: the project's page from the upstream the policy routes it to (any, in order,
/// when it names none). `previous` is the source and validators of the page last decided, so
/// an unchanged page is answered `NotModified`.
pub async fn fetch_page(
    upstreams: &Upstreams,
    policy: &Policy,
    name: &ProjectName,
    previous: Option<(usize, &Validators)>,
) -> Result<PageFetch, FetchError> {
    let only = match policy.private_upstream(name.as_str()) {
        Some(route) => Some(upstreams.find(&route.upstream).ok_or_else(|| {
            FetchError::UnknownPrivateUpstream {
                origin: route.origin.to_string(),
                upstream: route.upstream.clone(),
            }
        })?),
        None => None,
    };
    Ok(upstreams.project_page_from(name, previous, only).await?)
}

/// A page decided by the filename rules and the policy, before audits.
pub struct Decided {
    pub served: ServedPage,
    pub decisions: Vec<FileDecision>,
    /// The upstream that answered, as logs show it.
    pub upstream: String,
    /// When a decision on the page changes by itself (a cooldown ends, an exception expires).
    pub recheck_at: Option<jiff::Timestamp>,
}

/// classify and decide: every file of `page` (from upstream `source`) by its name, then by the
/// policy's rules, under the rules for the upstream that answered.
pub fn decide(
    upstreams: &Upstreams,
    view: &mut View<'_>,
    name: &ProjectName,
    source: usize,
    page: ProjectPage,
) -> Decided {
    let upstream = upstreams
        .sources()
        .get(source)
        .map(|s| s.describe())
        .unwrap_or_default();
    if let Some(label) = upstreams.label(source) {
        view.answered_by(label);
    }
    let (served, decisions) = decide_page(name, page, view);
    Decided {
        served,
        decisions,
        upstream,
        recheck_at: view.recheck_at(),
    }
}

/// The wheels a decided page shows, each with its sha256, newest version first: resolvers
/// almost always take the newest compatible one, so those audits should finish first.
pub fn candidates(served: &ServedPage) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = served
        .files
        .iter()
        .filter(|f| is_audited(&f.filename))
        .filter_map(|f| {
            let sha256 = f.sha256()?.to_owned();
            let wheel = WheelFilename::parse_any(&f.filename).ok();
            let settles =
                f.yanked.is_none() && wheel.as_ref().is_some_and(|w| !w.version.any_prerelease());
            Some(Candidate {
                sha256,
                file: ShownFile::of(f),
                wheel,
                settles,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        let version = |c: &Candidate| c.wheel.as_ref().map(|w| w.version.clone());
        version(b).cmp(&version(a))
    });
    out
}

/// audit: starts (or joins) the audit of each wheel, in the order given (the queue is fair, so
/// the first asked run first), and waits for them until `deadline`, or until each has ended
/// when there is none. A wheel still running at the deadline is [`AuditState::Pending`].
pub async fn audit<'a>(
    audits: &Arc<Audits>,
    wheels: impl IntoIterator<Item = (&'a str, &'a ShownFile)>,
    deadline: Option<tokio::time::Instant>,
) -> HashMap<String, AuditState> {
    let statuses: Vec<(&str, Status)> = wheels
        .into_iter()
        .map(|(sha, file)| (sha, audits.status(sha, file, Cause::Waiting)))
        .collect();
    let mut states = HashMap::with_capacity(statuses.len());
    for (sha, status) in statuses {
        let outcome = match status {
            Status::Done(r) => Some(Ok(r)),
            Status::Error(why) => Some(Err(why)),
            Status::Running(mut rx) => {
                let ended = rx.wait_for(Option::is_some);
                match deadline {
                    Some(at) => {
                        let _ = tokio::time::timeout_at(at, ended).await;
                    }
                    None => {
                        let _ = ended.await;
                    }
                }
                rx.borrow().clone()
            }
        };
        let state = match outcome {
            None => AuditState::Pending,
            Some(Ok(r)) => AuditState::Done(r),
            Some(Err(why)) => AuditState::Error(why.to_string()),
        };
        states.insert(sha.to_owned(), state);
    }
    states
}

/// The background half of a [`Plan`]: queued behind every waiting request, not waited for.
pub fn queue_background(audits: &Arc<Audits>, candidates: &[Candidate], plan: &Plan) {
    for &(i, cause) in &plan.background {
        if let Some(c) = candidates.get(i) {
            let _ = audits.status(&c.sha256, &c.file, cause);
        }
    }
}

/// What a page lists of each candidate, from what is known of its audit now (nothing is
/// started): a verdict, a recent failure, or, for a wheel not audited, `Pending` when this
/// answer waited for it in vain, else held or not demanded as `listing` says. `waited` are the
/// indices this answer waited for; `partial`: the answer did not get what it waited for, so
/// it lists nothing unaudited its client could pick instead.
pub fn known_states(
    audits: &Audits,
    candidates: &[Candidate],
    plan: &Plan,
    listing: Listing,
    partial: bool,
) -> HashMap<String, AuditState> {
    let waited: std::collections::HashSet<usize> = plan.waited.iter().flatten().copied().collect();
    let mut states = HashMap::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        let state = match audits.peek(&c.sha256, &c.file) {
            Some(Ok(r)) => AuditState::Done(r),
            Some(Err(why)) => AuditState::Error(why.to_string()),
            None if partial && waited.contains(&i) => AuditState::Pending,
            None if !plan.demanded.get(i).copied().unwrap_or_default() => AuditState::NotDemanded {
                listed: listing == Listing::Held,
            },
            None if listing == Listing::Held => AuditState::Held,
            None => AuditState::Pending,
        };
        states.insert(c.sha256.clone(), state);
    }
    states
}

/// record: one decision-log line per decided file, each also counted by its code (so
/// `pipwall_decisions_total` and the log always agree).
pub fn record(
    log: &DecisionLog,
    metrics: &Metrics,
    scope: &str,
    name: &str,
    upstream: &str,
    decisions: &[FileDecision],
) {
    for d in decisions {
        metrics.decision(d.decision.code.as_str());
    }
    log.record(scope, name, upstream, decisions);
}

/// render: the page in the negotiated format.
pub fn render(served: &ServedPage, format: Format) -> Bytes {
    if format.is_json() {
        render::json(served).into()
    } else {
        render::html(served).into()
    }
}
