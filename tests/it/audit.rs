//! `pipwall audit` on archives built to lie: integrity, metadata and startup-code findings on
//! pure-Python wheels, and the command's output and exit status.

use std::path::{Path, PathBuf};

use pipwall::audit::{self, FindingCode as Code, Report, Verdict};

use crate::support::fixtures::{Fixture, WheelSpec, record_row, zip_files};

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn write(dir: &Path, f: &Fixture) -> PathBuf {
    let p = dir.join(&f.filename);
    std::fs::write(&p, &f.bytes).unwrap();
    p
}

fn audit_fixture(f: &Fixture) -> Report {
    let d = dir();
    let p = write(d.path(), f);
    audit::audit_file(&p, &f.filename, None, &audit::ArchiveLimits::default()).unwrap()
}

fn codes(r: &Report) -> Vec<Code> {
    let mut c: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
    c.dedup();
    c
}

fn spec() -> WheelSpec {
    WheelSpec::new("demo", "1.0", "py3-none-any").file("demo/__init__.py", "X = 1\n")
}

#[test]
fn a_clean_wheel_passes_with_its_digest() {
    let f = spec().build();
    let r = audit_fixture(&f);
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.findings);
    assert!(r.findings.is_empty());
    assert_eq!(r.sha256, f.sha256());
    assert_eq!(r.size, f.bytes.len() as u64);
}

