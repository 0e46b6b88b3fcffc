//! The HTTP server: accept loop, HTTP/1.1 and HTTP/2 (hyper-util's auto builder), bounded
//! connections (in all and per client address, with a short header deadline under pressure)
//! and header sizes, graceful shutdown.
//!
//! A request in absolute form (`GET http://other.example/simple/x/ HTTP/1.1`) is answered from
//! its path, like any other: RFC 9112 §3.2.2 says a server must accept that form, and pipwall
//! serves one index whatever the host is called, so the authority changes nothing. pipwall is
//! never a forward proxy: no request makes it fetch the URL a client names.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::index::negotiate::negotiate;
use crate::route::{Route, route, split_scope};
use crate::serve::{App, AppError, Body, ScopeId, full};

/// A request id: the one a fronting proxy sent (`X-Request-Id`, when short and plain), or a
/// new one unique to this process. It is in every log line of the request and in the response.
fn request_id(req: &Request<Incoming>) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    if let Some(given) = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
    {
        return given.to_owned();
    }
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| getrandom::u32().unwrap_or(0));
    format!("{prefix:08x}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Answers one request; `bound` is the scope the listener it came in on serves, if any.
pub async fn handle(
    app: &App,
    req: Request<Incoming>,
    peer: SocketAddr,
    bound: Option<ScopeId>,
) -> Response<Body> {
    use tracing::Instrument as _;
    let id: std::sync::Arc<str> = request_id(&req).into();
    let span = tracing::info_span!("request", id = %id);
    let mut resp = match app
        .settings
        .server
        .rate_limit
        .as_ref()
        .map(|rl| rl.check(peer.ip()))
    {
        Some(Err(retry)) => too_many(retry),
        _ => {
            handle_inner(app, req, bound, &id, peer)
                .instrument(span)
                .await
        }
    };
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

async fn handle_inner(
    app: &App,
    req: Request<Incoming>,
    bound: Option<ScopeId>,
    id: &std::sync::Arc<str>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method();
    let path = req.uri().path();
    // Routed once: the handler and the metrics label share it.
    let (named, rest) = split_scope(path);
    let routed = match route(rest) {
        Route::Health | Route::Ready | Route::Metrics if named.is_some() => {
            Route::NotFound("no such page; the scope's index is at simple/".into())
        }
        r => r,
    };
    let label = routed.label();
    let mut granted = None;
    if let Some(users) = &app.settings.auth
        && path != "/healthz"
        && path != "/readyz"
    {
        match users
            .check_from(
                req.headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
                peer.ip(),
            )
            .await
        {
            Ok(grant) => granted = Some(grant),
            Err(crate::auth::Denied::Throttled(wait)) => {
                tracing::info!(%method, path = %crate::sanitize::escape(path), status = 429, "request");
                app.metrics
                    .request(label, 429, started.elapsed().as_secs_f64());
                return too_many(wait);
            }
            Err(_) => {
                tracing::info!(%method, path = %crate::sanitize::escape(path), status = 401, "request");
                app.metrics
                    .request(label, 401, started.elapsed().as_secs_f64());
                return unauthorized();
            }
        }
    }
    let scoped = pick_scope(
        app,
        named,
        bound,
        granted.as_ref().and_then(|g| g.scope.as_deref()),
    );
    let requester = crate::decision_log::Requester {
        request_id: id.clone(),
        client: granted
            .as_ref()
            .map_or(crate::decision_log::Caller::Address(peer.ip()), |g| {
                crate::decision_log::Caller::User(g.user.clone())
            }),
    };
    let dispatched = match scoped {
        Ok(scope) => {
            crate::decision_log::REQUESTER
                .scope(requester, dispatch(app, &req, routed, scope))
                .await
        }
        Err(e) => Err(e),
    };
    let resp = match dispatched {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, AppError::Upstream(_)) {
                app.metrics.upstream_error();
            }
            if e.status().is_server_error() {
                tracing::warn!(%method, path = %crate::sanitize::escape(path), error = %e, "request failed");
            }
            let wants_json = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("json"));
            if wants_json {
                e.into_json_response(id)
            } else {
                e.into_response()
            }
        }
    };
    app.metrics.request(
        label,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    tracing::info!(%method, path = %crate::sanitize::escape(path), status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// The scope a request is served in. A listener or a credential bound to a scope pins it: the
/// request is served in that scope at `/simple/`, and naming another scope in the path is
/// refused. Otherwise the path's scope prefix decides, and without one the default scope.
fn pick_scope(
    app: &App,
    named: Option<&str>,
    listener: Option<ScopeId>,
    credential: Option<&str>,
) -> Result<ScopeId, AppError> {
    let from_path = match named {
        Some(n) => Some(app.scope_id(n).ok_or_else(|| {
            AppError::NotFound(format!(
                "no index named `{n}` here; the index is at /simple/"
            ))
        })?),
        None => None,
    };
    let from_credential = match credential {
        Some(n) => Some(app.scope_id(n).ok_or_else(|| {
            AppError::OutOfScope(format!(
                "this credential is bound to the scope `{n}`, which this server does not serve"
            ))
        })?),
        None => None,
    };
    let (pinned, who) = match (listener, from_credential) {
        (Some(l), Some(c)) if l != c => {
            return Err(AppError::OutOfScope(format!(
                "this credential may only use the `{}` index, and this address serves only the `{}` index",
                app.scope_name(c),
                app.scope_name(l)
            )));
        }
        (Some(l), _) => (Some(l), "address serves"),
        (None, c) => (c, "credential may use"),
    };
    match (from_path, pinned) {
        (Some(p), Some(b)) if p != b => Err(AppError::OutOfScope(format!(
            "this {who} only the `{}` index (at /simple/), not `{}`",
            app.scope_name(b),
            app.scope_name(p)
        ))),
        (p, b) => Ok(p.or(b).unwrap_or(0)),
    }
}

async fn dispatch(
    app: &App,
    req: &Request<Incoming>,
    routed: Route,
    scope: ScopeId,
) -> Result<Response<Body>, AppError> {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        return Err(AppError::Method);
    }
    // PEP 691: `?format=` stands in for the Accept header.
    let format_param = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("format="))
            .map(|v| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    let accept = format_param.or_else(|| {
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let format = || negotiate(accept.as_deref()).ok_or(AppError::NotAcceptable);
    match routed {
        Route::Home if scope == 0 => Ok(text("pipwall: the package index is at /simple/\n")),
        // Relative, so it holds at `/NAME/` and at `/` of a listener bound to the scope.
        Route::Home => Ok(text(format!(
            "pipwall: the package index of scope {} is at simple/\n",
            app.scope_name(scope)
        ))),
        Route::Health => Ok(text("ok\n")),
        Route::Ready => match app.ready().await {
            Ok(()) => Ok(text("ready\n")),
            Err(problems) => {
                let mut r = Response::new(full(problems.join("\n") + "\n"));
                *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Ok(r)
            }
        },
        Route::Metrics => {
            let mut r = Response::new(full(app.metrics.render()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(r)
        }
        Route::Root => app.handle_root(format()?).await,
        Route::Project(name) => {
            let user_agent = req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok());
            app.handle_project(scope, &name, format()?, user_agent)
                .await
        }
        Route::Redirect(to) => {
            let mut r = Response::new(full(format!("moved to {to}\n")));
            *r.status_mut() = http::StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = http::HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
        Route::File { sha256, filename } => app.handle_file(scope, &sha256, &filename, head).await,
        Route::Metadata { sha256, filename } => {
            app.handle_metadata(scope, &sha256, &filename).await
        }
        Route::NotFound(why) => Err(AppError::NotFound(why)),
    }
}

/// 429 with the seconds until the client's next request is allowed.
fn too_many(retry_after: u64) -> Response<Body> {
    let mut r = Response::new(full("too many requests from this address\n"));
    *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
    r.headers_mut()
        .insert(header::RETRY_AFTER, http::HeaderValue::from(retry_after));
    r
}

/// 401 with a challenge, so pip falls back to its netrc or keyring credentials (or asks).
fn unauthorized() -> Response<Body> {
    let mut r = Response::new(full("authentication required\n"));
    *r.status_mut() = http::StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"pipwall\", charset=\"UTF-8\""),
    );
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

fn text(s: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = Response::new(full(s));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// (at most `grace`).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(app, listener, None, shutdown, grace).await
}

/// The request-header time a connection gets while the server is near its connection limit.
const PRESSURE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Connections held per client address.
struct PerAddress {
    limit: usize,
    held: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
}

/// One connection's place in its address's count, given back when it is dropped.
struct AddressSlot {
    ip: std::net::IpAddr,
    held: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>>,
}

impl PerAddress {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Arc::default(),
        }
    }

    fn enter(&self, ip: std::net::IpAddr) -> Option<AddressSlot> {
        let mut held = self.held.lock().ok()?;
        let n = held.entry(ip).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            ip,
            held: self.held.clone(),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock()
            && let Some(n) = held.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve`], over TLS when `tls` is given (HTTP/2 and HTTP/1.1 by ALPN).
pub async fn serve_with(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    serve_listeners(app, vec![(listener, None)], tls, shutdown, grace).await
}

/// [`serve_with`] on several listeners at once, each serving every scope or bound to one
/// (`--listen NAME=ADDR`). They share the connection limit and the graceful shutdown.
pub async fn serve_listeners(
    app: Arc<App>,
    listeners: Vec<(TcpListener, Option<ScopeId>)>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slow or endless request headers (slowloris) are cut off.
        .header_read_timeout(app.settings.server.header_timeout)
        .max_buf_size(app.settings.server.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(app.settings.server.max_header_bytes).unwrap_or(u32::MAX),
        );
    // Under pressure (a quarter of the connections left), a new connection gets a short time
    // to send its request: idle connections cannot hold the rest of the pool for long.
    let mut pressed = builder.clone();
    pressed.http1().header_read_timeout(
        app.settings
            .server
            .header_timeout
            .min(PRESSURE_HEADER_TIMEOUT),
    );
    let graceful = GracefulShutdown::new();
    let max_connections = app.settings.server.max_connections.max(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let per_address = PerAddress::new(app.settings.server.max_connections_per_address.max(1));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let accepts = listeners.iter().map(|(l, bound)| {
            Box::pin(async move { l.accept().await.map(|(s, p)| (s, p, *bound)) })
        });
        let (stream, peer, bound) = tokio::select! {
            (r, _, _) = futures_util::future::select_all(accepts) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = per_address.enter(peer.ip()) else {
            tracing::debug!(%peer, "connection closed: its address holds too many already");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(&app, req, peer, bound).await) }
        });
        let builder = if permits.available_permits() < max_connections / 4 {
            pressed.clone()
        } else {
            builder.clone()
        };
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls), svc);
                            watcher.watch(conn.into_owned()).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}
