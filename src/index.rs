//! The simple repository API (PEP 503 HTML, PEP 691 JSON and their amendments): parsing upstream
//! pages into one model, and rendering pipwall's own pages from it. Pure functions of
//! `(text, base url)`; no I/O.

pub mod html;
pub mod json;
pub mod model;
pub mod negotiate;
pub mod render;

pub use model::{
    CoreMetadata, FileEntry, FileUrl, Hashes, InvalidEntry, Namespace, ProjectPage, ProjectStatus,
};
pub use negotiate::Format;

/// Hash algorithms a page may name (`hashlib.algorithms_guaranteed` minus the odd ones pip and
/// uv never read). Anything else in a page is ignored, as pip does.
pub const HASH_ALGORITHMS: &[(&str, usize)] = &[
    ("md5", 32),
    ("sha1", 40),
    ("sha224", 56),
    ("sha256", 64),
    ("sha384", 96),
    ("sha512", 128),
    ("blake2b", 128),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PageError {
    #[error("page is not valid JSON: {0}")]
    Json(String),
    #[error("page has no `files` list")]
    NoFiles,
    #[error("page declares API version `{0}`, whose major version pipwall does not know")]
    ApiVersion(String),
    #[error("page has more than {0} files")]
    TooManyFiles(usize),
}

/// Most file entries a page may hold. The largest real projects have about 5,000; a page past
/// this is treated as hostile rather than held in memory.
pub const MAX_FILES: usize = 200_000;

/// Checks a hash value's form: hex of the algorithm's length, either case. Returns the
/// algorithm's canonical name and the lowercased digest, or `None` for an algorithm pipwall does
/// not know.
const UPPER_HEX: u8 = 1;
const NOT_HEX: u8 = 2;

/// Per byte: 0 for `0-9a-f`, [`UPPER_HEX`] for `A-F`, [`NOT_HEX`] for anything else.
static HEX_CLASS: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_digit() || matches!(c, b'a'..=b'f') {
            t[b] = 0;
        } else if matches!(c, b'A'..=b'F') {
            t[b] = UPPER_HEX;
        }
        b += 1;
    }
    t
};

/// A `requires-python` value must be text a version specifier can be: printable ASCII. One with
/// control characters (an escape sequence, a line break) is no specifier and would reach
/// clients, logs and terminals raw; its file is hidden with this reason instead.
pub(crate) fn check_requires_python(value: &str) -> Result<(), String> {
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(())
    } else {
        Err("`requires-python` holds characters no version specifier has".into())
    }
}

pub(crate) fn check_hash(alg: &str, hex: &str) -> Option<Result<(&'static str, String), String>> {
    // Nearly every digest on a page is sha256, spelled so.
    let (name, len) = if alg == "sha256" {
        &("sha256", 64)
    } else {
        HASH_ALGORITHMS
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(alg))?
    };
    // One table look-up per byte, or-ed together with no early exit: a page checks two digests
    // per file, thousands of files.
    let class = hex
        .bytes()
        .fold(0u8, |acc, b| acc | HEX_CLASS[usize::from(b)]);
    if hex.len() == *len && class & NOT_HEX == 0 {
        Some(Ok((
            name,
            if class & UPPER_HEX != 0 {
                hex.to_ascii_lowercase()
            } else {
                hex.to_owned()
            },
        )))
    } else {
        Some(Err(format!("`{name}` digest is not {len} hex digits")))
    }
}
