//! What an audit reports: findings with stable codes, and the verdict they add up to.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable name for each kind of finding. Policies and scripts match on
/// these strings, so a code is never renamed; new kinds get new codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    // The archive itself.
    ZipInvalid,
    ZipFraming,
    ZipDuplicateEntry,
    ZipUnsafePath,
    ZipSymlink,
    ZipSpecialFile,
    ZipCompression,
    ZipBomb,
    ZipSizeMismatch,
    // The `.dist-info` metadata.
    DistInfoMissing,
    DistInfoMultiple,
    WheelFileInvalid,
    WheelTagsMismatch,
    WheelBuildMismatch,
    MetadataInvalid,
    MetadataNameMismatch,
    MetadataVersionMismatch,
    RecordMissing,
    RecordInvalid,
    RecordUnsafePath,
    RecordWeakHash,
    RecordHashMismatch,
    RecordSizeMismatch,
    RecordUnlistedFile,
    RecordMissingFile,
    // FindingCode that runs at interpreter start.
    PthExecutesCode,
    StartupHook,
    // Native code.
    NativeUnparseable,
    NativeInPurelib,
    NativeInPureWheel,
    Abi3BadTag,
    Abi3OutsideStableAbi,
    Abi3NewerThanTag,
    Abi3NotOnTargetOs,
    Abi3PythonLinkage,
    ElfArchMismatch,
    ElfIsaLevel,
    LinuxPolicyUnknown,
    ManylinuxSymbolVersion,
    ManylinuxExternalLibrary,
    ManylinuxBlacklistedSymbol,
    MusllinuxNeedsGlibc,
    ManylinuxNeedsMusl,
    MachoArchMissing,
    MacosVersionTooNew,
    MacosExternalLibrary,
    PeMachineMismatch,
    WindowsExternalLibrary,
}

impl FindingCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ZipInvalid => "zip-invalid",
            Self::ZipFraming => "zip-framing",
            Self::ZipDuplicateEntry => "zip-duplicate-entry",
            Self::ZipUnsafePath => "zip-unsafe-path",
            Self::ZipSymlink => "zip-symlink",
            Self::ZipSpecialFile => "zip-special-file",
            Self::ZipCompression => "zip-compression",
            Self::ZipBomb => "zip-bomb",
            Self::ZipSizeMismatch => "zip-size-mismatch",
            Self::DistInfoMissing => "dist-info-missing",
            Self::DistInfoMultiple => "dist-info-multiple",
            Self::WheelFileInvalid => "wheel-file-invalid",
            Self::WheelTagsMismatch => "wheel-tags-mismatch",
            Self::WheelBuildMismatch => "wheel-build-mismatch",
            Self::MetadataInvalid => "metadata-invalid",
            Self::MetadataNameMismatch => "metadata-name-mismatch",
            Self::MetadataVersionMismatch => "metadata-version-mismatch",
            Self::RecordMissing => "record-missing",
            Self::RecordInvalid => "record-invalid",
            Self::RecordUnsafePath => "record-unsafe-path",
            Self::RecordWeakHash => "record-weak-hash",
            Self::RecordHashMismatch => "record-hash-mismatch",
            Self::RecordSizeMismatch => "record-size-mismatch",
            Self::RecordUnlistedFile => "record-unlisted-file",
            Self::RecordMissingFile => "record-missing-file",
            Self::PthExecutesCode => "pth-executes-code",
            Self::StartupHook => "startup-hook",
            Self::NativeUnparseable => "native-unparseable",
            Self::NativeInPurelib => "native-in-purelib",
            Self::NativeInPureWheel => "native-in-pure-wheel",
            Self::Abi3BadTag => "abi3-bad-tag",
            Self::Abi3OutsideStableAbi => "abi3-outside-stable-abi",
            Self::Abi3NewerThanTag => "abi3-newer-than-tag",
            Self::Abi3NotOnTargetOs => "abi3-not-on-target-os",
            Self::Abi3PythonLinkage => "abi3-python-linkage",
            Self::ElfArchMismatch => "elf-arch-mismatch",
            Self::ElfIsaLevel => "elf-isa-level",
            Self::LinuxPolicyUnknown => "linux-policy-unknown",
            Self::ManylinuxSymbolVersion => "manylinux-symbol-version",
            Self::ManylinuxExternalLibrary => "manylinux-external-library",
            Self::ManylinuxBlacklistedSymbol => "manylinux-blacklisted-symbol",
            Self::MusllinuxNeedsGlibc => "musllinux-needs-glibc",
            Self::ManylinuxNeedsMusl => "manylinux-needs-musl",
            Self::MachoArchMissing => "macho-arch-missing",
            Self::MacosVersionTooNew => "macos-version-too-new",
            Self::MacosExternalLibrary => "macos-external-library",
            Self::PeMachineMismatch => "pe-machine-mismatch",
            Self::WindowsExternalLibrary => "windows-external-library",
        }
    }

    /// Whether a finding of this kind hides the wheel until a policy says otherwise. Everything
    /// hides (fail closed) except what real, working wheels do and a person should judge:
    /// `.pth` lines that run code (setuptools' `distutils-precedence.pth`), and a native library
    /// installed through purelib (nvidia's CUDA wheels and xgboost say `Root-Is-Purelib: true`
    /// in platform wheels; installers put purelib on `sys.path` beside platlib, so they load).
    pub fn hides_by_default(self) -> bool {
        !matches!(self, Self::PthExecutesCode | Self::NativeInPurelib)
    }

    pub const ALL: &'static [FindingCode] = &[
        Self::ZipInvalid,
        Self::ZipFraming,
        Self::ZipDuplicateEntry,
        Self::ZipUnsafePath,
        Self::ZipSymlink,
        Self::ZipSpecialFile,
        Self::ZipCompression,
        Self::ZipBomb,
        Self::ZipSizeMismatch,
        Self::DistInfoMissing,
        Self::DistInfoMultiple,
        Self::WheelFileInvalid,
        Self::WheelTagsMismatch,
        Self::WheelBuildMismatch,
        Self::MetadataInvalid,
        Self::MetadataNameMismatch,
        Self::MetadataVersionMismatch,
        Self::RecordMissing,
        Self::RecordInvalid,
        Self::RecordUnsafePath,
        Self::RecordWeakHash,
        Self::RecordHashMismatch,
        Self::RecordSizeMismatch,
        Self::RecordUnlistedFile,
        Self::RecordMissingFile,
        Self::PthExecutesCode,
        Self::StartupHook,
        Self::NativeUnparseable,
        Self::NativeInPurelib,
        Self::NativeInPureWheel,
        Self::Abi3BadTag,
        Self::Abi3OutsideStableAbi,
        Self::Abi3NewerThanTag,
        Self::Abi3NotOnTargetOs,
        Self::Abi3PythonLinkage,
        Self::ElfArchMismatch,
        Self::ElfIsaLevel,
        Self::LinuxPolicyUnknown,
        Self::ManylinuxSymbolVersion,
        Self::ManylinuxExternalLibrary,
        Self::ManylinuxBlacklistedSymbol,
        Self::MusllinuxNeedsGlibc,
        Self::ManylinuxNeedsMusl,
        Self::MachoArchMissing,
        Self::MacosVersionTooNew,
        Self::MacosExternalLibrary,
        Self::PeMachineMismatch,
        Self::WindowsExternalLibrary,
    ];
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with a wheel. `file` is the member path inside the archive (empty when the
/// finding is about the archive as a whole), so a person can go and look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub file: String,
    pub detail: String,
    pub hides: bool,
}

