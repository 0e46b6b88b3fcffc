//! The binary parsers (ELF, Mach-O thin and fat, PE with its delay-load table) on arbitrary
//! bytes: facts or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipwall::audit::native::{parse, sniff};

fuzz_target!(|data: &[u8]| {
    if let Some(magic) = sniff(data) {
        if let Ok(binary) = parse(magic, data) {
            let _ = binary.is_extension("pkg/mod.abi3.so");
        }
    }
});
