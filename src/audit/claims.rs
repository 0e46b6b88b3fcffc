//! The rules that compare a wheel's native code with what its tags claim: stable ABI (abi3),
//! manylinux/musllinux, macOS and Windows. Inputs are plain facts ([`Binary`]); every finding
//! names the member and the symbols or libraries at fault.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::abi3::{ImportVerdict, TargetOs, check_import};
use super::contents::installed_path;
use super::finding::{Finding, FindingCode};
use super::loader::{self, Resolution, Unresolved, dir_of, normalize};
use super::native::{Binary, BinaryFormat, ElfFacts, Kind, Member};
use super::platform::{self, Libc, PolicyLookup, VersionCheck};
use super::windows_dlls;
use crate::dist::WheelFilename;

/// What every rule may consult about the wheel as a whole.
pub struct WheelView<'a> {
    pub wheel: &'a WheelFilename,
    /// Install paths (relative to site-packages) of every file of the wheel, for resolving
    /// libraries the wheel ships itself. Never the host's file system.
    pub installed: &'a HashSet<String>,
}

pub fn check_all(view: &WheelView<'_>, members: &[Member], findings: &mut Vec<Finding>) {
    if members.is_empty() {
        return;
    }
    if view.wheel.tags.platform.iter().all(|p| p == "any") {
        // Programs are run, not loaded: pip's and setuptools' launcher `.exe` files are copied
        // into `Scripts/` and never enter the interpreter (see `native::Kind`).
        for m in members.iter().filter(|m| m.binary.kind == Kind::Loadable) {
            findings.push(Finding::new(
                FindingCode::NativeInPureWheel,
                m.path.as_str(),
                "native library in a wheel tagged for any platform",
            ));
        }
    }
    abi3(view, members, findings);
    linux(view, members, findings);
    macos(view, members, findings);
    windows(view, members, findings);
}

/// Joins a list of names for a finding, cut short so a report stays readable.
fn list(names: impl IntoIterator<Item = String>) -> String {
    const MAX: usize = 20;
    let all: Vec<String> = names.into_iter().collect();
    let mut s = all.iter().take(MAX).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > MAX {
        s.push_str(&format!(" and {} more", all.len() - MAX));
    }
    s
}

fn target_os(binary: &Binary) -> TargetOs {
    match binary.format {
        BinaryFormat::Elf(_) => TargetOs::Linux,
        BinaryFormat::MachO(_) => TargetOs::MacOs,
        BinaryFormat::Pe(_) => TargetOs::Windows,
    }
}

/// `python3.dll` is the stable ABI; `python311.dll` (or `python313t.dll`, `python312_d.dll`)
/// ties the binary to one CPython version.
fn versioned_python_dll(dll: &str) -> bool {
    let lower = dll.to_ascii_lowercase();
    // A CPython DLL whose version goes past the major: `python3` and then another digit.
    is_interpreter_dll(&lower)
        && lower.starts_with("python3")
        && lower.as_bytes().get(7).is_some_and(u8::is_ascii_digit)
}

fn is_stable_python_dll(dll: &str) -> bool {
    dll.eq_ignore_ascii_case("python3.dll")
}

/// The lowest CPython minor among the wheel's `cp3X-abi3` tags: pip installs a compressed tag
/// set (`cp37.cp38-abi3`) on its lowest version, so that is the version the binary must fit
/// (abi3audit takes the highest and misses such wheels).
fn abi3_floor(wheel: &WheelFilename, findings: &mut Vec<Finding>) -> Option<u8> {
    if !wheel.tags.abi.iter().any(|a| a == "abi3") {
        return None;
    }
    let mut floor: Option<u8> = None;
    for py in &wheel.tags.python {
        match py.strip_prefix("cp3").and_then(|m| m.parse::<u8>().ok()) {
            Some(minor) => floor = Some(floor.map_or(minor, |f| f.min(minor))),
            None => findings.push(Finding::new(
                FindingCode::Abi3BadTag,
                "",
                format!("`{py}-abi3`: the stable ABI is a CPython 3 ABI, tagged `cp3X`"),
            )),
        }
    }
    floor
}

