//! The folders under `examples/` work as their READMEs say: each example's own files, copied
//! into a temporary folder with the documented pipwall address replaced by the test's, against
//! a fake upstream. pip, uv, Poetry and PDM run with an environment of nothing but a temporary
//! HOME and a proxy that refuses every host but loopback (`Clients::isolated`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::policy::hours_ago;
use crate::support::clients::{Run, installed_version, project_tools, venv_installed_version};
use crate::support::fixtures::{Fixture, WheelSpec, zip_files};
use crate::support::served::Served;
use crate::support::{FakeIndex, PageFormat, Pipwall, clients, sdist, wheel};

/// Where the examples expect pipwall.
const EXAMPLE_INDEX: &str = "http://127.0.0.1:3141/simple/";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Writes `examples/<rel>` to `dest` with the documented pipwall address replaced by `index`.
fn copy_example(rel: &str, dest: &Path, index: &str) {
    let text = read(&format!("examples/{rel}"));
    assert!(
        text.contains(EXAMPLE_INDEX),
        "examples/{rel} does not point at {EXAMPLE_INDEX}"
    );
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(dest, text.replace(EXAMPLE_INDEX, index)).unwrap();
}

/// Fails unless `readme` shows `line` and `output` has it too: what a README says users see is
/// what they see.
fn documented(readme: &str, output: &str, line: &str) {
    assert!(
        read(readme).contains(line),
        "{readme} does not show {line:?}"
    );
    assert!(output.contains(line), "no {line:?} in:\n{output}");
}

/// A fake upstream serving the bundled example wheelhouse (the one `pipwall serve` fronts when
/// given no upstream, which the developer README has readers try).
async fn wheelhouse_upstream() -> FakeIndex {
    let mut projects: BTreeMap<String, Vec<Fixture>> = BTreeMap::new();
    for entry in std::fs::read_dir(repo().join("examples/wheelhouse")).unwrap() {
        let path = entry.unwrap().path();
        let filename = path.file_name().unwrap().to_str().unwrap().to_owned();
        let project = filename.split('-').next().unwrap().to_owned();
        projects.entry(project).or_default().push(Fixture {
            filename,
            bytes: std::fs::read(&path).unwrap(),
        });
    }
    assert!(projects.contains_key("demo") && projects.contains_key("sdistonly"));
    let up = FakeIndex::start().await;
    for (name, files) in &projects {
        up.project(name, PageFormat::Json, files);
    }
    up
}

/// The real binary with no PIPWALL_* variable of the test's own environment.
fn pipwall_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PIPWALL_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_installed(run: &Run, got: Option<String>, want: &str, what: &str) {
    assert!(run.ok, "{what}: {}", run.output);
    assert_eq!(got.as_deref(), Some(want), "{what}: {}", run.output);
}

