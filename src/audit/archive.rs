//! The wheel as a zip archive: framing checks and bounded reads of its members.
//!
//! Installers and scanners that read the same zip differently are an attack (uv's 0.8.6 and
//! 0.11.28 security releases; a scanner that saw no files while the installer installed code).
//! So the central directory is compared with every local header, entries may not overlap or hide
//! bytes between them, and every member is read through a bound: a member that inflates past its
//! declared size, or declares a size out of proportion to its compressed bytes, is a finding and
//! never a full read. Nothing is extracted to disk except, when very large, a native binary that
//! has to be parsed (spilled to an unlinked temporary file and mapped).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use zip::ZipArchive;

use super::finding::{Finding, FindingCode};

/// Bounds on what one wheel may make pipwall read. The defaults fit the largest real wheels
/// (multi-GB CUDA builds) and refuse what only a bomb needs.
#[derive(Clone, Debug)]
pub struct ArchiveLimits {
    pub max_entries: usize,
    pub max_member_size: u64,
    pub max_total_size: u64,
    /// A member larger than this whose ratio to its compressed size is above `bomb_ratio` is a
    /// zip bomb (the index's own upload rule is 64 MiB and 50×; real wheels stay under 10×).
    pub bomb_min_size: u64,
    pub bomb_ratio: u64,
    /// Metadata files (`METADATA`, `RECORD`, `WHEEL`) larger than this are not read.
    pub max_metadata_size: u64,
    /// Native members above this are spilled to a temporary file instead of held in memory.
    pub spill_threshold: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_entries: 200_000,
            max_member_size: 8 << 30,
            max_total_size: 32 << 30,
            bomb_min_size: 64 << 20,
            bomb_ratio: 100,
            max_metadata_size: 64 << 20,
            spill_threshold: 16 << 20,
        }
    }
}

/// One member of the archive as its central directory describes it, checked against its local
/// header.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Index in the central directory.
    pub index: usize,
    pub name: String,
    pub size: u64,
    pub compressed_size: u64,
    pub header_start: u64,
    pub crc32: u32,
    pub deflated: bool,
    pub is_dir: bool,
    /// False when the name or type made it unsafe to read; it is still listed so RECORD checks
    /// see it.
    pub readable: bool,
}

pub struct Archive {
    zip: ZipArchive<SharedFile>,
    entries: Vec<Entry>,
}

/// One open file read at independent positions, so several threads can inflate members of the
/// same archive at once (each with its own clone of the parsed central directory).
#[derive(Clone)]
pub struct SharedFile {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl SharedFile {
    fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file: Arc::new(file),
            pos: 0,
            len,
        })
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        Ok(self.pos)
    }
}

const LOCAL_HEADER_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_HEADER_LEN: u64 = 30;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_ENCRYPTED: u16 = 1;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

