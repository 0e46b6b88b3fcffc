//! A local folder of distribution files, read as pip's `--find-links` reads one: every file
//! directly inside it, grouped by project. sha256 digests are computed once per file version
//! (path, size, modification time) and remembered.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::io::ReaderStream;
use url::Url;

use super::{FetchedPage, FileBody, PageFetch, UpstreamError, Validators};
use crate::dist::{ProjectName, project_of};
use crate::index::{CoreMetadata, FileEntry, ProjectPage};

type HashKey = (PathBuf, u64, SystemTime);

pub struct Wheelhouse {
    dir: PathBuf,
    hashes: Arc<Mutex<HashMap<HashKey, String>>>,
}

impl Wheelhouse {
    pub fn new(dir: PathBuf) -> Self {
        let dir = dir.canonicalize().unwrap_or(dir);
        Self {
            dir,
            hashes: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub async fn project_page(&self, name: &ProjectName) -> Result<PageFetch, UpstreamError> {
        let dir = self.dir.clone();
        let hashes = self.hashes.clone();
        let name = name.clone();
        tokio::task::spawn_blocking(move || scan_project(&dir, &name, &hashes))
            .await
            .map_err(|e| io_err(&self.dir, std::io::Error::other(e)))?
    }

    pub async fn project_names(&self) -> Result<Vec<String>, UpstreamError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut names: Vec<String> = list(&dir)?
                .into_iter()
                .filter_map(|(f, _)| project_of(&f).map(|p| p.to_string()))
                .collect();
            names.sort();
            names.dedup();
            Ok(names)
        })
        .await
        .map_err(|e| io_err(&self.dir, std::io::Error::other(e)))?
    }

    /// Opens `url` if it names a file directly inside this folder; `Ok(None)` otherwise.
    pub async fn open(&self, url: &Url) -> Result<Option<FileBody>, UpstreamError> {
        let Ok(path) = url.to_file_path() else {
            return Ok(None);
        };
        // Only a plain filename joined to the folder: no `..`, no subfolders, no other roots.
        let inside = path.parent() == Some(self.dir.as_path())
            && path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| !f.starts_with('.'));
        if !inside {
            return Ok(None);
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_err(&path, e))?;
        let len = file.metadata().await.map_err(|e| io_err(&path, e))?.len();
        let shown = path.display().to_string();
        let stream = ReaderStream::with_capacity(file, 256 << 10).map(move |r| {
            r.map_err(|source| UpstreamError::Io {
                path: shown.clone(),
                source,
            })
        });
        Ok(Some(FileBody {
            len: Some(len),
            stream: Box::pin(stream),
        }))
    }
}

fn io_err(path: &Path, source: std::io::Error) -> UpstreamError {
    UpstreamError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Regular files directly inside `dir`, with their metadata.
fn list(dir: &Path) -> Result<Vec<(String, std::fs::Metadata)>, UpstreamError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() && !name.starts_with('.') {
            out.push((name, meta));
        }
    }
    Ok(out)
}

/// A time in PEP 700's form (`yyyy-mm-ddThh:mm:ss.ffffffZ`, UTC).
fn pep700_time(t: SystemTime) -> Option<String> {
    let ts = jiff::Timestamp::try_from(t).ok()?;
    Some(ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string())
}

fn scan_project(
    dir: &Path,
    name: &ProjectName,
    hashes: &Mutex<HashMap<HashKey, String>>,
) -> Result<PageFetch, UpstreamError> {
    let mut files = BTreeMap::new();
    for (filename, meta) in list(dir)? {
        if project_of(&filename).as_ref() != Some(name) {
            continue;
        }
        let path = dir.join(&filename);
        let key = (
            path.clone(),
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let known = hashes.lock().ok().and_then(|h| h.get(&key).cloned());
        let sha = match known {
            Some(s) => s,
            None => {
                let s = sha256_file(&path)?;
                if let Ok(mut h) = hashes.lock() {
                    h.insert(key, s.clone());
                }
                s
            }
        };
        let Ok(url) = Url::from_file_path(&path) else {
            continue;
        };
        files.insert(
            filename.clone(),
            FileEntry {
                filename,
                url: crate::index::FileUrl::Resolved(Box::new(url)),
                hashes: crate::index::Hashes::sha256(sha),
                requires_python: None,
                yanked: None,
                core_metadata: CoreMetadata::Absent,
                size: Some(meta.len()),
                // A folder has no upload times; a file's modification time is when it arrived,
                // so cooldowns and `--uploaded-prior-to` work on a wheelhouse too.
                upload_time: meta.modified().ok().and_then(pep700_time),
                provenance: None,
            },
        );
    }
    if files.is_empty() {
        return Err(UpstreamError::NotFound {
            url: format!("{}: {name}", dir.display()),
        });
    }
    let mut h = Sha256::new();
    for f in files.values() {
        h.update(f.filename.as_bytes());
        h.update(f.sha256().unwrap_or_default().as_bytes());
    }
    Ok(PageFetch::Fresh(Box::new(FetchedPage {
        page: ProjectPage {
            files: files.into_values().collect(),
            ..ProjectPage::default()
        },
        source: 0,
        validators: Validators::default(),
        content_sha256: h.finalize().into(),
    })))
}

fn sha256_file(path: &Path) -> Result<String, UpstreamError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
