//! A fake upstream index: a real hyper server on 127.0.0.1:0, in this process, serving what a
//! test puts in it and recording every path asked for.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::fixtures::Fixture;

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering (a stalled upstream).
    pub delay: std::time::Duration,
    /// Send only this many bytes of the body, then reset the connection (the headers still
    /// promise the whole length).
    pub cut_after: Option<usize>,
    /// Send the body in several chunks with no `Content-Length` (HTTP/1.1 chunked).
    pub chunked: bool,
    /// Send the body one byte per this interval (a dripping upstream).
    pub drip: Option<std::time::Duration>,
}

impl Reply {
    /// A plain 200 answer, sent at once and whole; tests change the fields they need.
    pub fn ok(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status: 200,
            content_type: content_type.into(),
            body: body.into(),
            headers: Vec::new(),
            delay: std::time::Duration::ZERO,
            cut_after: None,
            chunked: false,
            drip: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    Json,
    Html,
}

#[derive(Clone)]
pub struct FakeIndex {
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    log: Arc<Mutex<Vec<String>>>,
    auth: Arc<Mutex<Vec<String>>>,
    pub addr: SocketAddr,
}

impl FakeIndex {
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    /// An HTTPS upstream with a certificate for 127.0.0.1 from a CA made for this test; returns
    /// it and the CA's PEM.
    pub async fn start_tls() -> (Self, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap()
                .signed_by(&leaf_key, &issuer)
                .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Self::start_inner(Some(acceptor)).await, ca_cert.pem())
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = Self {
            routes: Arc::default(),
            log: Arc::default(),
            auth: Arc::default(),
            addr,
        };
        let srv = me.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let srv = srv.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let srv = srv.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            srv.log.lock().unwrap().push(path.clone());
                            if let Some(a) = req.headers().get("authorization") {
                                srv.auth
                                    .lock()
                                    .unwrap()
                                    .push(a.to_str().unwrap_or_default().to_owned());
                            }
                            let reply = srv.routes.lock().unwrap().get(&path).cloned();
                            let reply = reply.unwrap_or(Reply {
                                status: 404,
                                ..Reply::ok("text/plain", Bytes::from_static(b"not found"))
                            });
                            tokio::time::sleep(reply.delay).await;
                            let full_len = reply.body.len();
                            let body: http_body_util::combinators::BoxBody<Bytes, std::io::Error> =
                                match reply.cut_after {
                                    None if reply.drip.is_some() => {
                                        let every = reply.drip.unwrap_or_default();
                                        let body = reply.body.clone();
                                        let bytes =
                                            futures_util::stream::unfold(0usize, move |i| {
                                                let body = body.clone();
                                                async move {
                                                    if i >= body.len() {
                                                        return None;
                                                    }
                                                    tokio::time::sleep(every).await;
                                                    Some((
                                                        Ok(hyper::body::Frame::data(
                                                            body.slice(i..i + 1),
                                                        )),
                                                        i + 1,
                                                    ))
                                                }
                                            });
                                        http_body_util::StreamBody::new(bytes).boxed()
                                    }
                                    None if reply.chunked => {
                                        let step = full_len.div_ceil(4).max(1);
                                        let frames: Vec<
                                            Result<hyper::body::Frame<Bytes>, std::io::Error>,
                                        > = (0..full_len)
                                            .step_by(step)
                                            .map(|i| {
                                                Ok(hyper::body::Frame::data(
                                                    reply.body.slice(i..(i + step).min(full_len)),
                                                ))
                                            })
                                            .collect();
                                        http_body_util::StreamBody::new(futures_util::stream::iter(
                                            frames,
                                        ))
                                        .boxed()
                                    }
                                    None => Full::new(reply.body)
                                        .map_err(|never| match never {})
                                        .boxed(),
                                    Some(n) => {
                                        let head = reply.body.slice(..n.min(full_len));
                                        let frames: Vec<
                                            Result<hyper::body::Frame<Bytes>, std::io::Error>,
                                        > = vec![
                                            Ok(hyper::body::Frame::data(head)),
                                            Err(std::io::Error::other("cut off")),
                                        ];
                                        http_body_util::StreamBody::new(futures_util::stream::iter(
                                            frames,
                                        ))
                                        .boxed()
                                    }
                                };
                            let mut resp = hyper::Response::new(body);
                            if reply.cut_after.is_some() {
                                resp.headers_mut().insert("content-length", full_len.into());
                            }
                            for (k, v) in &reply.headers {
                                resp.headers_mut().insert(
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
                            resp.headers_mut()
                                .insert("content-type", reply.content_type.parse().unwrap());
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        me
    }

    /// The simple index root, as pipwall's `--upstream` takes it.
    pub fn url(&self) -> String {
        format!("http://{}/simple/", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}/simple/", self.addr)
    }

    pub fn set(&self, path: &str, status: u16, content_type: &str, body: impl Into<Bytes>) {
        self.set_reply(
            path,
            Reply {
                status,
                ..Reply::ok(content_type, body)
            },
        );
    }

    /// Makes the download of `f` (at `/files/<filename>`, as [`Self::project`] lists it)
    /// answer only after `delay`.
    pub fn slow_download(&self, f: &crate::support::fixtures::Fixture, delay: std::time::Duration) {
        self.set_reply(
            &format!("/files/{}", f.filename),
            Reply {
                delay,
                ..Reply::ok("application/octet-stream", f.bytes.clone())
            },
        );
    }

    pub fn set_reply(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// A redirect from `path` to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.set_reply(
            path,
            Reply {
                status: 302,
                headers: vec![("location".into(), location.into())],
                ..Reply::ok("text/plain", Bytes::new())
            },
        );
    }

