//! The `pipwall` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use pipwall::decision_log::DecisionLog;
use pipwall::dist::ProjectName;
use pipwall::serve::{App, Settings};
use pipwall::upstream::{Limits, Upstreams};

/// A page of thousands of files is tens of thousands of small allocations; mimalloc makes each
/// about twice as cheap as the system allocator (measured in `benches/page.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A pre-install firewall for pip and uv: a package index proxy that shows only vetted wheels.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct UpstreamArgs {
    /// Upstream simple index root (`https://…/simple/`, credentials allowed in the URL) or a
    /// local folder of wheels. Repeatable: the first upstream that knows a project answers for
    /// it. `NAME=URL` labels one for a policy's `[[private]]` section. Without one, the example
    /// wheelhouse bundled with pipwall is used.
    #[arg(long = "upstream", env = "PIPWALL_UPSTREAM", value_delimiter = ',')]
    upstreams: Vec<String>,
    /// Extra CA certificates (PEM) to trust for upstream HTTPS, e.g. a corporate TLS-inspection CA.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Seconds to wait for an upstream page.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    upstream_timeout: u64,
}

#[derive(clap::Args)]
struct PolicyArgs {
    /// Policy file (TOML; see policies/template.toml). Repeatable: later files replace single
    /// values and extend lists. Default: the shipped policies/default.toml.
    #[arg(
        long = "policy",
        env = "PIPWALL_POLICY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    policies: Vec<PathBuf>,
}

impl PolicyArgs {
    /// Loads the policy; warnings go to stderr, errors fail with every problem listed.
    fn load(&self) -> Result<pipwall::policy::Policy> {
        if self.policies.is_empty() {
            return Ok(pipwall::policy::Policy::builtin());
        }
        load_policy_files(&self.policies)
    }
}

