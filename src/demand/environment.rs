//! An installer environment: what decides which wheels one client can install (packaging's
//! `sys_tags`, reduced to what the tags depend on). Read from a pip or uv User-Agent (the
//! "linehaul" JSON both append: Python version, implementation, OS, CPU, libc), or declared in
//! the policy's `[audit] fleet` as a Python version and a platform tag.

use std::fmt;

use crate::audit::libc::Libc;
use crate::audit::platform::parse_linux_tag;
use crate::dist::WheelFilename;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Environment {
    /// CPython or PyPy 3.minor (Python 2 clients are not told apart: they get the default).
    python_minor: u16,
    implementation: Implementation,
    os: Os,
    /// As the platform tags spell it: `x86_64`, `aarch64`, `arm64`, `amd64`, `win32`, …
    arch: String,
    /// Linux only: the C library and its version, which bound the manylinux/musllinux tags.
    libc: Option<(Libc, u16, u16)>,
    /// macOS only: the release, which bounds the `macosx_*` tags.
    macos: Option<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Implementation {
    CPython,
    PyPy,
    /// Another interpreter: it installs only pure wheels (`py3-none-*`).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Os {
    Linux,
    Darwin,
    Windows,
}

/// Why a declared environment (or a remembered one) could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvironmentError {
    #[error("`{0}` is not a Python 3 version such as \"3.12\"")]
    Python(String),
    #[error("`{0}` is not an implementation pipwall knows (cpython, pypy)")]
    Implementation(String),
    #[error(
        "`{0}` is not a platform tag of one machine (manylinux_2_28_x86_64, musllinux_1_2_aarch64, macosx_14_0_arm64, win_amd64, …)"
    )]
    Platform(String),
    #[error("`{0}` is not an environment as pipwall writes them")]
    Unreadable(String),
}

#[derive(serde::Deserialize)]
struct Linehaul {
    python: Option<String>,
    implementation: Option<Named>,
    system: Option<Named>,
    cpu: Option<String>,
    distro: Option<Distro>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(serde::Deserialize)]
struct Distro {
    version: Option<String>,
    libc: Option<LibcInfo>,
}

#[derive(serde::Deserialize)]
struct LibcInfo {
    lib: Option<String>,
    version: Option<String>,
}

fn major_minor(v: &str) -> Option<(u16, u16)> {
    let mut parts = v.split('.');
    let major = parts.next()?.trim().parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| {
        m.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    })?;
    Some((major, minor))
}

