//! Distribution filenames: wheels (PEP 427 with PEP 425 tags) and sdists (PEP 625, plus the
//! legacy archive extensions pip still accepts).
//!
//! Filenames come from upstream pages and are hostile input: they end up in URLs, cache paths and
//! logs, so anything that could act as a path (separators, `..`, drive letters, control
//! characters) is refused before any other parsing.

use std::str::FromStr;

use pep440_rs::Version;

use super::name::ProjectName;
use super::tags::{TagError, WheelTags};

/// Longest filename accepted: most filesystems cannot store a longer name anyway.
pub const MAX_FILENAME_LEN: usize = 255;

/// Archive extensions pip accepts for source distributions (`utils/filetypes.py`). uv accepts
/// fewer; both kinds are hidden by the firewall's first rule, so recognizing more is safer.
const SDIST_EXTENSIONS: &[&str] = &[
    ".tar.gz",
    ".tgz",
    ".zip",
    ".tar.bz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tlz",
    ".tar.lz",
    ".tar.lzma",
    ".tar",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistFilename {
    Wheel(WheelFilename),
    Sdist(SdistFilename),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFilename {
    pub name: ProjectName,
    pub version: Version,
    /// Kept verbatim: it only breaks ties between otherwise equal wheels.
    pub build: Option<String>,
    pub tags: WheelTags,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdistFilename {
    /// `None` when the filename's version part is not PEP 440 (old sdists exist with such names).
    pub version: Option<Version>,
    pub extension: &'static str,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilenameError {
    #[error("filename is empty")]
    Empty,
    #[error("filename is longer than {MAX_FILENAME_LEN} bytes")]
    TooLong,
    #[error("filename has a path separator, drive letter, control character or `..`")]
    Unsafe,
    #[error("filename is neither a wheel (`.whl`) nor a source archive")]
    UnknownKind,
    #[error("wheel filename must have 5 or 6 `-`-separated parts, found {0}")]
    WheelParts(usize),
    #[error("wheel name `{0}` is not a valid project name")]
    WheelName(String),
    #[error("wheel version `{0}` is not a valid PEP 440 version")]
    WheelVersion(String),
    #[error(
        "wheel build tag `{0}` must start with a digit and hold only letters, digits, `_` and `.`"
    )]
    BuildTag(String),
    #[error("wheel tags are invalid")]
    Tags(#[source] TagError),
    #[error("file belongs to project `{found}`, not `{expected}`")]
    WrongProject { expected: String, found: String },
}

/// A filename's parts, borrowed from it: what deciding a page needs, without allocating. The
/// same checks as [`DistFilename::parse`], which is built on it.
#[derive(Clone, Debug)]
pub enum DistRef<'a> {
    Wheel {
        version: Version,
        build: Option<&'a str>,
        tags: TagSets<'a>,
    },
    Sdist {
        version: Option<Version>,
        extension: &'static str,
    },
}

/// A wheel's three tag sets as written (`py2.py3`, `none`, `any`), already checked.
#[derive(Clone, Copy, Debug)]
pub struct TagSets<'a> {
    pub python: &'a str,
    pub abi: &'a str,
    pub platform: &'a str,
}

impl<'a> TagSets<'a> {
    /// Every `(python, abi, platform)` triple the compressed sets stand for.
    pub fn triples(self) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> {
        self.python.split('.').flat_map(move |py| {
            self.abi
                .split('.')
                .flat_map(move |abi| self.platform.split('.').map(move |plat| (py, abi, plat)))
        })
    }
}

impl DistRef<'_> {
    pub fn version(&self) -> Option<&Version> {
        match self {
            Self::Wheel { version, .. } => Some(version),
            Self::Sdist { version, .. } => version.as_ref(),
        }
    }

    pub fn is_sdist(&self) -> bool {
        matches!(self, Self::Sdist { .. })
    }
}

/// Parsed versions by their text: a page lists the same version once per file (a dozen wheels
/// of one release), and parsing it once saves most of a page's parsing.
#[derive(Default)]
pub struct VersionCache<'a> {
    parsed: std::collections::HashMap<&'a str, Option<Version>, foldhash::fast::RandomState>,
}

