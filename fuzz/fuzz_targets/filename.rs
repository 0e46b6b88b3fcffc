//! Distribution filenames: any string parses as a file of `demo`, and as any wheel, or fails
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipwall::dist::{DistFilename, ProjectName, WheelFilename};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let project = ProjectName::new("demo").unwrap();
    let _ = DistFilename::parse(name, &project);
    let _ = WheelFilename::parse_any(name);
});
