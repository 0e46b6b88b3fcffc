//! What a wheel says about itself (`.dist-info/WHEEL`, `METADATA`, `RECORD`) checked against its
//! filename and its members, and the files that run code when the interpreter starts.
//!
//! pip never checks RECORD hashes (pypa/pip#4705) and the index only emails owners on a RECORD
//! mismatch, so a wheel whose contents were changed after it was built installs silently. Here a
//! RECORD that does not match is a finding, as are metadata that name another project or version
//! than the filename (resolvers read one, installers install the other).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use base64::Engine;
use pep440_rs::Version;

use super::archive::check_member_path;
use super::finding::{Finding, FindingCode, LicenseFacts};
use crate::dist::{ProjectName, WheelFilename, WheelTags};

/// The `.dist-info` directory of the wheel, found among its members.
pub fn find_dist_info(
    names: &[&str],
    wheel: &WheelFilename,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    let dirs: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.split_once('/').map(|(top, _)| top))
        .filter(|top| top.ends_with(".dist-info"))
        .collect();
    let matching: Vec<&str> = dirs
        .iter()
        .copied()
        .filter(|d| dist_info_matches(d, wheel))
        .collect();
    if dirs.len() > 1 {
        findings.push(Finding::new(
            FindingCode::DistInfoMultiple,
            "",
            format!(
                "{} `.dist-info` directories: {}",
                dirs.len(),
                dirs.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    match matching.as_slice() {
        [one] => Some((*one).to_owned()),
        _ => {
            let detail = if dirs.is_empty() {
                "no `.dist-info` directory".to_owned()
            } else {
                format!(
                    "no `.dist-info` directory for {} {} (found {})",
                    wheel.name,
                    wheel.version,
                    dirs.iter().copied().collect::<Vec<_>>().join(", ")
                )
            };
            findings.push(Finding::new(FindingCode::DistInfoMissing, "", detail));
            None
        }
    }
}

fn dist_info_matches(dir: &str, wheel: &WheelFilename) -> bool {
    let Some(stem) = dir.strip_suffix(".dist-info") else {
        return false;
    };
    let Some((name, version)) = stem.rsplit_once('-') else {
        return false;
    };
    ProjectName::new(name).is_ok_and(|n| n == wheel.name)
        && Version::from_str(version).is_ok_and(|v| v == wheel.version)
}

/// `Key: Value` headers up to the first blank line, with continuation lines folded.
fn headers(text: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim(), v.trim().to_owned()));
        }
    }
    out
}

fn first<'a>(headers: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// `py-abi-manylinux2014_x86_64` as `py-abi-manylinux_2_17_x86_64` (PEP 600's aliases for the
/// PEP 513/571/599 names); any other tag as it is.
fn pep600_name(tag: &str) -> String {
    for (legacy, pep600) in [
        ("manylinux1_", "manylinux_2_5_"),
        ("manylinux2010_", "manylinux_2_12_"),
        ("manylinux2014_", "manylinux_2_17_"),
    ] {
        if let Some((head, arch)) = tag.rsplit_once('-')
            && let Some(arch) = arch.strip_prefix(legacy)
        {
            return format!("{head}-{pep600}{arch}");
        }
    }
    tag.to_owned()
}

fn expand_tag_line(line: &str) -> Vec<String> {
    let mut parts = line.splitn(3, '-');
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some(py), Some(abi), Some(plat)) => WheelTags::parse(py, abi, plat).ok(),
        _ => None,
    };
    match parsed {
        Some(tags) => tags
            .triples()
            .map(|(py, abi, plat)| format!("{py}-{abi}-{plat}"))
            .collect(),
        None => vec![line.to_owned()],
    }
}

pub struct WheelInfo {
    pub root_is_purelib: bool,
}

