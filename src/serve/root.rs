//! The root list (`/simple/`). A public index names ~900k projects in ~50 MB, so the list is
//! never held in memory: each source's root page is streamed to a file, read back in chunks,
//! and both renderings are written straight to files in the cache folder, which are then served
//! from disk. Neither pip nor uv reads the root during installs; it is rebuilt at most every ten
//! minutes.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::io::AsyncWriteExt;

use super::{App, AppError, Body, page_response};
use crate::dist::ProjectName;
use crate::index::{Format, html, json};
use crate::upstream::RootListing;

const ROOT_TTL: Duration = Duration::from_secs(600);

pub struct CachedRoot {
    checked_at: Instant,
    html: PathBuf,
    json: PathBuf,
}

/// Writes both renderings as names arrive: valid names only, normalized, each once.
struct RootWriter {
    html: BufWriter<std::fs::File>,
    json: BufWriter<std::fs::File>,
    /// Digests of names written (8 bytes each, not the names), to drop duplicates.
    seen: HashSet<u64>,
    hasher: RandomState,
}

impl RootWriter {
    fn create(html: &Path, json: &Path) -> std::io::Result<Self> {
        let mut w = Self {
            html: BufWriter::with_capacity(256 << 10, std::fs::File::create(html)?),
            json: BufWriter::with_capacity(256 << 10, std::fs::File::create(json)?),
            seen: HashSet::new(),
            hasher: RandomState::new(),
        };
        w.html.write_all(
            b"<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>Simple index</title>\n  </head>\n  <body>\n",
        )?;
        w.json
            .write_all(br#"{"meta":{"api-version":"1.0"},"projects":["#)?;
        Ok(w)
    }

    fn add(&mut self, raw: &str) -> std::io::Result<()> {
        let Ok(name) = ProjectName::new(raw.trim()) else {
            return Ok(());
        };
        if !self.seen.insert(self.hasher.hash_one(name.as_str())) {
            return Ok(());
        }
        // Normalized names hold only letters, digits and `-`: nothing to escape in either format.
        writeln!(self.html, "    <a href=\"{name}/\">{name}</a>")?;
        let comma = if self.seen.len() > 1 { "," } else { "" };
        write!(self.json, "{comma}{{\"name\":\"{name}\"}}")
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.html.write_all(b"  </body>\n</html>\n")?;
        self.json.write_all(b"]}\n")?;
        self.html
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        self.json
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("root list: {e}"))
}

impl App {
    pub async fn handle_root(&self, format: Format) -> Result<Response<Body>, AppError> {
        let mut root = self.root.lock().await;
        if root
            .as_ref()
            .is_none_or(|r| r.checked_at.elapsed() >= ROOT_TTL)
        {
            *root = Some(self.build_root().await?);
        }
        let r = root.as_ref().ok_or_else(|| internal("missing"))?;
        let path = if format.is_json() { &r.json } else { &r.html };
        let file = tokio::fs::File::open(path).await.map_err(internal)?;
        let len = file.metadata().await.map_err(internal)?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10)
            .map(|r| r.map(Frame::data));
        let mut resp = page_response(format, bytes::Bytes::new(), "max-age=600");
        *resp.body_mut() = BodyExt::boxed(StreamBody::new(stream));
        resp.headers_mut()
            .insert(http::header::CONTENT_LENGTH, len.into());
        Ok(resp)
    }

    async fn build_root(&self) -> Result<CachedRoot, AppError> {
        let dir = self.settings.cache_dir.join("root");
        tokio::fs::create_dir_all(&dir).await.map_err(internal)?;
        let (html_tmp, json_tmp) = (dir.join("root.html.part"), dir.join("root.json.part"));
        let mut writer = RootWriter::create(&html_tmp, &json_tmp).map_err(internal)?;
        for i in 0..self.upstreams.sources().len() {
            writer = match self.upstreams.root_listing(i).await? {
                RootListing::Names(names) => {
                    for n in &names {
                        writer.add(n).map_err(internal)?;
                    }
                    writer
                }
                RootListing::Body {
                    json: is_json,
                    mut body,
                } => {
                    let download = dir.join("upstream.part");
                    let mut f = tokio::fs::File::create(&download).await.map_err(internal)?;
                    while let Some(chunk) = body.stream.next().await {
                        f.write_all(&chunk?).await.map_err(internal)?;
                    }
                    f.flush().await.map_err(internal)?;
                    drop(f);
                    tokio::task::spawn_blocking(move || -> Result<RootWriter, AppError> {
                        let file = std::io::BufReader::new(
                            std::fs::File::open(&download).map_err(internal)?,
                        );
                        let mut failed = None;
                        let mut add = |n: &str| {
                            if failed.is_none()
                                && let Err(e) = writer.add(n)
                            {
                                failed = Some(e);
                            }
                        };
                        if is_json {
                            json::stream_project_names(file, &mut add).map_err(internal)?;
                        } else {
                            html::stream_project_names(file, &mut add).map_err(internal)?;
                        }
                        if let Some(e) = failed {
                            return Err(internal(e));
                        }
                        let _ = std::fs::remove_file(&download);
                        Ok(writer)
                    })
                    .await
                    .map_err(internal)??
                }
            };
        }
        let (html_path, json_path) = (dir.join("root.html"), dir.join("root.json"));
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            writer.finish()?;
            std::fs::rename(&html_tmp, &html_path)?;
            std::fs::rename(&json_tmp, &json_path)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        Ok(CachedRoot {
            checked_at: Instant::now(),
            html: dir.join("root.html"),
            json: dir.join("root.json"),
        })
    }
}
