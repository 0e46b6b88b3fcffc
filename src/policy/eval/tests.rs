use super::*;
use crate::index::{CoreMetadata, FileUrl, ProjectPage};
use crate::policy::config::load_sources;
use crate::policy::page::{AuditState, FileDecision, apply_audits, decide_page};

const NOW: &str = "2026-11-25T12:00:00Z";

fn policy(text: &str) -> Policy {
    match load_sources(&[("t.toml".into(), text.into())]) {
        Ok((p, _)) => p,
        Err(e) => panic!("{e}"),
    }
}

fn file(name: &str) -> FileEntry {
    FileEntry {
        filename: name.into(),
        url: FileUrl::Resolved(Box::new(
            url::Url::parse(&format!("https://up/{name}")).unwrap(),
        )),
        hashes: crate::index::Hashes::sha256(sha_of(name)),
        requires_python: None,
        yanked: None,
        core_metadata: CoreMetadata::Absent,
        size: Some(1000),
        provenance: None,
        upload_time: Some("2026-01-01T00:00:00Z".into()),
    }
}

fn sha_of(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(name.as_bytes()))
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn decide(p: &Policy, project: &str, files: Vec<FileEntry>) -> Vec<FileDecision> {
    let name = ProjectName::new(project).unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!("{project} is blocked");
    };
    let page = ProjectPage {
        files,
        ..ProjectPage::default()
    };
    decide_page(&name, page, &view).1
}

fn one(p: &Policy, f: FileEntry) -> Decision {
    decide(p, "demo", vec![f]).remove(0).decision
}

/// The page of one wheel decided under `p`, then judged with the audit report `r`.
fn audited(p: &Policy, r: Arc<Report>) -> (crate::index::render::ServedPage, Vec<FileDecision>) {
    let name = ProjectName::new("demo").unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!("demo is not blocked")
    };
    let page = ProjectPage {
        files: vec![file(WHEEL)],
        ..ProjectPage::default()
    };
    let (served, decisions) = decide_page(&name, page, &view);
    apply_audits(&served, &decisions, &view, |_| AuditState::Done(r.clone()))
}

fn blocked(p: &Policy, project: &str) -> Option<(Decision, Blocked)> {
    match p.gate(&ProjectName::new(project).unwrap(), now()) {
        Gate::Blocked { decision, style } => Some((decision, style)),
        Gate::Open(_) => None,
    }
}

const WHEEL: &str = "demo-1.0-py3-none-any.whl";

#[test]
fn a_name_near_a_well_known_one_warns_or_hides() {
    let decide_one = |p: &Policy, project: &str| {
        let name = ProjectName::new(project).unwrap();
        let Gate::Open(view) = p.gate(&name, now()) else {
            panic!("{project} is blocked");
        };
        let file = file(&format!(
            "{}-1.0-py3-none-any.whl",
            name.as_str().replace('-', "_")
        ));
        decide_page(
            &name,
            ProjectPage {
                files: vec![file],
                ..ProjectPage::default()
            },
            &view,
        )
        .1
        .remove(0)
        .decision
    };
    // On by default, as a warning on every file.
    let p = policy("");
    let d = decide_one(&p, "reqeusts");
    assert_eq!((d.action, d.code), (Action::Warn, Code::Typosquat));
    assert_eq!(
        d.detail,
        "`reqeusts` resembles `requests` (two letters swapped)"
    );
    assert_eq!(decide_one(&p, "requests").code, Code::WheelShown);
    assert_eq!(decide_one(&p, "demo").code, Code::WheelShown);

    // `hide` hides the project like a deny; `protect` adds names; allowed names pass.
    let p = policy(
        "[typosquat]\naction = \"hide\"\nprotect = [\"Acme_Billing\"]\n[projects]\nallow = [\"urlib3\", \"acme-*\", \"djang0\"]\n",
    );
    let (d, style) = blocked(&p, "djang0").map_or((None, None), |(d, s)| (Some(d), Some(s)));
    assert!(d.is_none() && style.is_none(), "allowed by name");
    assert!(blocked(&p, "urlib3").is_none());
    let p = policy("[typosquat]\naction = \"hide\"\nprotect = [\"Acme_Billing\"]\n");
    let (d, style) = blocked(&p, "acme-biling").unwrap();
    assert_eq!((d.code, style), (Code::Typosquat, Blocked::Quarantine));
    assert!(d.detail.contains("`acme-billing`"), "{}", d.detail);
    assert_eq!(d.origin.unwrap().line, 2);
    assert!(blocked(&p, "python-dateutils").is_some());
    assert!(blocked(&p, "numpy").is_none());

    // An exception lifts it for one project; `allow` switches it off.
    let p = policy(
        "[typosquat]\naction = \"hide\"\n[[exceptions]]\nrule = \"typosquat\"\nproject = \"numpyy\"\nreason = \"our fork\"\n",
    );
    assert!(blocked(&p, "numpyy").is_none());
    assert!(blocked(&p, "numpi").is_some());
    let p = policy("[typosquat]\naction = \"allow\"\n");
    assert_eq!(decide_one(&p, "reqeusts").code, Code::WheelShown);
    assert!(p.typosquat_names.is_empty(), "not built when off");
}

#[test]
fn a_locked_name_is_not_a_typosquat() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("requirements.txt");
    std::fs::write(
        &req,
        format!("urlib3==1.0 --hash=sha256:{}\n", "b".repeat(64)),
    )
    .unwrap();
    let p = policy(&format!(
        "[typosquat]\naction = \"hide\"\n[lock]\nfiles = [\"{}\"]\n",
        req.display()
    ));
    assert!(blocked(&p, "urlib3").is_none());
}

#[test]
fn deny_and_allow_lists_block_whole_projects() {
    let p =
        policy("[projects]\ndeny = [\"evil\", { name = \"acme-*\", reason = \"typosquats\" }]\n");
    let (d, style) = blocked(&p, "evil").unwrap();
    assert_eq!((d.code, style), (Code::ProjectDenied, Blocked::Quarantine));
    assert_eq!(d.origin.unwrap().line, 2);
    let (d, _) = blocked(&p, "Acme_Tools").unwrap();
    assert!(d.detail.contains("typosquats"), "{}", d.detail);
    assert!(blocked(&p, "demo").is_none());

    let p = policy("[projects]\nallow = [\"demo\", \"req*\"]\nblocked = \"not-found\"\n");
    let (d, style) = blocked(&p, "numpy").unwrap();
    assert_eq!(
        (d.code, style),
        (Code::ProjectNotAllowed, Blocked::NotFound)
    );
    assert!(blocked(&p, "requests").is_none());
}

#[test]
fn regex_entries_deny_and_allow_by_normalized_name() {
    let deny = "[projects]\ndeny = [\"evil\", { regex = \"^acme-(internal|corp)-\", reason = \"private names come from the private index\" }]\n";
    let allow = "[projects]\nallow = [\"demo\", { regex = \"^acme-\", reason = \"ours\" }]\n";
    let lifted = "[projects]\ndeny = [{ regex = \"-internal-\" }]\n[[exceptions]]\nrule = \"projects\"\nproject = \"acme-internal-ok\"\nreason = \"published on purpose\"\n";
    // (policy, project, Some((code, text the detail holds)) when blocked)
    type Case<'a> = (&'a str, &'a str, Option<(Code, &'a str)>);
    let cases: &[Case<'_>] = &[
        (
            deny,
            "acme-internal-tool",
            Some((
                Code::ProjectDenied,
                "matches regex `^acme-(internal|corp)-`: private names come from the private index",
            )),
        ),
        // Matched against the normalized name.
        (
            deny,
            "Acme_Corp.Billing",
            Some((Code::ProjectDenied, "private names")),
        ),
        (deny, "evil", Some((Code::ProjectDenied, "`evil`"))),
        (deny, "acme-public", None),
        // Anchored only as written: `^` keeps this one out.
        (deny, "my-acme-internal-x", None),
        (allow, "acme-anything", None),
        (allow, "demo", None),
        (allow, "numpy", Some((Code::ProjectNotAllowed, ""))),
        (allow, "not-acme-x", Some((Code::ProjectNotAllowed, ""))),
        (
            lifted,
            "acme-internal-tool",
            Some((Code::ProjectDenied, "matches regex `-internal-`")),
        ),
        (lifted, "acme-internal-ok", None),
    ];
    for (text, project, want) in cases {
        let p = policy(text);
        let got = blocked(&p, project);
        match (want, &got) {
            (None, None) => {}
            (Some((code, detail)), Some((d, style))) => {
                assert_eq!((d.code, *style), (*code, Blocked::Quarantine), "{project}");
                assert!(d.detail.contains(detail), "{project}: {}", d.detail);
                assert_eq!(d.origin.as_ref().map(|o| o.line), Some(2), "{project}");
            }
            _ => panic!("{project} under {text:?}: {:?}", got.map(|(d, _)| d)),
        }
    }
    // Only the wheels of a project the gate lets through reach the file rules.
    let p = policy(allow);
    let d = decide(&p, "acme-x", vec![file("acme_x-1.0-py3-none-any.whl")]);
    assert_eq!(d[0].decision.code, Code::WheelShown);
}

