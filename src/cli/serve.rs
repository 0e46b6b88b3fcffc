//! `pipwall serve`: flags to [`crate::serve::Settings`], scopes and their policies, TLS and
//! users, signals (SIGHUP reloads, SIGTERM stops) and learning mode.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{
    Exit, PolicyArgs, UpstreamArgs, default_cache_dir, load_policy_files, parse_size,
    refuse_without_audits, upstreams_with,
};
use crate::decision_log::DecisionLog;
use crate::serve::{App, Settings};
use crate::upstream::Upstreams;

/// The flags of `pipwall serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. Repeatable; `SCOPE=ADDR` binds an address to one `--scope`
    /// (or `default`): it serves that scope's policy at /simple/ and refuses the others.
    #[arg(long, default_value = "127.0.0.1:3141", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Serve a second index at /NAME/simple/ under its own policy FILE, e.g.
    /// `ci=policies/ci-locked.toml`. Repeatable; files given for the same NAME merge in
    /// order. Users and tokens can be bound to a scope (`pipwall auth add-token --scope`).
    #[arg(
        long = "scope",
        env = "PIPWALL_SCOPE",
        value_delimiter = ',',
        value_name = "NAME=FILE"
    )]
    pub scopes: Vec<String>,
    // Boxed: serve's flags make its variant several times the size of the others'.
    #[command(flatten)]
    pub upstream: Box<UpstreamArgs>,
    /// Folder for cached, verified files (default: the user cache folder).
    #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Write the decision log (one JSON line per decided file) here instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// Seconds a decided page is served before upstream is asked again.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub page_ttl: u64,
    /// Seconds a page request waits for the audits its client needs (the newest version it can
    /// install that passes); if they have not ended, the answer leaves out what that client
    /// could install unaudited and is marked `Cache-Control: no-store`.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub audit_deadline: f64,
    /// Wheel audits running at once (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub audit_jobs: Option<usize>,
    /// Wheels downloaded for audits at once (network-bound: more than --audit-jobs, so two
    /// cores do not cap how many are fetched).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub audit_downloads: usize,
    /// Show wheels on their filename alone, without opening them. Unsafe: for measuring,
    /// or behind an upstream that is itself vetted.
    #[arg(long)]
    pub no_audit: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. `pipwall certs init`
    /// makes one.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest size of the file cache (bytes, or with a K, M, G or T suffix); least
    /// recently used files are removed past it.
    #[arg(long, default_value = "10G", value_name = "SIZE", value_parser = parse_size)]
    pub cache_max_size: u64,
    /// Memory for decided pages (both renderings and their decisions); past it, the least
    /// recently used projects are dropped and decided again when next asked for.
    #[arg(long, default_value = "1G", value_name = "SIZE", value_parser = parse_size)]
    pub page_cache_size: u64,
    /// Connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub max_connections: usize,
    /// Connections one client address may hold at once; more from it are closed at once.
    /// A gateway behind a NAT that many clients share may need more.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers (and the longest a kept-alive
    /// connection may idle).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub header_timeout: u64,
    /// Largest request head in bytes.
    #[arg(long, default_value = "64K", value_name = "SIZE", value_parser = parse_size)]
    pub max_header_size: u64,
    /// Requests per second allowed per client address (429 past it); unlimited if unset.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Project pages fetched from upstream at once; also the downloads streamed from upstream
    /// at once (wheel audits download with --audit-jobs).
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_upstream_requests: usize,
    /// Largest upstream project page.
    #[arg(long, default_value = "32M", value_name = "SIZE", value_parser = parse_size)]
    pub max_page_size: u64,
    /// Largest file downloaded from upstream.
    #[arg(long, default_value = "4G", value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Require clients to authenticate against this users file (see `pipwall auth`).
    #[arg(long, env = "PIPWALL_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Learning mode: record every project pipwall serves files of and write them to FILE
    /// as a `[projects] allow` list (a policy fragment for --policy, each name with the
    /// versions downloaded in a comment), on SIGHUP and when stopped (SIGTERM, Ctrl-C). An
    /// existing FILE is merged with, never emptied.
    #[arg(long, value_name = "FILE")]
    pub learn: Option<PathBuf>,
    // Boxed, like the upstream flags: they would make serve's variant larger still.
    #[command(flatten)]
    pub cluster: Box<ClusterArgs>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// The flags of a replica in a cluster (`--state` and what goes with it).
#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub db: super::state::StateArgs,
    /// This replica's name in the shared state, the decision log and the metrics (default:
    /// the host name and the process id). Give each replica its own.
    #[arg(long, env = "PIPWALL_REPLICA", value_name = "NAME")]
    pub replica: Option<String>,
    /// Seconds an audit claim lasts unless its replica renews it: how long the others wait
    /// before taking over the audits of a replica that died.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub state_lease: f64,
}