    /// Every `Authorization` header received.
    pub fn auth_headers(&self) -> Vec<String> {
        self.auth.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn was_requested(&self, path_part: &str) -> bool {
        self.requests().iter().any(|p| p.contains(path_part))
    }

    /// Publishes a project: its page in `format` and each file under `/files/<filename>`.
    pub fn project(&self, name: &str, format: PageFormat, files: &[Fixture]) {
        let listed: Vec<(Fixture, String)> =
            files.iter().map(|f| (f.clone(), f.sha256())).collect();
        self.project_with_hashes(name, format, &listed);
    }

    /// Like [`project`](Self::project), with the digest each page entry promises given
    /// explicitly (to make an upstream lie).
    pub fn project_with_hashes(&self, name: &str, format: PageFormat, files: &[(Fixture, String)]) {
        let timed: Vec<(Fixture, String, String)> = files
            .iter()
            .map(|(f, sha)| (f.clone(), sha.clone(), "2024-01-01T00:00:00.000000Z".into()))
            .collect();
        self.publish(name, format, &timed);
    }

    /// A JSON page whose files carry the given upload times (PEP 700 form).
    pub fn project_timed(&self, name: &str, files: &[(Fixture, &str)]) {
        let timed: Vec<(Fixture, String, String)> = files
            .iter()
            .map(|(f, t)| (f.clone(), f.sha256(), (*t).to_owned()))
            .collect();
        self.publish(name, PageFormat::Json, &timed);
    }

    fn publish(&self, name: &str, format: PageFormat, files: &[(Fixture, String, String)]) {
        for (f, _, _) in files {
            self.set(
                &format!("/files/{}", f.filename),
                200,
                "application/octet-stream",
                f.bytes.clone(),
            );
        }
        let path = format!("/simple/{name}/");
        match format {
            PageFormat::Json => {
                let entries: Vec<serde_json::Value> = files
                    .iter()
                    .map(|(f, sha, time)| {
                        serde_json::json!({
                            "filename": f.filename,
                            "url": format!("../../files/{}", f.filename),
                            "hashes": {"sha256": sha},
                            "size": f.bytes.len(),
                            "upload-time": time,
                        })
                    })
                    .collect();
                let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": entries, "versions": []});
                self.set(
                    &path,
                    200,
                    "application/vnd.pypi.simple.v1+json",
                    page.to_string(),
                );
            }
            PageFormat::Html => {
                let mut html = String::from("<!DOCTYPE html><html><body>\n");
                for (f, sha, _) in files {
                    html.push_str(&format!(
                        "<a href=\"/files/{0}#sha256={sha}\">{0}</a><br>\n",
                        f.filename
                    ));
                }
                html.push_str("</body></html>\n");
                self.set(&path, 200, "text/html", html);
            }
        }
    }
}