impl Archive {
    /// Opens the archive and checks its framing. A wheel whose framing is unusable gives only a
    /// finding: there is nothing more that can safely be said about it.
    pub fn open(
        path: &Path,
        limits: &ArchiveLimits,
        findings: &mut Vec<Finding>,
    ) -> io::Result<Option<Self>> {
        let file = File::open(path)?;
        let mut raw = file.try_clone()?;
        let zip = match ZipArchive::new(SharedFile::new(file)?) {
            Ok(zip) => zip,
            Err(zip::result::ZipError::Io(e)) => return Err(e),
            Err(e) => {
                findings.push(Finding::new(
                    FindingCode::ZipInvalid,
                    "",
                    format!("not a readable zip archive: {e}"),
                ));
                return Ok(None);
            }
        };
        if zip.len() > limits.max_entries {
            findings.push(Finding::new(
                FindingCode::ZipBomb,
                "",
                format!(
                    "{} entries, more than the limit of {}",
                    zip.len(),
                    limits.max_entries
                ),
            ));
            return Ok(None);
        }
        if zip.has_duplicate_names() {
            findings.push(Finding::new(
                FindingCode::ZipDuplicateEntry,
                "",
                "the central directory names the same member twice; installers disagree on which copy wins",
            ));
            return Ok(None);
        }
        if zip.offset() != 0 {
            findings.push(Finding::new(
                FindingCode::ZipFraming,
                "",
                format!(
                    "{} bytes precede the first entry (a file glued in front of the archive)",
                    zip.offset()
                ),
            ));
        }
        let mut archive = Self {
            zip,
            entries: Vec::new(),
        };
        archive.scan(&mut raw, limits, findings)?;
        Ok(Some(archive))
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Another reader of the same archive, for a second thread.
    pub fn reader(&self) -> Self {
        Self {
            zip: self.zip.clone(),
            entries: Vec::new(),
        }
    }

    fn scan(
        &mut self,
        raw: &mut File,
        limits: &ArchiveLimits,
        findings: &mut Vec<Finding>,
    ) -> io::Result<()> {
        let mut total: u64 = 0;
        let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(self.zip.len());
        let mut seen_folded = std::collections::HashSet::with_capacity(self.zip.len());
        for index in 0..self.zip.len() {
            let file = match self.zip.by_index_raw(index) {
                Ok(f) => f,
                Err(zip::result::ZipError::Io(e)) => return Err(e),
                Err(e) => {
                    findings.push(Finding::new(
                        FindingCode::ZipInvalid,
                        "",
                        format!("entry {index}: {e}"),
                    ));
                    continue;
                }
            };
            let raw_name = file.name_raw().to_vec();
            let name = match String::from_utf8(raw_name.clone()) {
                Ok(n) => n,
                Err(_) => {
                    findings.push(Finding::new(
                        FindingCode::ZipUnsafePath,
                        String::from_utf8_lossy(&raw_name),
                        "member name is not UTF-8",
                    ));
                    continue;
                }
            };
            let mut readable = true;
            if let Err(why) = check_member_path(&name) {
                findings.push(Finding::new(FindingCode::ZipUnsafePath, name.as_str(), why));
                readable = false;
            }
            if !seen_folded.insert(name.to_lowercase()) {
                findings.push(Finding::new(
                    FindingCode::ZipDuplicateEntry,
                    name.as_str(),
                    "another member has the same name up to case; on Windows and macOS one overwrites the other",
                ));
            }
            if let Some(mode) = file.unix_mode()
                && !file_type_ok(mode, &name, findings)
            {
                readable = false;
            }
            let method = file.compression();
            let method_ok = matches!(
                method,
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated
            );
            if !method_ok {
                findings.push(Finding::new(
                    FindingCode::ZipCompression,
                    name.as_str(),
                    format!("compression method {method:?}; wheels use stored or deflate only"),
                ));
                readable = false;
            }
            let size = file.size();
            let compressed = file.compressed_size();
            let is_dir = file.is_dir();
            let header_start = file.header_start();
            let crc = file.crc32();
            let deflated = method == zip::CompressionMethod::Deflated;
            drop(file);

            if !size_is_sane(&name, size, compressed, limits, findings) {
                readable = false;
            }
            total = total.saturating_add(size);

            match check_local_header(
                raw,
                header_start,
                &raw_name,
                method_ok.then_some(method),
                crc,
                compressed,
                size,
            )? {
                Ok(data_start) => {
                    spans.push((header_start, data_start.saturating_add(compressed), index));
                }
                Err(why) => {
                    findings.push(Finding::new(FindingCode::ZipFraming, name.as_str(), why));
                    readable = false;
                }
            }
            self.entries.push(Entry {
                index,
                name,
                size,
                compressed_size: compressed,
                header_start,
                crc32: crc,
                deflated,
                is_dir,
                readable,
            });
        }
        if total > limits.max_total_size {
            findings.push(Finding::new(
                FindingCode::ZipBomb,
                "",
                format!(
                    "members declare {total} bytes in all, more than the limit of {}",
                    limits.max_total_size
                ),
            ));
            for e in &mut self.entries {
                e.readable = false;
            }
        }
        self.check_overlaps(spans, findings);
        self.entries.sort_by_key(|e| e.header_start);
        Ok(())
    }

    /// Entries must not share bytes: two central records pointing into one local entry, or a
    /// member's data running into the next header, is how one archive shows two contents.
    fn check_overlaps(&self, mut spans: Vec<(u64, u64, usize)>, findings: &mut Vec<Finding>) {
        spans.sort_unstable();
        let cd_start = self.zip.central_directory_start();
        for pair in spans.windows(2) {
            if let [(_, end, i), (next_start, _, _)] = pair
                && end > next_start
            {
                let name = self
                    .entries
                    .iter()
                    .find(|e| e.index == *i)
                    .map(|e| e.name.clone())
                    .unwrap_or_default();
                findings.push(Finding::new(
                    FindingCode::ZipFraming,
                    name,
                    "entry overlaps the next one",
                ));
            }
        }
        if let Some((_, end, i)) = spans.last()
            && *end > cd_start
        {
            let name = self
                .entries
                .iter()
                .find(|e| e.index == *i)
                .map(|e| e.name.clone())
                .unwrap_or_default();
            findings.push(Finding::new(
                FindingCode::ZipFraming,
                name,
                "entry runs into the central directory",
            ));
        }
    }

    /// Reads a whole member into memory, if it is no larger than `cap`.
    pub fn read_small(&mut self, entry: &Entry, cap: u64) -> Result<Vec<u8>, Finding> {
        if entry.size > cap {
            return Err(Finding::new(
                FindingCode::ZipBomb,
                entry.name.as_str(),
                format!(
                    "{} bytes, more than the {cap} read for a metadata file",
                    entry.size
                ),
            ));
        }
        let mut out = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
        self.read_member(entry, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    /// The whole inflated member, read in one go when it is no larger than `max`: libdeflate
    /// inflates a buffer whose size is known about twice as fast as a stream decoder, and the
    /// declared size bounds the output, so a lying size is caught rather than followed. `None`
    /// when the member is too large for this path (stream it with [`Self::read_member`]).
    pub fn read_whole(&mut self, entry: &Entry, max: u64) -> Option<Result<Vec<u8>, Finding>> {
        if !entry.readable || entry.size > max || entry.compressed_size > max {
            return None;
        }
        Some(self.read_whole_inner(entry))
    }

    fn read_whole_inner(&mut self, entry: &Entry) -> Result<Vec<u8>, Finding> {
        let fail = |code, why: String| Finding::new(code, entry.name.as_str(), why);
        let size = usize::try_from(entry.size).map_err(|_| {
            fail(
                FindingCode::ZipBomb,
                "member too large for this machine".into(),
            )
        })?;
        let mut raw = Vec::with_capacity(usize::try_from(entry.compressed_size).unwrap_or(0));
        self.zip
            .by_index_raw(entry.index)
            .and_then(|f| {
                f.take(entry.compressed_size)
                    .read_to_end(&mut raw)
                    .map_err(Into::into)
            })
            .map_err(|e| {
                fail(
                    FindingCode::ZipFraming,
                    format!("cannot read member data: {e}"),
                )
            })?;
        if raw.len() as u64 != entry.compressed_size {
            return Err(fail(
                FindingCode::ZipFraming,
                format!(
                    "member data is cut short ({} of {} bytes)",
                    raw.len(),
                    entry.compressed_size
                ),
            ));
        }
        let out = if entry.deflated {
            let mut out = vec![0u8; size];
            let mut inflater = libdeflater::Decompressor::new();
            match inflater.deflate_decompress(&raw, &mut out) {
                Ok(n) if n == size => out,
                Ok(n) => {
                    return Err(fail(
                        FindingCode::ZipSizeMismatch,
                        format!("holds {n} bytes but declares {size}"),
                    ));
                }
                Err(libdeflater::DecompressionError::InsufficientSpace) => {
                    return Err(fail(
                        FindingCode::ZipSizeMismatch,
                        format!("inflates past its declared size of {size} bytes"),
                    ));
                }
                Err(e) => {
                    return Err(fail(
                        FindingCode::ZipFraming,
                        format!("member data is corrupt: {e}"),
                    ));
                }
            }
        } else {
            if raw.len() != size {
                return Err(fail(
                    FindingCode::ZipSizeMismatch,
                    format!(
                        "stored member holds {} bytes but declares {size}",
                        raw.len()
                    ),
                ));
            }
            raw
        };
        let mut crc = libdeflater::Crc::new();
        crc.update(&out);
        if crc.sum() != entry.crc32 {
            return Err(fail(
                FindingCode::ZipFraming,
                "member data does not match its CRC-32".into(),
            ));
        }
        Ok(out)
    }

    /// Streams a member's bytes to `sink`, enforcing its declared size and its CRC. The stream
    /// is cut one byte past the declared size, so a lying size costs at most that.
    pub fn read_member(
        &mut self,
        entry: &Entry,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), Finding> {
        let fail = |code, why: String| Finding::new(code, entry.name.as_str(), why);
        if !entry.readable {
            return Err(fail(
                FindingCode::ZipFraming,
                "member was not read (see the other findings)".into(),
            ));
        }
        let file = self
            .zip
            .by_index(entry.index)
            .map_err(|e| fail(FindingCode::ZipInvalid, format!("cannot open member: {e}")))?;
        let mut reader = file.take(entry.size.saturating_add(1));
        let mut buf = vec![0u8; 256 << 10];
        let mut seen: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(fail(
                        FindingCode::ZipFraming,
                        format!("member data is corrupt: {e}"),
                    ));
                }
            };
            seen += n as u64;
            if seen > entry.size {
                return Err(fail(
                    FindingCode::ZipSizeMismatch,
                    format!("inflates past its declared size of {} bytes", entry.size),
                ));
            }
            let chunk = buf.get(..n).unwrap_or_default();
            sink(chunk)
                .map_err(|e| fail(FindingCode::ZipInvalid, format!("cannot keep member: {e}")))?;
        }
        if seen != entry.size {
            return Err(fail(
                FindingCode::ZipSizeMismatch,
                format!("holds {seen} bytes but declares {}", entry.size),
            ));
        }
        Ok(())
    }
}

