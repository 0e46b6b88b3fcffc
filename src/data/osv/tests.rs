use super::*;
use crate::sanitize::one_line;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn v(s: &str) -> Version {
    Version::from_str(s).unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

fn zip_of(path: &Path, files: &[(&str, &[u8])]) {
    let file = fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

fn ids<'a>(it: impl Iterator<Item = &'a OsvRecord>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = it.map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

const PYSEC_YAML: &str = r#"
id: PYSEC-2021-1
summary: "Path traversal\nin   the thing"
details: long text
aliases:
- CVE-2021-1
- GHSA-aaaa-bbbb-cccc
modified: 2021-12-13T06:35:02.857370Z
affected:
- package:
    name: Foo_Bar
    ecosystem: PyPI
  ranges:
  - type: GIT
    repo: https://example.invalid/foo
    events:
    - introduced: 0123abc
    - fixed: 4567def
  - type: ECOSYSTEM
    events:
    - introduced: "0"
    - fixed: 1.10
    - introduced: 2.0
    - fixed: 2.3.1
severity:
- type: CVSS_V3
  score: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H
"#;

const GHSA_JSON: &str = r#"{
  "id": "GHSA-xxxx-yyyy-zzzz",
  "modified": "2024-01-02T03:04:05Z",
  "details": "No summary here.",
  "affected": [
    {"package": {"ecosystem": "PyPI", "name": "foo-bar"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.5"}, {"last_affected": "1.7"}]}]},
    {"package": {"ecosystem": "npm", "name": "other"},
     "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}
  ],
  "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-22"]}
}"#;

#[test]
fn loads_yaml_and_json_from_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "vulns/foo-bar/PYSEC-2021-1.yaml", PYSEC_YAML);
    write(tmp.path(), "ghsa/GHSA-xxxx-yyyy-zzzz.json", GHSA_JSON);
    write(tmp.path(), "README.md", "# not a record");
    write(tmp.path(), "vulns/.id-allocator", "whatever");
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(report.records, 2, "{report:?}");
    assert_eq!(report.files, 2);
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(
        report.newest,
        Some(Timestamp::from_str("2024-01-02T03:04:05Z").unwrap())
    );
    assert!(db.has_project("foo-bar"));
    assert!(!db.has_project("Foo_Bar"));

    // introduced 0 / fixed 1.10 (unquoted YAML must stay 1.10, not the float 1.1).
    assert_eq!(
        ids(db.affecting("foo-bar", &v("0.0.1.dev0"))),
        ["PYSEC-2021-1"]
    );
    assert_eq!(ids(db.affecting("foo-bar", &v("1.9"))), ["PYSEC-2021-1"]);
    assert_eq!(ids(db.affecting("foo-bar", &v("1.2"))), ["PYSEC-2021-1"]);
    assert!(ids(db.affecting("foo-bar", &v("1.10"))).is_empty());
    assert!(ids(db.affecting("foo-bar", &v("1.10.1"))).is_empty());
    // introduced 1.5 / last_affected 1.7 overlaps the first range.
    assert_eq!(
        ids(db.affecting("foo-bar", &v("1.7"))),
        ["GHSA-xxxx-yyyy-zzzz", "PYSEC-2021-1"]
    );
    assert_eq!(ids(db.affecting("foo-bar", &v("1.7.0"))).len(), 2);
    assert_eq!(
        ids(db.affecting("foo-bar", &v("1.7.0.post1"))),
        ["PYSEC-2021-1"]
    );
    assert!(ids(db.affecting("foo-bar", &v("1.12"))).is_empty());
    // Second ECOSYSTEM interval.
    assert_eq!(ids(db.affecting("foo-bar", &v("2.0"))), ["PYSEC-2021-1"]);
    assert_eq!(ids(db.affecting("foo-bar", &v("2.3.0"))), ["PYSEC-2021-1"]);
    assert!(ids(db.affecting("foo-bar", &v("2.3.1"))).is_empty());
    assert!(ids(db.affecting("foo-bar", &v("99"))).is_empty());
    // npm entry ignored.
    assert!(!db.has_project("other"));
    assert!(ids(db.affecting("other", &v("1"))).is_empty());

    let pysec = db.record("PYSEC-2021-1").unwrap();
    assert_eq!(pysec.summary, "Path traversal in the thing");
    assert_eq!(pysec.aliases, ["CVE-2021-1", "GHSA-aaaa-bbbb-cccc"]);
    assert_eq!(pysec.kind, RecordKind::Vulnerability);
    assert_eq!(pysec.severity, Some(CvssSeverity::Critical));
    assert!(pysec.fix_available);
    assert!(pysec.source.ends_with("PYSEC-2021-1.yaml"));
    assert_eq!(
        pysec.modified,
        Some(Timestamp::from_str("2021-12-13T06:35:02.857370Z").unwrap())
    );
    let ghsa = db.record("GHSA-xxxx-yyyy-zzzz").unwrap();
    assert_eq!(ghsa.summary, "No summary here.");
    assert_eq!(ghsa.severity, Some(CvssSeverity::Medium));
    assert!(!ghsa.fix_available);

    // The lowest fix above the queried version.
    let fixes: Vec<String> = db
        .hits("foo-bar", &v("2.1"))
        .map(|h| h.fixed_in.unwrap().to_string())
        .collect();
    assert_eq!(fixes, ["2.3.1"]);
    let fixes: Vec<Option<String>> = db
        .hits("foo-bar", &v("1.6"))
        .map(|h| h.fixed_in.map(ToString::to_string))
        .collect();
    assert!(fixes.contains(&Some("1.10".to_owned())));
    assert!(fixes.contains(&None));
}

