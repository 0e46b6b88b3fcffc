//! pipwall's HTTP behaviour, asserted directly (no installer).

use std::time::Duration;

use pipwall::upstream::Limits;

use crate::support::{FakeIndex, PageFormat, Pipwall, sdist, wheel};

const JSON: &str = "application/vnd.pypi.simple.v1+json";

#[tokio::test]
async fn hostile_names_get_4xx_and_the_server_keeps_serving() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start(&[up.url()]).await;
    let long = format!("/simple/{}/", "a".repeat(10_000));
    for path in [
        "/simple/../",
        "/simple/%2e%2e/",
        "/simple/..%2f..%2fetc/",
        "/simple/a%00b/",
        "/simple/%1b[31m/",
        "/simple/caf%C3%A9/",
        "/simple/%FF%FE/",
        "/simple/a/b/c/",
        "/files/../../etc/passwd",
        long.as_str(),
    ] {
        let r = pw.get(path, Some(JSON)).await;
        assert!((400..500).contains(&r.status), "{path}: {}", r.status_line);
        assert!(!r.body.is_empty(), "{path}: empty body");
    }
    assert!(
        up.requests().is_empty(),
        "hostile names reached upstream: {:?}",
        up.requests()
    );
    let r = pw.get("/simple/demo/", Some(JSON)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn malformed_and_oversized_upstream_pages_are_502() {
    let up = FakeIndex::start().await;
    up.set("/simple/broken/", 200, JSON, "{\"files\": [");
    up.set(
        "/simple/wrongmajor/",
        200,
        JSON,
        r#"{"meta":{"api-version":"2.0"},"files":[]}"#,
    );
    up.set("/simple/huge/", 200, "text/html", vec![b'x'; 300_000]);
    up.set("/simple/down/", 503, "text/plain", "maintenance");
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let limits = Limits {
        max_page_bytes: 100_000,
        ..Limits::default()
    };
    let pw = Pipwall::start_with(&[up.url()], Duration::from_secs(60), limits).await;
    for (name, want) in [
        ("broken", "not valid JSON"),
        ("wrongmajor", "cannot be used"),
        ("huge", "larger than"),
        ("down", "503"),
    ] {
        let r = pw.get(&format!("/simple/{name}/"), Some(JSON)).await;
        assert_eq!(r.status, 502, "{name}: {}", r.text());
        assert!(r.text().contains(want), "{name}: {}", r.text());
    }
    assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 200);
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_unknown_project_404() {
    let up = FakeIndex::start().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let r = pw.get("/simple/nothing/", None).await;
    assert_eq!(r.status, 404);
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pw = Pipwall::start(&[format!("http://{closed}/simple/")]).await;
    let r = pw.get("/simple/demo/", None).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("could not connect"), "{}", r.text());
}

#[tokio::test]
async fn content_negotiation_follows_pep_691() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start(&[up.url()]).await;
    for (accept, want) in [
        (Some(JSON), JSON),
        (Some("application/vnd.pypi.simple.latest+json"), JSON),
        (
            Some("application/vnd.pypi.simple.v1+html"),
            "application/vnd.pypi.simple.v1+html",
        ),
        (
            Some("application/vnd.pypi.simple.latest+html"),
            "application/vnd.pypi.simple.v1+html",
        ),
        (Some("text/html"), "text/html"),
        (None, "text/html"),
        (
            Some("application/vnd.pypi.simple.v1+json;q=0.1, text/html;q=0.5"),
            "text/html",
        ),
    ] {
        let r = pw.get("/simple/demo/", accept).await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type").unwrap().starts_with(want),
            "{accept:?}: {:?}",
            r.header("content-type")
        );
        assert_eq!(r.header("vary"), Some("Accept"));
    }
    assert_eq!(
        pw.get("/simple/demo/", Some("application/xml"))
            .await
            .status,
        406
    );
    let r = pw
        .get(
            "/simple/demo/?format=application/vnd.pypi.simple.v1%2Bjson",
            Some("text/html"),
        )
        .await;
    assert!(r.header("content-type").unwrap().starts_with(JSON));
}