/// The default policy and each scope's, loaded all or none.
struct Policies {
    default: Arc<crate::policy::Policy>,
    scoped: Vec<(String, Arc<crate::policy::Policy>)>,
    scope_files: Vec<(String, Vec<PathBuf>)>,
}

impl ServeArgs {
    fn policies(&self) -> Result<Policies> {
        let default = Arc::new(
            self.policy
                .load()
                .context("pipwall will not start with an invalid policy")?,
        );
        let scope_files = scope_files(&self.scopes)?;
        let mut scoped = Vec::with_capacity(scope_files.len());
        for (name, files) in &scope_files {
            let p = load_policy_files(files).with_context(|| {
                format!("pipwall will not start with an invalid policy for scope {name}")
            })?;
            scoped.push((name.clone(), Arc::new(p)));
        }
        if self.no_audit {
            for p in std::iter::once(&default).chain(scoped.iter().map(|(_, p)| p)) {
                refuse_without_audits(p)?;
            }
        }
        Ok(Policies {
            default,
            scoped,
            scope_files,
        })
    }

    fn learner(&self, upstreams: &Upstreams) -> Result<Option<Arc<crate::policy::learn::Learner>>> {
        let Some(path) = &self.learn else {
            return Ok(None);
        };
        let upstream_list: Vec<String> = upstreams.sources().iter().map(|s| s.describe()).collect();
        let policy_list = if self.policy.policies.is_empty() {
            "the built-in default policy".to_owned()
        } else {
            show_paths(&self.policy.policies)
        };
        let from = format!("upstream {} under {policy_list}", upstream_list.join(", "));
        Ok(Some(Arc::new(
            crate::policy::learn::Learner::new(path.clone(), from)
                .context("cannot learn into this file")?,
        )))
    }

    fn decision_log(&self) -> Result<DecisionLog> {
        Ok(match &self.decision_log {
            None => DecisionLog::stderr(),
            Some(p) => DecisionLog::new(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the decision log {}", p.display()))?,
            )),
        })
    }

    /// Every `--listen` address bound, each with the scope it is bound to, if any.
    async fn bind(
        &self,
        scope_files: &[(String, Vec<PathBuf>)],
    ) -> Result<Vec<(tokio::net::TcpListener, Option<String>)>> {
        let mut listeners = Vec::with_capacity(self.listen.len());
        for spec in &self.listen {
            let (scope, addr) = match spec.split_once('=') {
                Some((scope, addr)) => (Some(scope), addr),
                None => (None, spec.as_str()),
            };
            if let Some(scope) = scope {
                anyhow::ensure!(
                    scope == crate::scope::DEFAULT || scope_files.iter().any(|(n, _)| n == scope),
                    "--listen {spec}: no scope named `{scope}` (define it with --scope {scope}=FILE)"
                );
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            listeners.push((listener, scope.map(str::to_owned)));
        }
        Ok(listeners)
    }

    /// The replica's name: `--replica`, or the host name and process id (unique on a
    /// machine, so two replicas on one host never share claims by accident).
    fn replica_name(&self) -> String {
        self.cluster.replica.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "pipwall".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// Connects to `--state` (migrating its schema), or none.
    async fn shared_state(&self) -> Result<Option<Arc<crate::state::SharedState>>> {
        let Some(url) = &self.cluster.db.state else {
            return Ok(None);
        };
        let lease = Duration::try_from_secs_f64(self.cluster.state_lease)
            .ok()
            .filter(|l| *l >= Duration::from_millis(500))
            .context("--state-lease must be at least 0.5 seconds")?;
        let state = crate::state::SharedState::connect(
            url,
            self.cluster.db.state_ca.as_deref(),
            self.replica_name(),
            lease,
            Arc::new(crate::metrics::Metrics::new()),
        )
        .await
        .context("pipwall will not start without its shared state")?;
        eprintln!(
            "pipwall: shared state at {} as replica {} (audit claims last {:?})",
            state.at(),
            state.replica(),
            lease
        );
        Ok(Some(state))
    }

    /// What the server is told: the flags, the policies, the users and learning mode.
    fn settings(
        &self,
        cache_dir: PathBuf,
        policies: &Policies,
        auth: Option<Arc<crate::auth::Users>>,
        learner: Option<Arc<crate::policy::learn::Learner>>,
    ) -> Result<Settings> {
        let mut s = Settings::new(cache_dir);
        s.page_ttl = Duration::from_secs(self.page_ttl);
        s.audit = !self.no_audit;
        s.audit_deadline = Duration::try_from_secs_f64(self.audit_deadline)
            .context("--audit-deadline must be a non-negative number of seconds")?;
        if let Some(j) = self.audit_jobs {
            s.audit_jobs = j.max(1);
        }
        s.audit_downloads = self.audit_downloads.max(1);
        s.auth = auth;
        s.cache_max_bytes = self.cache_max_size;
        s.page_cache_bytes = self.page_cache_size;
        s.policy = policies.default.clone();
        s.scopes = policies.scoped.clone();
        s.learn = learner;
        s.server = crate::serve::ServerLimits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            max_header_bytes: usize::try_from(self.max_header_size).unwrap_or(usize::MAX),
            rate_limit: self
                .rate_limit
                .map(|n| Arc::new(crate::ratelimit::RateLimit::new(n))),
            max_upstream_requests: self.max_upstream_requests,
        };
        Ok(s)
    }
}

