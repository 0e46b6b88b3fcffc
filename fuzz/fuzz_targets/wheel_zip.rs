//! The wheel audit on arbitrary bytes: any archive, however broken, gives a report (findings)
//! and never a panic or an unbounded read. The bytes go through a file because the audit reads
//! wheels from the cache folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipwall::audit::{ArchiveLimits as Limits, audit_file};

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::io::Write::write_all(&mut file, data).is_err() {
        return;
    }
    // Small limits keep each run fast; the checks are the same.
    let limits = Limits {
        max_member_size: 16 << 20,
        max_total_size: 64 << 20,
        bomb_min_size: 1 << 20,
        ..Limits::default()
    };
    let _ = audit_file(
        file.path(),
        "demo-1.0-cp36-abi3-manylinux_2_17_x86_64.whl",
        None,
        &limits,
    );
});
