//! PEP 691 JSON pages: any bytes (read as lossy UTF-8) parse or fail without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let base = Url::parse("https://upstream.example/simple/demo/").unwrap();
    let _ = pipwall::index::json::parse(&text, &base);
});
