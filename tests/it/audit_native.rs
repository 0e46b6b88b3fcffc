//! Audits of wheels carrying real compiled binaries (see `support::native`): each rule is shown
//! to fire on the binary that breaks it, and to stay quiet on the one that does not.

use pipwall::audit::{self, Code, Report, Verdict};

use crate::support::fixtures::{Fixture, WheelSpec};
use crate::support::native::binary;

fn audit(f: &Fixture) -> Report {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(&f.filename);
    std::fs::write(&p, &f.bytes).unwrap();
    audit::audit_file(&p, &f.filename, None, &audit::Limits::default()).unwrap()
}

/// A wheel of `demo` tagged `tag` holding the fixture `fixture` at `demo/<as_name>`.
fn wheel_with(tag: &str, fixture: &str, as_name: &str) -> Fixture {
    WheelSpec::new("demo", "1.0", tag)
        .file("demo/__init__.py", "")
        .file(&format!("demo/{as_name}"), binary(fixture))
        .build()
}

fn codes(r: &Report) -> Vec<Code> {
    let mut c: Vec<Code> = r.findings.iter().map(|f| f.code).collect();
    c.dedup();
    c
}

fn assert_pass(r: &Report) {
    assert_eq!(r.verdict, Verdict::Pass, "{}: {:#?}", r.wheel, r.findings);
}

fn finding(r: &Report, code: Code) -> &audit::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("{}: no {code} in {:#?}", r.wheel, r.findings))
}

const LINUX_ABI3: &str = "cp36-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64";

#[test]
fn clean_abi3_extension_passes() {
    // Imports `_Py_Dealloc` (abi_only) and 3.2-era functions only.
    assert_pass(&audit(&wheel_with(
        LINUX_ABI3,
        "clean.abi3.so",
        "clean.abi3.so",
    )));
}

