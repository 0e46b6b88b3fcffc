//! What a policy costs per file, and what loading advisory data costs.
//!
//! `decide_per_file`: a policy of 1,000 rules (deny-list names and globs, per-project version
//! rules, per-project cooldowns, exceptions) over a 10,000-record advisory set, applied to a
//! page of 1,000 wheels of a project that 40 of the records name. The figure reported is the
//! time for the page; divide by 1,000 for the cost per file (the issue's goal: under 2 µs).
//!
//! `load_pypa_advisories`: loading and indexing the PyPA advisory database snapshot (2,661 YAML
//! records, zipped) from `../shared/data/`, when it is there (goal: under 1 s).
//!
//! Run: `cargo bench --bench policy` (add `-- --warm-up-time 1 --measurement-time 3` for a quick
//! run).
// A harness: a panic is the failure report, so unwrapping is how it says "cannot happen here".
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipwall::dist::ProjectName;
use pipwall::index::{CoreMetadata, FileEntry, FileUrl, ProjectPage};
use pipwall::policy::{Gate, Policy, decide_page, load_files};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FILES: usize = 1_000;
const RECORDS: usize = 10_000;
const PROJECT: &str = "target-project";

/// 10,000 OSV records over 2,000 projects (5 each), plus 40 on the benchmarked project, as
/// JSON files in the PyPA layout.
fn write_advisories(dir: &Path) {
    let record = |id: &str, project: &str, introduced: &str, fixed: &str| {
        format!(
            r#"{{"id":"{id}","modified":"2026-11-20T00:00:00Z","summary":"s","affected":[{{"package":{{"ecosystem":"PyPI","name":"{project}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"{introduced}"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
        )
    };
    for i in 0..RECORDS - 40 {
        let project = format!("project-{}", i % 2_000);
        let d = dir.join("vulns").join(&project);
        std::fs::create_dir_all(&d).unwrap();
        let text = record(
            &format!("PYSEC-B-{i}"),
            &project,
            "0",
            &format!("{}.0", i % 7 + 1),
        );
        std::fs::write(d.join(format!("PYSEC-B-{i}.json")), text).unwrap();
    }
    let d = dir.join("vulns").join(PROJECT);
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..40 {
        // Ranges in the 100s: the benchmarked versions (0.x to 9.x) are all clean, so every
        // file runs every check and is shown.
        let text = record(
            &format!("PYSEC-T-{i}"),
            PROJECT,
            &format!("{}.0", 100 + i * 2),
            &format!("{}.1", 100 + i * 2),
        );
        std::fs::write(d.join(format!("PYSEC-T-{i}.json")), text).unwrap();
    }
}

/// 1,000 rules: 400 deny entries (half globs), 300 version rules, 200 cooldown overrides,
/// 100 exceptions.
fn write_policy(dir: &Path) -> PathBuf {
    let mut p = String::new();
    p.push_str("[projects]\ndeny = [\n");
    for i in 0..400 {
        if i % 2 == 0 {
            let _ = writeln!(p, "  \"denied-{i}\",");
        } else {
            let _ = writeln!(p, "  \"evil-{i}-*\",");
        }
    }
    p.push_str("]\n[versions]\nrequire = {");
    for i in 0..299 {
        let _ = write!(p, " \"pinned-{i}\" = \">=1,<{}\",", i + 2);
    }
    let _ = writeln!(p, " \"{PROJECT}\" = \">=0\" }}");
    p.push_str("[cooldown]\nmin-age = \"7d\"\nprojects = {");
    for i in 0..200 {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(p, "{sep} \"fast-{i}\" = \"1d\"");
    }
    p.push_str(
        " }\n[tags]\npython = [\"py3\", \"cp31*\"]\nplatform = [\"any\", \"manylinux*_x86_64\"]\n",
    );
    let _ = writeln!(
        p,
        "[advisories]\nsources = [\"{}\"]\n",
        dir.join("vulns").display()
    );
    for i in 0..100 {
        let _ = writeln!(
            p,
            "[[exceptions]]\nrule = \"sdists\"\nproject = \"exc-{i}\"\nreason = \"r\"\n"
        );
    }
    let path = dir.join("policy.toml");
    std::fs::write(&path, p).unwrap();
    path
}

fn page() -> ProjectPage {
    let files = (0..FILES)
        .map(|i| {
            let name = format!("target_project-{}.{}-py3-none-any.whl", i / 100, i % 100);
            FileEntry {
                url: FileUrl::Resolved(Box::new(
                    url::Url::parse(&format!("https://files.example/{name}")).unwrap(),
                )),
                filename: name,
                hashes: pipwall::index::Hashes::sha256(format!("{i:064x}")),
                requires_python: None,
                yanked: None,
                core_metadata: CoreMetadata::Absent,
                size: Some(10_000),
                upload_time: Some("2025-01-01T00:00:00.000000Z".into()),
                provenance: None,
            }
        })
        .collect();
    ProjectPage {
        files,
        ..ProjectPage::default()
    }
}

fn bench_decide(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_advisories(dir.path());
    let path = write_policy(dir.path());
    let started = std::time::Instant::now();
    let (policy, _) = load_files(&[path]).unwrap();
    eprintln!(
        "policy of 1,000 rules with {} advisory records loaded in {:?}",
        policy.advisory_feed.as_ref().map_or(0, |f| f.db.len()),
        started.elapsed()
    );
    let project = ProjectName::new(PROJECT).unwrap();
    let now = jiff::Timestamp::now();
    let check = |policy: &Policy| {
        let Gate::Open(view) = policy.gate(&project, now) else {
            panic!("blocked")
        };
        let (served, _) = decide_page(&project, page(), &view);
        assert_eq!(served.files.len(), FILES, "every file passes every rule");
    };
    check(&policy);
    let mut group = c.benchmark_group("policy");
    group.throughput(Throughput::Elements(FILES as u64));
    group.bench_function("decide_1000_files_1000_rules_10000_advisories", |b| {
        b.iter_batched(
            page,
            |page| {
                let Gate::Open(view) = policy.gate(&project, now) else {
                    unreachable!()
                };
                black_box(decide_page(&project, page, &view))
            },
            criterion::BatchSize::LargeInput,
        );
    });
    let builtin = Policy::builtin();
    group.bench_function("decide_1000_files_default_policy", |b| {
        b.iter_batched(
            page,
            |page| {
                let Gate::Open(view) = builtin.gate(&project, now) else {
                    unreachable!()
                };
                black_box(decide_page(&project, page, &view))
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let zip = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/pypa-advisory-database-vulns-2024-10-10.zip");
    if !zip.exists() {
        eprintln!(
            "{} is not here; skipping the loader benchmark",
            zip.display()
        );
        return;
    }
    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    group.bench_function("load_pypa_advisories_zip", |b| {
        b.iter(|| {
            let (db, report) = pipwall::data::osv::OsvDb::load(std::slice::from_ref(&zip)).unwrap();
            assert!(report.records > 2_000);
            black_box(db)
        });
    });
    group.finish();
}

criterion_group!(benches, bench_decide, bench_load);
criterion_main!(benches);
