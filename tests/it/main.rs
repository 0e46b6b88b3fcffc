//! Integration tests: one binary (`tests/it`), sharing the harness in `support`.
mod audit;
mod audit_native;
mod e2e;
mod examples;
mod policy;
mod proxy;
mod proxy_audit;
mod scopes;
mod support;