#[test]
fn project_rules_lift_warn_and_report_only() {
    let p = policy(
        "[projects]\ndeny = [\"evil\"]\n[[exceptions]]\nrule = \"projects\"\nproject = \"evil\"\nreason = \"vetted fork\"\n",
    );
    assert!(blocked(&p, "evil").is_none());
    assert_eq!(p.unused_exceptions().count(), 0);

    let p = policy("[projects]\ndeny = [\"evil\"]\naction = \"warn\"\n");
    assert!(blocked(&p, "evil").is_none());
    let d = decide(&p, "evil", vec![file("evil-1.0-py3-none-any.whl")]);
    assert_eq!(
        (d[0].decision.action, d[0].decision.code),
        (Action::Warn, Code::ProjectDenied)
    );

    let p = policy("report-only = true\n[projects]\ndeny = [\"evil\"]\n");
    let d = decide(&p, "evil", vec![file("evil-1.0-py3-none-any.whl")]);
    assert_eq!(d[0].decision.action, Action::WouldHide);
}

#[test]
fn each_file_rule_has_its_code() {
    let cases: &[(&str, FileEntry, Code)] = &[
        ("", file("demo-1.0.tar.gz"), Code::SdistHidden),
        (
            "[versions]\nrequire = { demo = \">=2\" }\n",
            file(WHEEL),
            Code::VersionExcluded,
        ),
        (
            "[versions]\ndeny = { \"dem*\" = \"==1.0\" }\n",
            file(WHEEL),
            Code::VersionExcluded,
        ),
        (
            "[prereleases]\naction = \"hide\"\n",
            file("demo-1.0rc1-py3-none-any.whl"),
            Code::Prerelease,
        ),
        (
            "[yanked]\naction = \"hide\"\n",
            FileEntry {
                yanked: Some("broken".into()),
                ..file(WHEEL)
            },
            Code::Yanked,
        ),
        (
            "[tags]\npython = [\"cp312\"]\n",
            file(WHEEL),
            Code::TagNotAllowed,
        ),
        (
            "[tags]\nplatform = [\"manylinux*_x86_64\"]\n",
            file("demo-1.0-cp312-cp312-win_amd64.whl"),
            Code::TagNotAllowed,
        ),
        ("[size]\nmax = 999\n", file(WHEEL), Code::TooLarge),
        (
            "[cooldown]\nmin-age = \"7d\"\n",
            FileEntry {
                upload_time: Some("2026-11-24T00:00:00Z".into()),
                ..file(WHEEL)
            },
            Code::CooldownTooNew,
        ),
        (
            "[cooldown]\nas-of = 2025-12-31T00:00:00Z\n",
            file(WHEEL),
            Code::CooldownTooNew,
        ),
        (
            "[cooldown]\nmin-age = \"1d\"\n",
            FileEntry {
                upload_time: None,
                ..file(WHEEL)
            },
            Code::UploadTimeMissing,
        ),
    ];
    for (text, f, code) in cases {
        let p = policy(text);
        let d = one(&p, f.clone());
        assert_eq!(
            (d.action, d.code),
            (Action::Hide, *code),
            "policy {text:?}, file {}",
            f.filename
        );
        // The same rule, switched off, shows the file.
        if !text.is_empty() {
            let section = text.lines().next().unwrap();
            let off = if text.contains("action = \"hide\"") {
                text.replace("action = \"hide\"", "action = \"allow\"")
            } else {
                text.replacen(section, &format!("{section}\naction = \"allow\""), 1)
            };
            let d = one(&policy(&off), f.clone());
            assert!(
                d.action.shows() || *code == Code::UploadTimeMissing,
                "{off:?}: {d:?}"
            );
        }
    }
}

#[test]
fn rules_that_pass_show_the_file() {
    let p = policy(
        "[versions]\nrequire = { demo = \">=1\" }\n[tags]\npython = [\"py3\"]\nplatform = [\"any\"]\n[cooldown]\nmin-age = \"7d\"\n[size]\nmax = \"1MiB\"\n",
    );
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Show, Code::WheelShown));
}

#[test]
fn cooldown_sets_a_recheck_and_projects_override() {
    let p = policy("[cooldown]\nmin-age = \"7d\"\nprojects = { demo = \"1h\" }\n");
    let name = ProjectName::new("other").unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!()
    };
    let f = FileEntry {
        upload_time: Some("2026-11-24T12:00:00Z".into()),
        ..file("other-1.0-py3-none-any.whl")
    };
    let mut cache = crate::dist::filename::VersionCache::default();
    let parsed = crate::dist::filename::classify(&f.filename, &name, &mut cache).unwrap();
    assert_eq!(view.decide_file(&f, &parsed).code, Code::CooldownTooNew);
    assert_eq!(
        view.recheck_at(),
        Some("2026-12-01T12:00:00Z".parse().unwrap())
    );
    let d = one(
        &p,
        FileEntry {
            upload_time: Some("2026-11-25T10:00:00Z".into()),
            ..file(WHEEL)
        },
    );
    assert_eq!(d.code, Code::WheelShown, "demo's own cooldown is one hour");
}

#[test]
fn an_upstream_cooldown_applies_where_no_project_entry_does() {
    let p = policy(
        "[cooldown]\nmin-age = \"7d\"\nupstreams = { internal = \"0\", mirror = \"30d\" }\nprojects = { demo = \"1h\" }\n",
    );
    let day_old = |name: &str| FileEntry {
        upload_time: Some("2026-11-24T12:00:00Z".into()),
        ..file(name)
    };
    let judge = |project: &str, upstream: Option<&str>| {
        let name = ProjectName::new(project).unwrap();
        let Gate::Open(mut view) = p.gate(&name, now()) else {
            panic!()
        };
        if let Some(u) = upstream {
            view.answered_by(u);
        }
        let f = day_old(&format!("{project}-1.0-py3-none-any.whl"));
        let mut cache = crate::dist::filename::VersionCache::default();
        let parsed = crate::dist::filename::classify(&f.filename, &name, &mut cache).unwrap();
        view.decide_file(&f, &parsed)
    };
    assert_eq!(judge("other", None).code, Code::CooldownTooNew);
    assert_eq!(judge("other", Some("internal")).code, Code::WheelShown);
    let d = judge("other", Some("mirror"));
    assert_eq!(
        (d.code, d.origin.map(|o| o.line)),
        (Code::CooldownTooNew, Some(3))
    );
    assert_eq!(judge("other", Some("elsewhere")).code, Code::CooldownTooNew);
    // The project's own entry wins over its upstream's.
    assert_eq!(judge("demo", Some("mirror")).code, Code::WheelShown);
}

#[test]
fn a_version_basis_ages_files_by_their_release() {
    let at = |name: &str, t: &str| FileEntry {
        upload_time: Some(t.into()),
        ..file(name)
    };
    // 1.0 was released a month ago, and a wheel for another platform was added an hour
    // ago; 1.1 is an hour old.
    let files = || {
        vec![
            at("demo-1.0-py3-none-any.whl", "2026-10-25T12:00:00Z"),
            at(
                "demo-1.0-cp312-cp312-win_amd64.whl",
                "2026-11-25T11:00:00.5Z",
            ),
            at("demo-1.1-py3-none-any.whl", "2026-11-25T11:00:00Z"),
        ]
    };
    let codes = |p: &Policy| -> Vec<Code> {
        decide(p, "demo", files())
            .into_iter()
            .map(|d| d.decision.code)
            .collect()
    };
    let by_file = policy("[cooldown]\nmin-age = \"7d\"\n");
    assert_eq!(
        codes(&by_file),
        [Code::WheelShown, Code::CooldownTooNew, Code::CooldownTooNew]
    );
    let by_version = policy("[cooldown]\nmin-age = \"7d\"\nbasis = \"version\"\n");
    assert_eq!(
        codes(&by_version),
        [Code::WheelShown, Code::WheelShown, Code::CooldownTooNew]
    );
    // A later file can go back to the file basis.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&a, "[cooldown]\nmin-age = \"7d\"\nbasis = \"version\"\n").unwrap();
    std::fs::write(&b, "[cooldown]\nbasis = \"file\"\n").unwrap();
    let (merged, _) = crate::policy::load_files(&[a, b]).unwrap();
    assert_eq!(codes(&merged)[1], Code::CooldownTooNew);
}