#[test]
fn explicit_versions_compare_as_pep440() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "a.json",
        r#"{"id": "PYSEC-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "p"},
                "versions": ["2.0", "3.0rc1", "not a version", "1!0.5"]}]}"#,
    );
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(report.records, 1);
    for hit in ["2.0", "2.0.0", "2", "3.0rc1", "3.0.0rc1", "1!0.5"] {
        assert_eq!(ids(db.affecting("p", &v(hit))), ["PYSEC-1"], "{hit}");
    }
    for miss in ["2.0.1", "1.9", "3.0", "0.5", "2.0.post1", "2.0+local"] {
        assert!(ids(db.affecting("p", &v(miss))).is_empty(), "{miss}");
    }
    assert!(db.malicious_project("p").is_none());
}

#[test]
fn withdrawn_records_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let body = |id: &str, extra: &str| {
        format!(
            r#"{{"id": "{id}", {extra} "affected": [{{"package": {{"ecosystem": "PyPI", "name": "w"}},
                 "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}]}}]}}]}}"#
        )
    };
    write(
        tmp.path(),
        "osv/malicious/pypi/w/MAL-2024-1.json",
        &body("MAL-2024-1", ""),
    );
    write(
        tmp.path(),
        "osv/withdrawn/pypi/w/MAL-2024-2.json",
        &body("MAL-2024-2", ""),
    );
    write(
        tmp.path(),
        "osv/malicious/pypi/w/MAL-2024-3.json",
        &body("MAL-2024-3", r#""withdrawn": "2024-05-01T00:00:00Z","#),
    );
    write(
        tmp.path(),
        "x/PYSEC-1.yaml",
        "id: PYSEC-1\nwithdrawn: 2023-08-22T06:18:00Z\naffected: []\n",
    );
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(report.withdrawn, 3);
    assert_eq!(ids(db.affecting("w", &v("1"))), ["MAL-2024-1"]);
    assert!(db.record("MAL-2024-2").is_none());

    // A directory below withdrawn/ given as the source.
    let (db, report) = OsvDb::load(&[tmp.path().join("osv/withdrawn/pypi")]).unwrap();
    assert_eq!((report.records, report.withdrawn), (0, 1));
    assert!(db.is_empty());
}

const MAL_FILES: &str = r#"{
  "id": "MAL-2026-1",
  "summary": "Malicious code in evil-pkg (PyPI)",
  "modified": "2026-09-04T00:47:46.156672516Z",
  "affected": [{
    "package": {"name": "Evil.Pkg", "ecosystem": "PyPI"},
    "versions": ["0.0.1"],
    "database_specific": {
      "cwes": [{"cweId": "CWE-506"}],
      "indicators": {
        "package_integrity": [
          {"filename": "evil_pkg-0.0.1-py3-none-any.whl",
           "hashes": {"md5": "c9a0424470c5d49ed5173303f41b874e",
                      "sha256": "C8784CF0AA8FA13A43614FBD6D51902FEEECAFDC06FC4DB2695FD2572DB66DB8"}},
          {"filename": "evil_pkg-0.0.1.tar.gz", "hashes": {"sha256": "nothex"}}
        ]
      }
    }
  }]
}"#;