/// Loads policy files merged in order, warnings to stderr, errors with every problem listed.
fn load_policy_files(files: &[PathBuf]) -> Result<pipwall::policy::Policy> {
    let (policy, warnings) = pipwall::policy::load_files(files)?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(policy)
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy: point pip's or uv's index URL at http://LISTEN/simple/.
    Serve {
        /// Address to listen on. Repeatable; `SCOPE=ADDR` binds an address to one `--scope`
        /// (or `default`): it serves that scope's policy at /simple/ and refuses the others.
        #[arg(long, default_value = "127.0.0.1:3141", value_name = "ADDR")]
        listen: Vec<String>,
        /// Serve a second index at /NAME/simple/ under its own policy FILE, e.g.
        /// `ci=policies/ci-locked.toml`. Repeatable; files given for the same NAME merge in
        /// order. Users and tokens can be bound to a scope (`pipwall auth add-token --scope`).
        #[arg(
            long = "scope",
            env = "PIPWALL_SCOPE",
            value_delimiter = ',',
            value_name = "NAME=FILE"
        )]
        scopes: Vec<String>,
        // Boxed: serve's flags make its variant several times the size of the others'.
        #[command(flatten)]
        upstream: Box<UpstreamArgs>,
        /// Folder for cached, verified files (default: the user cache folder).
        #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Write the decision log (one JSON line per decided file) here instead of stderr.
        #[arg(long, value_name = "FILE")]
        decision_log: Option<PathBuf>,
        /// Seconds a decided page is served before upstream is asked again.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        page_ttl: u64,
        /// Seconds a page request waits for wheel audits; wheels still being audited are left
        /// out of that answer (marked `Cache-Control: no-store`) and listed once they pass.
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        audit_deadline: f64,
        /// Wheel audits running at once (default: one per CPU).
        #[arg(long, value_name = "N")]
        audit_jobs: Option<usize>,
        /// Show wheels on their filename alone, without opening them. Unsafe: for measuring,
        /// or behind an upstream that is itself vetted.
        #[arg(long)]
        no_audit: bool,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. `pipwall certs init`
        /// makes one.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key (PEM) of --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Largest size of the file cache (bytes, or with a K, M, G or T suffix); least
        /// recently used files are removed past it.
        #[arg(long, default_value = "10G", value_name = "SIZE", value_parser = parse_size)]
        cache_max_size: u64,
        /// Memory for decided pages (both renderings and their decisions); past it, the least
        /// recently used projects are dropped and decided again when next asked for.
        #[arg(long, default_value = "1G", value_name = "SIZE", value_parser = parse_size)]
        page_cache_size: u64,
        /// Connections served at once; more wait to be accepted.
        #[arg(long, default_value_t = 4096, value_name = "N")]
        max_connections: usize,
        /// Seconds a client has to send a request's headers (and the longest a kept-alive
        /// connection may idle).
        #[arg(long, default_value_t = 30, value_name = "SECONDS")]
        header_timeout: u64,
        /// Largest request head in bytes.
        #[arg(long, default_value = "64K", value_name = "SIZE", value_parser = parse_size)]
        max_header_size: u64,
        /// Requests per second allowed per client address (429 past it); unlimited if unset.
        #[arg(long, value_name = "N")]
        rate_limit: Option<u32>,
        /// Project pages fetched from upstream at once; also the downloads streamed from upstream
        /// at once (wheel audits download with --audit-jobs).
        #[arg(long, default_value_t = 64, value_name = "N")]
        max_upstream_requests: usize,
        /// Largest upstream project page.
        #[arg(long, default_value = "32M", value_name = "SIZE", value_parser = parse_size)]
        max_page_size: u64,
        /// Largest file downloaded from upstream.
        #[arg(long, default_value = "4G", value_name = "SIZE", value_parser = parse_size)]
        max_file_size: u64,
        /// Require clients to authenticate against this users file (see `pipwall auth`).
        #[arg(long, env = "PIPWALL_AUTH_FILE", value_name = "FILE")]
        auth_file: Option<PathBuf>,
        /// Learning mode: record every project pipwall serves files of and write them to FILE
        /// as a `[projects] allow` list (a policy fragment for --policy, each name with the
        /// versions downloaded in a comment), on SIGHUP and when stopped (SIGTERM, Ctrl-C). An
        /// existing FILE is merged with, never emptied.
        #[arg(long, value_name = "FILE")]
        learn: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Check policy files, and add reviewed exceptions to them.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Users and tokens for `serve --auth-file`.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Certificates for serving HTTPS.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Show every upstream file of a project, shown or hidden, with the reason.
    Explain {
        /// PROJECT or PROJECT==VERSION.
        project: String,
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Folder for downloaded wheels and audit reports; give `serve`'s to reuse its reports
        /// (default: a temporary folder).
        #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Judge by filenames only, without downloading and auditing the shown wheels.
        #[arg(long)]
        no_audit: bool,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Decide and audit every file a lock file pins, as `serve` would: a CI warm-up (wheels end
    /// up audited in the cache) and a report. Exits 1 when a locked project has no pinned file
    /// shown, so its install would fail.
    Vet {
        /// A requirements.txt with --hash lines, a PEP 751 pylock.toml, or a uv.lock. Repeatable.
        #[arg(
            short = 'r',
            long = "requirement",
            required = true,
            value_name = "FILE"
        )]
        locks: Vec<PathBuf>,
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Folder for downloaded wheels and audit reports; give `serve`'s so it starts warm
        /// (default: the user cache folder, as `serve`).
        #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Judge by filenames and policy only, without downloading and auditing wheels.
        #[arg(long)]
        no_audit: bool,
        /// Wheel audits running at once (default: one per CPU).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Audit wheel files offline: archive integrity, metadata, RECORD hashes, startup code, and
    /// native code against the wheel's tags (abi3, manylinux/musllinux, macOS, Windows).
    /// Exits 1 when any wheel fails.
    Audit {
        /// Wheel files, or folders searched for `*.whl`.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// `text` for people, `json` for tools, `sarif` for code scanning.
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
        /// Wheels audited at once (default: one per CPU).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policy files as `serve` would load them (merged in order): every problem with
    /// file:line:col. Exits 1 on any error.
    Check {
        /// Policy files (TOML), merged in the order given; see policies/template.toml.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// `text` (file:line:col: error[code]: message), `json`, or `sarif` (SARIF 2.1.0, for
        /// code-scanning tools).
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
    },
    /// Add an exception (`[[exceptions]]`) to a policy file, after checking that the file
    /// still loads with it; the file is left untouched otherwise. Take the project, code and
    /// sha256 from `pipwall explain`, e.g. `pipwall policy waive demo --code cooldown-too-new
    /// --versions ==1.2 --reason "fix for CVE-…" --expires 2027-01-31 --to policies/local.toml`.
    Waive {
        /// The project (a name or a glob).
        project: String,
        /// Why this is acceptable; required, and kept in the policy for the next reader.
        #[arg(long)]
        reason: String,
        /// A decision code from `explain` or the decision log (e.g. `cooldown-too-new`): lifts
        /// the rule behind it. An audit finding code (e.g. `abi3-newer-than-tag`) lifts only that finding.
        #[arg(long)]
        code: Option<String>,
        /// A rule to lift (repeatable): projects, sdists, versions, tags, prereleases, yanked,
        /// size, cooldown, lock, advisories, malware, audit, project-status, unmaintained,
        /// licenses, typosquat, namespaces, attestations, health. Default: the rule behind --code.
        #[arg(long = "rule", value_name = "RULE")]
        rules: Vec<String>,
        /// Only these versions (PEP 440 specifiers, e.g. `==1.2` or `>=2,<3`).
        #[arg(long)]
        versions: Option<String>,
        /// Only the file with this sha256.
        #[arg(long)]
        sha256: Option<String>,
        /// Only this advisory or malware record (or one of its aliases).
        #[arg(long)]
        id: Option<String>,
        /// From the day after this date (YYYY-MM-DD) the exception no longer applies.
        #[arg(long, value_name = "DATE")]
        expires: Option<String>,
        /// The policy file to add it to (created if missing); without it, the entry is printed.
        #[arg(long, value_name = "FILE")]
        to: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Add a user; the password is read from the first line of standard input and stored as
    /// an argon2id hash.
    AddUser {
        /// The users file (created owner-only if missing).
        file: PathBuf,
        user: String,
        /// Bind the user to a `serve --scope` index: it is served that scope's policy at
        /// every path, and refused the other scopes (`default` binds to the unscoped index).
        #[arg(long, value_name = "NAME")]
        scope: Option<String>,
    },
    /// Make a bearer token, print it once, and store only its sha256. Clients send it as
    /// `Authorization: Bearer …` or as the password of user `__token__`.
    AddToken {
        file: PathBuf,
        /// Bind the token to a `serve --scope` index, as for add-user.
        #[arg(long, value_name = "NAME")]
        scope: Option<String>,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Make a local CA and a server certificate signed by it: DIR/ca.pem (give it to clients),
    /// DIR/ca-key.pem, DIR/server.pem and DIR/server-key.pem (for --tls-cert / --tls-key).
    Init {
        /// Folder to write the four files into.
        dir: PathBuf,
        /// A DNS name or IP address the server answers to (repeatable; default: localhost,
        /// 127.0.0.1 and ::1).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// Replace files that already exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum AuditFormat {
    Text,
    Json,
    /// SARIF 2.1.0, for code-scanning tools: one result per finding.
    Sarif,
}

/// Exit statuses: 0 success, 1 the command ran and found a problem, 2 it could not run.
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    /// The command ran and found a problem (a wheel failed its audit).
    Findings = 1,
    Failure = 2,
}

/// `1234`, `512M`, `10GB`, `1T`: [`pipwall::size::parse`], as in a policy.
fn parse_size(text: &str) -> Result<u64, String> {
    pipwall::size::parse(text).map_err(|e| e.to_string())
}

fn example_wheelhouse() -> PathBuf {
    let bundled = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wheelhouse"));
    if bundled.is_dir() {
        bundled
    } else {
        PathBuf::from("examples/wheelhouse")
    }
}

fn upstreams(args: &UpstreamArgs) -> Result<Upstreams> {
    upstreams_with(args, |_| {})
}

fn upstreams_with(args: &UpstreamArgs, tune: impl FnOnce(&mut Limits)) -> Result<Upstreams> {
    let mut specs = args.upstreams.clone();
    if specs.is_empty() {
        let dir = example_wheelhouse();
        eprintln!(
            "pipwall: no --upstream given; serving the bundled example wheelhouse {}",
            dir.display()
        );
        specs.push(dir.display().to_string());
    }
    let mut limits = Limits {
        page_timeout: Duration::from_secs(args.upstream_timeout),
        ..Limits::default()
    };
    tune(&mut limits);
    Upstreams::new(&specs, limits, args.upstream_ca.as_deref()).context("invalid upstream")
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pipwall")
}

async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Serve {
            listen,
            scopes,
            upstream,
            cache_dir,
            decision_log,
            page_ttl,
            audit_deadline,
            audit_jobs,
            no_audit,
            tls_cert,
            tls_key,
            auth_file,
            cache_max_size,
            page_cache_size,
            max_connections,
            header_timeout,
            max_header_size,
            rate_limit,
            max_upstream_requests,
            max_page_size,
            max_file_size,
            learn,
            policy,
        } => {
            let policy_files = policy.policies.clone();
            let loaded = Arc::new(
                policy
                    .load()
                    .context("pipwall will not start with an invalid policy")?,
            );
            let scope_files = scope_files(&scopes)?;
            let mut scoped = Vec::with_capacity(scope_files.len());
            for (name, files) in &scope_files {
                let p = load_policy_files(files).with_context(|| {
                    format!("pipwall will not start with an invalid policy for scope {name}")
                })?;
                scoped.push((name.clone(), Arc::new(p)));
            }
            if no_audit {
                for p in std::iter::once(&loaded).chain(scoped.iter().map(|(_, p)| p)) {
                    refuse_without_audits(p)?;
                }
            }
            let auth = match &auth_file {
                Some(f) => Some(Arc::new(
                    pipwall::auth::Users::load(f).context("cannot load the users file")?,
                )),
                None => None,
            };
            let (tls, tls_reload) = match (&tls_cert, &tls_key) {
                (Some(c), Some(k)) => {
                    let (config, handle) =
                        pipwall::tls::Reloadable::load(c, k).context("cannot serve HTTPS")?;
                    (Some(config), Some(handle))
                }
                _ => (None, None),
            };
            let upstreams = upstreams_with(&upstream, |l| {
                l.max_page_bytes = max_page_size;
                l.max_file_bytes = max_file_size;
            })?;
            let learner = match learn {
                Some(path) => {
                    let upstream_list: Vec<String> =
                        upstreams.sources().iter().map(|s| s.describe()).collect();
                    let policy_list = if policy_files.is_empty() {
                        "the built-in default policy".to_owned()
                    } else {
                        show_paths(&policy_files)
                    };
                    let from = format!("upstream {} under {policy_list}", upstream_list.join(", "));
                    Some(Arc::new(
                        pipwall::policy::learn::Learner::new(path, from)
                            .context("cannot learn into this file")?,
                    ))
                }
                None => None,
            };
            let cache_dir = cache_dir.unwrap_or_else(default_cache_dir);
            std::fs::create_dir_all(&cache_dir).with_context(|| {
                format!("cannot create the cache folder {}", cache_dir.display())
            })?;
            let log = match decision_log {
                None => DecisionLog::stderr(),
                Some(p) => DecisionLog::new(Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .with_context(|| format!("cannot open the decision log {}", p.display()))?,
                )),
            };
            let mut listeners = Vec::with_capacity(listen.len());
            for spec in &listen {
                let (scope, addr) = match spec.split_once('=') {
                    Some((scope, addr)) => (Some(scope), addr),
                    None => (None, spec.as_str()),
                };
                if let Some(scope) = scope {
                    anyhow::ensure!(
                        scope == pipwall::scope::DEFAULT
                            || scope_files.iter().any(|(n, _)| n == scope),
                        "--listen {spec}: no scope named `{scope}` (define it with --scope {scope}=FILE)"
                    );
                }
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                listeners.push((listener, scope.map(str::to_owned)));
            }
            for s in upstreams.sources() {
                eprintln!("pipwall: upstream {}", s.describe());
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            for (listener, bound) in &listeners {
                let addr = listener.local_addr()?;
                match bound {
                    None => {
                        eprintln!(
                            "pipwall: serving {scheme}://{addr}/simple/ (cache {})",
                            cache_dir.display()
                        );
                        for (name, files) in &scope_files {
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
            let app = Arc::new(App::new(
                upstreams,
                {
                    let mut s = Settings::new(cache_dir);
                    s.page_ttl = Duration::from_secs(page_ttl);
                    s.audit = !no_audit;
                    s.audit_deadline = Duration::try_from_secs_f64(audit_deadline)
                        .context("--audit-deadline must be a non-negative number of seconds")?;
                    if let Some(j) = audit_jobs {
                        s.audit_jobs = j.max(1);
                    }
                    s.auth = auth.clone();
                    s.cache_max_bytes = cache_max_size;
                    s.page_cache_bytes = page_cache_size;
                    s.policy = loaded;
                    s.scopes = scoped;
                    s.learn = learner.clone();
                    s.server = pipwall::serve::ServerLimits {
                        max_connections,
                        header_timeout: Duration::from_secs(header_timeout.max(1)),
                        max_header_bytes: usize::try_from(max_header_size).unwrap_or(usize::MAX),
                        rate_limit: rate_limit
                            .map(|n| Arc::new(pipwall::ratelimit::RateLimit::new(n))),
                        max_upstream_requests,
                    };
                    s
                },
                log,
            ));
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
                std::iter::once(policy_files)
                    .chain(scope_files.into_iter().map(|(_, f)| f))
                    .collect(),
                learner.clone(),
            );
            pipwall::server::serve_listeners(
                app.clone(),
                listeners,
                tls,
                shutdown_signal(),
                Duration::from_secs(30),
            )
            .await?;
            app.report_unused_exceptions();
            if let Some(l) = &learner {
                write_learned(l);
            }
            eprintln!("pipwall: stopped");
            Ok(Exit::Ok)
        }
        Command::Explain {
            project,
            upstream,
            format,
            cache_dir,
            no_audit,
            policy,
        } => {
            let policy = policy.load()?;
            if no_audit {
                refuse_without_audits(&policy)?;
            }
            let (name, version) = match project.split_once("==") {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (project.trim(), None),
            };
            let name = ProjectName::new(name)
                .with_context(|| format!("`{name}` is not a project name"))?;
            let upstreams = Arc::new(upstreams(&upstream)?);
            let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            let cache = cache_dir.unwrap_or_else(|| temp.path().to_owned());
            let audit_cache = (!no_audit).then_some(cache.as_path());
            let explained =
                pipwall::explain::explain(upstreams, &name, version, audit_cache, &policy)
                    .await
                    .with_context(|| format!("cannot explain {name}"))?;
            let out = match format {
                OutputFormat::Text => explained.to_text(),
                OutputFormat::Json => serde_json::to_string_pretty(&explained)? + "\n",
            };
            print!("{out}");
            Ok(Exit::Ok)
        }
        Command::Audit {
            paths,
            format,
            jobs,
        } => audit(&paths, format, jobs),
        Command::Vet {
            locks,
            upstream,
            format,
            cache_dir,
            no_audit,
            jobs,
            policy,
        } => {
            let policy = policy.load()?;
            if no_audit {
                refuse_without_audits(&policy)?;
            }
            let lock = pipwall::policy::lock::LockSet::load(&locks)
                .context("cannot read the lock file")?;
            for w in lock.warnings() {
                eprintln!("pipwall: {w}");
            }
            let upstreams = Arc::new(upstreams(&upstream)?);
            let cache = cache_dir.unwrap_or_else(default_cache_dir);
            std::fs::create_dir_all(&cache)
                .with_context(|| format!("cannot create the cache folder {}", cache.display()))?;
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            });
            let explainer = pipwall::explain::Explainer::new(
                upstreams,
                (!no_audit).then_some(cache.as_path()),
                jobs,
            );
            let progress = indicatif::ProgressBar::with_draw_target(
                Some(lock.len() as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} projects {elapsed} {msg}",
            ) {
                progress.set_style(style);
            }
            let vetted = pipwall::vet::vet(&explainer, &lock, &policy, |name| {
                progress.set_message(name.to_owned());
                progress.inc(1);
            })
            .await;
            progress.finish_and_clear();
            let out = match format {
                OutputFormat::Text => vetted.to_text(),
                OutputFormat::Json => serde_json::to_string_pretty(&vetted)? + "\n",
            };
            print!("{out}");
            Ok(if vetted.failed == 0 {
                Exit::Ok
            } else {
                Exit::Findings
            })
        }
        Command::Policy {
            command: PolicyCommand::Check { files, format },
        } => {
            let (ok, diags) = match pipwall::policy::load_files(&files) {
                Ok((_, warnings)) => (true, warnings),
                Err(e) => (false, e.0),
            };
            match format {
                CheckFormat::Text => {
                    for d in &diags {
                        println!("{d}");
                    }
                    let errors = diags
                        .iter()
                        .filter(|d| d.severity == pipwall::policy::Severity::Error)
                        .count();
                    if ok {
                        eprintln!(
                            "policy ok ({} file(s), {} warning(s))",
                            files.len(),
                            diags.len()
                        );
                    } else {
                        eprintln!("{errors} error(s)");
                    }
                }
                CheckFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"ok": ok, "problems": diags})
                    )?
                ),
                CheckFormat::Sarif => println!(
                    "{}",
                    serde_json::to_string_pretty(&pipwall::policy::diag::sarif(&diags))?
                ),
            }
            Ok(if ok { Exit::Ok } else { Exit::Findings })
        }
        Command::Policy {
            command:
                PolicyCommand::Waive {
                    project,
                    reason,
                    code,
                    rules,
                    versions,
                    sha256,
                    id,
                    expires,
                    to,
                },
        } => {
            use pipwall::policy::waive::{WaiveError, Waiver, add_to, errors};
            let waiver = Waiver {
                project,
                rules,
                code,
                versions,
                sha256,
                id,
                reason,
                expires,
            };
            // Without --to, the entry is checked in a scratch file and printed.
            let scratch = tempfile::tempdir()?;
            let print_only = to.is_none();
            let file = to.unwrap_or_else(|| scratch.path().join("waive.toml"));
            match add_to(&file, &waiver) {
                Ok((entry, _)) if print_only => {
                    print!("{}", entry.trim_start());
                    Ok(Exit::Ok)
                }
                Ok((entry, _)) => {
                    eprint!("added to {}:\n{}", file.display(), entry.trim_start());
                    Ok(Exit::Ok)
                }
                Err(WaiveError::Invalid(diags)) => {
                    for d in errors(&diags) {
                        eprintln!("{d}");
                    }
                    eprintln!("nothing was written: the exception would not load");
                    Ok(Exit::Findings)
                }
                Err(e) => {
                    eprintln!("{e}; nothing was written");
                    Ok(Exit::Findings)
                }
            }
        }
        Command::Auth {
            command: AuthCommand::AddUser { file, user, scope },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!password.is_empty(), "the password is empty");
            let line = pipwall::auth::user_line(&user, password, scope.as_deref())?;
            pipwall::auth::append_line(&file, &line)?;
            pipwall::auth::Users::load(&file).context("the users file does not load")?;
            eprintln!("added user {user} to {}", file.display());
            Ok(Exit::Ok)
        }
        Command::Auth {
            command: AuthCommand::AddToken { file, scope },
        } => {
            let (token, line) = pipwall::auth::new_token(scope.as_deref())?;
            pipwall::auth::append_line(&file, &line)?;
            pipwall::auth::Users::load(&file).context("the users file does not load")?;
            eprintln!("added a token to {}; it is shown only now:", file.display());
            println!("{token}");
            Ok(Exit::Ok)
        }
        Command::Certs {
            command: CertsCommand::Init { dir, names, force },
        } => {
            let names = if names.is_empty() {
                pipwall::tls::DEFAULT_NAMES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            } else {
                names
            };
            let made = pipwall::tls::init(&dir, &names, force)?;
            println!(
                "wrote {} (give it to clients) and {} for {}",
                made.ca.display(),
                made.server.display(),
                names.join(", ")
            );
            println!(
                "serve:  pipwall serve --tls-cert {} --tls-key {}",
                made.server.display(),
                dir.join("server-key.pem").display()
            );
            println!(
                "trust:  pip install --cert {0} …   or   SSL_CERT_FILE={0} uv pip install …",
                made.ca.display()
            );
            Ok(Exit::Ok)
        }
    }
}

