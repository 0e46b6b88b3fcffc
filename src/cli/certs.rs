//! `pipwall certs`: a local CA and server certificate for serving HTTPS.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::Exit;

#[derive(Subcommand)]
pub enum CertsCommand {
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

pub fn run(command: CertsCommand) -> Result<Exit> {
    match command {
        CertsCommand::Init { dir, names, force } => {
            let names = if names.is_empty() {
                crate::tls::DEFAULT_NAMES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect()
            } else {
                names
            };
            let made = crate::tls::init(&dir, &names, force)?;
            outln!(
                "wrote {} (give it to clients) and {} for {}",
                made.ca.display(),
                made.server.display(),
                names.join(", ")
            );
            outln!(
                "serve:  pipwall serve --tls-cert {} --tls-key {}",
                made.server.display(),
                dir.join("server-key.pem").display()
            );
            outln!(
                "trust:  SSL_CERT_FILE={0} pip install …   or   SSL_CERT_FILE={0} uv pip install …",
                made.ca.display()
            );
            Ok(Exit::Ok)
        }
    }
}