fn abi3(view: &WheelView<'_>, members: &[Member], findings: &mut Vec<Finding>) {
    let Some(floor) = abi3_floor(view.wheel, findings) else {
        return;
    };
    for m in members {
        let os = target_os(&m.binary);
        let mut outside = BTreeSet::new();
        let mut newer = BTreeMap::new();
        let mut not_on_os = BTreeSet::new();
        let mut linked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for import in &m.binary.imports {
            if let Some(dll) = &import.library {
                if versioned_python_dll(dll) {
                    linked
                        .entry(dll.clone())
                        .or_default()
                        .insert(import.name.clone());
                    continue;
                }
                if !is_stable_python_dll(dll) {
                    continue;
                }
            }
            match check_import(&import.name, floor, os) {
                ImportVerdict::NotPython | ImportVerdict::Allowed(_) => {}
                ImportVerdict::OutsideStableAbi => {
                    outside.insert(import.name.clone());
                }
                ImportVerdict::NewerThanFloor { item, .. } => {
                    newer.insert(import.name.clone(), item.added);
                }
                ImportVerdict::NotOnTarget { .. } => {
                    not_on_os.insert(import.name.clone());
                }
            }
        }
        let path = m.path.as_str();
        if !outside.is_empty() {
            findings.push(Finding::new(
                FindingCode::Abi3OutsideStableAbi,
                path,
                format!("imports symbols outside the stable ABI: {}", list(outside)),
            ));
        }
        if !newer.is_empty() {
            let max = newer.values().copied().max().unwrap_or(floor);
            findings.push(Finding::new(
                FindingCode::Abi3NewerThanTag,
                path,
                format!(
                    "needs the stable ABI of Python 3.{max}, but the wheel is tagged cp3{floor}-abi3: {}",
                    list(newer.iter().map(|(n, v)| format!("{n} (3.{v})")))
                ),
            ));
        }
        if !not_on_os.is_empty() {
            findings.push(Finding::new(
                FindingCode::Abi3NotOnTargetOs,
                path,
                format!(
                    "imports stable-ABI symbols that do not exist on {os:?} builds of CPython: {}",
                    list(not_on_os)
                ),
            ));
        }
        for (dll, names) in linked {
            findings.push(Finding::new(
                FindingCode::Abi3PythonLinkage,
                path,
                format!(
                    "imports from {dll}, which exists only for one CPython version, instead of python3.dll: {}",
                    list(names)
                ),
            ));
        }
        let libs: Vec<&String> = match &m.binary.format {
            BinaryFormat::Elf(e) => e
                .needed
                .iter()
                .filter(|n| n.starts_with("libpython"))
                .collect(),
            BinaryFormat::MachO(slices) => slices
                .iter()
                .flat_map(|s| &s.dylibs)
                .filter(|d| {
                    d.contains("Python.framework")
                        || d.rsplit('/')
                            .next()
                            .is_some_and(|b| b.starts_with("libpython"))
                })
                .collect(),
            BinaryFormat::Pe(_) => Vec::new(),
        };
        if let Some(lib) = libs.first() {
            findings.push(Finding::new(
                FindingCode::Abi3PythonLinkage,
                path,
                format!("links {lib}, a library of one CPython version, instead of leaving Python symbols to the interpreter"),
            ));
        }
    }
}

/// The sonames glibc installs: a symbol version needed from one of these is a need for glibc.
/// A `GLIBC_*` version needed from any other file is that file's own business: aarch64's
/// libgcc_s defines a `GLIBC_2.0` version of its own, so a musllinux binary that ships and
/// links it "needs" `GLIBC_2.0` without needing glibc.
fn is_glibc_library(soname: &str) -> bool {
    const GLIBC: [&str; 16] = [
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "libnsl.so.1",
        "libcrypt.so.1",
        "libBrokenLocale.so.1",
        "libmvec.so.1",
        "libthread_db.so.1",
        "libc_malloc_debug.so.0",
        "libmemusage.so",
        "libpcprofile.so",
    ];
    GLIBC.contains(&soname)
        || soname.starts_with("libnss_")
        || platform::is_dynamic_loader(Libc::Glibc, soname)
}