/// Every wheel named on the command line or found (recursively) in a named folder, sorted so
/// reports come in a stable order.
fn wheel_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
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

fn audit(paths: &[PathBuf], format: AuditFormat, jobs: Option<usize>) -> Result<Exit> {
    use pipwall::audit::{self, Report, Verdict};
    let wheels = wheel_paths(paths)?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, wheels.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let limits = audit::Limits::default();
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
            println!("{}", serde_json::to_string_pretty(&doc)?);
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
                    pipwall::policy::diag::SarifResult {
                        rule: f.code.as_str(),
                        level: if f.hides { "error" } else { "note" },
                        message: format!("{}: {member}{}", r.wheel, f.detail),
                        file: path.to_str().unwrap_or(&r.wheel),
                        region: None,
                    }
                })
            });
            let doc = pipwall::policy::diag::sarif_log(results);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        AuditFormat::Text => {
            for r in &reports {
                let verdict = match r.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "FAIL",
                };
                println!("{verdict}  {}  (sha256 {})", r.wheel, r.sha256);
                for f in &r.findings {
                    let mark = if f.hides { "hides" } else { "note " };
                    let file = if f.file.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", f.file)
                    };
                    println!("  {mark} {}  {file}{}", f.code, f.detail);
                }
            }
            let failed = reports
                .iter()
                .filter(|r| r.verdict == Verdict::Fail)
                .count();
            println!("{} wheels audited, {failed} failed", reports.len());
        }
    }
    Ok(if reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Exit::Findings
    } else {
        Exit::Ok
    })
}