impl<'a> VersionCache<'a> {
    pub fn parse(&mut self, text: &'a str) -> Option<Version> {
        self.parsed
            .entry(text)
            .or_insert_with(|| Version::from_str(text).ok())
            .clone()
    }
}

/// Classifies `filename` as a file of `project` without allocating (but for errors).
pub fn classify<'a>(
    filename: &'a str,
    project: &ProjectName,
    versions: &mut VersionCache<'a>,
) -> Result<DistRef<'a>, FilenameError> {
    check_safe(filename)?;
    if let Some(stem) = filename.strip_suffix(".whl") {
        let (name, version, build, tags) = wheel_parts(stem, versions)?;
        return match super::name::normalizes_to(name, project) {
            Ok(true) => Ok(DistRef::Wheel {
                version,
                build,
                tags,
            }),
            Ok(false) => Err(FilenameError::WrongProject {
                expected: project.to_string(),
                found: ProjectName::new(name).map_or_else(|_| name.to_owned(), |n| n.to_string()),
            }),
            Err(_) => Err(FilenameError::WheelName(name.into())),
        };
    }
    for ext in SDIST_EXTENSIONS {
        let n = filename.len();
        if n >= ext.len()
            && filename.is_char_boundary(n - ext.len())
            && filename[n - ext.len()..].eq_ignore_ascii_case(ext)
        {
            let stem = &filename[..n - ext.len()];
            return Ok(DistRef::Sdist {
                version: sdist_version(stem, project, versions),
                extension: ext,
            });
        }
    }
    Err(FilenameError::UnknownKind)
}

/// A wheel stem's name, version, build tag and tags, each checked in the order errors are
/// reported: part count, name, version, build tag, tags.
fn wheel_parts<'a>(
    stem: &'a str,
    versions: &mut VersionCache<'a>,
) -> Result<(&'a str, Version, Option<&'a str>, TagSets<'a>), FilenameError> {
    let mut parts = [""; 6];
    let mut count = 0;
    let mut start = 0;
    // By hand rather than `split('-')`: a searcher per call costs more than the short scan.
    for end in stem
        .bytes()
        .enumerate()
        .filter_map(|(i, b)| (b == b'-').then_some(i))
        .chain([stem.len()])
    {
        if let Some(slot) = parts.get_mut(count) {
            *slot = &stem[start..end];
        }
        count += 1;
        start = end + 1;
    }
    let (name, version, build, py, abi, plat) = match count {
        5 => (parts[0], parts[1], None, parts[2], parts[3], parts[4]),
        6 => (
            parts[0],
            parts[1],
            Some(parts[2]),
            parts[3],
            parts[4],
            parts[5],
        ),
        other => return Err(FilenameError::WheelParts(other)),
    };
    if super::name::check(name).is_err() {
        return Err(FilenameError::WheelName(name.into()));
    }
    let version = versions
        .parse(version)
        .ok_or_else(|| FilenameError::WheelVersion(version.into()))?;
    if let Some(b) = build {
        let ok = b.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
        if !ok {
            return Err(FilenameError::BuildTag(b.into()));
        }
    }
    for (part, set) in [("python", py), ("abi", abi), ("platform", plat)] {
        super::tags::check_set(part, set).map_err(FilenameError::Tags)?;
    }
    Ok((
        name,
        version,
        build,
        TagSets {
            python: py,
            abi,
            platform: plat,
        },
    ))
}

impl DistFilename {
    /// Parses `filename` as a file of `project`. A wheel of another project is an error (pip and
    /// uv would skip it; pipwall hides it with a reason instead of passing it on).
    pub fn parse(filename: &str, project: &ProjectName) -> Result<Self, FilenameError> {
        let mut versions = VersionCache::default();
        Ok(match classify(filename, project, &mut versions)? {
            DistRef::Wheel {
                version,
                build,
                tags,
            } => Self::Wheel(WheelFilename {
                name: project.clone(),
                version,
                build: build.map(str::to_owned),
                tags: WheelTags::parse(tags.python, tags.abi, tags.platform)
                    .map_err(FilenameError::Tags)?,
            }),
            DistRef::Sdist { version, extension } => {
                Self::Sdist(SdistFilename { version, extension })
            }
        })
    }

