//! Lock files: when a policy names them, only the files they pin are shown.
//!
//! Three formats, chosen by file name: `uv.lock` is uv's project lock, `*.toml` is a PEP 751
//! `pylock.toml`, anything else is a pip requirements file with hashes (what `pip install
//! --require-hashes` accepts and `pip-compile --generate-hashes` / `uv pip compile
//! --generate-hashes` write).
//!
//! A `uv.lock` also records the project itself and anything taken from git, a URL or a local
//! path. Those never come from an index, so they pin nothing pipwall could serve; they are left
//! out of the pins with a warning (not a problem: such a lock is normal and still pins exactly
//! what comes from the index).
//!
//! A lock is only useful if it pins exactly: a requirement that leaves the version open, has no
//! hash, or points outside an index would quietly let other files through, so each of those is
//! a problem, and every problem of every file is reported at once so a person fixes them in one
//! pass instead of one per restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::Version;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::dist::ProjectName;

/// Lock files are text written by tools; a large monorepo's is a few MiB at most.
pub const MAX_LOCK_BYTES: u64 = 16 * 1024 * 1024;
/// `-r`/`-c` nesting; real setups use two or three levels.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Files read through includes, all top-level files together.
pub const MAX_LOCK_FILES: usize = 256;

/// Digest algorithms pipwall can compare with what an index lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("sha256") {
            Some(HashAlg::Sha256)
        } else if name.eq_ignore_ascii_case("sha384") {
            Some(HashAlg::Sha384)
        } else if name.eq_ignore_ascii_case("sha512") {
            Some(HashAlg::Sha512)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 64,
            HashAlg::Sha384 => 96,
            HashAlg::Sha512 => 128,
        }
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the lock files say about one project, merged over all files and markers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedProject {
    pub versions: Vec<Version>,
    /// Lowercase hex digests.
    pub hashes: HashSet<(HashAlg, String)>,
    /// File names a `pylock.toml` recorded (requirements files record none).
    pub filenames: HashSet<String>,
    /// `file:line` of the first pin, for messages.
    pub origin: String,
}

impl LockedProject {
    /// The index's file is one the lock pinned: one of its digests equals a locked digest of the
    /// same algorithm. Only the digest decides, as with pip's `--require-hashes`: a name proves
    /// nothing about the bytes, so `_filename` is not consulted.
    pub fn pins_file(&self, _filename: &str, hashes: &crate::index::Hashes) -> bool {
        hashes.iter().any(|(alg, hex)| {
            HashAlg::from_name(alg).is_some_and(|alg| {
                let hex = hex.trim();
                hex.len() == alg.hex_len() && self.hashes.contains(&(alg, hex.to_ascii_lowercase()))
            })
        })
    }

    pub fn pins_version(&self, version: &Version) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    fn add_version(&mut self, version: Version) {
        if !self.pins_version(&version) {
            self.versions.push(version);
        }
    }
}

/// One thing wrong with a lock file; `line` is 1-based (0 when the file as a whole is wrong).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read lock file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lock file {} is larger than {MAX_LOCK_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} problem(s) in lock files:\n{}", problems.len(), ListProblems(problems))]
    Invalid { problems: Vec<LockProblem> },
}

/// Renders problems one per line for the error message.
struct ListProblems<'a>(&'a [LockProblem]);

impl fmt::Display for ListProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// The pins of every configured lock file, by normalized project name.
#[derive(Clone, Debug, Default)]
pub struct LockSet {
    projects: HashMap<String, LockedProject>,
    /// What was left out of the pins without making the set unusable (`uv.lock` packages from
    /// outside any index).
    warnings: Vec<LockProblem>,
}

impl LockSet {
    /// Reads and merges all files. A top-level file that cannot be read fails at once; anything
    /// wrong inside the files (includes that cannot be read too) is gathered, and if there is
    /// anything, the whole set is refused: a half-understood lock must not decide what is shown.
    pub fn load(paths: &[PathBuf]) -> Result<LockSet, LockError> {
        let mut loader = Loader::default();
        for path in paths {
            let text = read_lock_file(path)?;
            let canonical = fs::canonicalize(path).map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
            if !loader.seen.insert(canonical.clone()) {
                continue;
            }
            loader.files += 1;
            if is_uv_lock(path) {
                loader.uv_lock(path, &text);
            } else if is_pylock(path) {
                loader.pylock(path, &text);
            } else {
                loader.requirements(path, &text, &mut vec![canonical]);
            }
        }
        if loader.problems.is_empty() {
            Ok(LockSet {
                projects: loader.projects,
                warnings: loader.warnings,
            })
        } else {
            Err(LockError::Invalid {
                problems: loader.problems,
            })
        }
    }

