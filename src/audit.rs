//! Wheel audits. Built up in steps: today, the stable-ABI (`abi3`) rule for one imported
//! symbol; archive, binary and manylinux checks come next.

pub mod abi3;
mod stable_abi;

pub use abi3::{Ifdef, ImportVerdict, StableItem, SymbolKind, TargetOs, check_import, lookup};