    /// The version this file belongs to, when its name says.
    pub fn version(&self) -> Option<&Version> {
        match self {
            Self::Wheel(w) => Some(&w.version),
            Self::Sdist(s) => s.version.as_ref(),
        }
    }
}

impl WheelFilename {
    /// Parses a wheel filename without checking which project it belongs to.
    pub fn parse_any(filename: &str) -> Result<Self, FilenameError> {
        check_safe(filename)?;
        let stem = filename
            .strip_suffix(".whl")
            .ok_or(FilenameError::UnknownKind)?;
        Self::parse_stem_unchecked(stem)
    }

    fn parse_stem_unchecked(stem: &str) -> Result<Self, FilenameError> {
        let mut versions = VersionCache::default();
        let (name, version, build, tags) = wheel_parts(stem, &mut versions)?;
        let name = ProjectName::new(name).map_err(|_| FilenameError::WheelName(name.into()))?;
        Ok(Self {
            name,
            version,
            build: build.map(str::to_owned),
            tags: WheelTags::parse(tags.python, tags.abi, tags.platform)
                .map_err(FilenameError::Tags)?,
        })
    }
}

/// The project a filename belongs to, from the name alone: a wheel's name part, or the text of
/// an sdist's name before its last `-` (PEP 625). `None` for anything else.
pub fn project_of(filename: &str) -> Option<ProjectName> {
    if filename.ends_with(".whl") {
        return WheelFilename::parse_any(filename).ok().map(|w| w.name);
    }
    let (stem, _) = filename.rsplit_once('-')?;
    let candidate = ProjectName::new(stem).ok()?;
    matches!(
        DistFilename::parse(filename, &candidate),
        Ok(DistFilename::Sdist(_))
    )
    .then_some(candidate)
}

fn check_safe(filename: &str) -> Result<(), FilenameError> {
    if filename.is_empty() {
        return Err(FilenameError::Empty);
    }
    if filename.len() > MAX_FILENAME_LEN {
        return Err(FilenameError::TooLong);
    }
    // One pass over the bytes with no early exit (it vectorizes); only a name with non-ASCII
    // bytes needs the character check for C1 controls.
    let (bad_ascii, non_ascii) = filename.bytes().fold((false, false), |(bad, high), b| {
        (
            bad | (b < 0x20) | (b == 0x7f) | (b == b'/') | (b == b'\\') | (b == b':'),
            high | (b >= 0x80),
        )
    });
    let unsafe_char = bad_ascii || (non_ascii && filename.chars().any(char::is_control));
    if unsafe_char || filename.starts_with('.') {
        return Err(FilenameError::Unsafe);
    }
    Ok(())
}