#[tokio::test]
async fn pages_list_only_wheels_and_point_downloads_at_pipwall() {
    let tmp = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[
            wheel("demo", "1.0"),
            sdist("demo", "1.0", &tmp.path().join("m")),
            sdist("demo", "2.0", &tmp.path().join("m")),
        ],
    );
    let pw = Pipwall::start(&[up.url()]).await;
    let r = pw.get("/simple/demo/", Some(JSON)).await;
    let page: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let files = page["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert!(
        files[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("../../files/")
    );
    assert_eq!(page["versions"], serde_json::json!(["1.0"]));
    let html = pw.get("/simple/demo/", Some("text/html")).await.text();
    assert!(html.contains("demo-1.0-py3-none-any.whl") && !html.contains(".tar.gz"));
}

#[tokio::test]
async fn hidden_and_unknown_files_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let sd = sdist("demo", "2.0", &tmp.path().join("m"));
    up.project(
        "demo",
        PageFormat::Json,
        &[wheel("demo", "1.0"), sd.clone()],
    );
    let pw = Pipwall::start(&[up.url()]).await;
    // Asked for directly, without the page first: pipwall decides the page then refuses.
    let r = pw
        .get(&format!("/files/{}/{}", sd.sha256(), sd.filename), None)
        .await;
    assert_eq!(r.status, 403);
    assert!(r.status_line.contains("sdist-hidden"), "{}", r.status_line);
    assert_eq!(r.header("x-pipwall-reason"), Some("sdist-hidden"));
    let r = pw
        .get(
            &format!("/files/{}/demo-9.9-py3-none-any.whl", "0".repeat(64)),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!up.was_requested(&sd.filename));
}

#[tokio::test]
async fn download_is_served_verified_and_cached() {
    let up = FakeIndex::start().await;
    let w = wheel("demo", "1.0");
    up.project("demo", PageFormat::Html, std::slice::from_ref(&w));
    let pw = Pipwall::start(&[up.url()]).await;
    let path = format!("/files/{}/{}", w.sha256(), w.filename);
    let r = pw.get(&path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, w.bytes);
    // The second download comes from the cache: upstream is asked once.
    let r = pw.get(&path, None).await;
    assert_eq!(r.body, w.bytes);
    let asked = up
        .requests()
        .iter()
        .filter(|p| p.ends_with(&w.filename))
        .count();
    assert_eq!(asked, 1);
}

#[tokio::test]
async fn unchanged_upstream_page_is_not_decided_again() {
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[wheel("demo", "1.0"), wheel("demo", "1.1")],
    );
    // TTL zero: every request asks upstream again.
    let pw = Pipwall::start_with(&[up.url()], Duration::ZERO, Limits::default()).await;
    let first = pw.get("/simple/demo/", Some(JSON)).await.body;
    let second = pw.get("/simple/demo/", Some(JSON)).await.body;
    assert_eq!(first, second);
    assert_eq!(
        up.requests()
            .iter()
            .filter(|p| *p == "/simple/demo/")
            .count(),
        2
    );
    assert_eq!(
        pw.decisions().len(),
        2,
        "decided twice: {:?}",
        pw.decisions()
    );
    // A change upstream is decided anew.
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let third = pw.get("/simple/demo/", Some(JSON)).await.body;
    assert_ne!(first, third);
    assert_eq!(pw.decisions().len(), 3);
}

#[tokio::test]
async fn decision_log_has_one_line_per_file_with_code() {
    let tmp = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[
            wheel("demo", "1.0"),
            sdist("demo", "1.0", &tmp.path().join("m")),
        ],
    );
    let pw = Pipwall::start(&[up.url()]).await;
    pw.get("/simple/demo/", None).await;
    let log = pw.decisions();
    let codes: Vec<&str> = log.iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.contains(&"wheel-shown") && codes.contains(&"sdist-hidden"));
    assert!(
        log.iter()
            .all(|e| e["project"] == "demo" && e["reason"].as_str().is_some())
    );
}

