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
use std::path::PathBuf;

use jiff::Timestamp;
use pep440_rs::Version;

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
pub enum CvssSeverity {
    Low,
    Medium,
    High,
    Critical,
}

impl CvssSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            CvssSeverity::Low => "low",
            CvssSeverity::Medium => "medium",
            CvssSeverity::High => "high",
            CvssSeverity::Critical => "critical",
        }
    }

    /// GHSA's `database_specific.severity` labels, which OSV.dev passes through unchanged.
    fn from_label(label: &str) -> Option<Self> {
        let label = label.trim();
        if label.eq_ignore_ascii_case("low") {
            Some(CvssSeverity::Low)
        } else if label.eq_ignore_ascii_case("moderate") || label.eq_ignore_ascii_case("medium") {
            Some(CvssSeverity::Medium)
        } else if label.eq_ignore_ascii_case("high") {
            Some(CvssSeverity::High)
        } else if label.eq_ignore_ascii_case("critical") {
            Some(CvssSeverity::Critical)
        } else {
            None
        }
    }

    /// The CVSS qualitative scale; a score of 0 means "no impact", which is no severity at all.
    fn from_score(score: f64) -> Option<Self> {
        if !score.is_finite() || score <= 0.0 {
            None
        } else if score < 4.0 {
            Some(CvssSeverity::Low)
        } else if score < 7.0 {
            Some(CvssSeverity::Medium)
        } else if score < 9.0 {
            Some(CvssSeverity::High)
        } else {
            Some(CvssSeverity::Critical)
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
    pub severity: Option<CvssSeverity>,
    pub modified: Option<Timestamp>,
    /// Where the record was read: `archive.zip:member/path` or the file's path.
    pub source: String,
    /// Any range of the record has a `fixed` event, so upgrading can help.
    pub fix_available: bool,
}

/// One record that affects a queried release.
#[derive(Clone, Copy, Debug)]
pub struct VersionHit<'a> {
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
    type Item = VersionHit<'a>;

    fn next(&mut self) -> Option<VersionHit<'a>> {
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
            return Some(VersionHit { record, fixed_in });
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

mod read;
mod record;
#[cfg(test)]
mod tests;

use read::*;
use record::*;

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
