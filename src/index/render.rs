//! pipwall's own pages. Upstream markup never passes through: every byte served is written here
//! from the model, so both serializations say the same thing and the output is deterministic
//! (files in upstream's order, hashes by algorithm name): one upstream page gives one output.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::model::{CoreMetadata, FileEntry, Hashes, ProjectStatus};

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
    let mut out = String::with_capacity(96 + f.filename.len());
    push_file_link(f, &mut out);
    out
}

fn push_file_link(f: &FileEntry, out: &mut String) {
    out.push_str("../../files/");
    out.push_str(f.sha256().unwrap_or("-"));
    out.push('/');
    // Wheel and sdist names almost never need escaping; check before formatting.
    if !any_byte(&f.filename, |b| {
        !(b.is_ascii_alphanumeric()
            | (b == b'-')
            | (b == b'_')
            | (b == b'.')
            | (b == b'+')
            | (b == b'!')
            | (b == b'~'))
    }) {
        out.push_str(&f.filename);
    } else {
        let _ = write!(out, "{}", utf8_percent_encode(&f.filename, SEGMENT));
    }
}

/// Whether any byte is `bad`, sixteen at a time: a fixed-size block with no exit inside becomes
/// a few vector compares (a plain fold vectorizes only in 64-byte steps, longer than most of
/// the strings served, which then go byte by byte). Most text has nothing to escape.
#[inline(always)]
fn any_byte(s: &str, bad: impl Fn(u8) -> bool) -> bool {
    let mut blocks = s.as_bytes().chunks_exact(16);
    for block in &mut blocks {
        let mut hit = 0u8;
        for &b in block {
            hit |= u8::from(bad(b));
        }
        if hit != 0 {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| bad(b))
}

fn needs_html_escape(s: &str) -> bool {
    any_byte(s, |b| {
        (b == b'&') | (b == b'<') | (b == b'>') | (b == b'"') | (b == b'\'')
    })
}

fn needs_json_escape(s: &str) -> bool {
    any_byte(s, |b| (b < 0x20) | (b == b'"') | (b == b'\\'))
}

pub fn escape_html(s: &str, out: &mut String) {
    if !needs_html_escape(s) {
        out.push_str(s);
        return;
    }
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

/// One `alg=hex` per attribute: prefer sha256, which every client knows.
fn push_hash_attr(hashes: &Hashes, out: &mut String) {
    match hashes
        .get("sha256")
        .map(|h| ("sha256", h))
        .or_else(|| hashes.iter().next())
    {
        Some((a, h)) => {
            escape_html(a, out);
            out.push('=');
            escape_html(h, out);
        }
        None => out.push_str("true"),
    }
}

/// Bytes a rendered file entry takes, about: sizes the output buffer once.
const BYTES_PER_FILE: usize = 480;

pub fn html(page: &ServedPage) -> Vec<u8> {
    let mut out = String::with_capacity(256 + page.files.len() * BYTES_PER_FILE);
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
    let mut link = String::with_capacity(256);
    for f in &page.files {
        out.push_str("    <a href=\"");
        link.clear();
        push_file_link(f, &mut link);
        escape_html(&link, &mut out);
        if let Some(sha) = f.sha256() {
            // Hex (checked when the page was read): nothing to escape.
            out.push_str("#sha256=");
            escape_html(sha, &mut out);
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
            out.push_str(" data-core-metadata=\"");
            push_hash_attr(h, &mut out);
            out.push_str("\" data-dist-info-metadata=\"");
            push_hash_attr(h, &mut out);
            out.push('"');
        }
        // Not standard in HTML; uv reads them (cooldowns need upload times).
        if let Some(s) = f.size {
            let _ = write!(out, " data-size=\"{s}\"");
        }
        if let Some(t) = &f.upload_time {
            // PEP 700's form (checked when the page was read): digits and `-:.TZ`.
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

/// A JSON string literal, escaped as serde_json does (only `"`, `\` and control characters;
/// other text passes as UTF-8). Most strings need no escape and are copied whole.
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    if !needs_json_escape(s) {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

fn json_map(map: &Hashes, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(k, out);
        out.push(':');
        json_str(v, out);
    }
    out.push('}');
}

/// The PEP 691 page, written directly (compact, keys in a fixed order). Keys are omitted, never
/// `null`: uv rejects `null` for most of them. Only the PEP 714 `core-metadata` key is written:
/// the old JSON key crashes some pip versions.
pub fn json(page: &ServedPage) -> Vec<u8> {
    let mut out = String::with_capacity(256 + page.files.len() * BYTES_PER_FILE);
    out.push_str("{\"meta\":{\"api-version\":");
    json_str(page.api_version(), &mut out);
    out.push_str("},\"name\":");
    json_str(&page.name, &mut out);
    out.push_str(",\"files\":[");
    let mut link = String::with_capacity(256);
    for (i, f) in page.files.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"filename\":");
        json_str(&f.filename, &mut out);
        out.push_str(",\"url\":");
        link.clear();
        push_file_link(f, &mut link);
        json_str(&link, &mut out);
        out.push_str(",\"hashes\":");
        json_map(&f.hashes, &mut out);
        if let Some(rp) = &f.requires_python {
            out.push_str(",\"requires-python\":");
            json_str(rp, &mut out);
        }
        match f.yanked.as_deref() {
            None => {}
            Some("") => out.push_str(",\"yanked\":true"),
            Some(reason) => {
                out.push_str(",\"yanked\":");
                json_str(reason, &mut out);
            }
        }
        match &f.core_metadata {
            CoreMetadata::Absent => {}
            CoreMetadata::Present(h) if h.is_empty() => out.push_str(",\"core-metadata\":true"),
            CoreMetadata::Present(h) => {
                out.push_str(",\"core-metadata\":");
                json_map(h, &mut out);
            }
        }
        if let Some(size) = f.size {
            let _ = write!(out, ",\"size\":{size}");
        }
        if let Some(t) = &f.upload_time {
            out.push_str(",\"upload-time\":");
            json_str(t, &mut out);
        }
        out.push('}');
    }
    out.push_str("],\"versions\":[");
    for (i, v) in page.versions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(v, &mut out);
    }
    out.push(']');
    if let Some(st) = &page.status {
        out.push_str(",\"project-status\":{\"status\":");
        json_str(&st.status, &mut out);
        if let Some(r) = &st.reason {
            out.push_str(",\"reason\":");
            json_str(r, &mut out);
        }
        out.push('}');
    }
    out.push_str("}\n");
    out.into_bytes()
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
            url: crate::index::FileUrl::Resolved(Box::new(
                Url::parse(&format!("https://up/{name}")).unwrap(),
            )),
            hashes: Hashes::from([("sha256", H)]),
            requires_python: Some(">=3.8,<4".into()),
            yanked: y.map(Into::into),
            core_metadata: CoreMetadata::Present(Hashes::from([("sha256", H)])),
            size: Some(10),
            provenance: None,
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
    fn json_strings_are_escaped_as_json_requires() {
        let mut page = sample();
        let hostile = "tab\there \"q\" back\\slash \u{1}\u{1f} é ✓ \n";
        page.files[1].yanked = Some(hostile.into());
        page.name = "na\"me".into();
        let bytes = json(&page);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["files"][1]["yanked"], hostile);
        assert_eq!(v["name"], "na\"me");
        assert_eq!(v["files"][0]["hashes"]["sha256"], H);
        assert_eq!(v["versions"][1], "1.1");
        // Compact, as clients have always seen it.
        assert!(
            std::str::from_utf8(&bytes)
                .unwrap()
                .starts_with("{\"meta\":{\"api-version\":\"1.1\"},\"name\":")
        );
    }

    #[test]
    fn escape_scans_find_every_special_byte_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0u8..128 {
                    let mut text = vec![b'a'; len];
                    text[at] = b;
                    let s = std::str::from_utf8(&text).unwrap();
                    let html = matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
                    let json = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_html_escape(s), html, "{s:?}");
                    assert_eq!(needs_json_escape(s), json, "{s:?}");
                }
            }
        }
        // Bytes above ASCII (UTF-8 continuation and lead bytes) are never special.
        assert!(!needs_json_escape("é✓ÿ€ é✓ÿ€ é✓ÿ€"));
        assert!(!needs_html_escape("é✓ÿ€ é✓ÿ€ é✓ÿ€"));
    }

    #[test]
    fn render_is_deterministic() {
        assert_eq!(html(&sample()), html(&sample()));
        assert_eq!(json(&sample()), json(&sample()));
    }
}