#[test]
fn missing_upload_time_is_an_explicit_choice() {
    let f = FileEntry {
        upload_time: None,
        ..file(WHEEL)
    };
    let warn = one(
        &policy("[cooldown]\nmin-age = \"1d\"\nmissing-upload-time = \"warn\"\n"),
        f.clone(),
    );
    assert_eq!(
        (warn.action, warn.code),
        (Action::Warn, Code::UploadTimeMissing)
    );
    let allow = one(
        &policy("[cooldown]\nmin-age = \"1d\"\nmissing-upload-time = \"allow\"\n"),
        f,
    );
    assert_eq!(allow.action, Action::Show);
}

#[test]
fn exceptions_lift_by_scope_and_expire() {
    let text = format!(
        "[[exceptions]]\nrule = \"sdists\"\nproject = \"demo\"\nversions = \">=1\"\nreason = \"no wheels yet\"\n\n[[exceptions]]\nrule = [\"size\"]\nsha256 = \"{}\"\nreason = \"big on purpose\"\n\n[[exceptions]]\nrule = \"prereleases\"\nproject = \"demo\"\nreason = \"old\"\nexpires = 2026-11-24\n[size]\nmax = 10\n[prereleases]\naction = \"hide\"\n",
        sha_of(WHEEL)
    );
    let p = policy(&text);
    let small = |name: &str| FileEntry {
        size: Some(5),
        ..file(name)
    };
    let d = one(&p, small("demo-1.0.tar.gz"));
    assert_eq!((d.action, d.code), (Action::Show, Code::AllowedByException));
    assert!(d.detail.contains("no wheels yet"));
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(1));
    let d = one(&p, small("demo-0.9.tar.gz"));
    assert_eq!(
        d.code,
        Code::SdistHidden,
        "0.9 is outside the exception's versions"
    );
    let d = one(&p, file(WHEEL));
    assert_eq!(d.code, Code::AllowedByException, "lifted by sha256");
    let d = one(&p, file("demo-1.1-py3-none-any.whl"));
    assert_eq!(d.code, Code::TooLarge, "another file, another sha256");
    let d = one(
        &policy(&text.replace("[size]\nmax = 10\n", "")),
        file("demo-2.0rc1-py3-none-any.whl"),
    );
    assert_eq!(d.code, Code::Prerelease);
    assert!(d.detail.contains("expired on 2026-11-24"), "{}", d.detail);
    let unused: Vec<u32> = p.unused_exceptions().map(|e| e.origin.line).collect();
    assert_eq!(unused, vec![12], "the expired exception lifted nothing");
}

/// A policy over an advisory folder holding `records` (JSON), written to a temporary dir.
fn with_advisories(records: &[serde_json::Value], extra: &str) -> (Policy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let vulns = dir.path().join("vulns/demo");
    std::fs::create_dir_all(&vulns).unwrap();
    for (i, r) in records.iter().enumerate() {
        std::fs::write(vulns.join(format!("r{i}.json")), r.to_string()).unwrap();
    }
    let text = format!(
        "[advisories]\nsources = [\"{}\"]\n{extra}",
        dir.path().join("vulns").display()
    );
    (policy(&text), dir)
}

fn vuln(id: &str, introduced: &str, fixed: &str, label: Option<&str>) -> serde_json::Value {
    let mut r = serde_json::json!({
        "id": id,
        "modified": "2026-11-20T00:00:00Z",
        "aliases": [format!("CVE-{id}")],
        "summary": "bad things",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "demo"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": introduced}, {"fixed": fixed}]}]
        }]
    });
    if let Some(l) = label {
        r["database_specific"] = serde_json::json!({ "severity": l });
    }
    r
}

#[test]
fn advisories_hide_affected_versions() {
    let (p, _dir) = with_advisories(&[vuln("PYSEC-1", "0", "1.1", Some("HIGH"))], "");
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Hide, Code::Vulnerable));
    assert!(d.detail.contains("PYSEC-1 (high severity)"), "{}", d.detail);
    assert!(d.detail.contains("fixed in 1.1"), "{}", d.detail);
    let d = one(&p, file("demo-1.1-py3-none-any.whl"));
    assert_eq!(d.code, Code::WheelShown);
    // Below the threshold, the record does not count.
    let (p, _dir) = with_advisories(
        &[vuln("PYSEC-2", "0", "1.1", Some("LOW"))],
        "min-severity = \"high\"\n",
    );
    assert_eq!(one(&p, file(WHEEL)).code, Code::WheelShown);
    // An exception for the record, named by an alias, lifts it.
    let (p, _dir) = with_advisories(
        &[vuln("PYSEC-3", "0", "1.1", None)],
        "[[exceptions]]\nrule = \"advisories\"\nid = \"CVE-PYSEC-3\"\nreason = \"not reachable\"\n",
    );
    assert_eq!(one(&p, file(WHEEL)).code, Code::AllowedByException);
}

#[test]
fn until_fixed_exceptions_stop_once_a_fix_exists() {
    let exception = "[[exceptions]]\nrule = \"advisories\"\nid = \"PYSEC-5\"\nuntil-fixed = true\nreason = \"no fix to take yet\"\n";
    let mut unfixed = vuln("PYSEC-5", "0", "9.9", None);
    // No `fixed` event: only `introduced`.
    unfixed["affected"][0]["ranges"][0]["events"] = serde_json::json!([{"introduced": "0"}]);
    let (p, _dir) = with_advisories(&[unfixed], exception);
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Show, Code::AllowedByException));
    let (p, _dir) = with_advisories(&[vuln("PYSEC-5", "0", "1.1", None)], exception);
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Hide, Code::Vulnerable));
    assert!(d.detail.contains("applied until a fix"), "{}", d.detail);
    assert_eq!(p.unused_exceptions().count(), 1);
    // The fix is in the data when the policy loads: `policy check` says so.
    let dir = tempfile::tempdir().unwrap();
    let vulns = dir.path().join("vulns/demo");
    std::fs::create_dir_all(&vulns).unwrap();
    std::fs::write(
        vulns.join("r.json"),
        vuln("PYSEC-5", "0", "1.1", None).to_string(),
    )
    .unwrap();
    let text = format!(
        "[advisories]\nsources = [\"{}\"]\n{exception}",
        dir.path().join("vulns").display()
    );
    let (_, warnings) = load_sources(&[("t.toml".into(), text)]).unwrap();
    assert_eq!(
        warnings
            .iter()
            .map(|w| (w.code, w.line))
            .collect::<Vec<_>>(),
        [("fixed-exception", 3)]
    );
}

#[test]
fn stale_advisory_data_fails_closed_or_warns() {
    let (p, _dir) = with_advisories(&[vuln("PYSEC-4", "5.0", "6.0", None)], "max-age = \"1d\"\n");
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Hide, Code::AdvisoryDataStale));
    let (p, _dir) = with_advisories(
        &[vuln("PYSEC-4", "5.0", "6.0", None)],
        "max-age = \"1d\"\nstale = \"warn\"\n",
    );
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Warn, Code::AdvisoryDataStale));
    let (p, _dir) = with_advisories(
        &[vuln("PYSEC-4", "5.0", "6.0", None)],
        "max-age = \"30d\"\n",
    );
    assert_eq!(one(&p, file(WHEEL)).code, Code::WheelShown);
}

#[test]
fn lock_files_pin_files_and_projects() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("requirements.txt");
    std::fs::write(&req, format!("demo==1.0 --hash=sha256:{}\n", sha_of(WHEEL))).unwrap();
    let text = format!("lock = [\"{}\"]\n", req.display());
    let p = policy(&text);
    assert_eq!(one(&p, file(WHEEL)).code, Code::WheelShown);
    let d = one(&p, file("demo-1.1-py3-none-any.whl"));
    assert_eq!((d.action, d.code), (Action::Hide, Code::NotInLock));
    let (d, style) = blocked(&p, "other").unwrap();
    assert_eq!((d.code, style), (Code::ProjectNotInLock, Blocked::NotFound));
    // Allowed outside the lock by an exception, or by `outside = "allow"`.
    let p = policy(&format!(
        "{text}[[exceptions]]\nrule = \"lock\"\nproject = \"other\"\nreason = \"build tool\"\n"
    ));
    assert!(blocked(&p, "other").is_none());
    let p = policy(&format!(
        "[lock]\nfiles = [\"{}\"]\noutside = \"allow\"\n",
        req.display()
    ));
    assert!(blocked(&p, "other").is_none());
}

