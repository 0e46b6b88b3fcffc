//! OpenSSF Scorecard results, read once from a local JSON Lines file (the data `[health]`
//! judges projects by; the minimums a policy sets on them are its `[health]` rule).
//!
//! Scorecard grades a project's source repository (is it maintained, are changes reviewed, are
//! releases signed, …) from 0 to 10. pipwall never asks a Scorecard service: scores drift
//! slowly, a request per project page would leak what is being installed, and an answer that
//! changes between two page loads is worse than one that is a week old. So the data is a file
//! the operator refreshes (`scorecard --format=json` per repository, one result per line, with
//! the Python project names added), and `max-age` says how old it may get.
//!
//! The file is third-party data and treated as hostile: its size is capped, every line must be
//! a result pipwall understands (a line that is not is an error naming its line, and the whole
//! file is refused, so a half-read file never decides), and strings that reach logs and pages
//! are checked to be short printable ASCII.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;

use crate::dist::ProjectName;

/// A Scorecard result with its check details is a few KiB; a quarter of a GiB is room for every
/// Python project that has a repository, and stops a file that would only exhaust memory.
pub const MAX_DATA_BYTES: u64 = 256 * 1024 * 1024;
/// Problems listed one by one; past this many a broken file is only counted, so a file of the
/// wrong kind cannot flood `policy check`.
pub const MAX_PROBLEMS: usize = 100;
/// Repository names end up in decisions and logs; real ones (`github.com/org/repo`) are short.
const MAX_REPO_CHARS: usize = 256;
/// Scorecard check names are short words (`Code-Review`); the cap keeps them one per line.
const MAX_CHECK_CHARS: usize = 64;
/// Distinct check names across the file; Scorecard has about twenty.
const MAX_CHECK_NAMES: usize = 1024;

/// The names of the checks Scorecard runs (v5), for the "did you mean" of a misspelt minimum.
/// A name not listed is only warned about: newer Scorecard releases add checks.
pub const KNOWN_CHECKS: &[&str] = &[
    "Binary-Artifacts",
    "Branch-Protection",
    "CI-Tests",
    "CII-Best-Practices",
    "Code-Review",
    "Contributors",
    "Dangerous-Workflow",
    "Dependency-Update-Tool",
    "Fuzzing",
    "License",
    "Maintained",
    "Packaging",
    "Pinned-Dependencies",
    "SAST",
    "SBOM",
    "Security-Policy",
    "Signed-Releases",
    "Token-Permissions",
    "Vulnerabilities",
    "Webhooks",
];

/// What pipwall keeps of one Scorecard result.
#[derive(Clone, Debug, PartialEq)]
pub struct Scorecard {
    /// `repo.name`, e.g. `github.com/psf/requests`.
    pub repo: String,
    pub date: Option<Timestamp>,
    /// The aggregate score, 0 to 10; `None` when Scorecard gave none (`-1`).
    pub score: Option<f64>,
    /// Check name (an index into [`ScorecardDb::check_name`]) and score; `-1` when the check
    /// could not run.
    checks: Box<[(u16, f64)]>,
    /// The 1-based line of the data file the result was read from.
    pub line: usize,
}

/// One thing wrong in the data file, with the position to fix it at (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataProblem {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for DataProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScorecardError {
    #[error("cannot read Scorecard data {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Scorecard data {} is larger than {MAX_DATA_BYTES} bytes; refusing it", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} problem(s) in Scorecard data {}", total, path.display())]
    Invalid {
        path: PathBuf,
        /// The first [`MAX_PROBLEMS`], in line order.
        problems: Vec<DataProblem>,
        /// All of them, listed or not.
        total: usize,
    },
}

/// The results, indexed by normalized project name. Built once per policy load and shared
/// read-only by every request.
#[derive(Debug, Default)]
pub struct ScorecardDb {
    records: Vec<Scorecard>,
    by_project: HashMap<String, u32>,
    /// Check names are the same few words in every result: kept once.
    check_names: Vec<Box<str>>,
    newest: Option<Timestamp>,
}

/// One line as Scorecard prints it, plus the project names. Fields pipwall does not use
/// (`scorecard`, `metadata`, each check's `reason` and `documentation`) are skipped unread.
#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    date: Option<String>,
    repo: RawRepo,
    score: f64,
    #[serde(default)]
    checks: Vec<RawCheck>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    projects: Vec<String>,
}

