//! Where pages and files come from: HTTP(S) simple indexes and local wheelhouse folders, tried in
//! the order given. The first source that knows a project answers for it; a source that fails
//! (rather than saying "not found") stops the search, so a private index that is down never lets
//! a public one answer for its names.

pub mod http;
pub mod wheelhouse;

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use ::http::StatusCode;
use bytes::Bytes;
use futures_util::Stream;
use url::Url;

use crate::dist::ProjectName;
use crate::index::{PageError, ProjectPage};
pub use http::HttpIndex;
pub use wheelhouse::Wheelhouse;

/// Bounds on everything read from upstream, which is untrusted.
#[derive(Clone, Debug)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// Time for a whole project page, redirects included.
    pub page_timeout: Duration,
    /// Longest wait for the next chunk of a file download.
    pub idle_timeout: Duration,
    pub max_page_bytes: u64,
    pub max_root_bytes: u64,
    pub max_file_bytes: u64,
    pub max_redirects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            page_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            // The largest real project pages are about 2 MB.
            max_page_bytes: 32 << 20,
            // A public index's root lists ~900k names in ~50 MB.
            max_root_bytes: 512 << 20,
            max_file_bytes: 4 << 30,
            max_redirects: 10,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{url}: not found upstream")]
    NotFound { url: String },
    #[error("{url}: upstream answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: could not connect: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url}: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url}: larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects { url: String, limit: usize },
    #[error("{url}: redirect to an unusable location: {detail}")]
    BadRedirect { url: String, detail: String },
    #[error("{url}: the page cannot be used")]
    Page {
        url: String,
        #[source]
        source: PageError,
    },
    #[error("{url}: the body broke off: {detail}")]
    Body { url: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: not a file of a configured upstream")]
    ForeignFile { url: String },
}

impl UpstreamError {
    /// The status pipwall answers with when this error stops a request.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::ForeignFile { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("upstream `{0}` is neither an http(s) URL nor an existing folder")]
    Unknown(String),
    #[error("upstream URL `{0}` is not valid: {1}")]
    Url(String, url::ParseError),
    #[error("cannot read the CA bundle `{path}`: {detail}")]
    CaBundle { path: String, detail: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}

/// Conditional-request validators of a page, for revalidation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// sha256 of the bytes last seen: a body with the same digest is reported as not modified
    /// before it is parsed, for upstreams that do not answer conditional requests.
    pub digest: Option<[u8; 32]>,
}

/// A page as fetched: parsed, with what identifies its content.
#[derive(Debug)]
pub struct FetchedPage {
    pub page: ProjectPage,
    /// Index of the source that answered.
    pub source: usize,
    pub validators: Validators,
    /// sha256 of the upstream bytes: an unchanged page need not be decided or rendered again.
    pub content_sha256: [u8; 32],
}

pub enum PageFetch {
    Fresh(Box<FetchedPage>),
    /// The source that answered last time says nothing changed.
    NotModified,
}

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// A download in progress.
pub struct FileBody {
    pub len: Option<u64>,
    pub stream: ByteStream,
}

pub enum Source {
    Index(HttpIndex),
    Wheelhouse(Wheelhouse),
}

impl Source {
    /// Whether the source can answer at all: an index accepts a TCP connection within a few
    /// seconds (a cheap check that sends nothing, unlike a page request), a folder exists.
    pub async fn probe(&self) -> Result<(), String> {
        match self {
            Self::Index(i) => {
                let url = i.base_url();
                let host = url.host_str().ok_or("the URL has no host")?.to_owned();
                let port = url.port_or_known_default().ok_or("the URL has no port")?;
                let connect = tokio::net::TcpStream::connect((host.as_str(), port));
                match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("cannot connect: {e}")),
                    Err(_) => Err("no connection within 3 s".into()),
                }
            }
            Self::Wheelhouse(w) => {
                if w.dir().is_dir() {
                    Ok(())
                } else {
                    Err("the folder is gone".into())
                }
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Index(i) => i.describe(),
            Self::Wheelhouse(w) => w.dir().display().to_string(),
        }
    }
}

pub struct Upstreams {
    sources: Vec<Source>,
    /// Each source's label: the `NAME=` a spec began with, else its position from 1. Policies'
    /// `[[private]]` sections name upstreams by label.
    labels: Vec<String>,
    client: http::Client,
}