/// `--no-audit` with a policy that needs the audit would show files the policy means to check:
/// refused, naming the line.
fn refuse_without_audits(policy: &pipwall::policy::Policy) -> Result<()> {
    match policy.needs_audit() {
        Some(origin) => anyhow::bail!(
            "--no-audit cannot be used with {origin}: attestations are verified by the wheel audit"
        ),
        None => Ok(()),
    }
}

/// `--scope NAME=FILE` flags grouped by name, in the order names first appear.
fn scope_files(flags: &[String]) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut out: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for flag in flags {
        let (name, file) = flag
            .split_once('=')
            .with_context(|| format!("--scope {flag}: expected NAME=FILE"))?;
        anyhow::ensure!(
            pipwall::scope::valid_name(name) && name != pipwall::scope::DEFAULT,
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

fn show_paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every scope a user or token is bound to must be served, or that credential could never be
/// let in anywhere.
fn check_user_scopes(app: &App, users: &pipwall::auth::Users) -> Result<()> {
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
fn reload_on_hangup(
    tls: Option<Arc<pipwall::tls::Reloadable>>,
    auth: Option<Arc<pipwall::auth::Users>>,
    app: Arc<App>,
    policies: Vec<Vec<PathBuf>>,
    learner: Option<Arc<pipwall::policy::learn::Learner>>,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Some(l) = &learner {
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
fn load_scope_policies(
    scopes: &[Vec<PathBuf>],
) -> Result<Vec<Option<Arc<pipwall::policy::Policy>>>> {
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

/// Writes what learning mode saw, saying where or why not.
fn write_learned(learner: &pipwall::policy::learn::Learner) {
    let path = learner.path().display();
    match learner.write() {
        Ok(0) => eprintln!("pipwall: learned no project yet; {path} not written"),
        Ok(n) => eprintln!("pipwall: learned {n} project(s) into {path}"),
        Err(e) => eprintln!("pipwall: could not write what was learned: {e}"),
    }
}

async fn shutdown_signal() {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // PIPWALL_LOG sets the level filter (default `warn`; `info` logs every request with its
    // id); PIPWALL_LOG_FORMAT=json writes one JSON object a line for log shippers.
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIPWALL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PIPWALL_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pipwall: cannot start: {e}");
            return ExitCode::from(Exit::Failure as u8);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("pipwall: error: {e:#}");
            ExitCode::from(Exit::Failure as u8)
        }
    }
}