/// pipwall decided demo's files: the client asked pipwall, not something else.
fn assert_pipwall_decided_demo(pw: &Pipwall) {
    let codes: BTreeMap<String, String> = pw
        .decisions()
        .iter()
        .map(|d| {
            (
                d["filename"].as_str().unwrap().to_owned(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes.get("demo-1.1-py3-none-any.whl").map(String::as_str),
        Some("wheel-shown")
    );
    assert_eq!(
        codes.get("demo-1.2.tar.gz").map(String::as_str),
        Some("sdist-hidden")
    );
    assert_eq!(
        codes.get("demo-1.3-py3-none-any.whl").map(String::as_str),
        Some("audit-failed")
    );
}

// ---------------------------------------------------------------------------------------------
// examples/developer

#[tokio::test(flavor = "multi_thread")]
async fn developer_pip_installs_through_pipwall_by_pip_conf_env_and_flag() {
    let up = wheelhouse_upstream().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let index = pw.index_url();
    let c = clients();
    let install = |home: PathBuf, args: Vec<String>, env: Vec<(&'static str, String)>| {
        let index = index.clone();
        async move {
            let target = home.join("target");
            let mut all: Vec<String> = ["-m", "pip", "install", "--target"]
                .map(String::from)
                .to_vec();
            all.push(target.display().to_string());
            all.extend(args);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let run = c.run_isolated("python", &home, &home, &all, &env).await;
            assert!(
                run.output.contains(&format!("Looking in indexes: {index}")),
                "{}",
                run.output
            );
            (run, installed_version(&target, "demo"))
        }
    };

    // pip.conf as the user's configuration file.
    let conf_home = tempfile::tempdir().unwrap();
    copy_example(
        "developer/pip.conf",
        &conf_home.path().join("config/pip/pip.conf"),
        &index,
    );
    let (run, v) = install(conf_home.path().into(), vec!["demo".into()], vec![]).await;
    assert_installed(&run, v, "1.1", "pip.conf");

    let env_home = tempfile::tempdir().unwrap();
    let (run, v) = install(
        env_home.path().into(),
        vec!["demo".into()],
        vec![("PIP_INDEX_URL", index.clone())],
    )
    .await;
    assert_installed(&run, v, "1.1", "PIP_INDEX_URL");

    let flag_home = tempfile::tempdir().unwrap();
    let (run, v) = install(
        flag_home.path().into(),
        vec!["--index-url".into(), index.clone(), "demo".into()],
        vec![],
    )
    .await;
    assert_installed(&run, v, "1.1", "--index-url");

    // What a user sees when the version asked for is hidden, or the whole project is.
    let readme = "examples/developer/README.md";
    let hidden_home = tempfile::tempdir().unwrap();
    copy_example(
        "developer/pip.conf",
        &hidden_home.path().join("config/pip/pip.conf"),
        &index,
    );
    let (run, v) = install(hidden_home.path().into(), vec!["demo==1.3".into()], vec![]).await;
    assert!(!run.ok && v.is_none(), "{}", run.output);
    documented(
        readme,
        &run.output,
        "ERROR: Could not find a version that satisfies the requirement demo==1.3 (from versions: 1.0, 1.1)",
    );
    documented(
        readme,
        &run.output,
        "ERROR: No matching distribution found for demo==1.3",
    );
    let (run, _) = install(hidden_home.path().into(), vec!["sdistonly".into()], vec![]).await;
    assert!(!run.ok, "{}", run.output);
    documented(
        readme,
        &run.output,
        "ERROR: No matching distribution found for sdistonly",
    );
    assert_pipwall_decided_demo(&pw);
    assert!(!up.was_requested("demo-1.2.tar.gz"));
    assert!(!up.was_requested("sdistonly-1.0.tar.gz"));

    // `pipwall explain` says why, file by file, as the README shows.
    let out = pipwall_cmd()
        .args(["explain", "demo", "--upstream", &up.url()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let text = output_text(&out);
    for line in [
        "demo: 2 of 4 files shown",
        "  shown   demo-1.0-py3-none-any.whl  [audit-held] not audited yet: listed, and its download waits for its audit (refused if it fails)",
        "  shown   demo-1.1-py3-none-any.whl  [wheel-shown] a wheel that passed every check",
        "  hidden  demo-1.2.tar.gz  [sdist-hidden] source distributions are hidden: building one runs its setup code on the installing machine [policy policies/default.toml:6]",
        "  hidden  demo-1.3-py3-none-any.whl  [audit-failed] the wheel's contents contradict what it claims: record-hash-mismatch in demo/__init__.py (content differs from the hash in RECORD); record-size-mismatch in demo/__init__.py (41 bytes, RECORD says 16) [policy policies/default.toml:10]",
    ] {
        documented(readme, &text, line);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn developer_uv_installs_through_pipwall_by_uv_toml_env_and_project_index() {
    let up = wheelhouse_upstream().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let index = pw.index_url();
    let c = clients();
    let python = c.python().display().to_string();
    let uv_pip = |home: PathBuf, spec: &'static str, env: Vec<(&'static str, String)>| {
        let python = python.clone();
        async move {
            let target = home.join("target").display().to_string();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let args = [
                "pip",
                "install",
                "--no-progress",
                "--python",
                &python,
                "--target",
                &target,
                spec,
            ];
            let run = c.run_isolated("uv", &home, &home, &args, &env).await;
            let v = installed_version(Path::new(&target), "demo");
            (run, v)
        }
    };

    // uv.toml as the user's configuration file.
    let conf_home = tempfile::tempdir().unwrap();
    copy_example(
        "developer/uv.toml",
        &conf_home.path().join("config/uv/uv.toml"),
        &index,
    );
    let (run, v) = uv_pip(conf_home.path().into(), "demo", vec![]).await;
    assert_installed(&run, v, "1.1", "uv.toml");
    for var in ["UV_DEFAULT_INDEX", "UV_INDEX_URL"] {
        let home = tempfile::tempdir().unwrap();
        let (run, v) = uv_pip(home.path().into(), "demo", vec![(var, index.clone())]).await;
        assert_installed(&run, v, "1.1", var);
    }
    let hidden_home = tempfile::tempdir().unwrap();
    copy_example(
        "developer/uv.toml",
        &hidden_home.path().join("config/uv/uv.toml"),
        &index,
    );
    let (run, v) = uv_pip(hidden_home.path().into(), "demo==1.3", vec![]).await;
    assert!(!run.ok && v.is_none(), "{}", run.output);
    documented(
        "examples/developer/README.md",
        &run.output,
        "Because there is no version of demo==1.3 and you require demo==1.3, we can conclude that your requirements are unsatisfiable.",
    );

    // A project whose pyproject.toml names pipwall as its default index: `uv sync`.
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("app");
    copy_example(
        "developer/uv-project/pyproject.toml",
        &project.join("pyproject.toml"),
        &index,
    );
    let run = c
        .run_isolated("uv", home.path(), &project, &["sync", "--no-progress"], &[])
        .await;
    assert_installed(
        &run,
        venv_installed_version(&project.join(".venv"), "demo"),
        "1.1",
        "uv sync",
    );
    let lock = std::fs::read_to_string(project.join("uv.lock")).unwrap();
    assert!(
        lock.contains(&format!("registry = \"{index}\"")) && !lock.contains("demo-1.3"),
        "{lock}"
    );
    assert_pipwall_decided_demo(&pw);
}

#[tokio::test(flavor = "multi_thread")]
async fn developer_poetry_installs_through_pipwall_as_its_primary_source() {
    let up = wheelhouse_upstream().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let index = pw.index_url();
    let c = project_tools();
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("app");
    for file in ["pyproject.toml", "poetry.toml"] {
        let text = read(&format!("examples/developer/poetry-project/{file}"));
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(file), text.replace(EXAMPLE_INDEX, &index)).unwrap();
    }
    assert!(
        read("examples/developer/poetry-project/pyproject.toml").contains(EXAMPLE_INDEX),
        "the Poetry example does not point at {EXAMPLE_INDEX}"
    );
    let run = c
        .run_isolated(
            "poetry",
            home.path(),
            &project,
            &["install", "--no-root"],
            &[],
        )
        .await;
    // virtualenvs.in-project (poetry.toml) puts the environment in ./.venv.
    assert_installed(
        &run,
        venv_installed_version(&project.join(".venv"), "demo"),
        "1.1",
        "poetry install",
    );
    let lock = std::fs::read_to_string(project.join("poetry.lock")).unwrap();
    assert!(
        lock.contains(&format!("url = \"{}\"", index.trim_end_matches('/')))
            && lock.contains("reference = \"pipwall\"")
            && lock.contains("demo-1.1-py3-none-any.whl")
            && !lock.contains("demo-1.3"),
        "{lock}"
    );
    assert_pipwall_decided_demo(&pw);
}

#[tokio::test(flavor = "multi_thread")]
async fn developer_pdm_installs_through_pipwall_as_its_pypi_source() {
    let up = wheelhouse_upstream().await;
    let pw = Pipwall::start(&[up.url()]).await;
    let c = project_tools();
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("app");
    copy_example(
        "developer/pdm-project/pyproject.toml",
        &project.join("pyproject.toml"),
        &pw.index_url(),
    );
    let run = c
        .run_isolated("pdm", home.path(), &project, &["install"], &[])
        .await;
    assert_installed(
        &run,
        venv_installed_version(&project.join(".venv"), "demo"),
        "1.1",
        "pdm install",
    );
    let lock = std::fs::read_to_string(project.join("pdm.lock")).unwrap();
    assert!(
        lock.contains("demo-1.1-py3-none-any.whl") && !lock.contains("demo-1.3"),
        "{lock}"
    );
    assert_pipwall_decided_demo(&pw);
}

// ---------------------------------------------------------------------------------------------
// examples/ci

/// A wheel whose METADATA requires `requires`.
fn wheel_requiring(name: &str, version: &str, requires: &[&str]) -> Fixture {
    let mut metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    for r in requires {
        metadata.push_str(&format!("Requires-Dist: {r}\n"));
    }
    let module = name.replace('-', "_");
    WheelSpec {
        metadata: Some(metadata),
        ..WheelSpec::new(name, version, "py3-none-any")
    }
    .file(
        &format!("{module}/__init__.py"),
        format!("VERSION = '{version}'\n"),
    )
    .build()
}

/// The GitHub Actions workflow, parsed.
fn workflow() -> serde_json::Value {
    serde_saphyr::from_str(&read("examples/ci/github-actions.yml")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_script_vets_then_installs_the_lock_and_fails_readably_outside_it() {
    let marker = tempfile::tempdir().unwrap();
    let app = wheel_requiring("app", "1.0", &["helper>=1"]);
    let helper = wheel("helper", "1.0");
    let legacy = sdist("legacy", "1.0", &marker.path().join("setup-py-ran"));
    let up = FakeIndex::start().await;
    up.project(
        "app",
        PageFormat::Json,
        &[app.clone(), wheel_requiring("app", "1.1", &["helper>=1"])],
    );
    up.project("helper", PageFormat::Json, std::slice::from_ref(&helper));
    up.project("legacy", PageFormat::Json, std::slice::from_ref(&legacy));

    // The job as the workflow runs it: the project checked out, pipwall's repository at
    // .pipwall, the job's environment, and its step's own command line.
    let wf = workflow();
    let job = &wf["jobs"]["install"];
    let step = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| {
            s["run"]
                .as_str()
                .filter(|r| r.contains("install-locked.sh"))
        })
        .expect("no step runs install-locked.sh")
        .to_owned();
    assert!(
        job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["run"].as_str().is_some_and(|r| r
                .contains("cargo build --release --locked --manifest-path .pipwall/Cargo.toml"))),
        "the workflow does not build pipwall where PIPWALL points"
    );
    let mut env: Vec<(String, String)> = job["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .filter(|(_, v)| !v.starts_with("${{"))
        .collect();
    assert!(
        env.iter()
            .any(|(k, v)| k == "PIPWALL" && v == ".pipwall/target/release/pipwall")
    );
    env.retain(|(k, _)| k != "PIPWALL");
    env.push(("PIPWALL".into(), env!("CARGO_BIN_EXE_pipwall").into()));
    env.push(("PIPWALL_UPSTREAM".into(), up.url()));

    let c = clients();
    let job = |requirements: String| {
        let env = env.clone();
        let step = step.clone();
        async move {
            let home = tempfile::tempdir().unwrap();
            let project = home.path().join("project");
            std::fs::create_dir_all(&project).unwrap();
            std::os::unix::fs::symlink(repo(), project.join(".pipwall")).unwrap();
            std::fs::write(project.join("requirements.txt"), requirements).unwrap();
            let target = home.path().join("installed");
            let mut vars: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            // pip installs into a folder of the test's, not into the shared venv.
            let target_arg = target.display().to_string();
            vars.push(("PIP_TARGET", &target_arg));
            let run = c
                .run_isolated("/bin/bash", home.path(), &project, &["-c", &step], &vars)
                .await;
            (run, home, target)
        }
    };
    let pin = |f: &Fixture, req: &str| format!("{req} \\\n    --hash=sha256:{}\n", f.sha256());
    let readme = "examples/ci/README.md";

    // Everything pinned: vetted, then installed, exactly the pinned versions.
    let (run, home, target) = job(pin(&app, "app==1.0") + &pin(&helper, "helper==1.0")).await;
    assert!(run.ok, "{}", run.output);
    assert!(
        run.output
            .contains("vet: 2 projects, 0 would fail to install"),
        "{}",
        run.output
    );
    assert_eq!(installed_version(&target, "app").as_deref(), Some("1.0"));
    assert_eq!(installed_version(&target, "helper").as_deref(), Some("1.0"));
    // The decision log is where the workflow uploads it from, and the vet warmed serve's cache.
    let log = std::fs::read_to_string(home.path().join("project/pipwall-decisions.jsonl")).unwrap();
    assert!(
        log.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .any(|d| d["filename"] == "app-1.1-py3-none-any.whl" && d["code"] == "not-in-lock"),
        "{log}"
    );
    assert!(home.path().join("project/.pipwall-cache/audits").is_dir());

    // A dependency the lock does not pin: the vet passes (it checks what is pinned), pip
    // cannot find it, and the script says which project pipwall hid and why.
    let (run, _home, target) = job(pin(&app, "app==1.0")).await;
    assert!(!run.ok, "{}", run.output);
    for line in [
        "ERROR: No matching distribution found for helper>=1 (from app)",
        "install-locked: pipwall hid helper: project-not-in-lock: the project is not pinned by the policy's lock files [policy .pipwall/policies/ci-locked.toml:10]",
        "install-locked: pip failed; pin every dependency in requirements.txt with its --hash",
    ] {
        documented(readme, &run.output, line);
    }
    assert_eq!(installed_version(&target, "app"), None);

    // A pin whose only file is an sdist: the vet stops the job before pip runs.
    let (run, _home, target) =
        job(pin(&app, "app==1.0") + &pin(&helper, "helper==1.0") + &pin(&legacy, "legacy==1.0"))
            .await;
    assert!(!run.ok, "{}", run.output);
    for line in [
        "legacy: FAILS: 0 of 1 pinned files shown (pinned at requirements.txt:5)",
        "  hidden  legacy-1.0.tar.gz  [sdist-hidden] source distributions are hidden: building one runs its setup code on the installing machine [policy .pipwall/policies/ci-locked.toml:15]",
        "vet: 3 projects, 1 would fail to install",
        "install-locked: a pinned project has no file pipwall would serve (see above); nothing was installed",
    ] {
        documented(readme, &run.output, line);
    }
    assert!(!run.output.contains("pip install --require-hashes"));
    assert_eq!(installed_version(&target, "app"), None);
    assert!(!up.was_requested("legacy-1.0.tar.gz"));
    assert!(!marker.path().join("setup-py-ran").exists());
}

// ---------------------------------------------------------------------------------------------
// examples/gateway

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `KEY=VALUE` lines of an environment file.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The value of `key=` in a unit file (the first one).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Absolute paths of the gateway examples, moved under `root`.
fn remap(text: &str, root: &Path) -> String {
    let mut out = text.to_owned();
    for dir in [
        "/etc/pipwall",
        "/etc/prometheus",
        "/var/lib/pipwall",
        "/var/cache/pipwall",
        "/var/log/pipwall",
        "/usr/local/share/pipwall",
    ] {
        out = out.replace(dir, &format!("{}{dir}", root.display()));
    }
    out
}

/// OSV records, as a zip of `<id>.json` files (an OSV export's layout).
fn osv_zip(records: &[serde_json::Value]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                format!("{}.json", r["id"].as_str().unwrap()),
                r.to_string().into_bytes(),
            )
        })
        .collect();
    zip_files(&files)
}

fn osv_record(id: &str, project: &str, versions: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "modified": jiff::Timestamp::now().to_string(),
        "summary": format!("test record for {project}"),
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": project},
            "versions": versions,
        }],
    })
}

#[test]
fn gateway_units_pass_systemd_analyze_verify_and_are_hardened() {
    let units = [
        "pipwall.service",
        "pipwall-refresh.service",
        "pipwall-refresh.timer",
    ];
    let service = read("examples/gateway/pipwall.service");
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "PrivateTmp=yes",
        "StateDirectory=pipwall",
        "CacheDirectory=pipwall",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "pipwall.service lacks {line}"
        );
    }
    // No capability at all, so the port must not need one.
    assert_eq!(unit_value(&service, "AmbientCapabilities"), Some(""));
    let env = env_file(&read("examples/gateway/pipwall.env"));
    let listen = &env.iter().find(|(k, _)| k == "PIPWALL_LISTEN").unwrap().1;
    let port: u16 = listen.rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 1024, "{listen} needs CAP_NET_BIND_SERVICE");

    if !which("systemd-analyze") {
        eprintln!("note: systemd-analyze is not installed; the units were not verified");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in units {
        let text = read(&format!("examples/gateway/{unit}"))
            .replace("/usr/local/bin/pipwall", env!("CARGO_BIN_EXE_pipwall"))
            .replace(
                "/usr/local/lib/pipwall/refresh-data.sh",
                &repo()
                    .join("examples/gateway/refresh-data.sh")
                    .display()
                    .to_string(),
            );
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(units.map(|u| dir.path().join(u)))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify warned:\n{text}"
    );

    // systemd's own exposure score (0 best, 10 worst; "OK" is below 3).
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(dir.path().join("pipwall.service"))
        .output()
        .unwrap();
    let text = output_text(&out);
    if !out.status.success() && text.contains("offline") {
        eprintln!("note: this systemd-analyze cannot score units offline");
        return;
    }
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("pipwall.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    assert!(score <= 2.0, "exposure {score}:\n{text}");
}

/// The gateway as README.md sets it up, with every absolute path moved under a temporary root:
/// the refresh job fetches OSV data, pipwall starts with the unit's command line and the
/// environment file, serves HTTPS to a logged-in pip under the strict policy, writes the
/// decision log the log shipper reads and answers Prometheus' scrape; a refresh that brings a
/// malware report, followed by the unit's ExecReload, hides the reported version.
#[tokio::test(flavor = "multi_thread")]
async fn gateway_serves_tls_and_auth_under_strict_policy_with_refreshed_data() {
    for tool in ["curl", "unzip"] {
        if !which(tool) {
            eprintln!("note: {tool} is not installed; the gateway example was not run");
            return;
        }
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let bin = env!("CARGO_BIN_EXE_pipwall");

    let up = FakeIndex::start().await;
    up.project_timed(
        "demo",
        &[
            (wheel("demo", "1.0"), &hours_ago(24 * 30)),
            (wheel("demo", "1.1"), &hours_ago(24 * 20)),
            (wheel("demo", "1.2"), &hours_ago(2)),
        ],
    );
    up.set(
        "/osv/advisories.zip",
        200,
        "application/zip",
        osv_zip(&[osv_record("PYSEC-2099-1", "other", &["0.1"])]),
    );
    up.set(
        "/osv/malware.zip",
        200,
        "application/zip",
        osv_zip(&[osv_record("MAL-2099-1", "evil", &["1.0"])]),
    );

    // /etc/pipwall/pipwall.env, with the placeholders pointed at the fake.
    let mut env: Vec<(String, String)> = env_file(&read("examples/gateway/pipwall.env"))
        .into_iter()
        .map(|(k, v)| (k, remap(&v, root)))
        .collect();
    for (key, value) in [
        ("PIPWALL_UPSTREAM", up.url()),
        (
            "PIPWALL_ADVISORIES_URL",
            format!("http://{}/osv/advisories.zip", up.addr),
        ),
        (
            "PIPWALL_MALWARE_URL",
            format!("http://{}/osv/malware.zip", up.addr),
        ),
        ("PIPWALL_LISTEN", "127.0.0.1:0".to_owned()),
    ] {
        let slot = env.iter_mut().find(|(k, _)| k == key).unwrap();
        assert!(
            key == "PIPWALL_LISTEN" || slot.1.contains(".example.internal/"),
            "{key} should be a placeholder: {}",
            slot.1
        );
        slot.1 = value;
    }
    let var = |key: &str| env.iter().find(|(k, _)| k == key).unwrap().1.clone();
    let pipwall = |args: &[&str]| {
        let mut cmd = pipwall_cmd();
        cmd.args(args);
        cmd
    };

    // Installation: the strict policy, a certificate, a user and a token.
    std::fs::create_dir_all(remap("/etc/pipwall", root)).unwrap();
    std::fs::copy(repo().join("policies/strict.toml"), var("PIPWALL_POLICY")).unwrap();
    let tls = remap("/etc/pipwall/tls", root);
    let out = pipwall(&[
        "certs",
        "init",
        &tls,
        "--name",
        "pipwall.example.internal",
        "--name",
        "127.0.0.1",
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let users = var("PIPWALL_AUTH_FILE");
    let mut add = pipwall(&["auth", "add-user", &users, "alice"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    assert!(add.wait().unwrap().success());
    let out = pipwall(&["auth", "add-token", &users]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // The refresh job, as pipwall-refresh.service runs it.
    let refresh = || {
        let out = std::process::Command::new("sh")
            .arg(repo().join("examples/gateway/refresh-data.sh"))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PIPWALL", bin)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
    };
    refresh();
    let data = PathBuf::from(var("PIPWALL_DATA"));
    assert!(data.is_symlink() && data.join("malware/MAL-2099-1.json").is_file());

    // pipwall.service's ExecStart, expanded from the environment file.
    let unit = read("examples/gateway/pipwall.service");
    let exec: Vec<String> = unit_value(&unit, "ExecStart")
        .unwrap()
        .split_whitespace()
        .map(|w| {
            env.iter().fold(remap(w, root), |w, (k, v)| {
                w.replace(&format!("${{{k}}}"), v)
            })
        })
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/pipwall");
    assert!(!exec.iter().any(|w| w.contains("${")), "{exec:?}");
    std::fs::create_dir_all(remap("/var/log/pipwall", root)).unwrap();
    let mut cmd = std::process::Command::new(bin);
    cmd.args(&exec[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let served = Served::spawn(cmd);
    let url = served.url.clone();
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("not HTTPS on loopback: {url}"))
        .to_owned();
    let ca = format!("{tls}/ca.pem");
    let index = format!("https://alice:s3cret@127.0.0.1:{port}/simple/");

    let c = clients();
    let pip_install = || async {
        let home = tempfile::tempdir().unwrap();
        let target = home.path().join("t").display().to_string();
        let run = c
            .run_isolated(
                "python",
                home.path(),
                home.path(),
                &[
                    "-m",
                    "pip",
                    "install",
                    "--target",
                    &target,
                    "--index-url",
                    &index,
                    "demo",
                ],
                &[("SSL_CERT_FILE", &ca)],
            )
            .await;
        assert!(run.ok, "{}", run.output);
        assert!(!run.output.contains("s3cret"), "{}", run.output);
        installed_version(Path::new(&target), "demo")
    };
    // 1.2 is two hours old: the 7-day cooldown hides it.
    assert_eq!(pip_install().await.as_deref(), Some("1.1"));

    // A malware report on 1.1 arrives with the next refresh; ExecReload applies it.
    up.set(
        "/osv/malware.zip",
        200,
        "application/zip",
        osv_zip(&[
            osv_record("MAL-2099-1", "evil", &["1.0"]),
            osv_record("MAL-2099-2", "demo", &["1.1"]),
        ]),
    );
    refresh();
    let sets: Vec<_> = std::fs::read_dir(data.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".set-"))
        .collect();
    assert_eq!(sets.len(), 1, "old data sets are removed");
    let reload = unit_value(&unit, "ExecReload")
        .unwrap()
        .replace("$MAINPID", &served.child.id().to_string());
    let reload: Vec<&str> = reload.split_whitespace().collect();
    assert!(
        std::process::Command::new(reload[0])
            .args(&reload[1..])
            .status()
            .unwrap()
            .success()
    );
    // SIGHUP reloads the certificate, then the users file, then the policy with its data.
    served.wait_for("pipwall: reloaded the TLS certificate");
    served.wait_for("pipwall: reloaded the users file");
    served.wait_for("pipwall: reloaded the policy");
    assert_eq!(pip_install().await.as_deref(), Some("1.0"));

    // The decision log: where the unit writes it, where the log shipper reads it, one JSON
    // object a line with the fields and time format the shipper's parser expects.
    let decision_log = exec
        .iter()
        .position(|w| w == "--decision-log")
        .map(|i| exec[i + 1].clone())
        .unwrap();
    let shipper: serde_json::Value =
        serde_saphyr::from_str(&read("examples/gateway/fluent-bit.yaml")).unwrap();
    let input = &shipper["pipeline"]["inputs"][0];
    assert_eq!(remap(input["path"].as_str().unwrap(), root), decision_log);
    let parser = shipper["parsers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == input["parser"])
        .unwrap();
    assert_eq!(parser["format"], "json");
    assert_eq!(parser["time_format"], "%Y-%m-%dT%H:%M:%S.%LZ");
    let time_key = parser["time_key"].as_str().unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&decision_log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for d in &lines {
        let t = d[time_key].as_str().unwrap();
        let (secs, frac) = t.split_once('.').unwrap_or_else(|| panic!("{t}"));
        assert!(
            jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", secs).is_ok()
                && frac.ends_with('Z')
                && frac[..frac.len() - 1].bytes().all(|b| b.is_ascii_digit()),
            "{t} does not match the shipper's time format"
        );
    }
    let code_of = |file: &str| {
        lines
            .iter()
            .rev()
            .find(|d| d["filename"] == file)
            .map(|d| (d["code"].clone(), d["policy"].clone()))
            .unwrap_or_else(|| panic!("no decision for {file}"))
    };
    let (code, policy) = code_of("demo-1.2-py3-none-any.whl");
    assert_eq!(code, "cooldown-too-new");
    assert!(
        policy.as_str().unwrap().contains("strict.toml:"),
        "{policy}"
    );
    assert_eq!(code_of("demo-1.1-py3-none-any.whl").0, "malicious");

    // Prometheus' scrape job: the token file, the CA, and the target's name in the certificate.
    let scrape: serde_json::Value =
        serde_saphyr::from_str(&read("examples/gateway/prometheus.yml")).unwrap();
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["scheme"], "https");
    assert_eq!(job["authorization"]["type"], "Bearer");
    let token_file = remap(
        job["authorization"]["credentials_file"].as_str().unwrap(),
        root,
    );
    let ca_file = remap(job["tls_config"]["ca_file"].as_str().unwrap(), root);
    std::fs::create_dir_all(Path::new(&token_file).parent().unwrap()).unwrap();
    std::fs::write(&token_file, &token).unwrap();
    std::fs::copy(&ca, &ca_file).unwrap();
    let target = job["static_configs"][0]["targets"][0].as_str().unwrap();
    let host = target.split(':').next().unwrap();
    let scrape_url = format!(
        "https://{host}:{port}{}",
        job["metrics_path"].as_str().unwrap()
    );
    let curl = |auth: Option<String>| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--noproxy", "*", "--cacert", &ca_file])
            .args(["--resolve", &format!("{host}:{port}:127.0.0.1")])
            .args(["-w", "\n%{http_code}"]);
        if let Some(a) = auth {
            cmd.args(["-H", &a]);
        }
        let out = cmd.arg(&scrape_url).output().unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let token = std::fs::read_to_string(&token_file).unwrap();
    let metrics = curl(Some(format!("Authorization: Bearer {token}")));
    assert!(metrics.ends_with("\n200"), "{metrics}");
    assert!(
        metrics.contains("pipwall_decisions_total{code=\"malicious\"}"),
        "{metrics}"
    );
    assert!(curl(None).ends_with("\n401"));
}

/// The Containerfile cannot be built here (no container engine), so its parts are checked:
/// the build stage's COPY sources are enough for `cargo` to accept the package and lock file,
/// the last stage runs as a non-root user, and its ENTRYPOINT with its ENV (paths as the COPY
/// lines lay them out) starts a pipwall that serves under the strict policy.
#[tokio::test(flavor = "multi_thread")]
async fn gateway_containerfile_copies_what_the_build_needs_and_its_entrypoint_serves() {
    let text = read("examples/gateway/Containerfile").replace("\\\n", " ");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "two stages");
    assert!(lines[froms[0]].starts_with("FROM rust:") && lines[froms[0]].ends_with(" AS build"));
    assert!(lines[froms[1]].contains("-slim"), "{}", lines[froms[1]]);
    let (build, run) = (&lines[froms[0]..froms[1]], &lines[froms[1]..]);
    assert!(build.contains(&"RUN cargo build --release --locked"));
    assert!(build.contains(&"WORKDIR /src"));

    let context = tempfile::tempdir().unwrap();
    for line in build.iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (sources, _) = words.split_at(words.len() - 1);
        for src in sources {
            let from = repo().join(src.trim_end_matches('/'));
            assert!(from.exists(), "COPY {src}: no such path");
            let to = context.path().join(src.trim_end_matches('/'));
            let out = std::process::Command::new("cp")
                .arg("-r")
                .arg(&from)
                .arg(&to)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", output_text(&out));
        }
    }
    // Only the packages of the host's target: the image builds for Linux, and a registry
    // cache that never held a Windows-only crate (a fresh machine's) must not fail the check.
    let rustc = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    // `.ci/run` runs this test once more with PIPWALL_TEST_CARGO_HOME naming a cargo home that
    // holds only what a fresh machine's host build fetched, to prove the check needs no more.
    let mut fetch = std::process::Command::new("cargo");
    if let Some(home) = std::env::var_os("PIPWALL_TEST_CARGO_HOME") {
        fetch.env("CARGO_HOME", home);
    }
    let out = fetch
        .args([
            "fetch",
            "--locked",
            "--offline",
            "--target",
            &host,
            "--manifest-path",
        ])
        .arg(context.path().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the build stage's COPY lines miss something cargo reads:\n{}",
        output_text(&out)
    );
    // Files the compiler reads through include_str!/include_bytes! are copied too.
    for file in rust_files(&repo().join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let includes = ["include_str!(\"", "include_bytes!(\""]
            .into_iter()
            .flat_map(|m| text.split(m).skip(1));
        for piece in includes {
            let Some(rel) = piece.split('"').next() else {
                continue;
            };
            let included = file.parent().unwrap().join(rel).canonicalize().unwrap();
            let inside = included
                .strip_prefix(repo().canonicalize().unwrap())
                .unwrap();
            assert!(
                context.path().join(inside).is_file(),
                "{} includes {}, which the build stage does not copy",
                file.display(),
                inside.display()
            );
        }
    }

    assert!(run.contains(&"COPY --from=build /src/target/release/pipwall /usr/local/bin/pipwall"));
    let user = run
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("no USER");
    let uid: u32 = user.split(':').next().unwrap().parse().unwrap();
    assert_ne!(uid, 0);
    let mut env: Vec<(String, String)> = Vec::new();
    for line in run.iter().filter_map(|l| l.strip_prefix("ENV ")) {
        for pair in line.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap();
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    let policies = run
        .iter()
        .find_map(|l| l.strip_prefix("COPY policies/ "))
        .expect("the policies are not copied")
        .trim_end_matches('/')
        .to_owned();
    let entry: Vec<String> = serde_json::from_str(
        run.iter()
            .find_map(|l| l.strip_prefix("ENTRYPOINT "))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(entry[0], "/usr/local/bin/pipwall");

    // Run it: the image's paths moved under a temporary root, fresh advisory data, a fake
    // upstream.
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let up = FakeIndex::start().await;
    up.project_timed("demo", &[(wheel("demo", "1.0"), &hours_ago(24 * 30))]);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pipwall"));
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in &env {
        let v = v.replace(&policies, &repo().join("policies").display().to_string());
        cmd.env(k, remap(&v, root));
    }
    let data = PathBuf::from(remap(
        &env.iter().find(|(k, _)| k == "PIPWALL_DATA").unwrap().1,
        root,
    ));
    for (feed, record) in [
        ("advisories", osv_record("PYSEC-2099-1", "other", &["0.1"])),
        ("malware", osv_record("MAL-2099-1", "evil", &["1.0"])),
    ] {
        std::fs::create_dir_all(data.join(feed)).unwrap();
        std::fs::write(data.join(feed).join("r.json"), record.to_string()).unwrap();
    }
    cmd.args(
        entry[1..]
            .iter()
            .map(|a| a.replace("0.0.0.0:3141", "127.0.0.1:0")),
    )
    .env("PIPWALL_UPSTREAM", up.url());
    let served = Served::spawn(cmd);
    let url = served.url.clone();
    let addr: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let page = crate::support::pipwall::raw_get(addr, "/simple/demo/", None).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("demo-1.0-py3-none-any.whl"));
    drop(served);
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Measurement (not part of the suite): 20 packages through pipwall and straight from upstream.
// cargo test --release --test it examples:: -- --ignored --nocapture

/// `bench-p01` … `bench-p20`, two versions each; p(i) requires p(i+1) and p(i+3), so
/// installing p01 installs all twenty.
fn twenty_packages(up: &FakeIndex) {
    for i in 1..=20 {
        let name = format!("bench-p{i:02}");
        let requires: Vec<String> = [i + 1, i + 3]
            .into_iter()
            .filter(|&j| j <= 20)
            .map(|j| format!("bench-p{j:02}>=1.0"))
            .collect();
        let requires: Vec<&str> = requires.iter().map(String::as_str).collect();
        let module = name.replace('-', "_");
        let files = ["1.0", "1.1"].map(|v| {
            let metadata: String = requires
                .iter()
                .map(|r| format!("Requires-Dist: {r}\n"))
                .collect();
            WheelSpec {
                metadata: Some(format!(
                    "Metadata-Version: 2.1\nName: {name}\nVersion: {v}\n{metadata}"
                )),
                ..WheelSpec::new(&name, v, "py3-none-any")
            }
            .file(
                &format!("{module}/__init__.py"),
                format!("VERSION = '{v}'\n"),
            )
            // Some bulk, as a small library has: 20 kB of module.
            .file(
                &format!("{module}/data.py"),
                format!("DATA = {:?}\n", "x".repeat(20_000)),
            )
            .build()
        });
        up.project(&name, PageFormat::Html, &files);
    }
}

#[derive(Clone, Copy, Debug)]
enum Tool {
    Pip,
    Uv,
    Poetry,
    Pdm,
}

/// One cold-client install of bench-p01 (fresh HOME, caches and target) from `index`; the
/// wall time of the installer's process.
async fn timed_install(tool: Tool, index: &str) -> Duration {
    let c = project_tools();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let target = h.join("target").display().to_string();
    let python = c.python().display().to_string();
    let project = h.join("app");
    let pyproject = |example: &str| {
        std::fs::create_dir_all(&project).unwrap();
        let text = read(&format!("examples/developer/{example}/pyproject.toml"))
            .replace(EXAMPLE_INDEX, index)
            .replace("\"demo\"", "\"bench-p01\"");
        std::fs::write(project.join("pyproject.toml"), text).unwrap();
    };
    let (program, cwd, args): (&str, &Path, Vec<&str>) = match tool {
        Tool::Pip => (
            "python",
            h,
            vec![
                "-m",
                "pip",
                "install",
                "--target",
                &target,
                "--index-url",
                index,
                "bench-p01",
            ],
        ),
        Tool::Uv => (
            "uv",
            h,
            vec![
                "pip",
                "install",
                "--no-progress",
                "--python",
                &python,
                "--target",
                &target,
                "--index-url",
                index,
                "bench-p01",
            ],
        ),
        Tool::Poetry => {
            pyproject("poetry-project");
            std::fs::copy(
                repo().join("examples/developer/poetry-project/poetry.toml"),
                project.join("poetry.toml"),
            )
            .unwrap();
            ("poetry", &project, vec!["install", "--no-root"])
        }
        Tool::Pdm => {
            pyproject("pdm-project");
            ("pdm", &project, vec!["install"])
        }
    };
    let started = Instant::now();
    let run = c.run_isolated(program, h, cwd, &args, &[]).await;
    let took = started.elapsed();
    assert!(run.ok, "{tool:?} from {index}: {}", run.output);
    let installed = match tool {
        Tool::Pip | Tool::Uv => installed_version(Path::new(&target), "bench_p20"),
        Tool::Poetry | Tool::Pdm => venv_installed_version(&project.join(".venv"), "bench_p20"),
    };
    assert_eq!(
        installed.as_deref(),
        Some("1.1"),
        "{tool:?}: {}",
        run.output
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn measure_twenty_packages_through_pipwall_against_direct() {
    const ROUNDS: usize = 7;
    let up = FakeIndex::start().await;
    twenty_packages(&up);
    let pw = Pipwall::start(&[up.url()]).await;
    let direct = up.url();
    let through = pw.index_url();
    println!("20 packages (bench-p01 pulls in the other 19), cold client caches, warm pipwall;");
    println!("median of {ROUNDS} runs, direct and through pipwall alternating");
    println!(
        "{:<8} {:>12} {:>12} {:>8}   all runs (ms)",
        "client", "direct ms", "pipwall ms", "ratio"
    );
    for tool in [Tool::Pip, Tool::Uv, Tool::Poetry, Tool::Pdm] {
        // Warm-up: pipwall fetches, audits and caches every wheel; the client's own first run.
        timed_install(tool, &through).await;
        timed_install(tool, &direct).await;
        let (mut d, mut p) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            if round % 2 == 0 {
                d.push(timed_install(tool, &direct).await);
                p.push(timed_install(tool, &through).await);
            } else {
                p.push(timed_install(tool, &through).await);
                d.push(timed_install(tool, &direct).await);
            }
        }
        let ms = |v: &[Duration]| {
            v.iter()
                .map(|d| d.as_millis().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let (dm, pm) = (median(d.clone()), median(p.clone()));
        println!(
            "{:<8} {:>12} {:>12} {:>8.3}   direct [{}] pipwall [{}]",
            format!("{tool:?}"),
            dm.as_millis(),
            pm.as_millis(),
            pm.as_secs_f64() / dm.as_secs_f64(),
            ms(&d),
            ms(&p)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// examples/cluster

/// The example's scripts, with every port and folder this test's own; `down.sh` on drop.
struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cluster {
    fn script(&self, args: &[&str]) -> std::process::Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/cluster")
            .join(args[0]);
        std::process::Command::new("bash")
            .arg(script)
            .args(&args[1..])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.script(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{args:?}: {text}");
        text
    }

    fn psql(&self, sql: &str) -> String {
        let port = &self.env.iter().find(|(k, _)| k == "PG_PORT").unwrap().1;
        let password = std::fs::read_to_string(self.dir.path().join("pg/password")).unwrap();
        crate::support::postgres::psql_at(
            Path::new("psql"),
            port.parse().unwrap(),
            password.trim(),
            "pipwall",
            sql,
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.script(&["down.sh"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_installs_through_the_balancer_with_pip_and_uv_and_audits_each_wheel_once() {
    use crate::support::postgres::free_port;
    let up = wheelhouse_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    // PostgreSQL runs as nobody when the tests run as root: it must reach its folder.
    #[cfg(unix)]
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let balancer = ports[4];
    let cluster = Cluster {
        env: vec![
            ("CLUSTER_DIR".into(), dir.path().display().to_string()),
            ("PIPWALL".into(), env!("CARGO_BIN_EXE_pipwall").into()),
            ("PIPWALL_UPSTREAM".into(), up.url()),
            ("PG_PORT".into(), ports[0].to_string()),
            (
                "REPLICA_PORTS".into(),
                format!("{} {} {}", ports[1], ports[2], ports[3]),
            ),
            ("BALANCER_PORT".into(), balancer.to_string()),
            ("STATE_LEASE".into(), "5".into()),
        ],
        dir,
    };
    let said = cluster.run(&["up.sh"]);
    assert!(
        said.contains(&format!("balancer: http://127.0.0.1:{balancer}/simple/")),
        "{said}"
    );
    let index = format!("http://127.0.0.1:{balancer}/simple/");
    let c = clients();
    // `pip install --target` of `spec` through the balancer, into a fresh home, which must
    // install demo `want`.
    let pip_installs = |spec: &'static str, want: &'static str, what: &'static str| {
        let index = index.clone();
        async move {
            let home = tempfile::tempdir().unwrap();
            let target = home.path().join("target");
            let run = c
                .pip(
                    &index,
                    home.path(),
                    &["install", "--target", target.to_str().unwrap(), spec],
                )
                .await;
            assert_installed(&run, installed_version(&target, "demo"), want, what);
        }
    };

    pip_installs("demo", "1.1", "pip through the balancer").await;
    let uv_home = tempfile::tempdir().unwrap();
    let uv_target = uv_home.path().join("target");
    let run = c
        .uv_install(&index, uv_home.path(), &uv_target, &["demo"])
        .await;
    assert_installed(
        &run,
        installed_version(&uv_target, "demo"),
        "1.1",
        "uv through the balancer",
    );

    // Round robin spread the requests, yet each audited wheel has one report, made once.
    let reports = cluster.psql("SELECT filename FROM pipwall_reports ORDER BY filename");
    assert!(reports.contains("demo-1.1-py3-none-any.whl"), "{reports}");
    assert_eq!(cluster.psql("SELECT count(*) FROM pipwall_claims"), "0");
    let mut audited = 0.0;
    let mut answered = 0;
    for port in &ports[1..4] {
        let m = http_text(&format!("http://127.0.0.1:{port}/metrics")).await;
        audited += m
            .lines()
            .filter(|l| l.starts_with("pipwall_audits_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        answered += usize::from(m.contains(r#"pipwall_requests_total{route="project""#));
    }
    let wheels = reports.lines().count() as f64;
    assert_eq!(audited, wheels, "one audit per wheel across the cluster");
    assert!(answered >= 2, "the balancer used one replica only");

    // One replica stopped: the balancer's health check takes it out and installs go on.
    cluster.run(&["replica.sh", "stop", "2"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    pip_installs("demo==1.0", "1.0", "with a replica down").await;

    // PostgreSQL stopped: no replica is ready, yet the balancer still answers decided pages.
    cluster.run(&["postgres.sh", "stop"]);
    let balancer_addr: std::net::SocketAddr = format!("127.0.0.1:{balancer}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::support::pipwall::raw_get(balancer_addr, "/readyz", None)
        .await
        .status
        != 503
    {
        assert!(
            Instant::now() < deadline,
            "replicas stayed ready without PostgreSQL"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Past two failed health checks (1 s apart): HAProxy has taken every replica out of
    // the ready backend by now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..3 {
        let page = crate::support::pipwall::raw_get(balancer_addr, "/simple/demo/", None).await;
        assert_eq!(page.status, 200, "{}", page.text());
        assert!(
            page.text().contains("demo-1.1-py3-none-any.whl"),
            "{}",
            page.text()
        );
    }
}

/// A GET's body, over plain HTTP/1.1 on loopback.
async fn http_text(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let addr: std::net::SocketAddr = host.parse().unwrap();
    crate::support::pipwall::raw_get(addr, &format!("/{path}"), None)
        .await
        .text()
}