const MAL_ALL: &str = r#"{
  "id": "MAL-2024-10238",
  "summary": "Malicious code in typo (PyPI)",
  "affected": [{"package": {"ecosystem": "PyPI:extra", "name": "typo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
}"#;

#[test]
fn malware_by_file_digest_and_whole_project() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "evil/MAL-2026-1.json", MAL_FILES);
    write(tmp.path(), "typo/MAL-2024-10238.json", MAL_ALL);
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(report.records, 2);
    assert_eq!(report.skipped.len(), 1, "bad digest noted: {report:?}");
    let sha = "c8784cf0aa8fa13a43614fbd6d51902feeecafdc06fc4db2695fd2572db66db8";
    let hit = db.malicious_file("evil-pkg", sha).unwrap();
    assert_eq!(hit.id, "MAL-2026-1");
    assert_eq!(hit.kind, RecordKind::Malware);
    assert!(db.malicious_file("evil-pkg", &sha.to_uppercase()).is_some());
    assert!(db.malicious_file("evil-pkg", &"0".repeat(64)).is_none());
    assert!(db.malicious_file("evil-pkg", "zz").is_none());
    assert!(db.malicious_file("typo", sha).is_none());
    assert!(db.malicious_project("evil-pkg").is_none());
    assert_eq!(ids(db.affecting("evil-pkg", &v("0.0.1"))), ["MAL-2026-1"]);
    assert!(ids(db.affecting("evil-pkg", &v("0.0.2"))).is_empty());

    let whole = db.malicious_project("typo").unwrap();
    assert_eq!(whole.id, "MAL-2024-10238");
    assert!(!whole.fix_available);
    assert_eq!(
        ids(db.affecting("typo", &v("0.0.0.dev0"))),
        ["MAL-2024-10238"]
    );
    assert_eq!(ids(db.affecting("typo", &v("9999"))), ["MAL-2024-10238"]);
}

#[test]
fn vulnerability_for_every_version_is_not_malware() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "GHSA-1.json",
        r#"{"id": "GHSA-1", "affected": [{"package": {"ecosystem": "PyPI", "name": "x"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}"#,
    );
    let (db, _) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert!(db.malicious_project("x").is_none());
    assert_eq!(ids(db.affecting("x", &v("1"))), ["GHSA-1"]);
}

#[test]
fn loads_a_zip_and_names_members() {
    let tmp = tempfile::tempdir().unwrap();
    let zip_path = tmp.path().join("all.zip");
    zip_of(
        &zip_path,
        &[
            ("LICENSE", b"license text"),
            ("vulns/.id-allocator", b"42"),
            ("vulns/foo-bar/PYSEC-2021-1.yaml", PYSEC_YAML.as_bytes()),
            ("GHSA-xxxx-yyyy-zzzz.json", GHSA_JSON.as_bytes()),
            ("MAL-2024-10238.json", MAL_ALL.as_bytes()),
            ("withdrawn/MAL-2026-1.json", MAL_FILES.as_bytes()),
        ],
    );
    let (db, report) = OsvDb::load(std::slice::from_ref(&zip_path)).unwrap();
    assert_eq!(report.files, 4);
    assert_eq!(report.records, 3);
    assert_eq!(report.withdrawn, 1);
    let rec = db.record("PYSEC-2021-1").unwrap();
    assert_eq!(
        rec.source,
        format!("{}:vulns/foo-bar/PYSEC-2021-1.yaml", zip_path.display())
    );
    assert!(db.malicious_project("typo").is_some());
    assert!(!db.has_project("evil-pkg"));
}

