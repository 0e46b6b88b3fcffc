use super::*;

#[test]
fn a_regex_error_says_what_is_wrong_in_one_line() {
    let diags = load(&["[projects]\ndeny = [{ regex = \"^acme-(\", reason = \"r\" }]\n"])
        .err()
        .unwrap_or_default();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(
        diags[0].message,
        "[projects] deny: `^acme-(` is not a valid regular expression: unclosed group"
    );
    let diags = load(&["[projects]\ndeny = [{ regex = '\\w{1000}' }]\n"])
        .err()
        .unwrap_or_default();
    assert!(
        diags[0].message.contains("compiles to more than"),
        "{}",
        diags[0]
    );
    // Under the cap each (about 0.5 MiB), a list's regexes together are capped too
    // (about 20 MiB here); the last is blamed.
    let many: Vec<String> = (0..40)
        .map(|i| format!("{{ regex = '^{i}\\w{{10}}' }}"))
        .collect();
    let text = format!("[projects]\ndeny = [\n{}\n]\n", many.join(",\n"));
    let diags = load(&[&text]).err().unwrap_or_default();
    assert_eq!(
        diags.iter().map(|d| (d.code, d.line)).collect::<Vec<_>>(),
        [("bad-regex", 42)],
        "{diags:?}"
    );
    assert!(diags[0].message.contains("together"), "{}", diags[0]);
}

#[test]
fn license_clarifications_load_and_later_files_extend_them() {
    let p = load(&[
            "[licenses]\nallow = [\"MIT\"]\nclarify = [{ project = \"Char_Det\", versions = \">=5\", expression = \"LGPL-2.1-or-later\", reason = \"METADATA says only 'LGPL'\" }]\n",
            "[licenses]\nclarify = [{ project = \"acme-*\", expression = \"MIT OR Apache-2.0\", reason = \"ours\" }]\n",
        ])
        .unwrap();
    let c = &p.license_rules.clarify;
    assert_eq!(c.len(), 2);
    let v = |s: &str| s.parse::<pep440_rs::Version>().unwrap();
    let (e, got) = p
        .license_rules
        .clarification("char-det", Some(&v("5.2")))
        .unwrap();
    assert_eq!(got.expression.to_string(), "LGPL-2.1-or-later");
    assert_eq!(e.origin.to_string(), "p0.toml:3");
    assert_eq!(e.reason.as_deref(), Some("METADATA says only 'LGPL'"));
    assert!(
        p.license_rules
            .clarification("char-det", Some(&v("4.0")))
            .is_none()
    );
    assert!(p.license_rules.clarification("char-det", None).is_none());
    let (e, _) = p.license_rules.clarification("acme-x", None).unwrap();
    assert_eq!(e.origin.to_string(), "p1.toml:2");
    // A lenient id is refused with the one meant.
    let diags = load(&["[licenses]\nclarify = [{ project = \"a\", expression = \"Apache 2.0\", reason = \"r\" }]\n"])
            .err()
            .unwrap_or_default();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        diags[0].message.contains("is not an SPDX expression"),
        "{}",
        diags[0]
    );
}

fn load(files: &[&str]) -> Result<Policy, Vec<Diagnostic>> {
    let sources: Vec<(String, String)> = files
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("p{i}.toml"), (*t).to_owned()))
        .collect();
    load_sources(&sources).map(|(p, _)| p).map_err(|e| e.0)
}

#[test]
fn later_files_replace_values_and_extend_lists() {
    let p = load(&[
        "[cooldown]\nmin-age = \"7d\"\n[projects]\ndeny = [\"a\"]\n",
        "[cooldown]\nmin-age = \"2d\"\n[projects]\ndeny = [\"b\"]\n[sdists]\naction = \"warn\"\n",
    ])
    .unwrap();
    assert_eq!(
        p.cooldown_rules.min_age.map(|d| d.as_secs()),
        Some(2 * 86_400)
    );
    assert_eq!(
        p.cooldown_rules
            .min_age_origin
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("p1.toml:2")
    );
    assert!(p.deny.find("a").is_some() && p.deny.find("b").is_some());
    assert_eq!(p.sdists.action, RuleAction::Warn);
    assert_eq!(p.files, ["p0.toml", "p1.toml"]);
}