/// Says where the loader looked for a library it did not find in the wheel, in words a user
/// can act on.
fn unresolved_text(u: &Unresolved, members: &[Member]) -> String {
    let mut s = u.lib.clone();
    if u.root != u.needed_by {
        s.push_str(&format!(" (when {} is loaded)", members[u.root].path));
    }
    if u.searched.is_empty() {
        s.push_str(": no RPATH or RUNPATH of the loading chain points into the wheel");
    } else {
        s.push_str(&format!(": not in {}", u.searched.join(", then ")));
    }
    s
}

/// The Linux policies the wheel's platform tags name; a tag with none is a finding.
fn linux_policies<'t>(
    view: &'t WheelView<'_>,
    findings: &mut Vec<Finding>,
) -> Vec<(platform::LinuxTag<'t>, platform::LinuxPolicy)> {
    let mut policies = Vec::new();
    for tag in &view.wheel.tags.platform {
        let Some(parsed) = platform::parse_linux_tag(tag) else {
            continue;
        };
        match platform::policy_for(&parsed) {
            PolicyLookup::Known(p) | PolicyLookup::Extrapolated(p) => policies.push((parsed, p)),
            other => findings.push(Finding::new(
                FindingCode::LinuxPolicyUnknown,
                "",
                format!("no policy for platform tag `{tag}` ({other:?}); it cannot be checked"),
            )),
        }
    }
    policies
}

fn linux(view: &WheelView<'_>, members: &[Member], findings: &mut Vec<Finding>) {
    let policies = linux_policies(view, findings);
    if policies.is_empty()
        || !members
            .iter()
            .any(|m| matches!(m.binary.format, BinaryFormat::Elf(_)))
    {
        return;
    }
    // One replay of the loader per libc the tags name: lookup does not depend on the policy.
    let mut resolutions: Vec<(Libc, Resolution)> = Vec::new();
    for (tag, _) in &policies {
        if !resolutions.iter().any(|(l, _)| *l == tag.libc) {
            let r = loader::resolve(members, view.installed, tag.libc);
            if r.gave_up {
                findings.push(Finding::new(
                    FindingCode::ManylinuxExternalLibrary,
                    "",
                    "too many libraries to follow; where the loader finds them cannot be checked",
                ));
            }
            resolutions.push((tag.libc, r));
        }
    }
    for (index, member) in members.iter().enumerate() {
        let BinaryFormat::Elf(elf) = &member.binary.format else {
            continue;
        };
        let elf_member = ElfMember {
            index,
            member,
            elf,
            members,
        };
        for (tag, policy) in &policies {
            if let Some((_, resolution)) = resolutions.iter().find(|(l, _)| *l == tag.libc) {
                elf_member.check(tag, policy, resolution, findings);
            }
        }
    }
}

const EM_CUDA: u16 = 190;
const EM_AMDGPU: u16 = 224;

/// One ELF member of a wheel, judged against each Linux policy its tags name.
struct ElfMember<'a> {
    index: usize,
    member: &'a Member,
    elf: &'a ElfFacts,
    members: &'a [Member],
}

