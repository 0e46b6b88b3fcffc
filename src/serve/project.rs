//! Index pages: fetch_page → parse_page (in the upstream client) → decide → record → render.
//! A decided page is kept with both renderings; while upstream's bytes stay the same (same
//! source, same content digest, or a 304), nothing is parsed or rendered again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http::Response;

use super::audit::{Status, summary};
use super::{App, AppError, Body, ShownFile, page_response};
use crate::audit::Verdict;
use crate::dist::{ProjectName, WheelFilename};
use crate::index::render::ServedPage;
use crate::index::{Format, render};
use crate::policy::{Action, AuditState, FileDecision, apply_audits, decide_page};
use crate::upstream::{PageFetch, Validators};

pub struct CachedPage {
    pub checked_at: Instant,
    pub source: usize,
    pub validators: Validators,
    pub content_sha256: [u8; 32],
    pub html: Bytes,
    pub json: Bytes,
    pub decisions: Arc<Vec<FileDecision>>,
    shown_shas: Arc<HashSet<String>>,
    /// The page as the filename rules left it, before audits.
    served: Arc<ServedPage>,
    /// The wheels the filename rules showed, newest version first: the order they are audited.
    candidates: Arc<Vec<(String, ShownFile)>>,
    /// Set once every candidate's audit is known: then the page is final until upstream changes.
    audited: Arc<OnceLock<AuditedPage>>,
    upstream: Arc<str>,
}

/// A page whose every wheel has an audit verdict: rendered once, served until upstream changes.
pub struct AuditedPage {
    html: Bytes,
    json: Bytes,
    /// Decisions about the wheels the filename rules showed: shown, or hidden by their audit.
    pub decisions: Vec<FileDecision>,
}

impl CachedPage {
    pub fn body(&self, format: Format) -> Bytes {
        if format.is_json() {
            self.json.clone()
        } else {
            self.html.clone()
        }
    }

    /// The same decided page, confirmed current at `now`.
    fn confirmed(&self, now: Instant, validators: Option<Validators>) -> Self {
        Self {
            checked_at: now,
            source: self.source,
            validators: validators.unwrap_or_else(|| self.validators.clone()),
            content_sha256: self.content_sha256,
            html: self.html.clone(),
            json: self.json.clone(),
            decisions: self.decisions.clone(),
            shown_shas: self.shown_shas.clone(),
            served: self.served.clone(),
            candidates: self.candidates.clone(),
            audited: self.audited.clone(),
            upstream: self.upstream.clone(),
        }
    }
}

impl App {
    /// The decided page of a project, fetched at most once at a time per project (concurrent
    /// requests wait for the one fetch) and reused for the page TTL.
    pub async fn project_page(&self, name: &ProjectName) -> Result<Arc<CachedPage>, AppError> {
        self.project_page_marked(name).await.map(|(page, _)| page)
    }

