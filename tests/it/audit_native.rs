//! Audits of wheels carrying real compiled binaries (see `support::native`): each rule is shown
//! to fire on the binary that breaks it, and to stay quiet on the one that does not.

use pipwall::audit::{self, FindingCode as Code, Report, Verdict};

use crate::support::fixtures::{Fixture, WheelSpec};
use crate::support::native::binary;

fn audit(f: &Fixture) -> Report {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(&f.filename);
    std::fs::write(&p, &f.bytes).unwrap();
    audit::audit_file(&p, &f.filename, None, &audit::ArchiveLimits::default()).unwrap()
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
    assert_eq!(
        r.verdict,
        Verdict::Fail,
        "a module of another machine is hidden"
    );
    // A DLL of another machine that is no module (debugpy's attach DLLs) is reported only.
    let r = audit(&wheel_with(
        "cp36-abi3-win32",
        "vendored.dll",
        "attach_amd64.dll",
    ));
    assert_eq!(codes(&r), [Code::PeMachineMismatch]);
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-win32",
        "vendored.dll",
        "attach_amd64.dll",
    )));
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

// Issue 14: verdicts that follow what the loaders do on real wheels. Each fixture reproduces the
// shape of a real wheel that pipwall used to refuse (or let through).

/// Writes the wheel's files to a folder as an installer would, and asks the host's real glibc
/// loader to list what `module` loads, so a fixture's verdict is checked against the loader
/// rather than against our own reading.
fn glibc_loader_list(files: &[(&str, &str)], module: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    for (path, fixture) in files {
        let p = root.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, binary(fixture)).unwrap();
    }
    let loader = "/lib64/ld-linux-x86-64.so.2";
    assert!(
        std::path::Path::new(loader).exists(),
        "the glibc loader {loader} is part of every x86_64 glibc system"
    );
    let out = std::process::Command::new(loader)
        .arg("--list")
        .arg(root.path().join(module))
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    // What it loaded on stdout; a library it cannot find stops the load, named on stderr.
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_bundled_library_found_through_the_loading_modules_rpath_is_shipped() {
    // numpy 1.24's shape: the extension's DT_RPATH finds libchain, whose own need (libchaindep)
    // glibc finds through the extension's RPATH too, since libchain has no search path.
    let files = [
        (
            "demo/rpathchain.cpython-311-x86_64-linux-gnu.so",
            "rpathchain.cpython-311-x86_64-linux-gnu.so",
        ),
        ("pkg.libs/libchain.so.1", "libchain.so.1"),
        ("pkg.libs/libchaindep.so.1", "libchaindep.so.1"),
    ];
    let listed = glibc_loader_list(&files, files[0].0);
    assert!(listed.contains("pkg.libs/libchaindep.so.1"), "{listed}");
    assert!(!listed.contains("cannot open"), "{listed}");
    let mut spec = WheelSpec::new("demo", "1.0", "cp311-cp311-manylinux_2_17_x86_64");
    for (path, fixture) in files {
        spec = spec.file(path, binary(fixture));
    }
    assert_pass(&audit(&spec.build()));
}

