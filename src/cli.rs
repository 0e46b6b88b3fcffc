//! The `pipwall` command line: argument parsing ([`Cli`]) and one module per command, each
//! holding its flags and its wiring. `main.rs` only sets up logging and the runtime, parses
//! and dispatches through [`run`].

/// `println!` for command output: a reader that went away (`pipwall audit … | head`) ends
/// the command quietly, as Unix tools do, rather than with a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), true)
    };
}

/// `print!` for command output, as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*), false)
    };
}

pub mod audit;
pub mod auth;
pub mod certs;
pub mod explain;
pub mod policy;
pub mod serve;
pub mod state;
pub mod vet;
pub mod warm;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::upstream::{Limits, Upstreams};

/// A pre-install firewall for pip and uv: a package index proxy that shows only vetted wheels.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy: point pip's or uv's index URL at http://LISTEN/simple/.
    Serve(serve::ServeArgs),
    /// Check policy files, and add reviewed exceptions to them.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Users and tokens for `serve --auth-file`.
    Auth {
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    /// Certificates for serving HTTPS.
    Certs {
        #[command(subcommand)]
        command: certs::CertsCommand,
    },
    /// Show every upstream file of a project, shown or hidden, with the reason.
    Explain(explain::ExplainArgs),
    /// Decide and audit every file a lock file pins, as `serve` would: a CI warm-up (wheels end
    /// up audited in the cache) and a report. Exits 1 when a locked project has no pinned file
    /// shown, so its install would fail.
    Vet(vet::VetArgs),
    /// Audit ahead of installs what `serve` would audit in the background for the machines
    /// it knows (the policy's `[audit] fleet`, and the clients it has seen), into its cache
    /// folder: its first answers for these projects then need no download or audit.
    Warm(warm::WarmArgs),
    /// The shared state of several replicas (`serve --state postgres://…`).
    State {
        #[command(subcommand)]
        command: state::StateCommand,
    },
    /// Audit wheel files offline: archive integrity, metadata, RECORD hashes, startup code, and
    /// native code against the wheel's tags (abi3, manylinux/musllinux, macOS, Windows).
    /// Exits 1 when any wheel fails.
    Audit(audit::AuditArgs),
}

/// Runs one command to its exit status.
pub async fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Explain(args) => explain::run(args).await,
        Command::Vet(args) => vet::run(args).await,
        Command::Warm(args) => warm::run(args).await,
        Command::Audit(args) => audit::run(args),
        Command::Policy { command } => policy::run(command),
        Command::Auth { command } => auth::run(command),
        Command::Certs { command } => certs::run(command),
        Command::State { command } => state::run(command).await,
    }
}

#[derive(clap::Args)]
pub struct UpstreamArgs {
    /// Upstream simple index root (`https://…/simple/`, credentials allowed in the URL) or a
    /// local folder of wheels. Repeatable: the first upstream that knows a project answers for
    /// it. `NAME=URL` labels one for a policy's `[[private]]` section. Without one, the example
    /// wheelhouse bundled with pipwall is used.
    #[arg(long = "upstream", env = "PIPWALL_UPSTREAM", value_delimiter = ',')]
    pub upstreams: Vec<String>,
    /// Extra CA certificates (PEM) to trust for upstream HTTPS, e.g. a corporate TLS-inspection CA.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Seconds to wait for an upstream page.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub upstream_timeout: u64,
}

#[derive(clap::Args)]
pub struct PolicyArgs {
    /// Policy file (TOML; see policies/template.toml). Repeatable: later files replace single
    /// values and extend lists. Default: the shipped policies/default.toml.
    #[arg(
        long = "policy",
        env = "PIPWALL_POLICY",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub policies: Vec<PathBuf>,
}

impl PolicyArgs {
    /// Loads the policy; warnings go to stderr, errors fail with every problem listed.
    pub fn load(&self) -> Result<crate::policy::Policy> {
        if self.policies.is_empty() {
            return Ok(crate::policy::Policy::builtin());
        }
        load_policy_files(&self.policies)
    }
}

/// Loads policy files merged in order, warnings to stderr, errors with every problem listed.
pub fn load_policy_files(files: &[PathBuf]) -> Result<crate::policy::Policy> {
    let (policy, warnings) = crate::policy::load_files(files)?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(policy)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Exit statuses: 0 success, 1 the command ran and found a problem, 2 it could not run.
#[derive(Clone, Copy)]
pub enum Exit {
    Ok = 0,
    /// The command ran and found a problem (a wheel failed its audit).
    Findings = 1,
    Failure = 2,
}

/// `1234`, `512M`, `10GB`, `1T`: [`crate::size::parse`], as in a policy.
pub fn parse_size(text: &str) -> Result<u64, String> {
    crate::size::parse(text).map_err(|e| e.to_string())
}

pub fn example_wheelhouse() -> PathBuf {
    let bundled = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/wheelhouse"));
    if bundled.is_dir() {
        bundled
    } else {
        PathBuf::from("examples/wheelhouse")
    }
}

pub fn upstreams(args: &UpstreamArgs) -> Result<Upstreams> {
    upstreams_with(args, |_| {})
}

pub fn upstreams_with(args: &UpstreamArgs, tune: impl FnOnce(&mut Limits)) -> Result<Upstreams> {
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

pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pipwall")
}

/// `--no-audit` with a policy that needs the audit would show files the policy means to check:
/// refused, naming the line.
pub fn refuse_without_audits(policy: &crate::policy::Policy) -> Result<()> {
    match policy.needs_audit() {
        Some(origin) => anyhow::bail!(
            "--no-audit cannot be used with {origin}: attestations are verified by the wheel audit"
        ),
        None => Ok(()),
    }
}

/// Writes command output to standard output (see [`outln!`]). A closed pipe exits 0 at once:
/// whoever read the output has all they wanted. Any other write error is reported and exits
/// with the failure code.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("pipwall: cannot write the output: {e}");
        std::process::exit(Exit::Failure as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_read_the_same_as_in_a_policy() {
        // Issue 13: `--cache-max-size 10GB` was refused while a policy read `10GB` as 10^9.
        let cli = Cli::try_parse_from(["pipwall", "serve", "--cache-max-size", "10GB"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.cache_max_size, 10_000_000_000);
        assert!(Cli::try_parse_from(["pipwall", "serve", "--cache-max-size", "lots"]).is_err());
    }

    #[test]
    fn each_command_parses_to_its_own_arguments() {
        let cli = Cli::try_parse_from(["pipwall", "explain", "demo==1.0", "--no-audit"]).unwrap();
        assert!(
            matches!(cli.command, Command::Explain(ref a) if a.project == "demo==1.0" && a.no_audit)
        );
        let cli = Cli::try_parse_from(["pipwall", "audit", "a.whl", "--format", "sarif"]).unwrap();
        assert!(matches!(cli.command, Command::Audit(_)));
        let cli = Cli::try_parse_from(["pipwall", "vet", "-r", "req.txt"]).unwrap();
        assert!(matches!(cli.command, Command::Vet(ref a) if a.locks.len() == 1));
        assert!(Cli::try_parse_from(["pipwall", "vet"]).is_err());
    }
}
