//! Policies end to end: real pip and uv through pipwall under a TOML policy.

use crate::support::clients::{INSTALLERS, Installer, installed_version};
use crate::support::served::{Served, listed_files, serve_refuses};
use crate::support::{FakeIndex, PageFormat, Pipwall, clients, wheel};

/// An upload time `hours` ago, in PEP 700 form.
pub(crate) fn hours_ago(hours: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours);
    t.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string()
}

async fn install(pw: &Pipwall, installer: Installer, spec: &str) -> (bool, Option<String>, String) {
    install_from(&pw.index_url(), installer, spec, "demo").await
}

/// Installs `spec` from the index at `index` into a fresh folder: whether it worked, the
/// version of `module` installed, and the installer's output.
async fn install_from(
    index: &str,
    installer: Installer,
    spec: &str,
    module: &str,
) -> (bool, Option<String>, String) {
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("t");
    let run = clients()
        .install(installer, index, home.path(), &target, &[spec])
        .await;
    (run.ok, installed_version(&target, module), run.output)
}

/// `installer` installs `spec` from `index` and `module` ends up at `version`.
pub(crate) async fn installs(
    index: &str,
    installer: Installer,
    spec: &str,
    module: &str,
    version: &str,
) {
    let (ok, got, out) = install_from(index, installer, spec, module).await;
    assert!(ok, "{installer:?} {spec}: {out}");
    assert_eq!(got.as_deref(), Some(version), "{installer:?} {spec}: {out}");
}

/// pip installs `project` through `pw`, and `module` ends up at `version`.
async fn pip_installs(pw: &Pipwall, project: &str, module: &str, version: &str) {
    installs(&pw.index_url(), Installer::Pip, project, module, version).await;
}

/// pip and uv each install `spec` through `pw`: `Some(version)` of demo installed, or `None`:
/// the install fails and installs nothing.
async fn every_installer_gets(pw: &Pipwall, spec: &str, want: Option<&str>) {
    for installer in INSTALLERS {
        let (ok, version, out) = install(pw, installer, spec).await;
        assert_eq!(ok, want.is_some(), "{installer:?}: {out}");
        assert_eq!(version.as_deref(), want, "{installer:?}: {out}");
    }
}

/// demo 1.0, uploaded a month ago, and 1.1, uploaded at `new`.
pub(crate) async fn old_and_new(new: &str) -> FakeIndex {
    let up = FakeIndex::start().await;
    up.project_timed(
        "demo",
        &[
            (wheel("demo", "1.0"), &hours_ago(24 * 30)),
            (wheel("demo", "1.1"), new),
        ],
    );
    up
}

