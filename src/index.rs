//! The simple repository API (PEP 503 HTML, PEP 691 JSON and their amendments): parsing upstream
//! pages into one model, and rendering pipwall's own pages from it. Pure functions of
//! `(text, base url)`; no I/O.

pub mod html;
pub mod json;
pub mod model;
pub mod negotiate;
pub mod render;

pub use model::{CoreMetadata, FileEntry, FileUrl, InvalidEntry, ProjectPage, ProjectStatus};
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
pub(crate) fn check_hash(alg: &str, hex: &str) -> Option<Result<(&'static str, String), String>> {
    let (name, len) = HASH_ALGORITHMS
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(alg))?;
    // Branch-free over the bytes (no early exit), so the check vectorizes.
    let (hexdigits, upper) = hex.bytes().fold((true, false), |(ok, up), b| {
        (ok & b.is_ascii_hexdigit(), up | b.is_ascii_uppercase())
    });
    if hex.len() == *len && hexdigits {
        Some(Ok((
            name,
            if upper {
                hex.to_ascii_lowercase()
            } else {
                hex.to_owned()
            },
        )))
    } else {
        Some(Err(format!("`{name}` digest is not {len} hex digits")))
    }
}
