//! Facts about one native binary (ELF, Mach-O thin or fat, PE), read with goblin.
//!
//! The claim checks (`claims.rs`) never look at goblin types: everything they need is copied out here,
//! so a rule can be tested on hand-made facts and a parser change touches one file. Members are
//! recognised by their magic bytes, not their names: a `.so` renamed `.dat` is still loaded by
//! `ctypes`, and abi3audit's suffix-based search misses such files.

use goblin::elf::Elf;
use goblin::mach::{Mach, MachO, SingleArch};
use goblin::pe::PE;

/// The kind of binary a member's first bytes announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    Elf,
    MachO,
    MachOFat,
    Pe,
}

/// Sniffs a member's first bytes. `head` should hold at least the first 64 bytes when the
/// member is that long; PE needs `e_lfanew`, so a DOS stub with no PE header is not native.
pub fn sniff(head: &[u8]) -> Option<Magic> {
    let word = |i: usize| -> Option<[u8; 4]> { head.get(i..i + 4)?.try_into().ok() };
    let first = word(0)?;
    match first {
        [0x7f, b'E', b'L', b'F'] => Some(Magic::Elf),
        [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => Some(Magic::MachO),
        // 0xCAFEBABE also starts Java class files; their next word is a version (>= 45), a fat
        // header's is a small slice count.
        [0xca, 0xfe, 0xba, 0xbe | 0xbf] => {
            let count = u32::from_be_bytes(word(4)?);
            (count > 0 && count < 45).then_some(Magic::MachOFat)
        }
        [b'M', b'Z', _, _] => {
            let lfanew = u32::from_le_bytes(word(0x3c)?) as usize;
            // Only the PE signature makes a Windows binary; the stub alone is not one. Beyond
            // the sniffed head, let the parser decide.
            match head.get(lfanew..lfanew + 4) {
                Some(sig) => (sig == b"PE\0\0").then_some(Magic::Pe),
                None => (lfanew < (1 << 20)).then_some(Magic::Pe),
            }
        }
        _ => None,
    }
}

/// An imported symbol. ELF and Mach-O do not say which library provides it; PE does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    pub weak: bool,
    /// PE only: the DLL it is imported from.
    pub library: Option<String>,
    /// PE only: through the delay-load table.
    pub delayed: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfFacts {
    pub machine: u16,
    pub is_64: bool,
    pub little_endian: bool,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// Per needed file, the symbol versions required from it (`GLIBC_2.17`, …).
    pub version_needs: Vec<(String, Vec<String>)>,
    /// x86-64 micro-architecture level the code needs (2, 3 or 4), from the GNU property note;
    /// a plain `x86_64` tag promises only the baseline.
    pub x86_isa_level: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachOSlice {
    pub cputype: u32,
    pub cpusubtype: u32,
    /// `MH_EXECUTE`, `MH_DYLIB`, `MH_BUNDLE`, …
    pub filetype: u32,
    /// Minimum macOS version as (major, minor), from LC_BUILD_VERSION or LC_VERSION_MIN_MACOSX.
    pub min_macos: Option<(u16, u16)>,
    pub dylibs: Vec<String>,
    pub rpaths: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeFacts {
    pub machine: u16,
    pub libraries: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinaryFormat {
    Elf(ElfFacts),
    MachO(Vec<MachOSlice>),
    Pe(PeFacts),
}

/// Whether a binary is code a process loads (what Python imports, or a library that code links)
/// or a program of its own. The difference matters because installers treat them differently:
/// a Windows launcher `.exe` in a pure wheel (pip, setuptools, distlib ship them) is copied into
/// `Scripts/` and run as a separate process; it never enters the interpreter that installed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ELF `ET_DYN` without a program interpreter, Mach-O `MH_DYLIB`/`MH_BUNDLE`, PE with
    /// `IMAGE_FILE_DLL`.
    Loadable,
    /// ELF `ET_EXEC` (or a PIE: `ET_DYN` with `PT_INTERP`), Mach-O `MH_EXECUTE`, PE without
    /// `IMAGE_FILE_DLL`.
    Program,
}

/// A native member of the wheel with its parsed facts.
pub struct Member {
    pub path: String,
    pub binary: Binary,
}

/// What the rules need to know about one native member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    pub format: BinaryFormat,
    pub kind: Kind,
    /// Undefined symbols, without Mach-O's leading `_`. For a fat Mach-O, the union of slices.
    pub imports: Vec<Import>,
    /// Symbols the binary defines and exports.
    pub exports: Vec<String>,
}

impl Binary {
    /// Whether this binary is a CPython extension module (it exports the init function for its
    /// own module name), rather than a library it links.
    pub fn is_extension(&self, member_path: &str) -> bool {
        let file = member_path.rsplit('/').next().unwrap_or(member_path);
        let module = file.split('.').next().unwrap_or(file);
        // CPython 3's init function, PEP 793's export hook, CFFI's entry point on PyPy, or
        // Python 2's `init<module>` (old wheels are still installed and audited).
        self.exports.iter().any(|e| {
            e.strip_prefix("PyInit_")
                .or_else(|| e.strip_prefix("PyModExport_"))
                .or_else(|| e.strip_prefix("_cffi_pypyinit_"))
                .or_else(|| e.strip_prefix("init"))
                .is_some_and(|m| m == module)
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl From<goblin::error::Error> for ParseError {
    fn from(e: goblin::error::Error) -> Self {
        Self(e.to_string())
    }
}

/// Most slices a fat Mach-O may have: real ones have two or three.
const MAX_FAT_SLICES: usize = 16;

pub fn parse(magic: Magic, bytes: &[u8]) -> Result<Binary, ParseError> {
    match magic {
        Magic::Elf => parse_elf(bytes),
        Magic::MachO | Magic::MachOFat => parse_mach(bytes),
        Magic::Pe => parse_pe(bytes),
    }
}

const SHN_UNDEF: usize = 0;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;
const STB_GNU_UNIQUE: u8 = 10;
const STV_DEFAULT: u8 = 0;
const STV_PROTECTED: u8 = 3;

const SHT_DYNAMIC: u32 = 6;
const SHT_NOTE: u32 = 7;
const SHT_DYNSYM: u32 = 11;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
/// Most `.dynamic` entries read: real binaries have a few dozen.
const MAX_DYNAMIC_ENTRIES: usize = 1 << 16;

/// Reads only what the rules need (dynamic symbols, `.dynamic`, version needs, the property
/// note) through the section headers. goblin's `Elf::parse` also builds an index of every
/// string in the static symbol table, which for a large unstripped library costs tens of MB
/// and most of the time; binaries without section headers fall back to it.
fn parse_elf(bytes: &[u8]) -> Result<Binary, ParseError> {
    use goblin::container::{Container, Ctx};
    use goblin::elf::section_header::SectionHeader;
    use goblin::elf::sym::Symtab;

    let header = Elf::parse_header(bytes)?;
    let is_64 = header.container()? == Container::Big;
    let endian = header.endianness()?;
    let little_endian = endian == goblin::container::Endian::Little;
    let ctx = Ctx::new(header.container()?, endian);
    let kind = elf_kind(header.e_type, || has_interpreter(bytes, &header, ctx));
    let shdrs = SectionHeader::parse(
        bytes,
        header.e_shoff as usize,
        usize::from(header.e_shnum),
        ctx,
    )?;
    let dynsym = shdrs.iter().find(|s| s.sh_type == SHT_DYNSYM);
    let dynamic = shdrs.iter().find(|s| s.sh_type == SHT_DYNAMIC);
    if shdrs.is_empty() || (dynsym.is_none() && dynamic.is_none()) {
        return parse_elf_full(bytes);
    }
    let section = |s: &SectionHeader| -> Result<&[u8], ParseError> {
        let start =
            usize::try_from(s.sh_offset).map_err(|_| ParseError("section offset".into()))?;
        let len = usize::try_from(s.sh_size).map_err(|_| ParseError("section size".into()))?;
        start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| ParseError("section lies outside the file".into()))
    };
    let linked = |s: &SectionHeader| -> Result<&[u8], ParseError> {
        let link = shdrs
            .get(s.sh_link as usize)
            .ok_or_else(|| ParseError("section links to a missing string table".into()))?;
        section(link)
    };
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    if let Some(sh) = dynsym {
        let strtab = linked(sh)?;
        let entsize = if is_64 { 24 } else { 16 };
        let count = usize::try_from(sh.sh_size).unwrap_or(0) / entsize;
        let syms = Symtab::parse(bytes, sh.sh_offset as usize, count, ctx)?;
        for sym in syms.iter() {
            if let Some(name) = c_str(strtab, sym.st_name) {
                classify_symbol(&sym, &name, &mut imports, &mut exports);
            }
        }
    }
    let dynamic_entries = match dynamic {
        Some(sh) => read_dynamic(section(sh)?, linked(sh)?, is_64, little_endian),
        None => DynamicEntries::default(),
    };
    let DynamicEntries {
        needed,
        soname,
        rpath,
        runpath,
    } = dynamic_entries;
    let split_paths = |v: Vec<String>| {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut version_needs = Vec::new();
    if let Some(verneed) = goblin::elf::symver::VerneedSection::parse(bytes, &shdrs, ctx)? {
        let strtab = shdrs
            .iter()
            .find(|s| s.sh_type == goblin::elf::section_header::SHT_GNU_VERNEED)
            .map(linked)
            .transpose()?
            .unwrap_or_default();
        for need in verneed.iter() {
            let file = c_str(strtab, need.vn_file).unwrap_or_default().into_owned();
            let names = need
                .iter()
                .filter_map(|aux| c_str(strtab, aux.vna_name))
                .map(|s| s.into_owned())
                .collect();
            version_needs.push((file, names));
        }
    }
    let mut x86_isa_level = None;
    if header.e_machine == EM_X86_64 {
        for sh in shdrs.iter().filter(|s| s.sh_type == SHT_NOTE) {
            let align = if sh.sh_addralign >= 8 { 8 } else { 4 };
            if let Some(level) = section(sh)
                .ok()
                .and_then(|d| isa_from_notes(d, align, little_endian))
            {
                x86_isa_level = Some(x86_isa_level.map_or(level, |l: u8| l.max(level)));
            }
        }
    }
    let facts = ElfFacts {
        machine: header.e_machine,
        is_64,
        little_endian,
        soname,
        needed,
        rpath: split_paths(rpath),
        runpath: split_paths(runpath),
        version_needs,
        x86_isa_level,
    };
    Ok(Binary {
        format: BinaryFormat::Elf(facts),
        kind,
        imports,
        exports,
    })
}

const ET_DYN: u16 = 3;

/// Whether the program headers name a `PT_INTERP` (unreadable headers: no).
fn has_interpreter(
    bytes: &[u8],
    header: &goblin::elf::Header,
    ctx: goblin::container::Ctx,
) -> bool {
    goblin::elf::ProgramHeader::parse(
        bytes,
        usize::try_from(header.e_phoff).unwrap_or(usize::MAX),
        usize::from(header.e_phnum),
        ctx,
    )
    .is_ok_and(|phdrs| {
        phdrs
            .iter()
            .any(|p| p.p_type == goblin::elf::program_header::PT_INTERP)
    })
}

/// A shared object is loadable unless it names a program interpreter: a position-independent
/// executable is `ET_DYN` too, and only programs ask the kernel for `PT_INTERP`. The check is
/// a closure because the section-header path does not read program headers otherwise.
fn elf_kind(e_type: u16, has_interpreter: impl FnOnce() -> bool) -> Kind {
    if e_type == ET_DYN && !has_interpreter() {
        Kind::Loadable
    } else {
        Kind::Program
    }
}

/// The `.dynamic` entries the rules read, strings looked up in its linked string table.
#[derive(Default)]
struct DynamicEntries {
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

fn read_dynamic(data: &[u8], strtab: &[u8], is_64: bool, little_endian: bool) -> DynamicEntries {
    let mut out = DynamicEntries::default();
    let word = if is_64 { 8 } else { 4 };
    let read = |off: usize| -> Option<u64> {
        let b = data.get(off..off + word)?;
        Some(match (is_64, little_endian) {
            (true, true) => u64::from_le_bytes(b.try_into().ok()?),
            (true, false) => u64::from_be_bytes(b.try_into().ok()?),
            (false, true) => u64::from(u32::from_le_bytes(b.try_into().ok()?)),
            (false, false) => u64::from(u32::from_be_bytes(b.try_into().ok()?)),
        })
    };
    for i in 0..MAX_DYNAMIC_ENTRIES {
        let (Some(tag), Some(val)) = (read(i * 2 * word), read(i * 2 * word + word)) else {
            break;
        };
        if tag == DT_NULL {
            break;
        }
        let text = || {
            usize::try_from(val)
                .ok()
                .and_then(|v| c_str(strtab, v))
                .map(|s| s.into_owned())
        };
        match tag {
            DT_NEEDED => out.needed.extend(text()),
            DT_SONAME => out.soname = text(),
            DT_RPATH => out.rpath.extend(text()),
            DT_RUNPATH => out.runpath.extend(text()),
            _ => {}
        }
    }
    out
}

/// Sorts one dynamic symbol: an undefined global or weak one is an import; a defined one that
/// other objects can see is an export; local and hidden ones are neither.
fn classify_symbol(
    sym: &goblin::elf::sym::Sym,
    name: &str,
    imports: &mut Vec<Import>,
    exports: &mut Vec<String>,
) {
    if name.is_empty() {
        return;
    }
    let bind = sym.st_bind();
    if sym.st_shndx == SHN_UNDEF {
        if bind == STB_GLOBAL || bind == STB_WEAK {
            imports.push(Import {
                name: name.to_owned(),
                weak: bind == STB_WEAK,
                library: None,
                delayed: false,
            });
        }
    } else if matches!(bind, STB_GLOBAL | STB_WEAK | STB_GNU_UNIQUE)
        && matches!(sym.st_visibility(), STV_DEFAULT | STV_PROTECTED)
    {
        exports.push(name.to_owned());
    }
}

/// The NUL-terminated string at `offset` of a string table (lossy: names are bytes).
fn c_str(table: &[u8], offset: usize) -> Option<std::borrow::Cow<'_, str>> {
    let tail = table.get(offset..)?;
    let end = tail.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(tail.get(..end)?))
}

/// The x86-64 level needed by the GNU property notes in one note section.
fn isa_from_notes(mut data: &[u8], align: usize, little_endian: bool) -> Option<u8> {
    let u32_at = |d: &[u8], i: usize| read_u32(d, i, little_endian);
    let pad = |n: usize, a: usize| n.div_ceil(a) * a;
    let mut level = None;
    while data.len() >= 12 {
        let namesz = u32_at(data, 0)? as usize;
        let descsz = u32_at(data, 4)? as usize;
        let kind = u32_at(data, 8)?;
        let name_end = 12usize.checked_add(namesz)?;
        let desc_start = pad(name_end, align);
        let desc = data.get(desc_start..desc_start.checked_add(descsz)?)?;
        if kind == NT_GNU_PROPERTY_TYPE_0
            && data.get(12..name_end) == Some(b"GNU\0")
            && let Some(found) = isa_from_properties(desc, align, little_endian)
        {
            level = Some(level.map_or(found, |l: u8| l.max(found)));
        }
        data = data
            .get(pad(desc_start + descsz, align)..)
            .unwrap_or_default();
    }
    level
}

/// A 32-bit word of an ELF note at `i`, in the file's byte order.
fn read_u32(d: &[u8], i: usize, little_endian: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(i..i.checked_add(4)?)?.try_into().ok()?;
    Some(if little_endian {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// The level in one GNU property note's descriptor: bits 2, 4 and 8 of
/// `GNU_PROPERTY_X86_ISA_1_NEEDED` are x86-64-v2, v3 and v4 (as auditwheel reads them). `None`
/// for baseline code or no property.
fn isa_from_properties(mut props: &[u8], align: usize, little_endian: bool) -> Option<u8> {
    let u32_at = |d: &[u8], i: usize| read_u32(d, i, little_endian);
    let mut level = None;
    while props.len() >= 8 {
        let (pr_type, size) = (u32_at(props, 0)?, u32_at(props, 4)? as usize);
        if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED && size >= 4 {
            let bits = u32_at(props, 8)?;
            let found = [(8, 4), (4, 3), (2, 2)]
                .iter()
                .find(|(bit, _)| bits & bit != 0)
                .map(|(_, l)| *l);
            if let Some(found) = found {
                level = Some(level.map_or(found, |l: u8| l.max(found)));
            }
        }
        props = props
            .get(8 + size.div_ceil(align) * align..)
            .unwrap_or_default();
    }
    level
}

/// goblin's full parse, for binaries that carry no section headers.
fn parse_elf_full(bytes: &[u8]) -> Result<Binary, ParseError> {
    let elf = Elf::parse(bytes)?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for sym in elf.dynsyms.iter() {
        if let Some(name) = elf.dynstrtab.get_at(sym.st_name) {
            classify_symbol(&sym, name, &mut imports, &mut exports);
        }
    }
    let mut version_needs = Vec::new();
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            let file = elf.dynstrtab.get_at(need.vn_file).unwrap_or("").to_owned();
            let names = need
                .iter()
                .filter_map(|aux| elf.dynstrtab.get_at(aux.vna_name))
                .map(str::to_owned)
                .collect();
            version_needs.push((file, names));
        }
    }
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let split_paths = |v: &[&str]| {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let x86_isa_level = x86_isa_needed(&elf, bytes);
    let kind = elf_kind(elf.header.e_type, || elf.interpreter.is_some());
    let facts = ElfFacts {
        machine: elf.header.e_machine,
        is_64: elf.is_64,
        little_endian: elf.little_endian,
        soname: elf.soname.map(str::to_owned),
        needed: strings(&elf.libraries),
        rpath: split_paths(&elf.rpaths),
        runpath: split_paths(&elf.runpaths),
        version_needs,
        x86_isa_level,
    };
    Ok(Binary {
        format: BinaryFormat::Elf(facts),
        kind,
        imports,
        exports,
    })
}

const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;
const EM_X86_64: u16 = 62;

/// The highest x86-64 level (v2, v3, v4) named in `GNU_PROPERTY_X86_ISA_1_NEEDED`, read from
/// the program headers' notes (the path for binaries without section headers).
fn x86_isa_needed(elf: &Elf<'_>, bytes: &[u8]) -> Option<u8> {
    if elf.header.e_machine != EM_X86_64 {
        return None;
    }
    let align = if elf.is_64 { 8 } else { 4 };
    elf.iter_note_headers(bytes)?
        .flatten()
        .filter(|n| n.n_type == NT_GNU_PROPERTY_TYPE_0 && n.name == "GNU")
        .filter_map(|n| isa_from_properties(n.desc, align, elf.little_endian))
        .max()
}

const N_STAB: u8 = 0xe0;
const N_TYPE: u8 = 0x0e;
const N_EXT: u8 = 0x01;
const N_UNDF: u8 = 0x00;
const N_SECT: u8 = 0x0e;
const LC_BUILD_VERSION: u32 = 0x32;
const PLATFORM_MACOS: u32 = 1;

const MH_EXECUTE: u32 = 2;

fn parse_mach(bytes: &[u8]) -> Result<Binary, ParseError> {
    let mut slices = Vec::new();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    match Mach::parse(bytes)? {
        Mach::Binary(macho) => {
            slices.push(mach_slice(&macho, &mut imports, &mut exports)?);
        }
        Mach::Fat(fat) => {
            if fat.narches > MAX_FAT_SLICES {
                return Err(ParseError(format!(
                    "fat binary claims {} slices",
                    fat.narches
                )));
            }
            for i in 0..fat.narches {
                match fat.get(i)? {
                    SingleArch::MachO(macho) => {
                        slices.push(mach_slice(&macho, &mut imports, &mut exports)?);
                    }
                    SingleArch::Archive(_) => {
                        return Err(ParseError("fat slice is a static archive".into()));
                    }
                }
            }
        }
    }
    imports.sort_by(|a: &Import, b| a.name.cmp(&b.name));
    imports.dedup_by(|a, b| a.name == b.name);
    exports.sort();
    exports.dedup();
    let kind = if !slices.is_empty() && slices.iter().all(|s| s.filetype == MH_EXECUTE) {
        Kind::Program
    } else {
        Kind::Loadable
    };
    Ok(Binary {
        format: BinaryFormat::MachO(slices),
        kind,
        imports,
        exports,
    })
}

fn mach_slice(
    macho: &MachO<'_>,
    imports: &mut Vec<Import>,
    exports: &mut Vec<String>,
) -> Result<MachOSlice, ParseError> {
    use goblin::mach::load_command::CommandVariant;
    let mut min_macos = None;
    for lc in &macho.load_commands {
        match &lc.command {
            CommandVariant::BuildVersion(b)
                if b.cmd == LC_BUILD_VERSION && b.platform == PLATFORM_MACOS =>
            {
                min_macos = Some(nibble_version(b.minos));
            }
            CommandVariant::VersionMinMacosx(v) => {
                min_macos.get_or_insert(nibble_version(v.version));
            }
            _ => {}
        }
    }
    for sym in macho.symbols() {
        let (name, nlist) = sym?;
        if nlist.n_type & N_STAB != 0 || nlist.n_type & N_EXT == 0 {
            continue;
        }
        let name = name.strip_prefix('_').unwrap_or(name);
        if name.is_empty() {
            continue;
        }
        match nlist.n_type & N_TYPE {
            N_UNDF => imports.push(Import {
                name: name.to_owned(),
                // N_WEAK_REF in n_desc.
                weak: nlist.n_desc & 0x0040 != 0,
                library: None,
                delayed: false,
            }),
            N_SECT => exports.push(name.to_owned()),
            _ => {}
        }
    }
    Ok(MachOSlice {
        cputype: macho.header.cputype,
        cpusubtype: macho.header.cpusubtype,
        filetype: macho.header.filetype,
        min_macos,
        // The first entry is the binary's own id ("self"), not a dependency.
        dylibs: macho.libs.iter().skip(1).map(|s| (*s).to_owned()).collect(),
        rpaths: macho.rpaths.iter().map(|s| (*s).to_owned()).collect(),
    })
}

/// Mach-O versions are `xxxx.yy.zz` packed in nibbles.
fn nibble_version(v: u32) -> (u16, u16) {
    ((v >> 16) as u16, ((v >> 8) & 0xff) as u16)
}

const IMAGE_FILE_DLL: u16 = 0x2000;

fn parse_pe(bytes: &[u8]) -> Result<Binary, ParseError> {
    let pe = PE::parse(bytes)?;
    let mut imports: Vec<Import> = pe
        .imports
        .iter()
        .map(|i| Import {
            name: if i.name.is_empty() {
                format!("#{}", i.ordinal)
            } else {
                i.name.to_string()
            },
            weak: false,
            library: Some(i.dll.to_owned()),
            delayed: false,
        })
        .collect();
    let mut libraries: Vec<String> = pe.libraries.iter().map(|s| (*s).to_owned()).collect();
    delay_imports(&pe, bytes, &mut imports, &mut libraries)?;
    let exports = pe
        .exports
        .iter()
        .filter_map(|e| e.name.map(str::to_owned))
        .collect();
    let kind = if pe.header.coff_header.characteristics & IMAGE_FILE_DLL != 0 {
        Kind::Loadable
    } else {
        Kind::Program
    };
    Ok(Binary {
        kind,
        format: BinaryFormat::Pe(PeFacts {
            machine: pe.header.coff_header.machine,
            libraries,
        }),
        imports,
        exports,
    })
}

/// Most delay-load descriptors and names per descriptor read: far above real binaries, low
/// enough that a hostile table cannot make the audit spin.
const MAX_DELAY_DESCRIPTORS: usize = 1024;
const MAX_DELAY_NAMES: usize = 65_536;

/// goblin does not read the delay-load import table (PE data directory 13), and abi3audit does
/// not either; a DLL imported only there is loaded just the same, on first call.
fn delay_imports(
    pe: &PE<'_>,
    bytes: &[u8],
    imports: &mut Vec<Import>,
    libraries: &mut Vec<String>,
) -> Result<(), ParseError> {
    let Some(optional) = pe.header.optional_header else {
        return Ok(());
    };
    let Some(dir) = optional.data_directories.get_delay_import_descriptor() else {
        return Ok(());
    };
    if dir.virtual_address == 0 {
        return Ok(());
    }
    let file_alignment = optional.windows_fields.file_alignment;
    let opts = goblin::pe::options::ParseOptions::default();
    let image_base = pe.image_base;
    let offset_of = |addr: u32, rva_based: bool| -> Option<usize> {
        let rva = if rva_based {
            u64::from(addr)
        } else {
            u64::from(addr).checked_sub(image_base)?
        };
        goblin::pe::utils::find_offset(
            usize::try_from(rva).ok()?,
            &pe.sections,
            file_alignment,
            &opts,
        )
    };
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            bytes.get(off..off + 4)?.try_into().ok()?,
        ))
    };
    let u64_at = |off: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(off..off + 8)?.try_into().ok()?,
        ))
    };
    let c_str = |off: usize| -> Option<String> {
        let tail = bytes.get(off..)?;
        let end = tail.iter().take(4096).position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(tail.get(..end)?).into_owned())
    };
    let malformed = || ParseError("delay-load import table points outside the file".into());
    let mut desc = offset_of(dir.virtual_address, true).ok_or_else(malformed)?;
    for _ in 0..MAX_DELAY_DESCRIPTORS {
        let attributes = u32_at(desc).ok_or_else(malformed)?;
        let name_addr = u32_at(desc + 4).ok_or_else(malformed)?;
        let int_addr = u32_at(desc + 16).ok_or_else(malformed)?;
        if name_addr == 0 && int_addr == 0 {
            return Ok(());
        }
        // Attribute bit 0 marks RVAs; without it (old linkers) the fields are addresses.
        let rva_based = attributes & 1 != 0;
        let dll = offset_of(name_addr, rva_based)
            .and_then(c_str)
            .ok_or_else(malformed)?;
        let mut thunk = offset_of(int_addr, rva_based).ok_or_else(malformed)?;
        for _ in 0..MAX_DELAY_NAMES {
            let (value, ordinal_flag, step) = if pe.is_64 {
                let v = u64_at(thunk).ok_or_else(malformed)?;
                (v, v & (1 << 63) != 0, 8)
            } else {
                let v = u32_at(thunk).ok_or_else(malformed)?;
                (u64::from(v), v & (1 << 31) != 0, 4)
            };
            if value == 0 {
                break;
            }
            let name = if ordinal_flag {
                format!("#{}", value & 0xffff)
            } else {
                let hint_name = offset_of(value as u32, rva_based).ok_or_else(malformed)?;
                c_str(hint_name + 2).ok_or_else(malformed)?
            };
            imports.push(Import {
                name,
                weak: false,
                library: Some(dll.clone()),
                delayed: true,
            });
            thunk += step;
        }
        if !libraries.iter().any(|l| l.eq_ignore_ascii_case(&dll)) {
            libraries.push(dll);
        }
        desc += 32;
    }
    Err(ParseError("too many delay-load descriptors".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic() {
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), Some(Magic::Elf));
        assert_eq!(
            sniff(&[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1]),
            Some(Magic::MachO)
        );
        assert_eq!(
            sniff(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]),
            Some(Magic::MachOFat)
        );
        // A Java class file (major version 52) is not a fat binary.
        assert_eq!(sniff(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), None);
        let mut pe = vec![0u8; 0x90];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c] = 0x80;
        pe[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert_eq!(sniff(&pe), Some(Magic::Pe));
        pe[0x80] = b'X';
        assert_eq!(sniff(&pe), None);
        assert_eq!(sniff(b"MZ"), None);
        assert_eq!(sniff(b"import os"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn garbage_after_magic_is_an_error_not_a_panic() {
        for head in [
            &b"\x7fELF\x02\x01\x01\x00garbage"[..],
            &[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3][..],
            &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2, 1, 2][..],
        ] {
            let magic = sniff(head).unwrap();
            assert!(parse(magic, head).is_err());
        }
    }

    #[test]
    fn extension_by_init_symbol() {
        let b = Binary {
            format: BinaryFormat::Pe(PeFacts::default()),
            kind: Kind::Loadable,
            imports: vec![],
            exports: vec!["PyInit__rust".into()],
        };
        assert!(b.is_extension("pkg/_rust.abi3.so"));
        assert!(b.is_extension("_rust.pyd"));
        assert!(!b.is_extension("pkg/other.abi3.so"));
    }
}