    /// [`Self::project_page`], also saying whether the page is the last good one served
    /// because upstream just failed (stale).
    async fn project_page_marked(
        &self,
        name: &ProjectName,
    ) -> Result<(Arc<CachedPage>, bool), AppError> {
        let slot = {
            let mut pages = self
                .pages
                .lock()
                .map_err(|_| AppError::Internal("page table poisoned".into()))?;
            pages.entry(name.clone()).or_default().clone()
        };
        let mut cached = slot.lock().await;
        if let Some(p) = cached.as_ref()
            && p.checked_at.elapsed() < self.settings.page_ttl
        {
            self.metrics.cache_hit("page");
            return Ok((p.clone(), false));
        }
        let previous = cached.as_ref().map(|p| (p.source, &p.validators));
        let fetched = {
            let _permit = self
                .upstream_permits
                .acquire()
                .await
                .map_err(|_| AppError::Internal("upstream permits closed".into()))?;
            self.upstreams.project_page(name, previous).await
        };
        let now = Instant::now();
        let fresh = match fetched {
            Ok(PageFetch::NotModified) => {
                if let Some(p) = cached.as_ref() {
                    let p = Arc::new(p.confirmed(now, None));
                    *cached = Some(p.clone());
                    return Ok((p, false));
                }
                return Err(AppError::Internal(
                    "upstream answered 304 to an unconditional request".into(),
                ));
            }
            Ok(PageFetch::Fresh(f)) => f,
            Err(e @ crate::upstream::UpstreamError::NotFound { .. }) => {
                // A project that disappeared upstream takes its shown files with it.
                if let Some(old) = cached.take()
                    && let Ok(mut shown) = self.shown.write()
                {
                    for sha in old.shown_shas.iter() {
                        shown.remove(sha);
                    }
                }
                return Err(e.into());
            }
            Err(e) => {
                if let Some(p) = cached.as_ref() {
                    tracing::warn!(project = %name, error = %e, "upstream failed; serving the last good page");
                    return Ok((p.clone(), true));
                }
                return Err(e.into());
            }
        };
        if let Some(p) = cached.as_ref()
            && p.source == fresh.source
            && p.content_sha256 == fresh.content_sha256
        {
            let validators = Validators {
                digest: Some(fresh.content_sha256),
                ..fresh.validators
            };
            let p = Arc::new(p.confirmed(now, Some(validators)));
            *cached = Some(p.clone());
            return Ok((p, false));
        }
        let upstream = self
            .upstreams
            .sources()
            .get(fresh.source)
            .map(|s| s.describe())
            .unwrap_or_default();
        let (served, decisions) = decide_page(name, fresh.page);
        for d in decisions
            .iter()
            .filter(|d| d.decision.action == Action::Hide)
        {
            self.metrics.decision(d.decision.code.as_str());
        }
        if self.settings.audit {
            // Wheels the filename rules showed are logged once their audit decides them.
            let hidden: Vec<FileDecision> = decisions
                .iter()
                .filter(|d| d.decision.action == Action::Hide)
                .cloned()
                .collect();
            self.log.record(name.as_str(), &upstream, &hidden);
        } else {
            self.log.record(name.as_str(), &upstream, &decisions);
        }
        let shown_shas: HashSet<String> = served
            .files
            .iter()
            .filter_map(|f| f.sha256().map(str::to_owned))
            .collect();
        if let Ok(mut shown) = self.shown.write() {
            if let Some(old) = cached.as_ref() {
                for sha in old.shown_shas.difference(&shown_shas) {
                    shown.remove(sha);
                }
            }
            for f in &served.files {
                if let Some(sha) = f.sha256() {
                    shown.insert(
                        sha.to_owned(),
                        ShownFile {
                            filename: f.filename.clone(),
                            url: f.url.clone(),
                            size: f.size,
                            core_metadata: f.core_metadata.clone(),
                        },
                    );
                }
            }
        }
        let page = Arc::new(CachedPage {
            checked_at: now,
            source: fresh.source,
            validators: Validators {
                digest: Some(fresh.content_sha256),
                ..fresh.validators
            },
            content_sha256: fresh.content_sha256,
            html: render::html(&served).into(),
            json: render::json(&served).into(),
            decisions: Arc::new(decisions),
            shown_shas: Arc::new(shown_shas),
            candidates: Arc::new(candidates(&served)),
            served: Arc::new(served),
            audited: Arc::new(OnceLock::new()),
            upstream: upstream.into(),
        });
        *cached = Some(page.clone());
        Ok((page, false))
    }

    pub async fn handle_project(
        &self,
        name: &ProjectName,
        format: Format,
        user_agent: Option<&str>,
    ) -> Result<Response<Body>, AppError> {
        let (page, stale) = self.project_page_marked(name).await?;
        let mut resp = if !self.settings.audit {
            page_response(format, page.body(format), "max-age=60")
        } else if let Some(done) = page.audited.get() {
            page_response(format, done.body(format), "max-age=60")
        } else {
            let client = super::client::Client::from_user_agent(user_agent.unwrap_or_default());
            self.audited_page(name, &page, format, &client).await?
        };
        if stale {
            // Marked, and not to be kept: the next request should try upstream again.
            let h = resp.headers_mut();
            h.insert(
                "x-pipwall-stale",
                http::HeaderValue::from_static("upstream failed"),
            );
            h.insert(
                http::header::WARNING,
                http::HeaderValue::from_static("110 pipwall \"Response is Stale\""),
            );
            h.insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
        }
        Ok(resp)
    }

