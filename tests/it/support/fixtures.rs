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
    let dist = format!("{module}-{version}.dist-info");
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (format!("{module}/__init__.py"), format!("VERSION = '{version}'\n").into_bytes()),
        (
            format!("{dist}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").into_bytes(),
        ),
        (
            format!("{dist}/WHEEL"),
            b"Wheel-Version: 1.0\nGenerator: pipwall-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n".to_vec(),
        ),
    ];
    let mut record: String = files
        .iter()
        .map(|(p, d)| record_line(p, d) + "\n")
        .collect();
    record.push_str(&format!("{dist}/RECORD,,\n"));
    files.push((format!("{dist}/RECORD"), record.into_bytes()));
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (p, d) in &files {
            z.start_file(p.as_str(), opts).unwrap();
            z.write_all(d).unwrap();
        }
        z.finish().unwrap();
    }
    Fixture {
        filename: format!("{module}-{version}-py3-none-any.whl"),
        bytes: buf.into_inner(),
    }
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