#[test]
fn a_runpath_serves_only_its_own_object_and_the_finding_says_where_the_loader_looked() {
    let files = [
        (
            "demo/runpathchain.cpython-311-x86_64-linux-gnu.so",
            "runpathchain.cpython-311-x86_64-linux-gnu.so",
        ),
        ("pkg.libs/libchain.so.1", "libchain.so.1"),
        ("pkg.libs/libchaindep.so.1", "libchaindep.so.1"),
    ];
    // The real loader cannot load it: libchaindep is not found for libchain.
    let listed = glibc_loader_list(&files, files[0].0);
    assert!(
        listed.contains("libchaindep.so.1: cannot open shared object file"),
        "{listed}"
    );
    let mut spec = WheelSpec::new("demo", "1.0", "cp311-cp311-manylinux_2_17_x86_64");
    for (path, fixture) in files {
        spec = spec.file(path, binary(fixture));
    }
    let r = audit(&spec.build());
    let f = finding(&r, Code::ManylinuxExternalLibrary);
    assert_eq!(f.file, "pkg.libs/libchain.so.1");
    for part in [
        "libchaindep.so.1",
        "when demo/runpathchain.cpython-311-x86_64-linux-gnu.so is loaded",
        "no RPATH or RUNPATH",
    ] {
        assert!(f.detail.contains(part), "{part}: {}", f.detail);
    }
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn a_glibc_version_needed_from_a_shipped_libgcc_s_is_not_a_need_for_glibc() {
    // musllinux aarch64 wheels ship libgcc_s, which defines GLIBC_2.0 itself.
    let ext = "muslarm.cpython-311-aarch64-linux-musl.so";
    let spec = WheelSpec::new("demo", "1.0", "cp311-cp311-musllinux_1_2_aarch64")
        .file("demo/__init__.py", "")
        .file(&format!("demo/{ext}"), binary(ext))
        .file(
            "pkg.libs/libgcc_s-b5472b99.so.1",
            binary("libgcc_s-b5472b99.so.1"),
        );
    assert_pass(&audit(&spec.build()));
    // Without the library, the module needs what musllinux does not allow, but still not glibc.
    let r = audit(&wheel_with("cp311-cp311-musllinux_1_2_aarch64", ext, ext));
    assert_eq!(codes(&r), [Code::ManylinuxExternalLibrary]);
    assert!(
        finding(&r, Code::ManylinuxExternalLibrary)
            .detail
            .contains("libgcc_s-b5472b99.so.1")
    );
    // A real glibc need still fails a musllinux tag.
    let r = audit(&wheel_with(
        "cp311-cp311-musllinux_1_2_x86_64",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
        "glibcold.cpython-311-x86_64-linux-gnu.so",
    ));
    assert!(codes(&r).contains(&Code::MusllinuxNeedsGlibc));
}

#[test]
fn musl_serves_a_bare_libc_so_need_itself() {
    // Rust and zig musl builds (pydantic-core, orjson, ...) record DT_NEEDED `libc.so`.
    let ext = "musl.cpython-311-x86_64-linux-musl.so";
    assert_pass(&audit(&wheel_with(
        "cp311-cp311-musllinux_1_2_x86_64",
        ext,
        ext,
    )));
    // It is still a musl binary: a manylinux tag is a lie.
    let r = audit(&wheel_with("cp311-cp311-manylinux_2_17_x86_64", ext, ext));
    assert!(
        codes(&r).contains(&Code::ManylinuxNeedsMusl),
        "{:#?}",
        r.findings
    );
}

#[test]
fn launcher_programs_in_a_pure_wheel_are_not_native_code_python_loads() {
    // setuptools, pip and distlib ship console launchers in their pure wheels.
    let spec = WheelSpec::new("demo", "1.0", "py3-none-any")
        .file("demo/__init__.py", "")
        .file("demo/cli-64.exe", binary("cli-64.exe"))
        .file("demo/t64.exe", binary("cli-64.exe"));
    assert_pass(&audit(&spec.build()));
    // A library in a pure wheel is still one.
    let r = audit(&wheel_with("py3-none-any", "win_amd64.pyd", "w.pyd"));
    assert!(codes(&r).contains(&Code::NativeInPureWheel));
    assert!(codes(&r).contains(&Code::NativeInPurelib));
}

#[test]
fn a_macos_minimum_within_the_tags_major_version_keeps_its_promise() {
    // 12.3 code under macosx_12_0: tags from macOS 11 on carry the major only.
    assert_pass(&audit(&wheel_with(
        "cp36-abi3-macosx_12_0_x86_64",
        "mac_twelve.abi3.so",
        "m.abi3.so",
    )));
    let r = audit(&wheel_with(
        "cp36-abi3-macosx_11_0_x86_64",
        "mac_twelve.abi3.so",
        "m.abi3.so",
    ));
    assert!(
        finding(&r, Code::MacosVersionTooNew)
            .detail
            .contains("12.3")
    );
}

#[test]
fn windows_dlls_must_be_part_of_windows_or_shipped() {
    // numba's tbbpool module imports tbb12.dll, which neither Windows nor CPython provides.
    let r = audit(&wheel_with("cp311-cp311-win_amd64", "win_tbb.pyd", "w.pyd"));
    assert_eq!(codes(&r), [Code::WindowsExternalLibrary]);
    assert!(
        finding(&r, Code::WindowsExternalLibrary)
            .detail
            .contains("tbb12.dll")
    );
    let r = audit(&wheel_with(
        "cp311-cp311-win_amd64",
        "win_vendored.pyd",
        "w.pyd",
    ));
    assert_eq!(codes(&r), [Code::WindowsExternalLibrary]);
    // Shipped in the wheel (delvewheel puts it in <name>.libs and adds that folder at import).
    let shipped = WheelSpec::new("demo", "1.0", "cp311-cp311-win_amd64")
        .file("demo/__init__.py", "")
        .file("demo/w.pyd", binary("win_vendored.pyd"))
        .file("demo.libs/Vendored.dll", binary("vendored.dll"))
        .build();
    assert_pass(&audit(&shipped));
    // The VC++ runtime (not CPython's vcruntime140) is reported, not hidden.
    let r = audit(&wheel_with(
        "cp311-cp311-win_amd64",
        "win_msvcp.pyd",
        "w.pyd",
    ));
    assert_eq!(codes(&r), [Code::WindowsExternalLibrary]);
    assert_pass(&r);
    // System DLLs need not be shipped.
    assert_pass(&audit(&wheel_with(
        "cp311-cp311-win_amd64",
        "win_system.pyd",
        "w.pyd",
    )));
}