/// Only regular files and folders belong in a wheel: a link or a device is a finding, and the
/// member is not read.
fn file_type_ok(mode: u32, name: &str, findings: &mut Vec<Finding>) -> bool {
    match mode & S_IFMT {
        0 | S_IFREG | S_IFDIR => true,
        S_IFLNK => {
            findings.push(Finding::new(
                FindingCode::ZipSymlink,
                name,
                "symbolic link entry: no wheel standard allows links, and installers treat them differently",
            ));
            false
        }
        other => {
            findings.push(Finding::new(
                FindingCode::ZipSpecialFile,
                name,
                format!("entry has file type {other:o} (device, fifo or socket)"),
            ));
            false
        }
    }
}

/// A member's declared size against the limits: too large, or inflating too far from its
/// compressed size (a zip bomb), is a finding and the member is not read.
fn size_is_sane(
    name: &str,
    size: u64,
    compressed: u64,
    limits: &ArchiveLimits,
    findings: &mut Vec<Finding>,
) -> bool {
    if size > limits.max_member_size {
        findings.push(Finding::new(
            FindingCode::ZipBomb,
            name,
            format!(
                "declares {size} bytes, more than the limit of {}",
                limits.max_member_size
            ),
        ));
        return false;
    } else if size > limits.bomb_min_size && size / compressed.max(1) > limits.bomb_ratio {
        findings.push(Finding::new(
            FindingCode::ZipBomb,
            name,
            format!(
                "inflates {compressed} bytes to {size} (over {}×)",
                limits.bomb_ratio
            ),
        ));
        return false;
    }
    true
}

