//! The decision log: one JSON line per decided file, to stderr or a file. It is written when a
//! page is decided anew, not each time cached bytes are served, so its volume follows upstream
//! change rather than traffic.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use crate::policy::{Action, Code, FileDecision};

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
    reason: String,
    /// The policy file and line that decided, when a policy rule did.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    upstream: &'a str,
}

pub struct DecisionLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl DecisionLog {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    pub fn stderr() -> Self {
        Self::new(Box::new(std::io::stderr()))
    }

    pub fn record(&self, scope: &str, project: &str, upstream: &str, decisions: &[FileDecision]) {
        let time = jiff::Timestamp::now().to_string();
        let mut buf = Vec::with_capacity(decisions.len() * 256);
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
                reason: d.decision.sentence(),
                policy: d.decision.origin.as_ref().map(ToString::to_string),
                upstream,
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