#[tokio::test(flavor = "multi_thread")]
async fn cooldown_makes_installers_pick_the_older_version() {
    let up = old_and_new(&hours_ago(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let pw =
        Pipwall::start_with_policy(&[up.url()], dir.path(), "[cooldown]\nmin-age = \"7d\"\n").await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    let hidden = pw
        .decisions()
        .into_iter()
        .find(|d| d["filename"] == "demo-1.1-py3-none-any.whl")
        .unwrap();
    assert_eq!(hidden["code"], "cooldown-too-new");
    assert_eq!(hidden["action"], "hide");
    assert!(
        hidden["policy"]
            .as_str()
            .unwrap()
            .ends_with("policy.toml:2"),
        "{hidden}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_listed_project_is_not_found_and_upstream_is_not_asked() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[projects]\ndeny = [{ name = \"demo\", reason = \"replaced by demo2\" }]\n",
    )
    .await;
    every_installer_gets(&pw, "demo", None).await;
    assert!(!up.was_requested("/simple/demo/"), "{:?}", up.requests());
    // The page says why, as a PEP 792 status.
    let page = pw
        .get("/simple/demo/", Some("application/vnd.pypi.simple.v1+json"))
        .await;
    assert_eq!(page.status, 200);
    let json: serde_json::Value = serde_json::from_str(&page.text()).unwrap();
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(json["project-status"]["status"], "quarantined");
    let reason = json["project-status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("project-denied") && reason.contains("replaced by demo2"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_regex_deny_entry_blocks_matching_projects_and_no_other() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    up.project(
        "acme-internal-tool",
        PageFormat::Json,
        &[wheel("acme-internal-tool", "1.0")],
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[projects]\ndeny = [{ regex = \"^acme-(internal|corp)-\", reason = \"internal names come from the private index\" }]\n",
    )
    .await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    for installer in INSTALLERS {
        // Written as people do; matched once normalized (`acme-internal-tool`).
        let (ok, _, out) = install(&pw, installer, "Acme_Internal.Tool").await;
        assert!(!ok, "{installer:?}: {out}");
    }
    assert!(
        !up.was_requested("/simple/acme-internal-tool/"),
        "{:?}",
        up.requests()
    );
    let page = pw
        .get(
            "/simple/acme-internal-tool/",
            Some("application/vnd.pypi.simple.v1+json"),
        )
        .await;
    let json: serde_json::Value = serde_json::from_str(&page.text()).unwrap();
    assert_eq!(json["files"], serde_json::json!([]));
    let reason = json["project-status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("project-denied")
            && reason.contains("^acme-(internal|corp)-")
            && reason.contains("internal names come from the private index")
            && reason.contains("policy.toml:2"),
        "{reason}"
    );
}

/// demo 1.0 (the wheel a lock pins, returned) and 1.1, and `other`, which no lock names.
async fn lock_upstream() -> (FakeIndex, crate::support::fixtures::Fixture) {
    let up = FakeIndex::start().await;
    let pinned = wheel("demo", "1.0");
    up.project(
        "demo",
        PageFormat::Json,
        &[pinned.clone(), wheel("demo", "1.1")],
    );
    up.project("other", PageFormat::Json, &[wheel("other", "1.0")]);
    (up, pinned)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_file_limits_installs_to_pinned_files() {
    let (up, pinned) = lock_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        format!(
            "# pinned by the team\ndemo==1.0 \\\n    --hash=sha256:{}\n",
            pinned.sha256()
        ),
    )
    .unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[lock]\nfiles = [\"requirements.txt\"]\n",
    )
    .await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    let home = tempfile::tempdir().unwrap();
    let run = clients()
        .install(
            Installer::Pip,
            &pw.index_url(),
            home.path(),
            &home.path().join("t"),
            &["other"],
        )
        .await;
    assert!(!run.ok, "{}", run.output);
    assert!(
        !up.was_requested("/simple/other/"),
        "outside the lock, upstream is not asked"
    );
    let page = pw.get("/simple/other/", None).await;
    assert_eq!(page.status, 404);
    assert_eq!(page.header("x-pipwall-reason"), Some("project-not-in-lock"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uv_lock_limits_installs_to_pinned_files() {
    let (up, pinned) = lock_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // As uv writes it: the project itself (editable, never served) and one pinned wheel.
    std::fs::write(
        dir.path().join("uv.lock"),
        format!(
            r#"version = 1
revision = 2
requires-python = ">=3.8"

[[package]]
name = "app"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [{{ name = "demo" }}]

[[package]]
name = "demo"
version = "1.0"
source = {{ registry = "{}" }}
wheels = [
    {{ url = "https://files.example.invalid/{}", hash = "sha256:{}", size = 1000 }},
]
"#,
            up.url(),
            pinned.filename,
            pinned.sha256()
        ),
    )
    .unwrap();
    let policy = "[lock]\nfiles = [\"uv.lock\"]\noutside = \"hide\"\nblocked = \"not-found\"\n";
    let (code, out) = {
        std::fs::write(dir.path().join("check.toml"), policy).unwrap();
        policy_check(dir.path(), &["check.toml"])
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("uv.lock:5:1: warning[lock-outside-index]: app comes from an editable"),
        "{out}"
    );
    let pw = Pipwall::start_with_policy(&[up.url()], dir.path(), policy).await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    let hidden = pw
        .decisions()
        .into_iter()
        .find(|d| d["filename"] == "demo-1.1-py3-none-any.whl")
        .unwrap();
    assert_eq!(hidden["code"], "not-in-lock");
    let page = pw.get("/simple/other/", None).await;
    assert_eq!(page.status, 404);
    assert_eq!(page.header("x-pipwall-reason"), Some("project-not-in-lock"));
    let page = pw.get("/simple/app/", None).await;
    assert_eq!(page.header("x-pipwall-reason"), Some("project-not-in-lock"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typosquat_warns_by_default_and_hide_quarantines_it() {
    let up = FakeIndex::start().await;
    up.project("reqeusts", PageFormat::Json, &[wheel("reqeusts", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(&[up.url()], dir.path(), "").await;
    let home = tempfile::tempdir().unwrap();
    let run = clients()
        .install(
            Installer::Pip,
            &pw.index_url(),
            home.path(),
            &home.path().join("t"),
            &["reqeusts"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    let d = pw
        .decisions()
        .into_iter()
        .find(|d| d["filename"] == "reqeusts-1.0-py3-none-any.whl")
        .unwrap();
    assert_eq!(
        (d["action"].as_str(), d["code"].as_str()),
        (Some("warn"), Some("typosquat")),
        "{d}"
    );

    let dir = tempfile::tempdir().unwrap();
    let pw =
        Pipwall::start_with_policy(&[up.url()], dir.path(), "[typosquat]\naction = \"hide\"\n")
            .await;
    let page = pw
        .get(
            "/simple/reqeusts/",
            Some("application/vnd.pypi.simple.v1+json"),
        )
        .await;
    let json: serde_json::Value = serde_json::from_str(&page.text()).unwrap();
    assert_eq!(json["files"], serde_json::json!([]));
    let reason = json["project-status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("typosquat") && reason.contains("resembles `requests`"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malware_record_blocks_the_file() {
    let up = FakeIndex::start().await;
    let bad = wheel("demo", "1.1");
    up.project(
        "demo",
        PageFormat::Json,
        &[wheel("demo", "1.0"), bad.clone()],
    );
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("malicious/osv/malicious/pypi/demo");
    std::fs::create_dir_all(&feed).unwrap();
    let record = serde_json::json!({
        "id": "MAL-2026-1",
        "modified": "2026-11-01T00:00:00Z",
        "summary": "Malicious code in demo (PyPI)",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "demo"},
            "database_specific": {"indicators": {"package_integrity": [
                {"filename": bad.filename, "hashes": {"sha256": bad.sha256()}}
            ]}}
        }]
    });
    std::fs::write(feed.join("MAL-2026-1.json"), record.to_string()).unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[malware]\nsources = [\"malicious\"]\n",
    )
    .await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    // Asked for directly, the file is refused, and the status line says why.
    let resp = pw
        .get(&format!("/files/{}/{}", bad.sha256(), bad.filename), None)
        .await;
    assert_eq!(resp.status, 403);
    assert!(
        resp.status_line.contains("malicious"),
        "{}",
        resp.status_line
    );
    assert!(resp.text().contains("MAL-2026-1"), "{}", resp.text());
    assert!(
        !up.was_requested(&bad.filename),
        "the malicious file was fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn report_only_installs_everything_and_logs_what_it_would_hide() {
    let up = old_and_new(&hours_ago(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "report-only = true\n[cooldown]\nmin-age = \"7d\"\n",
    )
    .await;
    let (ok, version, out) = install(&pw, Installer::Pip, "demo").await;
    assert!(ok, "{out}");
    assert_eq!(version.as_deref(), Some("1.1"), "{out}");
    let would: Vec<serde_json::Value> = pw
        .decisions()
        .into_iter()
        .filter(|d| d["action"] == "would-hide")
        .collect();
    assert_eq!(would.len(), 1, "{would:?}");
    assert_eq!(would[0]["filename"], "demo-1.1-py3-none-any.whl");
    assert_eq!(would[0]["code"], "cooldown-too-new");
}

/// `pipwall policy check` on files written into `dir`: (exit code, stdout).
fn policy_check(dir: &std::path::Path, files: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .current_dir(dir)
        .args(["policy", "check"])
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn policy_check_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.toml"),
        r#"report-only = "yes"
[projects]
deny = ["evil", "bad[", { name = "x y", reason = "r" }]
acton = "hide"
[versions]
require = { django = ">=4.2,<<6" }
[cooldown]
min-age = "a week"
as-of = "yesterday"
[[exceptions]]
rule = "sdist"
project = "pyyaml"
[[exceptions]]
rule = "sdists"
project = "pyyaml"
reason = "needs a build"
expires = 2020-01-01
[audit]
codes = { no-such-code = "hide", pth-executes-code = "maybe" }
[lock]
files = ["missing.txt"]
[tags]
platform = ["manylinux_[x86_64"]
[health]
min-score = 11
"#,
    )
    .unwrap();
    let (code, out) = policy_check(dir.path(), &["broken.toml"]);
    assert_eq!(code, 1);
    let expected = r#"broken.toml:1:15: error[wrong-type]: report-only must be true or false, not string
broken.toml:3:17: error[bad-glob]: [projects] deny: `bad[` is not a valid glob: unclosed character class; missing ']'
broken.toml:3:34: error[bad-name]: [projects] deny: `x y` is not a project name: project name has a character outside ASCII letters, digits, `.`, `-` and `_`
broken.toml:4:1: error[unknown-key]: unknown key `acton` in [projects] (did you mean `action`?)
broken.toml:6:22: error[bad-specifier]: [versions] require: `>=4.2,<<6` is not a PEP 440 version specifier: Failed to parse version: no such comparison operator "<<", must be one of ~= == != <= >= < > ===
broken.toml:8:11: error[bad-duration]: [cooldown] min-age: `a week` is not a duration (write e.g. "7d", "12 hours", "1w", "2y", "P7D" or "PT12H")
broken.toml:9:9: error[bad-date]: [cooldown] as-of: `yesterday` is not an RFC 3339 date-time with an offset (e.g. 2026-11-01T00:00:00Z) or a date
broken.toml:10:1: error[missing-reason]: an exception needs a `reason`: the next person to read the policy must know why
broken.toml:11:8: error[unknown-rule]: [[exceptions]] rule: `sdist` is not a rule (one of projects, sdists, versions, tags, prereleases, yanked, size, cooldown, lock, advisories, malware, audit, project-status, unmaintained, licenses, typosquat, namespaces, attestations, health)
broken.toml:13:1: warning[expired-exception]: this exception expired on 2020-01-01; it no longer applies
broken.toml:19:11: error[unknown-code]: [audit] codes: `no-such-code` is not an audit finding code (`pipwall audit --format json` names them)
broken.toml:19:54: error[bad-action]: [audit] codes must be "hide", "yank", "warn" or "allow", not "maybe"
broken.toml:21:10: error[lock-file]: cannot read lock file missing.txt: No such file or directory (os error 2)
broken.toml:23:13: error[bad-glob]: [tags] platform: `manylinux_[x86_64` is not a valid glob: unclosed character class; missing ']'
broken.toml:25:13: error[bad-value]: [health] min-score must be a Scorecard score: a number from 0 to 10
"#;
    assert_eq!(out, expected);
}

#[test]
fn policy_check_accepts_the_shipped_policies_and_reports_syntax_errors() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "").unwrap();
    for f in ["default.toml", "template.toml"] {
        let (code, out) = policy_check(dir.path(), &[&format!("{root}/policies/{f}")]);
        assert_eq!((code, out.as_str()), (0, ""), "{f}");
    }
    // The strict and CI policies take their data and lock paths from the environment.
    std::fs::create_dir_all(dir.path().join("data/advisories")).unwrap();
    std::fs::create_dir_all(dir.path().join("data/malware")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .current_dir(dir.path())
        .env("PIPWALL_DATA", dir.path().join("data"))
        .env("PIPWALL_LOCK", dir.path().join("requirements.txt"))
        .args(["policy", "check"])
        .arg(format!("{root}/policies/strict.toml"))
        .arg(format!("{root}/policies/ci-locked.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(dir.path().join("syntax.toml"), "[cooldown\nmin-age = 1\n").unwrap();
    let (code, out) = policy_check(dir.path(), &["syntax.toml"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("syntax.toml:1:"), "{out}");
    assert!(out.contains("error[toml-syntax]"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_a_bad_policy_and_sighup_reloads_or_keeps_the_old_one() {
    let up = old_and_new(&hours_ago(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let cache = dir.path().join("cache");
    let policy_arg = policy.display().to_string();
    let cache_arg = cache.display().to_string();
    let args = [
        "--upstream",
        &up.url(),
        "--policy",
        &policy_arg,
        "--cache-dir",
        &cache_arg,
    ];

    std::fs::write(&policy, "[cooldown]\nmin-age = \"a while\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("will not start") && err.contains("policy.toml:2:11: error[bad-duration]"),
        "{err}"
    );

    std::fs::write(&policy, "[cooldown]\nmin-age = \"7d\"\n").unwrap();
    let served = Served::start(&args);
    assert_eq!(
        listed_files(served.addr, "/simple/demo/", &[]).await,
        ["demo-1.0-py3-none-any.whl"]
    );

    std::fs::write(&policy, "[cooldown]\nmin-age = 7\n").unwrap();
    served.hangup();
    let kept = served.wait_for("kept the old policy");
    assert!(
        kept.contains("bad-duration") || kept.contains("problem"),
        "{kept}"
    );
    assert_eq!(
        listed_files(served.addr, "/simple/demo/", &[]).await,
        ["demo-1.0-py3-none-any.whl"]
    );

    std::fs::write(&policy, "[cooldown]\nmin-age = \"30m\"\n").unwrap();
    served.hangup();
    served.wait_for("reloaded the policy");
    assert_eq!(
        listed_files(served.addr, "/simple/demo/", &[]).await,
        ["demo-1.0-py3-none-any.whl", "demo-1.1-py3-none-any.whl"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cooldown_per_upstream_lets_the_private_index_publish_at_once() {
    // The same two versions on each index: 1.0 a month old, 1.1 two hours old.
    let public = old_and_new(&hours_ago(2)).await;
    let internal = FakeIndex::start().await;
    internal.project_timed(
        "acme-lib",
        &[
            (wheel("acme-lib", "1.0"), &hours_ago(24 * 30)),
            (wheel("acme-lib", "1.1"), &hours_ago(2)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[
            format!("internal={}", internal.url()),
            format!("public={}", public.url()),
        ],
        dir.path(),
        "[cooldown]\nmin-age = \"7d\"\nupstreams = { internal = \"0\" }\n",
    )
    .await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    for installer in INSTALLERS {
        installs(&pw.index_url(), installer, "acme-lib", "acme_lib", "1.1").await;
    }
    // A label no upstream has is a mistake, named at start.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cooldown]\nupstreams = { intenral = \"0\" }\n").unwrap();
    let upstream = format!("internal={}", internal.url());
    let err = serve_refuses(&[
        "--upstream".as_ref(),
        upstream.as_ref(),
        "--policy".as_ref(),
        bad.as_os_str(),
    ]);
    assert!(
        err.contains("bad.toml:2") && err.contains("`intenral`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn private_names_are_only_looked_up_on_the_private_upstream() {
    let public = FakeIndex::start().await;
    let internal = FakeIndex::start().await;
    // The attack: a public upload under the company's internal name, with a higher version.
    public.project("acme-lib", PageFormat::Json, &[wheel("acme-lib", "99.0")]);
    public.project("acme-gone", PageFormat::Json, &[wheel("acme-gone", "1.0")]);
    public.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    internal.project("acme-lib", PageFormat::Json, &[wheel("acme-lib", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    // The public index is listed first: order alone would let it answer.
    let pw = Pipwall::start_with_policy(
        &[
            format!("public={}", public.url()),
            format!("internal={}", internal.url()),
        ],
        dir.path(),
        "[[private]]\nnames = [\"acme-*\"]\nupstream = \"internal\"\n",
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let target = home.path().join("t");
    let run = clients()
        .install(
            Installer::Pip,
            &pw.index_url(),
            home.path(),
            &target,
            &["acme-lib", "demo"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    assert_eq!(
        installed_version(&target, "acme_lib").as_deref(),
        Some("1.0")
    );
    // A private name the private index lacks is not found, and never asked of the public one.
    let r = pw.get("/simple/acme-gone/", None).await;
    assert_eq!(r.status, 404);
    let asked: Vec<String> = public.requests();
    assert!(
        !asked.iter().any(|p| p.contains("acme")),
        "private names reached the public index: {asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vet_audits_what_a_lock_pins_and_fails_on_a_project_that_cannot_install() {
    let up = FakeIndex::start().await;
    let good = wheel("demo", "1.0");
    let marker = tempfile::tempdir().unwrap();
    let only_sdist = crate::support::sdist("legacy", "1.0", &marker.path().join("ran"));
    up.project(
        "demo",
        PageFormat::Json,
        &[good.clone(), wheel("demo", "1.1")],
    );
    up.project(
        "legacy",
        PageFormat::Json,
        std::slice::from_ref(&only_sdist),
    );
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("requirements.txt");
    let lock = |lines: &str| std::fs::write(&req, lines).unwrap();
    let vet = || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
            .args(["vet", "--format", "json", "-r"])
            .arg(&req)
            .args(["--upstream", &up.url(), "--cache-dir"])
            .arg(dir.path().join("cache"))
            .output()
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), json)
    };
    lock(&format!("demo==1.0 --hash=sha256:{}\n", good.sha256()));
    let (code, json) = vet().await;
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(json["projects"][0]["files"][0]["code"], "wheel-shown");
    // The audit ran: its report is in the cache `serve` would use.
    assert!(dir.path().join("cache/audits").is_dir());
    // Only the pinned wheel was fetched to be audited, not demo 1.1's (issue 15: a 14-pin
    // lock fetched every wheel of every pinned project).
    let fetched: Vec<String> = up
        .requests()
        .into_iter()
        .filter(|p| p.ends_with(".whl"))
        .collect();
    assert_eq!(fetched, [format!("/files/{}", good.filename)]);
    lock(&format!(
        "demo==1.0 --hash=sha256:{}\nlegacy==1.0 --hash=sha256:{}\n",
        good.sha256(),
        only_sdist.sha256()
    ));
    let (code, json) = vet().await;
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["failed"], 1);
    let legacy = &json["projects"][1];
    assert_eq!(legacy["project"], "legacy");
    assert_eq!(legacy["ok"], false);
    assert_eq!(legacy["files"][0]["code"], "sdist-hidden");
}

/// Publishes `files` under `/files/` and a page for `name` written by hand (`page` gets the
/// file entries, JSON or HTML), so a test can add what the fixtures do not write.
fn publish_page(
    up: &FakeIndex,
    name: &str,
    files: &[crate::support::fixtures::Fixture],
    html: bool,
    head: &str,
) {
    for f in files {
        up.set(
            &format!("/files/{}", f.filename),
            200,
            "application/octet-stream",
            f.bytes.clone(),
        );
    }
    let path = format!("/simple/{name}/");
    if html {
        let mut page = format!("<!DOCTYPE html><html><head>{head}</head><body>\n");
        for f in files {
            page.push_str(&format!(
                "<a href=\"/files/{0}#sha256={1}\">{0}</a><br>\n",
                f.filename,
                f.sha256()
            ));
        }
        page.push_str("</body></html>\n");
        up.set(&path, 200, "text/html", page);
    } else {
        let entries: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::json!({
                    "filename": f.filename,
                    "url": format!("../../files/{}", f.filename),
                    "hashes": {"sha256": f.sha256()},
                    "size": f.bytes.len(),
                    "upload-time": "2024-01-01T00:00:00.000000Z",
                })
            })
            .collect();
        let mut page = serde_json::json!({
            "meta": {"api-version": "1.4"}, "name": name, "files": entries, "versions": []
        });
        if !head.is_empty() {
            let extra: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(head).unwrap();
            for (k, v) in extra {
                page[k] = v;
            }
        }
        up.set(
            &path,
            200,
            "application/vnd.pypi.simple.v1+json",
            page.to_string(),
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_quarantine_hides_the_project_and_archived_only_warns() {
    let up = FakeIndex::start().await;
    publish_page(
        &up,
        "demo",
        &[wheel("demo", "1.0")],
        false,
        r#"{"project-status": {"status": "quarantined", "reason": "malware report under review"}}"#,
    );
    publish_page(
        &up,
        "oldie",
        &[wheel("oldie", "1.0")],
        true,
        r#"<meta name="pypi:project-status" content="archived"><meta name="pypi:project-status-reason" content="moved on">"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(&[up.url()], dir.path(), "").await;
    every_installer_gets(&pw, "demo", None).await;
    let page = pw
        .get("/simple/demo/", Some("application/vnd.pypi.simple.v1+json"))
        .await;
    let json: serde_json::Value = serde_json::from_str(&page.text()).unwrap();
    assert_eq!(json["files"], serde_json::json!([]));
    assert_eq!(json["project-status"]["status"], "quarantined");
    pip_installs(&pw, "oldie", "oldie", "1.0").await;
    let decisions = pw.decisions();
    let quarantined = decisions
        .iter()
        .find(|d| d["filename"] == "demo-1.0-py3-none-any.whl")
        .unwrap();
    assert_eq!(quarantined["code"], "project-quarantined", "{quarantined}");
    assert_eq!(quarantined["action"], "hide");
    let archived = decisions
        .iter()
        .find(|d| d["filename"] == "oldie-1.0-py3-none-any.whl")
        .unwrap();
    assert_eq!(archived["code"], "project-archived", "{archived}");
    assert_eq!(archived["action"], "warn");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_namespace_hides_what_upstream_does_not_list_as_owned() {
    let up = FakeIndex::start().await;
    // acme-tools: in the acme grant, owned; acme-utils: upstream says its owner does not hold
    // the grant (published before it); acme-extra: on an index page with no PEP 752 data.
    publish_page(
        &up,
        "acme-tools",
        &[wheel("acme-tools", "1.0")],
        false,
        r#"{"meta": {"api-version": "1.5"}, "namespaces": [{"name": "acme", "owned": true}]}"#,
    );
    publish_page(
        &up,
        "acme-utils",
        &[wheel("acme-utils", "1.0")],
        false,
        r#"{"meta": {"api-version": "1.5"}, "namespaces": [{"name": "acme", "owned": false}]}"#,
    );
    publish_page(&up, "acme-extra", &[wheel("acme-extra", "1.0")], true, "");
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[namespaces]\nrequire-owned = [\"acme\"]\n",
    )
    .await;
    for (project, ok) in [
        ("acme-tools", true),
        ("acme-utils", false),
        ("acme-extra", false),
    ] {
        for installer in INSTALLERS {
            let home = tempfile::tempdir().unwrap();
            let target = home.path().join("t");
            let run = clients()
                .install(installer, &pw.index_url(), home.path(), &target, &[project])
                .await;
            assert_eq!(run.ok, ok, "{installer:?} {project}: {}", run.output);
        }
    }
    let decisions = pw.decisions();
    for (project, says) in [
        ("acme-utils", "as not held"),
        ("acme-extra", "may not speak PEP 752"),
    ] {
        let d = decisions.iter().find(|d| d["project"] == project).unwrap();
        assert_eq!(
            (d["code"].as_str(), d["action"].as_str()),
            (Some("namespace-unverified"), Some("hide")),
            "{d}"
        );
        assert!(d["reason"].as_str().unwrap().contains(says), "{d}");
        assert!(
            d["policy"].as_str().unwrap().ends_with("policy.toml:2"),
            "{d}"
        );
    }
}

/// The real CircleCI-published example wheel (see tests/fixtures/attestations/README.md) as
/// project `circleci-sign-publish-example`, with its provenance object listed and served after
/// `provenance` edits it, or with none listed.
fn publish_attested(up: &FakeIndex, provenance: Option<&dyn Fn(&mut serde_json::Value)>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/attestations/");
    let name = "circleci_sign_publish_example-0.0.1.dev137-py3-none-any.whl";
    let bytes = std::fs::read(format!("{dir}{name}")).unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    up.set(
        &format!("/files/{name}"),
        200,
        "application/octet-stream",
        bytes,
    );
    let mut entry = serde_json::json!({
        "filename": name,
        "url": format!("../../files/{name}"),
        "hashes": {"sha256": sha},
        "upload-time": "2026-02-05T23:00:00.000000Z",
    });
    if let Some(edit) = provenance {
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}{name}.provenance")).unwrap())
                .unwrap();
        edit(&mut doc);
        up.set(
            &format!("/provenance/{name}"),
            200,
            "application/json",
            doc.to_string(),
        );
        entry["provenance"] = format!("../../provenance/{name}").into();
    }
    let page = serde_json::json!({
        "meta": {"api-version": "1.4"},
        "name": "circleci-sign-publish-example",
        "files": [entry],
    });
    up.set(
        "/simple/circleci-sign-publish-example/",
        200,
        "application/vnd.pypi.simple.v1+json",
        page.to_string(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attestation_requirement_installs_only_what_the_named_publisher_signed() {
    const PROJECT: &str = "circleci-sign-publish-example";
    let circleci = "[attestations]\nrequire = [{ project = \"circleci-sign-publish-example\", issuer = \"https://oidc.circleci.com\", identity = \"https://circleci.com/api/v2/projects/fdd9283f-e619-46af-8f9c-851f7d3e8b2b/*\" }]\n";
    let github = "[attestations]\nrequire = [{ project = \"circleci-sign-publish-example\", github = \"circleci-public/sign-and-publish-examples\" }]\n";
    let untouched = |_: &mut serde_json::Value| {};
    let forged = |doc: &mut serde_json::Value| {
        let sig = &mut doc["attestation_bundles"][0]["attestations"][0]["envelope"]["signature"];
        let mut raw = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            sig.as_str().unwrap(),
        )
        .unwrap();
        raw[40] ^= 1;
        *sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw).into();
    };
    type Edit<'a> = Option<&'a dyn Fn(&mut serde_json::Value)>;
    let cases: [(&str, Edit<'_>, Option<&str>); 4] = [
        (circleci, Some(&untouched), None),
        (
            github,
            Some(&untouched),
            Some("attestation-publisher-mismatch"),
        ),
        (circleci, Some(&forged), Some("attestation-invalid")),
        (circleci, None, Some("attestation-missing")),
    ];
    for (policy, provenance, hidden) in cases {
        let up = FakeIndex::start().await;
        publish_attested(&up, provenance);
        let dir = tempfile::tempdir().unwrap();
        let pw = Pipwall::start_with_policy(&[up.url()], dir.path(), policy).await;
        for installer in INSTALLERS {
            let home = tempfile::tempdir().unwrap();
            let run = clients()
                .install(
                    installer,
                    &pw.index_url(),
                    home.path(),
                    &home.path().join("t"),
                    &[PROJECT],
                )
                .await;
            assert_eq!(
                run.ok,
                hidden.is_none(),
                "{installer:?} {hidden:?}: {}",
                run.output
            );
        }
        let decisions = pw.decisions();
        let d = decisions.iter().find(|d| d["project"] == PROJECT).unwrap();
        match hidden {
            None => assert_eq!(d["action"], "show", "{d}"),
            Some(code) => {
                assert_eq!(
                    (d["code"].as_str(), d["action"].as_str()),
                    (Some(code), Some("hide")),
                    "{d}"
                );
                assert!(
                    d["policy"].as_str().unwrap().ends_with("policy.toml:2"),
                    "{d}"
                );
            }
        }
    }
    // Without audits nothing would check the attestations: serve refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, circleci).unwrap();
    let err = serve_refuses(&[
        "--no-audit".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
    ]);
    assert!(
        err.contains("--no-audit cannot be used with") && err.contains("policy.toml:2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yank_rule_keeps_the_file_listed_and_pip_prints_why() {
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[wheel("demo", "1.0"), wheel("demo", "1.1")],
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[versions]\naction = \"yank\"\ndeny = { demo = \"==1.1\" }\n",
    )
    .await;
    // Unpinned, resolvers pass over the yanked newest version.
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    // Pinned with ==, it installs, and pip says why it was yanked.
    let (ok, version, out) = install(&pw, Installer::Pip, "demo==1.1").await;
    assert!(ok, "{out}");
    assert_eq!(version.as_deref(), Some("1.1"), "{out}");
    assert!(
        out.contains("pipwall version-excluded") && out.contains("policy.toml:3"),
        "{out}"
    );
    let page = pw
        .get("/simple/demo/", Some("application/vnd.pypi.simple.v1+json"))
        .await
        .text();
    let json: serde_json::Value = serde_json::from_str(&page).unwrap();
    let reason = json["files"][1]["yanked"].as_str().unwrap_or_default();
    assert!(reason.starts_with("pipwall version-excluded: "), "{json}");
    assert_eq!(
        json["files"][0]["yanked"],
        serde_json::Value::Null,
        "{json}"
    );
    let page = pw.get("/simple/demo/", Some("text/html")).await.text();
    assert!(
        page.contains("data-yanked=\"pipwall version-excluded: "),
        "{page}"
    );
    let yanked = pw
        .decisions()
        .into_iter()
        .find(|d| d["filename"] == "demo-1.1-py3-none-any.whl")
        .unwrap();
    assert_eq!(yanked["action"], "yank", "{yanked}");
}

#[test]
fn policy_check_writes_sarif() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "[cooldown]\nmin-age = \"soon\"\n[sizes]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .current_dir(dir.path())
        .args(["policy", "check", "--format", "sarif", "p.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bad-duration", "unknown-key"]);
    let where_: Vec<(String, u64, u64, String)> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            (
                loc["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                loc["region"]["startLine"].as_u64().unwrap(),
                loc["region"]["startColumn"].as_u64().unwrap(),
                r["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        where_,
        [
            ("p.toml".into(), 2, 11, "error".into()),
            ("p.toml".into(), 3, 2, "error".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_license_hides_the_wheel_from_its_metadata() {
    use crate::support::fixtures::WheelSpec;
    let licensed = |version: &str, headers: &str| {
        let mut spec = WheelSpec::new("demo", version, "py3-none-any").file(
            "demo/__init__.py",
            format!("VERSION = '{version}'\n").into_bytes(),
        );
        spec.metadata = Some(format!(
            "Metadata-Version: 2.4\nName: demo\nVersion: {version}\n{headers}"
        ));
        spec.build()
    };
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[
            licensed("1.0", "License-Expression: MIT OR GPL-3.0-only\n"),
            licensed(
                "1.1",
                "Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n",
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[licenses]\nallow = [\"MIT\", \"Apache-2.0\"]\ndeny = [\"GPL-3.0-only\"]\n",
    )
    .await;
    every_installer_gets(&pw, "demo", Some("1.0")).await;
    let decisions = pw.decisions();
    let denied = decisions
        .iter()
        .find(|d| d["filename"] == "demo-1.1-py3-none-any.whl")
        .unwrap();
    assert_eq!(denied["code"], "license-denied", "{denied}");
    assert!(
        denied["policy"]
            .as_str()
            .unwrap()
            .ends_with("policy.toml:3"),
        "{denied}"
    );
    let shown = decisions
        .iter()
        .find(|d| d["filename"] == "demo-1.0-py3-none-any.whl")
        .unwrap();
    assert_eq!(shown["code"], "wheel-shown", "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_scorecard_score_with_hide_makes_the_project_uninstallable() {
    let up = FakeIndex::start().await;
    up.project("demo", PageFormat::Json, &[wheel("demo", "1.0")]);
    up.project("other", PageFormat::Json, &[wheel("other", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    // As `scorecard --format=json` prints a result, with the Python project's name added.
    let result = |project: &str, score: f64| {
        serde_json::json!({
            "date": "2026-11-20",
            "repo": {"name": format!("github.com/acme/{project}"), "commit": "0a1b2c3"},
            "scorecard": {"version": "v5.1.1", "commit": "d4e5f6a"},
            "score": score,
            "checks": [{"name": "Maintained", "score": 10, "reason": "30 commits in 90 days", "details": null}],
            "metadata": null,
            "project": project,
        })
        .to_string()
    };
    std::fs::write(
        dir.path().join("scorecards.jsonl"),
        format!("{}\n{}\n", result("demo", 2.5), result("other", 8.1)),
    )
    .unwrap();
    let pw = Pipwall::start_with_policy(
        &[up.url()],
        dir.path(),
        "[health]\naction = \"hide\"\ndata = \"scorecards.jsonl\"\nmin-score = 6\n",
    )
    .await;
    every_installer_gets(&pw, "demo", None).await;
    assert!(
        !up.was_requested("/simple/demo/"),
        "a project hidden by its score is not looked up: {:?}",
        up.requests()
    );
    let d = pw
        .decisions()
        .into_iter()
        .find(|d| d["project"] == "demo")
        .unwrap();
    assert_eq!(
        (d["action"].as_str(), d["code"].as_str()),
        (Some("hide"), Some("health-score-low")),
        "{d}"
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("github.com/acme/demo scores 2.5, the minimum is 6.0"),
        "{d}"
    );
    assert!(
        d["policy"].as_str().unwrap().ends_with("policy.toml:4"),
        "{d}"
    );
    // The project whose repository scores above the minimum installs.
    pip_installs(&pw, "other", "other", "1.0").await;
}

fn waive(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .current_dir(dir)
        .args(["policy", "waive"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiver_written_by_policy_waive_lets_the_newer_version_through() {
    let up = old_and_new(&hours_ago(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let cooldown = "[cooldown]\nmin-age = \"7d\"\n";
    std::fs::write(dir.path().join("local.toml"), cooldown).unwrap();
    // explain names the hidden file's code and digest, and the command that waives it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .current_dir(dir.path())
        .args([
            "explain",
            "demo",
            "--no-audit",
            "--policy",
            "local.toml",
            "--upstream",
        ])
        .arg(up.url())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pipwall policy waive demo --code cooldown-too-new --sha256 "),
        "{text}"
    );
    // A waiver that would not load is refused and the file is left as it was.
    let (code, _, err) = waive(
        dir.path(),
        &[
            "demo",
            "--code",
            "cooldown-too-new",
            "--reason",
            "the fix is needed today",
            "--expires",
            "soon",
            "--to",
            "local.toml",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`soon` is not a date"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    // So is one the loader refuses: its problem is shown with its position.
    let (code, _, err) = waive(
        dir.path(),
        &[
            "demo",
            "--rule",
            "cooldown",
            "--versions",
            "=>1",
            "--reason",
            "r",
            "--to",
            "local.toml",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("local.toml:"), "{err}");
    assert!(err.contains("error[bad-specifier]"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("local.toml")).unwrap(),
        cooldown
    );
    // Built-in rules cannot be waived, and the refusal says why.
    let (code, _, err) = waive(
        dir.path(),
        &["demo", "--code", "missing-sha256", "--reason", "r"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("built-in rules"), "{err}");
    let (code, _, err) = waive(
        dir.path(),
        &[
            "demo",
            "--code",
            "cooldown-too-new",
            "--versions",
            "==1.1",
            "--reason",
            "the fix is needed today",
            "--expires",
            "2099-12-31",
            "--to",
            "local.toml",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.path().join("local.toml")).unwrap();
    assert!(text.starts_with(cooldown), "{text}");
    assert!(text.contains("rule = \"cooldown\""), "{text}");
    let (code, out) = policy_check(dir.path(), &["local.toml"]);
    assert_eq!(code, 0, "{out}");

    let pw_dir = tempfile::tempdir().unwrap();
    let pw = Pipwall::start_with_policy(&[up.url()], pw_dir.path(), &text).await;
    let (ok, version, out) = install(&pw, Installer::Pip, "demo").await;
    assert!(ok, "{out}");
    assert_eq!(version.as_deref(), Some("1.1"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn learning_mode_writes_an_allow_list_that_refuses_what_was_not_learned() {
    let up = FakeIndex::start().await;
    up.project(
        "demo",
        PageFormat::Json,
        &[wheel("demo", "1.0"), wheel("demo", "1.1")],
    );
    up.project("other", PageFormat::Json, &[wheel("other", "1.0")]);
    let dir = tempfile::tempdir().unwrap();
    let learned = dir.path().join("learned.toml");
    let learned_arg = learned.display().to_string();
    let cache_arg = dir.path().join("cache").display().to_string();
    // A file --learn did not write is refused at start, not overwritten later.
    std::fs::write(
        dir.path().join("policy.toml"),
        "[cooldown]\nmin-age = \"7d\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"))
        .args(["serve", "--listen", "127.0.0.1:0", "--upstream", &up.url()])
        .args(["--cache-dir", &cache_arg, "--learn"])
        .arg(dir.path().join("policy.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("is not a learned policy fragment (it sets `cooldown`)"),
        "{err}"
    );
    let mut served = Served::start(&[
        "--upstream",
        &up.url(),
        "--cache-dir",
        &cache_arg,
        "--learn",
        &learned_arg,
    ]);
    let home = tempfile::tempdir().unwrap();
    let run = clients()
        .install(
            Installer::Pip,
            &format!("http://{}/simple/", served.addr),
            home.path(),
            &home.path().join("t"),
            &["demo==1.0"],
        )
        .await;
    assert!(run.ok, "{}", run.output);
    // SIGHUP writes what was learned so far; SIGTERM writes it again and stops.
    served.hangup();
    let line = served.wait_for("learned");
    assert!(line.contains("learned 1 project(s)"), "{line}");
    assert!(
        std::fs::read_to_string(&learned)
            .unwrap()
            .contains("\"demo\"")
    );
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let line = served.wait_for("learned");
    assert!(line.contains("learned 1 project(s)"), "{line}");
    assert!(served.child.wait().unwrap().success());

    let text = std::fs::read_to_string(&learned).unwrap();
    assert!(
        text.contains("\n[projects]\nallow = [\n    \"demo\", # downloaded: 1.0\n]\n"),
        "{text}"
    );
    assert!(text.contains("# learned from "), "{text}");
    let (code, out) = policy_check(dir.path(), &["learned.toml"]);
    assert_eq!((code, out.as_str()), (0, ""));

    let served = Served::start(&[
        "--upstream",
        &up.url(),
        "--cache-dir",
        &cache_arg,
        "--policy",
        &learned_arg,
    ]);
    assert_eq!(
        listed_files(served.addr, "/simple/demo/", &[]).await,
        ["demo-1.0-py3-none-any.whl", "demo-1.1-py3-none-any.whl"]
    );
    let r = crate::support::pipwall::raw_get(
        served.addr,
        "/simple/other/",
        Some("application/vnd.pypi.simple.v1+json"),
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(json["files"], serde_json::json!([]), "{json}");
    let reason = json["project-status"]["reason"].as_str().unwrap();
    assert!(reason.contains("project-not-allowed"), "{reason}");
}
