//! Audits inside the proxy: the page deadline, single-flight downloads, and reports that
//! survive a restart.

use std::time::Duration;

use pipwall::upstream::Limits;

use crate::support::fixtures::WheelSpec;
use crate::support::{FakeIndex, PageFormat, Pipwall, wheel};

const JSON: Option<&str> = Some("application/vnd.pypi.simple.v1+json");

fn listed(body: &str, filename: &str) -> bool {
    body.contains(filename)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_audit_is_left_out_until_it_passes() {
    let up = FakeIndex::start().await;
    let f = wheel("slow", "1.0");
    up.project("slow", PageFormat::Json, std::slice::from_ref(&f));
    // The wheel's download stalls for longer than the page deadline.
    up.slow_download(&f, Duration::from_millis(1500));
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.audit_deadline = Duration::from_millis(200),
    )
    .await;
    let started = std::time::Instant::now();
    let first = pw.get("/simple/slow/", JSON).await;
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "the page waited for the audit"
    );
    assert_eq!(first.status, 200);
    assert!(!listed(&first.text(), &f.filename), "{}", first.text());
    assert_eq!(first.header("cache-control"), Some("no-store"));
    assert_eq!(first.header("x-pipwall-audits-pending"), Some("1"));
    // The audit went on in the background; a later request lists the wheel, cacheable again.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = pw.get("/simple/slow/", JSON).await;
    assert!(listed(&second.text(), &f.filename), "{}", second.text());
    assert_eq!(second.header("cache-control"), Some("max-age=60"));
    // The audit's download was the prefetch: the file is served without asking upstream again.
    let downloads = |up: &FakeIndex| {
        up.requests()
            .iter()
            .filter(|p| p.ends_with(&f.filename))
            .count()
    };
    let file = pw
        .get(&format!("/files/{}/{}", f.sha256(), f.filename), None)
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body, f.bytes);
    assert_eq!(downloads(&up), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pages_share_one_download_and_one_audit() {
    let up = FakeIndex::start().await;
    let f = wheel("busy", "1.0");
    up.project("busy", PageFormat::Json, std::slice::from_ref(&f));
    up.slow_download(&f, Duration::from_millis(300));
    let pw = Pipwall::start(&[up.url()]).await;
    let pages =
        futures_util::future::join_all((0..16).map(|_| pw.get("/simple/busy/", JSON))).await;
    for p in &pages {
        assert!(listed(&p.text(), &f.filename), "{}", p.text());
    }
    let fetched = up
        .requests()
        .iter()
        .filter(|p| p.ends_with(&f.filename))
        .count();
    assert_eq!(fetched, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_survive_a_restart_and_failures_stay_hidden() {
    let up = FakeIndex::start().await;
    let good = wheel("keep", "1.0");
    let mut bad =
        WheelSpec::new("keep", "1.1", "py3-none-any").file("keep/__init__.py", "VERSION = '1.1'\n");
    bad.metadata = Some("Metadata-Version: 2.1\nName: other\nVersion: 1.1\n".into());
    let bad = bad.build();
    up.project("keep", PageFormat::Json, &[good.clone(), bad.clone()]);
    let pw = Pipwall::start(&[up.url()]).await;
    let page = pw.get("/simple/keep/", JSON).await;
    assert!(listed(&page.text(), &good.filename));
    assert!(!listed(&page.text(), &bad.filename));
    // The version whose only wheel failed drops out of `versions` too.
    let doc: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    assert_eq!(doc["versions"], serde_json::json!(["1.0"]));
    let refused = pw
        .get(&format!("/files/{}/{}", bad.sha256(), bad.filename), None)
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("x-pipwall-reason"), Some("audit-failed"));
    assert!(
        refused.text().contains("metadata-name-mismatch"),
        "{}",
        refused.text()
    );
    let before = up.requests().len();

    let cache = pw.stop();
    let pw = Pipwall::start_in(cache, &[up.url()], Limits::default(), None, |_| {}).await;
    let page = pw.get("/simple/keep/", JSON).await;
    assert!(listed(&page.text(), &good.filename));
    assert!(!listed(&page.text(), &bad.filename));
    // Only the page was asked for again: no wheel was downloaded to be audited anew.
    let after: Vec<String> = up.requests()[before..].to_vec();
    assert!(after.iter().all(|p| !p.ends_with(".whl")), "{after:?}");
}

/// Issue 15: only what some client can install is fetched. The Windows wheel is listed, its
/// download held until its audit, which runs only when a client downloads it.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_wheels_a_client_can_install_are_fetched_and_the_rest_are_held() {
    let up = FakeIndex::start().await;
    let windows = WheelSpec::new("mixed", "2.0", "cp311-cp311-win_amd64")
        .file("mixed/__init__.py", "")
        .build();
    let linux = WheelSpec::new("mixed", "1.0", "py3-none-any")
        .file("mixed/__init__.py", "")
        .build();
    up.project("mixed", PageFormat::Json, &[windows.clone(), linux.clone()]);
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.audit_jobs = 1,
    )
    .await;
    let ua = r#"pip/26.3 {"cpu":"x86_64","distro":{"libc":{"lib":"glibc","version":"2.36"}},"implementation":{"name":"CPython","version":"3.11.7"},"python":"3.11.7","system":{"name":"Linux"}}"#;
    let page = crate::support::pipwall::raw_get_with(
        pw.addr,
        "/simple/mixed/",
        &[("accept", JSON.unwrap()), ("user-agent", ua)],
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(listed(&page.text(), &linux.filename));
    assert!(listed(&page.text(), &windows.filename), "held, not hidden");
    let wheels = || -> Vec<String> {
        up.requests()
            .into_iter()
            .filter(|p| p.ends_with(".whl"))
            .collect()
    };
    // Newest first would fetch the Windows 2.0 wheel; this Linux client cannot use it.
    assert_eq!(wheels().len(), 1, "{:?}", wheels());
    assert!(wheels()[0].ends_with(&linux.filename));
    // The environment is remembered for the next start (written in the background).
    let known_file = pw.cache.path().join("environments.json");
    for _ in 0..50 {
        if known_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let known = std::fs::read_to_string(&known_file).unwrap();
    assert!(
        known.contains("cpython3.11-linux-x86_64-glibc2.36"),
        "{known}"
    );
    // `pip download --platform win_amd64` from this machine: the held download audits it.
    let got = pw
        .get(
            &format!("/files/{}/{}", windows.sha256(), windows.filename),
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, windows.bytes);
    assert_eq!(wheels().len(), 2);
}

/// A held wheel that fails its audit is refused with its finding when downloaded, and hidden
/// from the page from then on.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_wheel_that_fails_is_refused_and_then_hidden() {
    let up = FakeIndex::start().await;
    let mut bad = WheelSpec::new("heldbad", "1.0", "py3-none-any").file("heldbad/__init__.py", "");
    bad.metadata = Some("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n".into());
    let bad = bad.build();
    let good = wheel("heldbad", "2.0");
    up.project("heldbad", PageFormat::Json, &[good.clone(), bad.clone()]);
    let pw = Pipwall::start(&[up.url()]).await;
    let page = pw.get("/simple/heldbad/", JSON).await;
    assert!(listed(&page.text(), &good.filename));
    assert!(listed(&page.text(), &bad.filename), "{}", page.text());
    assert!(
        !up.was_requested(&bad.filename),
        "2.0 passed: 1.0 is not fetched"
    );
    let refused = pw
        .get(&format!("/files/{}/{}", bad.sha256(), bad.filename), None)
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("x-pipwall-reason"), Some("audit-failed"));
    let page = pw.get("/simple/heldbad/", JSON).await;
    assert!(!listed(&page.text(), &bad.filename), "{}", page.text());
    assert!(listed(&page.text(), &good.filename));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_file_cache_keeps_its_cap_and_evicted_files_still_download() {
    let up = FakeIndex::start().await;
    let a = wheel("capped", "1.0");
    let b = wheel("capped", "1.1");
    up.project("capped", PageFormat::Json, &[a.clone(), b.clone()]);
    let cap = a.bytes.len().max(b.bytes.len()) as u64 + 16;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        move |s| {
            s.cache_max_bytes = cap;
            s.audit_jobs = 1;
        },
    )
    .await;
    // Both wheels are audited (downloaded into the cache); only one fits.
    let page = pw.get("/simple/capped/", JSON).await;
    assert!(listed(&page.text(), &a.filename) && listed(&page.text(), &b.filename));
    let files = pw.cache.path().join("files");
    let cached = |f: &crate::support::fixtures::Fixture| {
        files.join(&f.sha256()[..2]).join(f.sha256()).exists()
    };
    assert!(cached(&a) ^ cached(&b), "exactly one wheel stays cached");
    for f in [&a, &b] {
        let got = pw
            .get(&format!("/files/{}/{}", f.sha256(), f.filename), None)
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(got.body, f.bytes);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_removes_half_written_files() {
    let cache = tempfile::tempdir().unwrap();
    let bucket = cache.path().join("files").join("ab");
    std::fs::create_dir_all(&bucket).unwrap();
    let part = bucket.join(".part-interrupted");
    std::fs::write(&part, b"half a wheel").unwrap();
    let up = FakeIndex::start().await;
    let _pw = Pipwall::start_in(cache, &[up.url()], Limits::default(), None, |_| {}).await;
    assert!(!part.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn learning_mode_learns_a_project_only_once_a_wheel_passes_its_audit() {
    let up = FakeIndex::start().await;
    let mut lying =
        WheelSpec::new("liar", "1.0", "py3-none-any").file("liar/__init__.py", "X = 1\n");
    lying.metadata = Some("Metadata-Version: 2.1\nName: other\nVersion: 1.0\n".into());
    up.project("liar", PageFormat::Json, &[lying.build()]);
    up.project("honest", PageFormat::Json, &[wheel("honest", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    let learned = dir.path().join("learned.toml");
    let learner = std::sync::Arc::new(
        pipwall::policy::learn::Learner::new(learned.clone(), "a test".into()).unwrap(),
    );
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        {
            let learner = learner.clone();
            move |s| s.learn = Some(learner)
        },
    )
    .await;
    // Asked twice: the first answer audits, the second is the finished page.
    for _ in 0..2 {
        let page = pw.get("/simple/liar/", JSON).await;
        assert_eq!(page.status, 200);
        assert!(!page.text().contains("liar-1.0"), "{}", page.text());
    }
    assert_eq!(
        learner.write().unwrap(),
        0,
        "nothing listed, nothing learned"
    );
    assert!(
        pw.get("/simple/honest/", JSON)
            .await
            .text()
            .contains("honest-1.0")
    );
    assert_eq!(learner.write().unwrap(), 1);
    let text = std::fs::read_to_string(&learned).unwrap();
    assert!(
        text.contains("\"honest\"") && !text.contains("\"liar\""),
        "{text}"
    );
}

/// Issue 15: the audit queue is fair across projects. A project with a large backlog of slow
/// wheels does not keep a small project's one wheel from its page. The backlog is made with
/// the strict listing, whose answer waits for every wheel its client can install.
#[tokio::test(flavor = "multi_thread")]
async fn a_small_project_is_answered_while_a_big_ones_backlog_runs() {
    let up = FakeIndex::start().await;
    let big: Vec<_> = (0..30).map(|i| wheel("big", &format!("1.{i}"))).collect();
    up.project("big", PageFormat::Json, &big);
    for f in &big {
        up.slow_download(f, Duration::from_millis(1000));
    }
    let small = wheel("small", "1.0");
    up.project("small", PageFormat::Json, std::slice::from_ref(&small));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(
        &file,
        "[audit]\nlisting = \"audited\"\nfleet = [{ python = \"3.11\", platform = \"manylinux_2_28_x86_64\" }]\n",
    )
    .unwrap();
    let policy = std::sync::Arc::new(pipwall::policy::load_files(&[file]).unwrap().0);
    let pw = std::sync::Arc::new(
        Pipwall::start_in(
            tempfile::tempdir().unwrap(),
            &[up.url()],
            Limits::default(),
            None,
            |s| {
                s.audit_jobs = 1;
                s.audit_downloads = 2;
                s.audit_deadline = Duration::from_secs(5);
                s.policy = policy;
            },
        )
        .await,
    );
    // The big project's page queues its 30 audits (and waits for them until its deadline).
    let waiting = {
        let pw = pw.clone();
        tokio::spawn(async move { pw.get("/simple/big/", JSON).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Served in turn, the small project's one wheel is audited next, not after 30 seconds of
    // the big one's downloads.
    let page = pw.get("/simple/small/", JSON).await;
    assert!(listed(&page.text(), &small.filename), "{}", page.text());
    assert!(page.header("x-pipwall-audits-pending").is_none());
    let big_page = waiting.await.unwrap();
    let pending: usize = big_page
        .header("x-pipwall-audits-pending")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        pending > 10,
        "the big backlog was still running: {pending} pending"
    );
}
