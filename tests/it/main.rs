//! Integration tests: one binary (`tests/it`), sharing the harness in `support`.
mod e2e;
mod proxy;
mod support;
