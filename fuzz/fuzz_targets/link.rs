//! The link layer: Ethernet (with VLAN tags), Linux cooked captures, raw
//! IP and BSD loopback, down to UDP over IPv4 or IPv6, with IPv4
//! fragments reassembled.
//!
//! Input: byte 0 picks the link type; then frames, each a 2-byte length
//! then its bytes, captured 1 ms apart.
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_capture::{decode, LinkType, Reassembler};
use libfuzzer_sys::fuzz_target;

const LINKS: [i32; 5] = [1, 113, 276, 101, 0];

fuzz_target!(|input: &[u8]| {
    let Some((pick, mut rest)) = input.split_first() else {
        return;
    };
    let link = LinkType::from_dlt(LINKS[usize::from(*pick) % LINKS.len()]).expect("a link type");
    let mut fragments = Reassembler::default();
    let mut at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_190);
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        at += Duration::from_millis(1);
        if let Ok(Some((_, payload))) = decode(link, at, frame, &mut fragments).datagram {
            assert!(payload.len() <= 65_535);
        }
    }
});
