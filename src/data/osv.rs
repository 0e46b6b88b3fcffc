//! Offline OSV advisory and malware data (<https://ossf.github.io/osv-schema>).
//!
//! pipwall answers "is this release known to be vulnerable or malicious?" on every page it
//! serves, so the records are read once, up front, from local copies (a checkout or zip of the
//! PyPA advisory database, of the OSSF malicious-packages repository, or OSV's per-ecosystem
//! `all.zip`) and turned into an index that answers without parsing or allocating.
//!
//! Every version range of a project is mapped onto one sorted list of that project's boundary
//! versions, so a query does a single binary search over versions and then only compares
//! integers (see `ProjectIndex`).
//!
//! The files are third-party data and treated as hostile: sizes and entry counts are capped, a
//! record that cannot be understood is skipped and reported rather than failing the load, and
//! every string kept for messages is cleaned of control characters and bounded in length.

use std::collections::HashMap;
use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use jiff::Timestamp;
use pep440_rs::Version;
use serde::Deserialize;

use crate::sanitize::one_line;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::dist::ProjectName;

/// A record file larger than this is not an advisory: real ones are a few KiB, and the largest
/// OSV records (long version lists) stay far below it.
pub const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;
/// Entries of one zip, or record files under one directory. OSV's whole PyPI export is a few
/// tens of thousands of records; the cap only stops archives built to exhaust memory.
pub const MAX_ENTRIES: usize = 200_000;
/// Uncompressed bytes of one source: a zip bomb is refused before it is inflated.
pub const MAX_SOURCE_BYTES: u64 = 1024 * 1024 * 1024;
/// `LoadReport::skipped` keeps this many lines; the rest are only counted, so a broken source
/// cannot flood the log.
pub const MAX_SKIPPED_LINES: usize = 100;
/// Summaries end up in page decisions and logs, where one line is what a person reads.
pub const MAX_SUMMARY_CHARS: usize = 200;

const MAX_ID_CHARS: usize = 128;
const MAX_ALIASES: usize = 32;
const MAX_VERSION_CHARS: usize = 128;
const MAX_DIR_DEPTH: usize = 64;
const MAX_THREADS: usize = 8;
/// Below this many files, starting threads costs more than it saves.
const PARALLEL_THRESHOLD: usize = 64;

/// Qualitative severity, the CVSS v3/v4 rating scale (GHSA's MODERATE is Medium).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// GHSA's `database_specific.severity` labels, which OSV.dev passes through unchanged.
    fn from_label(label: &str) -> Option<Self> {
        let label = label.trim();
        if label.eq_ignore_ascii_case("low") {
            Some(Severity::Low)
        } else if label.eq_ignore_ascii_case("moderate") || label.eq_ignore_ascii_case("medium") {
            Some(Severity::Medium)
        } else if label.eq_ignore_ascii_case("high") {
            Some(Severity::High)
        } else if label.eq_ignore_ascii_case("critical") {
            Some(Severity::Critical)
        } else {
            None
        }
    }

    /// The CVSS qualitative scale; a score of 0 means "no impact", which is no severity at all.
    fn from_score(score: f64) -> Option<Self> {
        if !score.is_finite() || score <= 0.0 {
            None
        } else if score < 4.0 {
            Some(Severity::Low)
        } else if score < 7.0 {
            Some(Severity::Medium)
        } else if score < 9.0 {
            Some(Severity::High)
        } else {
            Some(Severity::Critical)
        }
    }
}

/// Malware records (OSSF's `MAL-` ids) mean "never install"; vulnerabilities are a matter of
/// policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    Vulnerability,
    Malware,
}

/// What pipwall keeps of one OSV record: enough to name it in a decision and judge it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsvRecord {
    pub id: String,
    pub aliases: Vec<String>,
    /// `summary`, or the start of `details` when there is none; one line, at most
    /// [`MAX_SUMMARY_CHARS`] characters.
    pub summary: String,
    pub kind: RecordKind,
    pub severity: Option<Severity>,
    pub modified: Option<Timestamp>,
    /// Where the record was read: `archive.zip:member/path` or the file's path.
    pub source: String,
    /// Any range of the record has a `fixed` event, so upgrading can help.
    pub fix_available: bool,
}

/// One record that affects a queried release.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    pub record: &'a OsvRecord,
    /// The lowest `fixed` version of this record for the project above the queried version.
    pub fixed_in: Option<&'a Version>,
}

/// What a load found, for the operator: counts, and why things were left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Records kept: distinct ids, not withdrawn, naming at least one PyPI package.
    pub records: usize,
    /// Distinct ids dropped because they are withdrawn (field set, or under `withdrawn/`).
    pub withdrawn: usize,
    /// Record files (or zip members) read and parsed.
    pub files: usize,
    /// Copies of an id already seen; the most recently modified copy is kept.
    pub duplicates: usize,
    /// Records that name no PyPI package at all.
    pub not_pypi: usize,
    /// One line per unreadable file, record or event, at most [`MAX_SKIPPED_LINES`].
    pub skipped: Vec<String>,
    /// How many lines `skipped` would hold without the cap.
    pub skipped_total: usize,
    /// The newest `modified` of any record read, withdrawn ones included: how fresh the data is.
    pub newest: Option<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error("advisory source {} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read advisory source {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("advisory zip {} is unreadable: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("advisory source {} is neither a directory, a .zip nor a .json/.yaml record", path.display())]
    NotASource { path: PathBuf },
    #[error("{what} is larger than {limit} bytes; refusing it")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} has more than {limit} entries; refusing it")]
    TooManyEntries { what: String, limit: usize },
    #[error("advisory directory {} is nested more than {MAX_DIR_DEPTH} levels deep", path.display())]
    TooDeep { path: PathBuf },
    #[error("an advisory loader thread failed")]
    Worker,
}

/// The loaded records and their per-project index. Immutable once built, so it is shared
/// between request tasks without locking.
#[derive(Debug, Default)]
pub struct OsvDb {
    records: Vec<OsvRecord>,
    by_id: HashMap<String, u32>,
    projects: HashMap<String, ProjectIndex>,
}

/// Everything known about one project, in "rank space".
///
/// `bounds` holds every version any of the project's records mentions, sorted and
/// deduplicated. A version `V` gets rank `2i+1` when it equals `bounds[i]` and rank `2i` when it
/// falls just below `bounds[i]` (rank `2n` above them all). Every range then becomes a half-open
/// interval of ranks, exact to PEP 440 ordering, so a query costs one binary search over
/// versions and then only integer comparisons.
///
/// Each record's intervals are merged, so they are disjoint and a record matches at most once.
/// All intervals are sorted by start, so only a prefix can contain a rank, and every block of
/// [`BLOCK`] (and [`SUPER`]) intervals knows its largest end, so the long tail of advisories
/// fixed long ago is skipped a block at a time.
#[derive(Debug, Default)]
struct ProjectIndex {
    bounds: Vec<Version>,
    groups: Vec<Group>,
    /// Sorted by `lo`.
    spans: Vec<Span>,
    /// Largest `hi` of each [`BLOCK`] of `spans`.
    block_max: Vec<u32>,
    /// Largest `hi` of each [`SUPER`] of `spans`.
    super_max: Vec<u32>,
    /// Ranks of `fixed` versions, sorted per group.
    fixes: Vec<u32>,
    /// sha256 digests named by malware records, sorted.
    files: Vec<([u8; 32], u32)>,
    /// A malware record affecting every version.
    whole_project: Option<u32>,
}

const BLOCK: usize = 8;
const SUPER: usize = 8 * BLOCK;

/// `[lo, hi)` in rank space, of `groups[group]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    lo: u32,
    hi: u32,
    group: u32,
}

