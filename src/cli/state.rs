//! `pipwall state`: the shared state of a cluster of replicas (`serve --state`).

use anyhow::{Context, Result};

use super::Exit;

/// Where the shared state is: `serve`'s and `warm`'s flags.
#[derive(clap::Args)]
pub struct StateArgs {
    /// The shared state of a cluster of replicas, a PostgreSQL database (13 or newer), e.g.
    /// `postgres://pipwall@db.internal/pipwall`: `serve` shares audit reports, audit claims,
    /// known environments and learning records through it (without it they stay in
    /// --cache-dir), `warm` stores its verdicts there. The schema is migrated when it is
    /// opened; a newer schema than this pipwall knows is refused.
    #[arg(
        long,
        env = "PIPWALL_STATE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state: Option<String>,
    /// Also trust this PEM bundle for the database's TLS certificate (a private CA). TLS is
    /// used as the URL's `sslmode` says: `prefer` by default, `require` to insist.
    #[arg(
        long,
        env = "PIPWALL_STATE_CA",
        value_name = "FILE",
        requires = "state"
    )]
    pub state_ca: Option<std::path::PathBuf>,
}

#[derive(clap::Subcommand)]
pub enum StateCommand {
    /// Bring the shared state's schema to this pipwall's version (serve does it at start;
    /// this is for a database whose users may not create tables). Refuses a newer schema.
    Migrate {
        /// The PostgreSQL connection string, e.g. `postgres://pipwall@db/pipwall`; the
        /// password is best left to `PGPASSWORD`-style configuration or a `.pgpass` file.
        #[arg(
            long,
            env = "PIPWALL_STATE",
            value_name = "URL",
            hide_env_values = true
        )]
        state: String,
        /// Also trust this PEM bundle for the database's TLS certificate.
        #[arg(long, env = "PIPWALL_STATE_CA", value_name = "FILE")]
        state_ca: Option<std::path::PathBuf>,
    },
}

pub async fn run(command: StateCommand) -> Result<Exit> {
    match command {
        StateCommand::Migrate { state, state_ca } => {
            let (from, to) = crate::state::migrate(&state, state_ca.as_deref())
                .await
                .context("cannot migrate the shared state")?;
            if from == to {
                outln!("shared state schema is at version {to}; nothing to do");
            } else {
                outln!("shared state schema migrated from version {from} to {to}");
            }
            Ok(Exit::Ok)
        }
    }
}
