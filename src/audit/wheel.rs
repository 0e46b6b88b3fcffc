//! One wheel, audited in one pass over its members: each member is inflated once, hashed for
//! RECORD while it streams, and kept only when it is a native binary (parsed, then dropped) or a
//! small file whose content a rule reads. Memory stays bounded by the largest native member held
//! in memory (spilled to a mapped temporary file above a threshold), not by the wheel.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::archive::{Archive, ArchiveLimits, Entry};
use super::claims::{self, WheelView};
use super::contents::{self, HashAlgo, RecordRow, StartupFile};
use super::finding::{Finding, FindingCode, LicenseFacts, Report};
use super::native::Member;
use super::native::{self, Magic};
use crate::dist::WheelFilename;

/// Most findings of one code kept in a report; the rest are counted in one more finding, so a
/// wheel with 50,000 unlisted files gives a readable report.
const MAX_FINDINGS_PER_CODE: usize = 25;

/// Members up to this size are read and inflated in one piece (see `Archive::read_whole`)
/// while the budget below allows; larger ones stream.
const ONE_SHOT_MAX: u64 = 32 << 20;

/// What all threads together may hold for one-piece reads: keeps a wheel's audit under 64 MB
/// however its members are sized.
const ONE_SHOT_BUDGET: u64 = 44 << 20;

/// Bytes of each member sniffed before deciding what it is.
const HEAD_LEN: usize = 4096;

/// Largest `.pth` or startup hook read for its content; only its first lines matter.
const MAX_STARTUP_READ: usize = 1 << 20;

/// Audits the wheel at `path`, named `filename` (the name it is published under, which may
/// differ from the path's). `sha256` is the digest already computed by the caller, if any.
pub fn audit_file(
    path: &Path,
    filename: &str,
    sha256: Option<&str>,
    limits: &ArchiveLimits,
) -> io::Result<Report> {
    let size = std::fs::metadata(path)?.len();
    let mut findings = Vec::new();
    let mut license = LicenseFacts::default();
    // The digest of the whole file, when the caller has none, is taken on another thread while
    // the members are read: both are bound by the same bytes, not by each other.
    let (sha256, audited) = std::thread::scope(|scope| {
        let digest = sha256.is_none().then(|| scope.spawn(|| hash_file(path)));
        let audited = match WheelFilename::parse_any(filename) {
            Ok(wheel) => audit_archive(path, &wheel, limits, &mut findings, &mut license),
            Err(e) => {
                findings.push(Finding::new(
                    FindingCode::WheelFileInvalid,
                    "",
                    format!("`{filename}` is not a valid wheel filename: {e}"),
                ));
                Ok(())
            }
        };
        let sha256 = match (sha256, digest) {
            (Some(s), _) => Ok(s.to_owned()),
            (None, Some(h)) => h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("hashing the wheel panicked"))),
            (None, None) => Err(io::Error::other("no digest")),
        };
        (sha256, audited)
    });
    audited?;
    let sha256 = sha256?;
    Ok(
        Report::new(filename.to_owned(), sha256, size, cap_findings(findings))
            .with_license(license),
    )
}

pub fn hash_file(path: &Path) -> io::Result<String> {
    hash_reader(&mut File::open(path)?)
}

/// The sha256 (lowercase hex) of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn cap_findings(findings: Vec<Finding>) -> Vec<Finding> {
    let mut counts: HashMap<FindingCode, usize> = HashMap::new();
    let mut out = Vec::with_capacity(findings.len().min(1024));
    for f in findings {
        let n = counts.entry(f.code).or_default();
        *n += 1;
        if *n <= MAX_FINDINGS_PER_CODE {
            out.push(f);
        }
    }
    for (code, n) in counts {
        if n > MAX_FINDINGS_PER_CODE {
            out.push(Finding::new(
                code,
                "",
                format!("and {} more findings like these", n - MAX_FINDINGS_PER_CODE),
            ));
        }
    }
    out
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algo: HashAlgo) -> Self {
        match algo {
            HashAlgo::Sha256 => Self::Sha256(Sha256::new()),
            HashAlgo::Sha384 => Self::Sha384(Sha384::new()),
            HashAlgo::Sha512 => Self::Sha512(Sha512::new()),
        }
    }
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// Where a native member's bytes go while it streams: memory, or a temporary file when the
/// member is too large to hold.
enum Keep {
    Memory(Vec<u8>),
    Spill(File),
}

