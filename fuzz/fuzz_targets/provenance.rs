//! PEP 740 provenance objects as an upstream serves them: any bytes verify or fail without a
//! panic, against the bundled trust root. Seeded with the real provenance files in
//! `tests/fixtures/attestations/`, the mutations reach the certificate, log-entry and signature
//! readers.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SHA: &str = "8cb34da1e27336f11a2c43f3f9c7433bd76f24f470c904724f06ad7f131d9e9f";

fuzz_target!(|data: &[u8]| {
    let root = pipwall::attest::TrustRoot::public_good().unwrap();
    let _ = pipwall::attest::verify_provenance(
        data,
        "circleci_sign_publish_example-0.0.1.dev137-py3-none-any.whl",
        SHA,
        root,
    );
    // The trust root reader too: an operator's file is input as well.
    let _ = pipwall::attest::TrustRoot::parse(data);
});
