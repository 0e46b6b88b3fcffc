//! pipwall: a pre-install firewall for pip and uv.
//!
//! pipwall is a package index (the simple repository API: PEP 503 HTML, PEP 691 JSON) that
//! fronts one or more upstream indexes or wheel folders and shows installers only the files it
//! decided to show.
//!
//! ```text
//! pip / uv ──GET /simple/<name>/──▶ pipwall ──▶ upstream index (HTTP(S) simple API, or a local folder)
//!            ◀── rewritten page ──  │
//! pip / uv ──GET /files/<sha256>/<filename>──▶ only files pipwall showed; bytes hash-checked
//! ```
//!
//! A project request runs these phases, each a function you can find by name:
//!
//! | phase | where | what |
//! |---|---|---|
//! | route | [`route::route`] | validate and normalize the name (PEP 503); redirect non-normalized names |
//! | fetch_page | [`upstream::Upstreams::project_page`] | JSON preferred, HTML accepted; bounded in size, time and redirects; conditional requests; unchanged bytes are not parsed again |
//! | parse_page | [`index::json::parse`], [`index::html::parse`] | one model; a bad entry hides that file, only an unusable page fails |
//! | gate | [`policy::Policy::gate`] | the policy on the project alone (deny/allow lists, lock files, malware): a blocked project is answered without asking upstream |
//! | decide | [`policy::decide_page`] | each file by its name (PEP 427/425/625), then by the policy's rules; shown or hidden with a stable [`policy::Code`] and the policy line that decided |
//! | audit | [`cache::audits::Audits`], [`audit::audit_file`] | download each shown wheel once (hash-checked, cached), audit it, verify its PEP 740 provenance when the index lists one ([`attest`]), keep the report; a page waits up to a deadline, then lists what passed ([`policy::apply_audits`]) |
//! | record | [`decision_log::DecisionLog::record`] | one JSON line per decided file |
//! | render | [`index::render`] | pipwall's own page in the negotiated format ([`index::negotiate`]) |
//!
//! [`serve::App::project_page`] ties the phases together and keeps both renderings of each
//! decided page, so a page whose upstream bytes did not change is served without being parsed,
//! decided or rendered again. Downloads ([`serve::App::handle_file`]) are served only for shown
//! files, streamed and hashed, with the last chunk held back until the digest matches.
//! Everything a policy decides (pages, the shown-file table, reloads) is kept per scope: the
//! default index at `/simple/` and each `serve --scope NAME` at `/NAME/simple/`, with
//! [`server`] choosing the scope from the path, the listener or the credential.
//!
//! Decisions are data, not errors: a hidden file is a [`policy::Decision`]. An error means
//! pipwall could not do its job, and [`serve::AppError::into_response`] is the one place that
//! turns errors into statuses (upstream 404 → 404, unreachable or unusable → 502, timeout → 504).
//!
//! The standards code ([`dist`], [`index`]) does no network I/O and treats all its input as
//! hostile.

pub mod attest;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod decision_log;
pub mod dist;
pub mod error;
pub mod explain;
pub mod index;
pub mod metrics;
pub mod policy;
pub mod ratelimit;
pub mod route;
pub mod sanitize;
pub mod scope;
pub mod serve;
pub mod server;
pub mod size;
pub mod tls;
pub mod upstream;
pub mod vet;