impl Keep {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Self::Spill(f) => f.write_all(data),
        }
    }
}

/// What to do with a member once its head is known.
enum Role {
    Undecided,
    Plain,
    Native(Magic, Keep),
    Startup(StartupFile, Vec<u8>),
}

fn audit_archive(
    path: &Path,
    wheel: &WheelFilename,
    limits: &ArchiveLimits,
    findings: &mut Vec<Finding>,
    license: &mut LicenseFacts,
) -> io::Result<()> {
    let Some(mut archive) = Archive::open(path, limits, findings)? else {
        return Ok(());
    };
    let entries: Vec<Entry> = archive.entries().to_vec();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let dist_info = contents::find_dist_info(&names, wheel, findings);

    let mut root_is_purelib = false;
    let mut record: Option<HashMap<String, RecordRow>> = None;
    if let Some(dist_info) = &dist_info {
        let find = |file: &str| {
            let wanted = format!("{dist_info}/{file}");
            entries.iter().find(|e| e.name == wanted)
        };
        match find("WHEEL") {
            None => findings.push(Finding::new(
                FindingCode::WheelFileInvalid,
                format!("{dist_info}/WHEEL"),
                "missing",
            )),
            Some(e) => match archive.read_small(e, limits.max_metadata_size) {
                Ok(bytes) => {
                    root_is_purelib = contents::check_wheel_file(&e.name, &bytes, wheel, findings)
                        .root_is_purelib;
                }
                Err(f) => findings.push(f),
            },
        }
        match find("METADATA") {
            None => findings.push(Finding::new(
                FindingCode::MetadataInvalid,
                format!("{dist_info}/METADATA"),
                "missing",
            )),
            Some(e) => match archive.read_small(e, limits.max_metadata_size) {
                Ok(bytes) => {
                    contents::check_metadata(&e.name, &bytes, wheel, findings);
                    *license = contents::license_facts(&bytes);
                }
                Err(f) => findings.push(f),
            },
        }
        match find("RECORD") {
            None => findings.push(Finding::new(
                FindingCode::RecordMissing,
                format!("{dist_info}/RECORD"),
                "missing: nothing binds the wheel's files to what was built",
            )),
            Some(e) => match archive.read_small(e, limits.max_metadata_size) {
                Ok(bytes) => record = Some(contents::parse_record(&e.name, &bytes, findings)),
                Err(f) => findings.push(f),
            },
        }
    }

    let installed: HashSet<String> = entries
        .iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| contents::installed_path(&e.name).map(str::to_owned))
        .collect();
    let mut listed: HashSet<&str> = HashSet::new();
    let exempt = |name: &str| {
        dist_info
            .as_deref()
            .is_some_and(|d| contents::is_record_exempt(name, d))
    };
    if let Some(record) = &record {
        for entry in entries.iter().filter(|e| !e.is_dir && !exempt(&e.name)) {
            match record.get_key_value(&entry.name) {
                Some((k, _)) => {
                    listed.insert(k.as_str());
                }
                None => findings.push(Finding::new(
                    FindingCode::RecordUnlistedFile,
                    entry.name.as_str(),
                    "in the archive but not in RECORD",
                )),
            }
        }
    }
    let work: Vec<&Entry> = entries.iter().filter(|e| !e.is_dir && e.readable).collect();
    let ctx = MemberContext {
        record: record.as_ref(),
        dist_info: dist_info.as_deref(),
        root_is_purelib,
        limits,
        budget: std::sync::atomic::AtomicU64::new(ONE_SHOT_BUDGET),
    };
    let mut members = Vec::new();
    for part in scan_parallel(&archive, &work, &ctx)? {
        findings.extend(part.findings);
        members.extend(part.members);
    }
    if let Some(record) = &record {
        let present: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let mut missing: Vec<&String> = record
            .keys()
            .filter(|k| !listed.contains(k.as_str()) && !present.contains(k.as_str()))
            .collect();
        missing.sort();
        for m in missing {
            findings.push(Finding::new(
                FindingCode::RecordMissingFile,
                m.as_str(),
                "listed in RECORD but not in the archive",
            ));
        }
    }
    let view = WheelView {
        wheel,
        installed: &installed,
    };
    claims::check_all(&view, &members, findings);
    Ok(())
}

/// What every member's check needs to know about the wheel.
struct MemberContext<'a> {
    record: Option<&'a HashMap<String, RecordRow>>,
    dist_info: Option<&'a str>,
    root_is_purelib: bool,
    limits: &'a ArchiveLimits,
    /// Bytes the threads may hold at once for members read in one piece (compressed and
    /// inflated together); a member that does not fit streams instead.
    budget: std::sync::atomic::AtomicU64,
}

