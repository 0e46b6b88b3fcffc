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
//! A project request runs these phases, each a function in [`pipeline`] that `serve`,
//! `explain` and `vet` all call (one orchestration, no copies):
//!
//! | phase | where | what |
//! |---|---|---|
//! | route | [`route::route`] | validate and normalize the name (PEP 503); redirect non-normalized names |
//! | gate | [`pipeline::gate`] | the policy on the project alone (deny/allow lists, lock files, malware): a blocked project is answered without asking upstream |
//! | fetch_page | [`pipeline::fetch_page`] | JSON preferred, HTML accepted; bounded in size, time and redirects; conditional requests; `[[private]]` routing |
//! | parse_page | [`index::json::parse`], [`index::html::parse`] | one model; a bad entry hides that file, only an unusable page fails |
//! | classify, decide | [`pipeline::decide`] | each file by its name (PEP 427/425/625), then by the policy's rules; shown or hidden with a stable [`policy::Code`] and the policy line that decided |
//! | audit | [`pipeline::candidates`], [`demand::Plan`], [`pipeline::audit`], [`pipeline::known_states`] | the shown wheels some installer environment can install ([`demand`]: the asking client's, the declared fleet's, those seen before), each downloaded once through [`cache::download`] (hash-checked, stored), audited ([`audit::audit_file`]), its PEP 740 provenance verified when listed ([`attest`]), the report kept ([`cache::audits`]); the rest listed held or not at all |
//! | apply_audits | [`policy::apply_audits`] | the policy on the audit findings |
//! | record | [`pipeline::record`] | one JSON line per decided file ([`decision_log`]), counted by code |
//! | render | [`pipeline::render`] | pipwall's own page in the negotiated format ([`index::negotiate`]) |
//!
//! `serve` ([`serve::App::project_page`]) keeps both renderings of each decided page, so a
//! page whose upstream bytes did not change is served without being parsed, decided or
//! rendered again, and waits only for the audits its client needs, until a deadline. Downloads
//! ([`serve::App::handle_file`]) are served only for shown files, through the same
//! hash-checked path as audits, with the last chunk held back until the digest matches.
//! Everything a policy decides (pages, the shown-file table, reloads) is kept per scope
//! ([`scope`]): the default index at `/simple/` and each `serve --scope NAME` at
//! `/NAME/simple/`, with [`server`] choosing the scope from the path, the listener or the
//! credential.
//!
//! The modules, by job:
//!
//! | module | job |
//! |---|---|
//! | [`dist`], [`index`] | the standards: filenames and tags (PEP 427/425/625/440), simple-index pages (PEP 503/691/658/700/792), parsed and rendered |
//! | [`upstream`] | fetching pages and files from HTTP(S) indexes or wheel folders, bounded |
//! | [`pipeline`] | the phases of a project request, shared by `serve`, `explain` and `vet` |
//! | [`policy`] | what may be seen: [`policy::rules`] holds one module per rule (settings, section reading, checks), [`policy::config`] loads files into a [`policy::Policy`], [`policy::eval`] orders and weighs the checks, [`policy::page`] decides a page |
//! | [`data`] | third-party data the policy reads: OSV records, lock files, Scorecard results, popular names |
//! | [`demand`] | which wheels are worth auditing, from the installer environments pipwall knows |
//! | [`audit`] | opening a wheel: zip framing, RECORD/WHEEL/METADATA, native code against its tags, the loaders' replay |
//! | [`cache`] | the file store, the one hash-checked download path, and the audit reports and queue |
//! | [`state`] | with `--state postgres://…`: reports, audit claims (leases), environments and learning records shared by replicas |
//! | [`attest`] | PEP 740 provenance verification |
//! | [`serve`], [`server`], [`auth`], [`tls`], [`ratelimit`], [`route`] | the HTTP side: pages, downloads, scopes, credentials, limits |
//! | [`explain`], [`vet`], [`cli`] | the commands |
//! | [`decision_log`], [`metrics`] | what was decided and how it went |
//!
//! Leaves below everything else: [`sanitize`] (the one place untrusted text is made safe to
//! print), [`scope`], [`size`], [`error`].
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
pub mod cli;
pub mod data;
pub mod decision_log;
pub mod demand;
pub mod dist;
pub mod error;
pub mod explain;
pub mod index;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod route;
pub mod sanitize;
pub mod scope;
pub mod serve;
pub mod server;
pub mod size;
pub mod state;
pub mod tls;
pub mod upstream;
pub mod vet;