/// Checks `.dist-info/WHEEL`: a known major version, a purelib flag, and `Tag` lines that are
/// exactly the filename's expanded tags (a platform claim made twice must say the same thing).
pub fn check_wheel_file(
    path: &str,
    bytes: &[u8],
    wheel: &WheelFilename,
    findings: &mut Vec<Finding>,
) -> WheelInfo {
    let text = String::from_utf8_lossy(bytes);
    let headers = headers(&text);
    let mut bad =
        |detail: String| findings.push(Finding::new(FindingCode::WheelFileInvalid, path, detail));
    match first(&headers, "Wheel-Version") {
        None => bad("no `Wheel-Version`".into()),
        Some(v) if v.split('.').next() != Some("1") => bad(format!(
            "`Wheel-Version: {v}`; only major version 1 is understood"
        )),
        Some(_) => {}
    }
    let root_is_purelib = match first(&headers, "Root-Is-Purelib") {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        other => {
            bad(format!("`Root-Is-Purelib` is {other:?}, not true or false"));
            false
        }
    };
    // A `Tag` line may itself be compressed (maturin up to 1.7 wrote
    // `cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64`); installers read the line as
    // the tag set it stands for, so it is expanded before the comparison. A line that is not
    // three well-formed sets is kept as written, and so differs from every expected tag.
    let declared: BTreeSet<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Tag"))
        .flat_map(|(_, v)| expand_tag_line(v))
        .collect();
    let expected: BTreeSet<String> = wheel
        .tags
        .triples()
        .map(|(py, abi, plat)| format!("{py}-{abi}-{plat}"))
        .collect();
    // A legacy manylinux name and its PEP 600 name are one claim (torch lists both in WHEEL
    // under a `manylinux2014` filename).
    let declared: BTreeSet<String> = declared.iter().map(|t| pep600_name(t)).collect();
    let expected: BTreeSet<String> = expected.iter().map(|t| pep600_name(t)).collect();
    if declared != expected {
        let only_file: Vec<_> = expected.difference(&declared).cloned().collect();
        let only_wheel: Vec<_> = declared.difference(&expected).cloned().collect();
        findings.push(Finding::new(
            FindingCode::WheelTagsMismatch,
            path,
            format!(
                "tags only in the filename: [{}]; tags only in WHEEL: [{}]",
                only_file.join(", "),
                only_wheel.join(", ")
            ),
        ));
    }
    let build = first(&headers, "Build");
    if build != wheel.build.as_deref() {
        findings.push(Finding::new(
            FindingCode::WheelBuildMismatch,
            path,
            format!(
                "WHEEL says build {:?}, the filename {:?}",
                build,
                wheel.build.as_deref()
            ),
        ));
    }
    WheelInfo { root_is_purelib }
}

/// Checks `.dist-info/METADATA` names the project and version of the filename.
pub fn check_metadata(
    path: &str,
    bytes: &[u8],
    wheel: &WheelFilename,
    findings: &mut Vec<Finding>,
) {
    let text = String::from_utf8_lossy(bytes);
    let headers = headers(&text);
    if first(&headers, "Metadata-Version").is_none() {
        findings.push(Finding::new(
            FindingCode::MetadataInvalid,
            path,
            "no `Metadata-Version`",
        ));
    }
    match first(&headers, "Name") {
        None => findings.push(Finding::new(
            FindingCode::MetadataInvalid,
            path,
            "no `Name`",
        )),
        Some(n) => match ProjectName::new(n) {
            Ok(name) if name == wheel.name => {}
            _ => findings.push(Finding::new(
                FindingCode::MetadataNameMismatch,
                path,
                format!("`Name: {n}`, but the filename says {}", wheel.name),
            )),
        },
    }
    match first(&headers, "Version") {
        None => findings.push(Finding::new(
            FindingCode::MetadataInvalid,
            path,
            "no `Version`",
        )),
        Some(v) => match Version::from_str(v) {
            Ok(version) if version == wheel.version => {}
            _ => findings.push(Finding::new(
                FindingCode::MetadataVersionMismatch,
                path,
                format!("`Version: {v}`, but the filename says {}", wheel.version),
            )),
        },
    }
}

/// The license fields of `.dist-info/METADATA`, as written (bounded, control characters
/// dropped); see [`LicenseFacts`].
pub fn license_facts(bytes: &[u8]) -> LicenseFacts {
    let text = String::from_utf8_lossy(bytes);
    let headers = headers(&text);
    let clean = |v: &str| -> String {
        let line = v.lines().next().unwrap_or_default();
        crate::sanitize::one_line(line, LicenseFacts::MAX_LEN)
    };
    let field = |key: &str| first(&headers, key).map(clean).filter(|v| !v.is_empty());
    let classifiers = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("Classifier"))
        .filter_map(|(_, v)| v.strip_prefix("License ::"))
        .map(|v| clean(v.trim()))
        .filter(|v| !v.is_empty())
        .take(32)
        .collect();
    LicenseFacts {
        expression: field("License-Expression"),
        license: field("License"),
        classifiers,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Clone, Debug)]