impl MemberContext<'_> {
    fn reserve(&self, bytes: u64) -> bool {
        use std::sync::atomic::Ordering;
        self.budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.budget
            .fetch_add(bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Scanned {
    findings: Vec<Finding>,
    members: Vec<Member>,
}

/// Members smaller than this in all are scanned on one thread: a second would cost more than
/// it saves.
const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// Inflates, hashes and parses the members on up to four threads (each with its own reader of
/// the archive), balanced by compressed size. Findings come back in member order.
fn scan_parallel(
    archive: &Archive,
    work: &[&Entry],
    ctx: &MemberContext<'_>,
) -> io::Result<Vec<Scanned>> {
    let total: u64 = work.iter().map(|e| e.size).sum();
    let threads = if total < PARALLEL_MIN_BYTES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(work.len().max(1))
    };
    // Largest first onto the least loaded thread.
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(work[i].compressed_size));
    let mut loads = vec![0u64; threads];
    let mut shares: Vec<Vec<usize>> = vec![Vec::new(); threads];
    for i in order {
        let t = (0..threads).min_by_key(|&t| loads[t]).unwrap_or(0);
        loads[t] += work[i].compressed_size.max(1);
        shares[t].push(i);
    }
    for share in &mut shares {
        share.sort_unstable();
    }
    let results: Vec<io::Result<Vec<(usize, Scanned)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                let mut reader = archive.reader();
                scope.spawn(move || {
                    share
                        .iter()
                        .map(|&i| scan_member(&mut reader, work[i], ctx).map(|s| (i, s)))
                        .collect::<io::Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a member scan panicked")))
            })
            .collect()
    });
    let mut all: Vec<(usize, Scanned)> = Vec::with_capacity(work.len());
    for r in results {
        all.extend(r?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, s)| s).collect())
}

/// One member: inflate it once, hash it for RECORD, and keep and parse it if it is native or
/// startup code.
fn scan_member(
    archive: &mut Archive,
    entry: &Entry,
    ctx: &MemberContext<'_>,
) -> io::Result<Scanned> {
    let mut out = Scanned::default();
    let findings = &mut out.findings;
    let name = entry.name.as_str();
    let size = entry.size;
    let exempt = ctx
        .dist_info
        .is_some_and(|d| contents::is_record_exempt(name, d));
    let row = ctx.record.and_then(|r| r.get(name));
    let expected_hash = if exempt {
        None
    } else {
        row.and_then(|r| r.hash.as_ref())
    };
    if row.is_some() && !exempt && expected_hash.is_none() {
        findings.push(Finding::new(
            FindingCode::RecordInvalid,
            name,
            "RECORD lists it without a hash",
        ));
    }
    let mut hasher = expected_hash.map(|(algo, _)| Hasher::new(*algo));
    let held = entry.size.saturating_add(entry.compressed_size);
    let one_piece = entry.size <= ONE_SHOT_MAX && ctx.reserve(held);
    let whole = if one_piece {
        archive.read_whole(entry, ONE_SHOT_MAX)
    } else {
        None
    };
    let scanned = scan_read(archive, entry, ctx, whole, &mut hasher, findings);
    if one_piece {
        ctx.release(held);
    }
    let Some(role) = scanned? else {
        return Ok(out);
    };
    if let (Some(h), Some((_, digest))) = (hasher, expected_hash)
        && h.finish() != *digest
    {
        findings.push(Finding::new(
            FindingCode::RecordHashMismatch,
            name,
            "content differs from the hash in RECORD",
        ));
    }
    if let Some(expected) = row.and_then(|r| r.size)
        && !exempt
        && expected != size
    {
        findings.push(Finding::new(
            FindingCode::RecordSizeMismatch,
            name,
            format!("{size} bytes, RECORD says {expected}"),
        ));
    }
    match role {
        Role::Native(magic, keep) => {
            let parsed = match keep {
                Keep::Memory(bytes) => native::parse(magic, &bytes),
                Keep::Spill(file) => {
                    // SAFETY: the file is an unlinked temporary file of this process that
                    // nothing else can open or change while the map lives.
                    let map = unsafe { memmap2::Mmap::map(&file)? };
                    native::parse(magic, &map)
                }
            };
            match parsed {
                Ok(binary) => {
                    // Only code a process loads breaks the promise of pure-Python files: a
                    // launcher `.exe` is run as a program of its own (see `native::Kind`).
                    if binary.kind == native::Kind::Loadable
                        && contents::in_purelib(name, ctx.root_is_purelib)
                    {
                        out.findings.push(Finding::new(
                            FindingCode::NativeInPurelib,
                            name,
                            "native library installed as pure-Python code (purelib)",
                        ));
                    }
                    out.members.push(Member {
                        path: name.to_owned(),
                        binary,
                    });
                }
                Err(e) => out.findings.push(Finding::new(
                    FindingCode::NativeUnparseable,
                    name,
                    format!("looks like a {magic:?} binary but cannot be parsed: {e}"),
                )),
            }
        }
        Role::Startup(StartupFile::Pth, bytes) => contents::check_pth(name, &bytes, findings),
        Role::Startup(StartupFile::Hook, bytes) => contents::check_hook(name, &bytes, findings),
        Role::Plain | Role::Undecided => {}
    }
    Ok(out)
}