/// One record as it applies to one project; `fixes` is a slice of `ProjectIndex::fixes`.
#[derive(Debug, Clone, Copy)]
struct Group {
    record: u32,
    fixes: (u32, u32),
}

impl ProjectIndex {
    fn rank(&self, version: &Version) -> u32 {
        let i = match self.bounds.binary_search(version) {
            Ok(i) => 2 * i + 1,
            Err(i) => 2 * i,
        };
        // The builder refuses projects with more bounds than fit, so this never saturates.
        u32::try_from(i).unwrap_or(u32::MAX - 1)
    }

    fn slice<T>(items: &[T], range: (u32, u32)) -> &[T] {
        items
            .get(range.0 as usize..range.1 as usize)
            .unwrap_or_default()
    }
}

/// Records affecting one release; see [`OsvDb::hits`].
#[derive(Debug, Clone)]
pub struct Hits<'a> {
    records: &'a [OsvRecord],
    index: Option<&'a ProjectIndex>,
    next: usize,
    /// Spans from here on start above `rank`.
    end: usize,
    rank: u32,
}

impl<'a> Iterator for Hits<'a> {
    type Item = Hit<'a>;

    fn next(&mut self) -> Option<Hit<'a>> {
        let index = self.index?;
        let rank = self.rank;
        while self.next < self.end {
            if self.next.is_multiple_of(SUPER)
                && index
                    .super_max
                    .get(self.next / SUPER)
                    .is_some_and(|&max| max <= rank)
            {
                self.next += SUPER;
                continue;
            }
            if self.next.is_multiple_of(BLOCK)
                && index
                    .block_max
                    .get(self.next / BLOCK)
                    .is_some_and(|&max| max <= rank)
            {
                self.next += BLOCK;
                continue;
            }
            let span = index.spans.get(self.next)?;
            self.next += 1;
            if span.hi <= rank {
                continue;
            }
            let Some(group) = index.groups.get(span.group as usize) else {
                continue;
            };
            let Some(record) = self.records.get(group.record as usize) else {
                continue;
            };
            let fixed_in = ProjectIndex::slice(&index.fixes, group.fixes)
                .iter()
                .find(|&&r| r > rank)
                .and_then(|&r| index.bounds.get((r / 2) as usize));
            return Some(Hit { record, fixed_in });
        }
        None
    }
}

impl OsvDb {
    pub fn empty() -> OsvDb {
        OsvDb::default()
    }

    /// Reads every source and builds the index. Sources that cannot be read at all (missing,
    /// not a zip, over a size or count cap) fail the load, because silently running with less
    /// data than configured would let known-bad releases through; records that cannot be
    /// understood are skipped and listed in the report instead.
    pub fn load(paths: &[PathBuf]) -> Result<(OsvDb, LoadReport), OsvError> {
        let mut report = LoadReport::default();
        let mut parsed: Vec<ParsedRecord> = Vec::new();
        let mut notes = Notes::default();
        for path in paths {
            let outcomes = load_source(path)?;
            for outcome in outcomes {
                report.files += 1;
                notes.absorb(outcome.notes);
                if let Some(record) = outcome.record {
                    parsed.push(record);
                }
            }
        }
        let db = build(parsed, &mut report, &mut notes);
        report.skipped = notes.lines;
        report.skipped_total = notes.total;
        Ok((db, report))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn records(&self) -> &[OsvRecord] {
        &self.records
    }

    /// A record by its OSV id, for `pipwall explain`.
    pub fn record(&self, id: &str) -> Option<&OsvRecord> {
        self.by_id
            .get(id)
            .and_then(|&i| self.records.get(i as usize))
    }

    /// Records affecting `project` (PEP 503-normalized) at `version`, each with the lowest fix
    /// above it. Allocates nothing; a project without records costs one hash lookup.
    pub fn hits(&self, project: &str, version: &Version) -> Hits<'_> {
        let index = self.projects.get(project);
        let rank = index.map_or(0, |index| index.rank(version));
        Hits {
            records: &self.records,
            index,
            next: 0,
            end: index.map_or(0, |index| index.spans.partition_point(|s| s.lo <= rank)),
            rank,
        }
    }

    /// Records affecting `project` (PEP 503-normalized) at `version`.
    pub fn affecting<'a>(
        &'a self,
        project: &str,
        version: &Version,
    ) -> impl Iterator<Item = &'a OsvRecord> + use<'a> {
        self.hits(project, version).map(|hit| hit.record)
    }

    /// A malware record naming this exact file digest (sha256, hex of either case) for the
    /// project.
    pub fn malicious_file(&self, project: &str, sha256: &str) -> Option<&OsvRecord> {
        let index = self.projects.get(project)?;
        let digest = parse_sha256(sha256)?;
        let at = index.files.binary_search_by(|(d, _)| d.cmp(&digest)).ok()?;
        let (_, record) = index.files.get(at)?;
        self.records.get(*record as usize)
    }

    /// A malware record that covers every version of the project: the name itself is bad.
    pub fn malicious_project(&self, project: &str) -> Option<&OsvRecord> {
        let index = self.projects.get(project)?;
        self.records.get(index.whole_project? as usize)
    }

    /// The project is named by at least one record.
    pub fn has_project(&self, project: &str) -> bool {
        self.projects.contains_key(project)
    }
}

fn parse_sha256(hex_digest: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut digest).ok()?;
    Some(digest)
}

// ---------------------------------------------------------------------------------------------
// Reading sources

/// Lines for `LoadReport::skipped`, capped, with the true count kept.
#[derive(Debug, Default)]
struct Notes {
    lines: Vec<String>,
    total: usize,
}

impl Notes {
    fn push(&mut self, line: String) {
        self.total += 1;
        if self.lines.len() < MAX_SKIPPED_LINES {
            self.lines.push(line);
        }
    }

    fn absorb(&mut self, other: Notes) {
        let extra = other.total.saturating_sub(other.lines.len());
        for line in other.lines {
            self.push(line);
        }
        self.total += extra;
    }
}

/// The result of reading one record file.
struct Outcome {
    record: Option<ParsedRecord>,
    notes: Notes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

/// Record files are recognized by extension; anything else in a checkout or archive (LICENSE,
/// README.md, `.id-allocator`) is not a record and is passed over without a note.
fn record_format(name: &str) -> Option<Format> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if base.starts_with('.') {
        return None;
    }
    let (_, ext) = base.rsplit_once('.')?;
    if ext.eq_ignore_ascii_case("json") {
        Some(Format::Json)
    } else if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") {
        Some(Format::Yaml)
    } else {
        None
    }
}

/// OSSF's malicious-packages repository moves retracted reports under `withdrawn/` instead of
/// setting the field, so the path carries the meaning: for a directory source, any component
/// of the file's path as configured; for a zip, any component of the member's name.
fn path_says_withdrawn<'a>(mut components: impl Iterator<Item = &'a str>) -> bool {
    components.any(|c| c.eq_ignore_ascii_case("withdrawn"))
}

fn load_source(path: &Path) -> Result<Vec<Outcome>, OsvError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OsvError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(OsvError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if meta.is_dir() {
        return load_dir(path);
    }
    let name = path.to_string_lossy();
    let is_zip = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("zip"));
    if is_zip {
        return load_zip(path);
    }
    let Some(format) = record_format(&name) else {
        return Err(OsvError::NotASource {
            path: path.to_path_buf(),
        });
    };
    let job = FileJob {
        path: path.to_path_buf(),
        format,
        withdrawn: path_says_withdrawn(path.iter().filter_map(|c| c.to_str())),
    };
    let budget = AtomicU64::new(MAX_SOURCE_BYTES);
    Ok(vec![read_file_job(&job, &budget)?])
}

struct FileJob {
    path: PathBuf,
    format: Format,
    withdrawn: bool,
}

