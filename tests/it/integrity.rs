//! Issue 16: a hostile upstream, or damage on disk, must never make pipwall deliver bytes other
//! than the ones promised and audited. Each test reproduces one finding of the probe and failed
//! before its fix.

use pipwall::upstream::Limits;

use crate::support::fixtures::Fixture;
use crate::support::{FakeIndex, PageFormat, Pipwall, files_under, wheel};

const JSON: Option<&str> = Some("application/vnd.pypi.simple.v1+json");

fn file_path(f: &Fixture) -> String {
    format!("/files/{}/{}", f.sha256(), f.filename)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_bytes_under_another_name_are_judged_as_that_name_and_displace_nothing() {
    let up = FakeIndex::start().await;
    let good = wheel("good", "1.0");
    // Finding 2: good's bytes listed again as version 9.9 of another project. The verdict on
    // good-1.0 (pass) says nothing about them under this name: its .dist-info does not match.
    let alias = Fixture {
        filename: "swapv-9.9-py3-none-any.whl".into(),
        bytes: good.bytes.clone(),
    };
    up.project("good", PageFormat::Json, std::slice::from_ref(&good));
    up.project("swapv", PageFormat::Json, std::slice::from_ref(&alias));
    let pw = Pipwall::start(&[up.url()]).await;
    assert!(
        pw.get("/simple/good/", JSON)
            .await
            .text()
            .contains(&good.filename)
    );
    let page = pw.get("/simple/swapv/", JSON).await;
    assert!(!page.text().contains(&alias.filename), "{}", page.text());
    let refused = pw.get(&file_path(&alias), None).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.header("x-pipwall-reason"), Some("audit-failed"));
    // Finding 3: the second listing of the digest did not take good's place.
    let r = pw.get(&file_path(&good), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, good.bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_edited_into_a_pass_is_not_trusted_after_a_restart() {
    let up = FakeIndex::start().await;
    let good = wheel("edit", "1.0");
    // A wheel with a member that climbs out of site-packages fails its audit.
    let bad = crate::support::fixtures::WheelSpec::new("edit", "1.1", "py3-none-any")
        .file("edit/__init__.py", "")
        .file("../escape.py", "print('out')\n")
        .build();
    up.project("edit", PageFormat::Json, &[good.clone(), bad.clone()]);
    let pw = Pipwall::start(&[up.url()]).await;
    let page = pw.get("/simple/edit/", JSON).await.text();
    assert!(
        page.contains(&good.filename) && !page.contains(&bad.filename),
        "{page}"
    );
    let cache = pw.stop();
    // Finding 7: every stored report rewritten to say "pass".
    let mut edited = 0;
    for p in files_under(&cache.path().join("audits")) {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        if text.contains("\"verdict\":\"fail\"") {
            std::fs::write(
                &p,
                text.replace("\"verdict\":\"fail\"", "\"verdict\":\"pass\"")
                    .replace("\"hides\":true", "\"hides\":false"),
            )
            .unwrap();
            edited += 1;
        }
    }
    assert_eq!(edited, 1, "the failing wheel's report is stored");
    let pw = Pipwall::start_in(cache, &[up.url()], Limits::default(), None, |_| {}).await;
    let page = pw.get("/simple/edit/", JSON).await.text();
    assert!(!page.contains(&bad.filename), "{page}");
    assert_eq!(pw.get(&file_path(&bad), None).await.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_file_damaged_on_disk_is_never_served() {
    let up = FakeIndex::start().await;
    let w = wheel("damage", "1.0");
    up.project("damage", PageFormat::Json, std::slice::from_ref(&w));
    let pw = Pipwall::start(&[up.url()]).await;
    assert_eq!(pw.get(&file_path(&w), None).await.body, w.bytes);
    let sha = w.sha256();
    let stored = pw.cache.path().join("files").join(&sha[..2]).join(&sha);
    assert!(stored.exists());
    // Finding 6, while running: the stored copy changed behind pipwall's back.
    let damage = |path: &std::path::Path| {
        let mut perms = std::fs::metadata(path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(path, perms).unwrap();
        let mut bytes = std::fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    };
    damage(&stored);
    let r = pw.get(&file_path(&w), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, w.bytes, "served the promised bytes, fetched again");
    // And after a restart, before any background check could reach it.
    let cache = pw.stop();
    damage(&cache.path().join("files").join(&sha[..2]).join(&sha));
    let pw = Pipwall::start_in(cache, &[up.url()], Limits::default(), None, |_| {}).await;
    let r = pw.get(&file_path(&w), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, w.bytes);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_download_of_the_wrong_bytes_is_never_a_complete_response() {
    use crate::support::upstream::Reply;
    let up = FakeIndex::start().await;
    let w = wheel("chunky", "1.0");
    up.project("chunky", PageFormat::Json, std::slice::from_ref(&w));
    // Finding 1: upstream answers chunked (no length of its own) with other bytes, more of them
    // than the page's `size` promises, so the first chunks alone already fill that length.
    let mut wrong = w.bytes.clone();
    wrong.reverse();
    wrong.extend_from_slice(&w.bytes);
    up.set_reply(
        &format!("/files/{}", w.filename),
        Reply {
            chunked: true,
            ..Reply::ok("application/octet-stream", wrong.clone())
        },
    );
    // Streamed (not audited first), as files are with audits off or once evicted.
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| s.audit = false,
    )
    .await;
    assert!(
        pw.get("/simple/chunky/", JSON)
            .await
            .text()
            .contains(&w.filename)
    );
    let r = pw.get(&file_path(&w), None).await;
    assert!(
        !r.complete || r.body == w.bytes,
        "a complete response of {} bytes that are not the promised ones",
        r.body.len()
    );
    assert!(!r.complete, "upstream never sent the promised bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_from_one_address_do_not_lock_out_another() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = FakeIndex::start().await;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        Limits::default(),
        None,
        |s| {
            s.server.max_connections = 32;
            s.server.max_connections_per_address = 8;
        },
    )
    .await;
    // Finding 4: more idle connections than the server serves at once, from one address.
    let mut flood = Vec::new();
    for _ in 0..40 {
        if let Ok(c) = tokio::net::TcpStream::connect(pw.addr).await {
            flood.push(c);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // A health probe from another address (all of 127.0.0.0/8 is this host).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut probe = socket.connect(pw.addr).await.unwrap();
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        probe.read_to_end(&mut answer),
    )
    .await;
    assert!(
        read.is_ok(),
        "the health probe got no answer while one address flooded"
    );
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(flood);
}

/// Issue 16: `/readyz` says not ready when the cache disk is full. The cache folder is a
/// 256 KiB tmpfs, filled to its last few KiB, mounted in a user and mount namespace of its
/// own (`unshare`, no privilege needed) around the real binary. Before the fix the probe wrote
/// an empty file, which a full disk still takes.
#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_not_ready_when_the_cache_disk_is_full() {
    use crate::support::served::Served;
    let up = FakeIndex::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let script = r#"set -e
mount -t tmpfs -o size=256k tmpfs "$1"
head -c 245760 /dev/zero > "$1/filler"
shift
exec "$@""#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&cache)
    .arg(env!("CARGO_BIN_EXE_pipwall"))
    .args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &up.url(),
        "--cache-dir",
    ])
    .arg(&cache);
    let served = Served::spawn(cmd);
    let health = crate::support::pipwall::raw_get_with(served.addr, "/healthz", &[]).await;
    assert_eq!(health.status, 200);
    let ready = crate::support::pipwall::raw_get_with(served.addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(
        ready.text().contains("cannot take data"),
        "{}",
        ready.text()
    );
}

/// Issue 16, finding 5: a wheel dripping at a few bytes a second holds one download, not the
/// audits: with `--audit-jobs 1`, another project's healthy wheel is audited and listed while
/// the drip goes on (downloads and audits have separate limits, and every transfer has an
/// overall deadline).
#[tokio::test(flavor = "multi_thread")]
async fn a_dripping_upstream_does_not_starve_another_projects_audit() {
    let up = FakeIndex::start().await;
    let slow = wheel("drip", "1.0");
    up.project("drip", PageFormat::Json, std::slice::from_ref(&slow));
    up.set_reply(
        &format!("/files/{}", slow.filename),
        crate::support::upstream::Reply {
            drip: Some(std::time::Duration::from_millis(200)),
            ..crate::support::upstream::Reply::ok("application/octet-stream", slow.bytes.clone())
        },
    );
    let healthy = wheel("healthy", "1.0");
    up.project("healthy", PageFormat::Json, std::slice::from_ref(&healthy));
    let pw = std::sync::Arc::new(
        Pipwall::start_in(
            tempfile::tempdir().unwrap(),
            &[up.url()],
            Limits::default(),
            None,
            |s| {
                s.audit_jobs = 1;
                s.audit_deadline = std::time::Duration::from_secs(3);
            },
        )
        .await,
    );
    let dripping = {
        let pw = pw.clone();
        tokio::spawn(async move { pw.get("/simple/drip/", JSON).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let page = pw.get("/simple/healthy/", JSON).await;
    assert!(page.text().contains(&healthy.filename), "{}", page.text());
    assert!(page.header("x-pipwall-audits-pending").is_none());
    let drip_page = dripping.await.unwrap();
    assert!(!drip_page.text().contains(&slow.filename));
    assert_eq!(drip_page.header("cache-control"), Some("no-store"));
}