impl ElfMember<'_> {
    fn check(
        &self,
        tag: &platform::LinuxTag<'_>,
        policy: &platform::LinuxPolicy,
        resolution: &Resolution,
        findings: &mut Vec<Finding>,
    ) {
        let (elf, path) = (self.elf, self.member.path.as_str());
        // GPU code objects (CUDA cubins, AMDGPU code objects) are ELF too, but the GPU runtime
        // loads them, never the host's loader: no Linux policy speaks for them (sglang).
        if matches!(elf.machine, EM_CUDA | EM_AMDGPU) {
            return;
        }
        let name = policy.name();
        let arch = platform::linux_arch_of(elf.machine, elf.is_64, elf.little_endian);
        if arch != Some(tag.arch) {
            findings.push(Finding::new(
                FindingCode::ElfArchMismatch,
                path,
                format!(
                    "ELF machine {} ({}) does not run on {name}",
                    elf.machine,
                    arch.unwrap_or("unknown")
                ),
            ));
            return;
        }
        if let Some(level) = elf.x86_isa_level {
            findings.push(Finding::new(
                FindingCode::ElfIsaLevel,
                path,
                format!(
                    "needs x86-64-v{level} instructions; {name} promises only baseline x86-64 CPUs"
                ),
            ));
        }
        match tag.libc {
            Libc::Musl if self.needs_glibc() => findings.push(Finding::new(
                FindingCode::MusllinuxNeedsGlibc,
                path,
                format!("needs glibc, but {name} promises musl"),
            )),
            Libc::Glibc if self.needs_musl() => findings.push(Finding::new(
                FindingCode::ManylinuxNeedsMusl,
                path,
                format!("needs musl, but {name} promises glibc"),
            )),
            _ => {}
        }
        let bundled = |lib: &str| resolution.in_wheel[self.index].contains(lib);
        self.symbol_versions(policy, &bundled, findings);
        self.libraries(policy, resolution, &bundled, findings);
    }

    /// A need only glibc can meet: a `GLIBC_*` symbol version from one of glibc's libraries, or
    /// glibc's dynamic loader. Needing `libc.so.6` by name is not one: musl's loader answers every
    /// `libc.*` (and `libm.*`, `libpthread.*`, …) name with itself (ddtrace's musllinux
    /// `libddwaf.so` needs `libc.so.6` and loads).
    fn needs_glibc(&self) -> bool {
        self.elf
            .needed
            .iter()
            .any(|n| platform::is_dynamic_loader(Libc::Glibc, n))
            || self.elf.version_needs.iter().any(|(file, v)| {
                is_glibc_library(file) && v.iter().any(|n| n.starts_with("GLIBC_"))
            })
    }

    fn needs_musl(&self) -> bool {
        self.elf
            .needed
            .iter()
            .any(|n| n.starts_with("libc.musl-") || n == "libc.so")
    }

    /// Symbol versions needed from libraries the wheel does not ship must be ones the policy's
    /// system libraries provide.
    fn symbol_versions(
        &self,
        policy: &platform::LinuxPolicy,
        bundled: &dyn Fn(&str) -> bool,
        findings: &mut Vec<Finding>,
    ) {
        let mut too_new = BTreeSet::new();
        for (file, versions) in &self.elf.version_needs {
            if platform::is_dynamic_loader(Libc::Glibc, file) || bundled(file) {
                continue;
            }
            for v in versions {
                if policy.version_allowed(v) == VersionCheck::NotAllowed {
                    too_new.insert(format!("{v} ({file})"));
                }
            }
        }
        if !too_new.is_empty() {
            findings.push(Finding::new(
                FindingCode::ManylinuxSymbolVersion,
                self.member.path.as_str(),
                format!(
                    "needs symbol versions {} does not provide: {}",
                    policy.name(),
                    list(too_new)
                ),
            ));
        }
    }

    /// Libraries the loader does not find in the wheel must be ones the policy allows, and no
    /// symbol the policy forbids may be imported from an allowed one.
    fn libraries(
        &self,
        policy: &platform::LinuxPolicy,
        resolution: &Resolution,
        bundled: &dyn Fn(&str) -> bool,
        findings: &mut Vec<Finding>,
    ) {
        let (path, name) = (self.member.path.as_str(), policy.name());
        let mut blacklisted = BTreeSet::new();
        for lib in &self.elf.needed {
            if policy.library_allowed(lib) && !bundled(lib) {
                for import in self.member.binary.imports.iter().filter(|i| !i.weak) {
                    if policy.blacklisted(lib, &import.name) {
                        blacklisted.insert(format!("{} ({lib})", import.name));
                    }
                }
            }
        }
        let (external, unloaded): (Vec<&Unresolved>, Vec<&Unresolved>) = resolution
            .unresolved
            .iter()
            .filter(|u| u.needed_by == self.index && !policy.library_allowed(&u.lib))
            .partition(|u| u.from_module);
        if !external.is_empty() {
            findings.push(Finding::new(
                FindingCode::ManylinuxExternalLibrary,
                path,
                format!(
                    "needs libraries that {name} does not allow and the loader does not find in the wheel: {}",
                    list(external.iter().map(|u| unresolved_text(u, self.members)))
                ),
            ));
        }
        if !unloaded.is_empty() {
            // Reported, not hidden: no module of the wheel loads this file, so whether these
            // are found depends on the code that opens it (triton's plugins, a library copied
            // twice), which no static reading can follow.
            let mut f = Finding::new(
                FindingCode::ManylinuxExternalLibrary,
                path,
                format!(
                    "no module of the wheel loads this file; if code opens it by path, the loader will not find what {name} does not allow: {}",
                    list(unloaded.iter().map(|u| unresolved_text(u, self.members)))
                ),
            );
            f.hides = false;
            findings.push(f);
        }
        if !blacklisted.is_empty() {
            findings.push(Finding::new(
                FindingCode::ManylinuxBlacklistedSymbol,
                path,
                format!("imports symbols {name} forbids: {}", list(blacklisted)),
            ));
        }
    }
}