#[derive(Deserialize)]
struct RawRepo {
    name: String,
}

#[derive(Deserialize)]
struct RawCheck {
    name: String,
    score: f64,
}

impl ScorecardDb {
    /// Reads a JSON Lines file of Scorecard results. Blank lines are skipped; any other line
    /// that is not a result naming at least one valid project fails the whole load.
    pub fn load(path: &Path) -> Result<Self, ScorecardError> {
        let io_err = |source| ScorecardError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a directory, not a JSON Lines file",
            )));
        }
        if meta.len() > MAX_DATA_BYTES {
            return Err(ScorecardError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        // `take` as well: a file may grow between the size check and the read, or be a pipe.
        let mut reader = BufReader::new(file.take(MAX_DATA_BYTES + 1));
        let mut db = Self::default();
        let mut problems = Vec::new();
        let mut total = 0usize;
        let mut read = 0u64;
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            if read > MAX_DATA_BYTES {
                return Err(ScorecardError::TooLarge {
                    path: path.to_path_buf(),
                });
            }
            line_no += 1;
            if let Err(p) = db.add_line(&buf, line_no) {
                total += 1;
                if problems.len() < MAX_PROBLEMS {
                    problems.push(p);
                }
            }
        }
        if total > 0 {
            return Err(ScorecardError::Invalid {
                path: path.to_path_buf(),
                problems,
                total,
            });
        }
        Ok(db)
    }

    /// Parses one line into the index: `Ok` for a blank line too.
    fn add_line(&mut self, bytes: &[u8], line: usize) -> Result<(), DataProblem> {
        let problem = |col: usize, message: String| DataProblem { line, col, message };
        // Without its line end, so serde's column is on this line even at an early EOF.
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let raw: RawResult = serde_json::from_slice(bytes).map_err(|e| {
            let msg = e.to_string();
            // serde's message ends with its own position, always line 1 here: the column is
            // kept separately and the line is ours.
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            problem(e.column().max(1), format!("not a Scorecard result: {msg}"))
        })?;
        let repo = raw.repo.name.trim();
        if !is_token(repo, MAX_REPO_CHARS) {
            return Err(problem(
                1,
                "repo.name must be a repository name such as \"github.com/org/repo\" (printable ASCII, no spaces)"
                    .into(),
            ));
        }
        let date = match raw.date.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(parse_date(d).ok_or_else(|| {
                problem(
                    1,
                    format!(
                        "date `{}` is not a date (YYYY-MM-DD) or an RFC 3339 date-time",
                        shown(d)
                    ),
                )
            })?),
        };
        let score = score_value(raw.score).ok_or_else(|| {
            problem(
                1,
                format!("score {} is not from 0 to 10 (or -1: none)", raw.score),
            )
        })?;
        let mut checks = Vec::with_capacity(raw.checks.len());
        for c in &raw.checks {
            let name = c.name.trim();
            if !is_check_name(name) {
                return Err(problem(
                    1,
                    format!(
                        "check name `{}` is not a Scorecard check name (letters, digits and `-`)",
                        shown(name)
                    ),
                ));
            }
            let Some(s) = score_value(c.score) else {
                return Err(problem(
                    1,
                    format!(
                        "check {name}: score {} is not from 0 to 10 (or -1: not run)",
                        c.score
                    ),
                ));
            };
            let id = self.check_id(name).ok_or_else(|| {
                problem(
                    1,
                    format!("more than {MAX_CHECK_NAMES} distinct check names in the file"),
                )
            })?;
            checks.push((id, s.unwrap_or(-1.0)));
        }
        let mut names = Vec::with_capacity(raw.projects.len() + 1);
        for n in raw.project.iter().chain(&raw.projects) {
            match ProjectName::new(n) {
                Ok(p) => names.push(p),
                Err(e) => {
                    return Err(problem(1, format!("project `{}`: {e}", shown(n))));
                }
            }
        }
        if names.is_empty() {
            return Err(problem(
                1,
                format!(
                    "the result for {repo} names no Python project: add \"project\": \"name\" (or \"projects\": [...])"
                ),
            ));
        }
        let index = u32::try_from(self.records.len())
            .map_err(|_| problem(1, "too many results in one file".into()))?;
        self.newest = self.newest.max(date);
        self.records.push(Scorecard {
            repo: repo.to_owned(),
            date,
            score,
            checks: checks.into_boxed_slice(),
            line,
        });
        for name in names {
            let name = name.as_str().to_owned();
            // A file appended to run after run names a project again: the newest result
            // counts, and of two from the same day the later line.
            let keep_old = self
                .by_project
                .get(&name)
                .and_then(|&i| self.records.get(i as usize))
                .is_some_and(|old| old.date > date);
            if !keep_old {
                self.by_project.insert(name, index);
            }
        }
        Ok(())
    }

    fn check_id(&mut self, name: &str) -> Option<u16> {
        if let Some(i) = self.check_names.iter().position(|n| &**n == name) {
            return u16::try_from(i).ok();
        }
        if self.check_names.len() >= MAX_CHECK_NAMES {
            return None;
        }
        self.check_names.push(name.into());
        u16::try_from(self.check_names.len() - 1).ok()
    }

    /// The result for a project, by its PEP 503-normalized name.
    pub fn get(&self, normalized: &str) -> Option<&Scorecard> {
        self.by_project
            .get(normalized)
            .and_then(|&i| self.records.get(i as usize))
    }

    /// A check's score in a result: `None` when the result does not list the check, `-1` when
    /// it could not run.
    pub fn check_score(&self, card: &Scorecard, check: &str) -> Option<f64> {
        let id = self.check_names.iter().position(|n| &**n == check)?;
        card.checks
            .iter()
            .find(|(i, _)| usize::from(*i) == id)
            .map(|(_, s)| *s)
    }

    /// Whether any result lists this check: a minimum for a check no result has is likely a
    /// misspelling.
    pub fn knows_check(&self, check: &str) -> bool {
        self.check_names.iter().any(|n| &**n == check)
    }

    /// The newest `date` of any result: how fresh the data is.
    pub fn newest(&self) -> Option<Timestamp> {
        self.newest
    }

    /// Projects with a result.
    pub fn len(&self) -> usize {
        self.by_project.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_project.is_empty()
    }
}

