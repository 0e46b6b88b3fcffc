//! Serving HTTPS: the server's certificate and key, and `pipwall certs init`, which makes a
//! local CA and a server certificate signed by it so clients can trust pipwall with one file
//! (`SSL_CERT_FILE=ca.pem pip …`, `SSL_CERT_FILE=ca.pem uv …`: pip 26 verifies with the system store
//! through truststore, which does not take `--cert`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable PEM private key in it ({detail})")]
    NoKey { path: PathBuf, detail: String },
    #[error("the certificate and key do not form a usable TLS identity: {0}")]
    Config(#[from] rustls::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; pass --force to replace it")]
    Exists { path: PathBuf },
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Why a client's TLS set-up failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientTlsError {
    #[error("CA bundle {path}: {detail}")]
    Bundle { path: String, detail: String },
    #[error("TLS set-up failed: {0}")]
    Setup(String),
}

/// A client configuration trusting the system's certificates and those in `extra` (a PEM
/// bundle, for a private CA): for upstream indexes and for the shared state's database.
/// Unreadable system certificates are not fatal: the extra bundle may be all that is needed.
pub fn client_config(extra: Option<&Path>) -> Result<rustls::ClientConfig, ClientTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra {
        let bundle_err = |detail: String| ClientTlsError::Bundle {
            path: path.display().to_string(),
            detail,
        };
        let pem = std::fs::read(path).map_err(|e| bundle_err(e.to_string()))?;
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bundle_err(e.to_string()))?;
            roots.add(cert).map_err(|e| bundle_err(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bundle_err("no certificate in it".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientTlsError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(Reloadable::load(cert, key)?.0)
}

/// The server's certificate and key, swappable while connections are open: `SIGHUP` reloads
/// them, new handshakes use the new pair, and a pair that does not load leaves the old one.
#[derive(Debug)]
pub struct Reloadable {
    cert: PathBuf,
    key: PathBuf,
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::server::ResolvesServerCert for Reloadable {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|k| k.clone())
    }
}

impl Reloadable {
    /// The configuration to serve with, and the handle that reloads it.
    pub fn load(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Arc<Self>), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key(cert, key, &provider)?;
        let me = Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: std::sync::RwLock::new(Arc::new(certified)),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(me.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok((Arc::new(config), me))
    }

    /// Reads the files again; on any error the current pair stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let provider = rustls::crypto::ring::default_provider();
        let certified = certified_key(&self.cert, &self.key, &provider)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(certified);
        }
        Ok(())
    }
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<rustls::sign::CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_pem = read(key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok(rustls::sign::CertifiedKey::from_der(chain, key, provider)?)
}

/// The files `certs init` writes.
pub struct Generated {
    pub ca: PathBuf,
    pub server: PathBuf,
}

/// Names a local server answers to when none are given.
pub const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Days the local CA made by `certs init` is valid.
const CA_DAYS: i64 = 3650;
/// Days its server certificate is valid.
const SERVER_DAYS: i64 = 397;

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        i32::try_from(y).unwrap_or(9999),
        u8::try_from(m).unwrap_or(1),
        u8::try_from(d).unwrap_or(1),
    )
}

/// Valid from yesterday (clocks disagree) to `days` from today, at midnight UTC.
fn set_validity(params: &mut rcgen::CertificateParams, days: i64) {
    let today = jiff::Timestamp::now().as_second().div_euclid(86_400);
    let day = |offset: i64| {
        let (y, m, d) = civil_from_days(today + offset);
        rcgen::date_time_ymd(y, m, d)
    };
    params.not_before = day(-1);
    params.not_after = day(days);
}

/// Writes `ca.pem`, `ca-key.pem`, `server.pem` and `server-key.pem` into `dir`: a CA made for
/// this one pipwall, and a server certificate for `names` (DNS names or IP addresses) signed by
/// it. Keys are written readable by the owner only. Existing files are kept unless `force`.
pub fn init(dir: &Path, names: &[String], force: bool) -> Result<Generated, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let path = |f: &str| dir.join(f);
    let files = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"];
    if !force {
        for f in files {
            if path(f).exists() {
                return Err(TlsError::Exists { path: path(f) });
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "pipwall local CA");
    ca_params.distinguished_name = dn;
    // Bounded lifetimes (rcgen's default runs to the year 4096): the CA ten years, the server
    // certificate 397 days, the longest clients that follow the CA/Browser Forum accept.
    set_validity(&mut ca_params, CA_DAYS);
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map_or("pipwall", String::as_str),
    );
    params.distinguished_name = dn;
    set_validity(&mut params, SERVER_DAYS);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    // OpenSSL's strict mode (urllib3, so pip and requests, turn it on) refuses a leaf without
    // an authority key identifier: "unable to get local issuer certificate".
    params.use_authority_key_identifier_extension = true;
    let server_cert = params.signed_by(&server_key, &issuer)?;

    write_file(&path("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write_file(&path("ca-key.pem"), ca_key_pem.as_bytes(), true)?;
    write_file(&path("server.pem"), server_cert.pem().as_bytes(), false)?;
    write_file(
        &path("server-key.pem"),
        server_key.serialize_pem().as_bytes(),
        true,
    )?;
    Ok(Generated {
        ca: path("ca.pem"),
        server: path("server.pem"),
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a key; secrets are
/// created owner-only from the start.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), TlsError> {
    let fail = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(fail)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_from_day_counts() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn certificates_expire_within_their_bounds() {
        let dir = tempfile::tempdir().unwrap();
        init(dir.path(), &["localhost".to_owned()], false).unwrap();
        let now = jiff::Timestamp::now().as_second();
        for (file, days) in [("server.pem", SERVER_DAYS), ("ca.pem", CA_DAYS)] {
            let pem = std::fs::read(dir.path().join(file)).unwrap();
            let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
            let cert = pem.parse_x509().unwrap();
            let v = cert.validity();
            let after = v.not_after.timestamp();
            assert!(after <= now + (days + 1) * 86_400, "{file}: {after}");
            assert!(after >= now + (days - 1) * 86_400, "{file}: {after}");
            assert!(v.not_before.timestamp() <= now, "{file}");
        }
    }

    #[test]
    fn init_makes_a_usable_identity_and_keeps_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = DEFAULT_NAMES.iter().map(|s| (*s).to_owned()).collect();
        let made = init(dir.path(), &names, false).unwrap();
        assert!(made.ca.exists() && made.server.exists());
        server_config(&made.server, &dir.path().join("server-key.pem")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("server-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            init(dir.path(), &names, false),
            Err(TlsError::Exists { .. })
        ));
        init(dir.path(), &names, true).unwrap();
    }

    #[test]
    fn reload_swaps_the_pair_and_keeps_it_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_owned()];
        init(dir.path(), &names, false).unwrap();
        let cert = dir.path().join("server.pem");
        let key = dir.path().join("server-key.pem");
        let (_, handle) = Reloadable::load(&cert, &key).unwrap();
        let first = handle.current.read().unwrap().cert.clone();
        init(dir.path(), &names, true).unwrap();
        handle.reload().unwrap();
        let second = handle.current.read().unwrap().cert.clone();
        assert_ne!(first, second);
        std::fs::write(&key, "garbage").unwrap();
        assert!(handle.reload().is_err());
        assert_eq!(
            handle.current.read().unwrap().cert,
            second,
            "the old pair stays"
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let e = server_config(&junk, &junk).unwrap_err();
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }
}
