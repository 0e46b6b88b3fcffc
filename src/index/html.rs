//! PEP 503 HTML pages, read as pip reads them: only `<a>`, the first `<base>`, and PEP 792's
//! `<meta>` tags matter. Parsed with html5ever's tokenizer (no tree is built), so a page of any
//! shape costs one linear pass.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

use super::model::{CoreMetadata, FileEntry, Hashes, InvalidEntry, ProjectPage, ProjectStatus};
use super::model::{FileUrl, href_filename, href_scheme, provenance_href, valid_upload_time};
use super::{MAX_FILES, PageError, check_hash, check_requires_python};

/// One tag's attributes as the tokenizer gives them: names already lowercased, a repeated
/// attribute already dropped (the first one counts, as in a browser). Kept as they come, with
/// no copy: a tag has a handful, so a lookup is a short scan.
struct Attrs(Vec<html5ever::Attribute>);

impl Attrs {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| &*a.value)
    }
}

#[derive(Default)]
struct Collected {
    anchors: Vec<Attrs>,
    base: Option<String>,
    status: Option<String>,
    status_reason: Option<String>,
    too_many: bool,
}

#[derive(Default)]
struct Sink(RefCell<Collected>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let Token::TagToken(mut tag) = token else {
            return TokenSinkResult::Continue;
        };
        if tag.kind != TagKind::StartTag {
            return TokenSinkResult::Continue;
        }
        let mut c = self.0.borrow_mut();
        match &*tag.name {
            "a" => {
                if c.anchors.len() >= MAX_FILES {
                    c.too_many = true;
                } else {
                    c.anchors.push(Attrs(std::mem::take(&mut tag.attrs)));
                }
            }
            "base" if c.base.is_none() => {
                c.base = Attrs(std::mem::take(&mut tag.attrs))
                    .get("href")
                    .map(str::to_owned);
            }
            "meta" => {
                let a = Attrs(std::mem::take(&mut tag.attrs));
                let content = a.get("content").map(str::to_owned);
                match a.get("name") {
                    Some("pypi:project-status") => c.status = content,
                    Some("pypi:project-status-reason") => c.status_reason = content,
                    _ => {}
                }
            }
            // Text inside these is not markup: an `<a>` in a script is not a link.
            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "title" | "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => return TokenSinkResult::Plaintext,
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

fn tokenize(text: &str) -> Collected {
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(text));
    let tok = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let _ = tok.feed(&input);
    tok.end();
    tok.sink.0.into_inner()
}

/// Parses a project page. Never fails on markup: an anchor that cannot be read becomes an
/// [`InvalidEntry`]; only an absurd number of anchors fails the page.
pub fn parse(text: &str, page_url: &Url) -> Result<ProjectPage, PageError> {
    let c = tokenize(text);
    if c.too_many {
        return Err(PageError::TooManyFiles(MAX_FILES));
    }
    // HTML's rule: the first `<base href>` in the document sets the base for every link.
    let base = std::sync::Arc::new(
        c.base
            .as_deref()
            .and_then(|b| page_url.join(b.trim()).ok())
            .unwrap_or_else(|| page_url.clone()),
    );
    let mut page = ProjectPage {
        status: c.status.map(|status| ProjectStatus {
            status,
            reason: c.status_reason,
        }),
        ..ProjectPage::default()
    };
    for attrs in c.anchors {
        match anchor(&attrs, &base) {
            Ok(Some(f)) => page.files.push(f),
            Ok(None) => {}
            Err(e) => page.invalid.push(e),
        }
    }
    Ok(page)
}

/// Reads one anchor. `Ok(None)` for an anchor that is not a link (no or empty `href`), as pip
/// and uv skip those.
fn anchor(attrs: &Attrs, base: &std::sync::Arc<Url>) -> Result<Option<FileEntry>, InvalidEntry> {
    let Some(href) = attrs
        .get("href")
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
    else {
        return Ok(None);
    };
    let invalid = |label: &str, reason: String| InvalidEntry {
        label: label.to_owned(),
        reason,
    };
    let (link, fragment) = href.split_once('#').unwrap_or((href, ""));
    if let Some(scheme) = href_scheme(link)
        && !scheme.eq_ignore_ascii_case("http")
        && !scheme.eq_ignore_ascii_case("https")
    {
        return Err(invalid(
            href,
            format!("link scheme `{scheme}` is not allowed"),
        ));
    }
    let filename = href_filename(link)
        .ok_or_else(|| invalid(href, "link has no filename".into()))?
        .into_owned();
    let hashes = fragment_hashes(fragment).map_err(|reason| invalid(&filename, reason))?;
    let url = FileUrl::Relative {
        base: base.clone(),
        href: link.to_owned(),
    };
    let core_metadata = attrs
        .get("data-core-metadata")
        .or_else(|| attrs.get("data-dist-info-metadata"))
        .map_or(CoreMetadata::Absent, metadata_attr);
    if let Some(rp) = attrs.get("data-requires-python") {
        check_requires_python(rp).map_err(|reason| invalid(&filename, reason))?;
    }
    Ok(Some(FileEntry {
        filename,
        url,
        hashes,
        requires_python: attrs
            .get("data-requires-python")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        // PEP 592: the attribute's presence means yanked, whatever its value.
        yanked: attrs.get("data-yanked").map(str::to_owned),
        core_metadata,
        // Not standard in HTML, but uv reads them; keep what parses.
        size: attrs.get("data-size").and_then(|s| s.trim().parse().ok()),
        provenance: attrs.get("data-provenance").and_then(provenance_href),
        upload_time: attrs
            .get("data-upload-time")
            .filter(|t| valid_upload_time(t))
            .map(str::to_owned),
    }))
}

/// Reads `alg=hex` pairs from a link fragment (`&`-separated, as pip accepts). Fragments that
/// name no known hash (`#egg=…`, `#main`) give no hashes.
fn fragment_hashes(fragment: &str) -> Result<Hashes, String> {
    let mut out = Hashes::default();
    for pair in fragment.split('&') {
        let Some((alg, hex)) = pair.split_once('=') else {
            continue;
        };
        match check_hash(alg, hex) {
            Some(Ok((alg, hex))) => match out.get(alg) {
                Some(prev) if prev != hex => {
                    return Err(format!("link names two different `{alg}` digests"));
                }
                Some(_) => {}
                None => {
                    out.insert(alg, hex);
                }
            },
            Some(Err(reason)) => return Err(format!("link hash is malformed: {reason}")),
            None => {}
        }
    }
    Ok(out)
}

/// `data-core-metadata`: `true`, or `alg=hex`. Anything else (including `false`) means absent,
/// as a malformed value would make pip or uv fetch a file that may not exist.
fn metadata_attr(value: &str) -> CoreMetadata {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        return CoreMetadata::Present(Hashes::default());
    }
    match v.split_once('=').and_then(|(a, h)| check_hash(a, h)) {
        Some(Ok((alg, hex))) => CoreMetadata::Present(Hashes::from([(alg, hex)])),
        _ => CoreMetadata::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "8c97e3bd0e2b0b5f4d87ad5c5fdfbde4d3d3e9c4a4b8e8a1d1c6f0f1e2d3c4b5";

    fn base() -> Url {
        Url::parse("https://up.example/simple/demo/").unwrap()
    }

    fn one(html: &str) -> FileEntry {
        let p = parse(html, &base()).unwrap();
        assert!(p.invalid.is_empty(), "{:?}", p.invalid);
        assert_eq!(p.files.len(), 1, "{p:?}");
        p.files.into_iter().next().unwrap()
    }

    #[test]
    fn parse_provenance_attribute() {
        let f = one(r#"<a href="d-1.zip" data-provenance="d-1.zip.provenance">d</a>"#);
        assert_eq!(f.provenance.as_deref(), Some("d-1.zip.provenance"));
        let f = one(r#"<a href="d-1.zip" data-provenance="javascript:x">d</a>"#);
        assert_eq!(f.provenance, None);
    }

    #[test]
    fn parse_sha256() {
        let f = one(&format!(
            r#"<a href="/f/demo-1.0-py3-none-any.whl#sha256={H}">x</a>"#
        ));
        assert_eq!(f.filename, "demo-1.0-py3-none-any.whl");
        assert_eq!(
            f.url.resolve().unwrap().as_str(),
            "https://up.example/f/demo-1.0-py3-none-any.whl"
        );
        assert_eq!(f.sha256(), Some(H));
    }

    #[test]
    fn parse_relative_href() {
        let f = one(r#"<a href="../../packages/demo-1.0.tar.gz">demo-1.0.tar.gz</a>"#);
        assert_eq!(
            f.url.resolve().unwrap().as_str(),
            "https://up.example/packages/demo-1.0.tar.gz"
        );
        assert!(f.hashes.is_empty());
    }

    #[test]
    fn parse_base_href() {
        let f = one(r#"<html><head><base href="https://files.example/x/"></head>
            <a href="demo-1.0.zip">a</a><base href="https://ignored.example/">"#);
        assert_eq!(
            f.url.resolve().unwrap().as_str(),
            "https://files.example/x/demo-1.0.zip"
        );
    }

    #[test]
    fn parse_missing_and_empty_href() {
        let p = parse(
            r#"<a name="x">x</a><a href="">y</a><a href="  ">z</a>"#,
            &base(),
        )
        .unwrap();
        assert_eq!(p, ProjectPage::default());
    }

    #[test]
    fn parse_entities_in_requires_python() {
        let f = one(r#"<a href="d-1.zip" data-requires-python="&gt;=3.8,&lt;4">d</a>"#);
        assert_eq!(f.requires_python.as_deref(), Some(">=3.8,<4"));
    }

    #[test]
    fn parse_yanked_presence_means_yanked() {
        assert_eq!(
            one(r#"<a href="d-1.zip" data-yanked>d</a>"#)
                .yanked
                .as_deref(),
            Some("")
        );
        assert_eq!(
            one(r#"<a href="d-1.zip" data-yanked="bad">d</a>"#)
                .yanked
                .as_deref(),
            Some("bad")
        );
        assert_eq!(one(r#"<a href="d-1.zip">d</a>"#).yanked, None);
    }

    #[test]
    fn parse_core_metadata_prefers_new_name() {
        let f = one(&format!(
            r#"<a href="d-1.zip" data-dist-info-metadata="true" data-core-metadata="sha256={H}">d</a>"#
        ));
        assert_eq!(
            f.core_metadata,
            CoreMetadata::Present(Hashes::from([("sha256", H)]))
        );
        let f = one(r#"<a href="d-1.zip" data-dist-info-metadata="true">d</a>"#);
        assert_eq!(f.core_metadata, CoreMetadata::Present(Hashes::default()));
        let f = one(r#"<a href="d-1.zip" data-core-metadata="false">d</a>"#);
        assert_eq!(f.core_metadata, CoreMetadata::Absent);
        let f = one(r#"<a href="d-1.zip" data-core-metadata="sha256=zz">d</a>"#);
        assert_eq!(f.core_metadata, CoreMetadata::Absent);
    }

    #[test]
    fn a_fragment_naming_one_digest_twice_must_agree() {
        let same = one(&format!(r#"<a href="d-1.zip#sha256={H}&sha256={H}">d</a>"#));
        assert_eq!(same.hashes.len(), 1);
        let other = "0".repeat(64);
        let p = parse(
            &format!(r#"<a href="d-1.zip#sha256={H}&sha256={other}">d</a>"#),
            &base(),
        )
        .unwrap();
        assert!(p.files.is_empty());
        assert!(
            p.invalid[0]
                .reason
                .contains("two different `sha256` digests")
        );
    }

    #[test]
    fn parse_egg_and_unknown_fragments_are_ignored() {
        assert!(one(r#"<a href="d-1.zip#egg=d">d</a>"#).hashes.is_empty());
        assert!(one(r#"<a href="d-1.zip#main">d</a>"#).hashes.is_empty());
        assert!(
            one(r#"<a href="d-1.zip#whirlpool=ab">d</a>"#)
                .hashes
                .is_empty()
        );
    }

    #[test]
    fn parse_uppercase_hash_is_lowercased() {
        let f = one(&format!(
            r#"<a href="d-1.zip#SHA256={}">d</a>"#,
            H.to_uppercase()
        ));
        assert_eq!(f.sha256(), Some(H));
    }

    #[test]
    fn err_malformed_hash_hides_only_that_file() {
        let p = parse(
            r#"<a href="d-1.zip#sha256=abc">d</a><a href="d-2.zip">d</a>"#,
            &base(),
        )
        .unwrap();
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.invalid.len(), 1);
        assert_eq!(p.invalid[0].label, "d-1.zip");
    }

    #[test]
    fn err_javascript_scheme() {
        let p = parse(r#"<a href="javascript:alert(1)">d</a>"#, &base()).unwrap();
        assert_eq!(p.files.len(), 0);
        assert_eq!(p.invalid.len(), 1);
    }

    #[test]
    fn parse_anchor_inside_script_is_not_a_link() {
        let p = parse(
            r#"<script>var s = '<a href="d-1.zip">';</script><a href="d-2.zip">d</a>"#,
            &base(),
        )
        .unwrap();
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].filename, "d-2.zip");
    }

    #[test]
    fn parse_attribute_names_case_insensitively() {
        let f = one(r#"<A HREF="d-1.zip" DATA-YANKED="r">d</A>"#);
        assert_eq!(f.yanked.as_deref(), Some("r"));
    }

    #[test]
    fn parse_query_string_is_kept_in_url_not_filename() {
        let f = one(r#"<a href="d-1.zip?token=x">d</a>"#);
        assert_eq!(f.filename, "d-1.zip");
        assert_eq!(f.url.resolve().unwrap().query(), Some("token=x"));
    }

    #[test]
    fn parse_project_status_meta() {
        let p = parse(
            r#"<head><meta name="pypi:project-status" content="quarantined"><meta name="pypi:project-status-reason" content="malware"></head>"#,
            &base(),
        )
        .unwrap();
        assert_eq!(
            p.status,
            Some(ProjectStatus {
                status: "quarantined".into(),
                reason: Some("malware".into())
            })
        );
    }

    #[test]
    fn parse_garbage_does_not_panic() {
        for s in [
            "<",
            "<a",
            "<a href=",
            "<a href='x",
            "\u{0}<a href=x>",
            "<<<>>><a/b=c>",
            "<!--",
        ] {
            let _ = parse(s, &base());
        }
    }

    #[test]
    fn parse_size_and_upload_time_leniently() {
        let f = one(
            r#"<a href="d-1.zip" data-size="12" data-upload-time="2024-01-01T00:00:00Z">d</a>"#,
        );
        assert_eq!(f.size, Some(12));
        assert_eq!(f.upload_time.as_deref(), Some("2024-01-01T00:00:00Z"));
        let f = one(r#"<a href="d-1.zip" data-size="x" data-upload-time="yesterday">d</a>"#);
        assert_eq!((f.size, f.upload_time), (None, None));
    }
}

/// Hands the text of every `<a>` on a root page (a project name) to a callback.
struct NameSink<F> {
    on_name: RefCell<F>,
    current: RefCell<Option<String>>,
}

impl<F: FnMut(&str)> TokenSink for NameSink<F> {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(t) if &*t.name == "a" => {
                if t.kind == TagKind::StartTag {
                    *self.current.borrow_mut() = Some(String::new());
                } else if let Some(name) = self.current.borrow_mut().take() {
                    let name = name.trim();
                    if !name.is_empty() {
                        (self.on_name.borrow_mut())(name);
                    }
                }
            }
            Token::CharacterTokens(text) => {
                if let Some(cur) = self.current.borrow_mut().as_mut()
                    && cur.len() < 1024
                {
                    cur.push_str(&text);
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Reads a root page (PEP 503 `/simple/`) of any size in chunks, calling `on_name` with each
/// anchor's text. Invalid UTF-8 becomes U+FFFD, as a browser would read it.
pub fn stream_project_names(
    mut reader: impl std::io::Read,
    on_name: impl FnMut(&str),
) -> std::io::Result<()> {
    let tok = Tokenizer::new(
        NameSink {
            on_name: RefCell::new(on_name),
            current: RefCell::new(None),
        },
        TokenizerOpts::default(),
    );
    let input = BufferQueue::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&chunk[..n]);
        // Feed the longest valid UTF-8 prefix; an incomplete character waits for the next chunk.
        let mut text = String::new();
        loop {
            match std::str::from_utf8(&pending) {
                Ok(s) => {
                    text.push_str(s);
                    pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            text.push('\u{FFFD}');
                            pending.drain(..valid + bad);
                        }
                        None => {
                            pending.drain(..valid);
                            break;
                        }
                    }
                }
            }
        }
        input.push_back(StrTendril::from_slice(&text));
        let _ = tok.feed(&input);
    }
    if !pending.is_empty() {
        input.push_back(StrTendril::from_slice(&String::from_utf8_lossy(&pending)));
        let _ = tok.feed(&input);
    }
    tok.end();
    Ok(())
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn names_survive_chunk_boundaries_inside_characters() {
        // 70,000 two-byte characters put a chunk boundary inside one of them.
        let filler = "é".repeat(70_000);
        let page = format!("<p>{filler}</p><a href='x/'>Caf\u{e9}-Proj</a><a href='y/'> demo </a>");
        let mut names = Vec::new();
        stream_project_names(page.as_bytes(), |n| names.push(n.to_owned())).unwrap();
        assert_eq!(names, vec!["Caf\u{e9}-Proj", "demo"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut names = Vec::new();
        stream_project_names(&b"<a>ok</a><a>b\xffad</a>"[..], |n| {
            names.push(n.to_owned())
        })
        .unwrap();
        assert_eq!(names, vec!["ok", "b\u{FFFD}ad"]);
    }
}