#[test]
fn malware_hides_files_versions_and_projects() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("osv/malicious/pypi");
    std::fs::create_dir_all(&feed).unwrap();
    let records = [
        serde_json::json!({"id": "MAL-1", "summary": "by file", "affected": [{
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "database_specific": {"indicators": {"package_integrity": [
                    {"filename": WHEEL, "hashes": {"sha256": sha_of(WHEEL)}}]}}}]}),
        serde_json::json!({"id": "MAL-2", "summary": "by version", "affected": [{
                "package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["2.0"]}]}),
        serde_json::json!({"id": "MAL-3", "summary": "every version", "affected": [{
                "package": {"ecosystem": "PyPI", "name": "evil"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}),
    ];
    for (i, r) in records.iter().enumerate() {
        std::fs::write(feed.join(format!("MAL-{i}.json")), r.to_string()).unwrap();
    }
    let p = policy(&format!(
        "[malware]\nsources = [\"{}\"]\n",
        dir.path().join("osv").display()
    ));
    let d = one(&p, file(WHEEL));
    assert_eq!(
        (d.code, d.detail.contains("MAL-1")),
        (Code::Malicious, true)
    );
    let d = one(&p, file("demo-2.0-py3-none-any.whl"));
    assert_eq!(
        (d.code, d.detail.contains("MAL-2")),
        (Code::Malicious, true)
    );
    assert_eq!(
        one(&p, file("demo-1.1-py3-none-any.whl")).code,
        Code::WheelShown
    );
    let (d, style) = blocked(&p, "evil").unwrap();
    assert_eq!((d.code, style), (Code::Malicious, Blocked::Quarantine));
}

fn with_status(status: &str, reason: Option<&str>) -> ProjectPage {
    ProjectPage {
        files: vec![file(WHEEL), file("demo-1.1-py3-none-any.whl")],
        versions: vec!["0.9".into()],
        status: Some(ProjectStatus {
            status: status.into(),
            reason: reason.map(Into::into),
        }),
        ..ProjectPage::default()
    }
}

fn decide_status(
    p: &Policy,
    page: ProjectPage,
) -> (crate::index::render::ServedPage, Vec<FileDecision>) {
    let name = ProjectName::new("demo").unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!()
    };
    decide_page(&name, page, &view)
}

#[test]
fn upstream_project_status_hides_or_warns() {
    let default = Policy::builtin();
    let (served, d) = decide_status(
        &default,
        with_status("quarantined", Some("malware\x1b[31m report")),
    );
    assert!(
        served.files.is_empty() && served.versions.is_empty(),
        "{served:?}"
    );
    assert_eq!(
        served.status.as_ref().map(|s| s.status.as_str()),
        Some("quarantined")
    );
    assert_eq!(
        (d[0].decision.action, d[0].decision.code),
        (Action::Hide, Code::ProjectQuarantined)
    );
    assert_eq!(
        d[0].decision.detail, "upstream says: malware[31m report",
        "control characters dropped"
    );
    for (status, code) in [
        ("archived", Code::ProjectArchived),
        ("deprecated", Code::ProjectDeprecated),
    ] {
        let (served, d) = decide_status(&default, with_status(status, None));
        assert_eq!(served.files.len(), 2);
        assert_eq!(
            (d[1].decision.action, d[1].decision.code),
            (Action::Warn, code),
            "{status}"
        );
    }
    // A file's own rule speaks first; the status note goes where no rule did.
    let (_, d) = decide_status(
        &default,
        ProjectPage {
            files: vec![file("demo-1.0.tar.gz"), file(WHEEL)],
            ..with_status("archived", None)
        },
    );
    assert_eq!(d[0].decision.code, Code::SdistHidden);
    assert_eq!(d[1].decision.code, Code::ProjectArchived);
    for status in ["active", "something-new"] {
        let (served, d) = decide_status(&default, with_status(status, None));
        assert_eq!(
            (served.files.len(), d[0].decision.code),
            (2, Code::WheelShown),
            "{status}"
        );
    }
}

#[test]
fn project_status_actions_are_configurable_and_liftable() {
    let p = policy(
        "[project-status]\nquarantined = \"warn\"\narchived = \"hide\"\ndeprecated = \"allow\"\n",
    );
    let (served, d) = decide_status(&p, with_status("quarantined", None));
    assert_eq!(
        (served.files.len(), d[0].decision.action),
        (2, Action::Warn)
    );
    assert_eq!(
        served.status, None,
        "a quarantine only warned on is not passed to installers, which would refuse the files"
    );
    let (served, _) = decide_status(&p, with_status("deprecated", None));
    assert_eq!(
        served.status.map(|s| s.status).as_deref(),
        Some("deprecated")
    );
    let (served, d) = decide_status(&p, with_status("archived", None));
    assert_eq!(
        (served.files.len(), d[0].decision.code),
        (0, Code::ProjectArchived)
    );
    assert_eq!(d[0].decision.origin.as_ref().map(|o| o.line), Some(3));
    let (_, d) = decide_status(&p, with_status("deprecated", None));
    assert_eq!(d[0].decision.code, Code::WheelShown);
    let p = policy("[project-status]\nreport-only = true\n");
    let (served, d) = decide_status(&p, with_status("quarantined", None));
    assert_eq!(
        (served.files.len(), d[0].decision.action),
        (2, Action::WouldHide)
    );
    let p = policy(
        "[[exceptions]]\nrule = \"project-status\"\nproject = \"demo\"\nreason = \"our own fork\"\n",
    );
    let (served, d) = decide_status(&p, with_status("quarantined", None));
    assert_eq!(
        (served.files.len(), d[0].decision.code),
        (2, Code::AllowedByException)
    );
    assert_eq!(p.unused_exceptions().count(), 0);
}

fn with_grants(grants: &[(&str, bool)]) -> ProjectPage {
    ProjectPage {
        files: vec![file(WHEEL), file("demo-1.1-py3-none-any.whl")],
        namespaces: grants
            .iter()
            .map(|(name, owned)| Namespace {
                name: (*name).into(),
                owned: *owned,
            })
            .collect(),
        ..ProjectPage::default()
    }
}

/// How many files are shown, and the first decision.
fn shown_and_first(p: &Policy, page: ProjectPage) -> (usize, Decision) {
    let (served, d) = decide_status(p, page);
    (served.files.len(), d[0].decision.clone())
}

#[test]
fn namespace_grants_upstream_lists_are_weighed() {
    assert!(super::super::names::in_namespace("acme", "acme"));
    assert!(super::super::names::in_namespace("acme-tools", "acme"));
    assert!(!super::super::names::in_namespace("acmetools", "acme"));
    assert!(!super::super::names::in_namespace("acm", "acme"));
    // By default an unowned grant only warns, and owned or absent grants say nothing.
    let default = Policy::builtin();
    let (n, d) = shown_and_first(&default, with_grants(&[("demo", false)]));
    assert_eq!(
        (n, d.action, d.code),
        (2, Action::Warn, Code::NamespaceNotOwned)
    );
    assert!(d.detail.contains("`demo`"), "{}", d.detail);
    for grants in [&[("demo", true)][..], &[]] {
        let (n, d) = shown_and_first(&default, with_grants(grants));
        assert_eq!((n, d.code), (2, Code::WheelShown), "{grants:?}");
    }
    // A required namespace needs an owned grant covering the project.
    let p = policy("[namespaces]\nrequire-owned = [\"Demo\"]\n");
    let (n, d) = shown_and_first(&p, with_grants(&[("demo", true)]));
    assert_eq!((n, d.code), (2, Code::WheelShown));
    for (grants, says) in [
        (&[][..], "may not speak PEP 752"),
        (&[("demo", false)][..], "as not held"),
        (&[("other", true)][..], "no grant covering"),
    ] {
        let (n, d) = shown_and_first(&p, with_grants(grants));
        assert_eq!(
            (n, d.action, d.code),
            (0, Action::Hide, Code::NamespaceUnverified),
            "{grants:?}"
        );
        assert!(d.detail.contains(says), "{grants:?}: {}", d.detail);
        assert_eq!(d.origin.as_ref().map(|o| o.line), Some(2));
    }
    // ... unless a [[private]] section routes the name: the private upstream vouches.
    let p = policy(
        "[namespaces]\nrequire-owned = [\"demo\"]\n[[private]]\nnames = [\"demo\"]\nupstream = \"internal\"\n",
    );
    let (n, d) = shown_and_first(&p, with_grants(&[]));
    assert_eq!((n, d.code), (2, Code::WheelShown));
}

#[test]
fn namespace_actions_are_configurable_and_liftable() {
    let p = policy("[namespaces]\nnot-owned = \"hide\"\n");
    let (n, d) = shown_and_first(&p, with_grants(&[("demo", false)]));
    assert_eq!((n, d.code), (0, Code::NamespaceNotOwned));
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(2));
    let p = policy("[namespaces]\nrequire-owned = [\"demo\"]\nunverified = \"warn\"\n");
    let (n, d) = shown_and_first(&p, with_grants(&[]));
    assert_eq!(
        (n, d.action, d.code),
        (2, Action::Warn, Code::NamespaceUnverified)
    );
    let p = policy("[namespaces]\nrequire-owned = [\"demo\"]\nreport-only = true\n");
    let (n, d) = shown_and_first(&p, with_grants(&[]));
    assert_eq!((n, d.action), (2, Action::WouldHide));
    let p = policy("[namespaces]\nrequire-owned = [\"demo\"]\nunverified = \"allow\"\n");
    let (n, d) = shown_and_first(&p, with_grants(&[("demo", false)]));
    assert_eq!(
        (n, d.code),
        (2, Code::NamespaceNotOwned),
        "the not-owned note remains"
    );
    let p = policy(
        "[namespaces]\nrequire-owned = [\"demo\"]\n[[exceptions]]\nrule = \"namespaces\"\nproject = \"demo\"\nreason = \"ours, predates the grant\"\n",
    );
    let (n, d) = shown_and_first(&p, with_grants(&[]));
    assert_eq!((n, d.code), (2, Code::AllowedByException));
    assert_eq!(p.unused_exceptions().count(), 0);
}

#[test]
fn yank_keeps_the_file_listed_and_says_why() {
    let p = policy("[versions]\naction = \"yank\"\ndeny = { demo = \"==1.0\" }\n");
    let upstream_yanked = FileEntry {
        yanked: Some("broken build".into()),
        ..file("demo-1.0-cp312-cp312-win_amd64.whl")
    };
    let (served, d) = decide_status(
        &p,
        ProjectPage {
            files: vec![
                file(WHEEL),
                upstream_yanked,
                file("demo-1.1-py3-none-any.whl"),
            ],
            ..ProjectPage::default()
        },
    );
    assert_eq!(served.files.len(), 3);
    assert_eq!(served.versions, ["1.0", "1.1"]);
    assert_eq!(
        (d[0].decision.action, d[0].decision.code),
        (Action::Yank, Code::VersionExcluded)
    );
    // Files keep upstream's order: the plain wheel, then the one upstream yanked.
    let reason = served.files[0].yanked.as_deref().unwrap();
    assert!(reason.starts_with("pipwall version-excluded: the policy's version rules exclude this version: 1.0 is denied by `==1.0` [policy t.toml:3]"), "{reason}");
    let kept = served.files[1].yanked.as_deref().unwrap();
    assert!(
        kept.starts_with("pipwall version-excluded") && kept.ends_with("; upstream: broken build"),
        "{kept}"
    );
    assert_eq!(served.files[2].yanked, None);
    // A hide from another rule still wins; report-only logs the yank and changes nothing.
    let p =
        policy("[versions]\naction = \"yank\"\ndeny = { demo = \"==1.0\" }\n[size]\nmax = 10\n");
    assert_eq!(one(&p, file(WHEEL)).code, Code::TooLarge);
    let p =
        policy("[versions]\naction = \"yank\"\nreport-only = true\ndeny = { demo = \"==1.0\" }\n");
    let (served, d) = decide_status(
        &p,
        ProjectPage {
            files: vec![file(WHEEL)],
            ..ProjectPage::default()
        },
    );
    assert_eq!(
        (served.files[0].yanked.as_deref(), d[0].decision.action),
        (None, Action::WouldHide)
    );
}

#[test]
fn yank_works_for_projects_statuses_and_audits() {
    let p = policy("[projects]\naction = \"yank\"\ndeny = [\"demo\"]\n");
    assert!(blocked(&p, "demo").is_none());
    let d = one(&p, file(WHEEL));
    assert_eq!((d.action, d.code), (Action::Yank, Code::ProjectDenied));
    // A project-wide yank goes over a file's own warning.
    let p = policy(
        "[projects]\naction = \"yank\"\ndeny = [\"demo\"]\n[prereleases]\naction = \"warn\"\n",
    );
    assert_eq!(
        one(&p, file("demo-2.0rc1-py3-none-any.whl")).action,
        Action::Yank
    );
    let p = policy("[project-status]\narchived = \"yank\"\n");
    let (served, d) = decide_status(&p, with_status("archived", Some("read-only")));
    assert_eq!(
        (served.files.len(), d[0].decision.action),
        (2, Action::Yank)
    );
    let reason = served.files[0].yanked.as_deref().unwrap();
    assert!(
        reason.contains("project-archived") && reason.contains("read-only"),
        "{reason}"
    );
    // An audit finding mapped to `yank`: the wheel stays on the audited page, yanked.
    let p = policy("[audit]\ncodes = { pth-executes-code = \"yank\" }\n");
    let r = report(vec![crate::audit::Finding::new(
        crate::audit::FindingCode::PthExecutesCode,
        "demo.pth",
        "import os",
    )]);
    let (out, all) = audited(&p, r);
    assert_eq!(all[0].decision.action, Action::Yank);
    let reason = out.files[0].yanked.as_deref().unwrap();
    assert!(reason.starts_with("pipwall audit-failed: "), "{reason}");
}

#[test]
fn unmaintained_projects_warn_from_their_newest_upload() {
    let page = |times: &[&str]| ProjectPage {
        files: times
            .iter()
            .enumerate()
            .map(|(i, t)| FileEntry {
                upload_time: Some((*t).into()),
                ..file(&format!("demo-1.{i}-py3-none-any.whl"))
            })
            .collect(),
        ..ProjectPage::default()
    };
    let old = ["2020-01-01T00:00:00Z", "2024-11-01T00:00:00.5Z"];
    // Off by default.
    let (_, d) = decide_status(&Policy::builtin(), page(&old));
    assert_eq!(d[0].decision.code, Code::WheelShown);
    let p = policy("[unmaintained]\nmax-age = \"2y\"\n");
    let (served, d) = decide_status(&p, page(&old));
    assert_eq!(served.files.len(), 2);
    assert_eq!(
        (d[0].decision.action, d[0].decision.code),
        (Action::Warn, Code::Unmaintained)
    );
    assert!(
        d[0].decision.detail.contains("2024-11-01T00:00:00.5Z"),
        "{}",
        d[0].decision.detail
    );
    assert_eq!(d[0].decision.origin.as_ref().map(|o| o.line), Some(2));
    // One recent upload keeps the project current, until it too is two years old.
    let name = ProjectName::new("demo").unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!()
    };
    let (_, d) = decide_page(
        &name,
        page(&["2020-01-01T00:00:00Z", "2026-06-01T00:00:00Z"]),
        &view,
    );
    assert_eq!(d[0].decision.code, Code::WheelShown);
    assert_eq!(
        view.recheck_at(),
        Some("2028-05-31T00:00:00Z".parse().unwrap())
    );
    // A page with no upload times says nothing of age.
    let (_, d) = decide_status(
        &p,
        ProjectPage {
            files: vec![FileEntry {
                upload_time: None,
                ..file(WHEEL)
            }],
            ..ProjectPage::default()
        },
    );
    assert_eq!(d[0].decision.code, Code::WheelShown);
    let p = policy(
        "[unmaintained]\nmax-age = \"2y\"\naction = \"hide\"\n[[exceptions]]\nrule = \"unmaintained\"\nproject = \"other\"\nreason = \"finished, not abandoned\"\n",
    );
    let (served, d) = decide_status(&p, page(&old));
    assert_eq!(
        (served.files.len(), d[0].decision.code),
        (0, Code::Unmaintained)
    );
    let d = decide(
        &p,
        "other",
        vec![FileEntry {
            upload_time: Some(old[0].into()),
            ..file("other-1.0-py3-none-any.whl")
        }],
    )
    .remove(0)
    .decision;
    assert_eq!(d.code, Code::AllowedByException);
}

#[test]
fn max_count_keeps_the_newest_versions_shown() {
    let page = |names: &[&str]| ProjectPage {
        files: names.iter().map(|n| file(n)).collect(),
        ..ProjectPage::default()
    };
    let files = [
        "demo-1.0-py3-none-any.whl",
        "demo-1.10-py3-none-any.whl",
        "demo-1.9-py3-none-any.whl",
        "demo-1.9-cp312-cp312-win_amd64.whl",
        "demo-2.0rc1-py3-none-any.whl",
        "demo-1.2.tar.gz",
    ];
    let p = policy("[versions]\nmax-count = 2\n[prereleases]\naction = \"hide\"\n");
    let (served, d) = decide_status(&p, page(&files));
    // 2.0rc1 is hidden by its own rule and takes no place; 1.10 and 1.9 (PEP 440 order) stay.
    assert_eq!(served.versions, ["1.9", "1.10"]);
    assert_eq!(served.files.len(), 3);
    let code = |f: &str| d.iter().find(|x| x.filename == f).unwrap().decision.clone();
    let old = code("demo-1.0-py3-none-any.whl");
    assert_eq!((old.action, old.code), (Action::Hide, Code::VersionLimit));
    assert_eq!(old.origin.as_ref().map(|o| o.line), Some(2));
    assert!(
        old.detail.contains("not among the 2 newest"),
        "{}",
        old.detail
    );
    assert_eq!(
        code("demo-1.2.tar.gz").code,
        Code::SdistHidden,
        "the first rule to hide keeps its code"
    );
    assert_eq!(code("demo-2.0rc1-py3-none-any.whl").code, Code::Prerelease);
    // 0 is no limit; `yank` keeps old versions listed; an exception keeps one version.
    let (served, _) = decide_status(&policy("[versions]\nmax-count = 0\n"), page(&files));
    assert_eq!(served.files.len(), 5);
    let (served, d) = decide_status(
        &policy("[versions]\nmax-count = 1\naction = \"yank\"\n"),
        page(&files[..3]),
    );
    assert_eq!(served.files.len(), 3);
    assert_eq!(d[0].decision.action, Action::Yank);
    assert!(
        served
            .files
            .iter()
            .find(|f| f.filename == files[0])
            .unwrap()
            .yanked
            .is_some()
    );
    assert!(
        served
            .files
            .iter()
            .find(|f| f.filename == files[1])
            .unwrap()
            .yanked
            .is_none()
    );
    let p = policy(
        "[versions]\nmax-count = 1\n[[exceptions]]\nrule = \"versions\"\nproject = \"demo\"\nversions = \"==1.0\"\nreason = \"the LTS line\"\n",
    );
    let (served, d) = decide_status(&p, page(&files[..3]));
    assert_eq!(served.versions, ["1.0", "1.10"]);
    assert_eq!(d[0].decision.code, Code::AllowedByException);
    assert_eq!(d[2].decision.code, Code::VersionLimit);
}

#[test]
fn attestations_are_judged_from_the_audit_report() {
    use crate::attest::{Identity, ProvenanceFacts};
    let judge = |p: &Policy, provenance: Option<ProvenanceFacts>| {
        let mut r = Report::new(WHEEL.into(), sha_of(WHEEL), 1, Vec::new());
        r.provenance = provenance;
        let (out, all) = audited(p, Arc::new(r));
        (out.files.len(), all[0].decision.clone())
    };
    let release = Identity {
        issuer: crate::policy::rules::attestations::GITHUB_ISSUER.into(),
        identity: "https://github.com/acme/demo/.github/workflows/release.yml@refs/tags/v1".into(),
        repository: Some("https://github.com/acme/demo".into()),
    };
    let verified = |id: &Identity| {
        Some(ProvenanceFacts {
            verified: vec![id.clone()],
            problems: Vec::new(),
        })
    };
    // No requirement: nothing is checked, attested or not.
    let (n, d) = judge(&Policy::builtin(), None);
    assert_eq!((n, d.code), (1, Code::WheelShown));
    let p = policy(
        "[attestations]\nrequire = [\n  { project = \"demo\", github = \"acme/demo\", workflow = \"release.yml\" },\n]\n",
    );
    let (n, d) = judge(&p, verified(&release));
    assert_eq!((n, d.code), (1, Code::WheelShown));
    let (n, d) = judge(&p, None);
    assert_eq!((n, d.code), (0, Code::AttestationMissing));
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(3));
    let bad = ProvenanceFacts {
        verified: Vec::new(),
        problems: vec!["the signature over the statement does not check".into()],
    };
    let (n, d) = judge(&p, Some(bad));
    assert_eq!((n, d.code), (0, Code::AttestationInvalid));
    assert!(d.detail.contains("signature"), "{}", d.detail);
    let nightly = Identity {
        identity: "https://github.com/acme/demo/.github/workflows/nightly.yml@refs/heads/main"
            .into(),
        ..release.clone()
    };
    let (n, d) = judge(&p, verified(&nightly));
    assert_eq!((n, d.code), (0, Code::AttestationPublisherMismatch));
    assert!(
        d.detail.contains("nightly.yml") && d.detail.contains("github acme/demo (release.yml)"),
        "{}",
        d.detail
    );
    // Several entries for a project: any of them will do; an issuer needs an identity.
    let p = policy(
        "[attestations]\nrequire = [\n  { project = \"demo\", github = \"acme/demo\", workflow = \"release.yml\" },\n  { project = \"d*\", issuer = \"https://ci.example\", identity = \"https://ci.example/acme/*\" },\n]\n",
    );
    let ci = Identity {
        issuer: "https://ci.example".into(),
        identity: "https://ci.example/acme/demo".into(),
        repository: None,
    };
    assert_eq!(judge(&p, verified(&ci)).1.code, Code::WheelShown);
    assert_eq!(judge(&p, verified(&release)).1.code, Code::WheelShown);
    // warn, report-only and exceptions work as for every rule.
    let p = policy(
        "[attestations]\naction = \"warn\"\nrequire = [{ project = \"demo\", github = \"acme/demo\" }]\n",
    );
    let (n, d) = judge(&p, None);
    assert_eq!((n, d.action), (1, Action::Warn));
    let p = policy(
        "[attestations]\nrequire = [{ project = \"demo\", github = \"acme/demo\" }]\n[[exceptions]]\nrule = \"attestations\"\nproject = \"demo\"\nreason = \"attested from next release on\"\n",
    );
    assert_eq!(judge(&p, None).1.code, Code::AllowedByException);
    // A file that is not audited cannot be checked: an sdist shown by exception is hidden.
    let p = policy(
        "[sdists]\naction = \"allow\"\n[attestations]\nrequire = [{ project = \"demo\", github = \"acme/demo\" }]\n",
    );
    let d = one(&p, file("demo-1.0.tar.gz"));
    assert_eq!(d.code, Code::AttestationMissing);
}

#[test]
fn licenses_are_judged_from_the_audit_report() {
    use crate::audit::LicenseFacts;
    let judge = |p: &Policy, facts: LicenseFacts| {
        let r =
            Arc::new(Report::new(WHEEL.into(), sha_of(WHEEL), 1, Vec::new()).with_license(facts));
        let (out, all) = audited(p, r);
        (out.files.len(), all[0].decision.clone())
    };
    let gpl = || LicenseFacts {
        expression: Some("MIT AND GPL-3.0-only".into()),
        ..LicenseFacts::default()
    };
    let p = policy("[licenses]\ndeny = [\"GPL-3.0-only\"]\n");
    let (n, d) = judge(&p, gpl());
    assert_eq!((n, d.code), (0, Code::LicenseDenied));
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(2));
    let (n, d) = judge(&p, LicenseFacts::default());
    assert_eq!(
        (n, d.action, d.code),
        (1, Action::Warn, Code::LicenseUnknown)
    );
    let p = policy("[licenses]\nallow = [\"MIT\"]\nunknown = \"hide\"\n");
    assert_eq!(judge(&p, gpl()).1.code, Code::LicenseNotAllowed);
    let (n, d) = judge(&p, LicenseFacts::default());
    assert_eq!(
        (n, d.code, d.origin.map(|o| o.line)),
        (0, Code::LicenseUnknown, Some(3))
    );
    let classic = LicenseFacts {
        classifiers: vec!["OSI Approved :: MIT License".into()],
        ..LicenseFacts::default()
    };
    assert_eq!(judge(&p, classic).1.code, Code::WheelShown);
    // Off without lists; lifted per project by an exception.
    assert_eq!(judge(&Policy::builtin(), gpl()).1.code, Code::WheelShown);
    let p = policy(
        "[licenses]\ndeny = [\"GPL-3.0-only\"]\n[[exceptions]]\nrule = \"licenses\"\nproject = \"demo\"\nreason = \"internal tool, not distributed\"\n",
    );
    assert_eq!(judge(&p, gpl()), (1, judge(&p, gpl()).1));
    assert_eq!(judge(&p, gpl()).1.code, Code::AllowedByException);
}

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "a table test: one case per row reads better whole"
)]
fn license_clarifications_replace_what_the_metadata_says() {
    use crate::audit::LicenseFacts;
    let judge = |p: &Policy, facts: LicenseFacts| {
        let r =
            Arc::new(Report::new(WHEEL.into(), sha_of(WHEEL), 1, Vec::new()).with_license(facts));
        let (out, all) = audited(p, r);
        (out.files.len(), all[0].decision.clone())
    };
    let none = LicenseFacts::default;
    let said = |e: &str| LicenseFacts {
        expression: Some(e.into()),
        ..LicenseFacts::default()
    };
    let vague = || LicenseFacts {
        license: Some("see LICENSE.txt".into()),
        classifiers: vec!["OSI Approved :: BSD License".into()],
        ..LicenseFacts::default()
    };
    // Read leniently as LGPL-2.0-only, which is not what the project means.
    let lgpl = || LicenseFacts {
        license: Some("LGPL".into()),
        ..LicenseFacts::default()
    };
    let allow_lgpl21 = "[licenses]\nallow = [\"LGPL-2.1-or-later\"]\nunknown = \"hide\"\n";
    let allow_mit = "[licenses]\nallow = [\"MIT\"]\nunknown = \"hide\"\n";
    let deny_gpl = "[licenses]\ndeny = [\"GPL-3.0-only\"]\nunknown = \"hide\"\n";
    let clarify = |project: &str, versions: &str, expression: &str| {
        let versions = if versions.is_empty() {
            String::new()
        } else {
            format!("versions = \"{versions}\", ")
        };
        format!(
            "clarify = [{{ project = \"{project}\", {versions}expression = \"{expression}\", reason = \"upstream confirmed\" }}]\n"
        )
    };
    // (policy head, clarify line, the wheel's metadata, files served, code, detail holds)
    let cases: Vec<(&str, String, LicenseFacts, usize, Code, &str)> = vec![
        // No license in the metadata: unknown, unless clarified.
        (
            allow_mit,
            String::new(),
            none(),
            0,
            Code::LicenseUnknown,
            "",
        ),
        (
            allow_mit,
            clarify("demo", "", "MIT"),
            none(),
            1,
            Code::WheelShown,
            "",
        ),
        (
            allow_mit,
            clarify("demo", "", "MIT"),
            vague(),
            1,
            Code::WheelShown,
            "",
        ),
        (
            allow_mit,
            clarify("demo", "", "LGPL-2.1-or-later"),
            vague(),
            0,
            Code::LicenseNotAllowed,
            "`LGPL-2.1-or-later` (clarified at t.toml:4: upstream confirmed; no SPDX license can be read from the metadata)",
        ),
        // A wrong license in the metadata: the clarification counts, both ways.
        (
            allow_lgpl21,
            String::new(),
            lgpl(),
            0,
            Code::LicenseNotAllowed,
            "`LGPL` (from License)",
        ),
        (
            allow_lgpl21,
            clarify("demo", ">=1", "LGPL-2.1-or-later"),
            lgpl(),
            1,
            Code::WheelShown,
            "",
        ),
        (
            allow_mit,
            clarify("demo", "", "LGPL-2.1-or-later"),
            lgpl(),
            0,
            Code::LicenseNotAllowed,
            "the metadata's License says `LGPL`",
        ),
        (
            deny_gpl,
            String::new(),
            said("GPL-3.0-only"),
            0,
            Code::LicenseDenied,
            "from License-Expression",
        ),
        (
            deny_gpl,
            clarify("demo", "", "MIT"),
            said("GPL-3.0-only"),
            1,
            Code::WheelShown,
            "",
        ),
        (
            deny_gpl,
            clarify("de*", "", "GPL-3.0-only"),
            said("MIT"),
            0,
            Code::LicenseDenied,
            "the metadata's License-Expression says `MIT`",
        ),
        (
            deny_gpl,
            clarify("demo", "", "MIT AND GPL-3.0-only"),
            none(),
            0,
            Code::LicenseDenied,
            "the metadata names none",
        ),
        // Versions scope it: the wheel is demo 1.0.
        (
            deny_gpl,
            clarify("demo", ">=1", "GPL-3.0-only"),
            said("MIT"),
            0,
            Code::LicenseDenied,
            "clarified at t.toml:4",
        ),
        (
            deny_gpl,
            clarify("demo", ">=2", "GPL-3.0-only"),
            said("MIT"),
            1,
            Code::WheelShown,
            "",
        ),
        (
            allow_mit,
            clarify("demo", "<1", "MIT"),
            none(),
            0,
            Code::LicenseUnknown,
            "",
        ),
        // Another project's clarification does not apply.
        (
            allow_mit,
            clarify("other", "", "MIT"),
            none(),
            0,
            Code::LicenseUnknown,
            "",
        ),
    ];
    for (head, line, facts, served, code, detail) in cases {
        let p = policy(&format!("{head}{line}"));
        let (n, d) = judge(&p, facts);
        assert_eq!((n, d.code), (served, code), "{line}: {}", d.detail);
        assert!(d.detail.contains(detail), "{line}: {}", d.detail);
    }
    // Of several that match, the last written counts: a later file corrects an earlier one.
    let p = policy(&format!(
        "{deny_gpl}{}",
        "clarify = [\n  { project = \"demo\", expression = \"GPL-3.0-only\", reason = \"shipped\" },\n  { project = \"demo\", expression = \"MIT\", reason = \"corrected\" },\n]\n"
    ));
    assert_eq!(judge(&p, none()).1.code, Code::WheelShown);
    // The deciding line stays the list's; the clarification's is in the detail.
    let p = policy(&format!(
        "{deny_gpl}{}",
        clarify("demo", "", "GPL-3.0-only")
    ));
    let d = judge(&p, none()).1;
    assert_eq!(d.origin.map(|o| o.line), Some(2));
}

