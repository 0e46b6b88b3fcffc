//! Scopes: several indexes in one pipwall, each under its own policy, chosen by the path
//! prefix (`/ci/simple/`), by the listener (`--listen ci=ADDR`) or by the credential (a token
//! bound with `scope=ci`).

use std::sync::Arc;

use crate::policy::{hours_ago, installs, old_and_new};
use crate::support::Pipwall;
use crate::support::clients::{INSTALLERS, Installer};
use crate::support::pipwall::raw_get_with;
use crate::support::served::{Served, listed_files, serve_refuses};

const BOTH: [&str; 2] = ["demo-1.0-py3-none-any.whl", "demo-1.1-py3-none-any.whl"];
const OLD: [&str; 1] = ["demo-1.0-py3-none-any.whl"];
const NEW: &str = "demo-1.1-py3-none-any.whl";

/// A 7-day cooldown written to `dir/ci.toml`: under it only the month-old demo 1.0 shows.
fn cooldown(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("ci.toml");
    std::fs::write(&file, "[cooldown]\nmin-age = \"7d\"\n").unwrap();
    file
}

/// pipwall in-process on demo 1.0 (a month old) and 1.1 (two hours old), the default policy at
/// `/simple/` and the cooldown as scope `ci`, with `users` when given.
async fn two_scopes(
    dir: &std::path::Path,
    users: Option<Arc<pipwall::auth::Users>>,
) -> (crate::support::FakeIndex, Pipwall) {
    let up = old_and_new(&hours_ago(2)).await;
    let (ci, _) = pipwall::policy::load_files(&[cooldown(dir)]).unwrap();
    let ci = Arc::new(ci);
    let pw = Pipwall::start_in(
        tempfile::tempdir().unwrap(),
        &[up.url()],
        pipwall::upstream::Limits::default(),
        None,
        move |s| {
            s.scopes = vec![("ci".into(), ci)];
            s.auth = users;
        },
    )
    .await;
    (up, pw)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scope_serves_its_own_policy_beside_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, pw) = two_scopes(dir.path(), None).await;
    for installer in INSTALLERS {
        for (index, want) in [("simple", "1.1"), ("ci/simple", "1.0")] {
            let url = format!("http://{}/{index}/", pw.addr);
            installs(&url, installer, "demo", "demo", want).await;
        }
    }
    // One file, two verdicts: fetched through the default scope, refused through `ci` with the
    // reason, although the default scope had it in its shown table first.
    let path = new_file_path(&pw, &[]).await;
    assert_eq!(pw.get(&format!("/{path}"), None).await.status, 200);
    let refused = pw.get(&format!("/ci/{path}"), None).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.header("x-pipwall-reason"), Some("cooldown-too-new"));
    // A client that reads JSON gets the same refusal as data.
    let as_json = raw_get_with(
        pw.addr,
        &format!("/ci/{path}"),
        &[("Accept", "application/json")],
    )
    .await;
    assert_eq!(as_json.status, 403);
    assert_eq!(as_json.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&as_json.text()).unwrap();
    assert_eq!(
        (
            body["code"].as_str(),
            body["rule"].as_str(),
            body["status"].as_u64()
        ),
        (Some("cooldown-too-new"), Some("cooldown"), Some(403)),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), as_json.header("x-request-id"));
    assert!(
        body["reason"].as_str().unwrap().contains("cooldown"),
        "{body}"
    );
    // The decision log names the scope that decided.
    let decisions = pw.decisions();
    let cooled: Vec<&serde_json::Value> = decisions
        .iter()
        .filter(|d| d["code"] == "cooldown-too-new")
        .collect();
    assert!(!cooled.is_empty());
    assert!(
        cooled
            .iter()
            .all(|d| d["scope"] == "ci" && d["filename"] == NEW),
        "{cooled:?}"
    );
    assert!(
        decisions
            .iter()
            .any(|d| d["scope"] == "default" && d["filename"] == NEW && d["action"] == "show")
    );
    // `default` names the unscoped index; unknown scopes and pipwall's own pages under a
    // scope are not found; a redirect keeps the scope.
    assert_eq!(
        listed_files(pw.addr, "/default/simple/demo/", &[]).await,
        BOTH
    );
    let unknown = pw.get("/nope/simple/demo/", None).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text().contains("no index named `nope`"),
        "{}",
        unknown.text()
    );
    assert_eq!(pw.get("/ci/metrics", None).await.status, 404);
    let home = pw.get("/ci/", None).await;
    assert!(
        home.text().contains("scope ci is at simple/"),
        "{}",
        home.text()
    );
    let moved = pw.get("/ci/simple/Demo/", None).await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("../demo/"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_bound_to_a_scope_gets_its_policy_everywhere_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let (ci_token, line) = pipwall::auth::new_token(Some("ci")).unwrap();
    pipwall::auth::append_line(&users, &line).unwrap();
    let (free_token, line) = pipwall::auth::new_token(None).unwrap();
    pipwall::auth::append_line(&users, &line).unwrap();
    let loaded = Arc::new(pipwall::auth::Users::load(&users).unwrap());
    let (_up, pw) = two_scopes(dir.path(), Some(loaded)).await;
    let ci = format!("Bearer {ci_token}");
    let free = format!("Bearer {free_token}");
    let as_ci = [("Authorization", ci.as_str())];
    let as_free = [("Authorization", free.as_str())];

    // The bound token is served the cooldown at /simple/ too.
    assert_eq!(listed_files(pw.addr, "/simple/demo/", &as_ci).await, OLD);
    assert_eq!(listed_files(pw.addr, "/ci/simple/demo/", &as_ci).await, OLD);
    let other = raw_get_with(pw.addr, "/default/simple/demo/", &as_ci).await;
    assert_eq!(other.status, 403, "{}", other.text());
    assert!(
        other.text().contains("only the `ci` index"),
        "{}",
        other.text()
    );
    // The decision log says who asked: the token by its digest prefix, and the request id.
    let first = pw.decisions().into_iter().next().unwrap();
    assert!(
        first["client"].as_str().unwrap().starts_with("token:")
            && first["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{first}"
    );
    // An unbound token picks by path.
    assert_eq!(listed_files(pw.addr, "/simple/demo/", &as_free).await, BOTH);
    assert_eq!(
        listed_files(pw.addr, "/ci/simple/demo/", &as_free).await,
        OLD
    );
    // A file the default scope shows is refused to the bound token at the default path.
    let path = new_file_path(&pw, &as_free).await;
    assert_eq!(
        raw_get_with(pw.addr, &format!("/{path}"), &as_free)
            .await
            .status,
        200
    );
    let refused = raw_get_with(pw.addr, &format!("/{path}"), &as_ci).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("x-pipwall-reason"), Some("cooldown-too-new"));

    // pip with the bound token as its password, at the plain index URL, gets the older version.
    let url = format!("http://__token__:{ci_token}@{}/simple/", pw.addr);
    installs(&url, Installer::Pip, "demo", "demo", "1.0").await;
}

