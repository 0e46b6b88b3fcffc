//! Issue 17: several replicas share one verdict store on a real PostgreSQL (started from
//! Debian's packages for each test). What must hold: one download and one audit per wheel
//! across the replicas; a replica killed mid-audit is taken over within its lease; with the
//! database down, decided pages and files are served, `/readyz` says not ready, new wheels
//! fail closed, and all recovers when it returns, without a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::postgres::{PASSWORD, Postgres};
use crate::support::served::Served;
use crate::support::{FakeIndex, PageFormat, Pipwall, wheel};
use pipwall::state::SharedState;
use pipwall::upstream::Limits;

async fn replica(pg: &Postgres, up: &FakeIndex, name: &str, lease: Duration) -> Pipwall {
    let metrics = Arc::new(pipwall::metrics::Metrics::new());
    let state = SharedState::connect(&pg.url(), None, name.to_owned(), lease, metrics)
        .await
        .expect("shared state");
    Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| {
            s.state = Some(state);
            s.audit_deadline = Duration::from_secs(20);
        },
    )
    .await
}

/// A fake upstream listing one wheel of each `(project, version)`; the wheels in that order.
async fn upstream_of(
    projects: &[(&str, &str)],
) -> (FakeIndex, Vec<crate::support::fixtures::Fixture>) {
    let up = FakeIndex::start().await;
    let wheels: Vec<_> = projects.iter().map(|(p, v)| wheel(p, v)).collect();
    for w in &wheels {
        let project = w.filename.split('-').next().unwrap_or_default();
        up.project(project, PageFormat::Json, std::slice::from_ref(w));
    }
    (up, wheels)
}

fn fetched(up: &FakeIndex, filename: &str) -> usize {
    up.requests()
        .iter()
        .filter(|p| p.ends_with(&format!("/{filename}")))
        .count()
}

/// What `pipwall serve` in front of `up` says when it refuses to start with `--state URL`.
fn refuses_with_state(up: &FakeIndex, url: &str) -> String {
    crate::support::served::serve_refuses(&[
        "--upstream".as_ref(),
        up.url().as_ref(),
        "--state".as_ref(),
        url.as_ref(),
    ])
}

