//! Wheel audits: is a wheel what it claims to be?
//!
//! pip installs a wheel on the strength of its filename tags and never looks inside. The audit
//! opens the archive and compares the claim with the contents:
//!
//! | step | where | what |
//! |---|---|---|
//! | framing | [`archive`] | the zip reads the same to every installer; bounded inflation |
//! | metadata | [`contents`] | `WHEEL`, `METADATA` and `RECORD` agree with the filename and the bytes |
//! | startup code | [`contents`] | `.pth` lines and `sitecustomize` that run at every interpreter start |
//! | binaries | [`native`] | every ELF, Mach-O and PE member, found by magic, parsed with goblin |
//! | claims | [`claims`] | stable ABI (`abi3`), manylinux/musllinux policies, macOS and Windows targets |
//!
//! The result is a [`Report`]: findings with stable [`FindingCode`]s, and a verdict. Every finding hides
//! the wheel (fail closed) except those [`FindingCode::hides_by_default`] says a person should judge.
//! A report is keyed by the sha256 of the wheel's bytes and [`AUDITOR`]: the same bytes audited
//! by the same rules give the same report, so it can be stored and reused.

pub mod abi3;
pub mod archive;
pub mod claims;
pub mod contents;
pub mod finding;
pub mod libc;
mod linux_policy;
pub mod loader;
pub mod native;
pub mod platform;
mod stable_abi;
pub mod wheel;
mod windows_dlls;

pub use abi3::{Ifdef, ImportVerdict, StableItem, SymbolKind, TargetOs, check_import, lookup};
pub use archive::ArchiveLimits;
pub use finding::{Finding, FindingCode, LicenseFacts, Report, Verdict};
pub use wheel::{audit_file, hash_file, hash_reader};

/// Names the rules a report was made with. Bump the suffix whenever a rule or its data changes,
/// so stored reports made by older rules are audited again.
pub const AUDITOR: &str = concat!("pipwall-audit/", env!("CARGO_PKG_VERSION"), "+rules.5");
