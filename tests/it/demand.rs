//! Issue 15, end to end: a project of thousands of wheels, most of which no client here can
//! install, behind a slow upstream. Real pip and uv install through a cold pipwall; the fake
//! upstream counts what pipwall fetched.

use std::time::Duration;

use crate::support::clients::{INSTALLERS, Installer, installed_version};
use crate::support::fixtures::{Fixture, WheelSpec};
use crate::support::upstream::Reply;
use crate::support::{FakeIndex, PageFormat, Pipwall, clients, wheel};

const PYTHONS: [&str; 5] = ["cp39", "cp310", "cp311", "cp312", "cp313"];
const PLATFORMS: [&str; 6] = [
    "manylinux_2_17_x86_64",
    "manylinux_2_17_aarch64",
    "musllinux_1_2_x86_64",
    "win_amd64",
    "macosx_11_0_arm64",
    "macosx_10_9_x86_64",
];
/// 100 versions × 30 wheels: 3,000 wheels.
const VERSIONS: u32 = 100;

/// The wheel of `big` this machine's CPython 3.11 on glibc x86_64 installs.
fn ours(version: &str) -> String {
    format!("big-{version}-cp311-cp311-manylinux_2_17_x86_64.whl")
}

fn big_wheel(version: &str, py: &str, platform: &str, lies: bool) -> Fixture {
    let mut spec = WheelSpec::new("big", version, &format!("{py}-{py}-{platform}"))
        .file("big/__init__.py", format!("VERSION = '{version}'\n"));
    spec.wheel_file = Some(format!(
        "Wheel-Version: 1.0\nGenerator: pipwall-tests\nRoot-Is-Purelib: false\nTag: {py}-{py}-{platform}\n"
    ));
    if lies {
        spec.metadata = Some(format!(
            "Metadata-Version: 2.1\nName: other\nVersion: {version}\n"
        ));
    }
    spec.build()
}

/// `big` 1.0 … 1.99 with 30 wheels each; the newest version's wheel for this machine, and
/// 1.30's, fail their audit (their METADATA names another project). Every download stalls
/// `stall` before its first byte, as a slow link would.
fn big_project(up: &FakeIndex, stall: Duration) -> Vec<Fixture> {
    let newest = format!("1.{}", VERSIONS - 1);
    let mut files = Vec::new();
    for v in 0..VERSIONS {
        let version = format!("1.{v}");
        for py in PYTHONS {
            for platform in PLATFORMS {
                let lies = (version == newest || version == "1.30")
                    && py == "cp311"
                    && platform == "manylinux_2_17_x86_64";
                files.push(big_wheel(&version, py, platform, lies));
            }
        }
    }
    up.project("big", PageFormat::Json, &files);
    for f in &files {
        up.set_reply(
            &format!("/files/{}", f.filename),
            Reply {
                delay: stall,
                ..Reply::ok("application/octet-stream", f.bytes.clone())
            },
        );
    }
    files
}

fn wheels_fetched(up: &FakeIndex) -> Vec<String> {
    let mut out: Vec<String> = up
        .requests()
        .into_iter()
        .filter(|p| p.ends_with(".whl"))
        .filter_map(|p| p.rsplit('/').next().map(str::to_owned))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The big project's first install succeeds through a cold pipwall with pip and then uv, and
/// fetches only the wheels this machine could install: the newest version's (which fails its
/// audit, so it is never delivered) and the next one's. A small project asked for at the same
/// time installs too.
#[tokio::test(flavor = "multi_thread")]
async fn a_big_project_installs_on_first_sight_fetching_only_what_the_client_can_install() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let files = big_project(&up, Duration::from_millis(200));
    assert_eq!(files.len(), 3000);
    up.project("small", PageFormat::Json, &[wheel("small", "1.0")]);
    let pw = Pipwall::start(&[up.url()]).await;
    let index = pw.index_url();
    let newest = format!("1.{}", VERSIONS - 1);
    let next = format!("1.{}", VERSIONS - 2);
    for installer in INSTALLERS {
        let target = home.path().join(format!("big-{installer:?}"));
        let small_target = home.path().join(format!("small-{installer:?}"));
        let (run, small) = tokio::join!(
            clients().install(installer, &index, home.path(), &target, &["big"]),
            clients().install(installer, &index, home.path(), &small_target, &["small"]),
        );
        assert!(run.ok, "{installer:?}: {}", run.output);
        assert_eq!(
            installed_version(&target, "big").as_deref(),
            Some(next.as_str()),
            "{installer:?}: the newest version's wheel failed its audit: {}",
            run.output
        );
        assert!(small.ok, "{installer:?}: {}", small.output);
        assert_eq!(
            installed_version(&small_target, "small").as_deref(),
            Some("1.0")
        );
    }
    // Of 3,000 wheels, the two this machine's newest versions offer it, and the small one.
    let mut expected = vec![
        ours(&newest),
        ours(&next),
        "small-1.0-py3-none-any.whl".into(),
    ];
    expected.sort();
    assert_eq!(wheels_fetched(&up), expected);
    // The failing wheel is refused if asked for directly.
    let lying = files.iter().find(|f| f.filename == ours(&newest)).unwrap();
    let refused = pw
        .get(
            &format!("/files/{}/{}", lying.sha256(), lying.filename),
            None,
        )
        .await;
    assert_eq!(refused.status, 403);
    let metrics = pw.get("/metrics", None).await.text();
    assert!(
        metrics.contains("pipwall_environments_known 1")
            || metrics.contains("pipwall_environments_known 2"),
        "pip's and uv's User-Agents describe this machine: {metrics}"
    );
    assert!(
        metrics.contains("pipwall_upstream_bytes_total{kind=\"file\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pipwall_audits_started_total{cause=\"waiting\"}")
            && metrics.contains("pipwall_audits_running_by_cause{cause=\"waiting\"} 0"),
        "{metrics}"
    );
}

