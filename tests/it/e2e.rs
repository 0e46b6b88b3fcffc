//! Real pip and uv installing through pipwall from a fake upstream.

use crate::support::clients::{INSTALLERS, Installer, installed_version};
use crate::support::{FakeIndex, PageFormat, Pipwall, clients, sdist, wheel};

/// An upstream where `demo` has wheels for 1.0 and 1.1 and only an sdist for 2.0, so a client
/// that saw the sdist would pick 2.0.
async fn demo_upstream(format: PageFormat, marker: &std::path::Path) -> FakeIndex {
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        format,
        &[
            wheel("demo", "1.0"),
            wheel("demo", "1.1"),
            sdist("demo", "2.0", marker),
        ],
    );
    up
}

async fn installs_newest_wheel(installer: Installer, format: PageFormat) {
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("setup-py-ran");
    let up = demo_upstream(format, &marker).await;
    let pw = Pipwall::start(&[up.url()]).await;
    let target = home.path().join("target");
    let run = clients()
        .install(installer, &pw.index_url(), home.path(), &target, &["demo"])
        .await;
    assert!(run.ok, "{installer:?}: {}", run.output);
    assert_eq!(
        installed_version(&target, "demo").as_deref(),
        Some("1.1"),
        "{}",
        run.output
    );
    assert!(
        !up.was_requested("demo-2.0.tar.gz"),
        "the sdist was fetched upstream"
    );
    assert!(!marker.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_installs_through_json_upstream() {
    installs_newest_wheel(Installer::Pip, PageFormat::Json).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_installs_through_html_upstream() {
    installs_newest_wheel(Installer::Pip, PageFormat::Html).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uv_installs_through_json_upstream() {
    installs_newest_wheel(Installer::Uv, PageFormat::Json).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uv_installs_through_html_upstream() {
    installs_newest_wheel(Installer::Uv, PageFormat::Html).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sdist_only_project_is_not_found_and_never_built() {
    let home = tempfile::tempdir().unwrap();
    let marker = home.path().join("setup-py-ran");
    let up = FakeIndex::start().await;
    up.project(
        "canary",
        PageFormat::Json,
        &[sdist("canary", "1.0", &marker)],
    );
    let pw = Pipwall::start(&[up.url()]).await;
    let c = clients();
    let dl = home.path().join("dl");
    for args in [
        vec![
            "install",
            "--target",
            &*home.path().join("t").display().to_string(),
            "canary",
        ],
        vec!["download", "--dest", &*dl.display().to_string(), "canary"],
    ] {
        let args: Vec<&str> = args.iter().map(|s| &**s).collect();
        let run = c.pip(&pw.index_url(), home.path(), &args).await;
        assert!(!run.ok, "{}", run.output);
        assert!(
            run.output
                .contains("No matching distribution found for canary"),
            "{}",
            run.output
        );
    }
    let run = c
        .uv_install(
            &pw.index_url(),
            home.path(),
            &home.path().join("u"),
            &["canary"],
        )
        .await;
    assert!(!run.ok, "{}", run.output);
    assert!(
        !up.was_requested("canary-1.0.tar.gz"),
        "the sdist was fetched: {:?}",
        up.requests()
    );
    assert!(!marker.exists(), "setup.py ran");
    assert!(!dl.exists() || std::fs::read_dir(&dl).unwrap().next().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_require_hashes_works_through_pipwall() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let w = wheel("demo", "1.0");
    up.project("demo", PageFormat::Json, &[w.clone(), wheel("demo", "1.1")]);
    let pw = Pipwall::start(&[up.url()]).await;
    let req = home.path().join("requirements.txt");
    std::fs::write(&req, format!("demo==1.0 --hash=sha256:{}\n", w.sha256())).unwrap();
    let target = home.path().join("target");
    let req = req.display().to_string();
    let run = clients()
        .install(
            Installer::Pip,
            &pw.index_url(),
            home.path(),
            &target,
            &["--require-hashes", "-r", &req],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    assert_eq!(installed_version(&target, "demo").as_deref(), Some("1.0"));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_bytes_not_matching_their_hash_install_nothing() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let honest = wheel("demo", "1.0");
    // The page promises the honest wheel's digest, the file route serves other bytes.
    let mut evil = wheel("demo", "1.0");
    evil.bytes = wheel("demo", "6.6").bytes;
    up.project_with_hashes("demo", PageFormat::Json, &[(evil, honest.sha256())]);
    let pw = Pipwall::start(&[up.url()]).await;
    for installer in INSTALLERS {
        let target = home.path().join(format!("{installer:?}"));
        let run = clients()
            .install(installer, &pw.index_url(), home.path(), &target, &["demo"])
            .await;
        assert!(!run.ok, "{installer:?}: {}", run.output);
        assert_eq!(installed_version(&target, "demo"), None);
    }
    // Nothing unverified was kept in the cache.
    // (The state files say whom pipwall audits for, not what it fetched.)
    let cached: Vec<_> = crate::support::files_under(pw.cache.path())
        .into_iter()
        .filter(|p| !p.ends_with("environments.json") && !p.ends_with("audits/queue.json"))
        .collect();
    assert!(cached.is_empty(), "cache holds {cached:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_normalized_name_installs() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    up.project("demo-pkg", PageFormat::Html, &[wheel("demo-pkg", "3.0")]);
    let pw = Pipwall::start(&[up.url()]).await;
    for (installer, spelling) in [(Installer::Pip, "Demo_Pkg"), (Installer::Uv, "Demo.Pkg")] {
        let target = home.path().join(format!("{installer:?}"));
        let run = clients()
            .install(
                installer,
                &pw.index_url(),
                home.path(),
                &target,
                &[spelling],
            )
            .await;
        assert!(run.ok, "{installer:?}: {}", run.output);
        assert_eq!(
            installed_version(&target, "demo_pkg").as_deref(),
            Some("3.0")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_project_gives_pips_normal_error() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let run = clients()
        .pip(
            &pw.index_url(),
            home.path(),
            &[
                "download",
                "--dest",
                &home.path().display().to_string(),
                "nosuchproject",
            ],
        )
        .await;
    assert!(!run.ok);
    assert!(
        run.output
            .contains("No matching distribution found for nosuchproject"),
        "{}",
        run.output
    );
}

/// An HTTPS upstream whose certificate comes from a private CA (as behind a corporate TLS
/// interception proxy): trusted with `--upstream-ca`, refused without it.
#[tokio::test(flavor = "multi_thread")]
async fn https_upstream_with_extra_ca_bundle() {
    let home = tempfile::tempdir().unwrap();
    let (up, ca_pem) = FakeIndex::start_tls().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let ca = home.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let limits = pipwall::upstream::Limits::default();
    let ttl = std::time::Duration::from_secs(60);
    let untrusted = Pipwall::start_full(&[up.https_url()], ttl, limits.clone(), None).await;
    let r = untrusted.get("/simple/demo/", None).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().to_lowercase().contains("certificate"),
        "{}",
        r.text()
    );
    let pw = Pipwall::start_full(&[up.https_url()], ttl, limits, Some(&ca)).await;
    let target = home.path().join("target");
    let run = clients()
        .install(
            Installer::Pip,
            &pw.index_url(),
            home.path(),
            &target,
            &["demo"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    assert_eq!(installed_version(&target, "demo").as_deref(), Some("1.0"));
}

/// pip's `--uploaded-prior-to` and uv's `--exclude-newer` need `upload-time`, which pipwall
/// keeps from the upstream JSON (pip fails outright when an index lacks it).
#[tokio::test(flavor = "multi_thread")]
async fn upload_time_survives_for_cooldown_flags() {
    let home = tempfile::tempdir().unwrap();
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let pw = Pipwall::start(&[up.url()]).await;
    let c = clients();
    let dl = home.path().join("dl").display().to_string();
    let run = c
        .pip(
            &pw.index_url(),
            home.path(),
            &[
                "download",
                "--dest",
                &dl,
                "--uploaded-prior-to",
                "2025-01-01T00:00:00Z",
                "demo",
            ],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    // Uploaded 2024-01-01: a cut-off before that leaves nothing.
    let run = c
        .pip(
            &pw.index_url(),
            home.path(),
            &[
                "download",
                "--dest",
                &dl,
                "--uploaded-prior-to",
                "2023-06-01T00:00:00Z",
                "demo",
            ],
        )
        .await;
    assert!(!run.ok, "{}", run.output);
    let target = home.path().join("t");
    let run = c
        .uv_install(
            &pw.index_url(),
            home.path(),
            &target,
            &["--exclude-newer", "2025-01-01T00:00:00Z", "demo"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    let run = c
        .uv_install(
            &pw.index_url(),
            home.path(),
            &home.path().join("t2"),
            &["--exclude-newer", "2023-06-01T00:00:00Z", "demo"],
        )
        .await;
    assert!(!run.ok, "{}", run.output);
}

/// `native` 1.0 is a clean abi3 extension; 1.1, the newest, imports a symbol outside the stable
/// ABI. Installers see only 1.0, and 1.1 cannot be fetched through pipwall at all.
async fn installs_the_clean_native_wheel(installer: Installer) {
    use crate::support::fixtures::WheelSpec;
    use crate::support::native::binary;
    let tag = "cp36-abi3-manylinux_2_17_x86_64";
    let good = WheelSpec::new("native", "1.0", tag)
        .file("native/__init__.py", "VERSION = '1.0'\n")
        .file("native/_ext.abi3.so", binary("clean.abi3.so"))
        .build();
    let bad = WheelSpec::new("native", "1.1", tag)
        .file("native/__init__.py", "VERSION = '1.1'\n")
        .file("native/_ext.abi3.so", binary("outside.abi3.so"))
        .build();
    let up = FakeIndex::start().await;
    up.project("native", PageFormat::Json, &[good.clone(), bad.clone()]);
    let pw = Pipwall::start(&[up.url()]).await;
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("target");
    let run = clients()
        .install(
            installer,
            &pw.index_url(),
            home.path(),
            &target,
            &["native"],
        )
        .await;
    assert!(run.ok, "{installer:?}: {}", run.output);
    assert_eq!(
        installed_version(&target, "native").as_deref(),
        Some("1.0"),
        "{}",
        run.output
    );
    let log = pw.decisions();
    let of = |f: &str| {
        log.iter()
            .find(|d| d["filename"] == f)
            .unwrap_or_else(|| panic!("no decision for {f}: {log:#?}"))
            .clone()
    };
    assert_eq!(of(&good.filename)["code"], "wheel-shown");
    let hidden = of(&bad.filename);
    assert_eq!(hidden["code"], "audit-failed");
    assert!(hidden.to_string().contains("PyUnicode_New"), "{hidden}");
    let refused = pw
        .get(&format!("/files/{}/{}", bad.sha256(), bad.filename), None)
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("abi3-outside-stable-abi"),
        "{}",
        refused.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_never_sees_a_wheel_that_fails_its_audit() {
    installs_the_clean_native_wheel(Installer::Pip).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uv_never_sees_a_wheel_that_fails_its_audit() {
    installs_the_clean_native_wheel(Installer::Uv).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_installs_over_https_trusting_the_generated_ca() {
    let certs = tempfile::tempdir().unwrap();
    let names: Vec<String> = pipwall::tls::DEFAULT_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let made = pipwall::tls::init(certs.path(), &names, false).unwrap();
    let tls =
        pipwall::tls::server_config(&made.server, &certs.path().join("server-key.pem")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let up = demo_upstream(PageFormat::Json, &home.path().join("marker")).await;
    let pw = Pipwall::start_tls(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        pipwall::upstream::Limits::default(),
        None,
        |_| {},
        Some(tls),
    )
    .await;
    let index = format!("https://127.0.0.1:{}/simple/", pw.addr.port());
    let target = home.path().join("target");
    let ca = made.ca.display().to_string();
    let t = target.display().to_string();
    // pip 26.3 reads a CA from SSL_CERT_FILE (through truststore); uv reads the same variable.
    let run = clients()
        .pip_env(
            &index,
            home.path(),
            &["install", "--target", &t, "demo"],
            &[("SSL_CERT_FILE", &ca)],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    assert_eq!(installed_version(&target, "demo").as_deref(), Some("1.1"));
    // Without the CA, pip refuses the connection: the server really is TLS with that CA.
    let home2 = tempfile::tempdir().unwrap();
    let o = home2.path().join("target").display().to_string();
    let refused = clients()
        .pip(&index, home2.path(), &["install", "--target", &o, "demo"])
        .await;
    assert!(!refused.ok, "{}", refused.output);
    assert!(
        refused.output.contains("CERTIFICATE_VERIFY_FAILED") || refused.output.contains("SSL"),
        "{}",
        refused.output
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_authenticates_with_basic_auth_and_strangers_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    pipwall::auth::append_line(
        &users,
        &pipwall::auth::user_line("alice", "s3cret", None).unwrap(),
    )
    .unwrap();
    let (token, line) = pipwall::auth::new_token(None).unwrap();
    pipwall::auth::append_line(&users, &line).unwrap();
    let loaded = std::sync::Arc::new(pipwall::auth::Users::load(&users).unwrap());
    let home = tempfile::tempdir().unwrap();
    let up = demo_upstream(PageFormat::Json, &home.path().join("marker")).await;
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        pipwall::upstream::Limits::default(),
        None,
        move |s| s.auth = Some(loaded),
    )
    .await;
    let port = pw.addr.port();
    let target = home.path().join("target");
    let t = target.display().to_string();
    let run = clients()
        .pip(
            &format!("http://alice:s3cret@127.0.0.1:{port}/simple/"),
            home.path(),
            &["install", "--target", &t, "demo"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    assert_eq!(installed_version(&target, "demo").as_deref(), Some("1.1"));
    assert!(!run.output.contains("s3cret"), "{}", run.output);

    let home2 = tempfile::tempdir().unwrap();
    let t2 = home2.path().join("target").display().to_string();
    let denied = clients()
        .pip(
            &format!("http://alice:wrong@127.0.0.1:{port}/simple/"),
            home2.path(),
            &["install", "--target", &t2, "demo"],
        )
        .await;
    assert!(!denied.ok);
    assert!(denied.output.contains("401"), "{}", denied.output);

    let anon = pw.get("/simple/demo/", None).await;
    assert_eq!(anon.status, 401);
    assert!(
        anon.header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(pw.get("/healthz", None).await.status, 200);
    let bearer = format!("Bearer {token}");
    let ok = crate::support::pipwall::raw_get_with(
        pw.addr,
        "/simple/demo/",
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_eq!(ok.status, 200);
    // Credentials never reach the decision log.
    let log = serde_json::to_string(&pw.decisions()).unwrap();
    assert!(!log.contains("s3cret") && !log.contains(&token));
}
