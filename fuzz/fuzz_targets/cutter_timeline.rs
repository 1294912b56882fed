//! The segment cutter fed a long clean timeline: up to 60 hours of one
//! video PID with no break, from anywhere on the PTS and PCR clocks and
//! anywhere on the calendar. Long runs are where wall-clock anchors
//! overflow (the 57-hour bug) and clocks wrap.
//!
//! Input: settings only (the harness makes the stream). Bytes 0-1: hours
//! (1-60) and frames per second (1-2); byte 2: keyframe interval; bytes
//! 3-7: the first PTS; bytes 8-12: the wall-clock start; byte 13: segment
//! target; byte 14: packets per datagram; byte 15: PCR delay.
//!
//! A clean timeline makes no discontinuity, segments follow each other on
//! the wall clock to the millisecond, each starts at a keyframe, and their
//! media adds up to the timeline (but its last frame).
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_ts::psi::{crc32_mpeg2, packetize};
use hlsvault_ts::segment::{CutPolicy, SegmentCutter};
use libfuzzer_sys::fuzz_target;

const VIDEO: u16 = 0x100;
const PMT: u16 = 0x1000;
const PTS_WRAP: u64 = 1 << 33;

fn section(table: u8, ext: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![table, 0xB0 | (len >> 8) as u8, len as u8];
    s.extend_from_slice(&ext.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0, 0]);
    s.extend_from_slice(body);
    s.extend_from_slice(&crc32_mpeg2(&s).to_be_bytes());
    s
}

fn pes_timestamp(marker: u8, t: u64) -> [u8; 5] {
    [
        marker << 4 | ((t >> 29) as u8 & 0x0E) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xFE) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]
}

/// One packet: a video access unit (IDR with parameter sets, or a P
/// slice) with its PTS, the PCR in the adaptation field.
fn frame(pts: u64, pcr: u64, key: bool, cc: u8, out: &mut Vec<u8>) {
    let mut es = vec![0, 0, 0, 1, 0x09, 0xF0];
    if key {
        es.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xD9]);
        es.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]);
        es.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x84]);
    } else {
        es.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9A, 0x02]);
    }
    let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5];
    pes.extend_from_slice(&pes_timestamp(2, pts));
    pes.extend_from_slice(&es);
    let base = pcr / 300;
    let ext = pcr % 300;
    let af = [
        if key { 0x50 } else { 0x10 },
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base as u8) << 7) | 0x7E | (ext >> 8) as u8,
        ext as u8,
    ];
    let stuffing = 184 - 1 - af.len() - pes.len();
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | (VIDEO >> 8) as u8, VIDEO as u8, 0x30 | cc]);
    out.push((af.len() + stuffing) as u8);
    out.extend_from_slice(&af);
    out.resize(out.len() + stuffing, 0xFF);
    out.extend_from_slice(&pes);
    debug_assert_eq!(out.len() - start, 188);
}

fuzz_target!(|input: &[u8]| {
    let b = |i: usize| u64::from(input.get(i).copied().unwrap_or(0));
    let hours = 1 + b(0) % 60;
    let fps = 1 + b(1) % 2;
    let gop = 1 + b(2) % 12;
    let first_pts = (b(3) << 32 | b(4) << 24 | b(5) << 16 | b(6) << 8 | b(7)) % PTS_WRAP;
    // 1970 to about 9000: far enough from 9999 for 60 h and a margin.
    let wall_start = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            (b(8) << 32 | b(9) << 24 | b(10) << 16 | b(11) << 8 | b(12)) % 220_000_000_000,
        );
    let target = Duration::from_secs(1 + b(13) % 10);
    let per_datagram = 1 + (b(14) % 7) as usize;
    let pcr_delay = 9_000 * (1 + b(15) % 20);

    let mut cutter = SegmentCutter::new(CutPolicy {
        target,
        max: target * 2 + Duration::from_secs(gop.div_ceil(fps) + 1),
        recovery: false,
        selection: Default::default(),
        // A datagram holds up to 7 frames: at 1 fps, 7 s apart.
        gap: Duration::from_secs(10),
        cut_at_splice: true,
        aligned: false,
    });
    let pat = section(0, 1, &[0, 1, 0xE0 | (PMT >> 8) as u8, PMT as u8]);
    let pmt = section(
        2,
        1,
        &[0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00],
    );
    let step = 90_000 / fps;
    let frames = hours * 3600 * fps;
    let mut segments = Vec::new();
    let mut datagram = Vec::with_capacity(per_datagram * 188);
    let mut packets_in = 0;
    let (mut psi_cc, mut video_cc) = (0u8, 0u8);
    // A datagram is captured when its first frame is sent.
    let mut sent = wall_start;
    for k in 0..frames {
        let key = k % gop == 0;
        let pts = (first_pts + k * step) % PTS_WRAP;
        let pcr = ((first_pts + PTS_WRAP + k * step - pcr_delay) % PTS_WRAP) * 300;
        if datagram.is_empty() {
            sent = wall_start + Duration::from_nanos(k * 1_000_000_000 / fps);
        }
        if key {
            packetize(0, &pat, psi_cc, &mut datagram);
            packetize(PMT, &pmt, psi_cc, &mut datagram);
            psi_cc = (psi_cc + 1) & 0x0F;
            packets_in += 2;
        }
        frame(pts, pcr, key, video_cc, &mut datagram);
        video_cc = (video_cc + 1) & 0x0F;
        packets_in += 1;
        if packets_in >= per_datagram {
            cutter.push_datagram(&datagram, sent, false);
            datagram.clear();
            packets_in = 0;
            segments.extend(
                cutter
                    .take_ready()
                    .map(|s| (s.start, s.duration, s.keyframe)),
            );
        }
    }
    cutter.push_datagram(&datagram, sent, false);
    cutter.finish();
    segments.extend(
        cutter
            .take_ready()
            .map(|s| (s.start, s.duration, s.keyframe)),
    );

    assert_eq!(cutter.counters().discontinuities, 0, "a clean timeline");
    assert!(!segments.is_empty());
    // The last frame may be dropped: at the end of a capture the cutter
    // cannot know that it is whole.
    let media: u64 = segments.iter().map(|s| s.1).sum();
    assert!(
        media <= frames * step && media + step >= frames * step,
        "all media but nothing more: {media} of {}",
        frames * step
    );
    // Presented one PCR delay (at most 2 s) after it is sent.
    let first = segments[0].0;
    assert!(
        first >= wall_start && first <= wall_start + Duration::from_secs(3),
        "the first segment starts where the stream does"
    );
    for w in segments.windows(2) {
        assert!(w[1].2, "each segment starts at a keyframe");
        let end = w[0].0 + Duration::from_nanos(w[0].1 * 100_000 / 9);
        let drift = match w[1].0.duration_since(end) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(
            drift < Duration::from_millis(1),
            "segments follow each other on the wall clock: {drift:?} at {:?}",
            w[1].0
        );
    }
});