/// Only the characters platform tags use, and short: an arch ends up in files and labels.
fn plausible_arch(arch: &str) -> bool {
    !arch.is_empty()
        && arch.len() <= 16
        && arch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// macOS releases from 11 on are told apart by their major version alone (packaging's
/// `mac_platforms` lists `macosx_14_0` for every 14.x), so remembering the minor would only
/// multiply environments.
fn macos_release((major, minor): (u16, u16)) -> (u16, u16) {
    if major >= 11 {
        (major, 0)
    } else {
        (major, minor)
    }
}

impl Environment {
    /// Reads a pip or uv User-Agent; `None` when it does not say enough to pick wheels by
    /// (another client, Python 2, an unknown OS or CPU).
    pub fn from_user_agent(ua: &str) -> Option<Self> {
        let start = ua.find('{')?;
        // Bounded: the User-Agent is the client's to make up.
        let json = ua.get(start..)?;
        if json.len() > 8192 {
            return None;
        }
        let data = serde_json::from_str::<Linehaul>(json).ok()?;
        let (major, python_minor) = data.python.as_deref().and_then(major_minor)?;
        if major != 3 {
            return None;
        }
        let implementation = match data.implementation.and_then(|i| i.name) {
            Some(n) if n.eq_ignore_ascii_case("cpython") => Implementation::CPython,
            Some(n) if n.eq_ignore_ascii_case("pypy") => Implementation::PyPy,
            _ => Implementation::Other,
        };
        let system = data.system.and_then(|s| s.name).unwrap_or_default();
        let os = match system.to_ascii_lowercase().as_str() {
            "linux" => Os::Linux,
            "darwin" => Os::Darwin,
            "windows" => Os::Windows,
            _ => return None,
        };
        let cpu = data.cpu.unwrap_or_default().to_ascii_lowercase();
        let arch = match (os, cpu.as_str()) {
            (Os::Windows, "amd64" | "x86_64") => "amd64".to_owned(),
            (Os::Windows, "x86" | "i386" | "i686") => "win32".to_owned(),
            (Os::Windows, "arm64" | "aarch64") => "arm64".to_owned(),
            (Os::Darwin, "arm64" | "aarch64") => "arm64".to_owned(),
            (_, c) if plausible_arch(c) => c.to_owned(),
            _ => return None,
        };
        let mut libc = None;
        let mut macos = None;
        if let Some(d) = data.distro {
            if os == Os::Linux
                && let Some(l) = d.libc
                && let (Some(lib), Some((major, minor))) =
                    (l.lib, l.version.as_deref().and_then(major_minor))
            {
                libc = match lib.as_str() {
                    "glibc" => Some((Libc::Glibc, major, minor)),
                    "musl" => Some((Libc::Musl, major, minor)),
                    _ => None,
                };
            }
            if os == Os::Darwin {
                macos = d
                    .version
                    .as_deref()
                    .and_then(major_minor)
                    .map(macos_release);
            }
        }
        Some(Self {
            python_minor,
            implementation,
            os,
            arch,
            libc,
            macos,
        })
    }

    /// A fleet entry of the policy: `python = "3.11"`, a platform tag naming the oldest
    /// machine of that kind the fleet runs (`manylinux_2_28_x86_64` is glibc 2.28 or newer),
    /// and the implementation (CPython unless said otherwise).
    pub fn declared(
        python: &str,
        platform: &str,
        implementation: Option<&str>,
    ) -> Result<Self, EnvironmentError> {
        let python_minor = match major_minor(python) {
            Some((3, minor)) if python.split('.').count() == 2 => minor,
            _ => return Err(EnvironmentError::Python(python.to_owned())),
        };
        let implementation = match implementation.map(str::to_ascii_lowercase).as_deref() {
            None | Some("cpython") => Implementation::CPython,
            Some("pypy") => Implementation::PyPy,
            Some(other) => return Err(EnvironmentError::Implementation(other.to_owned())),
        };
        let bad = || EnvironmentError::Platform(platform.to_owned());
        let (os, arch, libc, macos) = if let Some(tag) = parse_linux_tag(platform) {
            (
                Os::Linux,
                tag.arch.to_owned(),
                Some((tag.libc, tag.major, tag.minor)),
                None,
            )
        } else if let Some(rest) = platform.strip_prefix("macosx_") {
            let mut parts = rest.splitn(3, '_');
            let major = parts.next().and_then(|v| v.parse::<u16>().ok());
            let minor = parts.next().and_then(|v| v.parse::<u16>().ok());
            let arch = parts.next().unwrap_or_default();
            match (major, minor, arch) {
                (Some(major), Some(minor), "arm64" | "x86_64") => (
                    Os::Darwin,
                    arch.to_owned(),
                    None,
                    Some(macos_release((major, minor))),
                ),
                _ => return Err(bad()),
            }
        } else {
            match platform {
                "win_amd64" => (Os::Windows, "amd64".to_owned(), None, None),
                "win32" => (Os::Windows, "win32".to_owned(), None, None),
                "win_arm64" => (Os::Windows, "arm64".to_owned(), None, None),
                _ => return Err(bad()),
            }
        };
        Ok(Self {
            python_minor,
            implementation,
            os,
            arch,
            libc,
            macos,
        })
    }

    /// Whether this environment would consider installing `wheel`: one of its tag triples
    /// is one packaging's `sys_tags` gives this interpreter on this machine.
    pub fn may_install(&self, wheel: &WheelFilename) -> bool {
        wheel
            .tags
            .triples()
            .any(|(py, abi, plat)| self.python_ok(py, abi) && self.platform_ok(plat))
    }

    fn python_ok(&self, py: &str, abi: &str) -> bool {
        let minor = self.python_minor;
        // `py3` → any 3.x (None); `py311` / `cp311` → Some(11).
        let minor_of = |tag: &str, prefix: &str| -> Option<Option<u16>> {
            let rest = tag.strip_prefix(prefix)?.strip_prefix('3')?;
            if rest.is_empty() {
                Some(None)
            } else {
                rest.parse().ok().map(Some)
            }
        };
        let fits = |m: Option<u16>| m.is_none_or(|m| m <= minor);
        let cpython = self.implementation == Implementation::CPython;
        match abi {
            // packaging's `compatible_tags`: `py3x-none` for every interpreter, `cp3x-none`
            // only for CPython.
            "none" => {
                minor_of(py, "py").is_some_and(fits)
                    || (cpython && minor_of(py, "cp").is_some_and(fits))
            }
            "abi3" => cpython && minor_of(py, "cp").flatten().is_some_and(|m| m <= minor),
            _ if cpython => {
                minor_of(py, "cp").flatten() == Some(minor)
                    && abi.starts_with(&format!("cp3{minor}"))
            }
            _ if self.implementation == Implementation::PyPy => {
                minor_of(py, "pp").flatten() == Some(minor)
                    && abi.starts_with(&format!("pypy3{minor}"))
            }
            _ => false,
        }
    }

    fn platform_ok(&self, plat: &str) -> bool {
        if plat == "any" {
            return true;
        }
        let arch = self.arch.as_str();
        match self.os {
            Os::Linux => {
                let Some(tag) = parse_linux_tag(plat) else {
                    return plat == format!("linux_{arch}");
                };
                tag.arch == arch
                    && self.libc.is_some_and(|(libc, major, minor)| {
                        libc == tag.libc && (tag.major, tag.minor) <= (major, minor)
                    })
            }
            Os::Darwin => {
                let Some(rest) = plat.strip_prefix("macosx_") else {
                    return false;
                };
                let mut parts = rest.splitn(3, '_');
                let version = (
                    parts.next().and_then(|v| v.parse::<u16>().ok()),
                    parts.next().and_then(|v| v.parse::<u16>().ok()),
                );
                let tag_arch = parts.next().unwrap_or_default();
                let arch_ok = tag_arch == arch
                    || tag_arch == "universal2"
                    || (arch == "x86_64" && matches!(tag_arch, "intel" | "fat64" | "universal"));
                let version_ok = match (version, self.macos) {
                    ((Some(major), Some(minor)), Some(have)) => {
                        macos_release((major, minor)) <= have
                    }
                    _ => true,
                };
                arch_ok && version_ok
            }
            Os::Windows => plat == format!("win_{arch}") || (arch == "win32" && plat == "win32"),
        }
    }
}

/// One line, as logs, metrics and `environments.json` spell it:
/// `cpython3.11-linux-x86_64-glibc2.36`, `cpython3.12-macos14.0-arm64`,
/// `pypy3.10-windows-amd64`. [`std::str::FromStr`] reads it back.
impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let implementation = match self.implementation {
            Implementation::CPython => "cpython",
            Implementation::PyPy => "pypy",
            Implementation::Other => "other",
        };
        write!(f, "{implementation}3.{}-", self.python_minor)?;
        match self.os {
            Os::Linux => {
                write!(f, "linux-{}", self.arch)?;
                match self.libc {
                    Some((Libc::Glibc, a, b)) => write!(f, "-glibc{a}.{b}"),
                    Some((Libc::Musl, a, b)) => write!(f, "-musl{a}.{b}"),
                    None => Ok(()),
                }
            }
            Os::Darwin => match self.macos {
                Some((a, b)) => write!(f, "macos{a}.{b}-{}", self.arch),
                None => write!(f, "macos-{}", self.arch),
            },
            Os::Windows => write!(f, "windows-{}", self.arch),
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = EnvironmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EnvironmentError::Unreadable(s.to_owned());
        let mut parts = s.split('-');
        let python = parts.next().ok_or_else(bad)?;
        let (implementation, version) = [
            ("cpython", Implementation::CPython),
            ("pypy", Implementation::PyPy),
            ("other", Implementation::Other),
        ]
        .into_iter()
        .find_map(|(p, i)| Some((i, python.strip_prefix(p)?)))
        .ok_or_else(bad)?;
        let python_minor = match major_minor(version) {
            Some((3, m)) => m,
            _ => return Err(bad()),
        };
        let system = parts.next().ok_or_else(bad)?;
        let version_of = |text: &str, prefix: &str| major_minor(text.strip_prefix(prefix)?);
        let (os, arch, libc, macos) = if system == "linux" {
            let arch = parts.next().ok_or_else(bad)?.to_owned();
            let libc = match parts.next() {
                None => None,
                Some(l) => Some(if let Some((a, b)) = version_of(l, "glibc") {
                    (Libc::Glibc, a, b)
                } else {
                    let (a, b) = version_of(l, "musl").ok_or_else(bad)?;
                    (Libc::Musl, a, b)
                }),
            };
            (Os::Linux, arch, libc, None)
        } else if system == "windows" {
            (
                Os::Windows,
                parts.next().ok_or_else(bad)?.to_owned(),
                None,
                None,
            )
        } else if let Some(release) = system.strip_prefix("macos") {
            let macos = if release.is_empty() {
                None
            } else {
                Some(major_minor(release).ok_or_else(bad)?)
            };
            (
                Os::Darwin,
                parts.next().ok_or_else(bad)?.to_owned(),
                None,
                macos,
            )
        } else {
            return Err(bad());
        };
        if parts.next().is_some() || !plausible_arch(&arch) {
            return Err(bad());
        }
        Ok(Self {
            python_minor,
            implementation,
            os,
            arch,
            libc,
            macos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIP_LINUX: &str = r#"pip/26.3 {"ci":null,"cpu":"x86_64","distro":{"id":"bookworm","libc":{"lib":"glibc","version":"2.36"},"name":"Debian GNU/Linux","version":"12"},"implementation":{"name":"CPython","version":"3.11.7"},"installer":{"name":"pip","version":"26.3"},"python":"3.11.7","system":{"name":"Linux","release":"6.1.0"}}"#;
    const UV_MAC: &str = r#"uv/0.13.9 {"installer":{"name":"uv","version":"0.13.9"},"python":"3.12.4","implementation":{"name":"CPython","version":"3.12.4"},"distro":{"name":"macOS","version":"14.2","id":null,"libc":null},"system":{"name":"Darwin","release":"23.2.0"},"cpu":"arm64"}"#;
    const PIP_WIN: &str = r#"pip/26.3 {"cpu":"AMD64","implementation":{"name":"CPython","version":"3.13.1"},"python":"3.13.1","system":{"name":"Windows","release":"10"}}"#;

    fn may(ua: &str, filename: &str) -> bool {
        Environment::from_user_agent(ua)
            .unwrap()
            .may_install(&WheelFilename::parse_any(filename).unwrap())
    }

    #[test]
    fn linux_pip() {
        assert!(may(PIP_LINUX, "a-1-py3-none-any.whl"));
        assert!(may(
            PIP_LINUX,
            "a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(may(PIP_LINUX, "a-1-cp36-abi3-manylinux1_x86_64.whl"));
        assert!(!may(PIP_LINUX, "a-1-cp312-cp312-manylinux_2_17_x86_64.whl"));
        assert!(!may(PIP_LINUX, "a-1-cp311-cp311-manylinux_2_39_x86_64.whl"));
        assert!(!may(PIP_LINUX, "a-1-cp311-cp311-musllinux_1_2_x86_64.whl"));
        assert!(!may(
            PIP_LINUX,
            "a-1-cp311-cp311-manylinux_2_17_aarch64.whl"
        ));
        assert!(!may(PIP_LINUX, "a-1-cp311-cp311-win_amd64.whl"));
        assert!(!may(PIP_LINUX, "a-1-cp312-abi3-manylinux_2_17_x86_64.whl"));
    }

    #[test]
    fn mac_uv() {
        assert!(may(UV_MAC, "a-1-cp312-cp312-macosx_11_0_arm64.whl"));
        assert!(may(UV_MAC, "a-1-cp39-abi3-macosx_10_12_universal2.whl"));
        assert!(!may(UV_MAC, "a-1-cp312-cp312-macosx_10_9_x86_64.whl"));
        assert!(!may(UV_MAC, "a-1-cp312-cp312-macosx_15_0_arm64.whl"));
    }

    #[test]
    fn windows_pip() {
        assert!(may(PIP_WIN, "a-1-cp313-cp313-win_amd64.whl"));
        assert!(!may(PIP_WIN, "a-1-cp313-cp313-win32.whl"));
    }

    #[test]
    fn clients_that_say_too_little_have_no_environment() {
        for ua in [
            "curl/8.0",
            "",
            "pip/26.3 {not json",
            "pip/1 {\"python\":\"2.7\"}",
            "pip/26.3 {\"python\":\"3.11\",\"system\":{\"name\":\"Plan9\"},\"cpu\":\"x86_64\"}",
            "pip/26.3 {\"python\":\"3.11\",\"system\":{\"name\":\"Linux\"},\"cpu\":\"x86/../64\"}",
        ] {
            assert_eq!(Environment::from_user_agent(ua), None, "{ua}");
        }
    }

    #[test]
    fn pypy_installs_its_own_tags_and_pure_ones() {
        let ua = r#"pip/26.3 {"cpu":"x86_64","distro":{"libc":{"lib":"glibc","version":"2.36"}},"implementation":{"name":"PyPy"},"python":"3.10.14","system":{"name":"Linux"}}"#;
        assert!(may(ua, "a-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl"));
        assert!(may(ua, "a-1-py3-none-any.whl"));
        assert!(!may(ua, "a-1-cp310-cp310-manylinux_2_17_x86_64.whl"));
        assert!(!may(ua, "a-1-cp310-abi3-manylinux_2_17_x86_64.whl"));
        assert!(!may(ua, "a-1-cp310-none-any.whl"));
    }

    #[test]
    fn declared_environments_read_platform_tags() {
        let env = Environment::declared("3.11", "manylinux_2_28_x86_64", None).unwrap();
        assert_eq!(env.to_string(), "cpython3.11-linux-x86_64-glibc2.28");
        let w = |f: &str| WheelFilename::parse_any(f).unwrap();
        assert!(env.may_install(&w("a-1-cp311-cp311-manylinux2014_x86_64.whl")));
        assert!(!env.may_install(&w("a-1-cp311-cp311-manylinux_2_34_x86_64.whl")));
        let mac = Environment::declared("3.13", "macosx_14_0_arm64", Some("CPython")).unwrap();
        assert_eq!(mac.to_string(), "cpython3.13-macos14.0-arm64");
        assert!(mac.may_install(&w("a-1-cp313-cp313-macosx_14_5_arm64.whl")));
        let win = Environment::declared("3.12", "win_amd64", None).unwrap();
        assert!(win.may_install(&w("a-1-cp312-cp312-win_amd64.whl")));
        for (py, plat, imp) in [
            ("3", "win_amd64", None),
            ("2.7", "win_amd64", None),
            ("3.11.2", "win_amd64", None),
            ("3.11", "linux_x86_64", None),
            ("3.11", "macosx_14_0_universal2", None),
            ("3.11", "any", None),
            ("3.11", "win_amd64", Some("jython")),
        ] {
            assert!(Environment::declared(py, plat, imp).is_err(), "{py} {plat}");
        }
    }

    #[test]
    fn environments_read_back_as_written() {
        for ua in [PIP_LINUX, UV_MAC, PIP_WIN] {
            let env = Environment::from_user_agent(ua).unwrap();
            let text = env.to_string();
            assert_eq!(text.parse::<Environment>().unwrap(), env, "{text}");
        }
        assert_eq!(
            Environment::from_user_agent(UV_MAC).unwrap().to_string(),
            "cpython3.12-macos14.0-arm64"
        );
        for bad in [
            "",
            "cpython3.11",
            "cpython2.7-linux-x86_64",
            "cpython3.11-linux-x86_64-glibc2.28-x",
            "cpython3.11-beos-x86",
            "cpython3.11-linux-../x",
        ] {
            assert!(bad.parse::<Environment>().is_err(), "{bad}");
        }
    }
}