const CPU_TYPE_X86: u32 = 7;
const CPU_TYPE_X86_64: u32 = 0x0100_0007;
const CPU_TYPE_ARM64: u32 = 0x0100_000c;
const CPU_TYPE_POWERPC: u32 = 18;
const CPU_TYPE_POWERPC64: u32 = 0x0100_0012;

/// The CPU types a macOS platform tag's architecture promises, as packaging's
/// `_mac_binary_formats` defines the multi-architecture names.
fn macos_arches(arch: &str) -> Option<&'static [(u32, &'static str)]> {
    const X86_64: (u32, &str) = (CPU_TYPE_X86_64, "x86_64");
    const ARM64: (u32, &str) = (CPU_TYPE_ARM64, "arm64");
    const I386: (u32, &str) = (CPU_TYPE_X86, "i386");
    const PPC: (u32, &str) = (CPU_TYPE_POWERPC, "ppc");
    const PPC64: (u32, &str) = (CPU_TYPE_POWERPC64, "ppc64");
    Some(match arch {
        "x86_64" => &[X86_64],
        "arm64" => &[ARM64],
        "universal2" => &[X86_64, ARM64],
        "intel" => &[I386, X86_64],
        "i386" => &[I386],
        "fat64" => &[X86_64, PPC64],
        "fat32" | "fat" => &[I386, PPC],
        "fat3" => &[I386, PPC, X86_64],
        "ppc" => &[PPC],
        "ppc64" => &[PPC64],
        "universal" => &[I386, PPC, X86_64, PPC64],
        _ => return None,
    })
}

fn parse_macos_tag(tag: &str) -> Option<((u16, u16), &str)> {
    let rest = tag.strip_prefix("macosx_")?;
    let mut parts = rest.splitn(3, '_');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some(((major, minor), parts.next()?))
}

/// Whether a binary's minimum macOS is above what its tag promises. From macOS 11 on, platform
/// tags carry the major version only: packaging's `mac_platforms` gives a macOS 12.3 machine
/// `macosx_12_0` (never `macosx_12_3`), and delocate compares majors alone from 11 on. So a
/// minimum of 12.3 keeps the promise of `macosx_12_0`, while before 11 the minor counts
/// (10.13 code under `macosx_10_9` does not).
fn macos_too_new(min: (u16, u16), floor: (u16, u16)) -> bool {
    if floor.0 >= 11 {
        min.0 > floor.0
    } else {
        min > floor
    }
}

