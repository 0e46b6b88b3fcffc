//! The stable ABI (PEP 384, `abi3`): which CPython symbols a binary tagged `cp3X-abi3` may import.
//!
//! The table (`stable_abi.rs`) is generated from CPython's own list by `tools/gen_stable_abi.py`.
//! Rules (research R-A3): an imported `Py*`/`_Py*` symbol must be in the table, must have joined
//! the stable ABI no later than the wheel's floor (the lowest `cp3X` of its tags), and must exist
//! on the target OS. `abi_only` items (`_Py_Dealloc`, …) are imports the Limited API's own macros
//! make, so they are allowed.

use super::stable_abi::STABLE_ABI;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    Function,
    Data,
}

/// CPython feature macros that make a stable-ABI item exist only on some builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ifdef {
    /// Only on Windows.
    MsWindows,
    /// Only where `fork()` exists: never on Windows.
    HaveFork,
    /// Only on some Windows builds.
    UseStackcheck,
    /// Windows and the Unix systems with native thread ids (Linux, macOS, the BSDs).
    PyHaveThreadNativeId,
    /// Only in debug builds of CPython, which no released wheel targets.
    PyRefDebug,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StableItem {
    pub name: &'static str,
    pub kind: SymbolKind,
    /// The CPython 3.x minor version the item joined the stable ABI in.
    pub added: u8,
    pub abi_only: bool,
    pub ifdef: Option<Ifdef>,
}

/// The OS a binary is built for, from its format and the wheel's platform tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetOs {
    Linux,
    MacOs,
    Windows,
    Other,
}

impl Ifdef {
    fn available_on(self, os: TargetOs) -> bool {
        match self {
            Self::MsWindows | Self::UseStackcheck => os == TargetOs::Windows,
            Self::HaveFork => os != TargetOs::Windows,
            Self::PyHaveThreadNativeId => true,
            Self::PyRefDebug => false,
        }
    }
}

/// The stable-ABI entry for a C symbol name (no Mach-O leading `_`).
pub fn lookup(name: &str) -> Option<&'static StableItem> {
    STABLE_ABI
        .binary_search_by(|item| item.name.cmp(name))
        .ok()
        .and_then(|i| STABLE_ABI.get(i))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportVerdict {
    /// Not a CPython symbol (libc, the module's own libraries): not this rule's concern.
    NotPython,
    Allowed(&'static StableItem),
    /// A `Py*`/`_Py*` symbol that is not in the stable ABI at all.
    OutsideStableAbi,
    /// In the stable ABI, but only since a version newer than the wheel's floor.
    NewerThanFloor {
        item: &'static StableItem,
        floor: u8,
    },
    /// In the stable ABI, but not on the target OS (or only in debug builds).
    NotOnTarget {
        item: &'static StableItem,
    },
}

/// Judges one imported symbol of a binary in a wheel whose floor is `cp3{floor}-abi3`.
pub fn check_import(name: &str, floor: u8, os: TargetOs) -> ImportVerdict {
    if !(name.starts_with("Py") || name.starts_with("_Py")) {
        return ImportVerdict::NotPython;
    }
    let Some(item) = lookup(name) else {
        return ImportVerdict::OutsideStableAbi;
    };
    // Missing on the target OS is the harder failure: no tag could fix it.
    if item.ifdef.is_some_and(|d| !d.available_on(os)) {
        return ImportVerdict::NotOnTarget { item };
    }
    if item.added > floor {
        return ImportVerdict::NewerThanFloor { item, floor };
    }
    ImportVerdict::Allowed(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetOs::{Linux, MacOs, Windows};

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(STABLE_ABI.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(STABLE_ABI.len(), 968);
    }

    #[test]
    fn abi_only_helpers_are_allowed() {
        let v = check_import("_Py_Dealloc", 7, Linux);
        assert!(matches!(v, ImportVerdict::Allowed(i) if i.abi_only && i.added == 2));
    }

    #[test]
    fn outside_the_stable_abi() {
        assert_eq!(
            check_import("PyUnicode_New", 12, Linux),
            ImportVerdict::OutsideStableAbi
        );
        assert_eq!(
            check_import("_PyLong_AsByteArray", 12, Linux),
            ImportVerdict::OutsideStableAbi
        );
    }

    #[test]
    fn newer_than_the_floor() {
        assert!(matches!(
            check_import("PyType_GetModuleByDef", 12, Linux),
            ImportVerdict::NewerThanFloor { item, floor: 12 } if item.added == 13
        ));
        assert!(matches!(
            check_import("PyType_GetModuleByDef", 13, Linux),
            ImportVerdict::Allowed(_)
        ));
        // Items only in the newer dump are present too.
        assert!(matches!(
            check_import("Py_HashBuffer", 15, Linux),
            ImportVerdict::NewerThanFloor { .. }
        ));
    }

    #[test]
    fn ifdef_items_follow_the_target_os() {
        assert!(matches!(
            check_import("PyErr_SetFromWindowsErr", 7, Windows),
            ImportVerdict::Allowed(_)
        ));
        assert!(matches!(
            check_import("PyErr_SetFromWindowsErr", 7, Linux),
            ImportVerdict::NotOnTarget { .. }
        ));
        assert!(matches!(
            check_import("PyOS_AfterFork_Child", 7, MacOs),
            ImportVerdict::Allowed(_)
        ));
        assert!(matches!(
            check_import("PyOS_AfterFork_Child", 7, Windows),
            ImportVerdict::NotOnTarget { .. }
        ));
        assert!(matches!(
            check_import("_Py_NegativeRefcount", 12, Linux),
            ImportVerdict::NotOnTarget { .. }
        ));
    }

    #[test]
    fn other_symbols_are_not_this_rules_concern() {
        assert_eq!(check_import("memcpy", 7, Linux), ImportVerdict::NotPython);
        assert_eq!(
            check_import("GLIBC_2.17", 7, Linux),
            ImportVerdict::NotPython
        );
    }
}