/// One broken policy per diagnostic code: the code and the position it points at.
#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table test: one case per row reads better whole"
)]
fn every_diagnostic_has_its_code_and_position() {
    let cases: &[(&str, &str, (usize, usize))] = &[
        ("[sdists\n", "toml-syntax", (1, 8)),
        ("sdist = 1\n", "unknown-key", (1, 1)),
        ("[sdists]\naction = 1\n", "wrong-type", (2, 10)),
        ("[sdists]\naction = \"block\"\n", "bad-action", (2, 10)),
        ("[projects]\nblocked = \"gone\"\n", "bad-value", (2, 11)),
        ("[projects]\ndeny = [\"a b\"]\n", "bad-name", (2, 9)),
        ("[projects]\nallow = [\"a[\"]\n", "bad-glob", (2, 10)),
        (
            "[projects]\ndeny = [{ regex = \"^acme-(\", reason = \"r\" }]\n",
            "bad-regex",
            (2, 19),
        ),
        (
            "[projects]\nallow = [\"demo\", { regex = '\\w{1000}' }]\n",
            "bad-regex",
            (2, 28),
        ),
        (
            "[projects]\ndeny = [{ regex = 1 }]\n",
            "wrong-type",
            (2, 19),
        ),
        (
            "[projects]\ndeny = [{ name = \"a\", regex = \"^a\" }]\n",
            "bad-value",
            (2, 9),
        ),
        (
            "[[private]]\nnames = [{ regex = \"^acme-\" }]\nupstream = \"internal\"\n",
            "unknown-key",
            (2, 12),
        ),
        (
            "[projects]\ndeny = [{ reason = \"r\" }]\n",
            "missing-key",
            (2, 9),
        ),
        (
            "[versions]\ndeny = { a = \"=>1\" }\n",
            "bad-specifier",
            (2, 14),
        ),
        (
            "[cooldown]\nmin-age = \"1 month\"\n",
            "bad-duration",
            (2, 11),
        ),
        ("[cooldown]\nas-of = \"soon\"\n", "bad-date", (2, 9)),
        ("[cooldown]\nbasis = \"release\"\n", "bad-value", (2, 9)),
        ("[size]\nmax = \"big\"\n", "bad-size", (2, 7)),
        ("[audit]\nlisting = \"lazy\"\n", "bad-value", (2, 11)),
        (
            "[audit]\nfleet = [{ python = \"3.11\", platform = \"linux_x86_64\" }]\n",
            "bad-value",
            (2, 10),
        ),
        (
            "[audit]\nfleet = [{ python = \"3.11\" }]\n",
            "missing-key",
            (2, 10),
        ),
        (
            "[licenses]\nallow = [\"MIT\", \"Apache 2.0\"]\n",
            "bad-license",
            (2, 17),
        ),
        ("[licenses]\nunknown = \"maybe\"\n", "bad-action", (2, 11)),
        (
            "[licenses]\nclarify = [{ project = \"a\", reason = \"r\" }]\n",
            "missing-key",
            (2, 12),
        ),
        (
            "[licenses]\nclarify = [{ expression = \"MIT\", reason = \"r\" }]\n",
            "missing-key",
            (2, 12),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a\", expression = \"LGPL\", reason = \"r\" }]\n",
            "bad-license",
            (2, 42),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a\", expression = \"MIT\" }]\n",
            "missing-reason",
            (2, 12),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a\", expression = \"MIT\", reason = \" \" }]\n",
            "missing-reason",
            (2, 12),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a\", versions = \"=>5\", expression = \"MIT\", reason = \"r\" }]\n",
            "bad-specifier",
            (2, 40),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a b\", expression = \"MIT\", reason = \"r\" }]\n",
            "bad-name",
            (2, 24),
        ),
        (
            "[licenses]\nclarify = [{ project = \"a\", expresion = \"MIT\", reason = \"r\" }]\n",
            "unknown-key",
            (2, 29),
        ),
        ("[licenses]\nclarify = [\"a\"]\n", "wrong-type", (2, 12)),
        ("[versions]\nmax-count = -1\n", "bad-value", (2, 13)),
        ("[versions]\nmax-count = \"3\"\n", "bad-value", (2, 13)),
        ("[typosquat]\nprotect = [\"acme-*\"]\n", "bad-name", (2, 12)),
        ("[typosquat]\naction = \"shout\"\n", "bad-action", (2, 10)),
        ("[typosquat]\nprotect = \"acme\"\n", "wrong-type", (2, 11)),
        (
            "[namespaces]\nrequire-owned = [\"acme-*\"]\n",
            "bad-name",
            (2, 18),
        ),
        ("[namespaces]\naction = \"hide\"\n", "unknown-key", (2, 1)),
        (
            "[attestations]\nrequire = [{ github = \"acme/tool\" }]\n",
            "missing-key",
            (2, 12),
        ),
        (
            "[attestations]\nrequire = [{ project = \"tool\", issuer = \"https://ci.example\" }]\n",
            "missing-key",
            (2, 12),
        ),
        (
            "[attestations]\nrequire = [{ project = \"tool\", github = \"../x\" }]\n",
            "bad-value",
            (2, 12),
        ),
        (
            "[attestations]\nrequire = [{ project = \"tool\", gihub = \"a/b\" }]\n",
            "unknown-key",
            (2, 32),
        ),
        (
            "[attestations]\nrequire = [\"tool\"]\n",
            "wrong-type",
            (2, 12),
        ),
        (
            "[namespaces]\nnot-owned = \"shout\"\n",
            "bad-action",
            (2, 13),
        ),
        ("[namespaces]\nunverified = 1\n", "wrong-type", (2, 14)),
        (
            "[unmaintained]\nmax-age = \"a decade\"\n",
            "bad-duration",
            (2, 11),
        ),
        (
            "[project-status]\naction = \"hide\"\n",
            "unknown-key",
            (2, 1),
        ),
        ("[health]\nmin-score = 11\n", "bad-value", (2, 13)),
        ("[health]\nmin-score = -0.5\n", "bad-value", (2, 13)),
        ("[health]\nmin-score = \"7\"\n", "bad-value", (2, 13)),
        (
            "[health]\nchecks = { Maintained = -1 }\n",
            "bad-value",
            (2, 25),
        ),
        (
            "[health]\nchecks = { Maintained = \"high\" }\n",
            "bad-value",
            (2, 25),
        ),
        (
            "[health]\nchecks = [\"Maintained\"]\n",
            "wrong-type",
            (2, 10),
        ),
        ("[health]\nmissing = \"ignore\"\n", "bad-action", (2, 11)),
        ("[health]\nstale = \"fail\"\n", "bad-action", (2, 9)),
        ("[health]\nmax-age = \"a month\"\n", "bad-duration", (2, 11)),
        ("[health]\nmin_score = 5\n", "unknown-key", (2, 1)),
        (
            "[health]\ndata = \"/nonexistent/scorecards.jsonl\"\n",
            "data-unreadable",
            (2, 8),
        ),
        (
            "[project-status]\narchived = \"block\"\n",
            "bad-action",
            (2, 12),
        ),
        (
            "[audit]\ncodes = { nope = \"hide\" }\n",
            "unknown-code",
            (2, 11),
        ),
        (
            "[lock]\nfiles = [\"${PIPWALL_TEST_UNSET_VAR}\"]\n",
            "unset-variable",
            (2, 10),
        ),
        ("lock = [\"/nonexistent/req.txt\"]\n", "lock-file", (1, 9)),
        (
            "[malware]\nsources = [\"/nonexistent/osv\"]\n",
            "data-unreadable",
            (2, 12),
        ),
        ("[[private]]\nnames = [\"acme-*\"]\n", "missing-key", (1, 1)),
        (
            "[[exceptions]]\nrule = \"sdists\"\nproject = \"a\"\n",
            "missing-reason",
            (1, 1),
        ),
        (
            "[[exceptions]]\nrule = \"sdists\"\nreason = \"r\"\n",
            "missing-scope",
            (1, 1),
        ),
        (
            "[[exceptions]]\nproject = \"a\"\nreason = \"r\"\n",
            "missing-key",
            (1, 1),
        ),
        (
            "[[exceptions]]\nrule = \"nope\"\nproject = \"a\"\nreason = \"r\"\n",
            "unknown-rule",
            (2, 8),
        ),
        (
            "[[exceptions]]\nrule = \"sdists\"\nsha256 = \"xyz\"\nreason = \"r\"\n",
            "bad-value",
            (3, 10),
        ),
        (
            "[[exceptions]]\nrule = \"sdists\"\nproject = \"a\"\nexpires = \"tomorrow\"\nreason = \"r\"\n",
            "bad-date",
            (4, 11),
        ),
        (
            "[[exceptions]]\nrule = [\"advisories\", \"malware\"]\nid = \"X-1\"\nuntil-fixed = true\nreason = \"r\"\n",
            "until-fixed-scope",
            (4, 15),
        ),
        (
            "[[exceptions]]\nrule = \"advisories\"\nid = \"X-1\"\nuntil-fixed = \"yes\"\nreason = \"r\"\n",
            "wrong-type",
            (4, 15),
        ),
    ];
    for (text, code, pos) in cases {
        let diags = load(&[text]).err().unwrap_or_default();
        let d = diags.iter().find(|d| d.code == *code);
        let Some(d) = d else {
            panic!("{text:?}: no {code} in {diags:?}");
        };
        assert_eq!((d.line, d.col), *pos, "{text:?}: {d}");
        assert_eq!(d.severity, Severity::Error, "{text:?}");
    }
}

