//! pipwall: a pre-install firewall for pip and uv.
pub mod dist;
pub mod index;
