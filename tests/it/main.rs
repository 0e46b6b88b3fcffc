//! Integration tests: one binary (`tests/it`), sharing the harness in `support`.
// A harness: a panic is the failure report, so unwrapping is how it says "cannot happen here".
#![allow(clippy::unwrap_used)]
// A test binary has no public API for `pub` to overstate.
#![allow(unreachable_pub)]
// An end-to-end test is a script of steps; splitting it hides the story it tells.
#![allow(clippy::too_many_lines)]
mod audit;
mod audit_native;
mod cluster;
mod demand;
mod e2e;
mod examples;
mod integrity;
mod policy;
mod proxy;
mod proxy_audit;
mod scopes;
mod support;
