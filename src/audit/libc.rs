//! The two C libraries Linux wheels are built for, and what their loaders do by name alone.
//! A leaf: the generated policy tables, the platform rules and the loader replay all use it.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    /// The platform-tag family: `manylinux` (PEP 600) or `musllinux` (PEP 656).
    pub fn family(self) -> &'static str {
        match self {
            Self::Glibc => "manylinux",
            Self::Musl => "musllinux",
        }
    }
}

/// Whether musl's loader answers this name with itself, without looking at any file: in
/// `ldso/dynlink.c`, `load_library` treats `lib` followed by one of `c.`, `pthread.`, `rt.`,
/// `m.`, `dl.`, `util.`, `xnet.` as a request for the implementation itself.
pub fn musl_serves_itself(name: &str) -> bool {
    const RESERVED: [&str; 7] = ["c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."];
    name.strip_prefix("lib")
        .is_some_and(|rest| RESERVED.iter().any(|r| rest.starts_with(r)))
}

/// Whether `soname` names the dynamic loader of `libc`. auditwheel ignores the versions needed
/// from glibc's loader and never counts it as an external library; its names are `ld-linux*`
/// (most arches), `ld64.so.1` (ppc64, s390x's old name) and `ld64.so.2` (ppc64le). musl's is
/// `ld-musl-<musl arch>.so.1` (`ld-musl-armhf.so.1` for armv7l): matched by shape, since the
/// ELF machine check already ties the binary to one architecture. Each libc's loader counts only
/// for that libc: a musllinux binary needing `ld-linux-x86-64.so.2` needs glibc.
pub fn is_dynamic_loader(libc: Libc, soname: &str) -> bool {
    match libc {
        Libc::Glibc => {
            soname.starts_with("ld-linux") || soname == "ld64.so.1" || soname == "ld64.so.2"
        }
        Libc::Musl => soname.starts_with("ld-musl-") && soname.ends_with(".so.1"),
    }
}
