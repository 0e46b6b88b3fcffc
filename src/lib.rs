//! pipwall: a pre-install firewall for pip and uv.
pub mod decision_log;
pub mod dist;
pub mod explain;
pub mod index;
pub mod policy;
pub mod route;
pub mod serve;
pub mod server;
pub mod upstream;
