//! Downloads. A file is served only if a page showed it; its bytes are hashed as they stream
//! and compared with the digest the index promised. The last chunk is held back until the
//! digest is known: on a mismatch the stream fails, the connection is aborted, and the client
//! never sees a complete file. Verified files are kept in a content-addressed cache.

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::{App, AppError, Body, ScopeId, ShownFile, full};
use crate::cache::download::{Transfer, deadline_for};
use crate::dist::project_of;
use crate::index::CoreMetadata;
use crate::policy::Code;
use sha2::{Digest, Sha256};

/// Largest `.metadata` sidecar accepted (real ones are a few kB).
const MAX_METADATA_BYTES: u64 = 16 << 20;

impl App {
    /// Finds the shown file for a download. A file not known (pipwall restarted, or the page was
    /// never asked for) gets its project's page decided first; a hidden one is refused with
    /// the reason it was hidden.
    async fn lookup(
        &self,
        scope: ScopeId,
        sha256: &str,
        filename: &str,
    ) -> Result<ShownFile, AppError> {
        if let Some(f) = self.shown_file(scope, sha256, filename) {
            return Ok(f);
        }
        let Some(project) = project_of(filename) else {
            return Err(refuse(
                Code::NotADistribution,
                "the filename names no project",
            ));
        };
        let page = self.project_page(scope, &project).await?;
        if let Some(d) = &page.blocked {
            return Err(refuse(d.code, &d.sentence()));
        }
        if let Some(f) = self.shown_file(scope, sha256, filename) {
            return Ok(f);
        }
        let decided = page
            .decisions
            .iter()
            .find(|d| d.filename == filename && !d.decision.action.shows());
        Err(match decided {
            Some(d) => refuse(d.decision.code, &d.decision.sentence()),
            None => refuse(
                Code::NotADistribution,
                "this file is not on the project's page upstream, or not under this digest",
            ),
        })
    }

    pub async fn handle_file(
        &self,
        scope: ScopeId,
        sha256: &str,
        filename: &str,
        head: bool,
    ) -> Result<Response<Body>, AppError> {
        let shown = self.lookup(scope, sha256, filename).await?;
        if self.settings.audit && crate::policy::is_audited(filename) {
            // The audit downloads the file into the cache, so what follows serves it from there.
            match self.audits.wait(sha256, &shown).await {
                Ok(report) => {
                    let decision = self.audit_decision(scope, filename, sha256, &report)?;
                    if !decision.action.shows() {
                        return Err(refuse(decision.code, &decision.sentence()));
                    }
                }
                // The shared state failed: this replica cannot know or share a verdict, and
                // says so as unavailable (503), not as a bad upstream.
                Err(why) if why.shared_state => {
                    return Err(AppError::VerdictsUnavailable(why.to_string()));
                }
                Err(why) => return Err(AppError::AuditUnavailable(why.to_string())),
            }
        }
        if !head && let Some(learn) = &self.settings.learn {
            learn.download(filename);
        }
        if let Some(file) = self.files.open_verified(sha256).await {
            let file = tokio::fs::File::from_std(file);
            self.metrics.cache_hit("file");
            self.files.touch(sha256);
            let len = file.metadata().await.map(|m| m.len()).ok();
            let body = if head {
                full(Bytes::new())
            } else {
                let s = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10)
                    .map(|r| r.map(Frame::data));
                BodyExt::boxed(StreamBody::new(s))
            };
            return Ok(file_response(body, len));
        }
        if head {
            // Not in the store: its length is not known until its bytes are.
            return Ok(file_response(full(Bytes::new()), None));
        }
        let permit = self
            .download_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("download permits closed".into()))?;
        let upstream = self.upstreams.open_file(&resolve(&shown)?).await?;
        // Only a length upstream itself framed the body with: the page's `size` is a claim, and
        // a client told to expect that many bytes would take a wrong file of that length as
        // complete before the digest is known.
        let len = upstream.len;
        let transfer = Transfer {
            expected: sha256.to_owned(),
            files: self.files.clone(),
            deadline: deadline_for(upstream.len.or(shown.size)),
            store_required: false,
        };
        let body = verified(upstream.stream, transfer, permit, self.metrics.clone());
        Ok(file_response(body, len))
    }

    /// The policy's verdict on a wheel's audit report, as its page would weigh it.
    fn audit_decision(
        &self,
        scope: ScopeId,
        filename: &str,
        sha256: &str,
        report: &crate::audit::Report,
    ) -> Result<crate::policy::Decision, AppError> {
        let project = project_of(filename)
            .ok_or_else(|| refuse(Code::NotADistribution, "the filename names no project"))?;
        let policy = self.policy_of(scope);
        match policy.gate(&project, jiff::Timestamp::now()) {
            crate::policy::Gate::Open(view) => {
                let version = crate::dist::WheelFilename::parse_any(filename)
                    .ok()
                    .map(|w| w.version);
                Ok(view.judge_audit(sha256, version.as_ref(), report))
            }
            crate::policy::Gate::Blocked { decision, .. } => {
                Err(refuse(decision.code, &decision.sentence()))
            }
        }
    }

    pub async fn handle_metadata(
        &self,
        scope: ScopeId,
        sha256: &str,
        filename: &str,
    ) -> Result<Response<Body>, AppError> {
        let shown = self.lookup(scope, sha256, filename).await?;
        let CoreMetadata::Present(hashes) = &shown.core_metadata else {
            return Err(AppError::NotFound(
                "the index offers no metadata file for this file".into(),
            ));
        };
        let mut url = resolve(&shown)?;
        url.set_path(&format!("{}.metadata", url.path()));
        let bytes = self.upstreams.fetch_small(&url, MAX_METADATA_BYTES).await?;
        if let Some(want) = hashes.get("sha256")
            && hex::encode(Sha256::digest(&bytes)) != *want
        {
            return Err(AppError::Upstream(crate::upstream::UpstreamError::Body {
                url: crate::upstream::redact(&url),
                detail: "metadata bytes do not match the index's sha256".into(),
            }));
        }
        let mut resp = Response::new(full(bytes));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Ok(resp)
    }
}

/// The file's full upstream URL (links are resolved only when a file is fetched).
fn resolve(shown: &ShownFile) -> Result<url::Url, AppError> {
    shown.url.resolve().map_err(|e| {
        AppError::Upstream(crate::upstream::UpstreamError::BadRedirect {
            url: shown.filename.clone(),
            detail: format!("the index's link for this file is not a valid URL: {e}"),
        })
    })
}

fn refuse(code: Code, sentence: &str) -> AppError {
    AppError::Refused {
        code,
        sentence: sentence.to_owned(),
    }
}

fn file_response(body: Body, len: Option<u64>) -> Response<Body> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // The URL names the digest, so the bytes behind it never change.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000, immutable"),
    );
    if let Some(l) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(l));
    }
    resp
}

/// Streams `upstream` to the client through the store's one hash-checked path
/// ([`Transfer`]): each chunk goes out only once the next has arrived, the last only after the
/// digest matched, so a mismatch ends the response early with an error, which makes the server
/// abort the connection.
fn verified(
    upstream: crate::upstream::ByteStream,
    transfer: Transfer,
    permit: tokio::sync::OwnedSemaphorePermit,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        // Held until the download ends, however it ends.
        let _permit = permit;
        match transfer.run(upstream, Some(tx)).await {
            Ok(bytes) => metrics.upstream_bytes("file", bytes),
            Err(e) => tracing::warn!(error = %e, "download through pipwall failed"),
        }
    });
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|r| r.map(Frame::data));
    BodyExt::boxed(StreamBody::new(stream))
}
