//! Reading one policy file: positions, and the readers of each kind of value a section may
//! hold (names, globs, durations, dates, version ranges, paths), each reporting a problem at the
//! value's `file:line:col` rather than stopping.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pep440_rs::VersionSpecifiers;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::policy::diag::{Diagnostic, LineIndex, Origin, Severity};
use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::policy::names::{NameEntry, NameMap};
use crate::policy::names::{compile_regex, is_glob, normalize_pattern, regex_why};
use crate::policy::rule::RuleAction;

/// A position kept for problems found after the walk (a glob that does not compile, a lock file
/// that does not load).
#[derive(Clone, Debug)]
pub(crate) struct Spot {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// One file being walked.
pub(crate) struct Walk<'a> {
    pub(crate) name: Arc<str>,
    pub(crate) text: &'a str,
    pub(crate) lines: LineIndex,
    pub(crate) dir: PathBuf,
    /// Problems found in this file, appended to the builder's when the walk ends.
    pub(crate) diags: Vec<Diagnostic>,
}

pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

impl Walk<'_> {
    pub(crate) fn spot(&self, span: &Range<usize>) -> Spot {
        let (line, col) = self.lines.position(self.text, span.start);
        Spot {
            file: self.name.to_string(),
            line,
            col,
        }
    }

    pub(crate) fn origin(&self, span: &Range<usize>) -> Origin {
        let (line, _) = self.lines.position(self.text, span.start);
        Origin {
            file: self.name.clone(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn problem(
        &mut self,
        span: &Range<usize>,
        sev: Severity,
        code: &'static str,
        msg: String,
    ) {
        let s = self.spot(span);
        self.diags.push(Diagnostic {
            file: s.file,
            line: s.line,
            col: s.col,
            severity: sev,
            code,
            message: msg,
        });
    }

    pub(crate) fn error(
        &mut self,
        span: &Range<usize>,
        code: &'static str,
        msg: impl Into<String>,
    ) {
        self.problem(span, Severity::Error, code, msg.into());
    }

    /// Reports keys not in `known`; returns the table's entries for the caller to read.
    pub(crate) fn keys<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        section: &str,
        known: &[&str],
    ) -> Vec<(&'t str, &'t Val<'i>, Range<usize>)> {
        let mut out = Vec::with_capacity(table.len());
        for (k, v) in table.iter() {
            let key: &str = k.get_ref();
            if known.contains(&key) {
                out.push((key, v, k.span()));
            } else {
                let hint = closest(key, known)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.error(
                    &k.span(),
                    "unknown-key",
                    format!("unknown key `{key}` in {section}{hint}"),
                );
            }
        }
        out
    }

    pub(crate) fn str<'v>(&mut self, v: &'v Val<'_>, what: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be a string, not {}", other.type_str()),
                );
                None
            }
        }
    }

    /// True for `""`, which the template writes for "not set".
    pub(crate) fn is_unset(v: &Val<'_>) -> bool {
        matches!(v.get_ref(), DeValue::String(s) if s.is_empty())
    }

    pub(crate) fn bool(&mut self, v: &Val<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be true or false, not {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(crate) fn array<'v, 'i>(&mut self, v: &'v Val<'i>, what: &str) -> &'v [Val<'i>] {
        match v.get_ref() {
            DeValue::Array(a) => a,
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be an array, not {}", other.type_str()),
                );
                &[]
            }
        }
    }

    pub(crate) fn table<'v, 'i>(&mut self, v: &'v Val<'i>, what: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be a table, not {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(crate) fn action(&mut self, v: &Val<'_>, what: &str) -> Option<RuleAction> {
        let s = self.str(v, what)?;
        let a = RuleAction::parse(s);
        if a.is_none() {
            self.error(
                &v.span(),
                "bad-action",
                format!("{what} must be \"hide\", \"yank\", \"warn\" or \"allow\", not \"{s}\""),
            );
        }
        a
    }

    pub(crate) fn duration(&mut self, v: &Val<'_>, what: &str) -> Option<jiff::SignedDuration> {
        let s = self.str(v, what)?;
        match parse_duration(s) {
            Some(d) => Some(d),
            None => {
                self.error(
                    &v.span(),
                    "bad-duration",
                    format!(
                        "{what}: `{s}` is not a duration (write e.g. \"7d\", \"12 hours\", \"1w\", \"2y\", \"P7D\" or \"PT12H\")"
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn timestamp(&mut self, v: &Val<'_>, what: &str) -> Option<jiff::Timestamp> {
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be a date-time, not {}", other.type_str()),
                );
                return None;
            }
        };
        let parsed = text.parse::<jiff::Timestamp>().ok().or_else(|| {
            text.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        });
        if parsed.is_none() {
            self.error(
                &v.span(),
                "bad-date",
                format!(
                    "{what}: `{text}` is not an RFC 3339 date-time with an offset (e.g. 2026-11-01T00:00:00Z) or a date"
                ),
            );
        }
        parsed
    }

    pub(crate) fn date(&mut self, v: &Val<'_>, what: &str) -> Option<jiff::civil::Date> {
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            other => {
                self.error(
                    &v.span(),
                    "wrong-type",
                    format!("{what} must be a date, not {}", other.type_str()),
                );
                return None;
            }
        };
        let d = text.parse::<jiff::civil::Date>().ok();
        if d.is_none() {
            self.error(
                &v.span(),
                "bad-date",
                format!("{what}: `{text}` is not a date (write YYYY-MM-DD)"),
            );
        }
        d
    }

    /// A Scorecard score: a number from 0 to 10, whole or not.
    pub(crate) fn score(&mut self, v: &Val<'_>, what: &str) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| i32::try_from(n).ok())
                .map(f64::from),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        let n = n.filter(|n| (0.0..=10.0).contains(n));
        if n.is_none() {
            self.error(
                &v.span(),
                "bad-value",
                format!("{what} must be a Scorecard score: a number from 0 to 10"),
            );
        }
        n
    }

    pub(crate) fn specifiers(&mut self, v: &Val<'_>, what: &str) -> Option<VersionSpecifiers> {
        let s = self.str(v, what)?;
        match s.parse::<VersionSpecifiers>() {
            Ok(spec) => Some(spec),
            Err(e) => {
                self.error(
                    &v.span(),
                    "bad-specifier",
                    format!(
                        "{what}: `{s}` is not a PEP 440 version specifier: {}",
                        e.to_string()
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .trim_end_matches(':')
                    ),
                );
                None
            }
        }
    }

    /// A project name or glob. Exact names must be valid PEP 508 names; globs are compiled
    /// here so a bad one is reported at its line.
    pub(crate) fn name_pattern(&mut self, v: &Val<'_>, what: &str) -> Option<(String, Spot)> {
        let raw = self.str(v, what)?;
        let spot = self.spot(&v.span());
        if is_glob(raw) {
            let norm = normalize_pattern(raw);
            if let Err(e) = Glob::new(&norm) {
                self.error(
                    &v.span(),
                    "bad-glob",
                    format!("{what}: `{raw}` is not a valid glob: {}", e.kind()),
                );
                return None;
            }
            return Some((norm, spot));
        }
        match crate::dist::ProjectName::new(raw) {
            Ok(n) => Some((n.as_str().to_owned(), spot)),
            Err(e) => {
                self.error(
                    &v.span(),
                    "bad-name",
                    format!("{what}: `{raw}` is not a project name: {e}"),
                );
                None
            }
        }
    }

    /// A list of names: each item a string or `{ name = "…", reason = "…" }`, and with
    /// `regex_ok` also `{ regex = "…", reason = "…" }`. Only lists that say so take a regex,
    /// so the key is offered where it is documented and nowhere else.
    pub(crate) fn name_list(
        &mut self,
        v: &Val<'_>,
        what: &str,
        regex_ok: bool,
    ) -> Vec<(NameEntry, Spot)> {
        let keys: &[&str] = if regex_ok {
            &["name", "regex", "reason"]
        } else {
            &["name", "reason"]
        };
        let mut out = Vec::new();
        for item in self.array(v, what) {
            let (name_val, reason) = match item.get_ref() {
                DeValue::Table(t) => {
                    let mut name = None;
                    let mut regex = None;
                    let mut reason = None;
                    for (k, val, _) in self.keys(t, what, keys) {
                        match k {
                            "name" => name = Some(val),
                            "regex" => regex = Some(val),
                            _ => reason = self.str(val, "reason").map(str::to_owned),
                        }
                    }
                    match (name, regex) {
                        (Some(name), None) => (name, reason),
                        (None, Some(regex)) => {
                            if let Some(entry) = self.regex_entry(regex, what, &item.span(), reason)
                            {
                                out.push(entry);
                            }
                            continue;
                        }
                        (Some(_), Some(_)) => {
                            self.error(
                                &item.span(),
                                "bad-value",
                                format!("an entry of {what} takes `name` or `regex`, not both"),
                            );
                            continue;
                        }
                        (None, None) => {
                            let needs = if regex_ok {
                                "`name` or `regex`"
                            } else {
                                "`name`"
                            };
                            self.error(
                                &item.span(),
                                "missing-key",
                                format!("an entry of {what} needs {needs}"),
                            );
                            continue;
                        }
                    }
                }
                _ => (item, None),
            };
            if let Some((pattern, spot)) = self.name_pattern(name_val, what) {
                let origin = self.origin(&item.span());
                out.push((
                    NameEntry {
                        pattern,
                        reason,
                        origin,
                        regex: false,
                    },
                    spot,
                ));
            }
        }
        out
    }

    /// `{ regex = "…" }`: compiled here, under the size cap, so a pattern that does not
    /// compile is reported at its own position; the list's `RegexSet` is built after the walk.
    pub(crate) fn regex_entry(
        &mut self,
        v: &Val<'_>,
        what: &str,
        item: &Range<usize>,
        reason: Option<String>,
    ) -> Option<(NameEntry, Spot)> {
        let raw = self.str(v, &format!("{what} regex"))?;
        if let Err(e) = compile_regex(raw) {
            self.error(
                &v.span(),
                "bad-regex",
                format!(
                    "{what}: `{raw}` is not a valid regular expression: {}",
                    regex_why(&e)
                ),
            );
            return None;
        }
        let pattern = raw.to_owned();
        let spot = self.spot(&v.span());
        let origin = self.origin(item);
        Some((
            NameEntry {
                pattern,
                reason,
                origin,
                regex: true,
            },
            spot,
        ))
    }

    /// A table of project name or glob → value (`{ django = ">=4.2" }`), each value read by
    /// `value`; entries with a bad name or value are reported and left out.
    pub(crate) fn name_table<T>(
        &mut self,
        v: &Val<'_>,
        what: &str,
        mut value: impl FnMut(&mut Self, &Val<'_>) -> Option<T>,
    ) -> Vec<(NameEntry, T, Spot)> {
        let Some(t) = self.table(v, what) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(t.len());
        for (k, val) in t.iter() {
            let name_val = Spanned::new(k.span(), DeValue::String(k.get_ref().clone()));
            let Some((pattern, spot)) = self.name_pattern(&name_val, what) else {
                continue;
            };
            let Some(parsed) = value(self, val) else {
                continue;
            };
            let entry = NameEntry {
                pattern,
                reason: None,
                origin: self.origin(&k.span()),
                regex: false,
            };
            out.push((entry, parsed, spot));
        }
        out
    }

    pub(crate) fn string_list(&mut self, v: &Val<'_>, what: &str) -> Vec<(String, Range<usize>)> {
        self.array(v, what)
            .iter()
            .filter_map(|item| {
                let s = self.str(item, what)?.to_owned();
                Some((s, item.span()))
            })
            .collect()
    }

    /// A path from the policy: `$VAR`, `${VAR}` and `${VAR:-default}` are expanded (so one
    /// policy serves several machines), and a relative path is taken from the policy's folder.
    pub(crate) fn path(&mut self, raw: &str, span: &Range<usize>) -> Option<PathBuf> {
        let expanded = match expand_env(raw, |k| std::env::var(k).ok()) {
            Ok(e) => e,
            Err(var) => {
                self.error(
                    span,
                    "unset-variable",
                    format!("`{raw}` uses the environment variable {var}, which is not set"),
                );
                return None;
            }
        };
        let p = Path::new(&expanded);
        Some(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        })
    }
}

pub(crate) const RULE_KEYS: &[&str] = &["action", "report-only"];

/// A duration as the whole days (or, under a day, hours) people write policies in.
pub(crate) fn whole_units(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 {
        (secs / 86_400, "day")
    } else {
        (secs / 3_600, "hour")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

pub(crate) fn newest_mtime(paths: &[PathBuf]) -> Option<jiff::Timestamp> {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .max()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
}

/// Expands `$VAR`, `${VAR}` and `${VAR:-default}`; `Err(name)` for an unset variable with
/// no default.
pub(crate) fn expand_env(
    raw: &str,
    get: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, default, after) = if let Some(body) = rest.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push('$');
                continue;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            (name, default, &body[end + 1..])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], None, &rest[end..])
        };
        if name.is_empty() {
            out.push('$');
            continue;
        }
        match get(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => return Err(name.to_owned()),
            },
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// The known key nearest to a misspelt one, for the "did you mean" hint.
pub(crate) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Durations as people write them in configuration: `7d`, `12h`, `1w2d`, `90m`, `2y`, `0`, or
/// ISO 8601 (`P7D`, `PT12H`, `P1DT6H`, `P2Y`). A day is 24 hours: cooldowns count elapsed
/// time; a year is 365 days.
pub fn parse_duration(s: &str) -> Option<jiff::SignedDuration> {
    let s = s.trim();
    if s == "0" {
        return Some(jiff::SignedDuration::ZERO);
    }
    if let Some(iso) = s.strip_prefix(['P', 'p']) {
        return parse_iso_duration(iso);
    }
    // Friendly form: number-unit pairs, units as letters or words ("7d", "1 week 2 days").
    let mut total: i64 = 0;
    let mut rest = s;
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match rest[..letters].to_ascii_lowercase().as_str() {
            // A year is 365 days: ages like "2y" are rough by nature.
            "y" | "yr" | "yrs" | "year" | "years" => 365 * 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "d" | "day" | "days" => 86_400,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            _ => return None,
        };
        rest = rest[letters..].trim_start_matches([' ', ',']);
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    any.then(|| jiff::SignedDuration::from_secs(total))
}

/// The part of an ISO 8601 duration after `P`: years (365 days), weeks and days, then after `T`
/// hours, minutes and seconds. Months vary too much to guess and are refused.
pub(crate) fn parse_iso_duration(body: &str) -> Option<jiff::SignedDuration> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in body.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        if c.eq_ignore_ascii_case(&'T') {
            if in_time || !num.is_empty() {
                return None;
            }
            in_time = true;
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = match (c.to_ascii_uppercase(), in_time) {
            ('Y', false) => 365 * 86_400,
            ('W', false) => 7 * 86_400,
            ('D', false) => 86_400,
            ('H', true) => 3_600,
            ('M', true) => 60,
            ('S', true) => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(jiff::SignedDuration::from_secs(total))
}

/// Reports a problem found after the walk, at the position kept for it.
pub(crate) fn error_at(
    diags: &mut Vec<Diagnostic>,
    spot: &Spot,
    code: &'static str,
    message: String,
) {
    diags.push(Diagnostic {
        file: spot.file.clone(),
        line: spot.line,
        col: spot.col,
        severity: Severity::Error,
        code,
        message,
    });
}

/// Compiles names and patterns into a lookup table, reporting a pattern that does not compile
/// at the line that wrote it.
pub(crate) fn names<T>(
    diags: &mut Vec<Diagnostic>,
    entries: Vec<(NameEntry, T, Spot)>,
) -> NameMap<T> {
    let spots: Vec<Spot> = entries.iter().map(|(_, _, s)| s.clone()).collect();
    let entries: Vec<(NameEntry, T)> = entries.into_iter().map(|(e, t, _)| (e, t)).collect();
    match NameMap::build(entries) {
        Ok(m) => m,
        Err(e) => {
            if let Some(s) = spots.get(e.index()) {
                error_at(diags, s, e.code(), e.to_string());
            }
            NameMap::default()
        }
    }
}

/// Compiles a list of globs; `None` for no list or an empty one.
pub(crate) fn globs(
    diags: &mut Vec<Diagnostic>,
    list: Option<(Vec<String>, Spot)>,
) -> Option<GlobSet> {
    let (list, spot) = list?;
    if list.is_empty() {
        return None;
    }
    let mut b = GlobSetBuilder::new();
    for g in &list {
        if let Ok(g) = Glob::new(g) {
            b.add(g);
        }
    }
    match b.build() {
        Ok(s) => Some(s),
        Err(e) => {
            error_at(diags, &spot, "bad-glob", e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(d("7d"), Some(7 * 86_400));
        assert_eq!(d("1w 2d"), Some(9 * 86_400));
        assert_eq!(d("7 days"), Some(7 * 86_400));
        assert_eq!(d("1 week, 12 hours"), Some(7 * 86_400 + 43_200));
        assert_eq!(d("12h"), Some(43_200));
        assert_eq!(d("P7D"), Some(7 * 86_400));
        assert_eq!(d("PT12H"), Some(43_200));
        assert_eq!(d("P1DT6H"), Some(86_400 + 6 * 3_600));
        assert_eq!(d("0"), Some(0));
        assert_eq!(d("P1M"), None, "months have no fixed length");
        assert_eq!(d("7"), None);
        assert_eq!(d("d"), None);
        assert_eq!(d("2y"), Some(730 * 86_400));
        assert_eq!(d("1 year"), Some(365 * 86_400));
        assert_eq!(d("P1Y"), Some(365 * 86_400));
        assert_eq!(d("7x"), None);
    }

    #[test]
    fn environment_variables_expand_in_paths() {
        let get = |k: &str| (k == "DATA").then(|| "/srv/data".to_owned());
        assert_eq!(
            expand_env("$DATA/osv.zip", get).unwrap(),
            "/srv/data/osv.zip"
        );
        assert_eq!(expand_env("${DATA}/x", get).unwrap(), "/srv/data/x");
        assert_eq!(expand_env("${LOCK:-req.txt}", get).unwrap(), "req.txt");
        assert_eq!(expand_env("${LOCK}", get), Err("LOCK".to_owned()));
        assert_eq!(expand_env("a$", get).unwrap(), "a$");
    }
}