/// A score as Scorecard writes one: `Some(Some(s))` for 0 to 10, `Some(None)` for `-1` (no
/// score), `None` for anything else.
fn score_value(s: f64) -> Option<Option<f64>> {
    if s == -1.0 {
        Some(None)
    } else if (0.0..=10.0).contains(&s) {
        Some(Some(s))
    } else {
        None
    }
}

/// A value from the file quoted in a problem: escaped, so it cannot forge terminal output, and
/// cut short, so one hostile line cannot fill the screen.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

fn is_token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_check_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CHECK_CHARS
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Scorecard's CLI prints a date; its API and BigQuery tables a date-time.
fn parse_date(s: &str) -> Option<Timestamp> {
    s.parse::<Timestamp>().ok().or_else(|| {
        s.parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ScorecardDb, ScorecardError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scorecards.jsonl");
        std::fs::write(&path, text).unwrap();
        ScorecardDb::load(&path)
    }

    fn problems(text: &str) -> Vec<DataProblem> {
        match load(text) {
            Err(ScorecardError::Invalid { problems, .. }) => problems,
            other => panic!("{other:?}"),
        }
    }

    const REQUESTS: &str = r#"{"date":"2026-11-01","repo":{"name":"github.com/psf/requests","commit":"abc"},"scorecard":{"version":"v5.0.0"},"score":7.3,"checks":[{"name":"Maintained","score":10,"reason":"30 commits","details":null,"documentation":{"short":"…","url":"…"}},{"name":"Fuzzing","score":-1,"reason":"internal error"}],"metadata":null,"project":"Requests"}"#;

    #[test]
    fn a_result_as_scorecard_prints_it_is_indexed_by_normalized_name() {
        let db = load(&format!("{REQUESTS}\n\n")).unwrap();
        let card = db.get("requests").unwrap();
        assert_eq!(card.repo, "github.com/psf/requests");
        assert_eq!(card.score, Some(7.3));
        assert_eq!(card.line, 1);
        assert_eq!(db.check_score(card, "Maintained"), Some(10.0));
        assert_eq!(db.check_score(card, "Fuzzing"), Some(-1.0));
        assert_eq!(db.check_score(card, "Code-Review"), None);
        assert_eq!(db.newest(), Some("2026-11-01T00:00:00Z".parse().unwrap()));
        assert!(
            db.get("Requests").is_none(),
            "lookups take normalized names"
        );
    }

    #[test]
    fn one_result_may_name_several_projects() {
        let db = load(
            r#"{"date":"2026-10-01T08:00:00Z","repo":{"name":"github.com/org/mono"},"score":4,"project":"a_b","projects":["c.d","E"]}"#,
        )
        .unwrap();
        assert_eq!(db.len(), 3);
        for n in ["a-b", "c-d", "e"] {
            assert_eq!(db.get(n).unwrap().repo, "github.com/org/mono");
        }
    }

    #[test]
    fn the_newest_result_for_a_project_counts() {
        let line = |date: &str, score: f64| {
            format!(
                r#"{{"date":"{date}","repo":{{"name":"github.com/o/r"}},"score":{score},"project":"demo"}}"#
            )
        };
        let db = load(
            &[
                line("2026-10-01", 2.0),
                line("2026-11-01", 8.0),
                line("2026-09-01", 1.0),
            ]
            .join("\n"),
        )
        .unwrap();
        assert_eq!(db.get("demo").unwrap().score, Some(8.0));
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_line_and_column() {
        let p = problems("{\"repo\":\r\n");
        assert_eq!((p[0].line, p[0].col), (1, 8), "a cut-off line: {}", p[0]);
        let p = problems(&format!(
            "{REQUESTS}\n{{\"date\": \"2026-11-01\", \"repo\": }}\n"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!((p[0].line, p[0].col), (2, 32), "{}", p[0]);
        assert!(
            p[0].message.starts_with("not a Scorecard result: "),
            "{}",
            p[0]
        );
        assert!(!p[0].message.contains("at line 1"), "{}", p[0]);
    }

    #[test]
    fn each_kind_of_bad_result_is_refused() {
        // A hostile name is quoted cut short.
        let long_line = format!(
            r#"{{"repo":{{"name":"github.com/o/r"}},"score":5,"project":"{}\u001b"}}"#,
            "y".repeat(100)
        );
        let long_want = format!("project `{}…`", "y".repeat(64));
        let cases = [
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":5}"#,
                "names no Python project",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":11,"project":"x"}"#,
                "score 11",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":-2,"project":"x"}"#,
                "score -2",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":5,"project":"x","checks":[{"name":"Maintained","score":12}]}"#,
                "check Maintained: score 12",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":5,"project":"x","checks":[{"name":"Main tained","score":1}]}"#,
                "not a Scorecard check name",
            ),
            (
                r#"{"repo":{"name":"git hub"},"score":5,"project":"x"}"#,
                "repo.name",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"score":5,"project":"x y"}"#,
                "project `x y`",
            ),
            (long_line.as_str(), long_want.as_str()),
            (
                r#"{"date":"last week","repo":{"name":"github.com/o/r"},"score":5,"project":"x"}"#,
                "date `last week`",
            ),
            (
                r#"{"repo":{"name":"github.com/o/r"},"project":"x"}"#,
                "missing field `score`",
            ),
            ("[1, 2]", "not a Scorecard result"),
            ("\u{7f}ELF", "not a Scorecard result"),
        ];
        for (line, want) in cases {
            let p = problems(&format!("\n{line}\n"));
            assert_eq!(p.len(), 1, "{line}: {p:?}");
            assert_eq!(p[0].line, 2, "{line}");
            assert!(p[0].message.contains(want), "{line}: {}", p[0].message);
        }
    }

    #[test]
    fn problems_are_capped_but_counted() {
        let text = "x\n".repeat(MAX_PROBLEMS + 5);
        match load(&text) {
            Err(ScorecardError::Invalid {
                problems, total, ..
            }) => {
                assert_eq!((problems.len(), total), (MAX_PROBLEMS, MAX_PROBLEMS + 5));
                assert_eq!(problems.last().map(|p| p.line), Some(MAX_PROBLEMS));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_file_or_a_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            ScorecardDb::load(&dir.path().join("nope.jsonl")),
            Err(ScorecardError::Io { .. })
        ));
        assert!(matches!(
            ScorecardDb::load(dir.path()),
            Err(ScorecardError::Io { .. })
        ));
    }
}
