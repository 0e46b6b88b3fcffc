//! Which wheels a client can install, read from its User-Agent, so those are audited first.
//!
//! pip and uv append a JSON object to their User-Agent (the "linehaul" data: Python version,
//! implementation, OS, CPU, libc). From it pipwall guesses the client's compatible tags the way
//! packaging's `sys_tags` builds them. The guess only orders work: a wheel judged incompatible
//! is still audited, just after the ones the client will pick from.

use serde::Deserialize;

use crate::audit::platform::{Libc, parse_linux_tag};
use crate::dist::WheelFilename;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// CPython or PyPy 3.minor; `None` when unknown.
    python_minor: Option<u16>,
    cpython: bool,
    os: Os,
    /// As the platform tags spell it: `x86_64`, `aarch64`, `arm64`, `amd64`, …
    arch: Option<String>,
    libc: Option<(Libc, u16, u16)>,
    macos: Option<(u16, u16)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Os {
    #[default]
    Unknown,
    Linux,
    Darwin,
    Windows,
}

#[derive(Deserialize)]
struct Linehaul {
    python: Option<String>,
    implementation: Option<Named>,
    system: Option<Named>,
    cpu: Option<String>,
    distro: Option<Distro>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Distro {
    name: Option<String>,
    version: Option<String>,
    libc: Option<LibcInfo>,
}

#[derive(Deserialize)]
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

impl Client {
    /// Reads a pip or uv User-Agent; anything else gives an unknown client (no preference).
    pub fn from_user_agent(ua: &str) -> Self {
        let Some(start) = ua.find('{') else {
            return Self::default();
        };
        // Bounded: the User-Agent is the client's to make up.
        let json = ua.get(start..).unwrap_or_default();
        if json.len() > 8192 {
            return Self::default();
        }
        let Ok(data) = serde_json::from_str::<Linehaul>(json) else {
            return Self::default();
        };
        let python_minor = data
            .python
            .as_deref()
            .and_then(major_minor)
            .filter(|(major, _)| *major == 3)
            .map(|(_, minor)| minor);
        let cpython = data
            .implementation
            .and_then(|i| i.name)
            .is_some_and(|n| n.eq_ignore_ascii_case("cpython"));
        let system = data.system.and_then(|s| s.name).unwrap_or_default();
        let os = match system.to_ascii_lowercase().as_str() {
            "linux" => Os::Linux,
            "darwin" => Os::Darwin,
            "windows" => Os::Windows,
            _ => Os::Unknown,
        };
        let cpu = data.cpu.unwrap_or_default().to_ascii_lowercase();
        let arch = match (os, cpu.as_str()) {
            (_, "") => None,
            (Os::Windows, "amd64" | "x86_64") => Some("amd64".to_owned()),
            (Os::Windows, "x86" | "i386" | "i686") => Some("win32".to_owned()),
            (Os::Windows, "arm64" | "aarch64") => Some("arm64".to_owned()),
            (Os::Darwin, "arm64" | "aarch64") => Some("arm64".to_owned()),
            (_, c) => Some(c.to_owned()),
        };
        let mut libc = None;
        let mut macos = None;
        if let Some(d) = data.distro {
            if let Some(l) = d.libc
                && let (Some(lib), Some((major, minor))) =
                    (l.lib, l.version.as_deref().and_then(major_minor))
            {
                libc = match lib.as_str() {
                    "glibc" => Some((Libc::Glibc, major, minor)),
                    "musl" => Some((Libc::Musl, major, minor)),
                    _ => None,
                };
            }
            if os == Os::Darwin || d.name.as_deref() == Some("macOS") {
                macos = d.version.as_deref().and_then(major_minor);
            }
        }
        Self {
            python_minor,
            cpython,
            os,
            arch,
            libc,
            macos,
        }
    }

    fn is_known(&self) -> bool {
        self.python_minor.is_some() && self.os != Os::Unknown
    }

    /// Whether the client would consider installing `wheel`. Unknown clients consider every
    /// wheel, so for them nothing is reordered.
    pub fn may_install(&self, wheel: &WheelFilename) -> bool {
        if !self.is_known() {
            return true;
        }
        wheel
            .tags
            .triples()
            .any(|(py, abi, plat)| self.python_ok(py, abi) && self.platform_ok(plat))
    }

    fn python_ok(&self, py: &str, abi: &str) -> bool {
        let Some(minor) = self.python_minor else {
            return true;
        };
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
        match abi {
            "none" => ["py", "cp"]
                .iter()
                .filter_map(|p| minor_of(py, p))
                .any(fits),
            "abi3" => self.cpython && minor_of(py, "cp").flatten().is_some_and(|m| m <= minor),
            _ => {
                self.cpython
                    && minor_of(py, "cp").flatten() == Some(minor)
                    && abi.starts_with(&format!("cp3{minor}"))
            }
        }
    }

    fn platform_ok(&self, plat: &str) -> bool {
        if plat == "any" {
            return true;
        }
        let arch = self.arch.as_deref().unwrap_or_default();
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
                    ((Some(major), Some(minor)), Some(have)) => (major, minor) <= have,
                    _ => true,
                };
                arch_ok && version_ok
            }
            Os::Windows => plat == format!("win_{arch}") || (arch == "win32" && plat == "win32"),
            Os::Unknown => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIP_LINUX: &str = r#"pip/26.3 {"ci":null,"cpu":"x86_64","distro":{"id":"bookworm","libc":{"lib":"glibc","version":"2.36"},"name":"Debian GNU/Linux","version":"12"},"implementation":{"name":"CPython","version":"3.11.7"},"installer":{"name":"pip","version":"26.3"},"python":"3.11.7","system":{"name":"Linux","release":"6.1.0"}}"#;
    const UV_MAC: &str = r#"uv/0.13.9 {"installer":{"name":"uv","version":"0.13.9"},"python":"3.12.4","implementation":{"name":"CPython","version":"3.12.4"},"distro":{"name":"macOS","version":"14.2","id":null,"libc":null},"system":{"name":"Darwin","release":"23.2.0"},"cpu":"arm64"}"#;
    const PIP_WIN: &str = r#"pip/26.3 {"cpu":"AMD64","implementation":{"name":"CPython","version":"3.13.1"},"python":"3.13.1","system":{"name":"Windows","release":"10"}}"#;

    fn may(ua: &str, filename: &str) -> bool {
        Client::from_user_agent(ua).may_install(&WheelFilename::parse_any(filename).unwrap())
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
    fn unknown_clients_consider_everything() {
        for ua in [
            "curl/8.0",
            "",
            "pip/26.3 {not json",
            "pip/1 {\"python\":\"2.7\"}",
        ] {
            assert!(may(ua, "a-1-cp311-cp311-win_arm64.whl"), "{ua}");
        }
    }
}
