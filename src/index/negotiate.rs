//! PEP 691 content negotiation: which serialization a client gets, from its `Accept` header (or
//! the `?format=` parameter, which takes its place).

/// A serialization pipwall serves, in server preference order (JSON first: both pip and uv
/// prefer it, and it carries PEP 700's fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Html,
    /// Legacy PEP 503 `text/html`, the same markup as [`Format::Html`].
    TextHtml,
}

const JSON: &str = "application/vnd.pypi.simple.v1+json";
const HTML: &str = "application/vnd.pypi.simple.v1+html";
const TEXT_HTML: &str = "text/html";

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => JSON,
            Self::Html => HTML,
            Self::TextHtml => "text/html; charset=utf-8",
        }
    }

    pub fn is_json(self) -> bool {
        self == Self::Json
    }

    /// The media types this format answers to; `latest` aliases resolve to v1 (PEP 691).
    fn names(self) -> &'static [&'static str] {
        match self {
            Self::Json => &[JSON, "application/vnd.pypi.simple.latest+json"],
            Self::Html => &[HTML, "application/vnd.pypi.simple.latest+html"],
            Self::TextHtml => &[TEXT_HTML],
        }
    }
}

/// Picks the format for a request. `None` means nothing acceptable is offered (406).
///
/// No `Accept` header at all means `text/html`, so browsers and old tools keep working.
pub fn negotiate(accept: Option<&str>) -> Option<Format> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Some(Format::TextHtml);
    };
    let ranges: Vec<(String, f32)> = accept.split(',').filter_map(media_range).collect();
    let mut best: Option<(Format, f32)> = None;
    for format in [Format::Json, Format::Html, Format::TextHtml] {
        if let Some(q) = quality(&ranges, format.names())
            && q > 0.0
            && best.is_none_or(|(_, bq)| q > bq)
        {
            best = Some((format, q));
        }
    }
    best.map(|(f, _)| f)
}

/// One `type/subtype; q=…` item, lowercased, with its quality (default 1; invalid items are
/// dropped).
fn media_range(item: &str) -> Option<(String, f32)> {
    let mut parts = item.split(';');
    let mime = parts.next()?.trim().to_ascii_lowercase();
    if !mime.contains('/') {
        return None;
    }
    let mut q = 1.0;
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("q")
        {
            q = v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((mime, q))
}

/// Quality of a format (known by any of `names`, which share one top-level type) under the most
/// specific matching range: exact, then `type/*`, then `*/*`.
fn quality(ranges: &[(String, f32)], names: &[&str]) -> Option<f32> {
    let best = |pred: &dyn Fn(&str) -> bool| {
        ranges
            .iter()
            .filter(|(m, _)| pred(m))
            .map(|(_, q)| *q)
            .reduce(f32::max)
    };
    let ty = names.first()?.split_once('/')?.0;
    let wildcard = format!("{ty}/*");
    best(&|m| names.contains(&m))
        .or_else(|| best(&|m| m == wildcard))
        .or_else(|| best(&|m| m == "*/*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pip_and_uv_get_json() {
        let pip = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01";
        let uv = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";
        assert_eq!(negotiate(Some(pip)), Some(Format::Json));
        assert_eq!(negotiate(Some(uv)), Some(Format::Json));
    }

    #[test]
    fn html_only_clients() {
        assert_eq!(negotiate(Some("text/html")), Some(Format::TextHtml));
        assert_eq!(
            negotiate(Some(
                "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
            )),
            Some(Format::Html)
        );
    }

    #[test]
    fn latest_aliases() {
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.latest+json")),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.latest+html")),
            Some(Format::Html)
        );
    }

    #[test]
    fn quality_decides_then_server_order() {
        assert_eq!(
            negotiate(Some(
                "application/vnd.pypi.simple.v1+json;q=0.5, text/html;q=0.9"
            )),
            Some(Format::TextHtml)
        );
        assert_eq!(negotiate(Some("*/*")), Some(Format::Json));
        assert_eq!(negotiate(Some("text/*")), Some(Format::TextHtml));
    }

    #[test]
    fn missing_accept_is_text_html() {
        assert_eq!(negotiate(None), Some(Format::TextHtml));
        assert_eq!(negotiate(Some("  ")), Some(Format::TextHtml));
    }

    #[test]
    fn nothing_acceptable() {
        assert_eq!(negotiate(Some("application/xml")), None);
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0")),
            None
        );
        assert_eq!(negotiate(Some("garbage")), None);
    }

    #[test]
    fn specific_zero_beats_wildcard() {
        assert_eq!(
            negotiate(Some("application/vnd.pypi.simple.v1+json;q=0, */*;q=0.5")),
            Some(Format::Html)
        );
    }
}