#[tokio::test]
async fn core_metadata_is_served_through_pipwall_and_checked() {
    use sha2::{Digest, Sha256};
    let up = FakeIndex::start().await;
    let w = wheel("demo", "1.0");
    let meta = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n".to_vec();
    let meta_sha = hex::encode(Sha256::digest(&meta));
    let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "demo", "files": [
        {"filename": w.filename, "url": format!("/files/{}", w.filename), "hashes": {"sha256": w.sha256()},
         "core-metadata": {"sha256": meta_sha}, "size": w.bytes.len()}]});
    up.set("/simple/demo/", 200, JSON, page.to_string());
    up.set(
        &format!("/files/{}", w.filename),
        200,
        "application/octet-stream",
        w.bytes.clone(),
    );
    up.set(
        &format!("/files/{}.metadata", w.filename),
        200,
        "application/octet-stream",
        meta.clone(),
    );
    let pw = Pipwall::start(&[up.url()]).await;
    let html = pw.get("/simple/demo/", Some("text/html")).await.text();
    assert!(html.contains(&format!("data-core-metadata=\"sha256={meta_sha}\"")));
    assert!(html.contains(&format!("data-dist-info-metadata=\"sha256={meta_sha}\"")));
    let json = pw.get("/simple/demo/", Some(JSON)).await.text();
    assert!(json.contains("\"core-metadata\"") && !json.contains("dist-info-metadata"));
    let r = pw
        .get(
            &format!("/files/{}/{}.metadata", w.sha256(), w.filename),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, meta);
    // Upstream metadata that does not match its digest is not passed on.
    up.set(
        &format!("/files/{}.metadata", w.filename),
        200,
        "application/octet-stream",
        "Name: evil\n",
    );
    let pw = Pipwall::start(&[up.url()]).await;
    let r = pw
        .get(
            &format!("/files/{}/{}.metadata", w.sha256(), w.filename),
            None,
        )
        .await;
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn root_lists_normalized_names() {
    let up = FakeIndex::start().await;
    up.set(
        "/simple/",
        200,
        "text/html",
        r#"<a href="/simple/Foo_Bar/">Foo_Bar</a><a href="x/">../evil</a><a href="demo/">demo</a>"#,
    );
    let pw = Pipwall::start(&[up.url()]).await;
    let r = pw.get("/simple/", Some(JSON)).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    // Upstream order is kept (PEP 691: order is not meaningful); invalid names are dropped.
    assert_eq!(
        v["projects"],
        serde_json::json!([{"name": "foo-bar"}, {"name": "demo"}])
    );
    let html = pw.get("/simple/", Some("text/html")).await.text();
    assert!(html.contains(r#"<a href="foo-bar/">foo-bar</a>"#));
}

/// A root larger than the project-page cap is streamed, not refused.
#[tokio::test]
async fn large_json_root_is_streamed_past_the_page_cap() {
    let up = FakeIndex::start().await;
    let names: Vec<serde_json::Value> = (0..50_000)
        .map(|i| serde_json::json!({"name": format!("Project_{i}")}))
        .collect();
    let body = serde_json::json!({"meta": {"api-version": "1.0"}, "projects": names}).to_string();
    assert!(body.len() > 1_000_000);
    up.set("/simple/", 200, JSON, body);
    let limits = Limits {
        max_page_bytes: 100_000,
        ..Limits::default()
    };
    let pw = Pipwall::start_with(&[up.url()], Duration::from_secs(60), limits).await;
    let r = pw.get("/simple/", Some(JSON)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let projects = v["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 50_000);
    assert_eq!(projects[49_999]["name"], "project-49999");
    let html = pw.get("/simple/", Some("text/html")).await.text();
    assert_eq!(html.matches("<a href=").count(), 50_000);
}

#[tokio::test]
async fn upstreams_are_tried_in_order_first_wins() {
    let a = FakeIndex::start().await;
    let b = FakeIndex::start().await;
    a.project("shared", PageFormat::Json, &[wheel("shared", "1.0")]);
    b.project("shared", PageFormat::Json, &[wheel("shared", "9.0")]);
    b.project("onlyb", PageFormat::Json, &[wheel("onlyb", "1.0")]);
    let pw = Pipwall::start(&[a.url(), b.url()]).await;
    let t = pw.get("/simple/shared/", Some(JSON)).await.text();
    assert!(t.contains("shared-1.0-") && !t.contains("shared-9.0-"));
    assert_eq!(pw.get("/simple/onlyb/", Some(JSON)).await.status, 200);
}

#[tokio::test]
async fn explain_lists_every_file_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let mut lying = crate::support::fixtures::WheelSpec::new("demo", "1.1", "py3-none-any")
        .file("demo/__init__.py", "VERSION = '1.1'\n");
    lying.metadata = Some("Metadata-Version: 2.1\nName: demo\nVersion: 9.9\n".into());
    up.project(
        "demo",
        PageFormat::Html,
        &[
            wheel("demo", "1.0"),
            lying.build(),
            sdist("demo", "2.0", &tmp.path().join("m")),
        ],
    );
    let upstreams = std::sync::Arc::new(
        pipwall::upstream::Upstreams::new(&[up.url()], Limits::default(), None).unwrap(),
    );
    let name = pipwall::dist::ProjectName::new("demo").unwrap();
    let cache = tempfile::tempdir().unwrap();
    let e = pipwall::explain::explain(
        upstreams.clone(),
        &name,
        None,
        Some(cache.path()),
        &pipwall::policy::Policy::builtin(),
    )
    .await
    .unwrap();
    let text = e.to_text();
    assert!(text.contains("1 of 3 files shown"), "{text}");
    assert!(
        text.contains("[sdist-hidden]") && text.contains("[wheel-shown]"),
        "{text}"
    );
    assert!(
        text.contains("[audit-failed]") && text.contains("metadata-version-mismatch"),
        "{text}"
    );
    // Without audits, the filename rules alone decide.
    let plain = pipwall::explain::explain(
        upstreams.clone(),
        &name,
        None,
        None,
        &pipwall::policy::Policy::builtin(),
    )
    .await
    .unwrap();
    assert!(plain.to_text().contains("2 of 3 files shown"));
    let only = pipwall::explain::explain(
        upstreams,
        &name,
        Some("2.0"),
        Some(cache.path()),
        &pipwall::policy::Policy::builtin(),
    )
    .await
    .unwrap();
    assert_eq!(only.files.len(), 1);
}

#[tokio::test]
async fn redirects_are_followed_within_limits() {
    let up = FakeIndex::start().await;
    let w = wheel("moved", "1.0");
    up.set(
        &format!("/files/{}", w.filename),
        200,
        "application/octet-stream",
        w.bytes.clone(),
    );
    // Relative to the final URL /mirror/x/moved/, `../../../files/…` is /files/….
    up.set(
        "/mirror/x/moved/",
        200,
        "text/html",
        format!(
            "<a href=\"../../../files/{0}#sha256={1}\">{0}</a>",
            w.filename,
            w.sha256()
        ),
    );
    up.redirect("/simple/moved/", "/mirror/x/moved/");
    up.redirect("/simple/loop/", "/simple/loop2/");
    up.redirect("/simple/loop2/", "/simple/loop/");
    up.redirect("/simple/weird/", "ftp://elsewhere/x");
    let pw = Pipwall::start(&[up.url()]).await;
    let r = pw.get("/simple/moved/", Some(JSON)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Links in a redirected page resolve against the final URL.
    assert!(r.text().contains(&w.filename), "{}", r.text());
    let r = pw
        .get(&format!("/files/{}/{}", w.sha256(), w.filename), None)
        .await;
    assert_eq!(r.body, w.bytes);
    let r = pw.get("/simple/loop/", Some(JSON)).await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("redirects"), "{}", r.text());
    let r = pw.get("/simple/weird/", Some(JSON)).await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("not http(s)"), "{}", r.text());
}

/// On tokio's paused clock: the upstream stalls for ten minutes, pipwall gives up at its default
/// 30 s page timeout, and the test takes no real time.
#[tokio::test(start_paused = true)]
async fn stalled_upstream_is_504_and_the_next_request_still_works() {
    use crate::support::upstream::Reply;
    let up = FakeIndex::start().await;
    up.set_reply(
        "/simple/slow/",
        Reply {
            delay: Duration::from_secs(600),
            ..Reply::ok(JSON, r#"{"files":[]}"#)
        },
    );
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start_with(&[up.url()], Duration::from_secs(60), Limits::default()).await;
    let started = tokio::time::Instant::now();
    let r = pw.get("/simple/slow/", Some(JSON)).await;
    assert_eq!(r.status, 504, "{}", r.text());
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
        "gave up after {waited:?} of paused time"
    );
    assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 200);
}

#[tokio::test]
async fn upstream_credentials_are_sent_but_never_shown() {
    let up = FakeIndex::start().await;
    up.set("/simple/down/", 500, "text/plain", "boom");
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let with_creds = format!("http://alice:s3cr3t-t0ken@{}/simple/", up.addr);
    let pw = Pipwall::start(&[with_creds]).await;
    assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 200);
    // alice:s3cr3t-t0ken, base64.
    assert!(
        up.auth_headers()
            .iter()
            .all(|a| a == "Basic YWxpY2U6czNjcjN0LXQwa2Vu"),
        "{:?}",
        up.auth_headers()
    );
    assert!(!up.auth_headers().is_empty());
    let r = pw.get("/simple/down/", Some(JSON)).await;
    assert_eq!(r.status, 502);
    assert!(
        !r.text().contains("s3cr3t") && !r.text().contains("alice"),
        "{}",
        r.text()
    );
    let dump = format!("{:?}", pw.decisions());
    assert!(!dump.contains("s3cr3t"));
}