pub struct RecordRow {
    pub hash: Option<(HashAlgo, Vec<u8>)>,
    pub size: Option<u64>,
}

/// RECORD rows by path. Rows that cannot be used are findings; the rest are returned.
pub fn parse_record(
    path: &str,
    bytes: &[u8],
    findings: &mut Vec<Finding>,
) -> HashMap<String, RecordRow> {
    let mut rows = HashMap::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let bad = |findings: &mut Vec<Finding>, detail: String| {
        findings.push(Finding::new(FindingCode::RecordInvalid, path, detail));
    };
    for (line, record) in reader.records().enumerate() {
        let line = line + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                bad(findings, format!("line {line}: {e}"));
                break;
            }
        };
        let (Some(file), hash, size) = (record.get(0), record.get(1), record.get(2)) else {
            continue;
        };
        if file.is_empty() && record.len() == 1 {
            continue;
        }
        if let Err(why) = check_member_path(file) {
            findings.push(Finding::new(
                FindingCode::RecordUnsafePath,
                file,
                format!(
                    "RECORD row {line}: {why}; an uninstall would touch a file outside the package"
                ),
            ));
            continue;
        }
        let hash = match hash.unwrap_or("") {
            "" => None,
            h => match parse_hash(h) {
                Ok(h) => Some(h),
                Err(HashProblem::Weak(algo)) => {
                    findings.push(Finding::new(
                        FindingCode::RecordWeakHash,
                        file,
                        format!("RECORD uses {algo}, which the wheel format forbids"),
                    ));
                    None
                }
                Err(HashProblem::Invalid) => {
                    bad(
                        findings,
                        format!("line {line}: hash `{h}` is not `<algorithm>=<urlsafe base64>`"),
                    );
                    None
                }
            },
        };
        let size = match size.unwrap_or("") {
            "" => None,
            s => match s.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    bad(findings, format!("line {line}: size `{s}` is not a number"));
                    None
                }
            },
        };
        if rows
            .insert(file.to_owned(), RecordRow { hash, size })
            .is_some()
        {
            bad(findings, format!("`{file}` is listed twice"));
        }
    }
    rows
}

enum HashProblem {
    Weak(String),
    Invalid,
}

fn parse_hash(h: &str) -> Result<(HashAlgo, Vec<u8>), HashProblem> {
    let (algo, digest) = h.split_once('=').ok_or(HashProblem::Invalid)?;
    let (algo, len) = match algo {
        "sha256" => (HashAlgo::Sha256, 32),
        "sha384" => (HashAlgo::Sha384, 48),
        "sha512" => (HashAlgo::Sha512, 64),
        "md5" | "sha1" | "sha224" => return Err(HashProblem::Weak(algo.to_owned())),
        _ => return Err(HashProblem::Invalid),
    };
    // Padding is not allowed by the spec but tools have written it; the digest is what counts.
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(digest.trim_end_matches('='))
        .map_err(|_| HashProblem::Invalid)?;
    if digest.len() != len {
        return Err(HashProblem::Invalid);
    }
    Ok((algo, digest))
}

/// Members RECORD need not hash: RECORD itself and its signatures.
pub fn is_record_exempt(path: &str, dist_info: &str) -> bool {
    path.strip_prefix(dist_info)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|f| matches!(f, "RECORD" | "RECORD.jws" | "RECORD.p7s"))
}

/// Where a member lands relative to site-packages, when it lands there: the archive root and
/// the `.data/purelib` and `.data/platlib` trees do; scripts, headers and data do not.
pub fn installed_path(member: &str) -> Option<&str> {
    let (top, rest) = member.split_once('/').unwrap_or((member, ""));
    if top.ends_with(".data") && !rest.is_empty() {
        let (scheme, inner) = rest.split_once('/')?;
        return matches!(scheme, "purelib" | "platlib").then_some(inner);
    }
    Some(member)
}

