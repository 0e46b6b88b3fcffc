//! The cost of serving one project page: parse the upstream page (PEP 691 JSON or PEP 503 HTML),
//! decide every file (`policy::decide_page`), and render pipwall's own page in the same format.
//!
//! Pages are generated here, shaped like a compiled project's real page: per version an sdist, a
//! pure-Python wheel and ten platform wheels, absolute file-host URLs, sha256 digests, PEP 658
//! metadata hashes, PEP 700 sizes and upload times, and some yanked versions. A 5,000-file page
//! is about 2 MB in either format, the size of the largest real projects.
//!
//! Run: `cargo bench --bench page` (add `-- --warm-up-time 1 --measurement-time 3` for a quick
//! run).
// A harness: a panic is the failure report, so unwrapping is how it says "cannot happen here".
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use pipwall::dist::ProjectName;
use pipwall::index::{self, render};
use pipwall::policy::{Gate, Policy, decide_page};
use url::Url;

/// The `pipwall` binary's allocator, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PROJECT: &str = "numpylike";
const PAGE_URL: &str = "https://upstream.example/simple/numpylike/";
const SIZES: [usize; 2] = [32, 5_000];

/// Files of one version, in the order they are listed: the sdist, a pure wheel, then the
/// platform wheels.
const PLATFORM_WHEELS: &[(&str, &str)] = &[
    ("cp311-cp311", "manylinux_2_17_x86_64.manylinux2014_x86_64"),
    (
        "cp311-cp311",
        "manylinux_2_17_aarch64.manylinux2014_aarch64",
    ),
    ("cp311-cp311", "macosx_11_0_arm64"),
    ("cp311-cp311", "macosx_10_9_x86_64"),
    ("cp311-cp311", "win_amd64"),
    ("cp312-cp312", "manylinux_2_17_x86_64.manylinux2014_x86_64"),
    (
        "cp312-cp312",
        "manylinux_2_17_aarch64.manylinux2014_aarch64",
    ),
    ("cp312-cp312", "macosx_11_0_arm64"),
    ("cp312-cp312", "macosx_10_9_x86_64"),
    ("cp312-cp312", "win_amd64"),
];
const FILES_PER_VERSION: usize = 2 + PLATFORM_WHEELS.len();

/// One generated upstream file.
struct File {
    filename: String,
    url: String,
    sha256: String,
    metadata_sha256: Option<String>,
    requires_python: &'static str,
    size: u64,
    upload_time: String,
    yanked: Option<&'static str>,
}

/// splitmix64: deterministic pseudo-random digests without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn hex(&mut self, digits: usize) -> String {
        let mut s = String::with_capacity(digits + 16);
        while s.len() < digits {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(digits);
        s
    }
}

fn version_of(v: usize) -> String {
    format!("{}.{}.{}", 1 + v / 100, (v / 10) % 10, v % 10)
}

