//! The `pipwall` command: logging and the runtime are set up here; everything else is
//! [`pipwall::cli`].

use std::process::ExitCode;

/// A page of thousands of files is tens of thousands of small allocations; mimalloc makes each
/// about twice as cheap as the system allocator (measured in `benches/page.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = <pipwall::cli::Cli as clap::Parser>::parse();
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
            return ExitCode::from(pipwall::cli::Exit::Failure as u8);
        }
    };
    match runtime.block_on(pipwall::cli::run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("pipwall: error: {e:#}");
            ExitCode::from(pipwall::cli::Exit::Failure as u8)
        }
    }
}