/// An older version, on first sight: `big<1.50` resolves to 1.49, listed held, whose
/// download waits for its audit. A version whose wheel fails (1.30) is refused with its
/// finding, and never delivered.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_version_installs_on_first_sight_through_a_held_download() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    big_project(&up, Duration::from_millis(50));
    let pw = Pipwall::start(&[up.url()]).await;
    let index = pw.index_url();
    for installer in INSTALLERS {
        let target = home.path().join(format!("old-{installer:?}"));
        let run = clients()
            .install(installer, &index, home.path(), &target, &["big<1.50"])
            .await;
        assert!(run.ok, "{installer:?}: {}", run.output);
        assert_eq!(installed_version(&target, "big").as_deref(), Some("1.49"));
        let target = home.path().join(format!("bad-{installer:?}"));
        let run = clients()
            .install(installer, &index, home.path(), &target, &["big==1.30"])
            .await;
        assert!(!run.ok, "{installer:?}: {}", run.output);
        assert_eq!(installed_version(&target, "big"), None);
        if matches!(installer, Installer::Pip) {
            assert!(run.output.contains("403"), "{}", run.output);
        }
    }
    let fetched = wheels_fetched(&up);
    assert!(fetched.contains(&ours("1.49")) && fetched.contains(&ours("1.30")));
    assert!(fetched.len() <= 4, "{fetched:?}");
    // Hidden from then on: the page no longer lists 1.30's wheel.
    let page = pw
        .get("/simple/big/", Some("application/vnd.pypi.simple.v1+json"))
        .await;
    assert!(!page.text().contains(&ours("1.30")));
    assert!(page.text().contains(&ours("1.49")));
}