    /// The pins of a project, by its PEP 503-normalized name.
    pub fn project(&self, normalized: &str) -> Option<&LockedProject> {
        self.projects.get(normalized)
    }

    pub fn projects(&self) -> impl Iterator<Item = (&str, &LockedProject)> {
        self.projects.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.projects.is_empty()
    }

    /// Packages the files name that pin nothing an index serves, each with where and why.
    pub fn warnings(&self) -> &[LockProblem] {
        &self.warnings
    }

    pub fn len(&self) -> usize {
        self.projects.len()
    }
}

/// One wheel, sdist or archive of a `pylock.toml` package, checked and ready to merge.
struct LockedFile {
    filename: Option<String>,
    hashes: Vec<(HashAlg, String)>,
}

/// uv writes its lock under this one name, next to `pyproject.toml`.
fn is_uv_lock(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.eq_ignore_ascii_case("uv.lock"))
}

fn is_pylock(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"))
}

fn read_lock_file(path: &Path) -> Result<String, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_LOCK_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_LOCK_BYTES {
        return Err(LockError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8: {e}"),
        ))
    })
}

#[derive(Default)]
struct Loader {
    projects: HashMap<String, LockedProject>,
    problems: Vec<LockProblem>,
    warnings: Vec<LockProblem>,
    /// Canonical paths of files already read: an include cycle, or a file included or listed
    /// twice, is read once.
    seen: HashSet<PathBuf>,
    files: usize,
}

/// A file's name as it appears in problems and origins.
fn display(path: &Path) -> String {
    path.display().to_string()
}

impl Loader {
    fn problem(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.problems.push(LockProblem {
            file: display(file),
            line,
            message: message.into(),
        });
    }

    fn warning(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.warnings.push(LockProblem {
            file: display(file),
            line,
            message: message.into(),
        });
    }

    fn entry(&mut self, name: &ProjectName, file: &Path, line: usize) -> &mut LockedProject {
        self.projects
            .entry(name.as_str().to_owned())
            .or_insert_with(|| LockedProject {
                origin: format!("{}:{line}", display(file)),
                ..LockedProject::default()
            })
    }

    // -----------------------------------------------------------------------------------------
    // requirements files

    fn requirements(&mut self, path: &Path, text: &str, stack: &mut Vec<PathBuf>) {
        for (line_no, line) in logical_lines(text) {
            let line = strip_comment(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('-') {
                self.option_line(path, line_no, line, stack);
            } else {
                self.requirement_line(path, line_no, line);
            }
        }
    }

    fn option_line(&mut self, path: &Path, line_no: usize, line: &str, stack: &mut Vec<PathBuf>) {
        let (option, value) = split_option(line);
        match option {
            "-r" | "--requirement" | "-c" | "--constraint" => match value {
                Some(target) => self.include(path, line_no, target, stack),
                None => self.problem(path, line_no, format!("{option} needs a file name")),
            },
            "-e" | "--editable" => self.problem(
                path,
                line_no,
                "editable requirement cannot be served by an index; pin a released version",
            ),
            // Everything else (index URLs, --find-links, --require-hashes, --only-binary,
            // --no-binary, --pre, --trusted-host, ...) steers the installer, not what is pinned.
            _ => {}
        }
    }

    fn include(&mut self, from: &Path, line_no: usize, target: &str, stack: &mut Vec<PathBuf>) {
        let target = unquote(target);
        if target.contains("://") {
            self.problem(
                from,
                line_no,
                format!("included file {target:?} is a URL; only local files can be read"),
            );
            return;
        }
        if stack.len() >= MAX_INCLUDE_DEPTH {
            self.problem(
                from,
                line_no,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} levels"),
            );
            return;
        }
        let base = from.parent().unwrap_or_else(|| Path::new(""));
        let path = base.join(target);
        let canonical = match fs::canonicalize(&path) {
            Ok(canonical) => canonical,
            Err(e) => {
                self.problem(
                    from,
                    line_no,
                    format!("cannot read included file {}: {e}", path.display()),
                );
                return;
            }
        };
        if !self.seen.insert(canonical.clone()) {
            return;
        }
        if self.files >= MAX_LOCK_FILES {
            self.problem(
                from,
                line_no,
                format!("more than {MAX_LOCK_FILES} lock files in all"),
            );
            return;
        }
        self.files += 1;
        let text = match read_lock_file(&path) {
            Ok(text) => text,
            Err(e) => {
                self.problem(from, line_no, e.to_string());
                return;
            }
        };
        stack.push(canonical);
        self.requirements(&path, &text, stack);
        stack.pop();
    }

