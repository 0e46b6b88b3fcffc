//! PEP 740 attestations: who published a file, proven with Sigstore.
//!
//! An index that speaks simple API 1.3 may list, per file, a `provenance` URL. The provenance
//! object holds attestation bundles; each attestation is an in-toto statement naming the file
//! and its sha256, signed (DSSE) by a short-lived Fulcio certificate whose extensions say which
//! CI identity asked for it, and logged in Rekor. The index's own `publisher` field is a claim;
//! only what the certificate says counts here.
//!
//! Verifying one attestation, every step required:
//! 1. the statement names this file and this sha256, with a PyPI publish or SLSA predicate;
//! 2. the DSSE signature over the statement checks against the certificate's key;
//! 3. the Rekor entry's signed entry timestamp (inclusion promise) checks against a trusted log
//!    key, which makes its integrated time trustworthy;
//! 4. the entry's body records this statement's hash, this signature and this certificate;
//! 5. the certificate chains to a trusted Fulcio CA at that integrated time, for code signing.
//!
//! The trust root is Sigstore's public-good `trusted_root.json` (bundled, see
//! `data/sigstore/README.md`). Rekor v2 entries (no signed entry timestamp; checkpoints and a
//! timestamp authority instead) are not verified yet and count as not verified.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest provenance object read (real ones are about 10 kB per attestation).
pub const MAX_PROVENANCE_BYTES: u64 = 4 << 20;
/// Most attestations verified per file; a provenance listing more is cut there.
const MAX_ATTESTATIONS: usize = 16;

const IN_TOTO_PAYLOAD: &str = "application/vnd.in-toto+json";
const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// PEP 740's publish predicate type, a URI under the index's documentation host: matched by
/// its path, so no index host is written here.
const PUBLISH_PREDICATE_PATH: &str = "/attestations/publish/v1";
const SLSA_PREDICATE: &str = "https://slsa.dev/provenance/v1";
/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio's certificate extensions (1.3.6.1.4.1.57264.1.x).
const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_SOURCE_REPOSITORY: &str = "1.3.6.1.4.1.57264.1.12";

static PUBLIC_GOOD: &str = include_str!("../data/sigstore/trusted_root.json");

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("the trust root is unusable: {0}")]
    TrustRoot(String),
    #[error("the provenance is not readable: {0}")]
    Provenance(String),
    #[error("the statement {0}")]
    Statement(String),
    #[error("the signature over the statement does not check against the certificate")]
    Signature,
    #[error("the certificate {0}")]
    Certificate(String),
    #[error("the transparency log entry {0}")]
    Log(String),
}

/// Who a verified certificate says published the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The OIDC issuer that vouched for the publisher (e.g. a CI system's token service).
    pub issuer: String,
    /// The certificate's subject alternative name: a workflow URI or an e-mail address.
    pub identity: String,
    /// The source repository the CI run built from, when the issuer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// What a file's provenance proved: the identities of the attestations that verified, and why
/// the others did not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceFacts {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<Identity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A Fulcio CA: its chain (issuing certificate first, root last) and when it issued.
struct Authority {
    chain: Vec<Vec<u8>>,
    start: Option<i64>,
    end: Option<i64>,
}

/// A Rekor log key, by its log id (sha256 of the key's DER).
struct LogKey {
    id: Vec<u8>,
    /// The key's uncompressed P-256 point.
    point: Vec<u8>,
    start: Option<i64>,
    end: Option<i64>,
}

