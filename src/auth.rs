//! Client authentication: HTTP basic auth against a file of users with argon2id password hashes,
//! and bearer tokens (stored only as their sha256). pip and uv send basic credentials from the
//! index URL, netrc or keyring; a token also works as the password of user `__token__`, the
//! convention package indexes use, so clients that only speak basic auth can use tokens.
//!
//! The file, one entry a line (`#` starts a comment):
//!
//! ```text
//! alice:$argon2id$v=19$m=19456,t=2,p=1$…      a user; `pipwall auth add-user FILE alice`
//! token:9f86d081884c7d65…                      sha256 of a token; `pipwall auth add-token FILE`
//! token:2c26b46b68ffc68f… scope=ci             a token bound to the `serve --scope ci` index
//! ```
//!
//! A credential bound to a scope is served that scope's policy wherever it asks (`/simple/`
//! included) and is refused other scopes, so a CI token cannot step around the CI policy by
//! changing its index URL.
//!
//! Verifying argon2 costs tens of milliseconds by design, and pip sends its credentials with
//! every request, so a verified `Authorization` value is remembered (as its sha256, never in
//! clear) for a few minutes. Credentials are never logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// How long a verified credential is trusted without running argon2 again.
const REMEMBER: Duration = Duration::from_secs(300);
/// Most verified credentials remembered; past it, the memory is cleared.
const REMEMBER_MAX: usize = 10_000;
/// Wrong credentials an address may send in [`FAILURE_WINDOW`] before it is throttled.
const FAILURES_ALLOWED: u32 = 10;
/// How long failures are counted, and how long a throttled address waits.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Most addresses whose failures are tracked; past it, the oldest count is forgotten.
const FAILURES_MAX: usize = 100_000;
/// argon2 verifications running at once (each takes tens of milliseconds of one core).
const HASHING_AT_ONCE: usize = 2;

/// The user name under which a token is accepted as a basic-auth password.
pub const TOKEN_USER: &str = "__token__";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {detail}")]
    Line {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

pub struct Users {
    path: PathBuf,
    data: std::sync::RwLock<std::sync::Arc<Data>>,
    /// sha256 of an `Authorization` value → when it was verified, and its scope.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    /// Wrong credentials per client address: how many, since when.
    failures: Mutex<HashMap<std::net::IpAddr, (u32, Instant)>>,
    /// argon2 runs at once; the rest wait, so guessing cannot take every core.
    hashing: tokio::sync::Semaphore,
}

struct Data {
    /// user → (argon2 PHC string, bound scope).
    passwords: HashMap<String, (String, Option<Scope>)>,
    tokens: Vec<([u8; 32], Option<Scope>)>,
}

/// The scope a credential is bound to.
pub type Scope = std::sync::Arc<str>;

/// Who a valid credential is: the user's name (a token as `token:` and the first hex digits
/// of its digest, which name it without revealing it), and the scope it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub user: std::sync::Arc<str>,
    pub scope: Option<Scope>,
}

type Verified = (Instant, Grant);

/// Why a request was not let in (the response is the same 401 either way, so a client cannot
/// tell a wrong user from a wrong password).
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Wrong,
    /// Too many wrong credentials from this address lately: refused without checking, for
    /// this many seconds.
    Throttled(u64),
}

