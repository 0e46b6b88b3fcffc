//! One model for a project page, whichever serialization it came from.

use std::collections::BTreeMap;

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    pub filename: String,
    /// Absolute upstream URL, fragment removed.
    pub url: Url,
    /// Lowercase algorithm → lowercase hex digest.
    pub hashes: BTreeMap<String, String>,
    pub requires_python: Option<String>,
    /// `Some(reason)` when yanked; the reason may be empty.
    pub yanked: Option<String>,
    pub core_metadata: CoreMetadata,
    pub size: Option<u64>,
    /// PEP 700 form, `yyyy-mm-ddThh:mm:ss[.ffffff]Z`, checked on parse.
    pub upload_time: Option<String>,
}

impl FileEntry {
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }
}

/// PEP 658/714 core metadata availability.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CoreMetadata {
    #[default]
    Absent,
    /// Served at `<file url>.metadata`; hashes may be empty (`true`).
    Present(BTreeMap<String, String>),
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

/// The last path segment of `url`, percent-decoded: the filename pip uses for a link.
pub fn url_filename(url: &Url) -> Option<String> {
    let seg = url.path_segments()?.next_back()?;
    let decoded = percent_encoding::percent_decode_str(seg)
        .decode_utf8()
        .ok()?;
    if decoded.is_empty() {
        None
    } else {
        Some(decoded.into_owned())
    }
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
        let u = Url::parse("https://h/p/demo-1.0%2Blocal-py3-none-any.whl?x=1").unwrap();
        assert_eq!(url_filename(&u).unwrap(), "demo-1.0+local-py3-none-any.whl");
        assert_eq!(url_filename(&Url::parse("https://h/p/").unwrap()), None);
    }
}
