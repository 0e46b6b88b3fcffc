//! PEP 691 JSON pages (with PEP 700 and PEP 792 fields).
//!
//! Each file entry is first taken as raw JSON text and then read on its own, so one malformed
//! entry hides that file with a reason instead of failing the whole page.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use super::model::{
    CoreMetadata, FileEntry, Hashes, InvalidEntry, Namespace, ProjectPage, ProjectStatus,
};
use super::model::{FileUrl, href_filename, href_scheme, provenance_href, valid_upload_time};
use super::{MAX_FILES, PageError, check_hash, check_requires_python};

#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(default)]
    meta: Option<RawMeta>,
    #[serde(borrow)]
    files: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    versions: Option<Vec<&'a RawValue>>,
    #[serde(default, rename = "project-status")]
    project_status: Option<RawStatus>,
    /// PEP 752 as accepted (API 1.5): `null` or `[{name, owned}]`.
    #[serde(default, borrow)]
    namespaces: Option<&'a RawValue>,
    /// PEP 752's draft form (API 1.3): `null` or `{prefix, authorized, open}`.
    #[serde(default, borrow)]
    namespace: Option<&'a RawValue>,
}

/// The same page with every entry typed: deserializes only when no entry is malformed.
#[derive(Deserialize)]
struct FastPage<'a> {
    #[serde(default)]
    meta: Option<RawMeta>,
    #[serde(borrow)]
    files: Vec<RawFile<'a>>,
    #[serde(default, borrow)]
    versions: Option<Vec<Cow<'a, str>>>,
    #[serde(default, rename = "project-status")]
    project_status: Option<RawStatus>,
    /// PEP 752 as accepted (API 1.5): `null` or `[{name, owned}]`.
    #[serde(default, borrow)]
    namespaces: Option<&'a RawValue>,
    /// PEP 752's draft form (API 1.3): `null` or `{prefix, authorized, open}`.
    #[serde(default, borrow)]
    namespace: Option<&'a RawValue>,
}

fn check_api_version(meta: Option<RawMeta>) -> Result<(), PageError> {
    if let Some(v) = meta.and_then(|m| m.api_version) {
        // PEP 629: a major version a client does not know MUST fail.
        if v.split('.').next() != Some("1") {
            return Err(PageError::ApiVersion(v));
        }
    }
    Ok(())
}

/// Most namespace grants read from one page; real ones list one or two.
const MAX_NAMESPACES: usize = 64;

#[derive(Deserialize)]
struct RawGrant {
    name: String,
    owned: bool,
}

#[derive(Deserialize)]
struct RawDraftGrant {
    prefix: String,
    authorized: bool,
}

/// The namespace grants a page lists, in either form. A value of another shape, or a name that
/// is not a project name, is dropped: a policy that requires a grant then finds none and fails
/// closed, and one that only flags unowned grants has nothing to flag.
fn namespaces(list: Option<&RawValue>, draft: Option<&RawValue>) -> Vec<Namespace> {
    let grant = |name: &str, owned: bool| {
        crate::dist::ProjectName::new(name).ok().map(|n| Namespace {
            name: n.as_str().to_owned(),
            owned,
        })
    };
    let mut out: Vec<Namespace> = list
        .and_then(|v| serde_json::from_str::<Vec<RawGrant>>(v.get()).ok())
        .unwrap_or_default()
        .iter()
        .take(MAX_NAMESPACES)
        .filter_map(|g| grant(&g.name, g.owned))
        .collect();
    if out.is_empty()
        && let Some(g) = draft.and_then(|v| serde_json::from_str::<RawDraftGrant>(v.get()).ok())
    {
        out.extend(grant(&g.prefix, g.authorized));
    }
    out
}

fn status(s: Option<RawStatus>) -> Option<ProjectStatus> {
    s.and_then(|s| {
        s.status.map(|status| ProjectStatus {
            status,
            reason: s.reason,
        })
    })
}

