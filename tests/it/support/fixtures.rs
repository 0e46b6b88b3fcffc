//! Distributions built at test time: real wheels (zip with METADATA, WHEEL and RECORD) and
//! sdists whose `setup.py` would leave a marker file if it ever ran.

use std::io::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct Fixture {
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl Fixture {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

fn record_line(path: &str, data: &[u8]) -> String {
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(data));
    format!("{path},sha256={digest},{}", data.len())
}

/// A pure-Python wheel whose module records its version: `<module>/__init__.py` holds
/// `VERSION = '<version>'`.
pub fn wheel(name: &str, version: &str) -> Fixture {
    let module = name.replace('-', "_").to_lowercase();
    WheelSpec::new(name, version, "py3-none-any")
        .file(
            &format!("{module}/__init__.py"),
            format!("VERSION = '{version}'\n").into_bytes(),
        )
        .build()
}

/// A wheel made to order: its payload files, and the metadata files written from the filename
/// unless a test overrides them to make the wheel lie.
#[derive(Clone)]
pub struct WheelSpec {
    pub name: String,
    pub version: String,
    /// `python-abi-platform`, possibly compressed (`cp37.cp38-abi3-manylinux_2_17_x86_64`).
    pub tag: String,
    pub files: Vec<(String, Vec<u8>)>,
    /// Added after RECORD is written, so RECORD does not list them.
    pub unlisted: Vec<(String, Vec<u8>)>,
    pub wheel_file: Option<String>,
    pub metadata: Option<String>,
    /// Replaces the computed RECORD; `Some("")` with `record_missing` drops it.
    pub record: Option<String>,
    pub record_missing: bool,
}

impl WheelSpec {
    pub fn new(name: &str, version: &str, tag: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            tag: tag.into(),
            files: vec![],
            unlisted: vec![],
            wheel_file: None,
            metadata: None,
            record: None,
            record_missing: false,
        }
    }

    pub fn file(mut self, path: &str, data: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.into(), data.into()));
        self
    }

    pub fn filename(&self) -> String {
        format!(
            "{}-{}-{}.whl",
            self.name.replace('-', "_").to_lowercase(),
            self.version,
            self.tag
        )
    }

    pub fn dist_info(&self) -> String {
        format!(
            "{}-{}.dist-info",
            self.name.replace('-', "_").to_lowercase(),
            self.version
        )
    }

    /// The expanded `Tag:` lines of the WHEEL file.
    fn tag_lines(&self) -> String {
        let mut parts = self.tag.splitn(3, '-');
        let (py, abi, plat) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let mut out = String::new();
        for p in py.split('.') {
            for a in abi.split('.') {
                for pl in plat.split('.') {
                    out.push_str(&format!("Tag: {p}-{a}-{pl}\n"));
                }
            }
        }
        out
    }

    pub fn build(&self) -> Fixture {
        let dist = self.dist_info();
        let purelib = self.tag.ends_with("-none-any");
        let mut files = self.files.clone();
        files.push((
            format!("{dist}/METADATA"),
            self.metadata
                .clone()
                .unwrap_or_else(|| {
                    format!(
                        "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
                        self.name, self.version
                    )
                })
                .into_bytes(),
        ));
        files.push((
            format!("{dist}/WHEEL"),
            self.wheel_file
                .clone()
                .unwrap_or_else(|| {
                    format!(
                        "Wheel-Version: 1.0\nGenerator: pipwall-tests\nRoot-Is-Purelib: {purelib}\n{}",
                        self.tag_lines()
                    )
                })
                .into_bytes(),
        ));
        if !self.record_missing {
            let record = self.record.clone().unwrap_or_else(|| {
                let mut r: String = files
                    .iter()
                    .map(|(p, d)| record_line(p, d) + "\n")
                    .collect();
                r.push_str(&format!("{dist}/RECORD,,\n"));
                r
            });
            files.push((format!("{dist}/RECORD"), record.into_bytes()));
        }
        files.extend(self.unlisted.iter().cloned());
        Fixture {
            filename: self.filename(),
            bytes: zip_files(&files),
        }
    }
}

pub fn record_row(path: &str, data: &[u8]) -> String {
    record_line(path, data)
}

/// A zip of `files` in order, deflated.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (p, d) in files {
            z.start_file(p.as_str(), opts).unwrap();
            z.write_all(d).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// An sdist whose `setup.py` writes `marker` when run: a canary for "sdists are never fetched
/// or built".
pub fn sdist(name: &str, version: &str, marker: &std::path::Path) -> Fixture {
    let base = format!("{}-{version}", name.replace('-', "_").to_lowercase());
    let setup = format!(
        "open({:?}, 'w').write('setup.py ran')\nfrom setuptools import setup\nsetup(name={name:?}, version={version:?})\n",
        marker.display().to_string()
    );
    let pkg_info = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let mut tar_bytes = Vec::new();
    {
        let enc = flate2::write::GzEncoder::new(&mut tar_bytes, flate2::Compression::fast());
        let mut t = tar::Builder::new(enc);
        for (p, d) in [
            ("setup.py", setup.as_bytes()),
            ("PKG-INFO", pkg_info.as_bytes()),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, format!("{base}/{p}"), d).unwrap();
        }
        t.into_inner().unwrap().finish().unwrap();
    }
    Fixture {
        filename: format!("{base}.tar.gz"),
        bytes: tar_bytes,
    }
}
