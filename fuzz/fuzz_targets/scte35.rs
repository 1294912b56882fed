//! SCTE-35 `splice_info_section`s: the input is the section's body (from
//! protocol_version on), wrapped with a table id, its length and a
//! correct CRC so that the fuzzer reaches the commands and descriptors
//! rather than the CRC check. Never a panic; a splice PTS stays below
//! 2^33.
#![no_main]

use hlsvault_ts::psi::crc32_mpeg2;
use hlsvault_ts::scte35::{parse, TABLE_SPLICE_INFO};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let body = &body[..body.len().min(4093 - 4)];
    let length = body.len() + 4;
    let mut section = vec![TABLE_SPLICE_INFO, 0x30 | (length >> 8) as u8, length as u8];
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    if let Ok(info) = parse(&section) {
        assert!(info.splice_pts().is_none_or(|pts| pts < 1 << 33));
    }
    // The same bytes as they come, CRC and all.
    let _ = parse(body);
});
