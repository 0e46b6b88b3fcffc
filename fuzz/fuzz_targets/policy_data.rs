//! What policies read: a policy file's text, an OSV record (JSON and YAML), a lock file
//! (requirements.txt, pylock.toml and uv.lock), a learned allow-list that `serve --learn`
//! merges with, and `[health]`'s OpenSSF Scorecard results (JSON Lines), judged as a page
//! request would. Any bytes load or are refused with problems, never a panic. The first byte
//! picks the reader; the rest is the file.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pipwall::data::lock::LockSet;
use pipwall::data::osv::OsvDb;

/// One folder for the whole run: the loaders read files, so each input is written first.
fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 8 {
        0 => {
            let _ =
                pipwall::policy::config::load_sources(&[("fuzz.toml".into(), text.into_owned())]);
        }
        1 | 2 => {
            let sub = dir().path().join("osv");
            let _ = std::fs::remove_dir_all(&sub);
            std::fs::create_dir_all(&sub).unwrap();
            let name = if which % 8 == 1 { "r.json" } else { "r.yaml" };
            std::fs::write(sub.join(name), rest).unwrap();
            if let Ok((db, _)) = OsvDb::load(&[sub]) {
                let v: pep440_rs::Version = "1.0".parse().unwrap();
                for r in db.records() {
                    let _ = db.affecting(&r.id.to_ascii_lowercase(), &v).count();
                }
            }
        }
        7 => {
            let data = dir().path().join("scorecards.jsonl");
            std::fs::write(&data, rest).unwrap();
            let policy = format!(
                "[health]\naction = \"hide\"\ndata = \"{}\"\nchecks = {{ Maintained = 3, Code-Review = 2 }}\nmissing = \"warn\"\nmax-age = \"30d\"\n",
                data.display()
            );
            if let Ok((p, _)) =
                pipwall::policy::config::load_sources(&[("fuzz.toml".into(), policy)])
            {
                let now = jiff::Timestamp::now();
                for name in ["demo", "requests", "a"] {
                    if let Ok(name) = pipwall::dist::ProjectName::new(name) {
                        let _ = p.gate(&name, now);
                    }
                }
            }
        }
        6 => {
            let path = dir().path().join("learned.toml");
            std::fs::write(&path, rest).unwrap();
            if let Ok(learner) = pipwall::policy::learn::Learner::new(path, String::new()) {
                learner.download("demo-1.0-py3-none-any.whl");
                let _ = learner.write();
            }
        }
        _ => {
            let name = match which % 8 {
                3 => "requirements.txt",
                4 => "pylock.toml",
                _ => "uv.lock",
            };
            let path = dir().path().join(name);
            std::fs::write(&path, rest).unwrap();
            if let Ok(set) = LockSet::load(&[path]) {
                let _ = set.len();
            }
        }
    }
});