#[test]
fn duplicate_ids_keep_the_newest_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = |modified: &str, fixed: &str| {
        format!(
            r#"{{"id": "PYSEC-9", "modified": "{modified}", "affected": [{{"package": {{"ecosystem": "PyPI", "name": "d"}},
                 "ranges": [{{"type": "ECOSYSTEM", "events": [{{"introduced": "0"}}, {{"fixed": "{fixed}"}}]}}]}}]}}"#
        )
    };
    write(
        tmp.path(),
        "a/PYSEC-9.json",
        &rec("2024-01-01T00:00:00Z", "2.0"),
    );
    write(
        tmp.path(),
        "b/PYSEC-9.json",
        &rec("2023-01-01T00:00:00Z", "1.0"),
    );
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!((report.records, report.duplicates), (1, 1));
    assert_eq!(ids(db.affecting("d", &v("1.5"))), ["PYSEC-9"]);
}

#[test]
fn broken_records_are_skipped_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "good.yaml", PYSEC_YAML);
    write(tmp.path(), "bad.json", "{ this is not json");
    write(tmp.path(), "bad.yaml", "id: [unclosed\n  - :");
    write(tmp.path(), "noid.json", r#"{"summary": "no id"}"#);
    write(tmp.path(), "evilid.json", "{\"id\": \"X\\u001b[31m\"}");
    write(
        tmp.path(),
        "events.json",
        r#"{"id": "PYSEC-2", "affected": [{"package": {"ecosystem": "PyPI", "name": "e"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "banana!"}]}]},
                {"package": {"ecosystem": "PyPI", "name": "../etc"}}]}"#,
    );
    let (db, report) = OsvDb::load(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!(report.records, 2, "{report:?}");
    assert_eq!(report.skipped.len(), 6, "{:#?}", report.skipped);
    assert!(report.skipped.iter().any(|l| l.contains("banana")));
    assert!(report.skipped.iter().all(|l| !l.contains('\u{1b}')));
    // The unparsable fixed event is skipped, so the range stays open.
    assert_eq!(ids(db.affecting("e", &v("5"))), ["PYSEC-2"]);
    assert!(ids(db.affecting("e", &v("0.9"))).is_empty());
}

#[test]
fn oversize_records_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut big = String::from(r#"{"id": "PYSEC-1", "details": ""#);
    big.push_str(&"a".repeat(MAX_RECORD_BYTES as usize));
    big.push_str(r#""}"#);
    let zip_path = tmp.path().join("big.zip");
    zip_of(
        &zip_path,
        &[
            ("ok.yaml", PYSEC_YAML.as_bytes()),
            ("big.json", big.as_bytes()),
        ],
    );
    let err = OsvDb::load(&[zip_path]).unwrap_err();
    assert!(matches!(err, OsvError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("big.json"), "{err}");

    let dir = tmp.path().join("dir");
    write(&dir, "big.json", &big);
    let err = OsvDb::load(&[dir]).unwrap_err();
    assert!(matches!(err, OsvError::TooLarge { .. }), "{err}");
}

#[test]
fn unusable_sources_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = OsvDb::load(&[tmp.path().join("missing")]).unwrap_err();
    assert!(matches!(err, OsvError::Missing { .. }));
    let not_zip = write(tmp.path(), "x.zip", "not a zip");
    let err = OsvDb::load(&[not_zip]).unwrap_err();
    assert!(matches!(err, OsvError::Zip { .. }));
    let other = write(tmp.path(), "x.txt", "hello");
    let err = OsvDb::load(&[other]).unwrap_err();
    assert!(matches!(err, OsvError::NotASource { .. }));
    // A single record file is a source too.
    let one = write(tmp.path(), "one.json", GHSA_JSON);
    let (db, _) = OsvDb::load(&[one]).unwrap();
    assert_eq!(db.len(), 1);
}

#[test]
fn severity_sources() {
    assert_eq!(
        CvssSeverity::from_label("moderate"),
        Some(CvssSeverity::Medium)
    );
    assert_eq!(
        CvssSeverity::from_label("CRITICAL"),
        Some(CvssSeverity::Critical)
    );
    assert_eq!(CvssSeverity::from_label("unknown"), None);
    let sev = |kind: &str, score: &str| {
        severity_of(&[RawSeverity {
            kind: Some(kind.to_owned()),
            score: Some(score.to_owned()),
        }])
    };
    assert_eq!(
        sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        Some(CvssSeverity::Critical)
    );
    assert_eq!(
        sev("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:L/I:N/A:N"),
        Some(CvssSeverity::Low)
    );
    assert_eq!(
        sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"),
        Some(CvssSeverity::Medium)
    );
    assert_eq!(
        sev("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"),
        Some(CvssSeverity::High)
    );
    assert_eq!(
        sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),
        None
    );
    // Missing base metrics are not a score.
    assert_eq!(sev("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H"), None);
    assert_eq!(sev("CVSS_V3", "garbage"), None);
    assert_eq!(
        sev(
            "CVSS_V4",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
        ),
        Some(CvssSeverity::Critical)
    );
    assert_eq!(sev("CVSS_V4", "CVSS:4.0/AV:N"), None);
}

