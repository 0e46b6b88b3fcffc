//! The request path. `App` holds what every request shares; `project` answers index pages
//! (phases fetch_page → parse_page → decide → record → render) and `file` answers downloads.
//! Errors become responses in one place, [`AppError::into_response`].

pub mod file;
pub mod project;
pub mod root;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

pub use crate::cache::ShownFile;
use crate::decision_log::DecisionLog;
use crate::dist::ProjectName;
use crate::index::Format;
use crate::policy::Code;
use crate::upstream::{UpstreamError, Upstreams};

pub type Body = BoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub struct Settings {
    pub cache_dir: PathBuf,
    /// How long a decided page is served without asking upstream again.
    pub page_ttl: Duration,
    /// Whether wheels are audited before they are shown. Off, only the filename rules apply:
    /// for measuring, or for an upstream that is itself a vetted mirror.
    pub audit: bool,
    /// How long a page request waits for audits before answering with what has passed.
    pub audit_deadline: Duration,
    /// Audits running at once (each downloads one wheel and parses it on a blocking thread).
    pub audit_jobs: usize,
    /// Wheels downloaded for audits at once: network-bound, so more than the audits that can
    /// run on the CPUs (`audit_jobs`).
    pub audit_downloads: usize,
    /// Clients must authenticate (basic or bearer) when set; `/healthz` stays open.
    pub auth: Option<Arc<crate::auth::Users>>,
    /// The file cache is kept under this size; least recently used files go first.
    pub cache_max_bytes: u64,
    /// Decided pages kept in memory, about; least recently used projects are dropped past it
    /// (and decided again when next asked for).
    pub page_cache_bytes: u64,
    pub server: ServerLimits,
    /// The policy the server starts with at `/simple/`; [`App::set_policies`] replaces it.
    pub policy: Arc<crate::policy::Policy>,
    /// Further indexes, each at `/NAME/simple/` under its own policy (`serve --scope`).
    pub scopes: Vec<(String, Arc<crate::policy::Policy>)>,
    /// `--learn`: records the projects served, for an allow-list.
    pub learn: Option<Arc<crate::policy::learn::Learner>>,
    /// `--state`: what replicas share (reports, claims, environments, learning records).
    pub state: Option<Arc<crate::state::SharedState>>,
}

/// What one client connection may cost the server.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Connections served at once; past it, new ones wait to be accepted.
    pub max_connections: usize,
    /// Connections one client address may hold at once; past it, its new ones are closed at
    /// once, so one address cannot take every connection (issue 16: 4,096 idle connections
    /// from one host locked everyone out, health probes included).
    pub max_connections_per_address: usize,
    /// Time for a client to send a request's headers, also the longest a kept-alive HTTP/1.1
    /// connection may sit idle before its next request (slowloris).
    pub header_timeout: Duration,
    /// Largest request head (HTTP/1.1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Requests per second per client address, when set (`429` past it).
    pub rate_limit: Option<Arc<crate::ratelimit::RateLimit>>,
    /// Project pages fetched from upstream at once, and also downloads streamed from upstream
    /// at once (audits download with their own jobs).
    pub max_upstream_requests: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_timeout: Duration::from_secs(30),
            max_header_bytes: 64 << 10,
            rate_limit: None,
            max_upstream_requests: 64,
        }
    }
}

impl Settings {
    /// The defaults `pipwall serve` documents: 60 s page TTL, audits on, a 10 s deadline, one
    /// audit per CPU.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            page_ttl: Duration::from_secs(60),
            audit: true,
            audit_deadline: Duration::from_secs(10),
            audit_jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            audit_downloads: 8,
            auth: None,
            cache_max_bytes: 10 << 30,
            page_cache_bytes: 1 << 30,
            server: ServerLimits::default(),
            policy: Arc::new(crate::policy::Policy::builtin()),
            scopes: Vec::new(),
            learn: None,
            state: None,
        }
    }
}

/// One project's decided page; its async lock makes concurrent requests share one fetch.
type PageSlot = Arc<tokio::sync::Mutex<Option<Arc<project::CachedPage>>>>;

/// Which of the served indexes a request is for: 0 is the default one at `/simple/`.
pub type ScopeId = usize;

/// Bytes `/readyz` writes (and removes) to see that the cache can still take data.
const READY_PROBE_BYTES: usize = 64 << 10;

/// A shown file's key: its sha256 and its filename.
pub type ShownKey = (String, String);