#[tokio::test]
async fn last_good_page_is_served_while_upstream_fails() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start_with(&[up.url()], Duration::ZERO, Limits::default()).await;
    let good = pw.get("/simple/demo/", Some(JSON)).await;
    assert_eq!(good.status, 200);
    up.set("/simple/demo/", 503, "text/plain", "down for maintenance");
    let stale = pw.get("/simple/demo/", Some(JSON)).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, good.body);
    // A project that is gone upstream is gone here too.
    up.set("/simple/demo/", 404, "text/plain", "no such project");
    assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 404);
}

#[test]
fn auth_commands_write_a_users_file_the_server_accepts() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["auth", "add-user"])
        .arg(&file)
        .arg("bob")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hunter2\n").unwrap();
    assert!(child.wait().unwrap().success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["auth", "add-token"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pw_") && token.len() > 40, "{token}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains(&token),
        "{text}"
    );
    let users = pipwall::auth::Users::load(&file).unwrap();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bob:hunter2")
    );
    assert!(users.check(Some(basic.as_bytes())).is_ok());
    assert!(
        users
            .check(Some(format!("Bearer {token}").as_bytes()))
            .is_ok()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_decisions_and_audits() {
    let tmp = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[
            wheel("demo", "1.0"),
            sdist("demo", "2.0", &tmp.path().join("m")),
        ],
    );
    let pw = Pipwall::start(&[up.url()]).await;
    for _ in 0..2 {
        assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 200);
    }
    assert_eq!(pw.get("/simple/nope-%/", Some(JSON)).await.status, 404);
    let m = pw.get("/metrics", None).await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().contains("openmetrics"));
    let text = m.text();
    for want in [
        r#"pipwall_requests_total{route="project",status="200"} 2"#,
        r#"pipwall_requests_total{route="not_found",status="404"} 1"#,
        r#"pipwall_decisions_total{code="sdist-hidden"} 1"#,
        r#"pipwall_decisions_total{code="wheel-shown"} 1"#,
        r#"pipwall_audits_total{verdict="pass"} 1"#,
        r#"pipwall_cache_hits_total{kind="page"} 1"#,
        "pipwall_audits_running 0",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    // The request's own text never becomes a label.
    assert!(!text.contains("nope"));
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_reports_an_unreachable_upstream() {
    let up = FakeIndex::start().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let ok = pw.get("/readyz", None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/simple/", closed.local_addr().unwrap());
    drop(closed);
    let pw = Pipwall::start(&[dead]).await;
    let r = pw.get("/readyz", None).await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("cannot connect"), "{}", r.text());
    assert_eq!(pw.get("/healthz", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id() {
    let up = FakeIndex::start().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let a = pw.get("/healthz", None).await;
    let b = pw.get("/healthz", None).await;
    let (ia, ib) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_ne!(ia, ib);
    // A fronting proxy's id is kept when it is plain; anything else is replaced.
    let kept = crate::support::pipwall::raw_get_with(
        pw.addr,
        "/healthz",
        &[("x-request-id", "gw-42.a_b")],
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("gw-42.a_b"));
    let replaced = crate::support::pipwall::raw_get_with(
        pw.addr,
        "/healthz",
        &[("x-request-id", "a b<script>")],
    )
    .await;
    assert_ne!(replaced.header("x-request-id"), Some("a b<script>"));
}

/// The real binary: SIGHUP swaps the users file while the server keeps its connections.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    pipwall::auth::append_line(
        &users,
        &pipwall::auth::user_line("alice", "a", None).unwrap(),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--auth-file",
        ])
        .arg(&users)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env_remove("PIPWALL_UPSTREAM")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let basic = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{u}:{p}")
            )
        )
    };
    let status = |auth: String| async move {
        crate::support::pipwall::raw_get_with(addr, "/simple/", &[("authorization", auth.as_str())])
            .await
            .status
    };
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "pipwall did not start");
    assert_eq!(status(basic("alice", "a")).await, 200);
    std::fs::write(
        &users,
        pipwall::auth::user_line("bob", "b", None).unwrap() + "\n",
    )
    .unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut swapped = false;
    for _ in 0..50 {
        if status(basic("bob", "b")).await == 200 {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(swapped, "bob was not let in after SIGHUP");
    assert_eq!(status(basic("alice", "a")).await, 401);
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let up = FakeIndex::start().await;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.server.rate_limit = Some(std::sync::Arc::new(pipwall::ratelimit::RateLimit::new(2))),
    )
    .await;
    // A burst of twice the rate passes, the next request does not.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(pw.get("/healthz", None).await);
    }
    assert!(statuses[..4].iter().all(|r| r.status == 200));
    let limited = statuses.iter().find(|r| r.status == 429).expect("no 429");
    assert!(limited.header("retry-after").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_request_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = FakeIndex::start().await;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.server.header_timeout = Duration::from_millis(300),
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(pw.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the headers: the server must give up, not wait forever.
    let mut buf = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(done.is_ok(), "the connection was still open after 5 s");
}

/// Faults injected upstream, each with its documented answer.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_faults_give_their_documented_answers() {
    use crate::support::upstream::Reply;
    let up = FakeIndex::start().await;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.page_ttl = Duration::ZERO,
    )
    .await;
    // A page whose body is cut off mid-way: 502, never a half page.
    let w = wheel("cut", "1.0");
    up.project("cut", PageFormat::Json, std::slice::from_ref(&w));
    let page_path = "/simple/cut/";
    let good_page = pw.get(page_path, Some(JSON)).await;
    assert_eq!(good_page.status, 200);
    let full = {
        let r = crate::support::pipwall::raw_get(up.addr, page_path, Some(JSON)).await;
        r.body
    };
    up.set_reply(
        page_path,
        Reply {
            cut_after: Some(full.len() / 2),
            ..Reply::ok(JSON, full.clone())
        },
    );
    // The last good page is served while the upstream breaks (stale-on-error).
    let stale = pw.get(page_path, Some(JSON)).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, good_page.body);
    assert_eq!(stale.header("x-pipwall-stale"), Some("upstream failed"));
    assert_eq!(stale.header("cache-control"), Some("no-store"));
    assert!(good_page.header("x-pipwall-stale").is_none());

    // A fresh project whose page breaks has no last good page: 502.
    up.set_reply(
        "/simple/broken/",
        Reply {
            cut_after: Some(10),
            ..Reply::ok(JSON, full.clone())
        },
    );
    assert_eq!(pw.get("/simple/broken/", Some(JSON)).await.status, 502);
    // A 5xx upstream: 502 with the cause.
    up.set("/simple/down/", 503, "text/plain", "maintenance");
    let down = pw.get("/simple/down/", Some(JSON)).await;
    assert_eq!(down.status, 502);
    assert!(down.text().contains("503"), "{}", down.text());

    // A wheel whose download is cut off cannot be audited: not listed, page not cacheable,
    // and a direct download is a 502, never a partial file.
    let f = wheel("halfwheel", "1.0");
    up.project("halfwheel", PageFormat::Json, std::slice::from_ref(&f));
    up.set_reply(
        &format!("/files/{}", f.filename),
        Reply {
            cut_after: Some(f.bytes.len() / 2),
            ..Reply::ok("application/octet-stream", f.bytes.clone())
        },
    );
    let page = pw.get("/simple/halfwheel/", Some(JSON)).await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(&f.filename), "{}", page.text());
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let dl = pw
        .get(&format!("/files/{}/{}", f.sha256(), f.filename), None)
        .await;
    assert_eq!(dl.status, 502, "{}", dl.text());
    assert_ne!(dl.body, f.bytes);
}