    fn requirement_line(&mut self, path: &Path, line_no: usize, line: &str) {
        // pip splits a requirement from its per-requirement options at the first token that
        // starts with `-`.
        let mut requirement = String::new();
        let mut hashes: Vec<String> = Vec::new();
        let mut tokens = line.split_whitespace();
        let mut in_options = false;
        while let Some(token) = tokens.next() {
            if !in_options && !token.starts_with('-') {
                if !requirement.is_empty() {
                    requirement.push(' ');
                }
                requirement.push_str(token);
                continue;
            }
            in_options = true;
            if let Some(value) = token.strip_prefix("--hash=") {
                hashes.push(value.to_owned());
            } else if token == "--hash" {
                match tokens.next() {
                    Some(value) => hashes.push(value.to_owned()),
                    None => self.problem(path, line_no, "--hash needs a value"),
                }
            }
        }
        let pin = match parse_pin(&requirement) {
            Ok(pin) => pin,
            Err(message) => {
                self.problem(path, line_no, message);
                return;
            }
        };
        let mut parsed = Vec::with_capacity(hashes.len());
        let mut bad_hash = false;
        for raw in &hashes {
            match parse_hash(raw, "--hash") {
                Ok(hash) => parsed.push(hash),
                Err(message) => {
                    self.problem(path, line_no, message);
                    bad_hash = true;
                }
            }
        }
        if parsed.is_empty() {
            if !bad_hash {
                self.problem(
                    path,
                    line_no,
                    format!("{} has no --hash; every pin needs one", pin.name),
                );
            }
            return;
        }
        let project = self.entry(&pin.name, path, line_no);
        project.add_version(pin.version);
        project.hashes.extend(parsed);
    }

    // -----------------------------------------------------------------------------------------
    // pylock.toml

    fn pylock(&mut self, path: &Path, text: &str) {
        let lock: RawPylock = match toml::from_str(text) {
            Ok(lock) => lock,
            Err(e) => {
                let line = e.span().map_or(0, |span| line_of(text, span.start));
                self.problem(
                    path,
                    line,
                    format!("not a pylock.toml: {}", e.message().trim()),
                );
                return;
            }
        };
        match lock.lock_version.as_deref() {
            Some(v) if v.split('.').next() == Some("1") => {}
            Some(v) => self.problem(
                path,
                0,
                format!("lock-version {v:?} is not supported (1.x is)"),
            ),
            None => self.problem(path, 0, "lock-version is missing"),
        }
        for spanned in lock.packages.unwrap_or_default() {
            let line = line_of(text, spanned.span().start);
            self.pylock_package(path, line, spanned.into_inner());
        }
    }

    /// A lock entry's project name, or the problem with it.
    fn package_name(&mut self, path: &Path, line: usize, raw: Option<&str>) -> Option<ProjectName> {
        let Some(raw_name) = raw else {
            self.problem(path, line, "package has no name");
            return None;
        };
        match ProjectName::new(raw_name.trim()) {
            Ok(name) => Some(name),
            Err(e) => {
                self.problem(path, line, format!("package name {raw_name:?}: {e}"));
                None
            }
        }
    }

    /// A lock entry's version if it has one; `Err` once the problem is reported.
    fn package_version(
        &mut self,
        path: &Path,
        line: usize,
        name: &ProjectName,
        raw: Option<&str>,
    ) -> Result<Option<Version>, ()> {
        match raw.map(|v| Version::from_str(v.trim())) {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => {
                self.problem(path, line, format!("{name}: version: {e}"));
                Err(())
            }
        }
    }

