//! What pipwall keeps on disk, usable by every command (not only the server): the
//! content-addressed file store ([`files`]), audit reports bound to what they judged
//! ([`audits`]), and the one hash-checked way bytes get from upstream into the store
//! ([`download`]).

pub mod audits;
pub mod download;
pub mod files;

use crate::index::CoreMetadata;

/// A file pipwall decided to show: what a download (and its audit) needs.
#[derive(Clone, Debug)]
pub struct ShownFile {
    pub filename: String,
    pub url: crate::index::FileUrl,
    pub size: Option<u64>,
    pub core_metadata: CoreMetadata,
    /// The PEP 740 provenance link, relative to the page like `url`.
    pub provenance: Option<Box<str>>,
}

impl ShownFile {
    pub fn of(f: &crate::index::FileEntry) -> Self {
        Self {
            filename: f.filename.clone(),
            url: f.url.clone(),
            size: f.size,
            core_metadata: f.core_metadata.clone(),
            provenance: f.provenance.clone(),
        }
    }
}
