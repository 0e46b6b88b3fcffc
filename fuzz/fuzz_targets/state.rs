//! What pipwall reads back from its own state and from clients' headers, all of which an
//! attacker may have written: the first byte picks the reader, the rest is the input.
//!
//! - 0: a User-Agent, read as an installer environment, then judged against a few wheels;
//! - 1: an environment as `environments.json` spells it, and a declared fleet entry;
//! - 2: a stored audit report's seal, then its JSON as a report;
//! - 3: a wheel's `.dist-info/WHEEL` file, checked against its filename's tags;
//! - 4: rows other replicas wrote to the shared state (`serve --state`): environments with
//!   their last-seen times, merged into the known table, and learning records absorbed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipwall::demand::Environment;
use pipwall::dist::WheelFilename;

const WHEELS: [&str; 4] = [
    "a-1-py3-none-any.whl",
    "a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "a-1-cp39-abi3-macosx_11_0_arm64.whl",
    "a-1-pp310-pypy310_pp73-win_amd64.whl",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            if let Some(env) = Environment::from_user_agent(&text) {
                for w in WHEELS {
                    if let Ok(wheel) = WheelFilename::parse_any(w) {
                        let _ = env.may_install(&wheel);
                    }
                }
                // What is written is read back as the same environment.
                let again: Environment = env.to_string().parse().expect("written, so readable");
                assert_eq!(again, env);
            }
        }
        1 => {
            if let Ok(env) = text.parse::<Environment>() {
                let _ = env.to_string();
            }
            let mut parts = text.splitn(3, ' ');
            let (python, platform, implementation) = (parts.next(), parts.next(), parts.next());
            if let (Some(p), Some(t)) = (python, platform) {
                let _ = Environment::declared(p, t, implementation);
            }
        }
        2 => {
            if let Some(json) = pipwall::cache::audits::unseal_with_key(&[7; 32], rest) {
                let _ = serde_json::from_slice::<pipwall::audit::Report>(json);
            }
        }
        4 => {
            let rows: Vec<(String, f64)> = text
                .lines()
                .map(|l| {
                    let (env, secs) = l.split_once('\t').unwrap_or((l, "0"));
                    (env.to_owned(), secs.parse().unwrap_or(f64::NAN))
                })
                .collect();
            let known = pipwall::demand::KnownEnvironments::in_memory();
            known.merge(&rows);
            assert!(known.len() <= pipwall::demand::MAX_KNOWN);
            let pairs: Vec<(String, String)> = text
                .lines()
                .map(|l| {
                    let (p, v) = l.split_once(' ').unwrap_or((l, ""));
                    (p.to_owned(), v.to_owned())
                })
                .collect();
            if let Ok(learner) = pipwall::policy::learn::Learner::new(
                std::path::PathBuf::from("/nonexistent/pipwall-fuzz/learned.toml"),
                String::new(),
            ) {
                learner.absorb(&pairs);
                let _ = learner.snapshot();
            }
        }
        _ => {
            for w in WHEELS {
                if let Ok(wheel) = WheelFilename::parse_any(w) {
                    let mut findings = Vec::new();
                    let _ = pipwall::audit::contents::check_wheel_file(
                        "a-1.dist-info/WHEEL",
                        rest,
                        &wheel,
                        &mut findings,
                    );
                }
            }
        }
    }
});
