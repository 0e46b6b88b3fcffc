//! pipwall's own pages. Upstream markup never passes through: every byte served is written here
//! from the model, so both serializations say the same thing and the output is deterministic
//! (files sorted by filename, hashes by algorithm).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;

use super::model::{CoreMetadata, FileEntry, ProjectStatus};

/// Characters escaped in a URL path segment (RFC 3986 `pchar` keeps `+`, `!`, `~`, …).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// What a project page shows: files already decided, each with a sha256 (the key of its
/// download URL).
#[derive(Clone, Debug, Default)]
pub struct ServedPage {
    pub name: String,
    pub files: Vec<FileEntry>,
    pub versions: Vec<String>,
    pub status: Option<ProjectStatus>,
}

impl ServedPage {
    /// PEP 700 makes `size` mandatory from API 1.1, so pipwall claims 1.1 only when it knows
    /// every file's size; PEP 792's status needs 1.4.
    fn api_version(&self) -> &'static str {
        let sizes = self.files.iter().all(|f| f.size.is_some());
        match (sizes, self.status.is_some()) {
            (true, true) => "1.4",
            (true, false) => "1.1",
            (false, _) => "1.0",
        }
    }
}

/// Link to a file, relative to `/simple/<name>/`, so pipwall works behind a path prefix.
pub fn file_link(f: &FileEntry) -> String {
    let sha = f.sha256().unwrap_or("-");
    format!(
        "../../files/{sha}/{}",
        utf8_percent_encode(&f.filename, SEGMENT)
    )
}

pub fn escape_html(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn hash_attr(hashes: &BTreeMap<String, String>) -> String {
    // One `alg=hex` per attribute: prefer sha256, which every client knows.
    hashes
        .get_key_value("sha256")
        .or_else(|| hashes.iter().next())
        .map_or_else(|| "true".to_owned(), |(a, h)| format!("{a}={h}"))
}

pub fn html(page: &ServedPage) -> Vec<u8> {
    let mut out = String::with_capacity(256 + page.files.len() * 320);
    out.push_str(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"",
    );
    out.push_str(if page.status.is_some() { "1.4" } else { "1.0" });
    out.push_str("\">\n");
    if let Some(s) = &page.status {
        out.push_str("    <meta name=\"pypi:project-status\" content=\"");
        escape_html(&s.status, &mut out);
        out.push_str("\">\n");
        if let Some(r) = &s.reason {
            out.push_str("    <meta name=\"pypi:project-status-reason\" content=\"");
            escape_html(r, &mut out);
            out.push_str("\">\n");
        }
    }
    out.push_str("    <title>Links for ");
    escape_html(&page.name, &mut out);
    out.push_str("</title>\n  </head>\n  <body>\n    <h1>Links for ");
    escape_html(&page.name, &mut out);
    out.push_str("</h1>\n");
    for f in &page.files {
        out.push_str("    <a href=\"");
        escape_html(&file_link(f), &mut out);
        if let Some(sha) = f.sha256() {
            let _ = write!(out, "#sha256={sha}");
        }
        out.push('"');
        if let Some(rp) = &f.requires_python {
            out.push_str(" data-requires-python=\"");
            escape_html(rp, &mut out);
            out.push('"');
        }
        if let Some(y) = &f.yanked {
            out.push_str(" data-yanked=\"");
            escape_html(y, &mut out);
            out.push('"');
        }
        if let CoreMetadata::Present(h) = &f.core_metadata {
            // PEP 714: the new name, plus the old one with the identical value for older pips.
            let v = hash_attr(h);
            let _ = write!(
                out,
                " data-core-metadata=\"{v}\" data-dist-info-metadata=\"{v}\""
            );
        }
        // Not standard in HTML; uv reads them (cooldowns need upload times).
        if let Some(s) = f.size {
            let _ = write!(out, " data-size=\"{s}\"");
        }
        if let Some(t) = &f.upload_time {
            out.push_str(" data-upload-time=\"");
            escape_html(t, &mut out);
            out.push('"');
        }
        out.push('>');
        escape_html(&f.filename, &mut out);
        out.push_str("</a><br>\n");
    }
    out.push_str("  </body>\n</html>\n");
    out.into_bytes()
}

#[derive(Serialize)]
struct JsonPage<'a> {
    meta: JsonMeta,
    name: &'a str,
    files: Vec<JsonFile<'a>>,
    versions: &'a [String],
    #[serde(rename = "project-status", skip_serializing_if = "Option::is_none")]
    project_status: Option<JsonStatus<'a>>,
}

#[derive(Serialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: &'static str,
}