#[test]
fn record_must_match_the_files() {
    let base = spec();
    let dist = base.dist_info();
    // A file changed after RECORD was written.
    let mut tampered = base.clone();
    tampered.record = Some(format!(
        "{}\n{}\n{}\n{dist}/RECORD,,\n",
        record_row("demo/__init__.py", b"X = 2\n"),
        record_row(&format!("{dist}/METADATA"), b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"),
        record_row(
            &format!("{dist}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: pipwall-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    ));
    let r = audit_fixture(&tampered.build());
    assert_eq!(codes(&r), [Code::RecordHashMismatch], "{:?}", r.findings);
    assert_eq!(r.findings[0].file, "demo/__init__.py");
    assert_eq!(r.verdict, Verdict::Fail);

    // A file slipped in that RECORD does not list, and a row for a file that is not there.
    let mut extra = base.clone();
    extra
        .unlisted
        .push(("demo/extra.py".into(), b"import os\n".to_vec()));
    let r = audit_fixture(&extra.build());
    assert_eq!(codes(&r), [Code::RecordUnlistedFile]);
    assert_eq!(r.findings[0].file, "demo/extra.py");

    let mut record = base.clone();
    record.record = Some(format!(
        "ghost.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n{dist}/RECORD,,\n"
    ));
    let r = audit_fixture(&record.build());
    assert!(
        codes(&r).contains(&Code::RecordMissingFile),
        "{:?}",
        r.findings
    );
    assert!(codes(&r).contains(&Code::RecordUnlistedFile));

    let mut none = base.clone();
    none.record_missing = true;
    assert_eq!(codes(&audit_fixture(&none.build())), [Code::RecordMissing]);
}

#[test]
fn metadata_and_wheel_file_must_match_the_filename() {
    let mut s = spec();
    s.metadata = Some("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n".into());
    assert_eq!(
        codes(&audit_fixture(&s.build())),
        [Code::MetadataNameMismatch]
    );

    let mut s = spec();
    s.metadata = Some("Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n".into());
    assert_eq!(
        codes(&audit_fixture(&s.build())),
        [Code::MetadataVersionMismatch]
    );

    let mut s = spec();
    s.wheel_file =
        Some("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp311-cp311-win_amd64\n".into());
    let r = audit_fixture(&s.build());
    assert_eq!(codes(&r), [Code::WheelTagsMismatch]);
    assert!(r.findings[0].detail.contains("win_amd64"));

    // The filename names a project whose dist-info is not in the archive.
    let f = spec().build();
    let renamed = Fixture {
        filename: "other-1.0-py3-none-any.whl".into(),
        bytes: f.bytes,
    };
    assert!(codes(&audit_fixture(&renamed)).contains(&Code::DistInfoMissing));
}

#[test]
fn startup_code_is_reported() {
    let s = spec().file("demo_init.pth", "import os; os.system('curl evil')\n");
    let r = audit_fixture(&s.build());
    assert_eq!(codes(&r), [Code::PthExecutesCode]);
    assert!(r.findings[0].detail.contains("os.system"));
    // Reported, not hidden: setuptools ships such a line.
    assert_eq!(r.verdict, Verdict::Pass);

    let s = spec().file("sitecustomize.py", "import evil\n");
    let r = audit_fixture(&s.build());
    assert_eq!(codes(&r), [Code::StartupHook]);
    assert!(r.findings[0].detail.contains("import evil"));
    assert_eq!(r.verdict, Verdict::Fail);
}

/// Replaces every occurrence of `from` by `to` (same length) in the archive bytes.
fn patch(bytes: &[u8], from: &[u8], to: &[u8], nth: Option<usize>) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let hits: Vec<usize> = (0..out.len() - from.len())
        .filter(|&i| &out[i..i + from.len()] == from)
        .collect();
    assert!(!hits.is_empty());
    for (k, i) in hits.iter().enumerate() {
        if nth.is_none_or(|n| n == k) {
            out[*i..*i + to.len()].copy_from_slice(to);
        }
    }
    out
}

#[test]
fn hostile_archives_are_findings_not_errors() {
    let base = spec()
        .file("demo/a.py", "A = 1\n")
        .file("demo/b.py", "B = 1\n")
        .build();
    // Two entries with one name: installers disagree on which wins.
    let dup = Fixture {
        filename: base.filename.clone(),
        bytes: patch(&base.bytes, b"demo/b.py", b"demo/a.py", None),
    };
    let r = audit_fixture(&dup);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        codes(&r).contains(&Code::ZipDuplicateEntry),
        "{:?}",
        r.findings
    );

    // The local header names another file than the central directory (first hit is the
    // local header).
    let split = Fixture {
        filename: base.filename.clone(),
        bytes: patch(&base.bytes, b"demo/b.py", b"demo/c.py", Some(0)),
    };
    let r = audit_fixture(&split);
    assert!(codes(&r).contains(&Code::ZipFraming), "{:?}", r.findings);

    // Path traversal and a symlink.
    let traversal = zip_files(&[("../evil.py".into(), b"x".to_vec())]);
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: traversal,
    });
    assert!(codes(&r).contains(&Code::ZipUnsafePath), "{:?}", r.findings);

    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.add_symlink(
            "demo/link",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        z.finish().unwrap();
    }
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: buf.into_inner(),
    });
    assert!(codes(&r).contains(&Code::ZipSymlink), "{:?}", r.findings);

    // Not a zip at all.
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: b"not a zip".to_vec(),
    });
    assert_eq!(codes(&r), [Code::ZipInvalid]);
}

