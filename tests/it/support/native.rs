//! Real native binaries for audit tests, compiled at test time by `tests/native/build.sh`
//! (gcc for ELF, clang with lld for Mach-O and PE; `.ci/run` installs the toolchains with
//! `tests/native/install-toolchains.sh`). Built once per target folder, under a file lock, and
//! rebuilt when a source changes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static OUT: OnceLock<PathBuf> = OnceLock::new();

fn sources_digest(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    hex::encode(h.finalize())
}

/// The folder holding every built fixture.
pub fn out_dir() -> &'static Path {
    OUT.get_or_init(|| {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/native");
        let digest = sources_digest(&src);
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("native-fixtures");
        std::fs::create_dir_all(&out).unwrap();
        let lock = std::fs::File::create(out.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let stamp = out.join(".sources");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(digest.as_str()) {
            // A no-op when the tools are there; on a fresh machine, `cargo test` alone gets them.
            let installed = std::process::Command::new("bash")
                .arg(src.join("install-toolchains.sh"))
                .status()
                .expect("cannot run tests/native/install-toolchains.sh");
            assert!(
                installed.success(),
                "installing the fixture toolchains failed"
            );
            let status = std::process::Command::new("bash")
                .arg(src.join("build.sh"))
                .arg(&out)
                .status()
                .expect("cannot run tests/native/build.sh");
            assert!(
                status.success(),
                "building the native fixtures failed; install the toolchains with \
                 tests/native/install-toolchains.sh (as .ci/run does)"
            );
            std::fs::write(&stamp, &digest).unwrap();
        }
        lock.unlock().unwrap();
        out
    })
}

/// The bytes of one built fixture.
pub fn binary(name: &str) -> Vec<u8> {
    let p = out_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}