/// Says where each listener serves what.
fn announce(
    upstreams: &Upstreams,
    listeners: &[(tokio::net::TcpListener, Option<String>)],
    tls: bool,
    cache_dir: &std::path::Path,
    scope_files: &[(String, Vec<PathBuf>)],
) -> Result<()> {
    for s in upstreams.sources() {
        eprintln!("pipwall: upstream {}", s.describe());
    }
    let scheme = if tls { "https" } else { "http" };
    for (listener, bound) in listeners {
        let addr = listener.local_addr()?;
        match bound {
            None => {
                eprintln!(
                    "pipwall: serving {scheme}://{addr}/simple/ (cache {})",
                    cache_dir.display()
                );
                for (name, files) in scope_files {
                    eprintln!(
                        "pipwall: serving {scheme}://{addr}/{name}/simple/ under {}",
                        show_paths(files)
                    );
                }
            }
            Some(name) => {
                eprintln!("pipwall: serving {scheme}://{addr}/simple/ as scope {name} only")
            }
        }
    }
    Ok(())
}

pub async fn run(args: ServeArgs) -> Result<Exit> {
    let policies = args.policies()?;
    let auth = match &args.auth_file {
        Some(f) => Some(Arc::new(
            crate::auth::Users::load(f).context("cannot load the users file")?,
        )),
        None => None,
    };
    let (tls, tls_reload) = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => {
            let (config, handle) =
                crate::tls::Reloadable::load(c, k).context("cannot serve HTTPS")?;
            (Some(config), Some(handle))
        }
        _ => (None, None),
    };
    let upstreams = upstreams_with(&args.upstream, |l| {
        l.max_page_bytes = args.max_page_size;
        l.max_file_bytes = args.max_file_size;
    })?;
    let learner = args.learner(&upstreams)?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create the cache folder {}", cache_dir.display()))?;
    // Connected (and migrated) before anything is announced: a replica that cannot share
    // its verdicts does not start.
    let state = args.shared_state().await?;
    let mut log = args.decision_log()?;
    if state.is_none() && args.cluster.replica.is_some() {
        log = log.for_replica(args.replica_name());
    }
    let listeners = args.bind(&policies.scope_files).await?;
    announce(
        &upstreams,
        &listeners,
        tls.is_some(),
        &cache_dir,
        &policies.scope_files,
    )?;
    let mut settings = args.settings(cache_dir, &policies, auth.clone(), learner.clone())?;
    settings.state = state;
    let app = Arc::new(App::new(upstreams, settings, log));
    for (id, name) in app.scope_names().enumerate() {
        app.check_policy(&app.policy_of(id))
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("pipwall will not start with the {name} policy"))?;
    }
    if let Some(users) = &auth {
        check_user_scopes(&app, users).context("pipwall will not start")?;
    }
    let listeners = listeners
        .into_iter()
        .map(|(l, bound)| (l, bound.and_then(|n| app.scope_id(&n))))
        .collect();
    reload_on_hangup(
        tls_reload,
        auth.clone(),
        app.clone(),
        std::iter::once(args.policy.policies.clone())
            .chain(policies.scope_files.into_iter().map(|(_, f)| f))
            .collect(),
        learner.clone(),
    );
    crate::server::serve_listeners(
        app.clone(),
        listeners,
        tls,
        shutdown_signal(),
        Duration::from_secs(30),
    )
    .await?;
    app.report_unused_exceptions();
    if let Some(l) = &learner {
        share_learned(&app, l).await;
        write_learned(l);
    }
    eprintln!("pipwall: stopped");
    Ok(Exit::Ok)
}

