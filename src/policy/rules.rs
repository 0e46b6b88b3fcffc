//! One module per rule: its settings as the policy holds them, how its section is read and
//! finished (`Raw::key` per key as each file is walked, `Raw::finish` once all files are in,
//! into the rule's own settings: a rule never sees the whole policy), and what it checks.
//! Adding a rule is a module here, a line in each of the loader's three dispatches
//! (`config::Raws`), a [`RuleId`](super::RuleId) and its decision
//! [`Code`](super::decision::Code)s.
//!
//! Rules without keys of their own (`[sdists]`, `[prereleases]`, `[yanked]`) have only the
//! `action` and `report-only` every section takes, which the loader reads for all, and their
//! check. The order the checks run in is the evaluator's (`eval`).

pub mod attestations;
pub mod audit;
pub mod cooldown;
pub mod feeds;
pub mod health;
pub mod licenses;
pub mod lock;
pub mod namespaces;
pub mod prereleases;
pub mod project_status;
pub mod projects;
pub mod sdists;
pub mod size;
pub mod tags;
pub mod typosquat;
pub mod unmaintained;
pub mod versions;
pub mod yanked;