/// One index pipwall serves under its own policy. What a page shows depends on the policy, so
/// each scope has its own shown-file table: a file shown in one scope cannot be fetched through
/// another that hides it.
struct Scope {
    name: Arc<str>,
    /// Swapped whole on reload; a page decided under another policy is decided again.
    policy: RwLock<Arc<crate::policy::Policy>>,
    /// (sha256, filename) → the file a page shows under that name. A download is served only
    /// from here. Keyed by both: the same bytes may be listed by several pages under several
    /// names, and one listing must never displace another (issue 16).
    shown: RwLock<HashMap<ShownKey, ShownFile>>,
}

impl Scope {
    fn new(name: &str, policy: Arc<crate::policy::Policy>) -> Self {
        Self {
            name: Arc::from(name),
            policy: RwLock::new(policy),
            shown: RwLock::default(),
        }
    }

    fn policy(&self) -> Arc<crate::policy::Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// How often a replica reads the environments the others saw, and says it is alive.
const SHARE_EVERY: Duration = Duration::from_secs(5);

/// Keeps the known environments in step with the other replicas': what this one saw is
/// written, what they saw is merged in (so each audits ahead for every client of the
/// cluster). A failure is retried next turn; the table only orders and scopes work.
fn share_environments(
    state: Arc<crate::state::SharedState>,
    known: Arc<crate::demand::KnownEnvironments>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let known = Arc::downgrade(&known);
    tokio::spawn(async move {
        // What was last written: the table changes rarely (a new environment, or a time that
        // moved by an hour), so most turns only read.
        let mut written: Vec<(String, f64)> = Vec::new();
        loop {
            let Some(known) = known.upgrade() else { return };
            let mut mine = known.entries();
            mine.sort_by(|a, b| a.0.cmp(&b.0));
            let saved = mine == written
                || match state.saw_environments(&mine).await {
                    Ok(()) => {
                        written = mine;
                        true
                    }
                    Err(_) => false,
                };
            if saved
                && let Ok(theirs) = state
                    .environments(
                        crate::demand::FORGET_AFTER.unsigned_abs(),
                        crate::demand::MAX_KNOWN,
                    )
                    .await
            {
                known.merge(&theirs);
                metrics.environments_known(known.len());
            }
            drop(known);
            tokio::time::sleep(SHARE_EVERY).await;
        }
    });
}

pub struct App {
    pub upstreams: Arc<Upstreams>,
    pub files: Arc<crate::cache::files::FileCache>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub audits: Arc<crate::cache::audits::Audits>,
    /// The installer environments seen, remembered across restarts: whom audits are for.
    pub environments: Arc<crate::demand::KnownEnvironments>,
    pub settings: Settings,
    pub log: DecisionLog,
    pages: Mutex<HashMap<(ScopeId, ProjectName), PageSlot>>,
    /// A counter that orders page uses, for dropping the least recently used.
    page_clock: std::sync::atomic::AtomicU64,
    /// Bounds the project pages fetched from upstream at once.
    upstream_permits: tokio::sync::Semaphore,
    /// Bounds the downloads streamed from upstream at once (outside audits, which have their
    /// own jobs): each holds an upstream connection and a temporary file until it ends.
    download_permits: Arc<tokio::sync::Semaphore>,
    root: tokio::sync::Mutex<Option<root::CachedRoot>>,
    /// The default scope first, then `settings.scopes` in order.
    scopes: Vec<Scope>,
}

impl App {
    pub fn new(upstreams: Upstreams, settings: Settings, log: DecisionLog) -> Self {
        // In a cluster every decision names the replica that made it.
        let log = match &settings.state {
            Some(state) => log.for_replica(state.replica().to_owned()),
            None => log,
        };
        let upstreams = Arc::new(upstreams);
        let upstream_permits = settings.server.max_upstream_requests.max(1);
        let metrics = settings.state.as_ref().map_or_else(
            || Arc::new(crate::metrics::Metrics::new()),
            |s| s.metrics().clone(),
        );
        let files = Arc::new(crate::cache::files::FileCache::open_logged(
            settings.cache_dir.join("files"),
            settings.cache_max_bytes,
        ));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let files = files.clone();
            runtime.spawn_blocking(move || {
                let removed = files.verify_all();
                if removed > 0 {
                    tracing::warn!(
                        removed,
                        "cached files that failed their digest check were removed"
                    );
                }
            });
        }
        let audits = crate::cache::audits::Audits::new(
            &settings.cache_dir,
            upstreams.clone(),
            settings.audit_jobs,
            settings.audit_downloads,
            metrics.clone(),
            files.clone(),
        );
        let environments = Arc::new(crate::demand::KnownEnvironments::open(&settings.cache_dir));
        metrics.environments_known(environments.len());
        if let Some(state) = &settings.state {
            audits.share(state.clone());
            if tokio::runtime::Handle::try_current().is_ok() {
                share_environments(state.clone(), environments.clone(), metrics.clone());
            }
        }
        if settings.audit && tokio::runtime::Handle::try_current().is_ok() {
            audits.keep_queue();
        }
        let scopes = std::iter::once(Scope::new(crate::scope::DEFAULT, settings.policy.clone()))
            .chain(
                settings
                    .scopes
                    .iter()
                    .map(|(name, policy)| Scope::new(name, policy.clone())),
            )
            .collect();
        Self {
            scopes,
            upstreams,
            files,
            metrics,
            audits,
            environments,
            settings,
            log,
            pages: Mutex::default(),
            page_clock: std::sync::atomic::AtomicU64::new(0),
            upstream_permits: tokio::sync::Semaphore::new(upstream_permits),
            download_permits: Arc::new(tokio::sync::Semaphore::new(upstream_permits)),
            root: tokio::sync::Mutex::default(),
        }
    }