impl Finding {
    pub fn new(code: FindingCode, file: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            code,
            file: file.into(),
            detail: detail.into(),
            hides: code.hides_by_default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

/// What a wheel's METADATA says about its license, as written: all three generations of the
/// core metadata, so the policy (not the audit) decides how to read them. Bounded: a field
/// longer than [`LicenseFacts::MAX_LEN`] is kept only as its first line, cut there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseFacts {
    /// `License-Expression` (PEP 639, metadata 2.4): an SPDX expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// `License`: free text, often an SPDX id, sometimes the whole license.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// `Classifier: License :: …` values, the `License :: ` prefix removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classifiers: Vec<String>,
}

impl LicenseFacts {
    pub const MAX_LEN: usize = 256;

    pub fn is_empty(&self) -> bool {
        self.expression.is_none() && self.license.is_none() && self.classifiers.is_empty()
    }
}

/// The audit of one wheel file, keyed by the sha256 of its bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub wheel: String,
    pub sha256: String,
    pub size: u64,
    pub verdict: Verdict,
    /// Which rules judged it: a report made by other rules is not reused.
    pub auditor: String,
    pub findings: Vec<Finding>,
    /// Read from METADATA for the policy's `[licenses]` rule; not a finding by itself.
    #[serde(default, skip_serializing_if = "LicenseFacts::is_empty")]
    pub license: LicenseFacts,
    /// What the file's PEP 740 provenance proved, for the policy's `[attestations]` rule;
    /// `None` when the index lists no provenance for the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::attest::ProvenanceFacts>,
}

impl Report {
    pub fn with_license(mut self, license: LicenseFacts) -> Self {
        self.license = license;
        self
    }

    pub fn new(wheel: String, sha256: String, size: u64, mut findings: Vec<Finding>) -> Self {
        findings.sort_by(|a, b| (a.code, &a.file, &a.detail).cmp(&(b.code, &b.file, &b.detail)));
        findings.dedup();
        let verdict = if findings.iter().any(|f| f.hides) {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        Self {
            wheel,
            sha256,
            size,
            verdict,
            auditor: super::AUDITOR.to_owned(),
            findings,
            license: LicenseFacts::default(),
            provenance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_match_serde() {
        let mut seen = std::collections::HashSet::new();
        for code in FindingCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn only_pth_findings_pass_by_default() {
        let r = Report::new(
            "a-1-py3-none-any.whl".into(),
            String::new(),
            0,
            vec![Finding::new(
                FindingCode::PthExecutesCode,
                "a.pth",
                "import os",
            )],
        );
        assert_eq!(r.verdict, Verdict::Pass);
        let r = Report::new(
            "a-1-py3-none-any.whl".into(),
            String::new(),
            0,
            vec![Finding::new(
                FindingCode::StartupHook,
                "sitecustomize.py",
                "",
            )],
        );
        assert_eq!(r.verdict, Verdict::Fail);
    }
}