fn files(n: usize) -> (Vec<File>, Vec<String>) {
    let mut rng = Rng(0x5eed);
    let mut out = Vec::with_capacity(n);
    let mut versions = Vec::new();
    for i in 0..n {
        let v = i / FILES_PER_VERSION;
        let version = version_of(v);
        if i % FILES_PER_VERSION == 0 {
            versions.push(version.clone());
        }
        let filename = match i % FILES_PER_VERSION {
            0 => format!("{PROJECT}-{version}.tar.gz"),
            1 => format!("{PROJECT}-{version}-py3-none-any.whl"),
            k => {
                let (py_abi, platform) = PLATFORM_WHEELS[k - 2];
                format!("{PROJECT}-{version}-{py_abi}-{platform}.whl")
            }
        };
        let dir = rng.hex(64);
        let url = format!(
            "https://files.example/packages/{}/{}/{}/{filename}",
            &dir[..2],
            &dir[2..4],
            &dir[4..]
        );
        let is_sdist = i % FILES_PER_VERSION == 0;
        out.push(File {
            url,
            sha256: rng.hex(64),
            // Sdists have no separate metadata file, as on real indexes.
            metadata_sha256: (!is_sdist).then(|| rng.hex(64)),
            requires_python: if v.is_multiple_of(3) {
                ">=3.10"
            } else {
                ">=3.11,<3.14"
            },
            size: 2_000_000 + rng.next() % 18_000_000,
            upload_time: format!(
                "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                20 + (v / 120) % 10,
                1 + (v / 10) % 12,
                1 + v % 28,
                i % 24,
                i % 60,
                (i * 7) % 60,
                rng.next() % 1_000_000
            ),
            yanked: match v % 17 {
                5 => Some("broken build, use the next release"),
                11 => Some(""),
                _ => None,
            },
            filename,
        });
    }
    (out, versions)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A PEP 691 page, as an upstream index serves it (`meta.api-version` 1.1, with `versions`).
fn json_page(n: usize) -> String {
    let (files, versions) = files(n);
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let mut o = serde_json::json!({
                "filename": f.filename,
                "url": f.url,
                "hashes": { "sha256": f.sha256 },
                "requires-python": f.requires_python,
                "size": f.size,
                "upload-time": f.upload_time,
            });
            let m = o.as_object_mut().unwrap();
            if let Some(h) = &f.metadata_sha256 {
                m.insert("core-metadata".into(), serde_json::json!({ "sha256": h }));
            }
            match f.yanked {
                Some("") => m.insert("yanked".into(), true.into()),
                Some(reason) => m.insert("yanked".into(), reason.into()),
                None => m.insert("yanked".into(), false.into()),
            };
            o
        })
        .collect();
    serde_json::json!({
        "meta": { "api-version": "1.1", "_last-serial": 23_456_789 },
        "name": PROJECT,
        "files": files,
        "versions": versions,
    })
    .to_string()
}

/// A PEP 503 page, as an upstream index serves it.
fn html_page(n: usize) -> String {
    let (files, _) = files(n);
    let mut s = String::with_capacity(n * 450 + 512);
    s.push_str("<!DOCTYPE html>\n<html>\n  <head>\n");
    s.push_str("    <meta name=\"pypi:repository-version\" content=\"1.1\">\n");
    let _ = write!(
        s,
        "    <title>Links for {PROJECT}</title>\n  </head>\n  <body>\n    <h1>Links for {PROJECT}</h1>\n"
    );
    for f in &files {
        let _ = write!(
            s,
            "    <a href=\"{}#sha256={}\" data-requires-python=\"{}\"",
            f.url,
            f.sha256,
            escape(f.requires_python)
        );
        if let Some(h) = &f.metadata_sha256 {
            let _ = write!(s, " data-core-metadata=\"sha256={h}\"");
        }
        if let Some(reason) = f.yanked {
            let _ = write!(s, " data-yanked=\"{}\"", escape(reason));
        }
        let _ = writeln!(s, ">{}</a><br />", f.filename);
    }
    s.push_str("  </body>\n</html>\n<!--SERIAL 23456789-->\n");
    s
}

#[derive(Clone, Copy)]
enum Format {
    Json,
    Html,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Html => "html",
        }
    }

    fn page(self, n: usize) -> String {
        match self {
            Self::Json => json_page(n),
            Self::Html => html_page(n),
        }
    }

    fn parse(self, text: &str, url: &Url) -> index::ProjectPage {
        match self {
            Self::Json => index::json::parse(text, url),
            Self::Html => index::html::parse(text, url),
        }
        .expect("generated page parses")
    }

    fn render(self, page: &render::ServedPage) -> Vec<u8> {
        match self {
            Self::Json => render::json(page),
            Self::Html => render::html(page),
        }
    }
}

