//! Index pages: fetch_page → parse_page (in the upstream client) → decide → record → render.
//! A decided page is kept with both renderings; while upstream's bytes stay the same (same
//! source, same content digest, or a 304), nothing is parsed or rendered again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Response;

use super::{App, AppError, Body, ShownFile, page_response};
use crate::dist::ProjectName;
use crate::index::{Format, render};
use crate::policy::{FileDecision, decide_page};
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
        }
    }
}

impl App {
    /// The decided page of a project, fetched at most once at a time per project (concurrent
    /// requests wait for the one fetch) and reused for the page TTL.
    pub async fn project_page(&self, name: &ProjectName) -> Result<Arc<CachedPage>, AppError> {
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
            return Ok(p.clone());
        }
        let previous = cached.as_ref().map(|p| (p.source, &p.validators));
        let fetched = self.upstreams.project_page(name, previous).await;
        let now = Instant::now();
        let fresh = match fetched {
            Ok(PageFetch::NotModified) => {
                if let Some(p) = cached.as_ref() {
                    let p = Arc::new(p.confirmed(now, None));
                    *cached = Some(p.clone());
                    return Ok(p);
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
                    return Ok(p.clone());
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
            return Ok(p);
        }
        let upstream = self
            .upstreams
            .sources()
            .get(fresh.source)
            .map(|s| s.describe())
            .unwrap_or_default();
        let (served, decisions) = decide_page(name, fresh.page);
        self.log.record(name.as_str(), &upstream, &decisions);
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
        });
        *cached = Some(page.clone());
        Ok(page)
    }

    pub async fn handle_project(
        &self,
        name: &ProjectName,
        format: Format,
    ) -> Result<Response<Body>, AppError> {
        let page = self.project_page(name).await?;
        Ok(page_response(format, page.body(format), "max-age=60"))
    }
}
