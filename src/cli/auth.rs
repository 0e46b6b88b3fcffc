//! `pipwall auth`: users and tokens for `serve --auth-file`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::Exit;

#[derive(Subcommand)]
pub enum AuthCommand {
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

pub fn run(command: AuthCommand) -> Result<Exit> {
    match command {
        AuthCommand::AddUser { file, user, scope } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!password.is_empty(), "the password is empty");
            let line = crate::auth::user_line(&user, password, scope.as_deref())?;
            crate::auth::append_line(&file, &line)?;
            crate::auth::Users::load(&file).context("the users file does not load")?;
            eprintln!("added user {user} to {}", file.display());
            Ok(Exit::Ok)
        }
        AuthCommand::AddToken { file, scope } => {
            let (token, line) = crate::auth::new_token(scope.as_deref())?;
            crate::auth::append_line(&file, &line)?;
            crate::auth::Users::load(&file).context("the users file does not load")?;
            eprintln!("added a token to {}; it is shown only now:", file.display());
            outln!("{token}");
            Ok(Exit::Ok)
        }
    }
}