fn load_dir(root: &Path) -> Result<Vec<Outcome>, OsvError> {
    let root_withdrawn = path_says_withdrawn(root.iter().filter_map(|c| c.to_str()));
    let mut jobs = Vec::new();
    walk(root, root, 0, root_withdrawn, &mut jobs)?;
    jobs.sort_by(|a, b| a.path.cmp(&b.path));
    let budget = AtomicU64::new(MAX_SOURCE_BYTES);
    run_parallel(
        jobs.len(),
        || (),
        |(), i| match jobs.get(i) {
            Some(job) => read_file_job(job, &budget).map(Some),
            None => Ok(None),
        },
    )
}

/// Collects record files below `dir`. Symlinked directories are not followed (a link back up
/// would never end); symlinked files are read like files. Nesting past [`MAX_DIR_DEPTH`] is an
/// error rather than a silent cut, so no record is quietly left out.
fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    withdrawn: bool,
    jobs: &mut Vec<FileJob>,
) -> Result<(), OsvError> {
    let io_err = |source| OsvError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if depth > MAX_DIR_DEPTH {
        return Err(OsvError::TooDeep {
            path: dir.to_path_buf(),
        });
    }
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_err)?;
        if file_type.is_dir() {
            let inner = withdrawn || name.eq_ignore_ascii_case("withdrawn");
            walk(root, &path, depth + 1, inner, jobs)?;
            continue;
        }
        let Some(format) = record_format(name) else {
            continue;
        };
        if file_type.is_symlink() && !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if jobs.len() >= MAX_ENTRIES {
            return Err(OsvError::TooManyEntries {
                what: format!("advisory directory {}", root.display()),
                limit: MAX_ENTRIES,
            });
        }
        jobs.push(FileJob {
            path,
            format,
            withdrawn,
        });
    }
    Ok(())
}

fn read_file_job(job: &FileJob, budget: &AtomicU64) -> Result<Outcome, OsvError> {
    let source = one_line(&job.path.to_string_lossy(), 1024);
    let mut notes = Notes::default();
    let file = match fs::File::open(&job.path) {
        Ok(file) => file,
        Err(e) => {
            notes.push(format!("{source}: cannot read: {e}"));
            return Ok(Outcome {
                record: None,
                notes,
            });
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_RECORD_BYTES + 1).read_to_end(&mut bytes) {
        notes.push(format!("{source}: cannot read: {e}"));
        return Ok(Outcome {
            record: None,
            notes,
        });
    }
    charge(&bytes, &source, budget)?;
    let record = parse_record(&bytes, job.format, source, job.withdrawn, &mut notes);
    Ok(Outcome { record, notes })
}

/// Enforces the per-record and per-source byte caps on what was actually read, so a lying
/// size field gains nothing.
fn charge(bytes: &[u8], what: &str, budget: &AtomicU64) -> Result<(), OsvError> {
    let len = bytes.len() as u64;
    if len > MAX_RECORD_BYTES {
        return Err(OsvError::TooLarge {
            what: format!("advisory record {what}"),
            limit: MAX_RECORD_BYTES,
        });
    }
    let took = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        left.checked_sub(len)
    });
    if took.is_err() {
        return Err(OsvError::TooLarge {
            what: "advisory source".to_owned(),
            limit: MAX_SOURCE_BYTES,
        });
    }
    Ok(())
}

fn load_zip(path: &Path) -> Result<Vec<Outcome>, OsvError> {
    let io_err = |source| OsvError::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_err = |source| OsvError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let display = one_line(&path.to_string_lossy(), 1024);
    let size = fs::metadata(path).map_err(io_err)?.len();
    if size > MAX_SOURCE_BYTES {
        return Err(OsvError::TooLarge {
            what: format!("advisory zip {display}"),
            limit: MAX_SOURCE_BYTES,
        });
    }
    // Held in memory so that every thread gets its own cheap reader over the same bytes.
    let data = fs::read(path).map_err(io_err)?;
    let archive = zip::ZipArchive::new(Cursor::new(data.as_slice())).map_err(zip_err)?;
    if archive.len() > MAX_ENTRIES {
        return Err(OsvError::TooManyEntries {
            what: format!("advisory zip {display}"),
            limit: MAX_ENTRIES,
        });
    }
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_data(i).map_err(zip_err)?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > MAX_SOURCE_BYTES {
        return Err(OsvError::TooLarge {
            what: format!("advisory zip {display} (uncompressed)"),
            limit: MAX_SOURCE_BYTES,
        });
    }
    let budget = AtomicU64::new(MAX_SOURCE_BYTES);
    let outcomes = run_parallel(
        archive.len(),
        || archive.clone(),
        |archive, i| read_zip_member(archive, i, &display, &budget),
    )?;
    Ok(outcomes)
}

fn read_zip_member(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    index: usize,
    zip_display: &str,
    budget: &AtomicU64,
) -> Result<Option<Outcome>, OsvError> {
    let mut notes = Notes::default();
    let (name, format, declared) = {
        let entry = match archive.by_index_data(index) {
            Ok(entry) => entry,
            Err(e) => {
                notes.push(format!("{zip_display}: entry {index}: {e}"));
                return Ok(Some(Outcome {
                    record: None,
                    notes,
                }));
            }
        };
        if entry.is_dir() {
            return Ok(None);
        }
        let name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(e) => {
                notes.push(format!("{zip_display}: entry {index}: bad name: {e}"));
                return Ok(Some(Outcome {
                    record: None,
                    notes,
                }));
            }
        };
        let Some(format) = record_format(&name) else {
            return Ok(None);
        };
        (name, format, entry.size())
    };
    let source = format!("{zip_display}:{}", one_line(&name, 1024));
    if declared > MAX_RECORD_BYTES {
        return Err(OsvError::TooLarge {
            what: format!("advisory record {source}"),
            limit: MAX_RECORD_BYTES,
        });
    }
    let mut bytes = Vec::new();
    let read = archive
        .by_index(index)
        .and_then(|file| {
            file.take(MAX_RECORD_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(zip::result::ZipError::from)
        })
        .map(|_| ());
    if let Err(e) = read {
        notes.push(format!("{source}: cannot read: {e}"));
        return Ok(Some(Outcome {
            record: None,
            notes,
        }));
    }
    charge(&bytes, &source, budget)?;
    let withdrawn = path_says_withdrawn(name.split(['/', '\\']));
    let record = parse_record(&bytes, format, source, withdrawn, &mut notes);
    Ok(Some(Outcome { record, notes }))
}

/// Runs `work` for indices `0..count` on up to [`MAX_THREADS`] threads, each with its own state
/// from `init`, and returns the results in index order so loads are deterministic. The first
/// error stops the others.
fn run_parallel<S, T, I, F>(count: usize, init: I, work: F) -> Result<Vec<T>, OsvError>
where
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize) -> Result<Option<T>, OsvError> + Sync,
    T: Send,
{
    let threads = if count < PARALLEL_THRESHOLD {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
    };
    if threads == 1 {
        let mut state = init();
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            if let Some(item) = work(&mut state, i)? {
                out.push(item);
            }
        }
        return Ok(out);
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<OsvError>> = Mutex::new(None);
    let mut results: Vec<(usize, T)> = Vec::with_capacity(count);
    let worker = || {
        let mut state = init();
        let mut mine = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            match work(&mut state, i) {
                Ok(Some(item)) => mine.push((i, item)),
                Ok(None) => {}
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = failure.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            }
        }
        mine
    };
    let joined = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        let mut all_ok = true;
        for handle in handles {
            match handle.join() {
                Ok(mine) => results.extend(mine),
                Err(_) => all_ok = false,
            }
        }
        all_ok
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    if !joined {
        return Err(OsvError::Worker);
    }
    results.sort_unstable_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, item)| item).collect())
}