fn macos(view: &WheelView<'_>, members: &[Member], findings: &mut Vec<Finding>) {
    let tags: Vec<_> = view
        .wheel
        .tags
        .platform
        .iter()
        .filter_map(|t| Some((t.as_str(), parse_macos_tag(t)?)))
        .collect();
    if tags.is_empty() {
        return;
    }
    // The file names other Mach-O files of the wheel load: a dylib none of them names, and that
    // is no module, is loaded only by code that opens it by path.
    let loaded_names: HashSet<&str> = members
        .iter()
        .filter_map(|m| match &m.binary.format {
            BinaryFormat::MachO(slices) => Some(slices.iter().flat_map(|s| &s.dylibs)),
            _ => None,
        })
        .flatten()
        .map(|d| d.rsplit('/').next().unwrap_or(d))
        .collect();
    for m in members {
        let BinaryFormat::MachO(slices) = &m.binary.format else {
            continue;
        };
        let path = m.path.as_str();
        for (tag, (version, arch)) in &tags {
            let Some(wanted) = macos_arches(arch) else {
                continue;
            };
            for (cpu, cpu_name) in wanted {
                let Some(slice) = slices.iter().find(|s| s.cputype == *cpu) else {
                    findings.push(Finding::new(
                        FindingCode::MachoArchMissing,
                        path,
                        format!("no {cpu_name} code, which `{tag}` promises"),
                    ));
                    continue;
                };
                // Apple silicon starts at macOS 11: a universal2 tag's 10.x floor only speaks
                // for the Intel slice.
                let floor = if *cpu == CPU_TYPE_ARM64 {
                    (*version).max((11, 0))
                } else {
                    *version
                };
                if let Some(min) = slice.min_macos
                    && macos_too_new(min, floor)
                {
                    findings.push(Finding::new(
                        FindingCode::MacosVersionTooNew,
                        path,
                        format!(
                            "{cpu_name} code needs macOS {}.{}, but `{tag}` promises {}.{}",
                            min.0, min.1, floor.0, floor.1
                        ),
                    ));
                }
            }
        }
        let mut external = BTreeSet::new();
        for slice in slices {
            for lib in &slice.dylibs {
                let program = m.binary.kind == Kind::Program;
                if !macos_lib_resolves(path, lib, &slice.rpaths, view.installed, program) {
                    external.insert(lib.clone());
                }
            }
        }
        if !external.is_empty() {
            let loaded = m.binary.kind == Kind::Program
                || m.binary.is_extension(path)
                || loaded_names.contains(path.rsplit('/').next().unwrap_or(path));
            let mut f = Finding::new(
                FindingCode::MacosExternalLibrary,
                path,
                if loaded {
                    format!(
                        "loads libraries that are neither part of macOS nor shipped in the wheel: {}",
                        list(external)
                    )
                } else {
                    format!(
                        "no module of the wheel loads this file; if code opens it by path, dyld will not find: {}",
                        list(external)
                    )
                },
            );
            // Reported, not hidden, for a file nothing in the wheel loads (mysql-connector
            // ships a second copy of libfido2 whose `@loader_path` points nowhere).
            f.hides = loaded;
            findings.push(f);
        }
    }
}

/// System libraries, or a path inside the wheel through `@loader_path` or `@rpath`. For a
/// program, `@executable_path` is its own folder too (semgrep's `semgrep-core`); for a library
/// Python loads it is the interpreter's, never the wheel.
fn macos_lib_resolves(
    member: &str,
    lib: &str,
    rpaths: &[String],
    installed: &HashSet<String>,
    program: bool,
) -> bool {
    if lib.starts_with("/usr/lib/") || lib.starts_with("/System/") {
        return true;
    }
    let origin = dir_of(installed_path(member).unwrap_or(member));
    let in_wheel = |p: &str| normalize(p).is_some_and(|p| installed.contains(&p));
    let own_folder = |path: &str| -> Option<String> {
        path.strip_prefix("@loader_path")
            .or_else(|| {
                program
                    .then(|| path.strip_prefix("@executable_path"))
                    .flatten()
            })
            .map(str::to_owned)
    };
    if let Some(rest) = own_folder(lib) {
        return in_wheel(&format!("{origin}/{rest}"));
    }
    if let Some(rest) = lib.strip_prefix("@rpath/") {
        return rpaths.iter().any(|r| {
            own_folder(r).is_some_and(|base| in_wheel(&format!("{origin}/{base}/{rest}")))
        });
    }
    false
}

const IMAGE_FILE_MACHINE_I386: u16 = 0x014c;
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const IMAGE_FILE_MACHINE_ARM64: u16 = 0xaa64;