/// The download path of demo 1.1 as the default page lists it (relative to the root),
/// asked with `headers`.
async fn new_file_path(pw: &Pipwall, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("Accept", "application/vnd.pypi.simple.v1+json")];
    all.extend_from_slice(headers);
    let r = raw_get_with(pw.addr, "/simple/demo/", &all).await;
    let json: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    json["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == NEW)
        .and_then(|f| f["url"].as_str())
        .and_then(|u| u.strip_prefix("../../"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_binds_a_listener_to_a_scope_and_reloads_every_scope_on_sighup() {
    let up = old_and_new(&hours_ago(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let ci = cooldown(dir.path());
    let ci_arg = format!("ci={}", ci.display());
    let cache = dir.path().join("cache").display().to_string();
    let url = up.url();
    let refused = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--upstream".as_ref(),
            url.as_ref(),
            "--cache-dir".as_ref(),
            cache.as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        serve_refuses(&args)
    };
    // Mistakes stop the start, each with a message that says what to do.
    for (extra, says) in [
        (vec!["--scope", "CI=x.toml"], "not a scope name"),
        (vec!["--scope", "simple=x.toml"], "not a scope name"),
        (vec!["--scope", "ci"], "expected NAME=FILE"),
        (
            vec!["--listen", "nope=127.0.0.1:0"],
            "no scope named `nope`",
        ),
    ] {
        let err = refused(&extra);
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    let users = dir.path().join("users");
    let (_, line) = pipwall::auth::new_token(Some("qa")).unwrap();
    pipwall::auth::append_line(&users, &line).unwrap();
    let users_arg = users.display().to_string();
    let err = refused(&["--scope", &ci_arg, "--auth-file", &users_arg]);
    assert!(err.contains("scope `qa`, which is not served"), "{err}");

    let served = Served::start(&[
        "--upstream",
        &url,
        "--cache-dir",
        &cache,
        "--scope",
        &ci_arg,
        "--listen",
        "ci=127.0.0.1:0",
    ]);
    let line = served.wait_for("as scope ci only");
    let ci_addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(listed_files(served.addr, "/simple/demo/", &[]).await, BOTH);
    assert_eq!(
        listed_files(served.addr, "/ci/simple/demo/", &[]).await,
        OLD
    );
    // The bound listener serves `ci` at /simple/ and nothing else.
    assert_eq!(listed_files(ci_addr, "/simple/demo/", &[]).await, OLD);
    let other = raw_get_with(ci_addr, "/default/simple/demo/", &[]).await;
    assert_eq!(other.status, 403);
    assert!(
        other.text().contains("address serves only the `ci` index"),
        "{}",
        other.text()
    );

    // A broken scope policy keeps every old policy; a good one is put in force.
    std::fs::write(&ci, "[cooldown]\nmin-age = 7\n").unwrap();
    served.hangup();
    served.wait_for("kept the old policy");
    assert_eq!(listed_files(ci_addr, "/simple/demo/", &[]).await, OLD);
    std::fs::write(&ci, "[cooldown]\nmin-age = \"30m\"\n").unwrap();
    served.hangup();
    served.wait_for("reloaded the policy");
    assert_eq!(listed_files(ci_addr, "/simple/demo/", &[]).await, BOTH);
}