// ---------------------------------------------------------------------------------------------
// Parsing one record

/// The parts of the OSV schema pipwall uses. Everything is optional here so that one odd field
/// costs only that field, not the record; `details`, `references` and the rest are not kept.
#[derive(Deserialize)]
struct RawRecord {
    id: Option<String>,
    aliases: Option<Vec<String>>,
    summary: Option<String>,
    details: Option<String>,
    modified: Option<String>,
    withdrawn: Option<IgnoredAny>,
    affected: Option<Vec<RawAffected>>,
    severity: Option<Vec<RawSeverity>>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    ranges: Option<Vec<RawRange>>,
    versions: Option<Vec<String>>,
    severity: Option<Vec<RawSeverity>>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    events: Option<Vec<RawEvent>>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: Option<String>,
    score: Option<String>,
}

/// A record ready to be indexed.
struct ParsedRecord {
    record: OsvRecord,
    withdrawn: bool,
    projects: Vec<ParsedProject>,
    /// The record named no PyPI package; kept only to be counted.
    not_pypi: bool,
}

/// One record's facts about one project.
#[derive(Default)]
struct ParsedProject {
    name: String,
    spans: Vec<(Lo, Hi)>,
    fixes: Vec<Version>,
    files: Vec<[u8; 32]>,
}

#[derive(Clone, Debug)]
enum Lo {
    /// `introduced: "0"`: before every version, pre-releases of 0 included.
    Min,
    Incl(Version),
}

#[derive(Clone, Debug)]
enum Hi {
    Max,
    Excl(Version),
    Incl(Version),
}

fn parse_record(
    bytes: &[u8],
    format: Format,
    source: String,
    path_withdrawn: bool,
    notes: &mut Notes,
) -> Option<ParsedRecord> {
    let raw: Result<RawRecord, String> = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Format::Yaml => serde_saphyr::from_slice(bytes).map_err(|e| e.to_string()),
    };
    let raw = match raw {
        Ok(raw) => raw,
        Err(e) => {
            let first_line = e.lines().next().unwrap_or_default();
            notes.push(format!(
                "{source}: not an OSV record: {}",
                one_line(first_line, 300)
            ));
            return None;
        }
    };
    let Some(id) = raw.id.as_deref().and_then(clean_id) else {
        notes.push(format!("{source}: record has no usable id"));
        return None;
    };
    let kind = if id.starts_with("MAL-") {
        RecordKind::Malware
    } else {
        RecordKind::Vulnerability
    };
    let aliases = raw
        .aliases
        .unwrap_or_default()
        .iter()
        .filter_map(|a| clean_id(a))
        .take(MAX_ALIASES)
        .collect();
    let summary = raw
        .summary
        .as_deref()
        .map(|s| one_line(s, MAX_SUMMARY_CHARS))
        .filter(|s| !s.is_empty())
        .or_else(|| {
            raw.details
                .as_deref()
                .map(|d| one_line(d, MAX_SUMMARY_CHARS))
        })
        .unwrap_or_default();
    let modified = raw
        .modified
        .as_deref()
        .and_then(|m| Timestamp::from_str(m.trim()).ok());

    let severity = raw
        .database_specific
        .as_ref()
        .and_then(|d| d.get("severity"))
        .and_then(Value::as_str)
        .and_then(Severity::from_label);
    let cvss = severity_of(raw.severity.as_deref().unwrap_or_default());

    let found = affected_projects(raw.affected.unwrap_or_default(), kind, &id, &source, notes);
    let severity = severity.max(found.severity);
    let cvss = cvss.max(found.cvss);
    let (projects, fix_available, any_pypi) = (found.projects, found.fix_available, found.any_pypi);

    Some(ParsedRecord {
        record: OsvRecord {
            id,
            aliases,
            summary,
            kind,
            severity: severity.or(cvss),
            modified,
            source,
            fix_available,
        },
        withdrawn: path_withdrawn || raw.withdrawn.is_some(),
        projects,
        not_pypi: !any_pypi,
    })
}

/// What a record's `affected` entries say about PyPI projects: each project's affected
/// versions (and, for malware, file digests), whether any range has a fix, and the highest
/// severity they state. Entries of other ecosystems are skipped; bad ones are noted.
struct Affected {
    projects: Vec<ParsedProject>,
    fix_available: bool,
    any_pypi: bool,
    cvss: Option<Severity>,
    severity: Option<Severity>,
}

fn affected_projects(
    affected: Vec<RawAffected>,
    kind: RecordKind,
    id: &str,
    source: &str,
    notes: &mut Notes,
) -> Affected {
    let mut projects: Vec<ParsedProject> = Vec::new();
    let mut fix_available = false;
    let mut any_pypi = false;
    let mut cvss = None;
    let mut severity = None;
    for affected in affected {
        let Some(package) = &affected.package else {
            continue;
        };
        if !package.ecosystem.as_deref().is_some_and(is_pypi) {
            continue;
        }
        any_pypi = true;
        let Some(raw_name) = package.name.as_deref() else {
            notes.push(format!("{source}: {id}: affected package has no name"));
            continue;
        };
        let name = match ProjectName::new(raw_name.trim()) {
            Ok(name) => name,
            Err(e) => {
                notes.push(format!(
                    "{source}: {id}: package name {:?}: {e}",
                    one_line(raw_name, 100)
                ));
                continue;
            }
        };
        let at = match projects.iter().position(|p| p.name == name.as_str()) {
            Some(at) => at,
            None => {
                projects.push(ParsedProject {
                    name: name.as_str().to_owned(),
                    ..ParsedProject::default()
                });
                projects.len() - 1
            }
        };
        let Some(project) = projects.get_mut(at) else {
            continue;
        };
        for v in affected.versions.iter().flatten() {
            if let Some(v) = parse_version(v) {
                project.spans.push((Lo::Incl(v.clone()), Hi::Incl(v)));
            }
        }
        for range in affected.ranges.iter().flatten() {
            let counts = range.kind.as_deref().is_some_and(|k| {
                k.eq_ignore_ascii_case("ECOSYSTEM") || k.eq_ignore_ascii_case("SEMVER")
            });
            if !counts {
                continue;
            }
            fix_available |= walk_events(
                range.events.as_deref().unwrap_or_default(),
                project,
                |event| notes.push(format!("{source}: {id}: {event}")),
            );
        }
        if let Some(found) = affected.severity.as_deref().and_then(severity_of) {
            cvss = cvss.max(Some(found));
        }
        if let Some(found) = affected
            .database_specific
            .as_ref()
            .and_then(|d| d.get("severity"))
            .and_then(Value::as_str)
            .and_then(Severity::from_label)
        {
            severity = severity.max(Some(found));
        }
        if kind == RecordKind::Malware {
            collect_file_hashes(affected.database_specific.as_ref(), project, |bad| {
                notes.push(format!("{source}: {id}: {bad}"))
            });
        }
    }
    Affected {
        projects,
        fix_available,
        any_pypi,
        cvss,
        severity,
    }
}

/// `PyPI`, or `PyPI:<suffix>` (the schema allows ecosystem variants after a colon).
fn is_pypi(ecosystem: &str) -> bool {
    let base = ecosystem.split(':').next().unwrap_or(ecosystem);
    base.trim().eq_ignore_ascii_case("pypi")
}

fn parse_version(raw: &str) -> Option<Version> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_VERSION_CHARS {
        return None;
    }
    Version::from_str(raw).ok()
}

