//! The content-addressed file cache (`<cache>/files/ab/<sha256>`): a size cap with
//! least-recently-used eviction, and a check on start. Files only ever enter through a
//! temporary file that is renamed into place once its digest matched, so a crash leaves at most
//! a `.part-*` file, which the start-up scan removes; a file whose bytes no longer match its
//! name (disk damage, tampering) is removed by the background check and fetched again.
//!
//! Serving does not wait for that check: a file is served only once this process knows it
//! matches its digest ([`FileCache::open_verified`]), because this process stored it or hashed
//! it, and its length and modification time have not changed since. Stored files are made
//! read-only, so a change needs a deliberate `chmod` as well.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

struct Entry {
    size: u64,
    /// Larger is more recent.
    used: u64,
}

#[derive(Default)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

pub struct FileCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// Files this process knows match their digest, with the (length, modification time) they
    /// had then.
    verified: Mutex<HashMap<String, Stamp>>,
    /// Files in use (fetched and waiting for their audit, or being audited): never evicted.
    pins: Arc<Mutex<HashMap<String, usize>>>,
}

/// Keeps a stored file from eviction while it lives.
pub struct Pin {
    sha256: String,
    pins: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Ok(mut pins) = self.pins.lock()
            && let Some(n) = pins.get_mut(&self.sha256)
        {
            *n -= 1;
            if *n == 0 {
                pins.remove(&self.sha256);
            }
        }
    }
}

type Stamp = (u64, std::time::SystemTime);

fn stamp(meta: &std::fs::Metadata) -> Option<Stamp> {
    Some((meta.len(), meta.modified().ok()?))
}

