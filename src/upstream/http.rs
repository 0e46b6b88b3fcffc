//! HTTP(S) client for simple indexes: rustls with the system's roots plus an optional extra CA
//! bundle (corporate TLS interception), redirects followed by hand so every hop is checked,
//! credentials kept to their own origin, every read bounded in size and time.

use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, ETAG, LAST_MODIFIED, LOCATION,
};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyStream, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    FetchedPage, FileBody, Limits, PageFetch, SourceError, UpstreamError, Validators, redact,
};
use crate::dist::ProjectName;
use crate::index::{html, json};

/// What pipwall asks an index for: JSON first (it carries sizes and upload times), HTML
/// accepted.
const PAGE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

const USER_AGENT: &str = concat!("pipwall/", env!("CARGO_PKG_VERSION"));

pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    limits: Limits,
}

impl Client {
    pub fn new(limits: Limits, extra_ca: Option<&std::path::Path>) -> Result<Self, SourceError> {
        let tls = crate::tls::client_config(extra_ca).map_err(|e| match e {
            crate::tls::ClientTlsError::Bundle { path, detail } => {
                SourceError::CaBundle { path, detail }
            }
            crate::tls::ClientTlsError::Setup(detail) => SourceError::Tls(detail),
        })?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(limits.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Self { inner, limits })
    }