/// Turns one range's events into intervals, the way the schema's evaluation walk reads them:
/// sorted by version (stable, `introduced: "0"` first), an `introduced` opens an interval, a
/// `fixed` closes it before its version and a `last_affected` closes it after its version.
/// Returns whether any `fixed` event was present.
fn walk_events(
    events: &[RawEvent],
    project: &mut ParsedProject,
    mut note: impl FnMut(String),
) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Introduced,
        Fixed,
        LastAffected,
    }
    let mut parsed: Vec<(Kind, Option<Version>)> = Vec::with_capacity(events.len());
    let mut any_fixed = false;
    for event in events {
        let fields = [
            (Kind::Introduced, event.introduced.as_deref()),
            (Kind::Fixed, event.fixed.as_deref()),
            (Kind::LastAffected, event.last_affected.as_deref()),
        ];
        for (kind, raw) in fields {
            let Some(raw) = raw else {
                continue;
            };
            if kind == Kind::Fixed {
                any_fixed = true;
            }
            if kind == Kind::Introduced && raw.trim() == "0" {
                parsed.push((kind, None));
                continue;
            }
            match parse_version(raw) {
                Some(v) => parsed.push((kind, Some(v))),
                None => note(format!(
                    "event version {:?} is not a PEP 440 version; event skipped",
                    one_line(raw, 60)
                )),
            }
        }
    }
    // `None` (introduced "0") sorts before every version; the sort is stable, as the schema's
    // reference evaluation is.
    parsed.sort_by(|a, b| a.1.cmp(&b.1));
    let mut open: Option<Lo> = None;
    for (kind, at) in parsed {
        match (kind, at) {
            (Kind::Introduced, at) => {
                if open.is_none() {
                    open = Some(at.map_or(Lo::Min, Lo::Incl));
                }
            }
            (Kind::Fixed, Some(v)) => {
                project.fixes.push(v.clone());
                if let Some(lo) = open.take() {
                    project.spans.push((lo, Hi::Excl(v)));
                }
            }
            (Kind::LastAffected, Some(v)) => {
                if let Some(lo) = open.take() {
                    project.spans.push((lo, Hi::Incl(v)));
                }
            }
            (Kind::Fixed | Kind::LastAffected, None) => {}
        }
    }
    if let Some(lo) = open {
        project.spans.push((lo, Hi::Max));
    }
    any_fixed
}

/// OSSF malware reports list the digests of the offending files under
/// `database_specific.indicators.package_integrity[].hashes.sha256`; a file can be refused by
/// digest even when its version string is reused.
fn collect_file_hashes(
    specific: Option<&Value>,
    project: &mut ParsedProject,
    mut note: impl FnMut(String),
) {
    let Some(entries) = specific
        .and_then(|d| d.get("indicators"))
        .and_then(|i| i.get("package_integrity"))
        .and_then(Value::as_array)
    else {
        return;
    };
    for entry in entries {
        let Some(sha) = entry
            .get("hashes")
            .and_then(|h| h.get("sha256"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        match parse_sha256(sha) {
            Some(digest) => project.files.push(digest),
            None => note(format!(
                "package_integrity sha256 {:?} is not 64 hex digits",
                one_line(sha, 80)
            )),
        }
    }
}

/// The highest severity any CVSS v3 or v4 vector in `entries` scores.
fn severity_of(entries: &[RawSeverity]) -> Option<Severity> {
    entries
        .iter()
        .filter_map(|entry| {
            let kind = entry.kind.as_deref()?;
            let vector = entry.score.as_deref()?.trim();
            if vector.len() > 256 {
                return None;
            }
            if kind.eq_ignore_ascii_case("CVSS_V3") {
                cvss_v3_severity(vector)
            } else if kind.eq_ignore_ascii_case("CVSS_V4") {
                cvss_v4_severity(vector)
            } else {
                None
            }
        })
        .max()
}

/// The `cvss` crate scores a v3 vector with missing base metrics as if they were zero; a vector
/// without all eight is not a score, so it must name each of them.
fn cvss_v3_severity(vector: &str) -> Option<Severity> {
    const BASE: [&str; 8] = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
    let present = |metric: &str| {
        vector
            .split('/')
            .skip(1)
            .any(|part| part.split(':').next() == Some(metric))
    };
    if !vector.starts_with("CVSS:3.") || !BASE.iter().all(|m| present(m)) {
        return None;
    }
    let parsed = cvss::v3::Vector::from_str(vector).ok()?;
    Severity::from_score(parsed.score().value())
}

fn cvss_v4_severity(vector: &str) -> Option<Severity> {
    if !vector.starts_with("CVSS:4.") {
        return None;
    }
    let parsed = cvss::v4::Vector::from_str(vector).ok()?;
    Severity::from_score(parsed.score().value())
}

/// OSV ids and aliases are short ASCII tokens (`PYSEC-2021-839`, `GHSA-…`, `CVE-…`); anything
/// else would end up verbatim in logs and pages, so it is not accepted.
fn clean_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ID_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    ok.then(|| raw.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Building the index

fn build(parsed: Vec<ParsedRecord>, report: &mut LoadReport, notes: &mut Notes) -> OsvDb {
    // The same id can come from several sources (the PyPA database and OSV's export both
    // carry PYSEC records); the most recently modified copy speaks for it, first one on a tie.
    let mut newest: HashMap<&str, usize> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        report.newest = report.newest.max(p.record.modified);
        match newest.get_mut(p.record.id.as_str()) {
            Some(best) => {
                report.duplicates += 1;
                let current = parsed.get(*best).and_then(|b| b.record.modified);
                if p.record.modified > current {
                    *best = i;
                }
            }
            None => {
                newest.insert(p.record.id.as_str(), i);
            }
        }
    }
    let mut keep: Vec<bool> = vec![false; parsed.len()];
    for &i in newest.values() {
        if let Some(slot) = keep.get_mut(i) {
            *slot = true;
        }
    }

    let mut db = OsvDb::default();
    let mut builders: HashMap<String, ProjectBuilder> = HashMap::new();
    for (p, keep) in parsed.into_iter().zip(keep) {
        if !keep {
            continue;
        }
        if p.withdrawn {
            report.withdrawn += 1;
            continue;
        }
        if p.not_pypi {
            report.not_pypi += 1;
            continue;
        }
        let Ok(index) = u32::try_from(db.records.len()) else {
            break;
        };
        let malware = p.record.kind == RecordKind::Malware;
        for project in p.projects {
            let builder = builders.entry(project.name).or_default();
            builder.add(index, malware, project.spans, project.fixes, project.files);
        }
        db.by_id.insert(p.record.id.clone(), index);
        db.records.push(p.record);
    }
    report.records = db.records.len();
    for (name, builder) in builders {
        match builder.finish() {
            Some(index) => {
                db.projects.insert(name, index);
            }
            None => notes.push(format!(
                "project {name}: too many versions to index; skipped"
            )),
        }
    }
    db
}

#[derive(Default)]
struct ProjectBuilder {
    groups: Vec<PendingGroup>,
    files: Vec<([u8; 32], u32)>,
}

/// One record's intervals for a project, before they are turned into ranks.
struct PendingGroup {
    record: u32,
    malware: bool,
    spans: Vec<(Lo, Hi)>,
    fixes: Vec<Version>,
}

impl ProjectBuilder {
    fn add(
        &mut self,
        record: u32,
        malware: bool,
        spans: Vec<(Lo, Hi)>,
        fixes: Vec<Version>,
        files: Vec<[u8; 32]>,
    ) {
        self.files.extend(files.into_iter().map(|d| (d, record)));
        self.groups.push(PendingGroup {
            record,
            malware,
            spans,
            fixes,
        });
    }

    fn finish(self) -> Option<ProjectIndex> {
        let mut bounds: Vec<Version> = Vec::new();
        for PendingGroup { spans, fixes, .. } in &self.groups {
            for (lo, hi) in spans {
                if let Lo::Incl(v) = lo {
                    bounds.push(v.clone());
                }
                if let Hi::Excl(v) | Hi::Incl(v) = hi {
                    bounds.push(v.clone());
                }
            }
            bounds.extend(fixes.iter().cloned());
        }
        bounds.sort_unstable();
        bounds.dedup();
        // Ranks go up to 2 * len + 2 and u32::MAX means "no upper bound".
        if bounds.len() >= (u32::MAX as usize - 4) / 2 {
            return None;
        }
        let rank_of = |v: &Version| -> u32 {
            let i = bounds.binary_search(v).unwrap_or_else(|i| i);
            u32::try_from(i).unwrap_or(u32::MAX / 2 - 2)
        };
        let mut index = ProjectIndex::default();
        for PendingGroup {
            record,
            malware,
            spans,
            fixes,
        } in &self.groups
        {
            let mut ranks: Vec<(u32, u32)> = spans
                .iter()
                .map(|(lo, hi)| {
                    let lo = match lo {
                        Lo::Min => 0,
                        Lo::Incl(v) => 2 * rank_of(v) + 1,
                    };
                    let hi = match hi {
                        Hi::Max => u32::MAX,
                        Hi::Excl(v) => 2 * rank_of(v) + 1,
                        Hi::Incl(v) => 2 * rank_of(v) + 2,
                    };
                    (lo, hi)
                })
                .filter(|(lo, hi)| lo < hi)
                .collect();
            ranks.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranks.len());
            for (lo, hi) in ranks {
                match merged.last_mut() {
                    Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                    _ => merged.push((lo, hi)),
                }
            }
            let group = to_u32(index.groups.len());
            if *malware && index.whole_project.is_none() && merged.contains(&(0, u32::MAX)) {
                index.whole_project = Some(*record);
            }
            index
                .spans
                .extend(merged.into_iter().map(|(lo, hi)| Span { lo, hi, group }));
            let mut fix_ranks: Vec<u32> = fixes.iter().map(|v| 2 * rank_of(v) + 1).collect();
            fix_ranks.sort_unstable();
            fix_ranks.dedup();
            let fix_start = index.fixes.len();
            index.fixes.extend(fix_ranks);
            index.groups.push(Group {
                record: *record,
                fixes: (to_u32(fix_start), to_u32(index.fixes.len())),
            });
        }
        index.spans.sort_unstable();
        index.block_max = index
            .spans
            .chunks(BLOCK)
            .map(|chunk| chunk.iter().map(|s| s.hi).max().unwrap_or(0))
            .collect();
        index.super_max = index
            .block_max
            .chunks(SUPER / BLOCK)
            .map(|chunk| chunk.iter().copied().max().unwrap_or(0))
            .collect();
        index.bounds = bounds;
        index.files = self.files;
        index.files.sort_unstable();
        index.files.dedup_by_key(|(d, _)| *d);
        Some(index)
    }
}

/// Internal lengths are bounded by the caps above, far below `u32::MAX`.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn v(s: &str) -> Version {
        Version::from_str(s).unwrap()
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn zip_of(path: &Path, files: &[(&str, &[u8])]) {
        let file = fs::File::create(path).unwrap();
        let mut z = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap();
    }

    fn ids<'a>(it: impl Iterator<Item = &'a OsvRecord>) -> Vec<&'a str> {
        let mut ids: Vec<&str> = it.map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids
    }

    const PYSEC_YAML: &str = r#"
