//! Where the Linux dynamic loaders find the libraries a wheel's ELF files need.
//!
//! A rule such as "every library is allowed by the policy or shipped in the wheel" is only as
//! right as its idea of *shipped*: a library is shipped when the loader, loading the wheel's
//! code the way Python does, finds it inside the wheel. That depends on more than the needing
//! file's own search path, so this module replays the two loaders' lookup on the wheel's
//! files, from each extension module Python would `dlopen`:
//!
//! - **glibc** (`elf/dl-load.c`, `_dl_map_object`): a name already loaded (as a requested name
//!   or a `DT_SONAME`) is reused. Otherwise, when the needing object has no `DT_RUNPATH`, the
//!   `DT_RPATH` of that object is searched, then the `DT_RPATH` of the object that loaded it,
//!   and so on up the chain to the module Python opened; when it has a `DT_RUNPATH`, only that
//!   is searched. An object with a `DT_RUNPATH` has its `DT_RPATH` ignored
//!   (`elf/get-dynamic-info.h`). `$ORIGIN` is the directory of the object whose path list it is.
//! - **musl** (`ldso/dynlink.c`, `load_library`): `lib{c,pthread,rt,m,dl,util,xnet}.*` are
//!   served by musl itself before any search; a name already loaded is reused; then the path
//!   list of the needing object and of every object up its `needed_by` chain is searched, each
//!   object's list being its `DT_RUNPATH` when it has one, else its `DT_RPATH`.
//!
//! Both load a needing object's libraries breadth first, so a library that an extension needs
//! directly is loaded before the needs of its siblings are looked up. Absolute search paths are
//! the host's and never count as the wheel. Whatever is not found in the wheel is returned for
//! the policy to judge (a system library the policy allows, or a missing one).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use super::contents::installed_path;
use super::libc::{Libc, musl_serves_itself};
use super::native::Member;
use super::native::{BinaryFormat, ElfFacts, Kind};

/// Lookups followed per wheel and libc before giving up: far above real wheels (scipy's
/// hundred modules need a few libraries each), low enough that a hostile wheel of thousands of
/// binaries needing thousands of names each cannot make the audit spin.
const MAX_STEPS: usize = 1 << 20;

/// A library the loader does not find inside the wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Index (in the members) of the file whose `DT_NEEDED` names it.
    pub needed_by: usize,
    /// The `DT_NEEDED` name.
    pub lib: String,
    /// Index of the module whose loading reached the need (the needing file itself when it was
    /// opened directly).
    pub root: usize,
    /// Whether that root is code something runs by itself: an extension module Python imports
    /// (or any file exporting a module init function) or a program. `false` for a library no
    /// file of the wheel loads, which only code that opens it by path (ctypes, a plugin host)
    /// would load: its failed lookups are reported, not held against the wheel.
    pub from_module: bool,
    /// Where the loader looked inside the wheel, in its order: `$ORIGIN/../x.libs (RPATH of
    /// pkg/_ext.so)`. Empty when no search path of the chain points into the wheel.
    pub searched: Vec<String>,
}

/// The outcome of replaying one loader on a wheel.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Needs the loader cannot satisfy from the wheel, one per needing file and name.
    pub unresolved: Vec<Unresolved>,
    /// Per member: the needed names it found inside the wheel in some load.
    pub in_wheel: Vec<BTreeSet<String>>,
    /// The wheel has more lookups to follow than the audit takes on: the result is incomplete.
    pub gave_up: bool,
}

/// One object of a load: a file of the wheel (a member when it parsed as ELF).
struct Object {
    member: Option<usize>,
    path: String,
    /// The object whose need loaded this one (`l_loader` in glibc, `needed_by` in musl).
    loader: Option<usize>,
}

