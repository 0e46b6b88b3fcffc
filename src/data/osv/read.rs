//! Reading OSV sources: a folder of record files, a zip of them, or one file; sizes and
//! counts capped, several files parsed at once.

use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::*;
use crate::sanitize::one_line;

/// Lines for `LoadReport::skipped`, capped, with the true count kept.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub(super) lines: Vec<String>,
    pub(super) total: usize,
}

impl Notes {
    pub(super) fn push(&mut self, line: String) {
        self.total += 1;
        if self.lines.len() < MAX_SKIPPED_LINES {
            self.lines.push(line);
        }
    }

    pub(super) fn absorb(&mut self, other: Notes) {
        let extra = other.total.saturating_sub(other.lines.len());
        for line in other.lines {
            self.push(line);
        }
        self.total += extra;
    }
}

/// The result of reading one record file.
pub(super) struct Outcome {
    pub(super) record: Option<ParsedRecord>,
    pub(super) notes: Notes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Yaml,
}

/// Record files are recognized by extension; anything else in a checkout or archive (LICENSE,
/// README.md, `.id-allocator`) is not a record and is passed over without a note.
pub(super) fn record_format(name: &str) -> Option<Format> {
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
pub(super) fn path_says_withdrawn<'a>(mut components: impl Iterator<Item = &'a str>) -> bool {
    components.any(|c| c.eq_ignore_ascii_case("withdrawn"))
}

pub(super) fn load_source(path: &Path) -> Result<Vec<Outcome>, OsvError> {
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

pub(super) struct FileJob {
    pub(super) path: PathBuf,
    pub(super) format: Format,
    pub(super) withdrawn: bool,
}

pub(super) fn load_dir(root: &Path) -> Result<Vec<Outcome>, OsvError> {
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
pub(super) fn walk(
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

pub(super) fn read_file_job(job: &FileJob, budget: &AtomicU64) -> Result<Outcome, OsvError> {
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
pub(super) fn charge(bytes: &[u8], what: &str, budget: &AtomicU64) -> Result<(), OsvError> {
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

pub(super) fn load_zip(path: &Path) -> Result<Vec<Outcome>, OsvError> {
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

pub(super) fn read_zip_member(
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
pub(super) fn run_parallel<S, T, I, F>(count: usize, init: I, work: F) -> Result<Vec<T>, OsvError>
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
