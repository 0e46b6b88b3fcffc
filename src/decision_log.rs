//! The decision log: one JSON line per decided file, to stderr or a file. It is written when a
//! page is decided anew, not each time cached bytes are served, so its volume follows upstream
//! change rather than traffic.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use crate::policy::{Action, Code, FileDecision};

/// The request a decision is made for: set around request handling, read when a decision is
/// logged, so each line says who asked and which request's log lines go with it.
/// Cheap to make for every request (shared strings, an address): most requests log nothing.
#[derive(Clone, Debug)]
pub struct Requester {
    pub request_id: std::sync::Arc<str>,
    pub client: Caller,
}

/// The authenticated user (a token as `token:` and the first hex digits of its digest), else
/// the client's address.
#[derive(Clone, Debug)]
pub enum Caller {
    User(std::sync::Arc<str>),
    Address(std::net::IpAddr),
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User(u) => f.write_str(u),
            Self::Address(a) => a.fmt(f),
        }
    }
}

tokio::task_local! {
    pub static REQUESTER: Requester;
}

#[derive(Serialize)]
struct Event<'a> {
    time: String,
    event: &'static str,
    /// The index the page was decided for: `default` at `/simple/`, else a `--scope` name.
    scope: &'a str,
    project: &'a str,
    filename: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    action: Action,
    code: Code,
    /// The policy rule the code belongs to (`cooldown`, `audit`, …), for waivers and queries;
    /// absent for the built-in filename and integrity checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    /// The file as a package URL (`pkg:pypi/name@version?file_name=…`), the key SBOM and
    /// vulnerability tools share.
    purl: String,
    reason: String,
    /// The policy file and line that decided, when a policy rule did.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    upstream: &'a str,
    /// The replica that decided (`serve --state` or `--replica`): in a cluster, whose log
    /// line this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
}

/// What purl leaves unescaped in a version or qualifier value; everything else is
/// percent-encoded (`+` of a local version included).
const PURL_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// The package URL of a file: PyPI purls name the normalized project (already so here), the
/// version, and the file as the `file_name` qualifier.
pub fn purl(project: &str, version: Option<&str>, filename: &str) -> String {
    use percent_encoding::utf8_percent_encode as enc;
    let mut out = format!("pkg:pypi/{}", enc(project, PURL_ESCAPE));
    if let Some(v) = version {
        out.push('@');
        out.extend(enc(v, PURL_ESCAPE));
    }
    if !filename.is_empty() && !filename.contains(' ') {
        out.push_str("?file_name=");
        out.extend(enc(filename, PURL_ESCAPE));
    }
    out
}

pub struct DecisionLog {
    out: Mutex<Box<dyn Write + Send>>,
    replica: Option<String>,
}

impl DecisionLog {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            replica: None,
        }
    }

    /// Names `replica` on every line from now on.
    #[must_use]
    pub fn for_replica(mut self, replica: String) -> Self {
        self.replica = Some(replica);
        self
    }

    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    pub fn record(&self, scope: &str, project: &str, upstream: &str, decisions: &[FileDecision]) {
        let time = jiff::Timestamp::now().to_string();
        let requester = REQUESTER.try_with(Clone::clone).ok();
        let client = requester.as_ref().map(|r| r.client.to_string());
        let mut buf = Vec::with_capacity(decisions.len() * 320);
        for d in decisions {
            let ev = Event {
                time: time.clone(),
                event: "decision",
                scope,
                project,
                filename: &d.filename,
                sha256: d.sha256.as_deref(),
                version: d.version.as_deref(),
                action: d.decision.action,
                code: d.decision.code,
                rule: d.decision.code.rule().map(|r| r.as_str()),
                purl: purl(project, d.version.as_deref(), &d.filename),
                reason: d.decision.sentence(),
                policy: d.decision.origin.as_ref().map(ToString::to_string),
                upstream,
                replica: self.replica.as_deref(),
                request_id: requester.as_ref().map(|r| &*r.request_id),
                client: client.as_deref(),
            };
            // Serializing these plain structs cannot fail; a failure would only drop one line.
            if serde_json::to_writer(&mut buf, &ev).is_ok() {
                buf.push(b'\n');
            }
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_escape_what_the_spec_reserves() {
        assert_eq!(
            purl(
                "demo",
                Some("1.0+local.1"),
                "demo-1.0+local.1-py3-none-any.whl"
            ),
            "pkg:pypi/demo@1.0%2Blocal.1?file_name=demo-1.0%2Blocal.1-py3-none-any.whl"
        );
        assert_eq!(purl("demo", None, "demo (every file)"), "pkg:pypi/demo");
    }

    #[test]
    fn a_line_names_the_rule_the_purl_and_who_asked() {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| std::io::Error::other("poisoned"))?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = DecisionLog::new(Box::new(Shared(out.clone())));
        let d = FileDecision {
            filename: "demo-1.0-py3-none-any.whl".into(),
            sha256: None,
            version: Some("1.0".into()),
            decision: crate::policy::Decision::hide(Code::CooldownTooNew, String::new()),
        };
        let who = Requester {
            request_id: "r-1".into(),
            client: Caller::User("alice".into()),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(REQUESTER.scope(who, async {
            log.record("ci", "demo", "up", std::slice::from_ref(&d))
        }));
        log.record("default", "demo", "up", &[d]);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["rule"], "cooldown");
        assert_eq!(
            lines[0]["purl"],
            "pkg:pypi/demo@1.0?file_name=demo-1.0-py3-none-any.whl"
        );
        assert_eq!(
            (lines[0]["request_id"].as_str(), lines[0]["client"].as_str()),
            (Some("r-1"), Some("alice"))
        );
        assert_eq!(lines[0]["scope"], "ci");
        // Outside a request (a background audit), the line says nothing of one.
        assert!(lines[1].get("request_id").is_none() && lines[1].get("client").is_none());
    }
}