#[test]
fn a_uv_lock_pins_and_warns_about_what_no_index_serves() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("uv.lock");
    std::fs::write(
            &lock,
            format!(
                "version = 1\n\n[[package]]\nname = \"demo\"\nversion = \"1.0\"\nsource = {{ registry = \"https://index.example.invalid/simple\" }}\nwheels = [{{ url = \"https://files.example.invalid/demo-1.0-py3-none-any.whl\", hash = \"sha256:{}\" }}]\n\n[[package]]\nname = \"tool\"\nversion = \"0.1\"\nsource = {{ git = \"https://example.invalid/tool.git\" }}\n",
                "a".repeat(64)
            ),
        )
        .unwrap();
    let text = format!("[lock]\nfiles = [\"{}\"]\n", lock.display());
    let (p, warnings) = load_sources(&[("p.toml".into(), text)]).unwrap();
    let set = p.lock_set.as_ref().unwrap();
    assert!(set.project("demo").is_some());
    assert!(set.project("tool").is_none());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(
        (w.code, w.severity, w.line),
        ("lock-outside-index", Severity::Warning, 9)
    );
    assert!(
        w.file.ends_with("uv.lock") && w.message.contains("tool"),
        "{w}"
    );
}

/// A `[health]` policy over `data` (written to a temporary folder) with `extra` keys.
fn health_policy(
    data: &str,
    extra: &str,
) -> (
    Result<(Policy, Vec<Diagnostic>), PolicyError>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scorecards.jsonl"), data).unwrap();
    let name = dir.path().join("p.toml").display().to_string();
    let text = format!("[health]\ndata = \"scorecards.jsonl\"\n{extra}");
    (load_sources(&[(name, text)]), dir)
}

