//! One model for a project page, whichever serialization it came from.

use url::Url;

/// A parsed project page. Entries that could not be read are kept in `invalid`, so each one is
/// hidden with a reason instead of failing the page (soft errors).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProjectPage {
    pub files: Vec<FileEntry>,
    pub invalid: Vec<InvalidEntry>,
    /// PEP 700 `versions` (JSON only; empty from HTML).
    pub versions: Vec<String>,
    pub status: Option<ProjectStatus>,
    /// PEP 752 namespace grants that cover the project, as upstream lists them (JSON only;
    /// empty when upstream lists none or does not speak that API version).
    pub namespaces: Vec<Namespace>,
}

/// A PEP 752 namespace grant covering a project: the grant's name (`foo` covers `foo` and
/// `foo-*`), and whether the project's owner holds it. A project in a namespace its owner does
/// not hold predates the grant, or got in some other way the grant was meant to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub owned: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub filename: String,
    /// Upstream location, fragment removed; resolved to a full URL only when downloaded.
    pub url: FileUrl,
    pub hashes: Hashes,
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked; the reason may be empty.
    pub yanked: Option<String>,
    pub core_metadata: CoreMetadata,
    pub size: Option<u64>,
    /// PEP 700 form, `yyyy-mm-ddThh:mm:ss[.ffffff]Z`, checked on parse.
    pub upload_time: Option<String>,
    /// PEP 740 provenance object's location as upstream wrote it (relative to the page, or
    /// absolute http(s)); fetched only when the file is audited.
    pub provenance: Option<Box<str>>,
}

impl FileEntry {
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256")
    }
}

/// A file's digests: canonical algorithm name (one of [`super::HASH_ALGORITHMS`]) → lowercase
/// hex, in algorithm-name order. A page holds one or two per file, thousands of files per page: a
/// short vector costs one small allocation where a map cost a node of several hundred bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hashes(Vec<(&'static str, Box<str>)>);

impl Hashes {
    /// One sha256 digest (already lowercase hex).
    pub fn sha256(hex: impl Into<Box<str>>) -> Self {
        Self(vec![("sha256", hex.into())])
    }

    pub fn get(&self, alg: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| *a == alg).map(|(_, h)| &**h)
    }

    /// Adds a digest; returns the one it replaced, if any.
    pub fn insert(&mut self, alg: &'static str, hex: impl Into<Box<str>>) -> Option<Box<str>> {
        let hex = hex.into();
        match self.0.binary_search_by(|(a, _)| (*a).cmp(alg)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, hex)),
            Err(i) => {
                self.0.insert(i, (alg, hex));
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(a, h)| (*a, &**h))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<H: Into<Box<str>>> FromIterator<(&'static str, H)> for Hashes {
    fn from_iter<I: IntoIterator<Item = (&'static str, H)>>(iter: I) -> Self {
        let mut out = Self::default();
        for (a, h) in iter {
            out.insert(a, h);
        }
        out
    }
}