    /// Starts (or joins) the audit of every candidate wheel, waits for them until the deadline,
    /// and answers with those that passed. An answer that lacks wheels still being audited is
    /// marked `no-store`, so the client asks again rather than caching a partial page.
    async fn audited_page(
        &self,
        name: &ProjectName,
        page: &CachedPage,
        format: Format,
        client: &super::client::Client,
    ) -> Result<Response<Body>, AppError> {
        let deadline = tokio::time::Instant::now() + self.settings.audit_deadline;
        // The wheels this client can install go first (newest first within each group); the
        // queue is fair, so they are the first to run.
        let installable = |f: &ShownFile| {
            WheelFilename::parse_any(&f.filename).is_ok_and(|w| client.may_install(&w))
        };
        let order: Vec<usize> = (0..page.candidates.len())
            .filter(|&i| installable(&page.candidates[i].1))
            .chain((0..page.candidates.len()).filter(|&i| !installable(&page.candidates[i].1)))
            .collect();
        let mut statuses: Vec<Option<Status>> = (0..page.candidates.len()).map(|_| None).collect();
        for i in order {
            if let (Some((sha, file)), Some(slot)) = (page.candidates.get(i), statuses.get_mut(i)) {
                *slot = Some(self.audits.status(sha, file));
            }
        }
        let mut statuses: Vec<Status> = statuses.into_iter().flatten().collect();
        for status in &mut statuses {
            if let Status::Running(rx) = status {
                let _ = tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await;
            }
        }
        let mut states: HashMap<&str, AuditState> = HashMap::with_capacity(statuses.len());
        for ((sha, _), status) in page.candidates.iter().zip(statuses) {
            let outcome = match status {
                Status::Done(r) => Some(Ok(r)),
                Status::Error(why) => Some(Err(why)),
                Status::Running(rx) => rx.borrow().clone(),
            };
            let state = match outcome {
                None => AuditState::Pending,
                Some(Ok(r)) if r.verdict == Verdict::Pass => AuditState::Passed,
                Some(Ok(r)) => AuditState::Failed(summary(&r)),
                Some(Err(why)) => AuditState::Error(why.to_string()),
            };
            states.insert(sha.as_str(), state);
        }
        let (served, hidden) = apply_audits(&page.served, |sha| {
            states.get(sha).cloned().unwrap_or(AuditState::Pending)
        });
        let complete = !states
            .values()
            .any(|s| matches!(s, AuditState::Pending | AuditState::Error(_)));
        if !complete {
            let body: Bytes = if format.is_json() {
                render::json(&served).into()
            } else {
                render::html(&served).into()
            };
            let mut resp = page_response(format, body, "no-store");
            let pending = hidden
                .iter()
                .filter(|d| d.decision.code == crate::policy::Code::AuditPending)
                .count();
            if let Ok(v) = http::HeaderValue::from_str(&pending.to_string()) {
                resp.headers_mut().insert("x-pipwall-audits-pending", v);
            }
            return Ok(resp);
        }
        let hidden_names: HashSet<&str> = hidden.iter().map(|d| d.filename.as_str()).collect();
        let mut decisions: Vec<FileDecision> = page
            .decisions
            .iter()
            .filter(|d| {
                d.decision.action == Action::Show && !hidden_names.contains(d.filename.as_str())
            })
            .cloned()
            .collect();
        decisions.extend(hidden);
        let done = AuditedPage {
            html: render::html(&served).into(),
            json: render::json(&served).into(),
            decisions,
        };
        if page.audited.set(done).is_ok()
            && let Some(done) = page.audited.get()
        {
            self.log
                .record(name.as_str(), &page.upstream, &done.decisions);
            for d in &done.decisions {
                self.metrics.decision(d.decision.code.as_str());
            }
        }
        let body = page
            .audited
            .get()
            .map(|d| d.body(format))
            .unwrap_or_default();
        Ok(page_response(format, body, "max-age=60"))
    }
}

impl AuditedPage {
    fn body(&self, format: Format) -> Bytes {
        if format.is_json() {
            self.json.clone()
        } else {
            self.html.clone()
        }
    }
}

/// The shown wheels, newest version first: resolvers almost always take the newest compatible
/// one, so those audits should finish first.
fn candidates(served: &ServedPage) -> Vec<(String, ShownFile)> {
    let mut out: Vec<(Option<pep440_rs::Version>, String, ShownFile)> = served
        .files
        .iter()
        .filter_map(|f| {
            let sha = f.sha256()?.to_owned();
            let version = WheelFilename::parse_any(&f.filename)
                .ok()
                .map(|w| w.version);
            Some((
                version,
                sha,
                ShownFile {
                    filename: f.filename.clone(),
                    url: f.url.clone(),
                    size: f.size,
                    core_metadata: f.core_metadata.clone(),
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out.into_iter().map(|(_, sha, f)| (sha, f)).collect()
}
