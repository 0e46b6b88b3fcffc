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
    /// it. Without one, the example wheelhouse bundled with pipwall is used.
    #[arg(long = "upstream", env = "PIPWALL_UPSTREAM", value_delimiter = ',')]
    upstreams: Vec<String>,
    /// Extra CA certificates (PEM) to trust for upstream HTTPS, e.g. a corporate TLS-inspection CA.
    #[arg(long, value_name = "FILE")]
    upstream_ca: Option<PathBuf>,
    /// Seconds to wait for an upstream page.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    upstream_timeout: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy: point pip's or uv's index URL at http://LISTEN/simple/.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3141", value_name = "ADDR")]
        listen: String,
        #[command(flatten)]
        upstream: UpstreamArgs,
        /// Folder for cached, verified files (default: the user cache folder).
        #[arg(long, env = "PIPWALL_CACHE_DIR", value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Write the decision log (one JSON line per decided file) here instead of stderr.
        #[arg(long, value_name = "FILE")]
        decision_log: Option<PathBuf>,
        /// Seconds a decided page is served before upstream is asked again.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        page_ttl: u64,
    },
    /// Show every upstream file of a project, shown or hidden, with the reason.
    Explain {
        /// PROJECT or PROJECT==VERSION.
        project: String,
        #[command(flatten)]
        upstream: UpstreamArgs,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

/// Exit statuses: 0 success, 2 the command could not run. (1, "ran and found a problem", is
/// kept for `audit` and `policy check`.)
#[derive(Clone, Copy)]
enum Exit {
    Ok = 0,
    Failure = 2,
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
    let mut specs = args.upstreams.clone();
    if specs.is_empty() {
        let dir = example_wheelhouse();
        eprintln!(
            "pipwall: no --upstream given; serving the bundled example wheelhouse {}",
            dir.display()
        );
        specs.push(dir.display().to_string());
    }
    let limits = Limits {
        page_timeout: Duration::from_secs(args.upstream_timeout),
        ..Limits::default()
    };
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
            upstream,
            cache_dir,
            decision_log,
            page_ttl,
        } => {
            let upstreams = upstreams(&upstream)?;
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
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            for s in upstreams.sources() {
                eprintln!("pipwall: upstream {}", s.describe());
            }
            eprintln!(
                "pipwall: serving http://{addr}/simple/ (cache {})",
                cache_dir.display()
            );
            let app = Arc::new(App::new(
                upstreams,
                Settings {
                    cache_dir,
                    page_ttl: Duration::from_secs(page_ttl),
                },
                log,
            ));
            pipwall::server::serve(app, listener, shutdown_signal(), Duration::from_secs(30))
                .await?;
            eprintln!("pipwall: stopped");
            Ok(Exit::Ok)
        }
        Command::Explain {
            project,
            upstream,
            format,
        } => {
            let (name, version) = match project.split_once("==") {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (project.trim(), None),
            };
            let name = ProjectName::new(name)
                .with_context(|| format!("`{name}` is not a project name"))?;
            let upstreams = upstreams(&upstream)?;
            let explained = pipwall::explain::explain(&upstreams, &name, version)
                .await
                .with_context(|| format!("cannot explain {name}"))?;
            let out = match format {
                OutputFormat::Text => explained.to_text(),
                OutputFormat::Json => serde_json::to_string_pretty(&explained)? + "\n",
            };
            print!("{out}");
            Ok(Exit::Ok)
        }
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIPWALL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
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
