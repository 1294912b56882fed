//! Replay's join of archived segments: splicing, restamping to another
//! speed, null packets put back (cbr) and pacing by the PCR, fed segments
//! of arbitrary packets.
//!
//! Input: a byte of speed (rate = 0.25 + byte / 32; odd: cbr), then segments, each
//! a 2-byte header (packets, 0-511, and a splice bit) and that many
//! 188-byte packets (short at the end). Archived segments are bytes from
//! disk or a bucket: anything may be in them.
//!
//! Every whole packet goes out once, in order, the same length, with the
//! nulls put back; the schedule never goes back; datagrams hold whole
//! packets, 7 at most.
#![no_main]

use hlsvault_ts::join::{JoinSettings, Joiner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&speed, mut rest)) = input.split_first() else {
        return;
    };
    let mut joiner = Joiner::new(JoinSettings {
        rate: 0.25 + f64::from(speed) / 32.0,
        cbr: speed % 2 == 1,
        per_datagram: 7,
    });
    let (mut sent, mut packets_in) = (Vec::new(), 0usize);
    while let [a, b, tail @ ..] = rest {
        let count = usize::from(u16::from_be_bytes([*a, *b]) & 0x1FF);
        let splice = *a & 0x80 != 0;
        let (segment, next) = tail.split_at((count * 188).min(tail.len()));
        rest = next;
        let mut ts = bytes::BytesMut::from(segment);
        ts.iter_mut().step_by(188).for_each(|b| *b = 0x47);
        packets_in += ts.len() / 188;
        sent.extend(joiner.push(ts, splice).datagrams);
    }
    sent.extend(joiner.finish());
    let nulls = joiner.nulls_added() as usize;
    let bytes: usize = sent.iter().map(|d| d.bytes.len()).sum();
    assert_eq!(bytes, (packets_in + nulls) * 188, "every packet out once");
    assert!(sent
        .iter()
        .all(|d| !d.bytes.is_empty() && d.bytes.len() % 188 == 0 && d.bytes.len() <= 7 * 188));
    assert!(
        sent.windows(2).all(|w| w[0].at <= w[1].at),
        "the schedule goes back"
    );
});