/// Reads the local header at `start` and compares it with the central record. Returns where the
/// member's data begins, or why the two disagree. I/O errors are the caller's; disagreements are
/// findings.
#[allow(clippy::too_many_arguments)]
fn check_local_header(
    raw: &mut File,
    start: u64,
    name: &[u8],
    method: Option<zip::CompressionMethod>,
    crc: u32,
    compressed: u64,
    size: u64,
) -> io::Result<Result<u64, String>> {
    let mut fixed = [0u8; LOCAL_HEADER_LEN as usize];
    raw.seek(SeekFrom::Start(start))?;
    if let Err(e) = raw.read_exact(&mut fixed) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(Err("local header lies past the end of the file".into()))
        } else {
            Err(e)
        };
    }
    let u16_at = |i: usize| u16::from_le_bytes([fixed[i], fixed[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]);
    if u32_at(0) != LOCAL_HEADER_SIGNATURE {
        return Ok(Err(
            "no local header where the central directory points".into()
        ));
    }
    let flags = u16_at(6);
    if flags & FLAG_ENCRYPTED != 0 {
        return Ok(Err("member is encrypted".into()));
    }
    let local_method = u16_at(8);
    let expected_method = match method {
        Some(zip::CompressionMethod::Stored) => Some(METHOD_STORED),
        Some(zip::CompressionMethod::Deflated) => Some(METHOD_DEFLATED),
        _ => None,
    };
    if expected_method.is_some_and(|m| m != local_method) {
        return Ok(Err(format!(
            "local header says compression method {local_method}, central directory disagrees"
        )));
    }
    // With a data descriptor the local header may carry zeros; otherwise it must agree. Zip64
    // members carry 0xFFFFFFFF here and their real sizes in an extra field.
    let (local_crc, local_csize, local_size) = (u32_at(14), u32_at(18), u32_at(22));
    let agrees = |local: u32, central: u64| {
        local == u32::MAX
            || u64::from(local) == central
            || (flags & FLAG_DATA_DESCRIPTOR != 0 && local == 0)
    };
    let crc_ok = local_crc == crc || (flags & FLAG_DATA_DESCRIPTOR != 0 && local_crc == 0);
    if !crc_ok || !agrees(local_csize, compressed) || !agrees(local_size, size) {
        return Ok(Err(
            "local header's CRC or sizes differ from the central directory's".into(),
        ));
    }
    let name_len = u64::from(u16_at(26));
    let extra_len = u64::from(u16_at(28));
    let mut local_name = vec![0u8; usize::from(u16_at(26))];
    if let Err(e) = raw.read_exact(&mut local_name) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(Err("local header lies past the end of the file".into()))
        } else {
            Err(e)
        };
    }
    if local_name != name {
        return Ok(Err(format!(
            "local header names it `{}`",
            String::from_utf8_lossy(&local_name).escape_debug()
        )));
    }
    Ok(Ok(start + LOCAL_HEADER_LEN + name_len + extra_len))
}

/// Why a member path could escape or confuse an install: absolute, drive letters, `..`,
/// backslashes (a separator on Windows only), empty segments and control characters.
pub fn check_member_path(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty member name");
    }
    if name.chars().any(char::is_control) {
        return Err("control character in member name");
    }
    if name.contains('\\') {
        return Err("backslash in member name (a separator on Windows)");
    }
    if name.starts_with('/') {
        return Err("absolute member path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err("drive letter in member path");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    for segment in trimmed.split('/') {
        match segment {
            "" => return Err("empty path segment in member name"),
            "." | ".." => return Err("`.` or `..` segment in member path"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths() {
        for ok in [
            "a.py",
            "pkg/__init__.py",
            "pkg-1.0.dist-info/RECORD",
            "pkg/",
            "a..b/c",
        ] {
            assert_eq!(check_member_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a\\b",
            "C:/x",
            "c:x",
            "a//b",
            "./a",
            "a/./b",
            "a\u{0}b",
        ] {
            assert!(check_member_path(bad).is_err(), "{bad:?}");
        }
    }
}