    /// GET with redirects followed by hand (each hop must be http(s); credentials are dropped
    /// when the origin changes). Returns the final URL and response.
    async fn get(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
        extra: &[(http::HeaderName, HeaderValue)],
    ) -> Result<(Url, Response<Incoming>), UpstreamError> {
        let mut current = url.clone();
        let origin = url.origin();
        for _ in 0..=self.limits.max_redirects {
            let mut req = Request::get(current.as_str())
                .header(http::header::USER_AGENT, USER_AGENT)
                .header(ACCEPT_ENCODING, "identity");
            for (k, v) in extra {
                req = req.header(k, v);
            }
            if let Some(a) = auth
                && current.origin() == origin
            {
                req = req.header(AUTHORIZATION, a);
            }
            let req = req.body(Empty::new()).map_err(|e| UpstreamError::Connect {
                url: redact(&current),
                detail: e.to_string(),
            })?;
            let resp = self
                .inner
                .request(req)
                .await
                .map_err(|e| UpstreamError::Connect {
                    url: redact(&current),
                    detail: crate::error::chain(&e),
                })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok((current, resp));
            }
            let bad = |detail: &str| UpstreamError::BadRedirect {
                url: redact(&current),
                detail: detail.to_owned(),
            };
            let loc = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| bad("no Location header"))?;
            let next = current
                .join(loc)
                .map_err(|_| bad("Location is not a URL"))?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(bad("Location is not http(s)"));
            }
            current = next;
        }
        Err(UpstreamError::TooManyRedirects {
            url: redact(url),
            limit: self.limits.max_redirects,
        })
    }

    /// Reads a body whole, failing past `cap` bytes.
    async fn read_capped(url: &Url, body: Incoming, cap: u64) -> Result<Bytes, UpstreamError> {
        let mut buf = BytesMut::new();
        let mut stream = BodyStream::new(body);
        while let Some(frame) = stream.next().await {
            let frame = frame.map_err(|e| UpstreamError::Body {
                url: redact(url),
                detail: crate::error::chain(&e),
            })?;
            if let Ok(data) = frame.into_data() {
                if (buf.len() + data.len()) as u64 > cap {
                    return Err(UpstreamError::TooLarge {
                        url: redact(url),
                        limit: cap,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }

    fn check_status(url: &Url, status: StatusCode) -> Result<(), UpstreamError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                Err(UpstreamError::NotFound { url: redact(url) })
            }
            s => Err(UpstreamError::Status {
                url: redact(url),
                status: s.as_u16(),
            }),
        }
    }

    /// A small resource read whole within a deadline.
    pub async fn fetch_bytes(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
        cap: u64,
    ) -> Result<Bytes, UpstreamError> {
        let work = async {
            let (final_url, resp) = self.get(url, auth, &[]).await?;
            Self::check_status(&final_url, resp.status())?;
            Self::read_capped(&final_url, resp.into_body(), cap).await
        };
        self.deadline(url, self.limits.page_timeout, work).await
    }

    async fn deadline<T>(
        &self,
        url: &Url,
        limit: Duration,
        work: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(UpstreamError::Timeout {
                url: redact(url),
                secs: limit.as_secs(),
            })
        })
    }

    /// Opens a download; the stream fails if a chunk takes longer than the idle timeout or the
    /// file grows past the size cap.
    pub async fn open_stream(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
    ) -> Result<FileBody, UpstreamError> {
        let (body, _) = self
            .open_stream_with(url, auth, &[], self.limits.max_file_bytes)
            .await?;
        Ok(body)
    }

    /// Opens a streamed download of at most `cap` bytes; also returns its Content-Type.
    async fn open_stream_with(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
        extra: &[(http::HeaderName, HeaderValue)],
        cap: u64,
    ) -> Result<(FileBody, Option<String>), UpstreamError> {
        let (final_url, resp) = self
            .deadline(url, self.limits.page_timeout, self.get(url, auth, extra))
            .await?;
        Self::check_status(&final_url, resp.status())?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let len = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if len.is_some_and(|l| l > cap) {
            return Err(UpstreamError::TooLarge {
                url: redact(&final_url),
                limit: cap,
            });
        }
        let idle = self.limits.idle_timeout;
        let shown = redact(&final_url);
        let mut body = BodyStream::new(resp.into_body());
        // A task reads upstream and hands chunks over a small channel: the download is pulled at
        // the client's pace, and a reader that goes away ends the task at its next send.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, UpstreamError>>(4);
        tokio::spawn(async move {
            let mut seen = 0u64;
            loop {
                let item = match tokio::time::timeout(idle, body.next()).await {
                    Err(_) => Err(UpstreamError::Timeout {
                        url: shown.clone(),
                        secs: idle.as_secs(),
                    }),
                    Ok(None) => return,
                    Ok(Some(Err(e))) => Err(UpstreamError::Body {
                        url: shown.clone(),
                        detail: crate::error::chain(&e),
                    }),
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Err(_) => continue,
                        Ok(data) => {
                            seen += data.len() as u64;
                            if seen > cap {
                                Err(UpstreamError::TooLarge {
                                    url: shown.clone(),
                                    limit: cap,
                                })
                            } else {
                                Ok(data)
                            }
                        }
                    },
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok((
            FileBody {
                len,
                stream: Box::pin(stream),
            },
            content_type,
        ))
    }
}

/// One HTTP(S) simple index.
pub struct HttpIndex {
    /// The root, credentials removed, ending in `/`.
    base: Url,
    auth: Option<HeaderValue>,
}

impl HttpIndex {
    pub fn new(spec: &str) -> Result<Self, SourceError> {
        let mut base = Url::parse(spec).map_err(|e| SourceError::Url(spec.to_owned(), e))?;
        let auth = if base.username().is_empty() {
            None
        } else {
            let user = percent_encoding::percent_decode_str(base.username()).decode_utf8_lossy();
            let pass = base
                .password()
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            let mut v = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|e| SourceError::Tls(e.to_string()))?;
            v.set_sensitive(true);
            Some(v)
        };
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Self { base, auth })
    }

    pub fn describe(&self) -> String {
        redact(&self.base)
    }

    /// The root URL, credentials removed.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// Credentials go only to the index's own origin (as pip does), never to a file host.
    pub fn auth_for(&self, url: &Url) -> Option<&HeaderValue> {
        self.auth
            .as_ref()
            .filter(|_| url.origin() == self.base.origin())
    }

    pub async fn project_page(
        &self,
        client: &Client,
        name: &ProjectName,
        validators: Option<&Validators>,
    ) -> Result<PageFetch, UpstreamError> {
        let url = self
            .base
            .join(&format!("{name}/"))
            .map_err(|e| UpstreamError::BadRedirect {
                url: redact(&self.base),
                detail: e.to_string(),
            })?;
        let mut extra = vec![(ACCEPT, HeaderValue::from_static(PAGE_ACCEPT))];
        if let Some(v) = validators {
            if let Some(e) = v
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                extra.push((http::header::IF_NONE_MATCH, e));
            }
            if let Some(m) = v
                .last_modified
                .as_deref()
                .and_then(|m| HeaderValue::from_str(m).ok())
            {
                extra.push((http::header::IF_MODIFIED_SINCE, m));
            }
        }
        let work = async {
            let (final_url, resp) = client.get(&url, self.auth.as_ref(), &extra).await?;
            if resp.status() == StatusCode::NOT_MODIFIED && validators.is_some() {
                return Ok(PageFetch::NotModified);
            }
            Client::check_status(&final_url, resp.status())?;
            let header = |h| {
                resp.headers()
                    .get(h)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let is_json =
                header(CONTENT_TYPE).is_some_and(|c| c.to_ascii_lowercase().contains("json"));
            let fresh = Validators {
                etag: header(ETAG),
                last_modified: header(LAST_MODIFIED),
                digest: None,
            };
            let body =
                Client::read_capped(&final_url, resp.into_body(), client.limits.max_page_bytes)
                    .await?;
            let content_sha256: [u8; 32] = Sha256::digest(&body).into();
            if validators.and_then(|v| v.digest) == Some(content_sha256) {
                return Ok(PageFetch::NotModified);
            }
            let text = String::from_utf8_lossy(&body);
            let parsed = if is_json {
                json::parse(&text, &final_url)
            } else {
                html::parse(&text, &final_url)
            };
            let page = parsed.map_err(|source| UpstreamError::Page {
                url: redact(&final_url),
                source,
            })?;
            Ok(PageFetch::Fresh(Box::new(FetchedPage {
                page,
                source: 0,
                validators: fresh,
                content_sha256,
            })))
        };
        client
            .deadline(&url, client.limits.page_timeout, work)
            .await
    }

    /// Opens the root page (`/simple/`) for streaming; `true` when it is JSON. Held to the
    /// root size cap, not the page cap: a public root is ~50 MB.
    pub async fn open_root(&self, client: &Client) -> Result<(bool, FileBody), UpstreamError> {
        let extra = [(ACCEPT, HeaderValue::from_static(PAGE_ACCEPT))];
        let (body, content_type) = client
            .open_stream_with(
                &self.base,
                self.auth.as_ref(),
                &extra,
                client.limits.max_root_bytes,
            )
            .await?;
        let json = content_type.is_some_and(|c| c.to_ascii_lowercase().contains("json"));
        Ok((json, body))
    }
}