pub struct TrustRoot {
    authorities: Vec<Authority>,
    logs: Vec<LogKey>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: String,
    key_details: String,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawWindow {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    cert_chain: RawChain,
    #[serde(default)]
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

fn window(w: Option<&RawWindow>) -> Result<(Option<i64>, Option<i64>), AttestError> {
    let at = |s: &Option<String>| -> Result<Option<i64>, AttestError> {
        s.as_deref()
            .map(|s| {
                s.parse::<jiff::Timestamp>()
                    .map(|t| t.as_second())
                    .map_err(|e| AttestError::TrustRoot(format!("bad time `{s}`: {e}")))
            })
            .transpose()
    };
    match w {
        None => Ok((None, None)),
        Some(w) => Ok((at(&w.start)?, at(&w.end)?)),
    }
}

fn within(t: i64, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| s <= t) && end.is_none_or(|e| t <= e)
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

impl TrustRoot {
    /// Sigstore's public-good instance, as bundled.
    pub fn public_good() -> Result<&'static TrustRoot, AttestError> {
        static ROOT: std::sync::OnceLock<Result<TrustRoot, String>> = std::sync::OnceLock::new();
        ROOT.get_or_init(|| TrustRoot::parse(PUBLIC_GOOD.as_bytes()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| AttestError::TrustRoot(e.clone()))
    }

    /// Reads a Sigstore `trusted_root.json`. Only ECDSA P-256 logs are kept: they are the ones
    /// whose entries carry a signed entry timestamp.
    pub fn parse(json: &[u8]) -> Result<Self, AttestError> {
        let raw: RawRoot =
            serde_json::from_slice(json).map_err(|e| AttestError::TrustRoot(e.to_string()))?;
        let mut authorities = Vec::new();
        for a in &raw.certificate_authorities {
            let chain = a
                .cert_chain
                .certificates
                .iter()
                .map(|c| b64(&c.raw_bytes, "a CA certificate"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(AttestError::TrustRoot)?;
            if chain.is_empty() {
                continue;
            }
            let (start, end) = window(a.valid_for.as_ref())?;
            authorities.push(Authority { chain, start, end });
        }
        let mut logs = Vec::new();
        for l in &raw.tlogs {
            if l.public_key.key_details != "PKIX_ECDSA_P256_SHA_256" {
                continue;
            }
            let spki = b64(&l.public_key.raw_bytes, "a log key").map_err(AttestError::TrustRoot)?;
            let point = spki_point(&spki).map_err(AttestError::TrustRoot)?;
            let id = b64(&l.log_id.key_id, "a log id").map_err(AttestError::TrustRoot)?;
            let (start, end) = window(l.public_key.valid_for.as_ref())?;
            logs.push(LogKey {
                id,
                point,
                start,
                end,
            });
        }
        if authorities.is_empty() || logs.is_empty() {
            return Err(AttestError::TrustRoot(
                "it lists no certificate authority or no usable log".into(),
            ));
        }
        Ok(Self { authorities, logs })
    }
}

/// The public key bits of a DER SubjectPublicKeyInfo.
fn spki_point(spki: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::FromDer as _;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("a log key is not a public key: {e}"))?;
    Ok(info.subject_public_key.data.to_vec())
}

#[derive(Deserialize)]
struct RawProvenance {
    #[serde(default)]
    attestation_bundles: Vec<RawBundle>,
}

#[derive(Deserialize)]
struct RawBundle {
    #[serde(default)]
    attestations: Vec<RawAttestation>,
}

#[derive(Deserialize)]
pub struct RawAttestation {
    verification_material: RawMaterial,
    envelope: RawEnvelope,
}

#[derive(Deserialize)]
struct RawMaterial {
    certificate: String,
    #[serde(default)]
    transparency_entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    statement: String,
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    log_index: IntOrString,
    log_id: RawLogId,
    kind_version: RawKind,
    integrated_time: IntOrString,
    #[serde(default)]
    inclusion_promise: Option<RawPromise>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
struct RawKind {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: String,
}

/// Protobuf's JSON form writes 64-bit integers as strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    fn get(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Str(s) => s.parse().ok(),
        }
    }
}

#[derive(Deserialize)]
struct Statement {
    #[serde(rename = "_type")]
    kind: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

#[derive(Deserialize)]
struct Subject {
    name: String,
    digest: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
struct RekorBody {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: RekorSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RekorSpec {
    payload_hash: RekorHash,
    signatures: Vec<RekorSignature>,
}

#[derive(Deserialize)]
struct RekorHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct RekorSignature {
    signature: String,
    verifier: String,
}

/// Verifies every attestation of a provenance object for the file `filename` with `sha256`.
/// An unreadable object is an error; each attestation that fails is a problem, so one bad
/// attestation does not hide another that verifies.
pub fn verify_provenance(
    json: &[u8],
    filename: &str,
    sha256: &str,
    root: &TrustRoot,
) -> Result<ProvenanceFacts, AttestError> {
    let raw: RawProvenance =
        serde_json::from_slice(json).map_err(|e| AttestError::Provenance(e.to_string()))?;
    let mut facts = ProvenanceFacts::default();
    let all = raw.attestation_bundles.iter().flat_map(|b| &b.attestations);
    for att in all.take(MAX_ATTESTATIONS) {
        match verify_attestation(att, filename, sha256, root) {
            Ok(id) => {
                if !facts.verified.contains(&id) {
                    facts.verified.push(id);
                }
            }
            Err(e) => facts.problems.push(e.to_string()),
        }
    }
    if facts.verified.is_empty() && facts.problems.is_empty() {
        facts
            .problems
            .push("the provenance holds no attestation".into());
    }
    Ok(facts)
}

/// Verifies one attestation (steps 1–5 of the module documentation) and returns the identity
/// its certificate proves.
pub fn verify_attestation(
    att: &RawAttestation,
    filename: &str,
    sha256: &str,
    root: &TrustRoot,
) -> Result<Identity, AttestError> {
    let statement =
        b64(&att.envelope.statement, "the statement").map_err(AttestError::Statement)?;
    check_statement(&statement, filename, sha256)?;
    let signature =
        b64(&att.envelope.signature, "the signature").map_err(AttestError::Statement)?;
    let cert = b64(&att.verification_material.certificate, "the certificate")
        .map_err(AttestError::Certificate)?;
    let leaf = Leaf::read(&cert)?;
    let pae = pae(IN_TOTO_PAYLOAD, &statement);
    signature::UnparsedPublicKey::new(leaf.algorithm, &leaf.point)
        .verify(&pae, &signature)
        .map_err(|_| AttestError::Signature)?;
    let mut last = AttestError::Log("is missing: the attestation lists none".into());
    for entry in &att.verification_material.transparency_entries {
        match check_entry(entry, &statement, &signature, &cert, root) {
            Ok(time) => {
                check_chain(&cert, time, root)?;
                return Ok(leaf.identity);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn check_statement(bytes: &[u8], filename: &str, sha256: &str) -> Result<(), AttestError> {
    let st: Statement = serde_json::from_slice(bytes)
        .map_err(|e| AttestError::Statement(format!("is not an in-toto statement: {e}")))?;
    if st.kind != STATEMENT_V1 {
        return Err(AttestError::Statement(format!(
            "has type `{}`, not in-toto v1",
            st.kind
        )));
    }
    let publish = st.predicate_type.starts_with("https://")
        && st.predicate_type.ends_with(PUBLISH_PREDICATE_PATH);
    if !publish && st.predicate_type != SLSA_PREDICATE {
        return Err(AttestError::Statement(format!(
            "has predicate `{}`, not a publish or SLSA provenance predicate",
            st.predicate_type
        )));
    }
    let [subject] = st.subject.as_slice() else {
        return Err(AttestError::Statement(format!(
            "names {} subjects, not one",
            st.subject.len()
        )));
    };
    if !subject.name.eq_ignore_ascii_case(filename) {
        return Err(AttestError::Statement(format!(
            "is about `{}`, not `{filename}`",
            crate::sanitize::escape(&subject.name)
        )));
    }
    match subject.digest.get("sha256") {
        Some(d) if d.eq_ignore_ascii_case(sha256) => Ok(()),
        _ => Err(AttestError::Statement(
            "names another sha256 than the file's".into(),
        )),
    }
}

/// DSSE's pre-authentication encoding: what is actually signed.
fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The parts of the signing certificate the checks need.
struct Leaf {
    point: Vec<u8>,
    algorithm: &'static signature::EcdsaVerificationAlgorithm,
    identity: Identity,
}

impl Leaf {
    fn read(der: &[u8]) -> Result<Self, AttestError> {
        use x509_parser::prelude::*;
        let bad = |s: String| AttestError::Certificate(s);
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| bad(format!("is not an X.509 certificate: {e}")))?;
        let spki = cert.public_key();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string())
            .unwrap_or_default();
        let algorithm = match curve.as_str() {
            "1.2.840.10045.3.1.7" => &signature::ECDSA_P256_SHA256_ASN1,
            "1.3.132.0.34" => &signature::ECDSA_P384_SHA384_ASN1,
            other => {
                return Err(bad(format!(
                    "has a key on curve `{other}`, not P-256 or P-384"
                )));
            }
        };
        let mut identity = None;
        let mut issuer_v1 = None;
        let mut issuer_v2 = None;
        let mut repository = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    identity = san.general_names.iter().find_map(|n| match n {
                        GeneralName::URI(u) => Some((*u).to_owned()),
                        GeneralName::RFC822Name(e) => Some((*e).to_owned()),
                        _ => None,
                    });
                }
                _ => match ext.oid.to_id_string().as_str() {
                    OID_ISSUER_V1 => {
                        issuer_v1 = std::str::from_utf8(ext.value).ok().map(str::to_owned)
                    }
                    OID_ISSUER_V2 => issuer_v2 = der_utf8(ext.value),
                    OID_SOURCE_REPOSITORY => repository = der_utf8(ext.value),
                    _ => {}
                },
            }
        }
        let identity = identity.ok_or_else(|| bad("names no URI or e-mail identity".into()))?;
        let issuer = issuer_v2
            .or(issuer_v1)
            .ok_or_else(|| bad("names no OIDC issuer".into()))?;
        Ok(Self {
            point: spki.subject_public_key.data.to_vec(),
            algorithm,
            identity: Identity {
                issuer,
                identity,
                repository,
            },
        })
    }
}

/// A DER UTF8String's text (Fulcio's newer extensions are DER-encoded).
fn der_utf8(value: &[u8]) -> Option<String> {
    use x509_parser::der_parser::ber::BerObjectContent;
    let (_, obj) = x509_parser::der_parser::der::parse_der(value).ok()?;
    match obj.content {
        BerObjectContent::UTF8String(s) => Some(s.to_owned()),
        _ => None,
    }
}

/// Checks a Rekor v1 entry against the statement, signature and certificate, and returns its
/// integrated time (trusted once the signed entry timestamp checks).
fn check_entry(
    entry: &RawEntry,
    statement: &[u8],
    signature: &[u8],
    cert: &[u8],
    root: &TrustRoot,
) -> Result<i64, AttestError> {
    let bad = |s: &str| AttestError::Log(s.to_owned());
    if entry.kind_version.kind != "dsse" || entry.kind_version.version != "0.0.1" {
        return Err(AttestError::Log(format!(
            "is of kind {} {}, which pipwall does not verify yet",
            crate::sanitize::escape(&entry.kind_version.kind),
            crate::sanitize::escape(&entry.kind_version.version)
        )));
    }
    let promise = entry.inclusion_promise.as_ref().ok_or_else(|| {
        bad("has no signed entry timestamp (a Rekor v2 entry), which pipwall does not verify yet")
    })?;
    let time = entry
        .integrated_time
        .get()
        .ok_or_else(|| bad("has no integrated time"))?;
    let index = entry.log_index.get().ok_or_else(|| bad("has no index"))?;
    let log_id = b64(&entry.log_id.key_id, "the log id").map_err(AttestError::Log)?;
    let key = root
        .logs
        .iter()
        .find(|l| l.id == log_id && within(time, l.start, l.end))
        .ok_or_else(|| bad("is in a log the trust root does not list"))?;
    // The signed entry timestamp covers the canonical JSON of these four fields, keys sorted.
    let payload = serde_json::json!({
        "body": entry.canonicalized_body.trim(),
        "integratedTime": time,
        "logID": hex::encode(&log_id),
        "logIndex": index,
    });
    let set = b64(
        &promise.signed_entry_timestamp,
        "the signed entry timestamp",
    )
    .map_err(AttestError::Log)?;
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &key.point)
        .verify(payload.to_string().as_bytes(), &set)
        .map_err(|_| bad("has a signed entry timestamp the log's key did not make"))?;
    let body = b64(&entry.canonicalized_body, "the entry body").map_err(AttestError::Log)?;
    let body: RekorBody = serde_json::from_slice(&body)
        .map_err(|e| AttestError::Log(format!("body is not a DSSE entry: {e}")))?;
    if body.kind != "dsse" || body.api_version != "0.0.1" {
        return Err(bad("body is not a DSSE 0.0.1 entry"));
    }
    if body.spec.payload_hash.algorithm != "sha256"
        || !body
            .spec
            .payload_hash
            .value
            .eq_ignore_ascii_case(&hex::encode(Sha256::digest(statement)))
    {
        return Err(bad("records another statement"));
    }
    let [logged] = body.spec.signatures.as_slice() else {
        return Err(bad("records other than one signature"));
    };
    if b64(&logged.signature, "the logged signature").map_err(AttestError::Log)? != signature {
        return Err(bad("records another signature"));
    }
    let pem = b64(&logged.verifier, "the logged certificate").map_err(AttestError::Log)?;
    if pem_der(&pem).as_deref() != Some(cert) {
        return Err(bad("records another certificate"));
    }
    Ok(time)
}

/// The DER of the first certificate in a PEM text.
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + text[start..].find("-----END CERTIFICATE-----")?;
    let body: String = text[start..end].split_whitespace().collect();
    B64.decode(body).ok()
}

/// The certificate chains to a Fulcio CA that was issuing at `time`, for code signing, and was
/// valid then.
fn check_chain(cert: &[u8], time: i64, root: &TrustRoot) -> Result<(), AttestError> {
    use rustls_pki_types::{CertificateDer, UnixTime};
    let leaf = CertificateDer::from(cert);
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| AttestError::Certificate(format!("is not usable: {e}")))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(time).unwrap_or_default(),
    ));
    let algs = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let mut last = String::from("no certificate authority was issuing at the log's time");
    for ca in root
        .authorities
        .iter()
        .filter(|a| within(time, a.start, a.end))
    {
        let Some((top, rest)) = ca.chain.split_last() else {
            continue;
        };
        let top = CertificateDer::from(top.as_slice());
        let anchor = match webpki::anchor_from_trusted_cert(&top) {
            Ok(a) => a.to_owned(),
            Err(e) => {
                last = format!("trust root CA unusable: {e}");
                continue;
            }
        };
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        match ee.verify_for_usage(
            &algs,
            &[anchor],
            &intermediates,
            at,
            webpki::KeyUsage::required(CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("does not chain to a trusted Fulcio CA: {e}"),
        }
    }
    Err(AttestError::Certificate(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/attestations/");
    const CIRCLECI: &str = "circleci_sign_publish_example-0.0.1.dev137-py3-none-any.whl";
    const CIRCLECI_SHA: &str = "8cb34da1e27336f11a2c43f3f9c7433bd76f24f470c904724f06ad7f131d9e9f";
    const SDIST: &str = "pypi_attestations-0.0.19.tar.gz";
    const SDIST_SHA: &str = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3";

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap()
    }

    fn root() -> &'static TrustRoot {
        TrustRoot::public_good().unwrap()
    }

    #[test]
    fn real_attestations_verify_against_the_public_good_root() {
        let facts = verify_provenance(
            &read(&format!("{SDIST}.provenance")),
            SDIST,
            SDIST_SHA,
            root(),
        )
        .unwrap();
        assert_eq!(facts.problems, Vec::<String>::new());
        assert_eq!(
            facts.verified,
            [Identity {
                issuer: "https://token.actions.githubusercontent.com".into(),
                identity: "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19".into(),
                repository: Some("https://github.com/trailofbits/pypi-attestations".into()),
            }]
        );
        let facts = verify_provenance(
            &read(&format!("{CIRCLECI}.provenance")),
            CIRCLECI,
            CIRCLECI_SHA,
            root(),
        )
        .unwrap();
        assert_eq!(facts.problems, Vec::<String>::new());
        assert_eq!(facts.verified[0].issuer, "https://oidc.circleci.com");
        // A lone attestation (not wrapped in a provenance object) verifies the same way.
        let att: RawAttestation = serde_json::from_slice(&read(
            "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation",
        ))
        .unwrap();
        let id = verify_attestation(
            &att,
            "gitlab_oidc_project-0.0.3.tar.gz",
            "c1ca9b0d85df1606451098233018534497bf584362e10e4a8c21dfaea92c02a8",
            root(),
        )
        .unwrap();
        assert_eq!(id.issuer, "https://gitlab.com");
    }

    /// The sdist's single attestation, as JSON to tamper with.
    fn sdist_attestation() -> serde_json::Value {
        let p: serde_json::Value =
            serde_json::from_slice(&read(&format!("{SDIST}.provenance"))).unwrap();
        p["attestation_bundles"][0]["attestations"][0].clone()
    }

    fn verify_json(att: &serde_json::Value, filename: &str, sha: &str) -> Result<Identity, String> {
        let att: RawAttestation = serde_json::from_value(att.clone()).map_err(|e| e.to_string())?;
        verify_attestation(&att, filename, sha, root()).map_err(|e| e.to_string())
    }

    fn flip_b64(s: &str, at: usize) -> String {
        let mut bytes = B64.decode(s).unwrap();
        let i = at.min(bytes.len() - 1);
        bytes[i] ^= 1;
        B64.encode(bytes)
    }

    #[test]
    fn every_tampering_is_caught() {
        let good = sdist_attestation();
        assert!(verify_json(&good, SDIST, SDIST_SHA).is_ok());
        // Another file, or other bytes under the same name.
        let e = verify_json(&good, "other-1.0.tar.gz", SDIST_SHA).unwrap_err();
        assert!(e.contains("is about"), "{e}");
        let e = verify_json(&good, SDIST, &"0".repeat(64)).unwrap_err();
        assert!(e.contains("another sha256"), "{e}");
        // A statement rewritten to name other bytes no longer matches its signature.
        let mut st: serde_json::Value = serde_json::from_slice(
            &B64.decode(good["envelope"]["statement"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        st["subject"][0]["digest"]["sha256"] = "0".repeat(64).into();
        let mut forged = good.clone();
        forged["envelope"]["statement"] = B64.encode(st.to_string()).into();
        let e = verify_json(&forged, SDIST, &"0".repeat(64)).unwrap_err();
        assert!(e.contains("signature"), "{e}");
        // A flipped bit in the signature, the log's timestamp, or the logged body.
        let mut t = good.clone();
        t["envelope"]["signature"] =
            flip_b64(good["envelope"]["signature"].as_str().unwrap(), 40).into();
        assert!(verify_json(&t, SDIST, SDIST_SHA).is_err());
        let entry = &good["verification_material"]["transparency_entries"][0];
        let mut t = good.clone();
        t["verification_material"]["transparency_entries"][0]["inclusionPromise"]["signedEntryTimestamp"] =
            flip_b64(
                entry["inclusionPromise"]["signedEntryTimestamp"]
                    .as_str()
                    .unwrap(),
                40,
            )
            .into();
        let e = verify_json(&t, SDIST, SDIST_SHA).unwrap_err();
        assert!(e.contains("signed entry timestamp"), "{e}");
        let mut t = good.clone();
        t["verification_material"]["transparency_entries"][0]["integratedTime"] =
            "1733354042".into();
        let e = verify_json(&t, SDIST, SDIST_SHA).unwrap_err();
        assert!(e.contains("signed entry timestamp"), "{e}");
        // No log entry at all: the certificate's short life cannot be placed in time.
        let mut t = good.clone();
        t["verification_material"]["transparency_entries"] = serde_json::json!([]);
        let e = verify_json(&t, SDIST, SDIST_SHA).unwrap_err();
        assert!(e.contains("transparency log"), "{e}");
        // Another certificate (from the CircleCI attestation) for the same signature.
        let other: serde_json::Value =
            serde_json::from_slice(&read(&format!("{CIRCLECI}.provenance"))).unwrap();
        let mut t = good.clone();
        t["verification_material"]["certificate"] = other["attestation_bundles"][0]["attestations"]
            [0]["verification_material"]["certificate"]
            .clone();
        assert!(verify_json(&t, SDIST, SDIST_SHA).is_err());
    }

    #[test]
    fn a_root_without_the_signing_ca_or_log_trusts_nothing() {
        let mut raw: serde_json::Value = serde_json::from_str(PUBLIC_GOOD).unwrap();
        // Keep the logs, drop the CAs that issued the certificates: the chain fails.
        let logs_only = raw.clone();
        raw["certificateAuthorities"] = serde_json::json!([]);
        assert!(TrustRoot::parse(raw.to_string().as_bytes()).is_err());
        let mut other_ca = logs_only.clone();
        other_ca["certificateAuthorities"][1]["certChain"]["certificates"] =
            other_ca["certificateAuthorities"][0]["certChain"]["certificates"].clone();
        let root = TrustRoot::parse(other_ca.to_string().as_bytes()).unwrap();
        let att: RawAttestation = serde_json::from_value(sdist_attestation()).unwrap();
        let e = verify_attestation(&att, SDIST, SDIST_SHA, &root).unwrap_err();
        assert!(matches!(e, AttestError::Certificate(_)), "{e}");
        // A provenance that is not JSON is an error; one with no attestation is a problem.
        assert!(verify_provenance(b"nope", SDIST, SDIST_SHA, self::root()).is_err());
        let facts = verify_provenance(
            br#"{"attestation_bundles": []}"#,
            SDIST,
            SDIST_SHA,
            self::root(),
        )
        .unwrap();
        assert!(facts.verified.is_empty() && !facts.problems.is_empty());
    }
}