/// True when `member` goes to site-packages through the pure-Python tree.
pub fn in_purelib(member: &str, root_is_purelib: bool) -> bool {
    let (top, rest) = member.split_once('/').unwrap_or((member, ""));
    if top.ends_with(".data") {
        rest.starts_with("purelib/")
    } else {
        root_is_purelib
    }
}

/// Files that Python's `site` module runs at every interpreter start, whether or not the
/// package is ever imported.
pub enum StartupFile {
    Pth,
    Hook,
}

pub fn startup_file(member: &str) -> Option<StartupFile> {
    let installed = installed_path(member)?;
    if !installed.contains('/') && installed.ends_with(".pth") {
        return Some(StartupFile::Pth);
    }
    let hooks = [
        "sitecustomize.py",
        "usercustomize.py",
        "sitecustomize/__init__.py",
        "usercustomize/__init__.py",
    ];
    hooks.contains(&installed).then_some(StartupFile::Hook)
}

/// `.pth` lines starting with `import` are executed by `site` (the litellm 1.82.8 credential
/// stealer hid in one). Reports the first such line.
pub fn check_pth(path: &str, bytes: &[u8], findings: &mut Vec<Finding>) {
    let text = String::from_utf8_lossy(bytes);
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("import ") || l.starts_with("import\t"))
    {
        findings.push(Finding::new(
            FindingCode::PthExecutesCode,
            path,
            format!("runs at every interpreter start: {}", clip(line)),
        ));
    }
}

pub fn check_hook(path: &str, bytes: &[u8], findings: &mut Vec<Finding>) {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    findings.push(Finding::new(
        FindingCode::StartupHook,
        path,
        format!(
            "imported by `site` at every interpreter start; first line: {}",
            clip(line)
        ),
    ));
}