#[derive(Serialize)]
struct JsonStatus<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Keys are omitted, never `null`: uv rejects `null` for most of them.
#[derive(Serialize)]
struct JsonFile<'a> {
    filename: &'a str,
    url: String,
    hashes: &'a BTreeMap<String, String>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked: Option<JsonYanked<'a>>,
    /// Only the PEP 714 name: the old JSON key crashes some pip versions.
    #[serde(rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    core_metadata: Option<JsonMetadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "upload-time", skip_serializing_if = "Option::is_none")]
    upload_time: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonYanked<'a> {
    Bool(bool),
    Reason(&'a str),
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsonMetadata<'a> {
    Bool(bool),
    Hashes(&'a BTreeMap<String, String>),
}

pub fn json(page: &ServedPage) -> Vec<u8> {
    let doc = JsonPage {
        meta: JsonMeta {
            api_version: page.api_version(),
        },
        name: &page.name,
        files: page
            .files
            .iter()
            .map(|f| JsonFile {
                filename: &f.filename,
                url: file_link(f),
                hashes: &f.hashes,
                requires_python: f.requires_python.as_deref(),
                yanked: f.yanked.as_deref().map(|r| {
                    if r.is_empty() {
                        JsonYanked::Bool(true)
                    } else {
                        JsonYanked::Reason(r)
                    }
                }),
                core_metadata: match &f.core_metadata {
                    CoreMetadata::Absent => None,
                    CoreMetadata::Present(h) if h.is_empty() => Some(JsonMetadata::Bool(true)),
                    CoreMetadata::Present(h) => Some(JsonMetadata::Hashes(h)),
                },
                size: f.size,
                upload_time: f.upload_time.as_deref(),
            })
            .collect(),
        versions: &page.versions,
        project_status: page.status.as_ref().map(|s| JsonStatus {
            status: &s.status,
            reason: s.reason.as_deref(),
        }),
    };
    let mut out = serde_json::to_vec(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{html as html_parse, json as json_parse};
    use url::Url;

    const H: &str = "8c97e3bd0e2b0b5f4d87ad5c5fdfbde4d3d3e9c4a4b8e8a1d1c6f0f1e2d3c4b5";

    fn sample() -> ServedPage {
        let file = |name: &str, y: Option<&str>| FileEntry {
            filename: name.into(),
            url: crate::index::FileUrl::Resolved(
                Url::parse(&format!("https://up/{name}")).unwrap(),
            ),
            hashes: BTreeMap::from([("sha256".into(), H.into())]),
            requires_python: Some(">=3.8,<4".into()),
            yanked: y.map(Into::into),
            core_metadata: CoreMetadata::Present(BTreeMap::from([("sha256".into(), H.into())])),
            size: Some(10),
            upload_time: Some("2024-01-01T00:00:00Z".into()),
        };
        ServedPage {
            name: "demo".into(),
            files: vec![
                file("demo-1.0+local-py3-none-any.whl", None),
                file("demo-1.1-py3-none-any.whl", Some("oops \"quoted\" <b>")),
            ],
            versions: vec!["1.0+local".into(), "1.1".into()],
            status: None,
        }
    }

    /// Both serializations, parsed back with pipwall's own parsers, give the same model.
    #[test]
    fn html_and_json_round_trip_to_the_same_files() {
        let page = sample();
        let base = Url::parse("http://pw/simple/demo/").unwrap();
        let h = html_parse::parse(std::str::from_utf8(&html(&page)).unwrap(), &base).unwrap();
        let j = json_parse::parse(std::str::from_utf8(&json(&page)).unwrap(), &base).unwrap();
        assert!(h.invalid.is_empty() && j.invalid.is_empty());
        assert_eq!(h.files, j.files);
        assert_eq!(
            h.files[0].url.resolve().unwrap().as_str(),
            format!("http://pw/files/{H}/demo-1.0+local-py3-none-any.whl")
        );
        assert_eq!(h.files[1].yanked.as_deref(), Some("oops \"quoted\" <b>"));
        assert_eq!(j.versions, page.versions);
    }

    #[test]
    fn json_omits_absent_keys() {
        let mut page = sample();
        page.files[0].requires_python = None;
        page.files[0].size = None;
        page.files[0].upload_time = None;
        page.files[0].core_metadata = CoreMetadata::Absent;
        let s = String::from_utf8(json(&page)).unwrap();
        assert!(!s.contains("null"), "{s}");
        assert!(
            s.contains(r#""api-version":"1.0""#),
            "sizes unknown → 1.0: {s}"
        );
        assert!(!s.contains("dist-info-metadata"));
    }

    #[test]
    fn html_escapes_hostile_strings() {
        let mut page = sample();
        page.name = "<script>".into();
        let s = String::from_utf8(html(&page)).unwrap();
        assert!(!s.contains("<script>"));
        assert!(
            s.contains("data-core-metadata=\"sha256=")
                && s.contains("data-dist-info-metadata=\"sha256=")
        );
    }

    #[test]
    fn render_is_deterministic() {
        assert_eq!(html(&sample()), html(&sample()));
        assert_eq!(json(&sample()), json(&sample()));
    }
}