/// Reads one member, from the one-piece buffer when there is one, else as a stream; hashes it
/// and decides what it is. `None` when reading failed (the finding is pushed).
fn scan_read(
    archive: &mut Archive,
    entry: &Entry,
    ctx: &MemberContext<'_>,
    whole: Option<Result<Vec<u8>, Finding>>,
    hasher: &mut Option<Hasher>,
    findings: &mut Vec<Finding>,
) -> io::Result<Option<Role>> {
    let name = entry.name.as_str();
    let size = entry.size;
    let spill_threshold = ctx.limits.spill_threshold;
    let role = match whole {
        Some(Err(f)) => {
            findings.push(f);
            return Ok(None);
        }
        Some(Ok(bytes)) => {
            if let Some(h) = hasher.as_mut() {
                h.update(&bytes);
            }
            let head = bytes.get(..HEAD_LEN.min(bytes.len())).unwrap_or_default();
            match decide(name, head, size, None)? {
                // The buffer is already the member: keep it without a copy.
                Role::Native(magic, Keep::Memory(_)) => Role::Native(magic, Keep::Memory(bytes)),
                mut other => {
                    feed(&mut other, &bytes)?;
                    other
                }
            }
        }
        None => {
            let mut head: Vec<u8> = Vec::new();
            let mut role = Role::Undecided;
            let result = archive.read_member(entry, |chunk| {
                if let Some(h) = hasher.as_mut() {
                    h.update(chunk);
                }
                match &mut role {
                    Role::Undecided => {
                        head.extend_from_slice(chunk);
                        if head.len() >= HEAD_LEN || head.len() as u64 >= size {
                            role = decide(name, &head, size, Some(spill_threshold))?;
                            feed(&mut role, &head)?;
                        }
                    }
                    other => feed(other, chunk)?,
                }
                Ok(())
            });
            if let Err(f) = result {
                findings.push(f);
                return Ok(None);
            }
            if matches!(role, Role::Undecided) {
                role = decide(name, &head, size, Some(spill_threshold))?;
                feed(&mut role, &head)?;
            }
            role
        }
    };
    Ok(Some(role))
}

/// What a member is, from its name and first bytes. A native member larger than `spill` (when
/// given) goes to a temporary file as it streams; one already in memory stays there.
fn decide(name: &str, head: &[u8], size: u64, spill: Option<u64>) -> io::Result<Role> {
    if let Some(magic) = native::sniff(head) {
        let keep = if spill.is_some_and(|t| size > t) {
            Keep::Spill(tempfile::tempfile()?)
        } else {
            // Streaming into memory: reserve once. A one-piece read replaces this buffer.
            let capacity = if spill.is_some() { size } else { 0 };
            Keep::Memory(Vec::with_capacity(usize::try_from(capacity).unwrap_or(0)))
        };
        return Ok(Role::Native(magic, keep));
    }
    if let Some(kind) = contents::startup_file(name) {
        return Ok(Role::Startup(kind, Vec::new()));
    }
    Ok(Role::Plain)
}

fn feed(role: &mut Role, data: &[u8]) -> io::Result<()> {
    match role {
        Role::Native(_, keep) => keep.write(data),
        Role::Startup(_, bytes) => {
            let room = MAX_STARTUP_READ.saturating_sub(bytes.len());
            bytes.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            Ok(())
        }
        Role::Plain | Role::Undecided => Ok(()),
    }
}
