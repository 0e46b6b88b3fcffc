//! pipwall: a pre-install firewall for pip and uv.
pub mod dist;
pub mod index;
pub mod policy;
pub mod upstream;