/// The shipped default policy, loaded once: the server loads it at start, not per page.
fn default_policy() -> &'static Policy {
    static POLICY: std::sync::OnceLock<Policy> = std::sync::OnceLock::new();
    POLICY.get_or_init(Policy::builtin)
}

/// Parse, decide and render once. Never inlined, so a profiler (callgrind's `--toggle-collect`)
/// can count one page's instructions.
#[inline(never)]
fn pipeline(format: Format, text: &str, url: &Url, project: &ProjectName) -> Vec<u8> {
    let page = format.parse(text, url);
    let policy = default_policy();
    let Gate::Open(view) = policy.gate(project, jiff::Timestamp::now()) else {
        unreachable!("the default policy blocks no project")
    };
    let (served, decisions) = decide_page(project, page, &view);
    black_box(&decisions);
    format.render(&served)
}

/// Checks that the generated page is read as intended (no invalid entry, wheels shown), so the
/// benchmark never measures an error path.
fn check(format: Format, n: usize, text: &str, url: &Url, project: &ProjectName) {
    let page = format.parse(text, url);
    assert!(page.invalid.is_empty(), "{:?}", page.invalid);
    assert_eq!(page.files.len(), n);
    let policy = default_policy();
    let Gate::Open(view) = policy.gate(project, jiff::Timestamp::now()) else {
        unreachable!("the default policy blocks no project")
    };
    let (served, decisions) = decide_page(project, page, &view);
    assert_eq!(decisions.len(), n);
    assert!(!served.files.is_empty(), "the wheels are shown");
}

fn bench_pipeline(c: &mut Criterion) {
    let url = Url::parse(PAGE_URL).unwrap();
    let project = ProjectName::new(PROJECT).unwrap();
    let mut group = c.benchmark_group("parse_decide_render");
    // A 5,000-file page takes milliseconds: flat sampling keeps short runs short.
    group.sampling_mode(SamplingMode::Flat);
    for format in [Format::Json, Format::Html] {
        for n in SIZES {
            let text = format.page(n);
            check(format, n, &text, &url, &project);
            eprintln!("{} page of {n} files: {} bytes", format.name(), text.len());
            group.throughput(Throughput::Bytes(text.len() as u64));
            group.bench_with_input(BenchmarkId::new(format.name(), n), &text, |b, text| {
                b.iter(|| pipeline(format, black_box(text), &url, &project));
            });
        }
    }
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let url = Url::parse(PAGE_URL).unwrap();
    let n = 5_000;
    let mut group = c.benchmark_group("parse");
    group.sampling_mode(SamplingMode::Flat);
    for format in [Format::Json, Format::Html] {
        let text = format.page(n);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new(format.name(), n), &text, |b, text| {
            b.iter(|| format.parse(black_box(text), &url));
        });
    }
    group.finish();
}

/// The stages after parsing, apart, on the 5,000-file JSON page: where the time goes.
fn bench_stages(c: &mut Criterion) {
    let url = Url::parse(PAGE_URL).unwrap();
    let project = ProjectName::new(PROJECT).unwrap();
    let text = Format::Json.page(5_000);
    let parsed = Format::Json.parse(&text, &url);
    let policy = default_policy();
    let mut group = c.benchmark_group("stages");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("decide/5000", |b| {
        b.iter_batched(
            || parsed.clone(),
            |page| {
                let Gate::Open(view) = policy.gate(&project, jiff::Timestamp::now()) else {
                    unreachable!()
                };
                decide_page(&project, page, &view)
            },
            criterion::BatchSize::LargeInput,
        );
    });
    let Gate::Open(view) = policy.gate(&project, jiff::Timestamp::now()) else {
        unreachable!()
    };
    let (served, _) = decide_page(&project, parsed.clone(), &view);
    for format in [Format::Json, Format::Html] {
        group.bench_function(format!("render_{}/5000", format.name()), |b| {
            b.iter(|| format.render(black_box(&served)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_pipeline, bench_parse, bench_stages);
criterion_main!(benches);
