//! The one way bytes get from upstream into the file store: streamed to a temporary file beside
//! their place in the store, hashed on the way, and renamed into place only when the digest is
//! the one the index promised. An audit's prefetch uses it alone; a client's download uses it
//! with a channel that receives the bytes as they pass, the last chunk held back until the
//! digest matched, so a client never holds a complete response of the wrong bytes.
//!
//! Every transfer has an overall deadline that grows with the file's size ([`deadline_for`]):
//! an upstream that drips a byte a second cannot hold a worker, or a client, for ever.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::files::FileCache;
use crate::upstream::ByteStream;

/// Why a transfer did not end in verified bytes.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("download broke off: {0}")]
    BrokeOff(String),
    #[error("upstream served bytes with sha256 {got}, not the {expected} the index promised")]
    Mismatch { got: String, expected: String },
    #[error("the download did not finish within {}s (the limit for its size)", .0.as_secs())]
    TooSlow(Duration),
    #[error("cannot write the cache: {0}")]
    Cache(#[source] std::io::Error),
    #[error("the client went away")]
    ClientGone,
}

/// Slowest transfer rate worth waiting for once the first minute is spent: far below any real
/// index, high enough that a drip ends in minutes, not days.
const MIN_RATE: u64 = 64 << 10;
/// What any transfer gets on top, for connection set-up and a slow start.
const BASE: Duration = Duration::from_secs(60);
/// Assumed size when neither the page nor upstream says one: the largest wheels people install
/// (a CUDA build of torch) are a few GB.
const UNKNOWN_SIZE: u64 = 4 << 30;

/// How long a transfer of `size` bytes may take in all.
pub fn deadline_for(size: Option<u64>) -> Duration {
    BASE + Duration::from_secs(size.unwrap_or(UNKNOWN_SIZE) / MIN_RATE)
}

/// One transfer into the store.
pub struct Transfer {
    /// The sha256 the index promised, lowercase hex.
    pub expected: String,
    pub files: Arc<FileCache>,
    pub deadline: Duration,
    /// Whether a file that cannot be written to the store fails the transfer (an audit needs
    /// the bytes on disk) or only goes unstored (a client's download is still served).
    pub store_required: bool,
}

impl Transfer {
    /// Streams `upstream` into the store. With `forward`, every chunk is also sent there one
    /// step behind (the last only after the digest matched), and an error is sent before the
    /// channel closes. Returns the number of bytes stored.
    pub async fn run(
        self,
        upstream: ByteStream,
        forward: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    ) -> Result<u64, DownloadError> {
        let deadline = self.deadline;
        let result =
            match tokio::time::timeout(deadline, self.copy(upstream, forward.as_ref())).await {
                Ok(r) => r,
                Err(_) => Err(DownloadError::TooSlow(deadline)),
            };
        if let (Err(e), Some(tx)) = (&result, &forward) {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
        result
    }

    async fn copy(
        self,
        mut upstream: ByteStream,
        forward: Option<&mpsc::Sender<Result<Bytes, std::io::Error>>>,
    ) -> Result<u64, DownloadError> {
        let dest = self.files.path(&self.expected);
        let mut tmp = match temp_file(&dest).await {
            Ok(t) => Some(t),
            Err(e) if self.store_required => return Err(DownloadError::Cache(e)),
            Err(_) => None,
        };
        let mut hasher = Sha256::new();
        let mut held: Option<Bytes> = None;
        let mut size = 0u64;
        while let Some(chunk) = upstream.next().await {
            let chunk = chunk.map_err(|e| DownloadError::BrokeOff(crate::error::chain(&e)))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            if let Some((f, _)) = tmp.as_mut()
                && let Err(e) = f.write_all(&chunk).await
            {
                if self.store_required {
                    return Err(DownloadError::Cache(e));
                }
                tmp = None;
            }
            if let Some(tx) = forward
                && let Some(prev) = held.replace(chunk)
                && tx.send(Ok(prev)).await.is_err()
            {
                return Err(DownloadError::ClientGone);
            }
        }
        let got = hex::encode(hasher.finalize());
        if got != self.expected {
            tracing::error!(expected = %self.expected, got = %got, "upstream bytes do not match the index's sha256");
            return Err(DownloadError::Mismatch {
                got,
                expected: self.expected,
            });
        }
        if let Some((f, path)) = tmp {
            let stored = async {
                f.sync_all().await?;
                drop(f);
                path.persist(&dest).map_err(|e| e.error)?;
                Ok::<_, std::io::Error>(())
            }
            .await;
            match stored {
                Ok(()) => {
                    self.files.added(&self.expected, size);
                    self.files.mark_verified(&self.expected);
                }
                Err(e) if self.store_required => return Err(DownloadError::Cache(e)),
                Err(e) => tracing::warn!(error = %e, "a verified download could not be stored"),
            }
        }
        if let (Some(tx), Some(last)) = (forward, held) {
            let _ = tx.send(Ok(last)).await;
        }
        Ok(size)
    }
}

/// A fresh temporary file next to `dest` (same file system, so the final rename is atomic),
/// removed if it is dropped before it is persisted.
async fn temp_file(
    dest: &std::path::Path,
) -> std::io::Result<(tokio::fs::File, tempfile::TempPath)> {
    let dir = dest
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("cache path has no folder"))?;
    tokio::fs::create_dir_all(&dir).await?;
    let tmp = tokio::task::spawn_blocking(move || {
        tempfile::Builder::new().prefix(".part-").tempfile_in(dir)
    })
    .await
    .map_err(std::io::Error::other)??;
    let (file, path) = tmp.into_parts();
    Ok((tokio::fs::File::from_std(file), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: Vec<&'static [u8]>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            chunks.into_iter().map(|c| Ok(Bytes::from_static(c))),
        ))
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn store(dir: &std::path::Path) -> Arc<FileCache> {
        Arc::new(FileCache::open(dir.to_owned(), u64::MAX).unwrap().0)
    }

