//! The log line parser (used by recovery, export, tail and verify) on
//! arbitrary bytes: it must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rollcall::log::record::parse_line(data);
});