#[test]
fn text_is_cleaned_and_bounded() {
    assert_eq!(one_line("a\n\tb\u{202E}c\u{1b}", 50), "a bc");
    let long = one_line(&"x".repeat(500), MAX_SUMMARY_CHARS);
    assert_eq!(long.chars().count(), MAX_SUMMARY_CHARS);
    assert!(long.ends_with('…'));
    assert_eq!(
        clean_id("GHSA-abcd-efgh-ijkl").as_deref(),
        Some("GHSA-abcd-efgh-ijkl")
    );
    assert_eq!(clean_id("bad id"), None);
}

#[test]
fn db_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OsvDb>();
    let db = OsvDb::empty();
    assert!(db.is_empty());
    assert!(db.affecting("x", &v("1")).next().is_none());
}

/// Loads the real PyPA advisory database snapshot and times loading and queries. Run with
/// `cargo test --release --lib data::osv -- --ignored --nocapture`.
#[test]
#[ignore = "needs /work/shared/data and a release build for meaningful timings"]
fn real_pypa_zip() {
    let path = PathBuf::from("/work/shared/data/pypa-advisory-database-vulns-2024-10-10.zip");
    let started = std::time::Instant::now();
    let (db, report) = OsvDb::load(std::slice::from_ref(&path)).unwrap();
    let elapsed = started.elapsed();
    println!(
        "loaded {} records ({} files, {} withdrawn, {} duplicates, {} not PyPI, {} notes) in {elapsed:?}; newest {:?}",
        report.records,
        report.files,
        report.withdrawn,
        report.duplicates,
        report.not_pypi,
        report.skipped_total,
        report.newest
    );
    for line in &report.skipped {
        println!("  note: {line}");
    }
    assert_eq!(report.files, 2661);
    assert_eq!(report.withdrawn, 10);
    assert_eq!(report.records, 2651);

    let mut busiest: Vec<(&str, usize)> = db
        .projects
        .iter()
        .map(|(name, index)| (name.as_str(), index.groups.len()))
        .collect();
    busiest.sort_by_key(|&(name, n)| (std::cmp::Reverse(n), name));
    println!("busiest projects: {:?}", &busiest[..5]);
    for (project, version) in [
        ("tensorflow-cpu", "1.0"),
        ("tensorflow-cpu", "2.4.0"),
        ("tensorflow-cpu", "2.17.0"),
        ("tensorflow-cpu", "99.0"),
        ("django", "1.11"),
        ("django", "3.2.0"),
        ("django", "4.2.16"),
        ("django", "5.1.1"),
        ("requests", "2.31.0"),
        ("requests", "2.32.3"),
    ] {
        let version = v(version);
        let n = db.affecting(project, &version).count();
        let rounds = 200_000u32;
        let started = std::time::Instant::now();
        let mut total = 0usize;
        for _ in 0..rounds {
            total += std::hint::black_box(&db)
                .affecting(std::hint::black_box(project), &version)
                .count();
        }
        let per = started.elapsed() / rounds;
        assert_eq!(total, n * rounds as usize);
        println!("{project} {version}: {n} records, {per:?} per query");
    }
    let started = std::time::Instant::now();
    for _ in 0..200_000u32 {
        std::hint::black_box(
            db.affecting(std::hint::black_box("no-such-project"), &v("1"))
                .count(),
        );
    }
    println!("miss: {:?} per query", started.elapsed() / 200_000);
}