/// Builds the page from either path's parts; `entries` yields each file or why it was unreadable.
fn assemble(
    meta: Option<RawMeta>,
    versions: Vec<String>,
    project_status: Option<RawStatus>,
    namespaces: Vec<Namespace>,
    count: usize,
    entries: impl Iterator<Item = Result<FileEntry, InvalidEntry>>,
) -> Result<ProjectPage, PageError> {
    check_api_version(meta)?;
    if count > MAX_FILES {
        return Err(PageError::TooManyFiles(MAX_FILES));
    }
    let mut page = ProjectPage {
        versions,
        status: status(project_status),
        namespaces,
        ..ProjectPage::default()
    };
    page.files.reserve(count);
    for entry in entries {
        match entry {
            Ok(f) => page.files.push(f),
            Err(e) => page.invalid.push(e),
        }
    }
    Ok(page)
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default, rename = "api-version")]
    api_version: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    status: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct RawFile<'a> {
    #[serde(borrow)]
    filename: CowStr<'a>,
    #[serde(borrow)]
    url: CowStr<'a>,
    #[serde(default, borrow)]
    hashes: Pairs<'a>,
    #[serde(default, borrow, rename = "requires-python")]
    requires_python: Option<CowStr<'a>>,
    #[serde(default)]
    yanked: Option<BoolOrString>,
    #[serde(default, borrow, rename = "core-metadata")]
    core_metadata: Option<BoolOrHashes<'a>>,
    #[serde(default, borrow, rename = "dist-info-metadata")]
    dist_info_metadata: Option<BoolOrHashes<'a>>,
    /// The public index's misnamed key (PEP 714's motivation); read last.
    #[serde(default, borrow, rename = "data-dist-info-metadata")]
    data_dist_info_metadata: Option<BoolOrHashes<'a>>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, borrow, rename = "upload-time")]
    upload_time: Option<CowStr<'a>>,
    #[serde(default, borrow)]
    provenance: Option<CowStr<'a>>,
}