    fn pylock_package(&mut self, path: &Path, line: usize, package: RawPackage) {
        let Some(name) = self.package_name(path, line, package.name.as_deref()) else {
            return;
        };
        if package.vcs.is_some() {
            self.problem(
                path,
                line,
                format!("{name} comes from version control; an index cannot serve it"),
            );
            return;
        }
        if package.directory.is_some() {
            self.problem(
                path,
                line,
                format!("{name} comes from a local directory; an index cannot serve it"),
            );
            return;
        }
        let Ok(version) = self.package_version(path, line, &name, package.version.as_deref())
        else {
            return;
        };

        let mut files: Vec<LockedFile> = Vec::new();
        let mut ok = true;
        let sources = package
            .wheels
            .iter()
            .flatten()
            .map(|w| ("wheel", w))
            .chain(package.sdist.iter().map(|s| ("sdist", s)))
            .chain(package.archive.iter().map(|a| ("archive", a)));
        let mut messages = Vec::new();
        for (what, file) in sources {
            let filename = file.filename();
            let label = filename.clone().unwrap_or_else(|| what.to_owned());
            let mut hashes = Vec::new();
            for (alg, hex) in file.hashes.iter().flatten() {
                let Some(alg) = HashAlg::from_name(alg) else {
                    continue;
                };
                match check_hex(alg, hex) {
                    Some(hex) => hashes.push((alg, hex)),
                    None => {
                        messages.push(format!(
                            "{name}: {label}: {alg} hash is not {} hex digits",
                            alg.hex_len()
                        ));
                        ok = false;
                    }
                }
            }
            if hashes.is_empty() {
                messages.push(format!("{name}: {label}: no sha256, sha384 or sha512 hash"));
                ok = false;
            }
            files.push(LockedFile { filename, hashes });
        }
        for message in messages {
            self.problem(path, line, message);
        }
        if files.is_empty() {
            self.problem(
                path,
                line,
                format!("{name} lists no wheels, sdist or archive"),
            );
            return;
        }
        if !ok {
            return;
        }
        let project = self.entry(&name, path, line);
        if let Some(version) = version {
            project.add_version(version);
        }
        for LockedFile { filename, hashes } in files {
            if let Some(filename) = filename {
                project.filenames.insert(filename);
            }
            project.hashes.extend(hashes);
        }
    }
}

impl Loader {
    // -----------------------------------------------------------------------------------------
    // uv.lock

    fn uv_lock(&mut self, path: &Path, text: &str) {
        let lock: RawUvLock = match toml::from_str(text) {
            Ok(lock) => lock,
            Err(e) => {
                let line = e.span().map_or(0, |span| line_of(text, span.start));
                self.problem(path, line, format!("not a uv.lock: {}", e.message().trim()));
                return;
            }
        };
        match lock.version {
            Some(1) => {}
            Some(v) => self.problem(
                path,
                0,
                format!("uv.lock version {v} is not supported (1 is)"),
            ),
            None => self.problem(path, 0, "uv.lock has no `version`"),
        }
        for spanned in lock.package.unwrap_or_default() {
            let line = line_of(text, spanned.span().start);
            self.uv_package(path, line, spanned.into_inner());
        }
    }

