//! Problems found in policy files, each pointing at a file, line and column, so `pipwall policy
//! check` output can be followed in an editor and `serve` can refuse a policy with the same text.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    /// Stable kebab-case code (`unknown-key`, `bad-specifier`, …), for tests and log queries.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}:{}:{}: {sev}[{}]: {}",
            self.file, self.line, self.col, self.code, self.message
        )
    }
}

/// One SARIF result: a rule (a stable code), how bad, what to say, and where.
pub struct SarifResult<'a> {
    pub rule: &'a str,
    pub level: &'static str,
    pub message: String,
    /// A file path as the user gave it (relative stays relative).
    pub file: &'a str,
    /// Line and column, when the result points inside the file.
    pub region: Option<(usize, usize)>,
}

/// A SARIF 2.1.0 log (OASIS) of `results`, so code-scanning tools can show them inline. Each
/// distinct code is a rule.
pub fn sarif_log<'a>(results: impl IntoIterator<Item = SarifResult<'a>>) -> serde_json::Value {
    use serde_json::json;
    let mut rules: Vec<&str> = Vec::new();
    let results: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| {
            let index = match rules.iter().position(|x| *x == r.rule) {
                Some(i) => i,
                None => {
                    rules.push(r.rule);
                    rules.len() - 1
                }
            };
            let mut location = json!({ "artifactLocation": { "uri": sarif_uri(r.file) } });
            if let Some((line, col)) = r.region {
                location["region"] = json!({ "startLine": line, "startColumn": col });
            }
            json!({
                "ruleId": r.rule,
                "ruleIndex": index,
                "level": r.level,
                "message": { "text": r.message },
                "locations": [{ "physicalLocation": location }]
            })
        })
        .collect();
    let rules: Vec<serde_json::Value> = rules.iter().map(|r| json!({ "id": r })).collect();
    json!({
        "$schema": "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "pipwall",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }},
            "results": results
        }]
    })
}

/// The diagnostics as a SARIF log, so code-scanning tools can show policy problems inline on
/// the policy file; results point at `file:line:col`, read from where `policy check` ran.
pub fn sarif(diags: &[Diagnostic]) -> serde_json::Value {
    sarif_log(diags.iter().map(|d| SarifResult {
        rule: d.code,
        level: match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        message: d.message.clone(),
        file: &d.file,
        region: Some((d.line, d.col)),
    }))
}

fn sarif_uri(path: &str) -> String {
    let p = std::path::Path::new(path);
    if p.is_absolute()
        && let Ok(u) = url::Url::from_file_path(p)
    {
        return u.to_string();
    }
    percent_encoding::utf8_percent_encode(&path.replace('\\', "/"), SARIF_PATH).to_string()
}

/// What a relative URI reference may not hold as is: controls, space and the characters that
/// would end or change the path part.
const SARIF_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Where a policy value was written: the decision that value made points here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Byte offset → 1-based line and column (in characters), computed once per file.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { starts }
    }

    pub fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sarif_has_one_rule_per_code_and_a_location_per_result() {
        let d = |file: &str, line, code, severity| Diagnostic {
            file: file.into(),
            line,
            col: 3,
            severity,
            code,
            message: format!("{code} here"),
        };
        let log = sarif(&[
            d("policies/a b.toml", 2, "bad-duration", Severity::Error),
            d(
                "/etc/pipwall/p.toml",
                7,
                "expired-exception",
                Severity::Warning,
            ),
            d("policies/a b.toml", 9, "bad-duration", Severity::Error),
        ]);
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], "pipwall");
        assert_eq!(
            run["tool"]["driver"]["rules"],
            serde_json::json!([{"id": "bad-duration"}, {"id": "expired-exception"}])
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(
            results[1],
            serde_json::json!({
                "ruleId": "expired-exception",
                "ruleIndex": 1,
                "level": "warning",
                "message": {"text": "expired-exception here"},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": "file:///etc/pipwall/p.toml"},
                    "region": {"startLine": 7, "startColumn": 3}
                }}]
            })
        );
        assert_eq!(
            results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "policies/a%20b.toml"
        );
        assert_eq!(results[2]["ruleIndex"], 0);
        assert_eq!(sarif(&[])["runs"][0]["results"], serde_json::json!([]));
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.position(text, 0), (1, 1));
        assert_eq!(idx.position(text, 6), (2, 1));
        // `=` after a two-byte character is the fourth character of line 2.
        assert_eq!(idx.position(text, 10), (2, 4));
        assert_eq!(idx.position(text, 999), (3, 1));
    }
}
