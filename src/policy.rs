//! What may be seen. Decisions are data, never errors: a hidden file is a [`Decision`] with a
//! reason code a person can read and the policy line that made it, and every decision is logged
//! and kept for `pipwall explain`.
//!
//! Policies are TOML files ([`config`]): one section per rule, each with an action (`hide`,
//! `warn`, `allow`) and a `report-only` switch, plus exceptions with a reason, an optional
//! expiry and a scope. [`Policy::gate`] decides a project before any upstream is asked, and the
//! resulting [`View`] decides its files ([`decide_page`]) and their audits ([`apply_audits`]).

pub mod check;
pub mod config;
pub mod decision;
pub mod diag;
pub mod eval;
pub mod learn;
pub mod names;
pub mod page;
pub mod rule;
pub mod rules;
pub mod waive;
pub(crate) mod walk;

pub use config::{Blocked, Policy, PolicyError, load_files};
pub use decision::{Action, Code, Decision};
pub use diag::{Diagnostic, Origin, Severity};
pub use eval::{Gate, View};
pub use page::{AuditState, FileDecision, apply_audits, decide_page, is_audited};
pub use rule::{RuleAction, RuleId};