/// Finds the version of an sdist named `<name>-<version>`: PEP 625 names have exactly one `-`,
/// legacy ones may have more, so the split is the one whose left side normalizes to the project.
fn sdist_version<'a>(
    stem: &'a str,
    project: &ProjectName,
    versions: &mut VersionCache<'a>,
) -> Option<Version> {
    let at = stem
        .match_indices('-')
        .find(|(i, _)| super::name::normalizes_to(&stem[..*i], project) == Ok(true))?
        .0;
    versions.parse(&stem[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(n: &str) -> ProjectName {
        ProjectName::new(n).unwrap()
    }

    fn wheel(f: &str) -> WheelFilename {
        match DistFilename::parse(f, &project(f.split('-').next().unwrap())).unwrap() {
            DistFilename::Wheel(w) => w,
            DistFilename::Sdist(_) => panic!("not a wheel"),
        }
    }

    #[test]
    fn ok_pure_wheel() {
        let w = wheel("demo-1.0-py3-none-any.whl");
        assert_eq!(w.name.as_str(), "demo");
        assert_eq!(w.version.to_string(), "1.0");
        assert_eq!(w.build, None);
        assert_eq!(w.tags.to_string(), "py3-none-any");
    }

    #[test]
    fn ok_build_tag_and_compressed_tags() {
        let w = wheel("Demo_Pkg-2.0.post1-1b-cp311.cp312-abi3-manylinux_2_17_x86_64.whl");
        assert_eq!(w.name.as_str(), "demo-pkg");
        assert_eq!(w.build.as_deref(), Some("1b"));
        assert_eq!(w.tags.python, vec!["cp311", "cp312"]);
    }

    #[test]
    fn ok_sdist_pep625_and_legacy() {
        let p = project("foo-bar");
        let DistFilename::Sdist(s) = DistFilename::parse("foo_bar-1.2.tar.gz", &p).unwrap() else {
            panic!()
        };
        assert_eq!(s.version.unwrap().to_string(), "1.2");
        let DistFilename::Sdist(s) = DistFilename::parse("foo-bar-1.3.zip", &p).unwrap() else {
            panic!()
        };
        assert_eq!(s.version.unwrap().to_string(), "1.3");
        assert_eq!(s.extension, ".zip");
    }

    #[test]
    fn ok_sdist_with_non_pep440_version_is_still_an_sdist() {
        let p = project("foo");
        let d = DistFilename::parse("foo-latest-snapshot.tar.gz", &p).unwrap();
        assert!(matches!(
            d,
            DistFilename::Sdist(SdistFilename { version: None, .. })
        ));
    }

    #[test]
    fn err_wrong_project() {
        let e = DistFilename::parse("other-1.0-py3-none-any.whl", &project("demo")).unwrap_err();
        assert!(matches!(e, FilenameError::WrongProject { .. }));
    }

    #[test]
    fn err_path_traversal_in_build_tag() {
        let p = project("demo");
        for f in [
            "demo-1.0-1/../../x-py3-none-any.whl",
            "demo-1.0-..\\x-py3-none-any.whl",
            "demo-1.0-py3-none-c:any.whl",
            "../demo-1.0-py3-none-any.whl",
            ".hidden-1.0-py3-none-any.whl",
            "demo-1.0-py3-none-any\n.whl",
        ] {
            assert_eq!(
                DistFilename::parse(f, &p),
                Err(FilenameError::Unsafe),
                "{f}"
            );
        }
    }

    #[test]
    fn err_bad_parts() {
        let p = project("demo");
        assert_eq!(
            DistFilename::parse("demo-1.0-any.whl", &p),
            Err(FilenameError::WheelParts(3))
        );
        assert!(matches!(
            DistFilename::parse("demo-one-py3-none-any.whl", &p),
            Err(FilenameError::WheelVersion(_))
        ));
        assert!(matches!(
            DistFilename::parse("demo-1.0-x1-py3-none-any.whl", &p),
            Err(FilenameError::BuildTag(_))
        ));
        assert!(matches!(
            DistFilename::parse("demo-1.0-py3-none-an$y.whl", &p),
            Err(FilenameError::Tags(_))
        ));
    }

    #[test]
    fn err_unknown_kinds() {
        let p = project("demo");
        for f in [
            "demo-1.0.egg",
            "demo-1.0.exe",
            "demo-1.0.tar.gz.asc",
            "demo-1.0.WHL",
        ] {
            assert_eq!(
                DistFilename::parse(f, &p),
                Err(FilenameError::UnknownKind),
                "{f}"
            );
        }
    }

    #[test]
    fn project_of_wheels_and_sdists() {
        assert_eq!(
            project_of("Demo_Pkg-1.0-py3-none-any.whl"),
            Some(project("demo-pkg"))
        );
        assert_eq!(project_of("demo_pkg-1.0.tar.gz"), Some(project("demo-pkg")));
        assert_eq!(project_of("../demo-1.0.tar.gz"), None);
        assert_eq!(project_of("demo-1.0.exe"), None);
    }

    #[test]
    fn err_too_long() {
        let f = format!("demo-1.0-py3-none-{}.whl", "a".repeat(300));
        assert_eq!(
            DistFilename::parse(&f, &project("demo")),
            Err(FilenameError::TooLong)
        );
    }
}