fn windows(view: &WheelView<'_>, members: &[Member], findings: &mut Vec<Finding>) {
    let tags: Vec<(&str, u16)> = view
        .wheel
        .tags
        .platform
        .iter()
        .filter_map(|t| {
            let machine = match t.as_str() {
                "win32" => IMAGE_FILE_MACHINE_I386,
                "win_amd64" => IMAGE_FILE_MACHINE_AMD64,
                "win_arm64" => IMAGE_FILE_MACHINE_ARM64,
                _ => return None,
            };
            Some((t.as_str(), machine))
        })
        .collect();
    if tags.is_empty() {
        return;
    }
    let shipped: HashSet<String> = view
        .installed
        .iter()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_ascii_lowercase())
        .collect();
    for m in members {
        let BinaryFormat::Pe(pe) = &m.binary.format else {
            continue;
        };
        // Only a module Python imports must match the interpreter's machine: a DLL of another
        // architecture is one the package loads elsewhere (debugpy injects its attach DLLs
        // into other processes), so a mismatch there is reported, not hidden.
        let module = m.binary.is_extension(&m.path)
            || m.binary
                .exports
                .iter()
                .any(|e| e.starts_with("PyInit_") || e.starts_with("PyModExport_"));
        for (tag, machine) in &tags {
            if pe.machine != *machine {
                let mut f = Finding::new(
                    FindingCode::PeMachineMismatch,
                    m.path.as_str(),
                    format!(
                        "PE machine {:#06x} does not run on `{tag}` ({machine:#06x})",
                        pe.machine
                    ),
                );
                f.hides = module;
                findings.push(f);
                continue;
            }
            let (runtime, missing): (BTreeSet<String>, BTreeSet<String>) = pe
                .libraries
                .iter()
                .filter(|dll| {
                    let lower = dll.to_ascii_lowercase();
                    !shipped.contains(&lower) && !windows_provides(&lower, *machine)
                })
                .cloned()
                .partition(|dll| is_vc_redistributable(&dll.to_ascii_lowercase()));
            if !missing.is_empty() {
                findings.push(Finding::new(
                    FindingCode::WindowsExternalLibrary,
                    m.path.as_str(),
                    format!(
                        "imports DLLs that are neither part of Windows or CPython on `{tag}` nor shipped in the wheel: {}",
                        list(missing)
                    ),
                ));
            }
            if !runtime.is_empty() {
                // Reported, not hidden: the Visual C++ runtime comes with Microsoft's VC++
                // Redistributable, which most Windows machines have and some do not (pywin32,
                // pyroaring and debugpy rely on it).
                let mut f = Finding::new(
                    FindingCode::WindowsExternalLibrary,
                    m.path.as_str(),
                    format!(
                        "imports the Microsoft Visual C++ runtime, which Windows has only with the VC++ Redistributable installed: {}",
                        list(runtime)
                    ),
                );
                f.hides = false;
                findings.push(f);
            }
        }
    }
}

/// The Visual C++ runtime's DLLs beyond the `vcruntime140` CPython ships (`msvcp140.dll`,
/// `vcomp140.dll`, `concrt140.dll`, `mfc140u.dll`, …), named as delvewheel's `vc_redist`
/// pattern names them.
fn is_vc_redistributable(dll: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "vcruntime",
        "vccorlib",
        "msvcp",
        "msvcr",
        "concrt",
        "mfc",
        "vcamp",
        "vcomp",
        "ucrtbase",
    ];
    dll.ends_with(".dll") && PREFIXES.iter().any(|p| dll.starts_with(p))
}

