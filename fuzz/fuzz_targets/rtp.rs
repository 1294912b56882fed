//! RTP: classifying datagrams and putting sequence numbers back in order.
//!
//! Input: datagrams, each a 1-byte length (0-255) then its bytes; a
//! datagram classified as RTP goes through the reorder buffer with a
//! capture time that moves on by its first byte in milliseconds.
//!
//! What comes out is in order: never more datagrams than went in, and the
//! counters add up.
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_ts::rtp::{classify, Payload, Reorder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut reorder = Reorder::default();
    let mut at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_190);
    let (mut pushed, mut out) = (0u64, 0u64);
    let mut rest = input;
    while let [len, tail @ ..] = rest {
        let (datagram, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        at += Duration::from_millis(u64::from(datagram.first().copied().unwrap_or(0)));
        if let Payload::Rtp { ts, seq } = classify(datagram) {
            pushed += 1;
            reorder.push(seq, ts, at, &mut |_, _, _| out += 1);
        }
    }
    reorder.flush(&mut |_, _, _| out += 1);
    let c = reorder.counters();
    assert!(out <= pushed);
    assert_eq!(
        out + c.late,
        pushed,
        "every datagram comes out once or is late"
    );
});