/// A Scorecard result for `project` from `date`, scoring `score`, with `checks`.
fn scorecard(project: &str, date: &str, score: f64, checks: &[(&str, i32)]) -> String {
    let checks: Vec<serde_json::Value> = checks
        .iter()
        .map(|(n, s)| serde_json::json!({"name": n, "score": s, "reason": "…", "details": null}))
        .collect();
    serde_json::json!({
        "date": date,
        "repo": {"name": format!("github.com/acme/{project}"), "commit": "0123abc"},
        "scorecard": {"version": "v5.1.1", "commit": "fedcba9"},
        "score": score,
        "checks": checks,
        "project": project,
    })
    .to_string()
}

/// A policy whose `[health]` reads `lines` (written to a temporary file) and says `extra`.
fn with_scorecards(lines: &[String], extra: &str) -> (Policy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("scorecards.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let text = format!("[health]\ndata = \"{}\"\n{extra}", data.display());
    (policy(&text), dir)
}

fn demo_decision(p: &Policy) -> Decision {
    decide(p, "demo", vec![file(WHEEL)]).remove(0).decision
}

#[test]
fn a_low_scorecard_score_warns_by_default_and_hide_blocks_the_project() {
    let lines = [
        scorecard("demo", "2026-11-20", 3.2, &[]),
        scorecard("good", "2026-11-20", 8.0, &[]),
    ];
    let (p, _dir) = with_scorecards(&lines, "");
    let d = demo_decision(&p);
    assert_eq!((d.action, d.code), (Action::Warn, Code::HealthScoreLow));
    assert_eq!(
        d.detail,
        "github.com/acme/demo scores 3.2, the minimum is 5.0 (Scorecard of 2026-11-20)"
    );
    // The default minimum was switched on by `data`.
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(2));
    let good = decide(&p, "good", vec![file("good-1.0-py3-none-any.whl")]);
    assert_eq!(good[0].decision.code, Code::WheelShown);

    let (p, _dir) = with_scorecards(&lines, "action = \"hide\"\nmin-score = 8.5\n");
    let (d, style) = blocked(&p, "demo").unwrap();
    assert_eq!((d.code, style), (Code::HealthScoreLow, Blocked::Quarantine));
    assert!(d.detail.contains("the minimum is 8.5"), "{}", d.detail);
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(4));
    assert_eq!(
        blocked(&p, "good").map(|(d, _)| d.code),
        Some(Code::HealthScoreLow)
    );
    assert!(
        d.sentence().contains("OpenSSF Scorecard score"),
        "{}",
        d.sentence()
    );

    let (p, _dir) = with_scorecards(&lines, "action = \"yank\"\n");
    let d = demo_decision(&p);
    assert_eq!((d.action, d.code), (Action::Yank, Code::HealthScoreLow));
    // `0` turns the aggregate minimum off; `allow` the whole rule.
    let (p, _dir) = with_scorecards(&lines, "action = \"hide\"\nmin-score = 0\n");
    assert!(blocked(&p, "demo").is_none());
    let (p, _dir) = with_scorecards(&lines, "action = \"allow\"\nmissing = \"hide\"\n");
    assert!(blocked(&p, "unknown").is_none());
}