/// Replays `libc`'s loader on the wheel's ELF members. `installed` holds the install path of
/// every file of the wheel.
pub fn resolve(members: &[Member], installed: &HashSet<String>, libc: Libc) -> Resolution {
    let path_of = |m: &Member| installed_path(&m.path).unwrap_or(&m.path).to_owned();
    let by_path: HashMap<String, usize> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m.binary.format, BinaryFormat::Elf(_)))
        .map(|(i, m)| (path_of(m), i))
        .collect();
    let mut walk = Walk {
        out: Resolution {
            in_wheel: vec![BTreeSet::new(); members.len()],
            ..Resolution::default()
        },
        reached: vec![false; members.len()],
        seen: HashSet::new(),
        steps: 0,
    };
    // Extension modules and programs first: they are what Python opens or the kernel runs.
    // Every ELF file no such load reaches is then opened on its own, as `ctypes` would.
    let elf_members = || {
        members
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m.binary.format, BinaryFormat::Elf(_)))
    };
    let load = Load {
        members,
        installed,
        by_path: &by_path,
        libc,
    };
    let first: Vec<usize> = elf_members()
        .filter(|(_, m)| m.binary.kind == Kind::Program || m.binary.is_extension(&m.path))
        .map(|(i, _)| i)
        .collect();
    for root in first {
        if !load.run(root, path_of(&members[root]), &mut walk) {
            return walk.gave_up();
        }
    }
    // What no module loads is opened as `ctypes` would open it, tops of the need graph first:
    // a library another file of the wheel needs is looked up the way that file loads it, not
    // on its own (pyzmq's PyPy wheels: libzmq needs libsodium, found through the module).
    let needed_names: std::collections::HashSet<&str> = elf_members()
        .filter_map(|(_, m)| match &m.binary.format {
            BinaryFormat::Elf(e) => Some(e.needed.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect();
    let is_needed = |m: &Member| {
        let file = m.path.rsplit('/').next().unwrap_or(&m.path);
        let soname = match &m.binary.format {
            BinaryFormat::Elf(e) => e.soname.as_deref(),
            _ => None,
        };
        needed_names.contains(file) || soname.is_some_and(|s| needed_names.contains(s))
    };
    let mut rest: Vec<usize> = elf_members()
        .filter(|(i, _)| !walk.reached[*i])
        .map(|(i, _)| i)
        .collect();
    rest.sort_by_key(|&i| is_needed(&members[i]));
    for root in rest {
        if !walk.reached[root] && !load.run(root, path_of(&members[root]), &mut walk) {
            return walk.gave_up();
        }
    }
    walk.out
}

/// What the loads of one wheel have found so far.
struct Walk {
    out: Resolution,
    /// Members some load has reached.
    reached: Vec<bool>,
    /// (needing member, name) pairs already reported.
    seen: HashSet<(usize, String)>,
    /// Lookups followed, against [`MAX_STEPS`].
    steps: usize,
}

impl Walk {
    fn gave_up(mut self) -> Resolution {
        self.out.gave_up = true;
        self.out
    }
}

struct Load<'a> {
    members: &'a [Member],
    installed: &'a HashSet<String>,
    by_path: &'a HashMap<String, usize>,
    libc: Libc,
}

impl Load<'_> {
    fn elf(&self, member: usize) -> Option<&ElfFacts> {
        match &self.members.get(member)?.binary.format {
            BinaryFormat::Elf(e) => Some(e),
            _ => None,
        }
    }

    /// One `dlopen` of `root`, breadth first. Returns false when the step budget ran out.
    fn run(&self, root: usize, root_path: String, walk: &mut Walk) -> bool {
        let Walk {
            out,
            reached,
            seen,
            steps,
        } = walk;
        reached[root] = true;
        let mut objects = vec![Object {
            member: Some(root),
            path: root_path,
            loader: None,
        }];
        // Names under which something is loaded; `None` for a library from outside the wheel.
        let mut loaded: HashMap<String, Option<usize>> = HashMap::new();
        self.add_names(&mut loaded, &objects[0], 0);
        let mut queue = VecDeque::from([0usize]);
        while let Some(o) = queue.pop_front() {
            let Some(member) = objects[o].member else {
                continue;
            };
            let Some(elf) = self.elf(member) else {
                continue;
            };
            for lib in &elf.needed {
                *steps += 1;
                if *steps > MAX_STEPS {
                    return false;
                }
                if self.libc == Libc::Musl && musl_serves_itself(lib) {
                    continue;
                }
                if let Some(hit) = loaded.get(lib.as_str()) {
                    if hit.is_some() {
                        out.in_wheel[member].insert(lib.clone());
                    }
                    continue;
                }
                let (found, searched) = self.search(&objects, o, lib);
                match found {
                    Some(path) => {
                        out.in_wheel[member].insert(lib.clone());
                        // The same file under another name is the same object (both loaders
                        // compare device and inode before mapping a file again).
                        if let Some(i) = objects.iter().position(|x| x.path == path) {
                            loaded.insert(lib.clone(), Some(i));
                            continue;
                        }
                        let m = self.by_path.get(&path).copied();
                        if let Some(m) = m {
                            reached[m] = true;
                        }
                        let i = objects.len();
                        objects.push(Object {
                            member: m,
                            path,
                            loader: Some(o),
                        });
                        loaded.insert(lib.clone(), Some(i));
                        self.add_names(&mut loaded, &objects[i], i);
                        queue.push_back(i);
                    }
                    None => {
                        loaded.insert(lib.clone(), None);
                        if seen.insert((member, lib.clone())) {
                            out.unresolved.push(Unresolved {
                                needed_by: member,
                                lib: lib.clone(),
                                root,
                                from_module: self.is_module(root),
                                searched,
                            });
                        }
                    }
                }
            }
        }
        true
    }

    /// glibc also matches a loaded object by its `DT_SONAME`; musl only by the names it was
    /// asked for (and the file name it was found under).
    fn add_names(&self, loaded: &mut HashMap<String, Option<usize>>, object: &Object, i: usize) {
        let file = object.path.rsplit('/').next().unwrap_or(&object.path);
        loaded.entry(file.to_owned()).or_insert(Some(i));
        if self.libc == Libc::Glibc
            && let Some(soname) = object.member.and_then(|m| self.elf(m)?.soname.clone())
        {
            loaded.entry(soname).or_insert(Some(i));
        }
    }

    /// The directories the loader searches for a need of `objects[o]`, in order, with the
    /// install path of the first one that holds `lib`.
    fn search(&self, objects: &[Object], o: usize, lib: &str) -> (Option<String>, Vec<String>) {
        let mut searched = Vec::new();
        if lib.contains('/') {
            // A name with a slash is a path relative to the working directory: never searched.
            return (None, searched);
        }
        let chain = std::iter::successors(Some(o), |&i| objects[i].loader);
        let lists: Vec<(usize, &[String], &str)> = match self.libc {
            Libc::Glibc => {
                let needing = self.facts(&objects[o]);
                match needing {
                    Some(e) if !e.runpath.is_empty() => vec![(o, &e.runpath[..], "RUNPATH")],
                    _ => chain
                        .filter_map(|i| {
                            let e = self.facts(&objects[i])?;
                            e.runpath.is_empty().then_some((i, &e.rpath[..], "RPATH"))
                        })
                        .collect(),
                }
            }
            Libc::Musl => chain
                .filter_map(|i| {
                    let e = self.facts(&objects[i])?;
                    Some(if e.runpath.is_empty() {
                        (i, &e.rpath[..], "RPATH")
                    } else {
                        (i, &e.runpath[..], "RUNPATH")
                    })
                })
                .collect(),
        };
        for (i, entries, kind) in lists {
            let origin = dir_of(&objects[i].path);
            for entry in entries {
                let Some(rest) = entry
                    .strip_prefix("$ORIGIN")
                    .or_else(|| entry.strip_prefix("${ORIGIN}"))
                else {
                    continue;
                };
                searched.push(format!("{entry} ({kind} of {})", objects[i].path));
                if let Some(path) = normalize(&format!("{origin}/{rest}/{lib}"))
                    && self.installed.contains(&path)
                {
                    return (Some(path), searched);
                }
            }
        }
        (None, searched)
    }

    fn is_module(&self, member: usize) -> bool {
        self.members.get(member).is_some_and(|m| {
            m.binary.kind == Kind::Program
                || m.binary.is_extension(&m.path)
                || m.binary.exports.iter().any(|e| {
                    e.starts_with("PyInit_")
                        || e.starts_with("PyModExport_")
                        || e.starts_with("_cffi_pypyinit_")
                })
        })
    }

    fn facts(&self, object: &Object) -> Option<&ElfFacts> {
        self.elf(object.member?)
    }
}