impl Upstreams {
    /// Builds the sources from flags: an `http(s)://` URL is a simple index root, anything else
    /// must be an existing folder of distribution files.
    pub fn new(
        specs: &[String],
        limits: Limits,
        extra_ca: Option<&std::path::Path>,
    ) -> Result<Self, SourceError> {
        let client = http::Client::new(limits, extra_ca)?;
        let mut labels = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            labels.push(
                split_label(spec)
                    .0
                    .map_or_else(|| (i + 1).to_string(), str::to_owned),
            );
        }
        let sources = specs
            .iter()
            .map(|s| split_label(s).1)
            .map(|s| {
                if s.starts_with("http://") || s.starts_with("https://") {
                    HttpIndex::new(s).map(Source::Index)
                } else {
                    let dir = PathBuf::from(s);
                    if dir.is_dir() {
                        Ok(Source::Wheelhouse(Wheelhouse::new(dir)))
                    } else {
                        Err(SourceError::Unknown(s.to_owned()))
                    }
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sources,
            labels,
            client,
        })
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The label of source `i`: the `NAME=` it was given, else its position from 1.
    pub fn label(&self, i: usize) -> Option<&str> {
        self.labels.get(i).map(String::as_str)
    }

    /// The source a policy names: by label, or by its URL or folder as shown in logs.
    pub fn find(&self, label_or_location: &str) -> Option<usize> {
        self.labels
            .iter()
            .position(|l| l == label_or_location)
            .or_else(|| {
                self.sources.iter().position(|s| {
                    s.describe().trim_end_matches('/') == label_or_location.trim_end_matches('/')
                })
            })
    }

    /// Fetches a project's page from the first source that has it. `previous` is what the
    /// last fetch gave (source and validators), for a conditional request.
    pub async fn project_page(
        &self,
        name: &ProjectName,
        previous: Option<(usize, &Validators)>,
    ) -> Result<PageFetch, UpstreamError> {
        self.project_page_from(name, previous, None).await
    }

    /// [`Self::project_page`], asking only source `only` when given: a private name is never
    /// looked up on a public index, not even to learn that it is missing there.
    pub async fn project_page_from(
        &self,
        name: &ProjectName,
        previous: Option<(usize, &Validators)>,
        only: Option<usize>,
    ) -> Result<PageFetch, UpstreamError> {
        let mut last = None;
        for (i, source) in self.sources.iter().enumerate() {
            if only.is_some_and(|o| o != i) {
                continue;
            }
            let validators = previous.filter(|(s, _)| *s == i).map(|(_, v)| v);
            let result = match source {
                Source::Index(idx) => idx.project_page(&self.client, name, validators).await,
                Source::Wheelhouse(w) => w.project_page(name).await,
            };
            match result {
                Ok(PageFetch::Fresh(mut f)) => {
                    f.source = i;
                    return Ok(PageFetch::Fresh(f));
                }
                Ok(PageFetch::NotModified) => return Ok(PageFetch::NotModified),
                Err(e @ UpstreamError::NotFound { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| UpstreamError::NotFound {
            url: name.to_string(),
        }))
    }

    /// Opens a file for download. `file:` URLs are served only from inside a configured
    /// wheelhouse; `http(s)` URLs carry a source's credentials only to that source's origin.
    pub async fn open_file(&self, url: &Url) -> Result<FileBody, UpstreamError> {
        if url.scheme() == "file" {
            for s in &self.sources {
                if let Source::Wheelhouse(w) = s
                    && let Some(body) = w.open(url).await?
                {
                    return Ok(body);
                }
            }
            return Err(UpstreamError::ForeignFile {
                url: url.to_string(),
            });
        }
        let auth = self.auth_for(url);
        self.client.open_stream(url, auth).await
    }

    /// Reads a small file whole (a `.metadata` sidecar), within `cap` bytes.
    pub async fn fetch_small(&self, url: &Url, cap: u64) -> Result<Bytes, UpstreamError> {
        let auth = self.auth_for(url);
        self.client.fetch_bytes(url, auth, cap).await
    }

    fn auth_for(&self, url: &Url) -> Option<&::http::HeaderValue> {
        self.sources.iter().find_map(|s| match s {
            Source::Index(i) => i.auth_for(url),
            Source::Wheelhouse(_) => None,
        })
    }

    /// The root listing of source `i`: a body to stream (an index's `/simple/` page) or the
    /// names at hand (a folder).
    pub async fn root_listing(&self, i: usize) -> Result<RootListing, UpstreamError> {
        match self.sources.get(i) {
            Some(Source::Index(idx)) => {
                let (json, body) = idx.open_root(&self.client).await?;
                Ok(RootListing::Body { json, body })
            }
            Some(Source::Wheelhouse(w)) => Ok(RootListing::Names(w.project_names().await?)),
            None => Ok(RootListing::Names(Vec::new())),
        }
    }
}

/// `NAME=LOCATION` → (`Some(NAME)`, `LOCATION`). A name is lowercase letters, digits, `-` and
/// `_`, so a URL or a path with `=` further on is not mistaken for one.
fn split_label(spec: &str) -> (Option<&str>, &str) {
    if let Some((name, rest)) = spec.split_once('=')
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return (Some(name), rest);
    }
    (None, spec)
}

pub enum RootListing {
    Body { json: bool, body: FileBody },
    Names(Vec<String>),
}

/// A URL as it may be shown: the password (and a token used as user name) masked.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("****");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("****"));
    }
    u.to_string()
}