/// A restart resumes the audit queue: the declared fleet's wheels queued (or running) when
/// pipwall was killed are fetched and audited after it starts again, with no request asking.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_resumes_the_audit_queue() {
    use crate::support::served::Served;
    let up = FakeIndex::start().await;
    let fleet_platforms = ["win_amd64", "macosx_11_0_arm64", "musllinux_1_2_x86_64"];
    let mut files = vec![big_wheel("1.0", "cp311", "manylinux_2_17_x86_64", false)];
    for platform in fleet_platforms {
        files.push(big_wheel("1.0", "cp312", platform, false));
    }
    up.project("big", PageFormat::Json, &files);
    for f in &files {
        up.set_reply(
            &format!("/files/{}", f.filename),
            Reply {
                delay: Duration::from_millis(1500),
                ..Reply::ok("application/octet-stream", f.bytes.clone())
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("fleet.toml");
    std::fs::write(
        &policy,
        "[audit]\nfleet = [\n  { python = \"3.12\", platform = \"win_amd64\" },\n  { python = \"3.12\", platform = \"macosx_14_0_arm64\" },\n  { python = \"3.12\", platform = \"musllinux_1_2_x86_64\" },\n]\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let args = [
        "--upstream",
        &up.url(),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--audit-downloads",
        "1",
        "--audit-jobs",
        "1",
    ];
    let ua = r#"pip/26.3 {"cpu":"x86_64","distro":{"libc":{"lib":"glibc","version":"2.36"}},"implementation":{"name":"CPython","version":"3.11.7"},"python":"3.11.7","system":{"name":"Linux"}}"#;
    let fleet_fetched = |up: &FakeIndex| {
        wheels_fetched(up)
            .into_iter()
            .filter(|f| f.contains("cp312"))
            .count()
    };
    {
        let served = Served::start(&args);
        let page = crate::support::pipwall::raw_get_with(
            served.addr,
            "/simple/big/",
            &[
                ("accept", "application/vnd.pypi.simple.v1+json"),
                ("user-agent", ua),
            ],
        )
        .await;
        assert_eq!(page.status, 200);
        // The page answered once this client's wheel passed; the fleet's three wait behind
        // it, one download at a time. The queue is written every 2 s.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(fleet_fetched(&up) < 3, "{:?}", wheels_fetched(&up));
        // Killed (SIGKILL) when dropped.
    }
    let saved = std::fs::read_to_string(cache.join("audits/queue.json")).unwrap();
    assert!(saved.contains("cp312"), "{saved}");
    let before = up.requests().len();
    let _served = Served::start(&args);
    for _ in 0..100 {
        if fleet_fetched(&up) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(fleet_fetched(&up), 3, "{:?}", wheels_fetched(&up));
    // Nothing asked for a page after the restart: the queue came from disk.
    assert!(
        up.requests()[before..].iter().all(|p| p.ends_with(".whl")),
        "{:?}",
        &up.requests()[before..]
    );
}

/// `pip download --platform win_amd64 --only-binary :all:` from this Linux machine: its
/// User-Agent says Linux, so no Windows wheel was audited up front; the one it picks is listed
/// held, audited while the download waits, and delivered once it passed.
#[tokio::test(flavor = "multi_thread")]
async fn a_cross_platform_download_gets_a_held_wheel_audited_on_the_way() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    big_project(&up, Duration::from_millis(20));
    let pw = Pipwall::start(&[up.url()]).await;
    let dest = home.path().join("dl");
    let run = clients()
        .pip(
            &pw.index_url(),
            home.path(),
            &[
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--platform",
                "win_amd64",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                "--dest",
                dest.to_str().unwrap(),
                "big",
            ],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    let want = format!("big-1.{}-cp312-cp312-win_amd64.whl", VERSIONS - 1);
    assert!(dest.join(&want).exists(), "{}", run.output);
    // Fetched: the Linux wheels this machine's pip would have taken (the newest fails, so two),
    // and the one Windows wheel downloaded.
    let fetched = wheels_fetched(&up);
    assert!(fetched.contains(&want), "{fetched:?}");
    assert!(fetched.len() <= 3, "{fetched:?}");
}

/// `pipwall warm` audits, into serve's cache folder, what the declared fleet can install:
/// serve's first answer to a fleet machine then fetches and audits nothing.
#[tokio::test(flavor = "multi_thread")]
async fn warm_audits_the_fleets_wheels_before_the_first_install() {
    let up = FakeIndex::start().await;
    let win = big_wheel("2.0", "cp312", "win_amd64", false);
    let mac = big_wheel("2.0", "cp312", "macosx_11_0_arm64", false);
    let linux = big_wheel("2.0", "cp312", "manylinux_2_17_x86_64", false);
    let old_win = big_wheel("1.0", "cp312", "win_amd64", false);
    up.project(
        "big",
        PageFormat::Json,
        &[win.clone(), mac.clone(), linux.clone(), old_win.clone()],
    );
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("fleet.toml");
    std::fs::write(
        &policy_file,
        "[audit]\nfleet = [\n  { python = \"3.12\", platform = \"win_amd64\" },\n  { python = \"3.12\", platform = \"macosx_14_0_arm64\" },\n]\n",
    )
    .unwrap();
    let reqs = dir.path().join("requirements.txt");
    std::fs::write(
        &reqs,
        "# what the fleet installs\nbig==2.0 ; python_version >= '3.12'\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["warm", "--from"])
        .arg(&reqs)
        .args(["--upstream", &up.url(), "--cache-dir"])
        .arg(cache.path())
        .arg("--policy")
        .arg(&policy_file)
        .env_remove("PIPWALL_CACHE_DIR")
        .env_remove("PIPWALL_POLICY")
        .env_remove("PIPWALL_UPSTREAM")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("big: 2 wheel(s) audited for 2 environment(s): 2 passed"),
        "{stdout}"
    );
    let mut expected = vec![win.filename.clone(), mac.filename.clone()];
    expected.sort();
    assert_eq!(
        wheels_fetched(&up),
        expected,
        "the fleet's newest, nothing else"
    );

    let policy = std::sync::Arc::new(pipwall::policy::load_files(&[policy_file]).unwrap().0);
    let pw = Pipwall::start_in(
        cache,
        &[up.url()],
        pipwall::upstream::Limits::default(),
        None,
        |s| s.policy = policy,
    )
    .await;
    let before = up.requests().len();
    let ua = r#"pip/26.3 {"cpu":"AMD64","implementation":{"name":"CPython","version":"3.12.4"},"python":"3.12.4","system":{"name":"Windows","release":"10"}}"#;
    let page = crate::support::pipwall::raw_get_with(
        pw.addr,
        "/simple/big/",
        &[
            ("accept", "application/vnd.pypi.simple.v1+json"),
            ("user-agent", ua),
        ],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&win.filename));
    assert_eq!(page.header("cache-control"), Some("max-age=60"));
    // Only the page was asked for: the Windows wheel's verdict was already in the cache.
    let after: Vec<String> = up.requests()[before..].to_vec();
    assert!(after.iter().all(|p| !p.ends_with(".whl")), "{after:?}");
}