impl Users {
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        Ok(Self {
            path: path.to_owned(),
            data: std::sync::RwLock::new(std::sync::Arc::new(Self::read(path)?)),
            verified: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        })
    }

    /// Reads the file again (`SIGHUP`). A file that does not load leaves the old users in
    /// place; one that does replaces them, and remembered credentials are forgotten, so a
    /// removed user is out at once.
    pub fn reload(&self) -> Result<(), AuthError> {
        let fresh = std::sync::Arc::new(Self::read(&self.path)?);
        if let Ok(mut data) = self.data.write() {
            *data = fresh;
        }
        if let Ok(mut seen) = self.verified.lock() {
            seen.clear();
        }
        Ok(())
    }

    fn read(path: &Path) -> Result<Data, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut passwords = HashMap::new();
        let mut tokens = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |detail: &str| AuthError::Line {
                path: path.to_owned(),
                line: i + 1,
                detail: detail.to_owned(),
            };
            let (user, rest) = line
                .split_once(':')
                .ok_or_else(|| bad("expected `user:<argon2 hash>` or `token:<sha256>`"))?;
            let mut words = rest.split_whitespace();
            let secret = words.next().unwrap_or_default();
            let mut scope = None;
            for word in words {
                match word.strip_prefix("scope=") {
                    Some(name) if crate::scope::valid_name(name) && scope.is_none() => {
                        scope = Some(Scope::from(name));
                    }
                    Some(_) => return Err(bad("a `scope=` needs one lowercase scope name")),
                    None => {
                        return Err(bad(&format!("unknown option `{word}` (only `scope=NAME`)")));
                    }
                }
            }
            if user == "token" {
                let digest = hex::decode(secret)
                    .ok()
                    .and_then(|d| <[u8; 32]>::try_from(d).ok())
                    .ok_or_else(|| bad("a token line needs the token's sha256 in hex"))?;
                tokens.push((digest, scope));
            } else {
                if user.is_empty() || user == TOKEN_USER {
                    return Err(bad("user name is empty or reserved"));
                }
                PasswordHash::new(secret)
                    .map_err(|e| bad(&format!("not an argon2 PHC string: {e}")))?;
                if passwords
                    .insert(user.to_owned(), (secret.to_owned(), scope))
                    .is_some()
                {
                    return Err(bad("user listed twice"));
                }
            }
        }
        Ok(Data { passwords, tokens })
    }

    fn data(&self) -> std::sync::Arc<Data> {
        match self.data.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// [`Self::check`] for a request from `ip`, off the async threads: a remembered credential
    /// is answered at once; otherwise an address that sent too many wrong credentials lately is
    /// refused without running argon2, and the rest wait their turn for one of a few argon2
    /// slots on a blocking thread. 64 guessing clients made every valid request wait seconds
    /// when argon2 ran on the threads that serve requests (issue 16).
    pub async fn check_from(
        self: &std::sync::Arc<Self>,
        authorization: Option<&[u8]>,
        ip: std::net::IpAddr,
    ) -> Result<Grant, Denied> {
        let value = authorization.ok_or(Denied::Missing)?;
        if let Some(grant) = self.remembered(value) {
            return Ok(grant);
        }
        if let Some(wait) = self.throttled(ip) {
            return Err(Denied::Throttled(wait));
        }
        let _slot = self.hashing.acquire().await.map_err(|_| Denied::Wrong)?;
        let me = self.clone();
        let owned = value.to_vec();
        let result = tokio::task::spawn_blocking(move || me.check(Some(&owned)))
            .await
            .unwrap_or(Err(Denied::Wrong));
        if matches!(result, Err(Denied::Wrong)) {
            self.failed(ip);
        }
        result
    }

    fn remembered(&self, value: &[u8]) -> Option<Grant> {
        let key: [u8; 32] = Sha256::digest(value).into();
        let seen = self.verified.lock().ok()?;
        let (at, grant) = seen.get(&key)?;
        (at.elapsed() < REMEMBER).then(|| grant.clone())
    }

    /// Seconds an address must still wait, when it is throttled.
    fn throttled(&self, ip: std::net::IpAddr) -> Option<u64> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&ip)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*count >= FAILURES_ALLOWED).then(|| left.as_secs().max(1))
    }

    fn failed(&self, ip: std::net::IpAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= FAILURES_MAX {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= FAILURES_MAX {
                failures.clear();
            }
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    /// Checks an `Authorization` header value; a valid one yields who it is.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<Grant, Denied> {
        let value = authorization.ok_or(Denied::Missing)?;
        let key: [u8; 32] = Sha256::digest(value).into();
        if let Ok(mut seen) = self.verified.lock()
            && let Some((at, grant)) = seen.get(&key)
        {
            if at.elapsed() < REMEMBER {
                return Ok(grant.clone());
            }
            seen.remove(&key);
        }
        let text = std::str::from_utf8(value).map_err(|_| Denied::Wrong)?;
        let granted = if let Some(token) = strip_scheme(text, "bearer") {
            self.token_ok(token.trim())
        } else if let Some(b64) = strip_scheme(text, "basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| Denied::Wrong)?;
            let pair = String::from_utf8(decoded).map_err(|_| Denied::Wrong)?;
            let (user, password) = pair.split_once(':').ok_or(Denied::Wrong)?;
            if user == TOKEN_USER {
                self.token_ok(password)
            } else {
                self.password_ok(user, password)
            }
        } else {
            None
        };
        let grant = granted.ok_or(Denied::Wrong)?;
        if let Ok(mut seen) = self.verified.lock() {
            if seen.len() >= REMEMBER_MAX {
                seen.clear();
            }
            seen.insert(key, (Instant::now(), grant.clone()));
        }
        Ok(grant)
    }

    /// The scopes the credentials in the file are bound to, for checking they are all served.
    pub fn scopes(&self) -> Vec<Scope> {
        let data = self.data();
        let mut out: Vec<Scope> = data
            .passwords
            .values()
            .filter_map(|(_, s)| s.clone())
            .chain(data.tokens.iter().filter_map(|(_, s)| s.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The token's grant when it is listed.
    fn token_ok(&self, token: &str) -> Option<Grant> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every stored digest is compared in full, so timing says nothing about which matched.
        let data = self.data();
        let mut hit = None;
        for (t, scope) in &data.tokens {
            if constant_time_eq(t, &digest) {
                hit = Some(scope.clone());
            }
        }
        hit.map(|scope| Grant {
            user: format!("token:{}", hex::encode(&digest[..4])).into(),
            scope,
        })
    }

    /// The user's grant when the password is theirs.
    fn password_ok(&self, user: &str, password: &str) -> Option<Grant> {
        let data = self.data();
        let Some((phc, scope)) = data.passwords.get(user) else {
            // Spend the same work on an unknown user as on a wrong password.
            let _ = Argon2::default().hash_password(password.as_bytes());
            return None;
        };
        let ok = PasswordHash::new(phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        ok.then(|| Grant {
            user: user.into(),
            scope: scope.clone(),
        })
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// ` scope=NAME` for a line bound to a scope, checked.
fn scope_suffix(scope: Option<&str>) -> Result<String, AuthError> {
    match scope {
        None => Ok(String::new()),
        Some(s) if crate::scope::valid_name(s) => Ok(format!(" scope={s}")),
        Some(s) => Err(AuthError::Invalid(format!(
            "`{s}` is not a scope name (lowercase letters, digits, `-` and `_`)"
        ))),
    }
}

/// The line `add-user` appends: the user and an argon2id hash of the password, and the scope
/// the user is bound to, if any.
pub fn user_line(user: &str, password: &str, scope: Option<&str>) -> Result<String, AuthError> {
    if user.is_empty() || user.contains([':', '#', '\n', ' ', '\t']) || user == TOKEN_USER {
        return Err(AuthError::Invalid(
            "a user name may not be empty, reserved, or contain `:`, `#`, a space or a newline"
                .into(),
        ));
    }
    let suffix = scope_suffix(scope)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(format!("{user}:{hash}{suffix}"))
}

/// A fresh token (shown once) and the line that stores its digest (and its scope, if bound).
pub fn new_token(scope: Option<&str>) -> Result<(String, String), AuthError> {
    let suffix = scope_suffix(scope)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| AuthError::Random(e.to_string()))?;
    let token = format!(
        "pw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let line = format!(
        "token:{}{suffix}",
        hex::encode(Sha256::digest(token.as_bytes()))
    );
    Ok((token, line))
}

/// Appends a line to the users file, creating it owner-only.
pub fn append_line(path: &Path, line: &str) -> Result<(), AuthError> {
    use std::io::Write as _;
    let fail = |source| AuthError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(fail)?;
    writeln!(f, "{line}").map_err(fail)?;
    f.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scope a credential is bound to, or why it is refused.
    fn scope_of(users: &Users, auth: Option<&[u8]>) -> Result<Option<Scope>, Denied> {
        users.check(auth).map(|g| g.scope)
    }

    fn basic(user: &str, pw: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn an_address_that_keeps_guessing_is_throttled_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        append_line(&file, &user_line("alice", "right", None).unwrap()).unwrap();
        let users = std::sync::Arc::new(Users::load(&file).unwrap());
        let basic = |pw: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("alice:{pw}"))
            )
        };
        let guesser: std::net::IpAddr = "192.0.2.1".parse().unwrap();
        let other: std::net::IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..FAILURES_ALLOWED {
            let r = users
                .check_from(Some(basic("wrong").as_bytes()), guesser)
                .await;
            assert!(matches!(r, Err(Denied::Wrong)));
        }
        // Throttled now, even with the right password: argon2 is not run for it.
        let r = users
            .check_from(Some(basic("right").as_bytes()), guesser)
            .await;
        assert!(matches!(r, Err(Denied::Throttled(s)) if s >= 1), "{r:?}");
        // Another address is not.
        let r = users
            .check_from(Some(basic("right").as_bytes()), other)
            .await;
        assert!(r.is_ok());
        // And a credential verified before is answered from memory, throttled or not.
        let r = users
            .check_from(Some(basic("right").as_bytes()), guesser)
            .await;
        assert!(r.is_ok());
    }

    #[test]
    fn users_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        append_line(&path, &user_line("alice", "s3cret", None).unwrap()).unwrap();
        let (token, line) = new_token(None).unwrap();
        append_line(&path, &line).unwrap();
        let users = Users::load(&path).unwrap();
        assert_eq!(scope_of(&users, None), Err(Denied::Missing));
        assert_eq!(scope_of(&users, Some(&basic("alice", "s3cret"))), Ok(None));
        // Remembered: the second check does not need argon2 (and still answers yes).
        assert_eq!(scope_of(&users, Some(&basic("alice", "s3cret"))), Ok(None));
        assert_eq!(
            scope_of(&users, Some(&basic("alice", "wrong"))),
            Err(Denied::Wrong)
        );
        assert_eq!(
            scope_of(&users, Some(&basic("bob", "s3cret"))),
            Err(Denied::Wrong)
        );
        assert_eq!(
            scope_of(&users, Some(format!("Bearer {token}").as_bytes())),
            Ok(None)
        );
        assert_eq!(scope_of(&users, Some(&basic(TOKEN_USER, &token))), Ok(None));
        assert_eq!(
            scope_of(&users, Some(b"Bearer pw_not-the-token")),
            Err(Denied::Wrong)
        );
        assert_eq!(scope_of(&users, Some(b"Digest abc")), Err(Denied::Wrong));
        assert_eq!(scope_of(&users, Some(b"Basic !!!")), Err(Denied::Wrong));
    }

    #[test]
    fn reload_swaps_users_and_keeps_them_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        append_line(&path, &user_line("alice", "a", None).unwrap()).unwrap();
        let users = Users::load(&path).unwrap();
        assert!(scope_of(&users, Some(&basic("alice", "a"))).is_ok());
        std::fs::write(&path, "alice:broken\n").unwrap();
        assert!(users.reload().is_err());
        assert!(
            scope_of(&users, Some(&basic("alice", "a"))).is_ok(),
            "old users stay"
        );
        std::fs::write(&path, user_line("bob", "b", None).unwrap() + "\n").unwrap();
        users.reload().unwrap();
        // Remembered credentials are forgotten: alice is out at once.
        assert_eq!(
            scope_of(&users, Some(&basic("alice", "a"))),
            Err(Denied::Wrong)
        );
        assert!(scope_of(&users, Some(&basic("bob", "b"))).is_ok());
    }

    #[test]
    fn bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# ok\n\nalice:not-a-hash\n").unwrap();
        let e = Users::load(&path).err().unwrap().to_string();
        assert!(e.contains(":3:"), "{e}");
        std::fs::write(&path, "token:abc\n").unwrap();
        assert!(Users::load(&path).is_err());
        assert!(user_line("a:b", "x", None).is_err());
        assert!(new_token(Some("Not A Scope")).is_err());
        std::fs::write(&path, format!("token:{} scope=ci extra\n", "ab".repeat(32))).unwrap();
        let e = Users::load(&path).err().unwrap().to_string();
        assert!(e.contains("unknown option `extra`"), "{e}");
        std::fs::write(&path, format!("token:{} scope=CI\n", "ab".repeat(32))).unwrap();
        assert!(Users::load(&path).is_err());
    }

    #[test]
    fn a_credential_carries_its_scope() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        append_line(&path, &user_line("ci-bot", "pw", Some("ci")).unwrap()).unwrap();
        append_line(&path, &user_line("dev", "pw", None).unwrap()).unwrap();
        let (ci_token, line) = new_token(Some("ci")).unwrap();
        assert!(line.ends_with(" scope=ci"), "{line}");
        append_line(&path, &line).unwrap();
        let (free_token, line) = new_token(None).unwrap();
        append_line(&path, &line).unwrap();
        let users = Users::load(&path).unwrap();
        let ci = Some(Scope::from("ci"));
        assert_eq!(
            scope_of(&users, Some(&basic("ci-bot", "pw"))),
            Ok(ci.clone())
        );
        // The remembered answer keeps the binding.
        assert_eq!(
            scope_of(&users, Some(&basic("ci-bot", "pw"))),
            Ok(ci.clone())
        );
        assert_eq!(scope_of(&users, Some(&basic("dev", "pw"))), Ok(None));
        assert_eq!(
            scope_of(&users, Some(format!("Bearer {ci_token}").as_bytes())),
            Ok(ci.clone())
        );
        assert_eq!(
            scope_of(&users, Some(&basic(TOKEN_USER, &ci_token))),
            Ok(ci)
        );
        assert_eq!(
            scope_of(&users, Some(format!("Bearer {free_token}").as_bytes())),
            Ok(None)
        );
        assert_eq!(users.scopes(), vec![Scope::from("ci")]);
        // Who it is, for the decision log: the user's name, or a token's digest prefix.
        assert_eq!(
            &*users.check(Some(&basic("ci-bot", "pw"))).unwrap().user,
            "ci-bot"
        );
        let token_user = users
            .check(Some(format!("Bearer {ci_token}").as_bytes()))
            .unwrap()
            .user;
        assert!(
            token_user.starts_with("token:") && token_user.len() == 14,
            "{token_user}"
        );
        assert!(!ci_token.contains(&token_user[6..]));
    }
}
