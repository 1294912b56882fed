//! TS analysis and the segment cutter, fed a capture's datagrams.
//!
//! Input: 3 bytes of settings, then TS bytes (seeds are real encoder
//! output). Byte 0: packets per datagram (1-7) and whether they are 204
//! bytes long; byte 1: milliseconds between datagrams; byte 2: keyframes
//! with recovery points, the whole multiplex, null packets kept, a stall
//! now and then, a lost datagram now and then, cuts at SCTE-35 splice
//! points, cuts aligned to the PTS timeline.
//!
//! Every segment must be whole 188-byte packets starting with the PAT, and
//! be writable: its hour, name and program date time format. A second
//! cutter fed the same datagrams has its settled bytes drained after each
//! one (as growing segments are written to disk): its segments must be the
//! same, byte for byte.
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_hls::{Hour, Layout};
use hlsvault_ts::program::{ProgramChoice, Selection};
use std::collections::BTreeMap;

use hlsvault_ts::segment::{CutPolicy, Segment, SegmentCutter};
use libfuzzer_sys::fuzz_target;

fn check(seg: &Segment) {
    assert!(!seg.data.is_empty() && seg.data.len() % 188 == 0);
    assert_eq!(
        &seg.data[..3],
        &[0x47, 0x40, 0x00],
        "a segment starts with the PAT"
    );
    let _ = Hour::of(seg.start).path();
    let _ = Layout::segment_name(0, seg.start);
}

fuzz_target!(|input: &[u8]| {
    let [shape, step, flags, ts @ ..] = input else {
        return;
    };
    let packets = 1 + usize::from(shape % 7);
    let size = if shape & 0x80 != 0 { 204 } else { 188 };
    let step = Duration::from_millis(u64::from(*step));
    let policy = CutPolicy {
        target: Duration::from_secs(1),
        max: Duration::from_secs(5),
        recovery: flags & 1 != 0,
        selection: Selection {
            program: ProgramChoice::Auto,
            whole_multiplex: flags & 2 != 0,
            keep_nulls: flags & 4 != 0,
        },
        gap: Duration::from_secs(1),
        cut_at_splice: flags & 32 != 0,
        aligned: flags & 64 != 0,
    };
    let mut cutter = SegmentCutter::new(policy);
    let mut draining = SegmentCutter::new(policy);
    let mut drained: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut same = |cutter: &mut SegmentCutter, draining: &mut SegmentCutter| {
        draining.drain_settled(|g, bytes| drained.entry(g.id).or_default().extend(bytes));
        let whole: Vec<Segment> = cutter.take_ready().collect();
        let parts: Vec<Segment> = draining.take_ready().collect();
        assert_eq!(whole.len(), parts.len());
        for (w, p) in whole.iter().zip(&parts) {
            check(w);
            let mut bytes = drained.remove(&p.id).unwrap_or_default();
            assert_eq!(bytes.len() as u64, p.data_offset);
            bytes.extend_from_slice(&p.data);
            assert!(bytes == w.data, "a drained segment differs");
            assert_eq!((w.id, w.start, w.duration), (p.id, p.start, p.duration));
        }
    };
    // Near the end of an hour, so that cuts at the hour are reached.
    let mut at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_190);
    for (i, datagram) in ts.chunks(packets * size).enumerate() {
        at += step;
        if flags & 8 != 0 && i % 97 == 96 {
            cutter.stall(Duration::from_secs(2));
            draining.stall(Duration::from_secs(2));
        }
        let lost = flags & 16 != 0 && i % 31 == 30;
        let ts = hlsvault_ts::as_188(datagram);
        cutter.push_datagram(&ts, at, lost);
        draining.push_datagram(&ts, at, lost);
        same(&mut cutter, &mut draining);
    }
    cutter.finish();
    draining.finish();
    // What stays drained belongs to segments given up without media.
    same(&mut cutter, &mut draining);
    let _ = cutter.why_empty();
    let _ = cutter.analyzer().pids();
});
