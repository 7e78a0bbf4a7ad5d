//! The delivery parser on arbitrary bytes: it must never panic, and any
//! membership it accepts must seal into one line that parses back intact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall::log::record::{GENESIS_HASH, parse_line};
use rollcall::webhook::payload::{Delivery, Target, parse};

fuzz_target!(|data: &[u8]| {
    let target: Target = "fuzz".parse().expect("a valid target name");
    if let Ok(Delivery::Membership(membership)) = parse(data, &target) {
        let mut record = membership.record;
        record.received_at = "2026-11-28T00:00:00.000Z".into();
        record.prev_hash = GENESIS_HASH.into();
        let line = record.seal();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let parsed = parse_line(&line[..line.len() - 1]).expect("a sealed line parses");
        assert_eq!(parsed, record);
    }
});