/// What the start-up scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    pub files: usize,
    pub bytes: u64,
    pub partial_removed: usize,
    pub foreign_removed: usize,
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl FileCache {
    /// Opens (and scans) the cache under `dir`, keeping it under `max_bytes`.
    pub fn open(dir: PathBuf, max_bytes: u64) -> std::io::Result<(Self, Scan)> {
        std::fs::create_dir_all(&dir)?;
        let mut scan = Scan::default();
        let mut found: Vec<(String, u64, std::time::SystemTime)> = Vec::new();
        for bucket in std::fs::read_dir(&dir)? {
            let bucket = bucket?;
            if !bucket.file_type()?.is_dir() {
                continue;
            }
            let prefix = bucket.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(bucket.path())? {
                let file = file?;
                let name = file.file_name().to_string_lossy().into_owned();
                let path = file.path();
                if name.starts_with(".part-") {
                    let _ = std::fs::remove_file(&path);
                    scan.partial_removed += 1;
                    continue;
                }
                let meta = file.metadata()?;
                if !meta.is_file() || !is_sha256(&name) || !name.starts_with(&prefix) {
                    if meta.is_file() {
                        let _ = std::fs::remove_file(&path);
                        scan.foreign_removed += 1;
                    }
                    continue;
                }
                let used = meta
                    .accessed()
                    .or_else(|_| meta.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                found.push((name, meta.len(), used));
            }
        }
        // Oldest first, so the clock gives the most recently used files the highest ticks.
        found.sort_by_key(|(_, _, used)| *used);
        let mut index = Index::default();
        for (name, size, _) in found {
            index.clock += 1;
            index.total += size;
            scan.files += 1;
            scan.bytes += size;
            let used = index.clock;
            index.entries.insert(name, Entry { size, used });
        }
        let cache = Self {
            dir,
            max_bytes,
            index: Mutex::new(index),
            verified: Mutex::default(),
            pins: Arc::default(),
        };
        cache.evict(None);
        Ok((cache, scan))
    }

    /// [`Self::open`], logging what the scan found; a cache that cannot be read starts empty
    /// (downloads are still served, streamed and checked). The digest check of every file runs
    /// in the background when a runtime is there to run it.
    pub fn open_logged(dir: PathBuf, max_bytes: u64) -> Self {
        match Self::open(dir.clone(), max_bytes) {
            Ok((cache, scan)) => {
                tracing::info!(
                    files = scan.files,
                    bytes = scan.bytes,
                    partial_removed = scan.partial_removed,
                    foreign_removed = scan.foreign_removed,
                    "file cache scanned"
                );
                cache
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "file cache unreadable; starting empty");
                Self {
                    dir,
                    max_bytes,
                    index: Mutex::new(Index::default()),
                    verified: Mutex::default(),
                    pins: Arc::default(),
                }
            }
        }
    }

    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Marks a file as just used.
    pub fn touch(&self, sha256: &str) {
        if let Ok(mut index) = self.index.lock() {
            index.clock += 1;
            let now = index.clock;
            if let Some(e) = index.entries.get_mut(sha256) {
                e.used = now;
            }
        }
    }

    /// Records a file just renamed into place, then evicts the least recently used others
    /// until the cache fits its cap again.
    pub fn added(&self, sha256: &str, size: u64) {
        if let Ok(mut index) = self.index.lock() {
            index.clock += 1;
            let used = index.clock;
            if let Some(old) = index
                .entries
                .insert(sha256.to_owned(), Entry { size, used })
            {
                index.total -= old.size;
            }
            index.total += size;
        }
        self.evict(Some(sha256));
    }

    /// Keeps `sha256` from eviction until the pin is dropped (the file may not be stored yet).
    pub fn pin(&self, sha256: &str) -> Pin {
        if let Ok(mut pins) = self.pins.lock() {
            *pins.entry(sha256.to_owned()).or_default() += 1;
        }
        Pin {
            sha256: sha256.to_owned(),
            pins: self.pins.clone(),
        }
    }

    /// Evicts down to the cap again (after files in use were released).
    pub fn trim(&self) {
        self.evict(None);
    }

    fn evict(&self, keep: Option<&str>) {
        let pinned: std::collections::HashSet<String> = self
            .pins
            .lock()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let Ok(mut index) = self.index.lock() else {
            return;
        };
        while index.total > self.max_bytes {
            let victim = index
                .entries
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != keep && !pinned.contains(k.as_str()))
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(e) = index.entries.remove(&victim) {
                index.total -= e.size;
            }
            let _ = std::fs::remove_file(self.path(&victim));
            tracing::info!(sha256 = %victim, "evicted from the file cache");
        }
    }

    /// Records that the stored file matched its digest as it is now (the download path calls
    /// this once the bytes it renamed into place verified), and makes it read-only.
    pub fn mark_verified(&self, sha256: &str) {
        let path = self.path(sha256);
        if let Ok(meta) = std::fs::metadata(&path) {
            let mut perms = meta.permissions();
            perms.set_readonly(true);
            let _ = std::fs::set_permissions(&path, perms);
        }
        if let Some(st) = std::fs::metadata(&path).ok().as_ref().and_then(stamp)
            && let Ok(mut v) = self.verified.lock()
        {
            v.insert(sha256.to_owned(), st);
        }
    }

    /// Opens a stored file for serving, positioned at its start, only if it matches its digest:
    /// known to this process and unchanged since, or hashed now through the same open file. A
    /// file that no longer matches is removed (and so fetched again); `None` then, as for a
    /// file that is not stored.
    pub async fn open_verified(&self, sha256: &str) -> Option<std::fs::File> {
        let path = self.path(sha256);
        let known = self.verified.lock().ok()?.get(sha256).copied();
        let name = sha256.to_owned();
        let checked = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            use std::io::{Seek, SeekFrom};
            let mut file = std::fs::File::open(&path)?;
            let now = stamp(&file.metadata()?);
            if now.is_some() && now == known {
                return Ok(Some((file, None)));
            }
            let digest = crate::audit::hash_reader(&mut file)?;
            if digest != name {
                return Ok(None);
            }
            file.seek(SeekFrom::Start(0))?;
            Ok(Some((file, now)))
        })
        .await
        .ok()?;
        match checked {
            Ok(Some((file, fresh))) => {
                if let (Some(st), Ok(mut v)) = (fresh, self.verified.lock()) {
                    v.insert(sha256.to_owned(), st);
                }
                Some(file)
            }
            Ok(None) => {
                tracing::error!(sha256 = %sha256, "a stored file does not match its digest; removed, and fetched again");
                self.remove(sha256);
                None
            }
            Err(_) => None,
        }
    }

    /// Forgets a stored file and deletes it.
    pub fn remove(&self, sha256: &str) {
        let _ = std::fs::remove_file(self.path(sha256));
        if let Ok(mut v) = self.verified.lock() {
            v.remove(sha256);
        }
        if let Ok(mut index) = self.index.lock()
            && let Some(e) = index.entries.remove(sha256)
        {
            index.total -= e.size;
        }
    }

    pub fn total_bytes(&self) -> u64 {
        self.index.lock().map_or(0, |i| i.total)
    }

    /// Re-hashes every cached file and removes those whose bytes do not match their name.
    /// Blocking: run it on a blocking thread. Returns how many were removed.
    pub fn verify_all(&self) -> usize {
        let names: Vec<String> = self
            .index
            .lock()
            .map(|i| i.entries.keys().cloned().collect())
            .unwrap_or_default();
        let mut removed = 0;
        for name in names {
            let path = self.path(&name);
            let Ok(digest) = crate::audit::hash_file(&path) else {
                continue;
            };
            if digest != name {
                tracing::warn!(sha256 = %name, "cached file does not match its digest; removed");
                self.remove(&name);
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn put(dir: &Path, data: &[u8]) -> String {
        let sha = hex::encode(Sha256::digest(data));
        let p = dir.join(&sha[..2]);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join(&sha), data).unwrap();
        sha
    }

    #[test]
    fn start_up_scan_cleans_and_evicts_least_recently_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let a = put(&dir, b"aaaa");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = put(&dir, b"bbbb");
        std::fs::write(dir.join(&a[..2]).join(".part-123"), b"half").unwrap();
        std::fs::write(dir.join(&a[..2]).join("junk"), b"x").unwrap();
        let (cache, scan) = FileCache::open(dir.clone(), 100).unwrap();
        assert_eq!(
            scan,
            Scan {
                files: 2,
                bytes: 8,
                partial_removed: 1,
                foreign_removed: 1
            }
        );
        // Cap at 8 bytes: adding a third file evicts the least recently used one.
        let cache = FileCache {
            max_bytes: 8,
            ..cache
        };
        cache.touch(&a);
        let c = put(&dir, b"cccc");
        cache.added(&c, 4);
        assert!(cache.path(&a).exists() && cache.path(&c).exists());
        assert!(!cache.path(&b).exists(), "b was least recently used");
        assert_eq!(cache.total_bytes(), 8);
    }

    #[test]
    fn damaged_files_are_removed_by_the_check() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let good = put(&dir, b"good");
        let bad = put(&dir, b"bad!");
        std::fs::write(dir.join(&bad[..2]).join(&bad), b"rot!").unwrap();
        let (cache, _) = FileCache::open(dir, u64::MAX).unwrap();
        assert_eq!(cache.verify_all(), 1);
        assert!(cache.path(&good).exists() && !cache.path(&bad).exists());
        assert_eq!(cache.total_bytes(), 4);
    }
}