/// `--scope NAME=FILE` flags grouped by name, in the order names first appear.
pub fn scope_files(flags: &[String]) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut out: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for flag in flags {
        let (name, file) = flag
            .split_once('=')
            .with_context(|| format!("--scope {flag}: expected NAME=FILE"))?;
        anyhow::ensure!(
            crate::scope::valid_name(name) && name != crate::scope::DEFAULT,
            "--scope {flag}: `{name}` is not a scope name (lowercase letters, digits, `-` and `_`; \
             not `default`, `simple`, `files`, `healthz`, `readyz` or `metrics`)"
        );
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, files)) => files.push(PathBuf::from(file)),
            None => out.push((name.to_owned(), vec![PathBuf::from(file)])),
        }
    }
    Ok(out)
}

pub fn show_paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every scope a user or token is bound to must be served, or that credential could never be
/// let in anywhere.
pub fn check_user_scopes(app: &App, users: &crate::auth::Users) -> Result<()> {
    for scope in users.scopes() {
        anyhow::ensure!(
            app.scope_id(&scope).is_some(),
            "the users file binds a credential to scope `{scope}`, which is not served (add --scope {scope}=FILE)"
        );
    }
    Ok(())
}

/// `SIGHUP` reloads the TLS certificate, the users file and the policies (`policies` holds
/// each scope's files, the default scope's first; empty means the built-in policy). Each
/// reload is all or nothing: a file that does not load is reported and the running one stays.
pub fn reload_on_hangup(
    tls: Option<Arc<crate::tls::Reloadable>>,
    auth: Option<Arc<crate::auth::Users>>,
    app: Arc<App>,
    policies: Vec<Vec<PathBuf>>,
    learner: Option<Arc<crate::policy::learn::Learner>>,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Some(l) = &learner {
                share_learned(&app, l).await;
                let l = l.clone();
                let _ = tokio::task::spawn_blocking(move || write_learned(&l)).await;
            }
            if let Some(t) = &tls {
                match t.reload() {
                    Ok(()) => eprintln!("pipwall: reloaded the TLS certificate"),
                    Err(e) => eprintln!("pipwall: kept the old TLS certificate: {e}"),
                }
            }
            if let Some(a) = &auth {
                match a.reload() {
                    Ok(()) => eprintln!("pipwall: reloaded the users file"),
                    Err(e) => eprintln!("pipwall: kept the old users: {e}"),
                }
                if let Err(e) = check_user_scopes(&app, a) {
                    eprintln!("pipwall: {e}; that credential is refused everywhere");
                }
            }
            if policies.iter().any(|files| !files.is_empty()) {
                // Loading reads lock files and advisory data: off the async threads.
                let files = policies.clone();
                let loaded = tokio::task::spawn_blocking(move || load_scope_policies(&files)).await;
                let outcome = match loaded {
                    Ok(Ok(fresh)) => {
                        // A scope on the built-in policy keeps the one in force.
                        let all = fresh
                            .into_iter()
                            .enumerate()
                            .map(|(id, p)| p.unwrap_or_else(|| app.policy_of(id)))
                            .collect();
                        app.set_policies(all)
                    }
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(()) => eprintln!("pipwall: reloaded the policy"),
                    Err(e) => eprintln!("pipwall: kept the old policy: {e}"),
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (tls, auth, app, policies, learner);
}

/// Loads every scope's policy files, all or none; `None` for a scope with no files (the
/// built-in policy). Warnings go to stderr.
pub fn load_scope_policies(
    scopes: &[Vec<PathBuf>],
) -> Result<Vec<Option<Arc<crate::policy::Policy>>>> {
    let mut out = Vec::with_capacity(scopes.len());
    for files in scopes {
        if files.is_empty() {
            out.push(None);
            continue;
        }
        out.push(Some(Arc::new(load_policy_files(files)?)));
    }
    Ok(out)
}

/// With the shared state: adds what this replica learned to it and takes in what the others
/// did, so the file written holds the whole cluster's. A database that does not answer
/// leaves the file with this replica's records, and says so.
async fn share_learned(app: &App, learner: &crate::policy::learn::Learner) {
    let Some(state) = &app.settings.state else {
        return;
    };
    let shared = async {
        state.learned(&learner.snapshot()).await?;
        state.all_learned().await
    };
    match shared.await {
        Ok(all) => learner.absorb(&all),
        Err(e) => eprintln!("pipwall: writing only this replica's learned projects: {e}"),
    }
}

/// Writes what learning mode saw, saying where or why not.
pub fn write_learned(learner: &crate::policy::learn::Learner) {
    let path = learner.path().display();
    match learner.write() {
        Ok(0) => eprintln!("pipwall: learned no project yet; {path} not written"),
        Ok(n) => eprintln!("pipwall: learned {n} project(s) into {path}"),
        Err(e) => eprintln!("pipwall: could not write what was learned: {e}"),
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
