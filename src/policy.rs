//! What may be seen. Decisions are data, never errors: a hidden file is a [`Decision`] with a
//! reason code a person can read and the policy line that made it, and every decision is logged
//! and kept for `pipwall explain`.
//!
//! Policies are TOML files: one section per rule, each with an action (`hide`, `warn`, `allow`,
//! `yank`) and a `report-only` switch, plus exceptions with a reason, an optional expiry and a
//! scope.
//!
//! | module | job |
//! |---|---|
//! | [`rules`] | one module per rule: its settings, how its section is read, and its checks |
//! | [`config`] | loading files into one [`Policy`]: what every section shares, exceptions, `[[private]]` routes |
//! | `walk` | reading one file's values with positions (names, globs, durations, ranges, paths) |
//! | [`eval`] | [`Policy::gate`] narrows the policy to a project (a [`View`]) before any upstream is asked, then runs the rules' checks in order and weighs each hit (action, report-only, exceptions) |
//! | [`check`] | what a check returns: hits and the scope exceptions are matched against |
//! | [`page`] | a whole page decided ([`decide_page`]) and its audits applied ([`apply_audits`]) |
//! | [`decision`], [`diag`], [`rule`], [`names`] | decisions and codes, load diagnostics, rule ids and actions, name patterns |
//! | [`learn`], [`waive`] | writing policy: learned allow-lists, exceptions from the command line |

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