#[test]
fn per_check_minimums_flag_each_check_below_its_own() {
    let lines = [scorecard(
        "demo",
        "2026-11-20",
        8.0,
        &[("Maintained", 0), ("Code-Review", 5), ("Fuzzing", 1)],
    )];
    let extra = "action = \"hide\"\nchecks = { Maintained = 3, Code-Review = 6, Fuzzing = 1 }\n";
    let (p, _dir) = with_scorecards(&lines, extra);
    let (d, _) = blocked(&p, "demo").unwrap();
    assert_eq!(d.code, Code::HealthCheckLow);
    assert_eq!(
        d.detail,
        "github.com/acme/demo: Maintained 0 (minimum 3), Code-Review 5 (minimum 6) (Scorecard of 2026-11-20)"
    );
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(4));
    let (p, _dir) = with_scorecards(&lines, "checks = { Code-Review = 5 }\n");
    assert_eq!(
        demo_decision(&p).code,
        Code::WheelShown,
        "5 meets a minimum of 5"
    );
}

#[test]
fn a_missing_score_takes_the_missing_action() {
    let lines = [scorecard("demo", "2026-11-20", 8.0, &[("Fuzzing", -1)])];
    // By default a project without a result is let be: the data rarely covers everything.
    let (p, _dir) = with_scorecards(&lines, "action = \"hide\"\n");
    let other = decide(&p, "other", vec![file("other-1.0-py3-none-any.whl")]);
    assert_eq!(other[0].decision.code, Code::WheelShown);

    let (p, _dir) = with_scorecards(&lines, "missing = \"hide\"\n");
    let (d, _) = blocked(&p, "other").unwrap();
    assert_eq!(d.code, Code::HealthScoreMissing);
    assert!(
        d.detail
            .starts_with("no Scorecard result names `other` in ")
            && d.detail.ends_with("scorecards.jsonl"),
        "{}",
        d.detail
    );
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(3));
    assert!(blocked(&p, "demo").is_none());

    // A check with a minimum that did not run, or is not in the result, is missing too.
    let (p, _dir) = with_scorecards(
        &lines,
        "missing = \"warn\"\nchecks = { Fuzzing = 1, SAST = 1 }\n",
    );
    let d = demo_decision(&p);
    assert_eq!((d.action, d.code), (Action::Warn, Code::HealthScoreMissing));
    assert_eq!(
        d.detail,
        "github.com/acme/demo has no score for Fuzzing (the check did not run), SAST (not in the result) (Scorecard of 2026-11-20)"
    );
    // Without a minimum for it, a check that did not run does not matter.
    let (p, _dir) = with_scorecards(&lines, "missing = \"hide\"\n");
    assert_eq!(demo_decision(&p).code, Code::WheelShown);
    // A result with no aggregate score (-1) has none to compare.
    let (p, _dir) = with_scorecards(
        &[scorecard("demo", "2026-11-20", -1.0, &[])],
        "missing = \"hide\"\n",
    );
    assert_eq!(
        blocked(&p, "demo").map(|(d, _)| d.code),
        Some(Code::HealthScoreMissing)
    );
}