    fn uv_package(&mut self, path: &Path, line: usize, package: RawUvPackage) {
        let Some(name) = self.package_name(path, line, package.name.as_deref()) else {
            return;
        };
        if let Some(source) = &package.source {
            // A virtual package is the workspace root itself: nothing is installed for it.
            if source.r#virtual.is_some() {
                return;
            }
            if let Some(kind) = source.outside_index() {
                self.warning(
                    path,
                    line,
                    format!(
                        "{name} comes from {kind}, not an index: pipwall serves none of it, so it is outside the lock"
                    ),
                );
                return;
            }
        }
        let Ok(version) = self.package_version(path, line, &name, package.version.as_deref())
        else {
            return;
        };
        let mut files: Vec<LockedFile> = Vec::new();
        let mut messages = Vec::new();
        let sources = package
            .wheels
            .iter()
            .flatten()
            .map(|w| ("wheel", w))
            .chain(package.sdist.iter().map(|s| ("sdist", s)));
        for (what, file) in sources {
            let filename = file.filename();
            let label = filename.clone().unwrap_or_else(|| what.to_owned());
            match file.hash.as_deref().map(|h| parse_hash(h, "hash")) {
                Some(Ok(hash)) => files.push(LockedFile {
                    filename,
                    hashes: vec![hash],
                }),
                Some(Err(why)) => messages.push(format!("{name}: {label}: {why}")),
                None => messages.push(format!("{name}: {label}: no hash")),
            }
        }
        let ok = messages.is_empty();
        for message in messages {
            self.problem(path, line, message);
        }
        if files.is_empty() && ok {
            self.problem(path, line, format!("{name} lists no wheels or sdist"));
        }
        if !ok || files.is_empty() {
            return;
        }
        let project = self.entry(&name, path, line);
        if let Some(version) = version {
            project.add_version(version);
        }
        for LockedFile { filename, hashes } in files {
            if let Some(filename) = filename {
                project.filenames.insert(filename);
            }
            project.hashes.extend(hashes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// requirements syntax

/// Joins `\`-continued lines the way pip does, numbering each logical line by its first
/// physical line. A comment line never continues, even if it ends in `\`.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let is_comment = is_comment_line(raw);
        match raw.strip_suffix('\\') {
            Some(head) if !is_comment => {
                let (_, buf) = pending.get_or_insert_with(|| (line_no, String::new()));
                buf.push_str(head);
            }
            _ => {
                let piece = if is_comment {
                    // Kept apart from what came before so the comment is still recognized.
                    format!(" {raw}")
                } else {
                    raw.to_owned()
                };
                match pending.take() {
                    Some((first, mut buf)) => {
                        buf.push_str(&piece);
                        out.push((first, buf));
                    }
                    None => out.push((line_no, piece)),
                }
            }
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// A line whose first non-blank character is `#`.
fn is_comment_line(raw: &str) -> bool {
    raw.trim_start().starts_with('#')
}

/// A `#` at the start of a line or after whitespace starts a comment (so `#` inside a URL
/// fragment does not).
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| {
            b == b'#' && (i == 0 || bytes.get(i - 1).is_some_and(|p| p.is_ascii_whitespace()))
        })
        .map(|(i, _)| i)
}

fn strip_comment(line: &str) -> &str {
    match comment_start(line) {
        Some(at) => line.get(..at).unwrap_or(line),
        None => line,
    }
}

/// `-r file`, `-rfile`, `--requirement file`, `--requirement=file`: the option and its value.
fn split_option(line: &str) -> (&str, Option<&str>) {
    let (option, rest) = if line.starts_with("--") {
        let end = line
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(line.len());
        let (option, rest) = line.split_at(end);
        (option, rest.strip_prefix('=').unwrap_or(rest))
    } else {
        let end = line.char_indices().nth(2).map_or(line.len(), |(i, _)| i);
        line.split_at(end)
    };
    let value = rest.trim();
    (option, (!value.is_empty()).then_some(value))
}

fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

struct Pin {
    name: ProjectName,
    version: Version,
}

/// `name[extras] ==version ; markers`, pinned to exactly one version.
fn parse_pin(requirement: &str) -> Result<Pin, String> {
    let (spec, _markers) = match requirement.split_once(';') {
        Some((spec, markers)) => (spec.trim(), Some(markers)),
        None => (requirement.trim(), None),
    };
    let looks_like_path = spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || spec.contains("://")
        || spec.contains('@')
        || spec.contains('\\')
        || [".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2"]
            .iter()
            .any(|ext| spec.to_ascii_lowercase().ends_with(ext));
    if looks_like_path {
        return Err(format!(
            "{spec:?} is a URL or path requirement; an index cannot serve it"
        ));
    }
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let (raw_name, rest) = spec.split_at(name_end);
    let name = ProjectName::new(raw_name)
        .map_err(|e| format!("requirement {spec:?}: project name: {e}"))?;
    let mut rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return Err(format!("requirement {spec:?}: unclosed extras"));
        };
        rest = after.get(close + 1..).unwrap_or_default().trim_start();
    }
    let rest = rest.trim();
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest)
        .trim();
    if rest.is_empty() {
        return Err(format!("{name} is not pinned; use {name}==VERSION"));
    }
    if rest.contains(',') {
        return Err(format!(
            "{name} has several version clauses ({rest}); pin exactly one with =="
        ));
    }
    let (exact, raw_version) = if let Some(v) = rest.strip_prefix("===") {
        (true, v.trim())
    } else if let Some(v) = rest.strip_prefix("==") {
        (false, v.trim())
    } else {
        return Err(format!(
            "{name} is not pinned ({rest}); use {name}==VERSION"
        ));
    };
    if !exact && raw_version.ends_with(".*") {
        return Err(format!(
            "{name}=={raw_version} is a prefix match, not a pin"
        ));
    }
    let version = Version::from_str(raw_version)
        .map_err(|e| format!("{name}: version {raw_version:?}: {e}"))?;
    Ok(Pin { name, version })
}

