//! Index pages: fetch_page → parse_page (in the upstream client) → decide → record → render.
//! A decided page is kept with both renderings; while upstream's bytes stay the same (same
//! source, same content digest, or a 304), nothing is parsed or rendered again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
// tokio's clock, so tests on a paused clock can step past the page TTL.
use tokio::time::Instant;

use bytes::Bytes;
use http::Response;

use super::{App, AppError, Body, ScopeId, ShownFile, ShownKey, page_response};
use crate::demand::{Candidate, Environment, Listing, Plan};
use crate::dist::ProjectName;
use crate::index::render::ServedPage;
use crate::index::{Format, render};
use crate::pipeline;
use crate::policy::{
    AuditState, Blocked, Code, Decision, FileDecision, Gate, Policy, apply_audits, is_audited,
};
use crate::upstream::{PageFetch, Validators};

pub struct CachedPage {
    pub checked_at: Instant,
    pub source: usize,
    pub validators: Validators,
    pub content_sha256: [u8; 32],
    pub html: Bytes,
    pub json: Bytes,
    pub decisions: Arc<Vec<FileDecision>>,
    /// (sha256, filename) of every file the page shows: the keys of its shown-file entries.
    shown_shas: Arc<HashSet<ShownKey>>,
    /// The page as the filename rules left it, before audits.
    served: Arc<ServedPage>,
    /// The wheels the filename rules showed, newest version first: the order they are audited.
    candidates: Arc<Vec<Candidate>>,
    /// What answers with audits on share while upstream's page stays the same.
    audited: Arc<Audited>,
    upstream: Arc<str>,
    /// The scope the page was decided for, and the policy it was decided under.
    scope: ScopeId,
    policy: Arc<Policy>,
    /// When a decision on this page changes by itself (a cooldown ends, an exception expires).
    recheck_at: Option<jiff::Timestamp>,
    /// Set when the policy hides the whole project: the page is served with no files.
    pub blocked: Option<Decision>,
    /// When the page was last used, on the app's page clock.
    last_used: Arc<std::sync::atomic::AtomicU64>,
}

/// The audited answers of one decided page: its plans per asking environment, its last
/// complete rendering, and what the log already says about each wheel.
#[derive(Default)]
pub struct Audited {
    /// Per asking environment (`None`: a client that did not say), with the generation of
    /// the known environments it was made at, and whether its background work was queued.
    plans: Mutex<HashMap<Option<Environment>, PlanMade>>,
    /// The last complete answer, and the audit generation it was rendered at: a complete
    /// answer depends only on what is known of the audits, so it is served again until an
    /// audit ends.
    rendered: Mutex<Option<Rendered>>,
    /// The code last logged for each wheel, so each change of a wheel's decision is logged
    /// once.
    logged: Mutex<HashMap<String, Code>>,
}

/// A plan, and the generation of the known environments it was made at.
type PlanMade = (u64, Arc<Plan>);

struct Rendered {
    generation: u64,
    html: Bytes,
    json: Bytes,
    /// Whether the page lists any file.
    listed: bool,
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
            scope: self.scope,
            policy: self.policy.clone(),
            recheck_at: self.recheck_at,
            blocked: self.blocked.clone(),
            last_used: self.last_used.clone(),
        }
    }

    /// About how much memory the page holds: its renderings, and its entries and decisions.
    fn bytes(&self) -> u64 {
        let audited = self
            .audited
            .rendered
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.html.len() + r.json.len()))
            .unwrap_or_default();
        (self.html.len()
            + self.json.len()
            + audited
            + self.served.files.len() * 320
            + self.candidates.len() * 200
            + self.decisions.len() * 160) as u64
    }

    /// Whether the decisions still hold: same policy, and no cooldown or exception has run out.
    fn current(&self, policy: &Arc<Policy>, now: jiff::Timestamp) -> bool {
        Arc::ptr_eq(&self.policy, policy) && self.recheck_at.is_none_or(|t| now < t)
    }

    /// The page of a project the policy hides whole: no files, and a PEP 792 `quarantined`
    /// status whose reason is the decision's sentence.
    fn blocked(
        name: &ProjectName,
        decision: Decision,
        scope: ScopeId,
        policy: Arc<Policy>,
    ) -> Self {
        let served = ServedPage {
            name: name.to_string(),
            files: Vec::new(),
            versions: Vec::new(),
            status: Some(crate::index::ProjectStatus {
                status: "quarantined".into(),
                reason: Some(format!(
                    "pipwall: {}: {}",
                    decision.code,
                    decision.sentence()
                )),
            }),
        };
        Self {
            checked_at: Instant::now(),
            source: usize::MAX,
            validators: Validators::default(),
            content_sha256: [0; 32],
            html: render::html(&served).into(),
            json: render::json(&served).into(),
            decisions: Arc::new(vec![FileDecision {
                filename: format!("{name} (every file)"),
                sha256: None,
                version: None,
                decision: decision.clone(),
            }]),
            shown_shas: Arc::default(),
            served: Arc::new(served),
            candidates: Arc::default(),
            audited: Arc::default(),
            upstream: Arc::from(""),
            scope,
            policy,
            recheck_at: None,
            blocked: Some(decision),
            last_used: Arc::default(),
        }
    }
}

