//! External data the policy reads, parsed and bounded here, judged there: OSV advisory and
//! malware records ([`osv`]), lock files ([`lock`]), OpenSSF Scorecard results ([`scorecard`])
//! and the table of well-known project names ([`popular`]). All of it is third-party input,
//! read with size caps, and none of it depends on the policy.

pub mod lock;
pub mod osv;
pub mod popular;
pub mod scorecard;