impl<H: Into<Box<str>>, const N: usize> From<[(&'static str, H); N]> for Hashes {
    fn from(pairs: [(&'static str, H); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// A file's upstream location. Parsing a URL costs about a microsecond, which is most of the cost
/// of reading a 5,000-file page; a page only needs the filename, so links are kept as written and
/// resolved against the page's base when a file is actually fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileUrl {
    /// Boxed: a `Url` is larger than everything else in an entry, and entries are moved around.
    Resolved(Box<Url>),
    /// `href` as upstream wrote it (fragment removed), relative to `base` or absolute http(s).
    Relative {
        base: std::sync::Arc<Url>,
        href: String,
    },
}

impl FileUrl {
    pub fn resolve(&self) -> Result<Url, url::ParseError> {
        match self {
            Self::Resolved(u) => Ok((**u).clone()),
            Self::Relative { base, href } => base.join(href),
        }
    }

    /// Another link of the same page (a provenance URL), resolved as the page resolves links.
    pub fn sibling(&self, href: &str) -> Result<Url, url::ParseError> {
        match self {
            Self::Resolved(u) => u.join(href),
            Self::Relative { base, .. } => base.join(href),
        }
    }
}

/// A PEP 740 provenance link, kept only when it is relative or http(s): anything else could make
/// pipwall fetch from where it must not.
pub fn provenance_href(raw: &str) -> Option<Box<str>> {
    let raw = raw.trim();
    let ok = !raw.is_empty()
        && raw.len() <= 2048
        && href_scheme(raw)
            .is_none_or(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    ok.then(|| raw.into())
}

/// PEP 658/714 core metadata availability.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoreMetadata {
    #[default]
    Absent,
    /// Served at `<file url>.metadata`; hashes may be empty (`true`).
    Present(Hashes),
}

/// An upstream entry that could not be read as a file; hidden with this reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidEntry {
    /// The filename if known, else the raw href, as upstream wrote it.
    pub label: String,
    pub reason: String,
}

/// PEP 792 project status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectStatus {
    pub status: String,
    pub reason: Option<String>,
}

/// Checks PEP 700's `upload-time` form: `yyyy-mm-ddThh:mm:ss` with 0–6 fraction digits and `Z`.
/// A value not of this form is dropped: pip and uv fail hard on a malformed one.
pub fn valid_upload_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !fixed || b.last() != Some(&b'Z') {
        return false;
    }
    let rest = &b[19..b.len() - 1];
    match rest {
        [] => true,
        [b'.', frac @ ..] => (1..=6).contains(&frac.len()) && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// The scheme of an absolute link (`https` in `https://…`), or `None` for a relative one.
pub fn href_scheme(href: &str) -> Option<&str> {
    // RFC 3986: a letter, then letters, digits, `+`, `-` or `.`, up to the colon. Any other byte
    // first (`/`, `?`, `#`, `%`, …) makes the link relative.
    let b = href.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    (b[end] == b':').then(|| &href[..end])
}

/// The last path segment of a link (query removed), percent-decoded: the filename pip uses for
/// it. Works on the text, without parsing the URL.
pub fn href_filename(href: &str) -> Option<std::borrow::Cow<'_, str>> {
    let href = &href[..memchr::memchr2(b'?', b'#', href.as_bytes()).unwrap_or(href.len())];
    let b = href.as_bytes();
    // The last `/` ends the path's folders; it must come after `scheme://authority`, or the link
    // has no path after its host and so no filename.
    let last_slash = memchr::memrchr(b'/', b);
    let path_start = match href_scheme(href) {
        Some(scheme) => {
            let after = scheme.len() + 1;
            if b[after..].starts_with(b"//") {
                let host_end = after + 2 + memchr::memchr(b'/', &b[after + 2..])?;
                last_slash.filter(|&i| i >= host_end)?
            } else {
                last_slash.map_or(after, |i| i.max(after))
            }
        }
        None => last_slash.unwrap_or(0),
    };
    let seg_start = if b.get(path_start) == Some(&b'/') {
        path_start + 1
    } else {
        path_start
    };
    let seg = &href[seg_start..];
    // Most links have no escapes: then the segment is the filename as it stands.
    if memchr::memchr(b'%', seg.as_bytes()).is_none() {
        return (!seg.is_empty()).then_some(std::borrow::Cow::Borrowed(seg));
    }
    let decoded = percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .ok()?;
    (!decoded.is_empty()).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_time_forms() {
        assert!(valid_upload_time("2024-01-02T03:04:05Z"));
        assert!(valid_upload_time("2024-01-02T03:04:05.123456Z"));
        assert!(!valid_upload_time("2024-01-02T03:04:05.1234567Z"));
        assert!(!valid_upload_time("2024-01-02T03:04:05"));
        assert!(!valid_upload_time("2024-01-02 03:04:05Z"));
        assert!(!valid_upload_time(""));
        assert!(!valid_upload_time("2024-01-02T03:04:05.Z"));
    }

    #[test]
    fn filename_is_decoded_last_segment() {
        assert_eq!(
            href_filename("https://h/p/demo-1.0%2Blocal-py3-none-any.whl?x=1").unwrap(),
            "demo-1.0+local-py3-none-any.whl"
        );
        assert_eq!(
            href_filename("../../f/d-1.zip#sha256=ab").unwrap(),
            "d-1.zip"
        );
        assert_eq!(href_filename("d-1.zip").unwrap(), "d-1.zip");
        assert_eq!(href_filename("https://h/p/"), None);
        assert_eq!(href_filename("https://h"), None);
        assert_eq!(href_filename("https://h?x=/y.whl"), None);
        assert_eq!(href_filename("https://h/p/x.whl").unwrap(), "x.whl");
        assert_eq!(href_filename("https:x.whl").unwrap(), "x.whl");
        assert_eq!(href_filename("https:/x.whl").unwrap(), "x.whl");
        assert_eq!(href_filename("https:a/b.whl").unwrap(), "b.whl");
        assert_eq!(href_filename("/x.whl").unwrap(), "x.whl");
        assert_eq!(href_filename("https:"), None);
        assert_eq!(href_filename("https://"), None);
        assert_eq!(href_filename("https:///x.whl").unwrap(), "x.whl");
    }

    #[test]
    fn schemes_are_found_only_at_the_start() {
        assert_eq!(href_scheme("HTTPS://h/x"), Some("HTTPS"));
        assert_eq!(href_scheme("javascript:alert(1)"), Some("javascript"));
        assert_eq!(href_scheme("../a:b/x.whl"), None);
        assert_eq!(href_scheme("x.whl?a=b:c"), None);
        assert_eq!(href_scheme("1http://x"), None);
    }
}