impl App {
    /// The decided page of a project in a scope, fetched at most once at a time per project
    /// and scope (concurrent requests wait for the one fetch) and reused for the page TTL.
    pub async fn project_page(
        &self,
        scope: ScopeId,
        name: &ProjectName,
    ) -> Result<Arc<CachedPage>, AppError> {
        self.project_page_marked(scope, name)
            .await
            .map(|(page, _)| page)
    }

    /// [`Self::project_page`], also saying whether the page is the last good one served
    /// because upstream just failed (stale).
    async fn project_page_marked(
        &self,
        scope: ScopeId,
        name: &ProjectName,
    ) -> Result<(Arc<CachedPage>, bool), AppError> {
        let slot = {
            let mut pages = self
                .pages
                .lock()
                .map_err(|_| AppError::Internal("page table poisoned".into()))?;
            pages.entry((scope, name.clone())).or_default().clone()
        };
        let mut cached = slot.lock().await;
        let policy = self.policy_of(scope);
        let now_ts = jiff::Timestamp::now();
        if let Some(p) = cached.as_ref()
            && p.checked_at.elapsed() < self.settings.page_ttl
            && p.current(&policy, now_ts)
        {
            self.metrics.cache_hit("page");
            self.touch_page(p);
            return Ok((p.clone(), false));
        }
        // Blocked projects are decided before any upstream is asked.
        if let Gate::Blocked { decision, style } = pipeline::gate(&policy, name, now_ts) {
            self.forget_shown(scope, cached.take());
            let page = self.blocked_page(scope, name, policy.clone(), decision, style)?;
            *cached = Some(page.clone());
            return Ok((page, false));
        }
        // A page decided under another policy (or whose cooldown ran out) is decided again,
        // so its upstream bytes are needed even if they did not change.
        let reusable = cached
            .as_ref()
            .filter(|p| p.current(&policy, now_ts) && p.blocked.is_none());
        let previous = reusable.map(|p| (p.source, &p.validators));
        let fetched = {
            let _permit = self
                .upstream_permits
                .acquire()
                .await
                .map_err(|_| AppError::Internal("upstream permits closed".into()))?;
            pipeline::fetch_page(&self.upstreams, &policy, name, previous).await
        };
        let now = Instant::now();
        let fresh = match fetched {
            Ok(PageFetch::NotModified) => {
                if let Some(p) = reusable {
                    let p = Arc::new(p.confirmed(now, None));
                    *cached = Some(p.clone());
                    return Ok((p, false));
                }
                return Err(AppError::Internal(
                    "upstream answered 304 to an unconditional request".into(),
                ));
            }
            Ok(PageFetch::Fresh(f)) => f,
            Err(pipeline::FetchError::Upstream(
                e @ crate::upstream::UpstreamError::NotFound { .. },
            )) => {
                // A project that disappeared upstream takes its shown files with it.
                self.forget_shown(scope, cached.take());
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
        if let Some(p) = reusable
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
        let page = self.decide_fresh(scope, name, policy, *fresh, cached.as_deref(), now)?;
        self.touch_page(&page);
        *cached = Some(page.clone());
        drop(cached);
        self.evict_pages(scope, name);
        Ok((page, false))
    }

    /// A project the policy hides whole, decided and logged: answered as a page with no files
    /// (PEP 792 `quarantined`), or refused when the policy says to answer 404.
    fn blocked_page(
        &self,
        scope: ScopeId,
        name: &ProjectName,
        policy: Arc<Policy>,
        decision: Decision,
        style: Blocked,
    ) -> Result<Arc<CachedPage>, AppError> {
        let hidden = [FileDecision {
            filename: format!("{name} (every file)"),
            sha256: None,
            version: None,
            decision: decision.clone(),
        }];
        pipeline::record(
            &self.log,
            &self.metrics,
            self.scope_name(scope),
            name.as_str(),
            "",
            &hidden,
        );
        if style == Blocked::NotFound {
            return Err(AppError::Blocked {
                code: decision.code,
                sentence: decision.sentence(),
            });
        }
        Ok(Arc::new(CachedPage::blocked(name, decision, scope, policy)))
    }

    /// A page upstream changed (or that was decided under another policy): decided, logged,
    /// its files made downloadable in the scope (and those of `old` it no longer lists
    /// withdrawn), and rendered when audits are off.
    fn decide_fresh(
        &self,
        scope: ScopeId,
        name: &ProjectName,
        policy: Arc<Policy>,
        fresh: crate::upstream::FetchedPage,
        old: Option<&CachedPage>,
        now: Instant,
    ) -> Result<Arc<CachedPage>, AppError> {
        let scope_name = self.scope_name(scope);
        let Gate::Open(mut view) = pipeline::gate(&policy, name, jiff::Timestamp::now()) else {
            return Err(AppError::Internal(
                "the policy's verdict on the project changed".into(),
            ));
        };
        let pipeline::Decided {
            served,
            decisions,
            upstream,
            recheck_at,
        } = pipeline::decide(&self.upstreams, &mut view, name, fresh.source, fresh.page);
        drop(view);
        // With audits on, the wheels the policy showed are logged once their audit decides them.
        let logged: Vec<FileDecision> = if self.settings.audit {
            decisions
                .iter()
                .filter(|d| !d.decision.action.shows() || !is_audited(&d.filename))
                .cloned()
                .collect()
        } else {
            decisions.clone()
        };
        pipeline::record(
            &self.log,
            &self.metrics,
            scope_name,
            name.as_str(),
            &upstream,
            &logged,
        );
        let shown_shas: HashSet<ShownKey> = served
            .files
            .iter()
            .filter_map(|f| Some((f.sha256()?.to_owned(), f.filename.clone())))
            .collect();
        if let Some(Ok(mut shown)) = self.scopes.get(scope).map(|s| s.shown.write()) {
            if let Some(old) = old {
                for key in old.shown_shas.difference(&shown_shas) {
                    shown.remove(key);
                }
            }
            for f in &served.files {
                if let Some(sha) = f.sha256() {
                    shown.insert((sha.to_owned(), f.filename.clone()), ShownFile::of(f));
                }
            }
        }
        // With audits on, what is served is the audited page; the page before audits is never
        // sent, so it is not rendered (or kept).
        let (html, json) = if self.settings.audit {
            (Bytes::new(), Bytes::new())
        } else {
            (
                pipeline::render(&served, Format::Html),
                pipeline::render(&served, Format::Json),
            )
        };
        let page = Arc::new(CachedPage {
            checked_at: now,
            source: fresh.source,
            validators: Validators {
                digest: Some(fresh.content_sha256),
                ..fresh.validators
            },
            content_sha256: fresh.content_sha256,
            html,
            json,
            decisions: Arc::new(decisions),
            shown_shas: Arc::new(shown_shas),
            candidates: Arc::new(pipeline::candidates(&served)),
            served: Arc::new(served),
            audited: Arc::default(),
            upstream: upstream.into(),
            scope,
            policy,
            recheck_at,
            blocked: None,
            last_used: Arc::default(),
        });
        Ok(page)
    }

    fn touch_page(&self, page: &CachedPage) {
        let now = self
            .page_clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        page.last_used
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// Keeps the decided pages under `page_cache_bytes`: past it, the least recently used
    /// projects are dropped (down to 80%) and decided again when next asked for. Pages in use
    /// right now, and `keep`, stay. Their shown files stay downloadable.
    fn evict_pages(&self, keep_scope: ScopeId, keep: &ProjectName) {
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        let mut sizes: Vec<(u64, u64, (ScopeId, ProjectName))> = Vec::with_capacity(pages.len());
        let mut total = 0u64;
        for (key, slot) in pages.iter() {
            let Ok(guard) = slot.try_lock() else { continue };
            if let Some(p) = guard.as_ref() {
                let b = p.bytes();
                total += b;
                if key.0 != keep_scope || &key.1 != keep {
                    let used = p.last_used.load(std::sync::atomic::Ordering::Relaxed);
                    sizes.push((used, b, key.clone()));
                }
            }
        }
        if total <= self.settings.page_cache_bytes {
            return;
        }
        sizes.sort_unstable_by_key(|(used, _, _)| *used);
        let target = self.settings.page_cache_bytes / 10 * 8;
        for (_, b, name) in sizes {
            if total <= target {
                break;
            }
            pages.remove(&name);
            total = total.saturating_sub(b);
            self.metrics.cache_evicted("page");
        }
    }

    /// Withdraws the files a page showed in a scope: a download of them there is refused from
    /// now on.
    fn forget_shown(&self, scope: ScopeId, old: Option<Arc<CachedPage>>) {
        if let Some(old) = old
            && let Some(Ok(mut shown)) = self.scopes.get(scope).map(|s| s.shown.write())
        {
            for key in old.shown_shas.iter() {
                shown.remove(key);
            }
        }
    }

    pub async fn handle_project(
        &self,
        scope: ScopeId,
        name: &ProjectName,
        format: Format,
        user_agent: Option<&str>,
    ) -> Result<Response<Body>, AppError> {
        let (page, stale) = self.project_page_marked(scope, name).await?;
        let (mut resp, listed) = if !self.settings.audit || page.blocked.is_some() {
            let listed = !page.served.files.is_empty();
            (
                page_response(format, page.body(format), "max-age=60"),
                listed,
            )
        } else {
            let env = user_agent.and_then(Environment::from_user_agent);
            self.audited_page(name, &page, format, env).await?
        };
        // Learned only once files are listed after their audits: a project whose wheels all
        // failed is not something the run used.
        if listed && let Some(learn) = &self.settings.learn {
            learn.page(name);
        }
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

    /// Plans the page's audits for the asking client ([`crate::demand`]), queues the
    /// background work, waits until the deadline for what its client needs to resolve, and
    /// answers with what may be listed now (and whether it lists any file). An answer that
    /// did not get what it waited for is marked `no-store`, so the client asks again rather
    /// than caching a partial page.
    async fn audited_page(
        &self,
        name: &ProjectName,
        page: &CachedPage,
        format: Format,
        env: Option<Environment>,
    ) -> Result<(Response<Body>, bool), AppError> {
        let deadline = tokio::time::Instant::now() + self.settings.audit_deadline;
        if let Some(env) = &env
            && self.environments.saw(env, jiff::Timestamp::now())
        {
            self.metrics.environments_known(self.environments.len());
            let known = self.environments.clone();
            tokio::spawn(async move {
                if let Err(e) = known.save().await {
                    tracing::warn!(error = %e, "could not write the known environments");
                }
            });
        }
        let demand = &page.policy.audit_demand;
        let plan = self.plan_for(page, env);
        let Gate::Open(view) = pipeline::gate(&page.policy, name, jiff::Timestamp::now()) else {
            // The verdict on the project changed since the page was decided (an exception
            // expired): nothing is listed, and the next request decides the page again.
            let empty = ServedPage {
                name: page.served.name.clone(),
                ..ServedPage::default()
            };
            let body = pipeline::render(&empty, format);
            return Ok((page_response(format, body, "no-store"), false));
        };
        let mut partial = false;
        for group in &plan.waited {
            let states = pipeline::audit(
                &self.audits,
                group.iter().filter_map(|&i| {
                    let c = page.candidates.get(i)?;
                    Some((c.sha256.as_str(), &c.file))
                }),
                Some(deadline),
            )
            .await;
            if states
                .values()
                .any(|s| matches!(s, AuditState::Pending | AuditState::Error(_)))
            {
                partial = true;
                break;
            }
            // Under "held", one final version with a wheel that passed is enough to resolve:
            // older ones are listed held. A version whose wheels all failed gives way.
            let settled = group.iter().any(|&i| {
                page.candidates.get(i).is_some_and(|c| {
                    c.settles
                        && matches!(states.get(&c.sha256), Some(AuditState::Done(r))
                            if view.judge_audit(&c.sha256, c.wheel.as_ref().map(|w| &w.version), r).action.shows())
                })
            });
            if demand.listing == Listing::Held && settled {
                break;
            }
        }
        let generation = self.audits.generation();
        if !partial
            && let Ok(rendered) = page.audited.rendered.lock()
            && let Some(r) = rendered.as_ref()
            && r.generation == generation
        {
            let body = if format.is_json() {
                r.json.clone()
            } else {
                r.html.clone()
            };
            return Ok((page_response(format, body, "max-age=60"), r.listed));
        }
        let states = pipeline::known_states(
            &self.audits,
            &page.candidates,
            &plan,
            demand.listing,
            partial,
        );
        let (served, all) = apply_audits(&page.served, &page.decisions, &view, |sha| {
            states.get(sha).cloned().unwrap_or(AuditState::Pending)
        });
        drop(view);
        self.log_changes(name, page, &all);
        let listed = !served.files.is_empty();
        if partial {
            let body = pipeline::render(&served, format);
            let mut resp = page_response(format, body, "no-store");
            let pending = all
                .iter()
                .filter(|d| d.decision.code == Code::AuditPending)
                .count();
            if let Ok(v) = http::HeaderValue::from_str(&pending.to_string()) {
                resp.headers_mut().insert("x-pipwall-audits-pending", v);
            }
            return Ok((resp, listed));
        }
        let rendered = Rendered {
            generation,
            html: pipeline::render(&served, Format::Html),
            json: pipeline::render(&served, Format::Json),
            listed,
        };
        let body = if format.is_json() {
            rendered.json.clone()
        } else {
            rendered.html.clone()
        };
        if let Ok(mut slot) = page.audited.rendered.lock() {
            *slot = Some(rendered);
        }
        Ok((page_response(format, body, "max-age=60"), listed))
    }

    /// The plan for `env` on `page`, made once per environment (and again when a new
    /// environment is seen); its background work is queued when it is made.
    fn plan_for(&self, page: &CachedPage, env: Option<Environment>) -> Arc<Plan> {
        let generation = self.environments.generation();
        if let Ok(plans) = page.audited.plans.lock()
            && let Some((made_at, plan)) = plans.get(&env)
            && *made_at == generation
        {
            return plan.clone();
        }
        let seen = self.environments.all();
        let plan = Arc::new(Plan::new(
            &page.candidates,
            env.as_ref(),
            &page.policy.audit_demand,
            &seen,
        ));
        pipeline::queue_background(&self.audits, &page.candidates, &plan);
        if let Ok(mut plans) = page.audited.plans.lock() {
            plans.insert(env, (generation, plan.clone()));
        }
        plan
    }

    /// Logs each audited wheel's decision when it differs from the one last logged for it on
    /// this page (held, then passed or failed): every change is in the log, once.
    fn log_changes(&self, name: &ProjectName, page: &CachedPage, all: &[FileDecision]) {
        let Ok(mut logged) = page.audited.logged.lock() else {
            return;
        };
        let changed: Vec<FileDecision> = all
            .iter()
            .filter(|d| {
                is_audited(&d.filename)
                    && d.sha256.as_ref().is_some_and(|sha| {
                        page.shown_shas.contains(&(sha.clone(), d.filename.clone()))
                    })
                    && d.decision.code != Code::AuditPending
                    && logged.get(&d.filename) != Some(&d.decision.code)
            })
            .cloned()
            .collect();
        for d in &changed {
            logged.insert(d.filename.clone(), d.decision.code);
        }
        drop(logged);
        if !changed.is_empty() {
            pipeline::record(
                &self.log,
                &self.metrics,
                self.scope_name(page.scope),
                name.as_str(),
                &page.upstream,
                &changed,
            );
        }
    }
}