id: PYSEC-2021-1
summary: "Path traversal\nin   the thing"
details: long text
aliases:
- CVE-2021-1
- GHSA-aaaa-bbbb-cccc
modified: 2021-12-13T06:35:02.857370Z
affected:
- package:
    name: Foo_Bar
    ecosystem: PyPI
  ranges:
  - type: GIT
    repo: https://example.invalid/foo
    events:
    - introduced: 0123abc
    - fixed: 4567def
  - type: ECOSYSTEM
    events:
    - introduced: "0"
    - fixed: 1.10
    - introduced: 2.0
    - fixed: 2.3.1
severity:
- type: CVSS_V3
  score: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H
"#;

    const GHSA_JSON: &str = r#"{
  "id": "GHSA-xxxx-yyyy-zzzz",
  "modified": "2024-01-02T03:04:05Z",
  "details": "No summary here.",
  "affected": [
    {"package": {"ecosystem": "PyPI", "name": "foo-bar"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.5"}, {"last_affected": "1.7"}]}]},
    {"package": {"ecosystem": "npm", "name": "other"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}
  ],
  "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-22"]}
}"#;

    #[test]
    fn loads_yaml_and_json_from_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "vulns/foo-bar/PYSEC-2021-1.yaml", PYSEC_YAML);
        write(tmp.path(), "ghsa/GHSA-xxxx-yyyy-zzzz.json", GHSA_JSON);
        write(tmp.path(), "README.md", "# not a record");
        write(tmp.path(), "vulns/.id-allocator", "whatever");
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(report.records, 2, "{report:?}");
        assert_eq!(report.files, 2);
        assert!(report.skipped.is_empty(), "{report:?}");
        assert_eq!(
            report.newest,
            Some(Timestamp::from_str("2024-01-02T03:04:05Z").unwrap())
        );
        assert!(db.has_project("foo-bar"));
        assert!(!db.has_project("Foo_Bar"));

        // introduced 0 / fixed 1.10 (unquoted YAML must stay 1.10, not the float 1.1).
        assert_eq!(
            ids(db.affecting("foo-bar", &v("0.0.1.dev0"))),
            ["PYSEC-2021-1"]
        );
        assert_eq!(ids(db.affecting("foo-bar", &v("1.9"))), ["PYSEC-2021-1"]);
        assert_eq!(ids(db.affecting("foo-bar", &v("1.2"))), ["PYSEC-2021-1"]);
        assert!(ids(db.affecting("foo-bar", &v("1.10"))).is_empty());
        assert!(ids(db.affecting("foo-bar", &v("1.10.1"))).is_empty());
        // introduced 1.5 / last_affected 1.7 overlaps the first range.
        assert_eq!(
            ids(db.affecting("foo-bar", &v("1.7"))),
            ["GHSA-xxxx-yyyy-zzzz", "PYSEC-2021-1"]
        );
        assert_eq!(ids(db.affecting("foo-bar", &v("1.7.0"))).len(), 2);
        assert_eq!(
            ids(db.affecting("foo-bar", &v("1.7.0.post1"))),
            ["PYSEC-2021-1"]
        );
        assert!(ids(db.affecting("foo-bar", &v("1.12"))).is_empty());
        // Second ECOSYSTEM interval.
        assert_eq!(ids(db.affecting("foo-bar", &v("2.0"))), ["PYSEC-2021-1"]);
        assert_eq!(ids(db.affecting("foo-bar", &v("2.3.0"))), ["PYSEC-2021-1"]);
        assert!(ids(db.affecting("foo-bar", &v("2.3.1"))).is_empty());
        assert!(ids(db.affecting("foo-bar", &v("99"))).is_empty());
        // npm entry ignored.
        assert!(!db.has_project("other"));
        assert!(ids(db.affecting("other", &v("1"))).is_empty());

        let pysec = db.record("PYSEC-2021-1").unwrap();
        assert_eq!(pysec.summary, "Path traversal in the thing");
        assert_eq!(pysec.aliases, ["CVE-2021-1", "GHSA-aaaa-bbbb-cccc"]);
        assert_eq!(pysec.kind, RecordKind::Vulnerability);
        assert_eq!(pysec.severity, Some(Severity::Critical));
        assert!(pysec.fix_available);
        assert!(pysec.source.ends_with("PYSEC-2021-1.yaml"));
        assert_eq!(
            pysec.modified,
            Some(Timestamp::from_str("2021-12-13T06:35:02.857370Z").unwrap())
        );
        let ghsa = db.record("GHSA-xxxx-yyyy-zzzz").unwrap();
        assert_eq!(ghsa.summary, "No summary here.");
        assert_eq!(ghsa.severity, Some(Severity::Medium));
        assert!(!ghsa.fix_available);

        // The lowest fix above the queried version.
        let fixes: Vec<String> = db
            .hits("foo-bar", &v("2.1"))
            .map(|h| h.fixed_in.unwrap().to_string())
            .collect();
        assert_eq!(fixes, ["2.3.1"]);
        let fixes: Vec<Option<String>> = db
            .hits("foo-bar", &v("1.6"))
            .map(|h| h.fixed_in.map(ToString::to_string))
            .collect();
        assert!(fixes.contains(&Some("1.10".to_owned())));
        assert!(fixes.contains(&None));
    }

    #[test]
    fn explicit_versions_compare_as_pep440() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "a.json",
            r#"{"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
                "versions": ["2.0", "3.0rc1", "not a version", "1!0.5"]}]}"#,
        );
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(report.records, 1);
        for hit in ["2.0", "2.0.0", "2", "3.0rc1", "3.0.0rc1", "1!0.5"] {
            assert_eq!(ids(db.affecting("p", &v(hit))), ["PYSEC-1"], "{hit}");
        }
        for miss in ["2.0.1", "1.9", "3.0", "0.5", "2.0.post1", "2.0+local"] {
            assert!(ids(db.affecting("p", &v(miss))).is_empty(), "{miss}");
        }
        assert!(db.malicious_project("p").is_none());
    }

    #[test]
    fn withdrawn_records_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let body = |id: &str, extra: &str| {
            format!(
                r#"{{"id": "{id}", {extra} "affected": [{{"package": {{"ecosystem": "PyPI", "name": "w"}},
                 "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}]}}]}}]}}"#
            )
        };
        write(
            tmp.path(),
            "osv/malicious/pypi/w/MAL-2024-1.json",
            &body("MAL-2024-1", ""),
        );
        write(
            tmp.path(),
            "osv/withdrawn/pypi/w/MAL-2024-2.json",
            &body("MAL-2024-2", ""),
        );
        write(
            tmp.path(),
            "osv/malicious/pypi/w/MAL-2024-3.json",
            &body("MAL-2024-3", r#""withdrawn": "2024-05-01T00:00:00Z","#),
        );
        write(
            tmp.path(),
            "x/PYSEC-1.yaml",
            "id: PYSEC-1\nwithdrawn: 2023-08-22T06:18:00Z\naffected: []\n",
        );
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(report.records, 1);
        assert_eq!(report.withdrawn, 3);
        assert_eq!(ids(db.affecting("w", &v("1"))), ["MAL-2024-1"]);
        assert!(db.record("MAL-2024-2").is_none());

        // A directory below withdrawn/ given as the source.
        let (db, report) = OsvDb::load(&[tmp.path().join("osv/withdrawn/pypi")]).unwrap();
        assert_eq!((report.records, report.withdrawn), (0, 1));
        assert!(db.is_empty());
    }

    const MAL_FILES: &str = r#"{
  "id": "MAL-2026-1",
  "summary": "Malicious code in evil-pkg (PyPI)",
  "modified": "2026-09-04T00:47:46.156672516Z",
  "affected": [{
    "package": {"name": "Evil.Pkg", "ecosystem": "PyPI"},
    "versions": ["0.0.1"],
    "database_specific": {
      "cwes": [{"cweId": "CWE-506"}],
      "indicators": {
        "package_integrity": [
          {"filename": "evil_pkg-0.0.1-py3-none-any.whl",
           "hashes": {"md5": "c9a0424470c5d49ed5173303f41b874e",
                      "sha256": "C8784CF0AA8FA13A43614FBD6D51902FEEECAFDC06FC4DB2695FD2572DB66DB8"}},
          {"filename": "evil_pkg-0.0.1.tar.gz", "hashes": {"sha256": "nothex"}}
        ]
      }
    }
  }]
}"#;

    const MAL_ALL: &str = r#"{
  "id": "MAL-2024-10238",
  "summary": "Malicious code in typo (PyPI)",
  "affected": [{"package": {"ecosystem": "PyPI:extra", "name": "typo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
}"#;

    #[test]
    fn malware_by_file_digest_and_whole_project() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "evil/MAL-2026-1.json", MAL_FILES);
        write(tmp.path(), "typo/MAL-2024-10238.json", MAL_ALL);
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(report.records, 2);
        assert_eq!(report.skipped.len(), 1, "bad digest noted: {report:?}");
        let sha = "c8784cf0aa8fa13a43614fbd6d51902feeecafdc06fc4db2695fd2572db66db8";
        let hit = db.malicious_file("evil-pkg", sha).unwrap();
        assert_eq!(hit.id, "MAL-2026-1");
        assert_eq!(hit.kind, RecordKind::Malware);
        assert!(db.malicious_file("evil-pkg", &sha.to_uppercase()).is_some());
        assert!(db.malicious_file("evil-pkg", &"0".repeat(64)).is_none());
        assert!(db.malicious_file("evil-pkg", "zz").is_none());
        assert!(db.malicious_file("typo", sha).is_none());
        assert!(db.malicious_project("evil-pkg").is_none());
        assert_eq!(ids(db.affecting("evil-pkg", &v("0.0.1"))), ["MAL-2026-1"]);
        assert!(ids(db.affecting("evil-pkg", &v("0.0.2"))).is_empty());

        let whole = db.malicious_project("typo").unwrap();
        assert_eq!(whole.id, "MAL-2024-10238");
        assert!(!whole.fix_available);
        assert_eq!(
            ids(db.affecting("typo", &v("0.0.0.dev0"))),
            ["MAL-2024-10238"]
        );
        assert_eq!(ids(db.affecting("typo", &v("9999"))), ["MAL-2024-10238"]);
    }

    #[test]
    fn vulnerability_for_every_version_is_not_malware() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            "GHSA-1.json",
            r#"{"id": "GHSA-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
        );
        let (db, _) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert!(db.malicious_project("x").is_none());
        assert_eq!(ids(db.affecting("x", &v("1"))), ["GHSA-1"]);
    }

    #[test]
    fn loads_a_zip_and_names_members() {
        let tmp = tempfile::tempdir().unwrap();
        let zip_path = tmp.path().join("all.zip");
        zip_of(
            &zip_path,
            &[
                ("LICENSE", b"license text"),
                ("vulns/.id-allocator", b"42"),
                ("vulns/foo-bar/PYSEC-2021-1.yaml", PYSEC_YAML.as_bytes()),
                ("GHSA-xxxx-yyyy-zzzz.json", GHSA_JSON.as_bytes()),
                ("MAL-2024-10238.json", MAL_ALL.as_bytes()),
                ("withdrawn/MAL-2026-1.json", MAL_FILES.as_bytes()),
            ],
        );
        let (db, report) = OsvDb::load(std::slice::from_ref(&zip_path)).unwrap();
        assert_eq!(report.files, 4);
        assert_eq!(report.records, 3);
        assert_eq!(report.withdrawn, 1);
        let rec = db.record("PYSEC-2021-1").unwrap();
        assert_eq!(
            rec.source,
            format!("{}:vulns/foo-bar/PYSEC-2021-1.yaml", zip_path.display())
        );
        assert!(db.malicious_project("typo").is_some());
        assert!(!db.has_project("evil-pkg"));
    }

    #[test]
    fn duplicate_ids_keep_the_newest_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = |modified: &str, fixed: &str| {
            format!(
                r#"{{"id": "PYSEC-9", "modified": "{modified}", "affected": [{{"package": {{"ecosystem": "PyPI", "name": "d"}},
                 "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#
            )
        };
        write(
            tmp.path(),
            "a/PYSEC-9.json",
            &rec("2024-01-01T00:00:00Z", "2.0"),
        );
        write(
            tmp.path(),
            "b/PYSEC-9.json",
            &rec("2023-01-01T00:00:00Z", "1.0"),
        );
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!((report.records, report.duplicates), (1, 1));
        assert_eq!(ids(db.affecting("d", &v("1.5"))), ["PYSEC-9"]);
    }

    #[test]
    fn broken_records_are_skipped_not_fatal() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "good.yaml", PYSEC_YAML);
        write(tmp.path(), "bad.json", "{ this is not json");
        write(tmp.path(), "bad.yaml", "id: [unclosed\n  - :");
        write(tmp.path(), "noid.json", r#"{"summary": "no id"}"#);
        write(tmp.path(), "evilid.json", "{\"id\": \"X\\u001b[31m\"}");
        write(
            tmp.path(),
            "events.json",
            r#"{"id": "PYSEC-2", "affected": [{"package": {"ecosystem": "PyPI", "name": "e"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "banana!"}]}]},
                {"package": {"ecosystem": "PyPI", "name": "../etc"}}]}"#,
        );
        let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
        assert_eq!(report.records, 2, "{report:?}");
        assert_eq!(report.skipped.len(), 6, "{:#?}", report.skipped);
        assert!(report.skipped.iter().any(|l| l.contains("banana")));
        assert!(report.skipped.iter().all(|l| !l.contains('\u{1b}')));
        // The unparsable fixed event is skipped, so the range stays open.
        assert_eq!(ids(db.affecting("e", &v("5"))), ["PYSEC-2"]);
        assert!(ids(db.affecting("e", &v("0.9"))).is_empty());
    }

    #[test]
    fn oversize_records_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut big = String::from(r#"{"id": "PYSEC-1", "details": ""#);
        big.push_str(&"a".repeat(MAX_RECORD_BYTES as usize));
        big.push_str(r#""}"#);
        let zip_path = tmp.path().join("big.zip");
        zip_of(
            &zip_path,
            &[
                ("ok.yaml", PYSEC_YAML.as_bytes()),
                ("big.json", big.as_bytes()),
            ],
        );
        let err = OsvDb::load(&[zip_path]).unwrap_err();
        assert!(matches!(err, OsvError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("big.json"), "{err}");

        let dir = tmp.path().join("dir");
        write(&dir, "big.json", &big);
        let err = OsvDb::load(&[dir]).unwrap_err();
        assert!(matches!(err, OsvError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn unusable_sources_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let err = OsvDb::load(&[tmp.path().join("missing")]).unwrap_err();
        assert!(matches!(err, OsvError::Missing { .. }));
        let not_zip = write(tmp.path(), "x.zip", "not a zip");
        let err = OsvDb::load(&[not_zip]).unwrap_err();
        assert!(matches!(err, OsvError::Zip { .. }));
        let other = write(tmp.path(), "x.txt", "hello");
        let err = OsvDb::load(&[other]).unwrap_err();
        assert!(matches!(err, OsvError::NotASource { .. }));
        // A single record file is a source too.
        let one = write(tmp.path(), "one.json", GHSA_JSON);
        let (db, _) = OsvDb::load(&[one]).unwrap();
        assert_eq!(db.len(), 1);
    }

    #[test]
    fn severity_sources() {
        assert_eq!(Severity::from_label("moderate"), Some(Severity::Medium));
        assert_eq!(Severity::from_label("CRITICAL"), Some(Severity::Critical));
        assert_eq!(Severity::from_label("unknown"), None);
        let sev = |kind: &str, score: &str| {
            severity_of(&[RawSeverity {
                kind: Some(kind.to_owned()),
                score: Some(score.to_owned()),
            }])
        };
        assert_eq!(
            sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(Severity::Critical)
        );
        assert_eq!(
            sev("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N"),
            Some(Severity::Low)
        );
        assert_eq!(
            sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
            Some(Severity::Medium)
        );
        assert_eq!(
            sev("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
            Some(Severity::High)
        );
        assert_eq!(
            sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),
            None
        );
        // Missing base metrics are not a score.
        assert_eq!(sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H"), None);
        assert_eq!(sev("CVSS_V3", "garbage"), None);
        assert_eq!(
            sev(
                "CVSS_V4",
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
            ),
            Some(Severity::Critical)
        );
        assert_eq!(sev("CVSS_V4", "CVSS:4.0/AV:N"), None);
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(one_line("a\n\tb\u{202E}c\u{1b}", 50), "a bc");
        let long = one_line(&"x".repeat(500), MAX_SUMMARY_CHARS);
        assert_eq!(long.chars().count(), MAX_SUMMARY_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(
            clean_id("GHSA-abcd-efgh-ijkl").as_deref(),
            Some("GHSA-abcd-efgh-ijkl")
        );
        assert_eq!(clean_id("bad id"), None);
    }

    #[test]
    fn db_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<OsvDb>();
        let db = OsvDb::empty();
        assert!(db.is_empty());
        assert!(db.affecting("x", &v("1")).next().is_none());
    }

    /// Loads the real PyPA advisory database snapshot and times loading and queries. Run with
    /// `cargo test --release --lib data::osv -- --ignored --nocapture`.
    #[test]
    #[ignore = "needs /work/shared/data and a release build for meaningful timings"]
    fn real_pypa_zip() {
        let path = PathBuf::from("/work/shared/data/pypa-advisory-database-vulns-2024-10-10.zip");
        let started = std::time::Instant::now();
        let (db, report) = OsvDb::load(std::slice::from_ref(&path)).unwrap();
        let elapsed = started.elapsed();
        println!(
            "loaded {} records ({} files, {} withdrawn, {} duplicates, {} not PyPI, {} notes) in {elapsed:?}; newest {:?}",
            report.records,
            report.files,
            report.withdrawn,
            report.duplicates,
            report.not_pypi,
            report.skipped_total,
            report.newest
        );
        for line in &report.skipped {
            println!("  note: {line}");
        }
        assert_eq!(report.files, 2661);
        assert_eq!(report.withdrawn, 10);
        assert_eq!(report.records, 2651);

        let mut busiest: Vec<(&str, usize)> = db
            .projects
            .iter()
            .map(|(name, index)| (name.as_str(), index.groups.len()))
            .collect();
        busiest.sort_by_key(|&(name, n)| (std::cmp::Reverse(n), name));
        println!("busiest projects: {:?}", &busiest[..5]);
        for (project, version) in [
            ("tensorflow-cpu", "1.0"),
            ("tensorflow-cpu", "2.4.0"),
            ("tensorflow-cpu", "2.17.0"),
            ("tensorflow-cpu", "99.0"),
            ("django", "1.11"),
            ("django", "3.2.0"),
            ("django", "4.2.16"),
            ("django", "5.1.1"),
            ("requests", "2.31.0"),
            ("requests", "2.32.3"),
        ] {
            let version = v(version);
            let n = db.affecting(project, &version).count();
            let rounds = 200_000u32;
            let started = std::time::Instant::now();
            let mut total = 0usize;
            for _ in 0..rounds {
                total += std::hint::black_box(&db)
                    .affecting(std::hint::black_box(project), &version)
                    .count();
            }
            let per = started.elapsed() / rounds;
            assert_eq!(total, n * rounds as usize);
            println!("{project} {version}: {n} records, {per:?} per query");
        }
        let started = std::time::Instant::now();
        for _ in 0..200_000u32 {
            std::hint::black_box(
                db.affecting(std::hint::black_box("no-such-project"), &v("1"))
                    .count(),
            );
        }
        println!("miss: {:?} per query", started.elapsed() / 200_000);
    }
}