    #[tokio::test]
    async fn verified_bytes_are_stored_and_forwarded_whole() {
        let d = tempfile::tempdir().unwrap();
        let files = store(d.path());
        let (tx, mut rx) = mpsc::channel(8);
        let t = Transfer {
            expected: sha(b"hello world"),
            files: files.clone(),
            deadline: Duration::from_secs(5),
            store_required: true,
        };
        let n = t
            .run(stream(vec![b"hello ", b"world"]), Some(tx))
            .await
            .unwrap();
        assert_eq!(n, 11);
        let mut got = Vec::new();
        while let Some(Ok(c)) = rx.recv().await {
            got.extend_from_slice(&c);
        }
        assert_eq!(got, b"hello world");
        assert_eq!(
            std::fs::read(files.path(&sha(b"hello world"))).unwrap(),
            b"hello world"
        );
    }

    #[tokio::test]
    async fn wrong_bytes_never_reach_the_store_and_the_last_chunk_is_withheld() {
        let d = tempfile::tempdir().unwrap();
        let files = store(d.path());
        let expected = sha(b"the promised bytes");
        let (tx, mut rx) = mpsc::channel(8);
        let t = Transfer {
            expected: expected.clone(),
            files: files.clone(),
            deadline: Duration::from_secs(5),
            store_required: false,
        };
        let e = t.run(stream(vec![b"other ", b"bytes"]), Some(tx)).await;
        assert!(matches!(e, Err(DownloadError::Mismatch { .. })), "{e:?}");
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        // The first chunk went out; the last did not, and the stream ends in an error.
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].as_ref().unwrap().as_ref(), b"other ");
        assert!(chunks[1].is_err());
        assert!(!files.path(&expected).exists());
        let leftovers: Vec<_> = walk(d.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dripping_upstream_ends_at_the_deadline() {
        let d = tempfile::tempdir().unwrap();
        let drip: ByteStream = Box::pin(futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok(Bytes::from_static(b"x")), ()))
        }));
        let t = Transfer {
            expected: sha(b"x"),
            files: store(d.path()),
            deadline: deadline_for(Some(10)),
            store_required: true,
        };
        let e = t.run(drip, None).await;
        assert!(matches!(e, Err(DownloadError::TooSlow(_))), "{e:?}");
        assert_eq!(deadline_for(Some(64 << 20)), Duration::from_secs(60 + 1024));
    }

    fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