#[test]
fn import_outside_the_stable_abi_is_named() {
    let r = audit(&wheel_with(
        LINUX_ABI3,
        "outside.abi3.so",
        "outside.abi3.so",
    ));
    let f = finding(&r, Code::Abi3OutsideStableAbi);
    assert_eq!(f.file, "demo/outside.abi3.so");
    assert!(f.detail.contains("PyUnicode_New"), "{}", f.detail);
    assert!(!f.detail.contains("PyLong_FromLong"), "{}", f.detail);
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn import_newer_than_the_lowest_tag_is_a_mismatch() {
    let r = audit(&wheel_with(LINUX_ABI3, "newer.abi3.so", "newer.abi3.so"));
    let f = finding(&r, Code::Abi3NewerThanTag);
    assert!(
        f.detail.contains("PyUnicode_AsUTF8AndSize (3.10)"),
        "{}",
        f.detail
    );
    // Tagged for 3.10 it is fine; a compressed tag set is judged by its lowest version.
    assert_pass(&audit(&wheel_with(
        "cp310-abi3-manylinux_2_17_x86_64",
        "newer.abi3.so",
        "newer.abi3.so",
    )));
    let r = audit(&wheel_with(
        "cp39.cp310-abi3-manylinux_2_17_x86_64",
        "newer.abi3.so",
        "newer.abi3.so",
    ));
    assert_eq!(codes(&r), [Code::Abi3NewerThanTag]);
}

#[test]
fn own_exported_py_functions_are_not_violations() {
    // abi3audit flags these on Linux (its false positive on real wheels); they are definitions.
    assert_pass(&audit(&wheel_with(
        LINUX_ABI3,
        "ownexports.abi3.so",
        "ownexports.abi3.so",
    )));
}

#[test]
fn windows_only_symbol_on_linux_is_a_finding() {
    let r = audit(&wheel_with(
        LINUX_ABI3,
        "wrongos.abi3.so",
        "wrongos.abi3.so",
    ));
    assert!(
        finding(&r, Code::Abi3NotOnTargetOs)
            .detail
            .contains("PyErr_SetFromWindowsErr")
    );
}

#[test]
fn linking_libpython_breaks_the_stable_abi() {
    let r = audit(&wheel_with(
        LINUX_ABI3,
        "pylinked.abi3.so",
        "pylinked.abi3.so",
    ));
    assert!(
        finding(&r, Code::Abi3PythonLinkage)
            .detail
            .contains("libpython3.11")
    );
}

#[test]
fn binaries_are_found_by_magic_not_name() {
    let r = audit(&wheel_with(LINUX_ABI3, "outside.abi3.so", "payload.dat"));
    assert_eq!(
        finding(&r, Code::Abi3OutsideStableAbi).file,
        "demo/payload.dat"
    );
}

#[test]
fn glibc_symbol_versions_must_fit_the_tag() {
    let tag = "cp311-cp311-manylinux_2_17_x86_64";
    let r = audit(&wheel_with(
        tag,
        "glibcnew.cpython-311-x86_64-linux-gnu.so",
        "glibcnew.cpython-311-x86_64-linux-gnu.so",
    ));
    let f = finding(&r, Code::ManylinuxSymbolVersion);
    assert!(f.detail.contains("GLIBC_2."), "{}", f.detail);
    assert!(f.detail.contains("manylinux_2_17_x86_64"), "{}", f.detail);
    // A tag new enough for the symbol passes, and so does an extension that needs nothing new.
    assert_pass(&audit(&wheel_with(
        "cp311-cp311-manylinux_2_39_x86_64",
        "glibcnew.cpython-311-x86_64-linux-gnu.so",
        "glibcnew.cpython-311-x86_64-linux-gnu.so",
    )));
    assert_pass(&audit(&wheel_with(
        "cp311-cp311-manylinux1_x86_64",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
    )));
}

#[test]
fn needed_libraries_must_be_allowed_or_shipped() {
    let ext = "usesvendored.cpython-311-x86_64-linux-gnu.so";
    let spec = WheelSpec::new("demo", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
        .file("demo/__init__.py", "")
        .file(&format!("demo/{ext}"), binary(ext));
    let r = audit(&spec.clone().build());
    let f = finding(&r, Code::ManylinuxExternalLibrary);
    assert!(f.detail.contains("libvendored.so.1"), "{}", f.detail);
    // Shipped where its RUNPATH ($ORIGIN/../pkg.libs) points: resolved inside the wheel.
    let shipped = spec
        .file("pkg.libs/libvendored.so.1", binary("libvendored.so.1"))
        .build();
    assert_pass(&audit(&shipped));
}

#[test]
fn elf_of_another_architecture_is_a_finding() {
    let r = audit(&wheel_with(LINUX_ABI3, "arm.abi3.so", "arm.abi3.so"));
    assert!(
        finding(&r, Code::ElfArchMismatch)
            .detail
            .contains("aarch64")
    );
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-manylinux_2_17_aarch64",
        "arm.abi3.so",
        "arm.abi3.so",
    )));
}

#[test]
fn libc_family_must_match_the_tag() {
    let r = audit(&wheel_with(
        "cp311-cp311-musllinux_1_2_x86_64",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
    ));
    assert!(
        codes(&r).contains(&Code::MusllinuxNeedsGlibc),
        "{:#?}",
        r.findings
    );
}

#[test]
fn native_code_in_pure_places_is_a_finding() {
    let r = audit(&wheel_with(
        "py3-none-any",
        "clean.abi3.so",
        "clean.abi3.so",
    ));
    assert!(codes(&r).contains(&Code::NativeInPureWheel));
    let spec = WheelSpec::new("demo", "1.0", LINUX_ABI3).file(
        "demo-1.0.data/purelib/demo/clean.abi3.so",
        binary("clean.abi3.so"),
    );
    let r = audit(&spec.build());
    assert_eq!(
        finding(&r, Code::NativeInPurelib).file,
        "demo-1.0.data/purelib/demo/clean.abi3.so"
    );
}

