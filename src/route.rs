//! Request paths to routes. Every path segment is percent-decoded and checked here, so handlers
//! only see validated names, digests and filenames.

use crate::dist::{NameError, ProjectName};

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Home,
    Health,
    Ready,
    Metrics,
    Root,
    Project(ProjectName),
    /// A request to redirect, to a location relative to the request's path.
    Redirect(String),
    File {
        sha256: String,
        filename: String,
    },
    Metadata {
        sha256: String,
        filename: String,
    },
    NotFound(String),
}

impl Route {
    /// The metrics label for the route: a fixed name, never the request's own text.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Health => "healthz",
            Self::Ready => "readyz",
            Self::Metrics => "metrics",
            Self::Root => "root",
            Self::Project(_) => "project",
            Self::Redirect(_) => "redirect",
            Self::File { .. } => "file",
            Self::Metadata { .. } => "metadata",
            Self::NotFound(_) => "not_found",
        }
    }
}

/// A path's scope prefix and the rest of it: `/ci/simple/x/` is scope `ci`, path
/// `/simple/x/`. Only a valid scope name is taken as one, so pipwall's own paths never are.
pub fn split_scope(path: &str) -> (Option<&str>, &str) {
    let Some(rest) = path.strip_prefix('/') else {
        return (None, path);
    };
    match rest.find('/') {
        Some(end) if crate::scope::valid_name(&rest[..end]) => (Some(&rest[..end]), &rest[end..]),
        _ => (None, path),
    }
}

pub fn route(path: &str) -> Route {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound("path must start with `/`".into());
    };
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        [""] => Route::Home,
        ["healthz"] => Route::Health,
        ["readyz"] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["simple"] => Route::Redirect("simple/".into()),
        ["simple", ""] => Route::Root,
        ["simple", raw] => project(raw, true),
        ["simple", raw, ""] => project(raw, false),
        ["files", sha, raw] => file(sha, raw),
        _ => Route::NotFound("no such page; the index is at /simple/".into()),
    }
}

fn decode(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn project(raw: &str, missing_slash: bool) -> Route {
    let Some(decoded) = decode(raw) else {
        return Route::NotFound("project name is not valid UTF-8".into());
    };
    match ProjectName::new(&decoded) {
        Err(e) => Route::NotFound(bad_name(&e)),
        Ok(name) if missing_slash => Route::Redirect(format!("{name}/")),
        // PEP 503: clients must ask for the normalized name; redirect those that do not.
        Ok(name) if name.as_str() != decoded => Route::Redirect(format!("../{name}/")),
        Ok(name) => Route::Project(name),
    }
}

fn bad_name(e: &NameError) -> String {
    format!("not a valid project name: {e}")
}

fn file(sha: &str, raw: &str) -> Route {
    let sha_ok = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let Some(filename) = decode(raw).filter(|f| {
        !f.is_empty()
            && f.len() <= 300
            && !f.starts_with('.')
            && !f.chars().any(|c| c.is_control() || c == '/' || c == '\\')
    }) else {
        return Route::NotFound("not a valid filename".into());
    };
    if !sha_ok {
        return Route::NotFound("not a sha256 digest".into());
    }
    let sha256 = sha.to_owned();
    match filename.strip_suffix(".metadata") {
        Some(f) => Route::Metadata {
            sha256,
            filename: f.to_owned(),
        },
        None => Route::File { sha256, filename },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "8c97e3bd0e2b0b5f4d87ad5c5fdfbde4d3d3e9c4a4b8e8a1d1c6f0f1e2d3c4b5";

    #[test]
    fn project_routes_and_redirects() {
        assert_eq!(
            route("/simple/demo/"),
            Route::Project(ProjectName::new("demo").unwrap())
        );
        assert_eq!(
            route("/simple/Demo_Pkg/"),
            Route::Redirect("../demo-pkg/".into())
        );
        assert_eq!(route("/simple/demo"), Route::Redirect("demo/".into()));
        assert_eq!(route("/simple"), Route::Redirect("simple/".into()));
        assert_eq!(route("/simple/"), Route::Root);
    }

    #[test]
    fn hostile_names_are_not_found() {
        for p in [
            "/simple/../",
            "/simple/%2e%2e/",
            "/simple/a%00b/",
            "/simple/caf%C3%A9/",
            "/simple/%FF/",
            "/simple/a/b/",
        ] {
            assert!(matches!(route(p), Route::NotFound(_)), "{p}");
        }
        let long = format!("/simple/{}/", "a".repeat(5000));
        assert!(matches!(route(&long), Route::NotFound(_)));
    }

    #[test]
    fn scope_prefixes() {
        assert_eq!(
            split_scope("/ci/simple/demo/"),
            (Some("ci"), "/simple/demo/")
        );
        assert_eq!(split_scope("/ci/files/x"), (Some("ci"), "/files/x"));
        assert_eq!(split_scope("/ci/"), (Some("ci"), "/"));
        // pipwall's own paths and names that are not scope names are left alone.
        for p in [
            "/simple/demo/",
            "/files/a/b",
            "/healthz",
            "/ci",
            "/CI/simple/",
            "/../simple/",
            "/",
        ] {
            assert_eq!(split_scope(p), (None, p), "{p}");
        }
        let long = format!("/{}/simple/", "a".repeat(65));
        assert_eq!(split_scope(&long).0, None);
    }

    #[test]
    fn file_routes() {
        assert_eq!(
            route(&format!("/files/{H}/demo-1.0%2Bx-py3-none-any.whl")),
            Route::File {
                sha256: H.into(),
                filename: "demo-1.0+x-py3-none-any.whl".into()
            }
        );
        assert_eq!(
            route(&format!("/files/{H}/demo-1.0-py3-none-any.whl.metadata")),
            Route::Metadata {
                sha256: H.into(),
                filename: "demo-1.0-py3-none-any.whl".into()
            }
        );
        assert!(matches!(route("/files/abc/demo.whl"), Route::NotFound(_)));
        assert!(matches!(
            route(&format!("/files/{H}/..%2Fetc")),
            Route::NotFound(_)
        ));
        assert!(matches!(
            route(&format!("/files/{}/x.whl", H.to_uppercase())),
            Route::NotFound(_)
        ));
    }
}