    /// Ready to serve: the cache folder takes a write, and every upstream answers (an index
    /// accepts a connection, a wheelhouse folder exists). The reasons it is not, otherwise.
    pub async fn ready(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let dir = self.settings.cache_dir.clone();
        // Bytes written and flushed, not an empty file: a full disk still makes empty files,
        // and a pipwall that cannot store a wheel cannot audit one (issue 16).
        let writable = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let mut probe = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut probe, &[0u8; READY_PROBE_BYTES])?;
            probe.as_file().sync_data()
        })
        .await;
        match writable {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!(
                "cache folder {} cannot take data: {e}",
                self.settings.cache_dir.display()
            )),
            Err(e) => problems.push(format!("cache check failed: {e}")),
        }
        if let Some(state) = &self.settings.state
            && let Err(e) = state.ping().await
        {
            problems.push(format!(
                "shared state {}: {e} (serving what is decided; no new verdicts)",
                state.at()
            ));
        }
        for source in self.upstreams.sources() {
            if let Err(why) = source.probe().await {
                problems.push(format!("upstream {}: {why}", source.describe()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The policy in force now in a scope (the default one for an id out of range).
    pub fn policy_of(&self, scope: ScopeId) -> Arc<crate::policy::Policy> {
        self.scopes.get(scope).unwrap_or(&self.scopes[0]).policy()
    }

    /// The scope a name stands for: `default`, or a `--scope` name.
    pub fn scope_id(&self, name: &str) -> Option<ScopeId> {
        self.scopes.iter().position(|s| &*s.name == name)
    }

    /// The scope's name, for logs and messages.
    pub fn scope_name(&self, scope: ScopeId) -> &str {
        self.scopes
            .get(scope)
            .map_or(crate::scope::DEFAULT, |s| &s.name)
    }

    /// The names of every scope, the default one first.
    pub fn scope_names(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(|s| &*s.name)
    }

    /// Checks that every upstream a policy names (`[[private]]`, `[cooldown] upstreams`) is
    /// configured.
    pub fn check_policy(&self, policy: &crate::policy::Policy) -> Result<(), String> {
        for route in &policy.private {
            if self.upstreams.find(&route.upstream).is_none() {
                return Err(format!(
                    "{}: [[private]] upstream `{}` is not one of the configured upstreams (name one with --upstream {}=URL)",
                    route.origin, route.upstream, route.upstream
                ));
            }
        }
        for (label, _, origin) in &policy.cooldown_rules.upstreams {
            let known = (0..self.upstreams.sources().len())
                .any(|i| self.upstreams.label(i) == Some(label.as_str()));
            if !known {
                return Err(format!(
                    "{origin}: [cooldown] upstreams names `{label}`, which is not the label of a configured upstream (name one with --upstream {label}=URL)"
                ));
            }
        }
        Ok(())
    }

    /// Puts new policies in force, one per scope in [`Self::scope_names`] order, all or none
    /// (pages are decided again on their next request), and reports the old ones' exceptions
    /// that lifted nothing while they were in force.
    pub fn set_policies(&self, policies: Vec<Arc<crate::policy::Policy>>) -> Result<(), String> {
        if policies.len() != self.scopes.len() {
            return Err(format!(
                "{} policies given for {} scopes",
                policies.len(),
                self.scopes.len()
            ));
        }
        for (scope, policy) in self.scopes.iter().zip(&policies) {
            self.check_policy(policy)
                .map_err(|e| format!("scope {}: {e}", scope.name))?;
        }
        for (scope, policy) in self.scopes.iter().zip(policies) {
            if Arc::ptr_eq(&scope.policy(), &policy) {
                continue;
            }
            let old = match scope.policy.write() {
                Ok(mut p) => std::mem::replace(&mut *p, policy),
                Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), policy),
            };
            report_unused(&scope.name, &old);
        }
        Ok(())
    }

    /// Logs the exceptions of the policies in force that have lifted nothing so far.
    pub fn report_unused_exceptions(&self) {
        for scope in &self.scopes {
            report_unused(&scope.name, &scope.policy());
        }
    }

    fn shown_file(&self, scope: ScopeId, sha256: &str, filename: &str) -> Option<ShownFile> {
        self.scopes
            .get(scope)?
            .shown
            .read()
            .ok()?
            .get(&(sha256.to_owned(), filename.to_owned()))
            .cloned()
    }
}

fn report_unused(scope: &str, policy: &crate::policy::Policy) {
    for e in policy.unused_exceptions() {
        tracing::warn!(scope, exception = %e.origin, reason = %e.reason, "unused-exception: this policy exception lifted nothing while it was in force");
    }
}

impl From<crate::pipeline::FetchError> for AppError {
    fn from(e: crate::pipeline::FetchError) -> Self {
        match e {
            crate::pipeline::FetchError::Upstream(u) => Self::Upstream(u),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Why pipwall could not do its job for a request (not why a file is hidden: that is a
/// decision).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "none of the offered formats is acceptable: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html, text/html"
    )]
    NotAcceptable,
    #[error("{code}: {sentence}")]
    Refused { code: Code, sentence: String },
    /// The policy hides the whole project and lets clients fall through to another index.
    #[error("{code}: {sentence}")]
    Blocked { code: Code, sentence: String },
    /// The request names a scope its listener or credential is not bound to.
    #[error("{0}")]
    OutOfScope(String),
    #[error("method not allowed: only GET and HEAD")]
    Method,
    /// The file could not be audited (upstream failed, or served other bytes than promised),
    /// and an unvetted file is never served.
    #[error("the file could not be vetted: {0}")]
    AuditUnavailable(String),
    /// The shared state (`--state`) does not answer, so no verdict can be read or stored.
    #[error("the file could not be vetted now: {0}")]
    VerdictsUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Upstream(e) => e.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::Blocked { .. } => StatusCode::NOT_FOUND,
            Self::OutOfScope(_) => StatusCode::FORBIDDEN,
            Self::Method => StatusCode::METHOD_NOT_ALLOWED,
            Self::AuditUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::VerdictsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one place errors become responses: a readable body; a refusal also names its code in
    /// `X-Pipwall-Reason` and in the status line's reason phrase, so pip's error message says why.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let text = format!("{}\n", crate::error::chain(&self));
        let mut resp = Response::new(full(text));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::Refused { code, .. } | Self::Blocked { code, .. } = &self {
            h.insert("x-pipwall-reason", HeaderValue::from_static(code.as_str()));
            let what = if status == StatusCode::NOT_FOUND {
                "Not Found"
            } else {
                "Forbidden"
            };
            let phrase = format!("{what} by pipwall: {code}");
            if let Ok(p) = hyper::ext::ReasonPhrase::try_from(phrase.into_bytes()) {
                resp.extensions_mut().insert(p);
            }
        }
        if self.status() == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        resp
    }
}

impl AppError {
    /// [`Self::into_response`] for a client that reads JSON (an installer asking for a PEP 691
    /// page, a script): the same status and headers, and a body a tool can read without
    /// parsing prose: `status`, `code` and `rule` for a refusal, `reason`, `request_id`.
    pub fn into_json_response(self, request_id: &str) -> Response<Body> {
        let (code, rule) = match &self {
            Self::Refused { code, .. } | Self::Blocked { code, .. } => {
                (Some(code.as_str()), code.rule().map(|r| r.as_str()))
            }
            _ => (None, None),
        };
        let body = serde_json::json!({
            "status": self.status().as_u16(),
            "code": code,
            "rule": rule,
            "reason": crate::error::chain(&self),
            "request_id": request_id,
        });
        let mut resp = self.into_response();
        *resp.body_mut() = full(format!("{body}\n"));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// Builds a page response for the negotiated format.
pub(crate) fn page_response(format: Format, body: Bytes, cache: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}