#[test]
fn macos_slices_and_minimum_versions() {
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-macosx_10_12_x86_64",
        "mac_x86_64.abi3.so",
        "m.abi3.so",
    )));
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-macosx_11_0_arm64",
        "mac_arm64.abi3.so",
        "m.abi3.so",
    )));
    // universal2 needs both slices; its arm64 slice may need 11.0 under a 10.x tag.
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-macosx_10_12_universal2",
        "mac_universal2.abi3.so",
        "m.abi3.so",
    )));
    let r = audit(&wheel_with(
        "cp36-abi3-macosx_10_12_universal2",
        "mac_x86_64.abi3.so",
        "m.abi3.so",
    ));
    assert!(finding(&r, Code::MachoArchMissing).detail.contains("arm64"));
    let r = audit(&wheel_with(
        "cp36-abi3-macosx_10_9_x86_64",
        "mac_new.abi3.so",
        "m.abi3.so",
    ));
    assert!(
        finding(&r, Code::MacosVersionTooNew)
            .detail
            .contains("13.0")
    );
    let r = audit(&wheel_with(
        "cp36-abi3-macosx_10_12_x86_64",
        "mac_outside.abi3.so",
        "m.abi3.so",
    ));
    assert!(
        finding(&r, Code::Abi3OutsideStableAbi)
            .detail
            .contains("PyUnicode_New")
    );
}

#[test]
fn windows_machine_and_python_dll() {
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-win_amd64",
        "win_amd64.pyd",
        "w.pyd",
    )));
    assert_pass(&audit(&wheel_with("cp36-abi3-win32", "win32.pyd", "w.pyd")));
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-win_arm64",
        "win_arm64.pyd",
        "w.pyd",
    )));
    let r = audit(&wheel_with("cp36-abi3-win32", "win_amd64.pyd", "w.pyd"));
    assert_eq!(codes(&r), [Code::PeMachineMismatch]);
    let r = audit(&wheel_with("cp36-abi3-win_amd64", "win_py311.pyd", "w.pyd"));
    assert!(
        finding(&r, Code::Abi3PythonLinkage)
            .detail
            .contains("python311.dll")
    );
    // Delay-load imports count (abi3audit does not read them).
    let r = audit(&wheel_with("cp36-abi3-win_amd64", "win_delay.pyd", "w.pyd"));
    assert!(
        finding(&r, Code::Abi3OutsideStableAbi)
            .detail
            .contains("PyUnicode_New")
    );
}

#[test]
fn musl_wheels_need_musl() {
    let ext = "muslalpine.cpython-311-x86_64-linux-musl.so";
    assert_pass(&audit(&wheel_with(
        "cp311-cp311-musllinux_1_2_x86_64",
        ext,
        ext,
    )));
    let r = audit(&wheel_with("cp311-cp311-manylinux_2_17_x86_64", ext, ext));
    assert!(
        codes(&r).contains(&Code::ManylinuxNeedsMusl),
        "{:#?}",
        r.findings
    );
}

#[test]
fn macos_libraries_must_be_system_or_shipped() {
    let spec = WheelSpec::new("demo", "1.0", "cp36-abi3-macosx_10_12_x86_64")
        .file("demo/m.abi3.so", binary("mac_vendored.abi3.so"));
    let r = audit(&spec.clone().build());
    assert!(
        finding(&r, Code::MacosExternalLibrary)
            .detail
            .contains("libvendored.dylib")
    );
    let shipped = spec
        .file(
            "demo/.dylibs/libvendored.dylib",
            binary("libvendored.dylib"),
        )
        .build();
    assert_pass(&audit(&shipped));
}

#[test]
fn code_for_newer_x86_64_levels_breaks_a_plain_x86_64_tag() {
    let r = audit(&wheel_with(LINUX_ABI3, "isav3.abi3.so", "isav3.abi3.so"));
    assert!(finding(&r, Code::ElfIsaLevel).detail.contains("x86-64-v3"));
    // Baseline code says nothing about its level.
    assert!(
        !codes(&audit(&wheel_with(
            LINUX_ABI3,
            "clean.abi3.so",
            "clean.abi3.so"
        )))
        .contains(&Code::ElfIsaLevel)
    );
}