/// The value of one metric line (`name{labels}`), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_asked_for_the_same_cold_page_download_and_audit_it_once() {
    let pg = Postgres::start();
    let (up, wheels) = upstream_of(&[("demo", "1.0")]).await;
    let demo = &wheels[0];
    up.slow_download(demo, Duration::from_millis(500));
    let lease = Duration::from_secs(10);
    let a = replica(&pg, &up, "a", lease).await;
    let b = replica(&pg, &up, "b", lease).await;
    let c = replica(&pg, &up, "c", lease).await;

    let (ra, rb, rc) = tokio::join!(
        a.get("/simple/demo/", None),
        b.get("/simple/demo/", None),
        c.get("/simple/demo/", None)
    );
    for (name, r) in [("a", &ra), ("b", &rb), ("c", &rc)] {
        assert_eq!(r.status, 200, "{name}");
        assert!(r.text().contains(&demo.filename), "{name}: {}", r.text());
    }
    assert_eq!(
        fetched(&up, &demo.filename),
        1,
        "one download across the cluster"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM pipwall_reports"), "1");
    assert_eq!(pg.psql("SELECT count(*) FROM pipwall_claims"), "0");
    let made_by = pg.psql("SELECT made_by FROM pipwall_reports");
    let mut claimed = 0.0;
    let mut waited = 0.0;
    for (name, pw) in [("a", &a), ("b", &b), ("c", &c)] {
        let m = pw.get("/metrics", None).await.text();
        claimed += metric(&m, r#"pipwall_cluster_audits_total{how="claimed"}"#);
        waited += metric(&m, r#"pipwall_cluster_audits_total{how="waited"}"#)
            + metric(&m, r#"pipwall_cluster_audits_total{how="reused"}"#);
        assert!(
            m.contains("pipwall_state_query_duration_seconds_bucket"),
            "{m}"
        );
        if name == made_by {
            assert_eq!(metric(&m, r#"pipwall_audits_total{verdict="pass"}"#), 1.0);
        } else {
            assert_eq!(
                metric(&m, r#"pipwall_audits_total{verdict="pass"}"#),
                0.0,
                "{name} audited too"
            );
        }
        let lines = pw.decisions();
        assert!(!lines.is_empty());
        assert!(lines.iter().all(|l| l["replica"] == name), "{lines:?}");
    }
    assert_eq!(claimed, 1.0);
    assert_eq!(waited, 2.0);

    // A replica that serves the file fetches it once for itself (bytes are not shared).
    let other = if made_by == "a" { &b } else { &a };
    let path = format!("/files/{}/{}", demo.sha256(), demo.filename);
    let got = other.get(&path, None).await;
    assert_eq!(got.status, 200);
    assert_eq!(fetched(&up, &demo.filename), 2);
    let again = other.get(&path, None).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        fetched(&up, &demo.filename),
        2,
        "served from its own cache the second time"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_audit_is_taken_over_within_its_lease() {
    let pg = Postgres::start();
    let (up, wheels) = upstream_of(&[("demo", "1.0")]).await;
    let demo = &wheels[0];
    // The first replica's download never ends.
    up.slow_download(demo, Duration::from_secs(3600));
    let cache = tempfile::tempdir().unwrap();
    let url = pg.url();
    let mut owner = Served::start(&[
        "--upstream",
        &up.url(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--state",
        &url,
        "--replica",
        "doomed",
        "--state-lease",
        "2",
    ]);
    // Asks for the page and never reads the answer: the owner dies before it has one.
    let mut asked = tokio::net::TcpStream::connect(owner.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut asked,
        b"GET /simple/demo/ HTTP/1.1\r\nHost: pipwall\r\n\r\n",
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pg.psql("SELECT count(*) FROM pipwall_claims WHERE replica = 'doomed'") != "1" {
        assert!(
            Instant::now() < deadline,
            "the first replica never claimed the audit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    owner.child.kill().unwrap();
    owner.child.wait().unwrap();
    let killed = Instant::now();
    drop(asked);
    up.slow_download(demo, Duration::ZERO);

    let survivor = replica(&pg, &up, "survivor", Duration::from_secs(2)).await;
    let page = survivor.get("/simple/demo/", None).await;
    let took = killed.elapsed();
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&demo.filename), "{}", page.text());
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} with a 2 s lease"
    );
    let m = survivor.get("/metrics", None).await.text();
    assert_eq!(
        metric(&m, r#"pipwall_cluster_audits_total{how="taken-over"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(pg.psql("SELECT made_by FROM pipwall_reports"), "survivor");
    eprintln!("takeover: the survivor answered {took:?} after the owner was killed (lease 2 s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_database_decided_pages_serve_new_wheels_fail_closed_and_all_recovers() {
    let pg = Postgres::start();
    let up = FakeIndex::start().await;
    let known = wheel("known", "1.0");
    // Listed held beside 1.0: the page waits for the newest version's audit only.
    let older = wheel("known", "0.9");
    let fresh = wheel("fresh", "1.0");
    up.project("known", PageFormat::Json, &[older.clone(), known.clone()]);
    up.project("fresh", PageFormat::Json, std::slice::from_ref(&fresh));
    let pw = replica(&pg, &up, "a", Duration::from_secs(5)).await;
    let page = pw.get("/simple/known/", None).await;
    assert!(page.text().contains(&known.filename));
    assert!(page.text().contains(&older.filename), "{}", page.text());
    assert_eq!(
        fetched(&up, &older.filename),
        0,
        "the held wheel was audited up front"
    );
    assert_eq!(pw.get("/readyz", None).await.status, 200);

    pg.stop();
    let ready = pw.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("shared state"), "{}", ready.text());
    assert!(!ready.text().contains(PASSWORD));
    let m = pw.get("/metrics", None).await.text();
    assert_eq!(metric(&m, "pipwall_state_up"), 0.0, "{m}");
    assert!(
        metric(&m, r#"pipwall_state_errors_total{op="ping"}"#) >= 1.0,
        "{m}"
    );
    // Decided: still served, page and file.
    let page = pw.get("/simple/known/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&known.filename));
    let href = format!("/files/{}/{}", known.sha256(), known.filename);
    assert_eq!(pw.get(&href, None).await.status, 200);
    // Held, never audited: its download needs a verdict nobody can read or share now.
    let held = format!("/files/{}/{}", older.sha256(), older.filename);
    let refused = pw.get(&held, None).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("shared state"),
        "{}",
        refused.text()
    );
    // Not decided: no verdict, so not shown, with the reason in the log.
    let page = pw.get("/simple/fresh/", None).await;
    assert!(!page.text().contains(&fresh.filename), "{}", page.text());
    let reasons: Vec<String> = pw
        .decisions()
        .iter()
        .filter(|l| l["filename"] == fresh.filename.as_str())
        .map(|l| l["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("shared state")),
        "{reasons:?}"
    );
    assert!(reasons.iter().all(|r| !r.contains(PASSWORD)));
    assert_eq!(fetched(&up, &fresh.filename), 0, "nothing audited alone");

    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = pw.get("/readyz", None).await.status == 200;
        let page = pw.get("/simple/fresh/", None).await;
        if ready && page.text().contains(&fresh.filename) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {}",
            page.text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(pg.psql("SELECT count(*) FROM pipwall_reports"), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schema_is_migrated_once_and_a_newer_one_is_refused() {
    let pg = Postgres::start();
    let migrate = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
            .args(["state", "migrate"])
            .env("PIPWALL_STATE", url)
            .output()
            .unwrap()
    };
    let first = migrate(&pg.url());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("from version 0 to 1"));
    let again = migrate(&pg.url());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(pg.psql("SELECT version FROM pipwall_schema"), "1");

    // Migrated by the tables' owner, a replica runs as a user that may only read and write
    // rows (PostgreSQL 15 lets no other user create tables in `public`).
    pg.psql(
        "CREATE ROLE runtime LOGIN PASSWORD 'runtime-pw';
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO runtime;",
    );
    let runtime_url = pg
        .url()
        .replace(&format!("pipwall:{PASSWORD}@"), "runtime:runtime-pw@");
    let (up, wheels) = upstream_of(&[("demo", "1.0")]).await;
    let demo = &wheels[0];
    let cache = tempfile::tempdir().unwrap();
    let served = Served::start(&[
        "--upstream",
        &up.url(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--state",
        &runtime_url,
        "--replica",
        "runtime",
    ]);
    let page = crate::support::pipwall::raw_get(served.addr, "/simple/demo/", None).await;
    assert!(page.text().contains(&demo.filename), "{}", page.text());
    assert_eq!(pg.psql("SELECT made_by FROM pipwall_reports"), "runtime");
    drop(served);
    pg.psql("DELETE FROM pipwall_reports");

    pg.psql("UPDATE pipwall_schema SET version = 99");
    let url = pg.url();
    let err = refuses_with_state(&up, &url);
    assert!(
        err.contains("version 99, newer than this pipwall knows (1)"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");

    // A wrong password is refused at start, and the password is not printed.
    let wrong = url.replace(PASSWORD, "not-the-password");
    let err = refuses_with_state(&up, &wrong);
    assert!(err.contains("shared state"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_environments_they_see_and_what_they_learn() {
    let pg = Postgres::start();
    let (up, wheels) = upstream_of(&[("demo", "1.0"), ("other", "2.0")]).await;
    let (demo, other) = (&wheels[0], &wheels[1]);
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let start = |name: &str| {
        let cache = dir.path().join(name);
        let learned = dir.path().join(format!("{name}.toml"));
        Served::start(&[
            "--upstream",
            &up.url(),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--state",
            &url,
            "--replica",
            name,
            "--learn",
            learned.to_str().unwrap(),
        ])
    };
    let a = start("a");
    let b = start("b");
    let ua = r#"pip/26.3 {"cpu":"AMD64","implementation":{"name":"CPython","version":"3.12.4"},"python":"3.12.4","system":{"name":"Windows","release":"10"}}"#;
    let page =
        crate::support::pipwall::raw_get_with(a.addr, "/simple/demo/", &[("user-agent", ua)]).await;
    assert!(page.text().contains(&demo.filename));
    let href = format!("/files/{}/{}", demo.sha256(), demo.filename);
    assert_eq!(
        crate::support::pipwall::raw_get(a.addr, &href, None)
            .await
            .status,
        200
    );
    let page = crate::support::pipwall::raw_get(b.addr, "/simple/other/", None).await;
    assert!(page.text().contains(&other.filename));

    // The Windows client asked replica a only; b learns of it from the shared state.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = crate::support::pipwall::raw_get(b.addr, "/metrics", None)
            .await
            .text();
        if metric(&m, "pipwall_environments_known") == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never heard of a's client: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        pg.psql("SELECT environment FROM pipwall_environments")
            .contains("windows")
    );

    // Learning mode: a's records reach b's file when b writes it (SIGHUP), and a's as well.
    a.hangup();
    a.wait_for("learned");
    b.hangup();
    let line = b.wait_for("learned");
    assert!(line.contains("learned 2 project(s)"), "{line}");
    let text = std::fs::read_to_string(dir.path().join("b.toml")).unwrap();
    assert!(text.contains("\"demo\", # downloaded: 1.0"), "{text}");
    assert!(text.contains("\"other\""), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_takes_only_tls_is_reached_with_its_ca_and_refused_without_it() {
    let (pg, ca) = Postgres::start_tls_only();
    let (up, wheels) = upstream_of(&[("demo", "1.0")]).await;
    let demo = &wheels[0];
    let url = format!("{}?sslmode=require", pg.url());

    // Without the CA, the server's certificate is not trusted: no start, and no password shown.
    let err = refuses_with_state(&up, &url);
    assert!(err.contains("shared state"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");

    let cache = tempfile::tempdir().unwrap();
    let served = Served::start(&[
        "--upstream",
        &up.url(),
        "--cache-dir",
        cache.path().to_str().unwrap(),
        "--state",
        &url,
        "--state-ca",
        ca.to_str().unwrap(),
        "--replica",
        "tls",
    ]);
    let page = crate::support::pipwall::raw_get(served.addr, "/simple/demo/", None).await;
    assert!(page.text().contains(&demo.filename), "{}", page.text());
    // The server takes TLS connections only (hostssl), so the report came over TLS.
    assert_eq!(pg.psql("SELECT made_by FROM pipwall_reports"), "tls");
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_with_the_shared_state_warms_every_replica() {
    let pg = Postgres::start();
    let (up, wheels) = upstream_of(&[("demo", "1.0")]).await;
    let demo = &wheels[0];
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[audit]\nfleet = [{ python = \"3.12\", platform = \"win_amd64\" }]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["warm", "demo", "--upstream", &up.url(), "--cache-dir"])
        .arg(dir.path().join("warm-cache"))
        .arg("--policy")
        .arg(&fleet)
        .env("PIPWALL_STATE", pg.url())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("demo: 1 wheel(s) audited for 1 environment(s): 1 passed"),
        "{said}"
    );
    assert!(
        pg.psql("SELECT made_by FROM pipwall_reports")
            .starts_with("warm-")
    );
    assert_eq!(fetched(&up, &demo.filename), 1);

    // A replica's first answer needs no download and no audit of its own.
    let pw = replica(&pg, &up, "a", Duration::from_secs(10)).await;
    let page = pw.get("/simple/demo/", None).await;
    assert!(page.text().contains(&demo.filename), "{}", page.text());
    assert_eq!(
        fetched(&up, &demo.filename),
        1,
        "the replica fetched the wheel again"
    );
    let m = pw.get("/metrics", None).await.text();
    assert_eq!(
        metric(&m, r#"pipwall_cluster_audits_total{how="reused"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, r#"pipwall_audits_total{verdict="pass"}"#),
        0.0,
        "{m}"
    );
}