const RESULT: &str = r#"{"date":"2020-11-01","repo":{"name":"github.com/o/demo"},"score":6.1,"checks":[{"name":"Maintained","score":9}],"project":"demo"}"#;

#[test]
fn health_data_is_read_relative_to_the_policy_and_indexed() {
    let (loaded, _dir) = health_policy(RESULT, "min-score = 7\n");
    let (p, warnings) = loaded.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let h = p.health_rules.as_ref().unwrap();
    assert_eq!(h.db.get("demo").map(|c| c.score), Some(Some(6.1)));
    assert_eq!(h.min_score.as_ref().map(|(s, _)| *s), Some(7.0));
    assert_eq!(h.missing.action, RuleAction::Allow);
    assert_eq!(h.stale.action, RuleAction::Warn);
    assert_eq!(p.health.action, RuleAction::Warn);
}

#[test]
fn a_malformed_health_line_is_an_error_at_its_line() {
    let data = format!(
        "{RESULT}\n\n{{\"repo\": {{\"name\": \"github.com/o/x\"}}, \"score\": 5\n{RESULT}\n"
    );
    let (loaded, dir) = health_policy(&data, "");
    let diags = loaded.err().map(|e| e.0).unwrap_or_default();
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(
        (d.code, d.severity, d.line),
        ("health-data", Severity::Error, 3),
        "{d}"
    );
    assert_eq!(
        Path::new(&d.file),
        dir.path().join("scorecards.jsonl"),
        "{d}"
    );
    assert!(d.message.contains("EOF while parsing"), "{d}");
    // A result that parses but names no project fails the load as well.
    let (loaded, _dir) = health_policy(r#"{"repo":{"name":"github.com/o/x"},"score":5}"#, "");
    let diags = loaded.err().map(|e| e.0).unwrap_or_default();
    assert_eq!(
        diags.iter().map(|d| (d.code, d.line)).collect::<Vec<_>>(),
        [("health-data", 1)]
    );
    assert!(
        diags[0].message.contains("names no Python project"),
        "{}",
        diags[0]
    );
}

#[test]
fn health_warns_about_unknown_checks_and_stale_data() {
    let (loaded, _dir) = health_policy(
        RESULT,
        "checks = { Maintaned = 3, SBOM = 1 }\nmax-age = \"7d\"\n",
    );
    let (p, warnings) = loaded.unwrap();
    let seen: Vec<(&str, usize)> = warnings.iter().map(|w| (w.code, w.line)).collect();
    assert_eq!(
        seen,
        [
            ("unknown-check", 3),
            ("unknown-check", 3),
            ("health-data-stale", 4)
        ],
        "{warnings:?}"
    );
    // The misspelt name where it was written; a real check the data lacks, at its line.
    let typo = warnings.iter().find(|w| w.col == 12).unwrap();
    assert!(
        typo.message.contains("did you mean `Maintained`?"),
        "{typo}"
    );
    let absent = warnings
        .iter()
        .find(|w| w.message.contains("`SBOM`"))
        .unwrap();
    assert!(absent.message.contains("no result in"), "{absent}");
    assert!(
        warnings[2]
            .message
            .contains("(7 days; newest result: 2020-11-01)"),
        "{}",
        warnings[2]
    );
    assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
    assert_eq!(p.health_rules.map(|h| h.checks.len()), Some(2));
}

#[test]
fn later_files_replace_health_values_and_check_minimums() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scorecards.jsonl"), RESULT).unwrap();
    let first = dir.path().join("a.toml").display().to_string();
    let second = dir.path().join("b.toml").display().to_string();
    let (p, _) = load_sources(&[
        (
            first.clone(),
            "[health]\ndata = \"scorecards.jsonl\"\nchecks = { Maintained = 3, Code-Review = 2 }\n"
                .into(),
        ),
        (
            second.clone(),
            "[health]\nchecks = { Maintained = 10 }\n".into(),
        ),
    ])
    .unwrap();
    let h = p.health_rules.unwrap();
    let mins: Vec<(&str, f64, u32)> = h
        .checks
        .iter()
        .map(|c| (c.check.as_str(), c.min, c.origin.line))
        .collect();
    assert_eq!(mins, [("Code-Review", 2.0, 3), ("Maintained", 10.0, 2)]);
    // `action = "allow"` does not read the data at all.
    let (p, _) = load_sources(&[(
        first.clone(),
        "[health]\naction = \"allow\"\ndata = \"scorecards.jsonl\"\n".into(),
    )])
    .unwrap();
    assert!(p.health_rules.is_none());
    // `data = ""` in a later file switches the rule off again.
    let (p, _) = load_sources(&[
        (first, "[health]\ndata = \"scorecards.jsonl\"\n".into()),
        (second, "[health]\ndata = \"\"\n".into()),
    ])
    .unwrap();
    assert!(p.health_rules.is_none());
}

#[test]
fn the_shipped_default_loads() {
    let (p, warnings) =
        load_sources(&[("policies/default.toml".into(), DEFAULT_POLICY.into())]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(p.sdists.action, RuleAction::Hide);
}