#[test]
fn a_zip_bomb_is_a_finding_and_is_not_inflated() {
    let s = spec().file("demo/zeros.bin", vec![0u8; 72 << 20]);
    let f = s.build();
    assert!(
        f.bytes.len() < 1 << 20,
        "the bomb should be small: {}",
        f.bytes.len()
    );
    let started = std::time::Instant::now();
    let r = audit_fixture(&f);
    assert!(codes(&r).contains(&Code::ZipBomb), "{:?}", r.findings);
    assert_eq!(r.verdict, Verdict::Fail);
    // Inflating 72 MiB would take far longer than refusing it; a generous bound.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn the_command_prints_json_reports_and_exits_1_on_failure() {
    let d = dir();
    let good = spec().build();
    let mut bad = spec();
    bad.version = "1.1".into();
    bad.metadata = Some("Metadata-Version: 2.1\nName: demo\nVersion: 9\n".into());
    let bad = bad.build();
    write(d.path(), &good);
    write(d.path(), &bad);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["audit", "--format", "json"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    let by_name = |n: &str| reports.iter().find(|r| r["wheel"] == n).unwrap().clone();
    let g = by_name(&good.filename);
    assert_eq!(g["verdict"], "pass");
    assert_eq!(g["sha256"], good.sha256());
    let b = by_name(&bad.filename);
    assert_eq!(b["verdict"], "fail");
    assert_eq!(b["findings"][0]["code"], "metadata-version-mismatch");
    assert!(
        b["findings"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("METADATA")
    );

    // SARIF for code scanning: one result per finding, on the wheel file, at error level when
    // the finding hides the wheel.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["audit", "--format", "sarif"])
        .arg(d.path().join(&bad.filename))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let first = &results[0];
    assert_eq!(first["level"], "error", "{first}");
    assert!(
        first["ruleId"].as_str().unwrap().starts_with("metadata-"),
        "{first}"
    );
    let uri = first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.ends_with(&bad.filename), "{uri}");
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"][0]["id"],
        first["ruleId"]
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .arg("audit")
        .arg(d.path().join(&good.filename))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 wheels audited, 0 failed"));
}

/// Rewrites a field of `name`'s local header and central record alike (offsets from each
/// record's start), so the two still agree and only the data can tell the lie.
fn patch_both(
    bytes: &[u8],
    name: &[u8],
    local_at: usize,
    central_at: usize,
    f: impl Fn(u32) -> u32,
) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut hits = 0;
    for i in 0..out.len().saturating_sub(46) {
        let (sig, name_at, field_at) = match &out[i..i + 4] {
            b"PK\x03\x04" => (true, i + 30, i + local_at),
            b"PK\x01\x02" => (true, i + 46, i + central_at),
            _ => (false, 0, 0),
        };
        if sig && out.get(name_at..name_at + name.len()) == Some(name) {
            let v = u32::from_le_bytes(out[field_at..field_at + 4].try_into().unwrap());
            out[field_at..field_at + 4].copy_from_slice(&f(v).to_le_bytes());
            hits += 1;
        }
    }
    assert_eq!(
        hits,
        2,
        "local header and central record of {}",
        String::from_utf8_lossy(name)
    );
    out
}

#[test]
fn member_data_must_match_its_crc_and_size() {
    let base = spec().file("demo/a.py", "A = 1\n".repeat(100)).build();
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: patch_both(&base.bytes, b"demo/a.py", 14, 16, |crc| crc ^ 1),
    });
    let f = r.findings.iter().find(|f| f.file == "demo/a.py").unwrap();
    assert_eq!(f.code, Code::ZipFraming, "{:?}", r.findings);
    assert!(f.detail.contains("CRC"), "{}", f.detail);
    // A declared size smaller than the data: the inflater stops at the declared size.
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: patch_both(&base.bytes, b"demo/a.py", 22, 24, |n| n - 1),
    });
    assert!(
        codes(&r).contains(&Code::ZipSizeMismatch),
        "{:?}",
        r.findings
    );
}

#[test]
fn large_members_stream_and_are_checked_the_same() {
    // Above the one-piece limit (16 MiB), and not compressible enough to count as a bomb.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..(17 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    let base = spec().file("demo/big.bin", data).build();
    assert_eq!(audit_fixture(&base).verdict, Verdict::Pass);
    let r = audit_fixture(&Fixture {
        filename: base.filename.clone(),
        bytes: patch_both(&base.bytes, b"demo/big.bin", 14, 16, |crc| crc ^ 1),
    });
    let f = r
        .findings
        .iter()
        .find(|f| f.file == "demo/big.bin")
        .unwrap();
    assert_eq!(f.code, Code::ZipFraming, "{:?}", r.findings);
}

/// `pipwall audit … | head`: a reader that goes away ends the command quietly, not with a
/// panic and a backtrace.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let wheelhouse = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wheelhouse");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .arg("audit")
        .args(std::iter::repeat_n(&wheelhouse, 200))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before pipwall writes its first line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