/// `python` + digits + optional `t` + optional `_d` + `.dll`, as delvewheel matches it.
fn is_interpreter_dll(dll: &str) -> bool {
    let Some(rest) = dll
        .strip_prefix("python")
        .and_then(|r| r.strip_suffix(".dll"))
    else {
        return false;
    };
    let rest = rest.strip_suffix("_d").unwrap_or(rest);
    let rest = rest.strip_suffix('t').unwrap_or(rest);
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

/// Whether Windows or the CPython installation provides a DLL (lowercase) to a module loaded by
/// the interpreter on `machine`. The sources, as delvewheel (the Windows repair tool) lists them
/// in `_dll_list.py`: the interpreter's own DLL (`python3*.dll`, PyPy's `libpypy*-c.dll`);
/// API sets (`api-ms-win-*`, `ext-ms-*`), which the loader maps to system DLLs; the VC runtime
/// CPython ships beside `python.exe` (`vcruntime140.dll` since 3.5, `vcruntime140_1.dll` on
/// 64-bit builds since 3.8); and every DLL of `System32`/`SysWOW64` common to the Windows
/// releases CPython supports (generated table, `windows_dlls.rs`). A shipped DLL is not checked
/// for its directory: packages add their own DLL folders at import (`os.add_dll_directory`, as
/// delvewheel's patch does), which no static reading can follow.
fn windows_provides(dll: &str, machine: u16) -> bool {
    let bit = match machine {
        IMAGE_FILE_MACHINE_I386 => windows_dlls::X86,
        IMAGE_FILE_MACHINE_AMD64 => windows_dlls::AMD64,
        IMAGE_FILE_MACHINE_ARM64 => windows_dlls::ARM64,
        _ => return false,
    };
    // Any CPython's own DLL (`python3.dll`, `python3t.dll` for the free-threaded stable ABI,
    // `python27.dll`, `python313t_d.dll`), PyPy's `libpypy*-c.dll`, GraalPy's `python-native.dll`.
    let interpreter = is_interpreter_dll(dll)
        || dll == "python-native.dll"
        || (dll.starts_with("libpypy") && dll.ends_with("-c.dll"));
    let api_set = dll.starts_with("api-ms-win-") || dll.starts_with("ext-ms-");
    let vc_runtime = dll == "vcruntime140.dll"
        || (dll == "vcruntime140_1.dll" && machine != IMAGE_FILE_MACHINE_I386);
    interpreter
        || api_set
        || vc_runtime
        || windows_dlls::SYSTEM_DLLS
            .binary_search_by(|(name, _)| (*name).cmp(dll))
            .is_ok_and(|i| windows_dlls::SYSTEM_DLLS[i].1 & bit != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_provides_system_runtime_and_interpreter_dlls_only() {
        const X64: u16 = IMAGE_FILE_MACHINE_AMD64;
        for dll in [
            "kernel32.dll",
            "ucrtbase.dll",
            "api-ms-win-crt-runtime-l1-1-0.dll",
            "python3.dll",
            "python311.dll",
            "vcruntime140.dll",
            "vcruntime140_1.dll",
            "ws2_32.dll",
        ] {
            assert!(windows_provides(dll, X64), "{dll}");
        }
        for dll in [
            "python3t.dll",
            "python27.dll",
            "python313t_d.dll",
            "python-native.dll",
            "libpypy3.10-c.dll",
        ] {
            assert!(windows_provides(dll, X64), "{dll}");
        }
        assert!(!windows_provides("pythoncom311.dll", X64));
        // numba's tbbpool module needs Intel TBB, which neither Windows nor CPython ships.
        for dll in [
            "tbb12.dll",
            "msvcp140.dll",
            "libopenblas.dll",
            "vendored.dll",
        ] {
            assert!(!windows_provides(dll, X64), "{dll}");
        }
        assert!(!windows_provides(
            "vcruntime140_1.dll",
            IMAGE_FILE_MACHINE_I386
        ));
        let sorted = windows_dlls::SYSTEM_DLLS
            .windows(2)
            .all(|w| w[0].0 < w[1].0);
        assert!(sorted);
    }

    #[test]
    fn python_dlls() {
        assert!(versioned_python_dll("python311.dll"));
        assert!(versioned_python_dll("PYTHON313t.dll"));
        assert!(versioned_python_dll("python312_d.dll"));
        assert!(!versioned_python_dll("python3.dll"));
        assert!(!versioned_python_dll("pythoncom311.dll"));
        assert!(is_stable_python_dll("Python3.DLL"));
    }

    #[test]
    fn floor_is_the_lowest_tag() {
        let w = WheelFilename::parse_any("x-1-cp37.cp38-abi3-linux_x86_64.whl").unwrap();
        assert_eq!(abi3_floor(&w, &mut vec![]), Some(7));
        let w = WheelFilename::parse_any("x-1-py3-abi3-linux_x86_64.whl").unwrap();
        let mut f = vec![];
        assert_eq!(abi3_floor(&w, &mut f), None);
        assert_eq!(f[0].code, FindingCode::Abi3BadTag);
    }

    #[test]
    fn macos_minimums_compare_by_major_from_11_on() {
        assert!(!macos_too_new((12, 3), (12, 0)));
        assert!(!macos_too_new((11, 3), (11, 0)));
        assert!(macos_too_new((13, 0), (12, 0)));
        assert!(macos_too_new((10, 13), (10, 9)));
        assert!(macos_too_new((11, 0), (10, 15)));
        assert!(!macos_too_new((10, 9), (10, 9)));
    }

    #[test]
    fn macos_tags() {
        assert_eq!(
            parse_macos_tag("macosx_10_9_x86_64"),
            Some(((10, 9), "x86_64"))
        );
        assert_eq!(
            parse_macos_tag("macosx_11_0_universal2"),
            Some(((11, 0), "universal2"))
        );
        assert_eq!(parse_macos_tag("macosx_x_0_arm64"), None);
        assert_eq!(macos_arches("universal2").map(<[_]>::len), Some(2));
        assert!(macos_arches("riscv").is_none());
    }
}
