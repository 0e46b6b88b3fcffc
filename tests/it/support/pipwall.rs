//! pipwall started in this process on 127.0.0.1:0, with its own cache folder and a decision
//! log the test can read.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipwall::decision_log::DecisionLog;
use pipwall::serve::{App, Settings};
use pipwall::upstream::{Limits, Upstreams};

pub struct Pipwall {
    pub addr: SocketAddr,
    pub cache: tempfile::TempDir,
    log: Arc<Mutex<Vec<u8>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pipwall {
    pub async fn start(upstreams: &[String]) -> Self {
        Self::start_with(upstreams, Duration::from_secs(60), Limits::default()).await
    }

    pub async fn start_with(upstreams: &[String], page_ttl: Duration, limits: Limits) -> Self {
        Self::start_full(upstreams, page_ttl, limits, None).await
    }

    pub async fn start_full(
        upstreams: &[String],
        page_ttl: Duration,
        limits: Limits,
        extra_ca: Option<&std::path::Path>,
    ) -> Self {
        Self::start_in(
            tempfile::tempdir().unwrap(),
            upstreams,
            limits,
            extra_ca,
            |s| s.page_ttl = page_ttl,
        )
        .await
    }

    /// pipwall with its cache in `cache` (a restart reuses one) and settings changed by `tune`.
    pub async fn start_in(
        cache: tempfile::TempDir,
        upstreams: &[String],
        limits: Limits,
        extra_ca: Option<&std::path::Path>,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_tls(cache, upstreams, limits, extra_ca, tune, None).await
    }

    /// As [`Self::start_in`], serving HTTPS when `tls` is given.
    pub async fn start_tls(
        cache: tempfile::TempDir,
        upstreams: &[String],
        limits: Limits,
        extra_ca: Option<&std::path::Path>,
        tune: impl FnOnce(&mut Settings),
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let app = Arc::new(App::new(
            Upstreams::new(upstreams, limits, extra_ca).unwrap(),
            {
                let mut s = Settings::new(cache.path().to_owned());
                tune(&mut s);
                s
            },
            DecisionLog::new(Box::new(SharedLog(log.clone()))),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(pipwall::server::serve_with(
            app,
            listener,
            tls,
            async {
                let _ = rx.await;
            },
            Duration::from_secs(1),
        ));
        Self {
            addr,
            cache,
            log,
            stop: Some(tx),
        }
    }

    pub fn index_url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    /// The decision log's lines, parsed.
    pub fn decisions(&self) -> Vec<serde_json::Value> {
        let bytes = self.log.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A plain HTTP/1.1 GET (one connection, read to the end): status line, headers, body.
    pub async fn get(&self, path: &str, accept: Option<&str>) -> RawResponse {
        raw_get(self.addr, path, accept).await
    }
}

impl Pipwall {
    /// Stops this pipwall and hands over its cache folder, for a restart on the same cache.
    pub fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        std::mem::replace(&mut self.cache, tempfile::tempdir().unwrap())
    }
}

impl Drop for Pipwall {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the response ended as HTTP says a whole one ends: its announced length met,
    /// or a chunked body's last (empty) chunk received. A client takes only such a response
    /// as a file.
    pub complete: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn raw_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> RawResponse {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    raw_get_with(addr, path, &headers).await
}

/// A plain HTTP/1.1 GET with the given request headers.
pub async fn raw_get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let complete = if chunked {
        body.ends_with(b"0\r\n\r\n")
    } else {
        header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .is_none_or(|n| n == body.len())
    };
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        status_line,
        headers,
        body,
        complete,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
}

impl Pipwall {
    /// pipwall under the policy `text`, written to `dir/policy.toml` (files it names are taken
    /// from `dir`).
    pub async fn start_with_policy(
        upstreams: &[String],
        dir: &std::path::Path,
        text: &str,
    ) -> Self {
        let file = dir.join("policy.toml");
        std::fs::write(&file, text).unwrap();
        let (policy, _) = pipwall::policy::load_files(&[file]).unwrap();
        let policy = Arc::new(policy);
        Self::start_in(
            tempfile::tempdir().unwrap(),
            upstreams,
            Limits::default(),
            None,
            |s| s.policy = policy,
        )
        .await
    }
}