#[test]
fn health_is_report_only_and_lifted_like_any_rule() {
    let lines = [scorecard("demo", "2026-11-20", 2.0, &[])];
    let (p, _dir) = with_scorecards(
        &lines,
        "action = \"hide\"\nreport-only = true\nmissing = \"hide\"\n",
    );
    let d = demo_decision(&p);
    assert_eq!(
        (d.action, d.code),
        (Action::WouldHide, Code::HealthScoreLow)
    );
    let other = decide(&p, "other", vec![file("other-1.0-py3-none-any.whl")]);
    assert_eq!(
        (other[0].decision.action, other[0].decision.code),
        (Action::WouldHide, Code::HealthScoreMissing),
        "`missing` follows the section's report-only"
    );

    let (p, _dir) = with_scorecards(
        &lines,
        "action = \"hide\"\n[[exceptions]]\nrule = \"health\"\nproject = \"demo\"\nreason = \"vendored and reviewed by us\"\n\n[[exceptions]]\nrule = \"health\"\nproject = \"other\"\nreason = \"nothing to lift\"\n",
    );
    assert!(blocked(&p, "demo").is_none());
    assert_eq!(demo_decision(&p).code, Code::WheelShown);
    assert!(blocked(&p, "other").is_none());
    // `missing` is "allow": the second exception lifted nothing and is reported.
    let unused: Vec<u32> = p.unused_exceptions().map(|e| e.origin.line).collect();
    assert_eq!(unused, [9]);
    // `waive` finds the rule from any of the codes.
    for code in [
        Code::HealthScoreLow,
        Code::HealthCheckLow,
        Code::HealthScoreMissing,
        Code::HealthDataStale,
    ] {
        assert_eq!(code.rule(), Some(RuleId::Health));
    }
}

