//! Integration tests: one binary (`tests/it`), sharing the harness in `support`.
mod audit;
mod e2e;
mod proxy;
mod support;