/// On tokio's paused clock: a page served once, then an upstream that stalls past the page
/// timeout. The last good page is served, marked stale, after exactly the timeout.
#[tokio::test(start_paused = true)]
async fn a_slow_upstream_gets_the_last_good_page_after_the_timeout() {
    use crate::support::upstream::Reply;
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.page_ttl = Duration::from_secs(60),
    )
    .await;
    let good = pw.get("/simple/demo/", Some(JSON)).await;
    assert_eq!(good.status, 200);
    let body = crate::support::pipwall::raw_get(up.addr, "/simple/demo/", Some(JSON))
        .await
        .body;
    up.set_reply(
        "/simple/demo/",
        Reply {
            delay: Duration::from_secs(3_600),
            ..Reply::ok(JSON, body)
        },
    );
    // Within the page TTL, upstream is not asked.
    tokio::time::sleep(Duration::from_secs(59)).await;
    let cached = pw.get("/simple/demo/", Some(JSON)).await;
    assert!(cached.header("x-pipwall-stale").is_none());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = tokio::time::Instant::now();
    let stale = pw.get("/simple/demo/", Some(JSON)).await;
    let waited = started.elapsed();
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, good.body);
    assert_eq!(stale.header("x-pipwall-stale"), Some("upstream failed"));
    assert!(
        (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
        "{waited:?}"
    );
}