#[test]
fn health_data_older_than_max_age_warns_and_fresh_data_sets_a_recheck() {
    let old = [scorecard("demo", "2026-10-01", 9.0, &[])];
    let (p, _dir) = with_scorecards(&old, "max-age = \"30d\"\n");
    let d = demo_decision(&p);
    assert_eq!((d.action, d.code), (Action::Warn, Code::HealthDataStale));
    assert!(d.detail.ends_with("is from 2026-10-01"), "{}", d.detail);
    assert_eq!(d.origin.as_ref().map(|o| o.line), Some(3));
    let (p, _dir) = with_scorecards(&old, "max-age = \"30d\"\nstale = \"hide\"\n");
    assert_eq!(
        blocked(&p, "demo").map(|(d, _)| d.code),
        Some(Code::HealthDataStale)
    );
    // A low score says more than the age of the data, and is the note kept.
    let (p, _dir) = with_scorecards(
        &[scorecard("demo", "2026-10-01", 1.0, &[])],
        "max-age = \"30d\"\n",
    );
    assert_eq!(demo_decision(&p).code, Code::HealthScoreLow);

    let fresh = [scorecard("demo", "2026-11-24", 9.0, &[])];
    let (p, _dir) = with_scorecards(&fresh, "max-age = \"7d\"\n");
    let name = ProjectName::new("demo").unwrap();
    let Gate::Open(view) = p.gate(&name, now()) else {
        panic!("demo is blocked")
    };
    assert_eq!(
        view.recheck_at(),
        Some("2026-12-01T00:00:00Z".parse().unwrap())
    );
    assert_eq!(demo_decision(&p).code, Code::WheelShown);
}

#[test]
fn health_without_data_judges_nothing() {
    let p = policy("[health]\naction = \"hide\"\nmissing = \"hide\"\nmin-score = 9\n");
    assert!(p.health_rules.is_none());
    assert!(blocked(&p, "demo").is_none());
    assert_eq!(demo_decision(&p).code, Code::WheelShown);
}

#[test]
fn report_only_rules_show_and_say_so() {
    let p = policy("[sdists]\nreport-only = true\n");
    let d = one(&p, file("demo-1.0.tar.gz"));
    assert_eq!((d.action, d.code), (Action::WouldHide, Code::SdistHidden));
    assert!(d.sentence().contains("report-only"));
}

fn report(findings: Vec<crate::audit::Finding>) -> Arc<Report> {
    Arc::new(Report::new(WHEEL.into(), sha_of(WHEEL), 1, findings))
}

use std::sync::Arc;

#[test]
fn audit_findings_map_to_actions() {
    use crate::audit::{Finding, FindingCode as F};
    let bad = || {
        vec![Finding::new(
            F::RecordHashMismatch,
            "demo/x.py",
            "sha256 differs",
        )]
    };
    let notice = || vec![Finding::new(F::PthExecutesCode, "demo.pth", "import os")];
    let judge = |p: &Policy, r: Arc<Report>| {
        let (out, all) = audited(p, r);
        (out.files.len(), all[0].decision.clone())
    };
    let default = Policy::builtin();
    let (n, d) = judge(&default, report(bad()));
    assert_eq!((n, d.code), (0, Code::AuditFailed));
    assert!(d.detail.contains("record-hash-mismatch"));
    let (n, d) = judge(&default, report(notice()));
    assert_eq!(
        (n, d.action),
        (1, Action::Warn),
        "a notice warns by default"
    );
    let strict = policy("[audit]\ncodes = { pth-executes-code = \"hide\" }\n");
    assert_eq!(judge(&strict, report(notice())).0, 0);
    let lifted = policy(
        "[[exceptions]]\nrule = \"audit\"\nproject = \"demo\"\ncode = \"record-hash-mismatch\"\nreason = \"known packaging bug\"\n",
    );
    let (n, d) = judge(&lifted, report(bad()));
    assert_eq!((n, d.code), (1, Code::AllowedByException));
    let (n, _) = judge(&default, report(Vec::new()));
    assert_eq!(n, 1);
}
