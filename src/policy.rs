//! What may be seen. Decisions are data, never errors: a hidden file is a [`Decision`] with a
//! reason code a person can read, and every decision is logged and kept for `pipwall explain`.

pub mod decision;
pub mod rules;

pub use decision::{Action, Code, Decision};
pub use rules::{AuditState, FileDecision, apply_audits, decide_page};