/// Normalizes `a/b/../c` without ever climbing above the root (a path that would is not in
/// the wheel).
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

pub fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::native::{Binary, ElfFacts};

    fn elf(
        path: &str,
        soname: Option<&str>,
        needed: &[&str],
        rpath: &[&str],
        runpath: &[&str],
        ext: bool,
    ) -> Member {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let module = path
            .rsplit('/')
            .next()
            .and_then(|f| f.split('.').next())
            .unwrap_or("");
        Member {
            path: path.to_owned(),
            binary: Binary {
                format: BinaryFormat::Elf(ElfFacts {
                    machine: 62,
                    is_64: true,
                    little_endian: true,
                    soname: soname.map(str::to_owned),
                    needed: s(needed),
                    rpath: s(rpath),
                    runpath: s(runpath),
                    ..ElfFacts::default()
                }),
                kind: Kind::Loadable,
                imports: vec![],
                exports: if ext {
                    vec![format!("PyInit_{module}")]
                } else {
                    vec![]
                },
            },
        }
    }

    fn installed(members: &[Member]) -> HashSet<String> {
        members.iter().map(|m| m.path.clone()).collect()
    }

    fn missing(r: &Resolution, members: &[Member]) -> Vec<(String, String)> {
        r.unresolved
            .iter()
            .map(|u| (members[u.needed_by].path.clone(), u.lib.clone()))
            .collect()
    }

    /// numpy 1.24's shape: the extension's RPATH finds openblas, which finds gfortran only
    /// through the extension's RPATH (it has none of its own), which needs quadmath the same way.
    fn numpy_like(ext_rpath: &[&str], ext_runpath: &[&str]) -> Vec<Member> {
        vec![
            elf(
                "numpy/core/_multiarray.so",
                None,
                &["libopenblas.so", "libc.so.6"],
                ext_rpath,
                ext_runpath,
                true,
            ),
            elf(
                "numpy.libs/libopenblas.so",
                Some("libopenblas.so"),
                &["libgfortran.so.5", "libc.so.6"],
                &[],
                &[],
                false,
            ),
            elf(
                "numpy.libs/libgfortran.so.5",
                Some("libgfortran.so.5"),
                &["libquadmath.so.0"],
                &[],
                &[],
                false,
            ),
            elf(
                "numpy.libs/libquadmath.so.0",
                Some("libquadmath.so.0"),
                &[],
                &[],
                &[],
                false,
            ),
        ]
    }

    #[test]
    fn glibc_searches_the_rpath_of_every_loader_up_the_chain() {
        let m = numpy_like(&["$ORIGIN/../../numpy.libs"], &[]);
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        assert_eq!(
            missing(&r, &m),
            [(
                "numpy/core/_multiarray.so".to_owned(),
                "libc.so.6".to_owned()
            ),]
        );
        assert!(r.in_wheel[2].contains("libquadmath.so.0"));
        // musl walks its needed_by chain the same way.
        let r = resolve(&m, &installed(&m), Libc::Musl);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
    }

    #[test]
    fn glibc_does_not_walk_the_chain_from_an_object_with_runpath() {
        // With RUNPATH on the extension, its path list serves only its own needs.
        let m = numpy_like(&[], &["$ORIGIN/../../numpy.libs"]);
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        let got = missing(&r, &m);
        assert!(
            got.contains(&(
                "numpy.libs/libopenblas.so".to_owned(),
                "libgfortran.so.5".to_owned()
            )),
            "{got:?}"
        );
        // musl takes RUNPATH as the path list of the chain too.
        let r = resolve(&m, &installed(&m), Libc::Musl);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
    }

    #[test]
    fn a_library_loaded_earlier_in_the_same_load_is_reused() {
        // The extension needs both; breadth first, gfortran is loaded through the extension's
        // RUNPATH before openblas's needs are looked up, so openblas's need matches it.
        let mut m = numpy_like(&[], &["$ORIGIN/../../numpy.libs"]);
        if let BinaryFormat::Elf(e) = &mut m[0].binary.format {
            e.needed = vec![
                "libopenblas.so".into(),
                "libgfortran.so.5".into(),
                "libquadmath.so.0".into(),
            ];
        }
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        // Only glibc itself, which no wheel ships, is left to the policy.
        assert_eq!(
            missing(&r, &m),
            [(
                "numpy.libs/libopenblas.so".to_owned(),
                "libc.so.6".to_owned()
            )]
        );
    }

    #[test]
    fn musl_serves_its_own_names_and_nothing_else() {
        for own in [
            "libc.so",
            "libc.musl-x86_64.so.1",
            "libm.so.6",
            "libpthread.so.0",
            "libdl.so.2",
        ] {
            assert!(musl_serves_itself(own), "{own}");
        }
        for other in [
            "libgcc_s.so.1",
            "libcrypt.so.1",
            "libcx.so",
            "ld-linux-x86-64.so.2",
            "libmagic.so.1",
        ] {
            assert!(!musl_serves_itself(other), "{other}");
        }
        let m = vec![elf(
            "pkg/_ext.so",
            None,
            &["libc.so", "libgcc_s.so.1"],
            &[],
            &[],
            true,
        )];
        let r = resolve(&m, &installed(&m), Libc::Musl);
        assert_eq!(
            missing(&r, &m),
            [("pkg/_ext.so".to_owned(), "libgcc_s.so.1".to_owned())]
        );
    }

    #[test]
    fn search_paths_never_leave_the_wheel_or_use_the_host() {
        let mut m = vec![
            elf(
                "pkg/_ext.so",
                None,
                &["libz.so.1"],
                &["/usr/lib", "$ORIGIN/../../../pkg.libs"],
                &[],
                true,
            ),
            elf(
                "pkg.libs/libz.so.1",
                Some("libz.so.1"),
                &[],
                &[],
                &[],
                false,
            ),
        ];
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        assert_eq!(
            missing(&r, &m),
            [("pkg/_ext.so".to_owned(), "libz.so.1".to_owned())]
        );
        assert_eq!(
            r.unresolved[0].searched,
            ["$ORIGIN/../../../pkg.libs (RPATH of pkg/_ext.so)"]
        );
        // A library no extension reaches is opened on its own and checked too.
        m.push(elf("pkg.libs/libx.so", None, &["liby.so"], &[], &[], false));
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        assert!(missing(&r, &m).contains(&("pkg.libs/libx.so".to_owned(), "liby.so".to_owned())));
    }

    #[test]
    fn a_library_is_looked_up_the_way_the_file_that_needs_it_loads_it() {
        // pyzmq's PyPy shape: the CFFI module (no PyInit_) needs libzmq through its RUNPATH;
        // libzmq needs libsodium and has no search path of its own, and it comes first in the
        // archive. Opened on its own it would miss libsodium; loaded by the module (RPATH chain)
        // it does not.
        let mut module = elf(
            "zmq/backend/_cffi.so",
            None,
            &["libzmq.so.5"],
            &["$ORIGIN/../../pyzmq.libs"],
            &[],
            false,
        );
        module.binary.exports = vec!["_cffi_pypyinit__cffi".into()];
        let m = vec![
            elf(
                "pyzmq.libs/libzmq.so.5",
                Some("libzmq.so.5"),
                &["libsodium.so.26"],
                &[],
                &[],
                false,
            ),
            elf(
                "pyzmq.libs/libsodium.so.26",
                Some("libsodium.so.26"),
                &[],
                &[],
                &[],
                false,
            ),
            module,
        ];
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
        // A library nothing loads is still checked, as a root of its own, but not as a module.
        let plugin = vec![elf(
            "triton/plugins/libplugin.so",
            None,
            &["libtriton.so"],
            &[],
            &["$ORIGIN/../lib"],
            false,
        )];
        let r = resolve(&plugin, &installed(&plugin), Libc::Glibc);
        assert_eq!(r.unresolved.len(), 1);
        assert!(!r.unresolved[0].from_module);
    }

    #[test]
    fn a_need_cycle_ends() {
        let m = vec![
            elf("pkg/_ext.so", None, &["liba.so"], &["$ORIGIN"], &[], true),
            elf(
                "pkg/liba.so",
                Some("liba.so"),
                &["libb.so"],
                &["$ORIGIN"],
                &[],
                false,
            ),
            elf(
                "pkg/libb.so",
                Some("libb.so"),
                &["liba.so"],
                &["$ORIGIN"],
                &[],
                false,
            ),
        ];
        let r = resolve(&m, &installed(&m), Libc::Glibc);
        assert!(r.unresolved.is_empty() && !r.gave_up);
    }
}