/// A JSON object's entries in order, borrowed where possible. Read straight into a vector: a
/// `hashes` object holds one or two entries, and a map type would allocate a node for each.
#[derive(Default)]
struct Pairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Pairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Pairs<'a>, M::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(1).min(8));
                while let Some((k, v)) = m.next_entry::<CowStr<'a>, CowStr<'a>>()? {
                    out.push((k.0, v.0));
                }
                Ok(Pairs(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string borrowed from the page when it has no escapes (serde's `Cow` never borrows).
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CowStr<'a>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<CowStr<'a>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// `yanked`: `false`, `true` or a reason. Read by hand: serde's untagged enums buffer the value
/// first, which costs more than the rest of an entry.
enum BoolOrString {
    Bool(bool),
    String(String),
}

impl<'de> Deserialize<'de> for BoolOrString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BoolOrString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean or a string")
            }
            fn visit_bool<E>(self, v: bool) -> Result<BoolOrString, E> {
                Ok(BoolOrString::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<BoolOrString, E> {
                Ok(BoolOrString::String(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `core-metadata`: `false`, `true` or an object of hashes (as [`BoolOrString`]).
enum BoolOrHashes<'a> {
    Bool(bool),
    Hashes(Pairs<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for BoolOrHashes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = BoolOrHashes<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean or an object of hashes")
            }
            fn visit_bool<E>(self, v: bool) -> Result<BoolOrHashes<'a>, E> {
                Ok(BoolOrHashes::Bool(v))
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<BoolOrHashes<'a>, M::Error> {
                let mut out = Vec::with_capacity(2);
                while let Some((k, v)) = m.next_entry::<CowStr<'a>, CowStr<'a>>()? {
                    out.push((k.0, v.0));
                }
                Ok(BoolOrHashes::Hashes(Pairs(out)))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Only the filename, to label an entry that failed to parse.
#[derive(Deserialize)]
struct JustFilename {
    filename: Option<String>,
}

/// Parses a project page. Fails only when the page as a whole is unusable (not JSON, no
/// `files`, an API major version other than 1).
pub fn parse(text: &str, page_url: &Url) -> Result<ProjectPage, PageError> {
    let page_url = &Arc::new(page_url.clone());
    // Fast path: one pass when every entry is well formed (the usual case).
    if let Ok(fast) = serde_json::from_str::<FastPage<'_>>(text) {
        let versions = fast
            .versions
            .unwrap_or_default()
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        let count = fast.files.len();
        let entries = fast.files.into_iter().map(|raw| convert(raw, page_url));
        let grants = namespaces(fast.namespaces, fast.namespace);
        return assemble(
            fast.meta,
            versions,
            fast.project_status,
            grants,
            count,
            entries,
        );
    }
    let raw: RawPage<'_> =
        serde_json::from_str(text).map_err(|e| PageError::Json(e.to_string()))?;
    let files = raw.files.ok_or(PageError::NoFiles)?;
    let versions = raw
        .versions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| serde_json::from_str::<String>(v.get()).ok())
        .collect();
    let entries = files.iter().map(|entry| file(entry, page_url));
    let grants = namespaces(raw.namespaces, raw.namespace);
    assemble(
        raw.meta,
        versions,
        raw.project_status,
        grants,
        files.len(),
        entries,
    )
}

fn file(entry: &RawValue, page_url: &Arc<Url>) -> Result<FileEntry, InvalidEntry> {
    let raw: RawFile<'_> = serde_json::from_str(entry.get()).map_err(|e| {
        let label = serde_json::from_str::<JustFilename>(entry.get())
            .ok()
            .and_then(|j| j.filename)
            .unwrap_or_else(|| "(entry without a filename)".into());
        InvalidEntry {
            label,
            reason: format!("file entry is malformed: {e}"),
        }
    })?;
    convert(raw, page_url)
}

/// Checks and converts one entry that deserialized.
fn convert(raw: RawFile<'_>, page_url: &Arc<Url>) -> Result<FileEntry, InvalidEntry> {
    let filename = raw.filename.0.into_owned();
    let invalid = |reason: String| InvalidEntry {
        label: filename.clone(),
        reason,
    };
    let link = &raw.url.0[..memchr::memchr(b'#', raw.url.0.as_bytes()).unwrap_or(raw.url.0.len())];
    if let Some(scheme) = href_scheme(link)
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
    {
        return Err(invalid(format!(
            "file URL scheme `{scheme}` is not allowed"
        )));
    }
    // pip names a file after its URL, uv after `filename`: they must agree, or the two installers
    // would see different files under one entry.
    if href_filename(link).as_deref() != Some(filename.as_str()) {
        return Err(invalid(
            "`filename` does not match the file URL's last segment".into(),
        ));
    }
    let url = FileUrl::Relative {
        base: page_url.clone(),
        href: link.to_owned(),
    };
    let mut hashes = Hashes::default();
    for (alg, hex) in &raw.hashes.0 {
        match check_hash(alg, hex) {
            Some(Ok((a, h))) => {
                hashes.insert(a, h);
            }
            Some(Err(reason)) => return Err(invalid(format!("hash is malformed: {reason}"))),
            None => {}
        }
    }
    let core_metadata = match raw
        .core_metadata
        .or(raw.dist_info_metadata)
        .or(raw.data_dist_info_metadata)
    {
        None | Some(BoolOrHashes::Bool(false)) => CoreMetadata::Absent,
        Some(BoolOrHashes::Bool(true)) => CoreMetadata::Present(Hashes::default()),
        Some(BoolOrHashes::Hashes(map)) => {
            // A malformed metadata hash would make clients fetch and reject the sidecar; treat
            // the sidecar as absent instead (the wheel itself still carries its metadata).
            let mut checked = Hashes::default();
            let mut malformed = false;
            for (a, h) in &map.0 {
                match check_hash(a, h) {
                    Some(Ok((a, h))) => {
                        checked.insert(a, h);
                    }
                    Some(Err(_)) => malformed = true,
                    None => {}
                }
            }
            if malformed {
                CoreMetadata::Absent
            } else {
                CoreMetadata::Present(checked)
            }
        }
    };
    if let Some(rp) = &raw.requires_python {
        check_requires_python(&rp.0).map_err(invalid)?;
    }
    Ok(FileEntry {
        filename,
        url,
        hashes,
        requires_python: raw
            .requires_python
            .map(|s| s.0.trim().to_owned())
            .filter(|s| !s.is_empty()),
        yanked: match raw.yanked {
            None | Some(BoolOrString::Bool(false)) => None,
            Some(BoolOrString::Bool(true)) => Some(String::new()),
            Some(BoolOrString::String(s)) => Some(s),
        },
        core_metadata,
        size: raw.size,
        upload_time: raw
            .upload_time
            .filter(|t| valid_upload_time(&t.0))
            .map(|t| t.0.into_owned()),
        provenance: raw.provenance.and_then(|p| provenance_href(&p.0)),
    })
}

/// Visits a JSON root page (`{"projects": [{"name": …}, …]}`) without holding it: each name
/// goes to the callback as it is read; other keys and unreadable entries are skipped.
pub fn stream_project_names(
    reader: impl std::io::Read,
    on_name: impl FnMut(&str),
) -> Result<(), PageError> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Root<F>(F);
    struct Projects<'f, F>(&'f mut F);

    #[derive(Deserialize)]
    struct Entry {
        name: Option<String>,
    }

    impl<'de, F: FnMut(&str)> Visitor<'de> for Root<F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object with `projects`")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "projects" {
                    map.next_value_seed(Projects(&mut self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }

    impl<'de, F: FnMut(&str)> DeserializeSeed<'de> for Projects<'_, F> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de, F: FnMut(&str)> Visitor<'de> for Projects<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of projects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(entry) = seq.next_element::<serde_json::Value>()? {
                if let Ok(Entry { name: Some(n) }) = serde_json::from_value::<Entry>(entry) {
                    (self.0)(&n);
                }
            }
            Ok(())
        }
    }

    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    serde::Deserializer::deserialize_map(&mut de, Root(on_name))
        .map_err(|e| PageError::Json(e.to_string()))?;
    de.end().map_err(|e| PageError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "8c97e3bd0e2b0b5f4d87ad5c5fdfbde4d3d3e9c4a4b8e8a1d1c6f0f1e2d3c4b5";

    fn base() -> Url {
        Url::parse("https://up.example/simple/demo/").unwrap()
    }

    fn page(files: &str) -> ProjectPage {
        parse(
            &format!(r#"{{"meta":{{"api-version":"1.1"}},"name":"demo","files":[{files}],"versions":["1.0"]}}"#),
            &base(),
        )
        .unwrap()
    }

    #[test]
    fn parse_full_entry() {
        let p = page(&format!(
            r#"{{"filename":"demo-1.0-py3-none-any.whl","url":"../../f/demo-1.0-py3-none-any.whl","hashes":{{"sha256":"{H}"}},
            "requires-python":">=3.8","yanked":"broken","core-metadata":{{"sha256":"{H}"}},"size":42,
            "upload-time":"2024-05-01T10:00:00.123456Z","provenance":null,"gpg-sig":false}}"#
        ));
        assert!(p.invalid.is_empty(), "{:?}", p.invalid);
        let f = &p.files[0];
        assert_eq!(
            f.url.resolve().unwrap().as_str(),
            "https://up.example/f/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(f.sha256(), Some(H));
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(f.yanked.as_deref(), Some("broken"));
        assert_eq!(f.size, Some(42));
        assert_eq!(
            f.upload_time.as_deref(),
            Some("2024-05-01T10:00:00.123456Z")
        );
        assert!(matches!(f.core_metadata, CoreMetadata::Present(ref m) if m.len() == 1));
        assert_eq!(p.versions, vec!["1.0"]);
    }

    #[test]
    fn parse_nulls_and_bools() {
        let p = page(
            r#"{"filename":"demo-1.zip","url":"demo-1.zip","hashes":{},"requires-python":null,"yanked":true,"core-metadata":true}"#,
        );
        let f = &p.files[0];
        assert_eq!(f.requires_python, None);
        assert_eq!(f.yanked.as_deref(), Some(""));
        assert_eq!(f.core_metadata, CoreMetadata::Present(Hashes::default()));
    }

    #[test]
    fn parse_yanked_false_is_not_yanked() {
        let p = page(r#"{"filename":"demo-1.zip","url":"demo-1.zip","hashes":{},"yanked":false}"#);
        assert_eq!(p.files[0].yanked, None);
    }

    #[test]
    fn parse_legacy_metadata_keys() {
        let p = page(
            r#"{"filename":"demo-1.zip","url":"demo-1.zip","hashes":{},"data-dist-info-metadata":true}"#,
        );
        assert_eq!(
            p.files[0].core_metadata,
            CoreMetadata::Present(Hashes::default())
        );
    }

    #[test]
    fn err_one_bad_entry_hides_only_it() {
        let p = page(
            r#"{"filename":"demo-1.zip","url":"demo-1.zip","size":"big"},{"filename":"demo-2.zip","url":"demo-2.zip","hashes":{}}"#,
        );
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].label, "demo-1.zip");
    }

    #[test]
    fn err_filename_url_mismatch() {
        let p = page(
            r#"{"filename":"demo-1.0-py3-none-any.whl","url":"evil-1.0-py3-none-any.whl","hashes":{}}"#,
        );
        assert_eq!(p.files.len(), 0);
        assert!(p.invalid[0].reason.contains("does not match"));
    }

    #[test]
    fn err_missing_url() {
        let p = page(r#"{"filename":"demo-1.zip","hashes":{}}"#);
        assert_eq!(p.invalid.len(), 1);
    }

    #[test]
    fn err_entry_not_an_object() {
        let p = page(r#"42, "x", null"#);
        assert_eq!(p.invalid.len(), 3);
    }

    #[test]
    fn err_page_level() {
        assert!(matches!(
            parse("not json", &base()),
            Err(PageError::Json(_))
        ));
        assert_eq!(parse(r#"{"name":"x"}"#, &base()), Err(PageError::NoFiles));
        assert!(matches!(parse(r#"[1]"#, &base()), Err(PageError::Json(_))));
        assert_eq!(
            parse(r#"{"meta":{"api-version":"2.0"},"files":[]}"#, &base()),
            Err(PageError::ApiVersion("2.0".into()))
        );
    }

    #[test]
    fn parse_project_status() {
        let p = parse(
            r#"{"files":[],"project-status":{"status":"archived","reason":"old"}}"#,
            &base(),
        )
        .unwrap();
        assert_eq!(
            p.status,
            Some(ProjectStatus {
                status: "archived".into(),
                reason: Some("old".into())
            })
        );
    }

    #[test]
    fn a_requires_python_with_control_characters_hides_its_file() {
        let page = parse(
            r#"{"meta":{"api-version":"1.1"},"name":"x","files":[
              {"filename":"x-1.0-py3-none-any.whl","url":"x-1.0-py3-none-any.whl","hashes":{},"requires-python":">=3.8\u001b[31m\n"},
              {"filename":"x-1.1-py3-none-any.whl","url":"x-1.1-py3-none-any.whl","hashes":{},"requires-python":">=3.8"}]}"#,
            &base(),
        )
        .unwrap();
        assert_eq!(page.files.len(), 1);
        assert_eq!(page.invalid.len(), 1);
        assert!(
            page.invalid[0].reason.contains("requires-python"),
            "{:?}",
            page.invalid
        );
    }

    #[test]
    fn parse_provenance_links_and_drop_unsafe_ones() {
        let f = |extra: &str| {
            page(&format!(
                r#"{{"filename":"demo-1.zip","url":"demo-1.zip","hashes":{{}}{extra}}}"#
            ))
            .files[0]
                .provenance
                .clone()
        };
        assert_eq!(
            f(r#","provenance":"../p/demo-1.zip.provenance""#).as_deref(),
            Some("../p/demo-1.zip.provenance")
        );
        assert_eq!(
            f(r#","provenance":"https://up/p""#).as_deref(),
            Some("https://up/p")
        );
        for extra in [
            "",
            r#","provenance":null"#,
            r#","provenance":"file:///etc/passwd""#,
            r#","provenance":"  ""#,
        ] {
            assert_eq!(f(extra), None, "{extra}");
        }
    }

    #[test]
    fn parse_namespace_grants_in_either_form() {
        let grants = |extra: &str, files: &str| {
            parse(&format!(r#"{{"files":[{files}]{extra}}}"#), &base())
                .unwrap()
                .namespaces
        };
        let ns = |name: &str, owned| Namespace {
            name: name.into(),
            owned,
        };
        let bad = r#"{"filename":"x","url":7}"#;
        for files in ["", bad] {
            assert_eq!(
                grants(
                    r#","namespaces":[{"name":"Acme_Corp","owned":true},{"name":"acme","owned":false}]"#,
                    files
                ),
                [ns("acme-corp", true), ns("acme", false)],
                "fast and slow paths alike"
            );
            assert_eq!(
                grants(
                    r#","namespace":{"prefix":"acme","authorized":false,"open":false}"#,
                    files
                ),
                [ns("acme", false)]
            );
        }
        // Absent, null, or another shape: no grants, and the page still parses.
        for extra in [
            "",
            r#","namespaces":null"#,
            r#","namespaces":{"name":"acme"}"#,
            r#","namespaces":[{"name":"acme"}]"#,
            r#","namespaces":[{"name":"../x","owned":true}]"#,
        ] {
            assert_eq!(grants(extra, ""), [], "{extra}");
        }
        let many: Vec<String> = (0..100)
            .map(|i| format!(r#"{{"name":"n{i}","owned":true}}"#))
            .collect();
        let listed = grants(&format!(r#","namespaces":[{}]"#, many.join(",")), "");
        assert_eq!(listed.len(), MAX_NAMESPACES);
    }

    #[test]
    fn root_names_stream_and_skip_bad_entries() {
        let names = |text: &str| {
            let mut out = Vec::new();
            stream_project_names(text.as_bytes(), |n| out.push(n.to_owned())).map(|()| out)
        };
        let got = names(r#"{"meta":{"api-version":"1.0"},"projects":[{"name":"A"},{"x":1},7,{"name":"b","_last-serial":3}]}"#).unwrap();
        assert_eq!(got, vec!["A", "b"]);
        assert!(names("[1,2]").is_err());
        assert!(names(r#"{"projects":[{"name":"a"}]} trailing"#).is_err());
    }

    #[test]
    fn parse_bad_upload_time_is_dropped() {
        let p =
            page(r#"{"filename":"demo-1.zip","url":"demo-1.zip","hashes":{},"upload-time":""}"#);
        assert_eq!(p.files[0].upload_time, None);
    }
}