fn clip(line: &str) -> String {
    const MAX: usize = 200;
    let mut s: String = line.chars().take(MAX).collect();
    if line.chars().count() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel(name: &str) -> WheelFilename {
        WheelFilename::parse_any(name).unwrap()
    }

    #[test]
    fn a_compressed_tag_line_stands_for_its_expansion() {
        // maturin <= 1.7 wrote the filename's compressed platform set on one Tag line.
        let w = WheelFilename::parse_any(
            "x-1.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        let text = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64\n";
        let mut f = vec![];
        check_wheel_file("x-1.0.dist-info/WHEEL", text.as_bytes(), &w, &mut f);
        assert!(f.is_empty(), "{f:?}");
        // Expanded, it must still be the filename's set: a line adding a platform is a mismatch.
        let text = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp310-cp310-manylinux_2_17_x86_64.win_amd64\n";
        let mut f = vec![];
        check_wheel_file("x-1.0.dist-info/WHEEL", text.as_bytes(), &w, &mut f);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::WheelTagsMismatch);
        assert!(f[0].detail.contains("win_amd64"), "{}", f[0].detail);
        assert_eq!(expand_tag_line("not a tag"), ["not a tag"]);
        // torch's shape: a manylinux2014 filename, WHEEL naming the tag and its PEP 600 alias.
        let w = WheelFilename::parse_any("x-1.0-cp312-cp312-manylinux2014_aarch64.whl").unwrap();
        let text = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp312-cp312-manylinux2014_aarch64\nTag: cp312-cp312-manylinux_2_17_aarch64\n";
        let mut f = vec![];
        check_wheel_file("x-1.0.dist-info/WHEEL", text.as_bytes(), &w, &mut f);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn wheel_file_tags_must_match_filename() {
        let w = wheel("demo-1.0-cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
        let good = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-abi3-manylinux_2_17_x86_64\nTag: cp311-abi3-manylinux2014_x86_64\n";
        let mut f = vec![];
        check_wheel_file("d/WHEEL", good.as_bytes(), &w, &mut f);
        assert!(f.is_empty(), "{f:?}");
        let lying = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-abi3-manylinux_2_17_x86_64\nTag: cp311-abi3-win_amd64\n";
        check_wheel_file("d/WHEEL", lying.as_bytes(), &w, &mut f);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, FindingCode::WheelTagsMismatch);
        assert!(f[0].detail.contains("win_amd64"), "{}", f[0].detail);
    }

    #[test]
    fn wheel_file_version_and_purelib() {
        let w = wheel("demo-1.0-py3-none-any.whl");
        let mut f = vec![];
        let info = check_wheel_file(
            "d/WHEEL",
            b"Wheel-Version: 2.0\nRoot-Is-Purelib: maybe\nTag: py3-none-any\n",
            &w,
            &mut f,
        );
        assert!(!info.root_is_purelib);
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|x| x.code == FindingCode::WheelFileInvalid));
    }

    #[test]
    fn license_facts_keep_all_three_generations() {
        let facts = license_facts(
            b"Metadata-Version: 2.4\nName: demo\nLicense-Expression: MIT OR Apache-2.0\nLicense: Permission is hereby granted\n  to anyone\nClassifier: Programming Language :: Python\nClassifier: License :: OSI Approved :: MIT License\n\nLicense: body text\n",
        );
        assert_eq!(facts.expression.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(
            facts.license.as_deref(),
            Some("Permission is hereby granted"),
            "only the first line"
        );
        assert_eq!(facts.classifiers, ["OSI Approved :: MIT License"]);
        assert!(license_facts(b"Metadata-Version: 2.1\nName: demo\n").is_empty());
    }

    #[test]
    fn metadata_must_name_the_file() {
        let w = wheel("Demo_Pkg-1.0-py3-none-any.whl");
        let mut f = vec![];
        check_metadata(
            "m",
            b"Metadata-Version: 2.1\nName: demo.pkg\nVersion: 1.0.0\n\nName: other\n",
            &w,
            &mut f,
        );
        assert!(f.is_empty(), "{f:?}");
        check_metadata(
            "m",
            b"Metadata-Version: 2.1\nName: other\nVersion: 1.1\n",
            &w,
            &mut f,
        );
        let codes: Vec<_> = f.iter().map(|x| x.code).collect();
        assert_eq!(
            codes,
            [
                FindingCode::MetadataNameMismatch,
                FindingCode::MetadataVersionMismatch
            ]
        );
    }

    #[test]
    fn record_rows() {
        let mut f = vec![];
        let text = "a.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
                    \"b,c.py\",sha512=z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg_SpIdNs6c5H0NE8XYXysP-DGNKHfuwvY7kxvUdBeoGlODJ6-SfaPg,0\n\
                    old.py,md5=1B2M2Y8AsgTpgAmY7PhCfg,0\n\
                    ../evil.py,,\n\
                    bad.py,sha256=xyz,1\n\
                    d-1.dist-info/RECORD,,\n";
        let rows = parse_record("d-1.dist-info/RECORD", text.as_bytes(), &mut f);
        assert!(
            rows["a.py"]
                .hash
                .as_ref()
                .is_some_and(|h| h.0 == HashAlgo::Sha256)
        );
        assert!(
            rows["b,c.py"]
                .hash
                .as_ref()
                .is_some_and(|h| h.0 == HashAlgo::Sha512)
        );
        assert!(rows["d-1.dist-info/RECORD"].hash.is_none());
        let codes: Vec<_> = f.iter().map(|x| x.code).collect();
        assert_eq!(
            codes,
            [
                FindingCode::RecordWeakHash,
                FindingCode::RecordUnsafePath,
                FindingCode::RecordInvalid
            ]
        );
    }

    #[test]
    fn startup_files() {
        assert!(matches!(startup_file("evil.pth"), Some(StartupFile::Pth)));
        assert!(matches!(
            startup_file("x-1.data/purelib/evil.pth"),
            Some(StartupFile::Pth)
        ));
        assert!(startup_file("pkg/data.pth").is_none());
        assert!(startup_file("x-1.data/data/evil.pth").is_none());
        assert!(matches!(
            startup_file("sitecustomize.py"),
            Some(StartupFile::Hook)
        ));
        assert!(startup_file("pkg/sitecustomize.py").is_none());
        let mut f = vec![];
        check_pth("a.pth", b"/some/path\nimport os; os.system('x')\n", &mut f);
        check_pth("b.pth", b"/some/path\n  import os\n", &mut f);
        assert_eq!(f.len(), 1);
        assert!(f[0].detail.contains("os.system"));
        assert!(!f[0].hides);
    }
}