/// On tokio's paused clock, with one upstream request at a time: a second download waits until
/// the first, whose upstream takes 100 s to answer, is done.
#[tokio::test(start_paused = true)]
async fn downloads_from_upstream_are_bounded() {
    use crate::support::upstream::Reply;
    let up = FakeIndex::start().await;
    let (a, b) = (wheel("demo", "1.0"), wheel("demo", "1.1"));
    up.project("demo", PageFormat::Json, &[a.clone(), b.clone()]);
    up.set_reply(
        &format!("/files/{}", a.filename),
        Reply {
            delay: Duration::from_secs(100),
            ..Reply::ok("application/octet-stream", a.bytes.clone())
        },
    );
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits {
            idle_timeout: Duration::from_secs(1_000),
            page_timeout: Duration::from_secs(1_000),
            ..Limits::default()
        },
        None,
        |s| {
            s.audit = false;
            s.server.max_upstream_requests = 1;
        },
    )
    .await;
    assert_eq!(pw.get("/simple/demo/", Some(JSON)).await.status, 200);
    let started = tokio::time::Instant::now();
    let addr = pw.addr;
    let path_a = format!("/files/{}/{}", a.sha256(), a.filename);
    let first =
        tokio::spawn(async move { crate::support::pipwall::raw_get(addr, &path_a, None).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = pw
        .get(&format!("/files/{}/{}", b.sha256(), b.filename), None)
        .await;
    assert_eq!(second.body, b.bytes);
    assert!(
        started.elapsed() >= Duration::from_secs(100),
        "the second download did not wait: {:?}",
        started.elapsed()
    );
    assert_eq!(first.await.unwrap().body, a.bytes);
}

#[tokio::test]
async fn decided_pages_are_dropped_past_the_page_cache_size() {
    let up = FakeIndex::start().await;
    up.project("alpha", PageFormat::Json, &[wheel("alpha", "1.0")]);
    up.project("beta", PageFormat::Json, &[wheel("beta", "1.0")]);
    let asked = |name: &str| {
        up.requests()
            .iter()
            .filter(|p| p.as_str() == format!("/simple/{name}/"))
            .count()
    };
    // Room for one page: deciding beta drops alpha, which is then fetched again.
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.page_cache_bytes = 1,
    )
    .await;
    for name in ["alpha", "alpha", "beta", "alpha"] {
        let r = pw.get(&format!("/simple/{name}/"), Some(JSON)).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!((asked("alpha"), asked("beta")), (2, 1));
    // The file shown before its page was dropped still downloads.
    let w = wheel("alpha", "1.0");
    let r = pw
        .get(&format!("/files/{}/{}", w.sha256(), w.filename), None)
        .await;
    assert_eq!(r.body, w.bytes);
    let metrics = pw.get("/metrics", None).await.text();
    assert!(
        metrics.contains("cache_evictions_total{kind=\"page\"} 2"),
        "{metrics}"
    );
}