/// `sha256:HEX` (also sha384, sha512), as requirements' `--hash` and uv.lock's `hash` write it;
/// `what` names the option or key in messages.
fn parse_hash(raw: &str, what: &str) -> Result<(HashAlg, String), String> {
    let Some((alg_name, hex)) = raw.split_once(':') else {
        return Err(format!("{what} {raw:?} is not ALGORITHM:HEX"));
    };
    let Some(alg) = HashAlg::from_name(alg_name) else {
        return Err(format!(
            "{what} algorithm {alg_name:?} is not supported; use sha256, sha384 or sha512"
        ));
    };
    check_hex(alg, hex)
        .map(|hex| (alg, hex))
        .ok_or_else(|| format!("{what} {alg}: not {} hex digits", alg.hex_len()))
}

fn check_hex(alg: HashAlg, hex: &str) -> Option<String> {
    let hex = hex.trim();
    (hex.len() == alg.hex_len() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

fn line_of(text: &str, offset: usize) -> usize {
    let head = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    head.iter().filter(|&&b| b == b'\n').count() + 1
}

// ---------------------------------------------------------------------------------------------
// pylock.toml schema (PEP 751): the parts that decide what may be installed.

#[derive(Deserialize)]
struct RawPylock {
    #[serde(rename = "lock-version")]
    lock_version: Option<String>,
    packages: Option<Vec<toml::Spanned<RawPackage>>>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: Option<String>,
    version: Option<String>,
    vcs: Option<IgnoredAny>,
    directory: Option<IgnoredAny>,
    archive: Option<RawFile>,
    sdist: Option<RawFile>,
    wheels: Option<Vec<RawFile>>,
}

#[derive(Deserialize)]
struct RawFile {
    name: Option<String>,
    url: Option<String>,
    path: Option<String>,
    hashes: Option<BTreeMap<String, String>>,
}

/// A locked file's name: as the lock gives it, else the last segment of its URL or path.
fn file_name(name: Option<&str>, url: Option<&str>, path: Option<&str>) -> Option<String> {
    if let Some(name) = name {
        return Some(name.to_owned());
    }
    let location = url.or(path)?;
    let location = location.split(['?', '#']).next().unwrap_or(location);
    location
        .rsplit(['/', '\\'])
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl RawFile {
    /// The file's name: given, or the last segment of its URL or path.
    fn filename(&self) -> Option<String> {
        file_name(
            self.name.as_deref(),
            self.url.as_deref(),
            self.path.as_deref(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// uv.lock schema: the parts that decide what may be installed.

#[derive(Deserialize)]
struct RawUvLock {
    version: Option<i64>,
    package: Option<Vec<toml::Spanned<RawUvPackage>>>,
}

#[derive(Deserialize)]
struct RawUvPackage {
    name: Option<String>,
    version: Option<String>,
    source: Option<RawUvSource>,
    sdist: Option<RawUvFile>,
    wheels: Option<Vec<RawUvFile>>,
}

/// Where uv took a package from: exactly one of these is set.
#[derive(Deserialize)]
struct RawUvSource {
    git: Option<IgnoredAny>,
    url: Option<IgnoredAny>,
    path: Option<IgnoredAny>,
    directory: Option<IgnoredAny>,
    editable: Option<IgnoredAny>,
    r#virtual: Option<IgnoredAny>,
}

impl RawUvSource {
    /// What the package comes from when that is not an index (`registry`), in words.
    fn outside_index(&self) -> Option<&'static str> {
        if self.git.is_some() {
            Some("a git repository")
        } else if self.url.is_some() {
            Some("a direct URL")
        } else if self.path.is_some() {
            Some("a local file")
        } else if self.directory.is_some() {
            Some("a local directory")
        } else if self.editable.is_some() {
            Some("an editable local directory")
        } else {
            None
        }
    }
}

#[derive(Deserialize)]
struct RawUvFile {
    url: Option<String>,
    path: Option<String>,
    filename: Option<String>,
    hash: Option<String>,
}

impl RawUvFile {
    fn filename(&self) -> Option<String> {
        file_name(
            self.filename.as_deref(),
            self.url.as_deref(),
            self.path.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests;
