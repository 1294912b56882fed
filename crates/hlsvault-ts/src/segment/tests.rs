//! Cut decisions on crafted streams.

use super::*;
use crate::clock::PTS_WRAP;
use crate::tests::{splice_out, Mux, AUD, AUDIO_PID, IDR, PMT_PID, SCTE35_PID, SPS_PPS, VIDEO_PID};
use crate::{Header, PID_PAT};

const FRAME: u64 = 3600; // 25 fps
/// Wall clock of PTS 0 in the generated streams: 09:59:57 UTC on 2026-11-21.
const T0: u64 = 1_795_255_197;

struct Gen {
    mux: Mux,
    /// Frames per GOP (0: only the first frame is a keyframe).
    gop: u64,
    /// PTS of frame 0.
    pts0: u64,
    /// Frames whose datagram is dropped (simulated loss).
    drop_frames: Vec<u64>,
    /// Extra wall-clock seconds added from this frame on (capture gap).
    gap_at: Option<(u64, u64)>,
    /// The source reports a stall just before this frame...
    stall_at: Option<u64>,
    /// ...and this many segments were out once it did.
    out_at_stall: Option<usize>,
    /// Frames whose video is not sent (audio goes on).
    no_video: std::ops::Range<u64>,
    /// Settled bytes are drained after every datagram (as a caller that
    /// writes growing segments to disk does), kept here per segment id.
    drained: Option<std::collections::BTreeMap<u64, Vec<u8>>>,
    /// The most bytes a segment kept in memory to its end.
    kept_most: usize,
    /// SCTE-35 sections sent just before a frame's packets.
    sections: Vec<(u64, Vec<u8>)>,
}

impl Gen {
    fn new(gop: u64) -> Self {
        Gen {
            mux: Mux::new(),
            gop,
            pts0: 900_000,
            drop_frames: vec![],
            gap_at: None,
            stall_at: None,
            out_at_stall: None,
            no_video: 0..0,
            drained: None,
            kept_most: 0,
            sections: vec![],
        }
    }

    /// Takes what `cutter` finished, with the bytes drained before them
    /// put back in front.
    fn ready(&mut self, cutter: &mut SegmentCutter) -> Vec<Segment> {
        if let Some(drained) = &mut self.drained {
            cutter.drain_settled(|g, bytes| drained.entry(g.id).or_default().extend(bytes));
        }
        let mut out: Vec<Segment> = cutter.take_ready().collect();
        if let Some(drained) = &mut self.drained {
            for seg in &mut out {
                let mut whole = drained.remove(&seg.id).unwrap_or_default();
                assert_eq!(whole.len() as u64, seg.data_offset);
                self.kept_most = self.kept_most.max(seg.data.len());
                whole.extend_from_slice(&seg.data);
                seg.data = whole;
                seg.data_offset = 0;
            }
        }
        out
    }

    /// Feeds `frames` frames of video with one audio PES per frame, the
    /// audio PES split around the next video frame (as real muxers do).
    fn run(&mut self, cutter: &mut SegmentCutter, frames: u64) -> Vec<Segment> {
        let mut out = self.run_without_finish(cutter, frames);
        cutter.finish();
        out.extend(self.ready(cutter));
        out
    }

    /// [`Gen::run`] for a process that dies: the stream does not end.
    fn run_without_finish(&mut self, cutter: &mut SegmentCutter, frames: u64) -> Vec<Segment> {
        let mut out = Vec::new();
        for f in 0..frames {
            let pts = (self.pts0 + f * FRAME) % PTS_WRAP;
            let key = f == 0 || (self.gop > 0 && f % self.gop == 0);
            let mut bytes = if f % 10 == 0 { self.mux.psi() } else { vec![] };
            for (_, section) in self.sections.iter().filter(|(at, _)| *at == f) {
                bytes.extend(self.mux.section(SCTE35_PID, section));
            }
            // PCR 700 ms ahead of presentation.
            let pcr = ((pts + PTS_WRAP - 63_000) % PTS_WRAP) * 300;
            let audio = self.mux.pes(AUDIO_PID, pts, true, None, 400);
            bytes.extend_from_slice(&audio[..188]);
            if self.no_video.contains(&f) {
                bytes.extend_from_slice(&self.mux.pcr_only(VIDEO_PID, pcr));
            } else {
                bytes.extend_from_slice(&self.mux.pes(VIDEO_PID, pts, key, Some(pcr), 2000));
            }
            bytes.extend_from_slice(&audio[188..]);
            let mut secs = f * FRAME * 1_000_000_000 / PTS_HZ;
            if let Some((from, extra)) = self.gap_at {
                if f >= from {
                    secs += extra * 1_000_000_000;
                }
            }
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(T0) + Duration::from_nanos(secs);
            if self.drop_frames.contains(&f) {
                continue;
            }
            if self.stall_at == Some(f) {
                cutter.stall(Duration::from_secs(5));
                out.extend(self.ready(cutter));
                self.out_at_stall = Some(out.len());
            }
            for dgram in bytes.chunks(7 * 188) {
                cutter.push_datagram(dgram, at, false);
                out.extend(self.ready(cutter));
            }
        }
        out
    }
}

fn policy(target: u64) -> CutPolicy {
    CutPolicy {
        target: Duration::from_secs(target),
        max: Duration::from_secs(30),
        recovery: false,
        selection: Default::default(),
        gap: Duration::from_secs(1),
        cut_at_splice: true,
        aligned: false,
    }
}

fn packets(s: &Segment) -> Vec<Header> {
    crate::packets(&s.data).iter().map(Header::parse).collect()
}

fn first_video_is_key(s: &Segment) -> bool {
    let p = crate::packets(&s.data)
        .iter()
        .find(|p| Header::parse(p).pid == VIDEO_PID)
        .unwrap();
    let h = Header::parse(p);
    // RAI set in the adaptation field of the unit start.
    h.pusi && h.has_af && p[5] & 0x40 != 0
}

#[test]
fn cuts_at_keyframes_with_exact_durations_and_psi_first() {
    let mut c = SegmentCutter::new(policy(6));
    let segs = Gen::new(50).run(&mut c, 25 * 20); // 20 s, 2 s GOP
                                                  // 09:59:57 + 0.7 s: the first hour ends 2.3 s in; the first keyframe at or
                                                  // after it is at 4 s, which then opens the 10:00 hour.
    let durs: Vec<u64> = segs.iter().map(|s| s.duration).collect();
    // The capture ends inside the last frame's unbounded PES: it is dropped.
    assert_eq!(
        durs,
        vec![4 * 90_000, 6 * 90_000, 6 * 90_000, 4 * 90_000 - FRAME]
    );
    assert_eq!(segs[0].hour().next(), segs[1].hour());
    for s in &segs {
        let h = packets(s);
        assert_eq!((h[0].pid, h[1].pid), (PID_PAT, PMT_PID));
        assert!(first_video_is_key(s));
        assert!(s.discontinuity.is_none());
        assert!(s.keyframe);
    }
    // Program date times follow the media timeline exactly.
    for w in segs.windows(2) {
        assert_eq!(
            w[0].start + ticks_to_duration(w[0].duration as i64),
            w[1].start
        );
    }
    assert_eq!(c.counters().discontinuities, 0);
    // PMT and the head of an audio unit came before the first keyframe (the
    // PAT is archived rewritten, once the program is chosen); the rest of
    // that unit (2 packets) cannot be decoded without its head.
    // At the end, the last video frame (11 packets) may be cut short; the
    // last audio unit is whole by its PES length and stays.
    assert_eq!(c.counters().skipped_packets, 4 + 11);
}

#[test]
fn audio_unit_in_flight_at_a_cut_stays_whole_in_the_earlier_segment() {
    let mut c = SegmentCutter::new(policy(6));
    let segs = Gen::new(50).run(&mut c, 25 * 10);
    for s in &segs {
        let audio: Vec<Header> = packets(s)
            .into_iter()
            .filter(|h| h.pid == AUDIO_PID)
            .collect();
        assert!(audio[0].pusi, "segment starts with a whole audio unit");
        // Each audio PES is 3 packets: whole units only.
        assert_eq!(audio.len() % 3, 0);
    }
    let total: usize = segs.iter().map(|s| s.data.len() / 188).sum();
    assert!(total > 0);
}

#[test]
fn keyframes_found_in_nal_units_when_no_random_access_indicator() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.mux.rai = false;
    let segs = g.run(&mut c, 25 * 20);
    let durs: Vec<u64> = segs.iter().map(|s| s.duration).collect();
    // The capture ends inside the last frame's unbounded PES: it is dropped.
    assert_eq!(
        durs,
        vec![4 * 90_000, 6 * 90_000, 6 * 90_000, 4 * 90_000 - FRAME]
    );
    for s in &segs {
        let p = crate::packets(&s.data)
            .iter()
            .find(|p| Header::parse(p).pid == VIDEO_PID)
            .unwrap();
        assert!(
            p.windows(4).any(|w| w == [0, 0, 1, 0x65]),
            "starts with an IDR"
        );
    }
}

#[test]
fn pts_wrap_is_seamless() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.pts0 = PTS_WRAP - 5 * 90_000;
    let segs = g.run(&mut c, 25 * 20);
    let durs: Vec<u64> = segs.iter().map(|s| s.duration).collect();
    // The capture ends inside the last frame's unbounded PES: it is dropped.
    assert_eq!(
        durs,
        vec![4 * 90_000, 6 * 90_000, 6 * 90_000, 4 * 90_000 - FRAME]
    );
    assert!(segs.iter().all(|s| s.discontinuity.is_none()));
}

#[test]
fn continuity_error_ends_the_segment_and_marks_the_next() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.drop_frames = vec![130]; // 5.2 s in, inside the second segment
    let segs = g.run(&mut c, 25 * 20);
    let marks: Vec<bool> = segs.iter().map(|s| s.discontinuity.is_some()).collect();
    assert_eq!(marks, vec![false, false, true, false, false]);
    // The broken segment ends after its last whole frame: frame 129 was in
    // flight when frame 130 was lost, so 4 s .. 5.16 s.
    assert_eq!(segs[1].duration, 29 * FRAME);
    // Frames from the loss to the next keyframe (6 s) cannot start a segment.
    assert!(c.counters().skipped_packets > 0);
    assert!(c.ts_counters().cc_errors > 0);
    assert_eq!(segs[2].duration, 6 * 90_000);
}

#[test]
fn capture_gap_breaks_the_timeline_and_reanchors_the_clock() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.gap_at = Some((250, 30)); // 10 s in, the capture pauses 30 s
    let segs = g.run(&mut c, 25 * 20);
    let i = segs
        .iter()
        .position(|s| s.discontinuity.is_some())
        .expect("a discontinuity");
    let before = &segs[i - 1];
    let gap = segs[i].start.duration_since(before.start).unwrap()
        - ticks_to_duration(before.duration as i64);
    assert!(
        gap >= Duration::from_secs(29),
        "wall clock shows the gap: {gap:?}"
    );
}

#[test]
fn a_stall_ends_the_segment_at_once_and_the_return_is_one_discontinuity() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.gap_at = Some((250, 8)); // 10 s in, the source is silent for 8 s
    g.stall_at = Some(250);
    let segs = g.run(&mut c, 25 * 20);
    let k = g.out_at_stall.unwrap();
    // The segment open at 10 s is out as soon as the stall is reported,
    // ending within a frame of it (its last frame may be cut short).
    let last = &segs[k - 1];
    let end = last.start + ticks_to_duration(last.duration as i64);
    let stall = segs[0].start + Duration::from_secs(10);
    assert!(
        stall
            .duration_since(end)
            .is_ok_and(|d| d <= ticks_to_duration(FRAME as i64)),
        "ends at {end:?}, stall at {stall:?}"
    );
    assert!(last.discontinuity.is_none());
    assert!(
        matches!(segs[k].discontinuity, Some(Cause::CaptureGap(_))),
        "the first segment after the stall"
    );
    assert_eq!(segs.iter().filter(|s| s.discontinuity.is_some()).count(), 1);
    assert_eq!(c.counters().discontinuities, 1);
}

#[test]
fn hard_cap_cuts_without_keyframe() {
    let mut c = SegmentCutter::new(CutPolicy {
        max: Duration::from_secs(8),
        ..policy(6)
    });
    let segs = Gen::new(0).run(&mut c, 25 * 20);
    assert_eq!(segs[1].duration, 8 * 90_000);
    assert!(!segs[2].keyframe);
    assert!(c.counters().forced_cuts >= 1);
    // A segment that starts without a keyframe does not continue the one
    // before it for a player.
    assert!(segs[1..]
        .iter()
        .all(|s| s.keyframe != s.discontinuity.is_some()));
    assert_eq!(c.counters().discontinuities, c.counters().forced_cuts);
}

/// The elementary stream bytes of the segment's first video PES.
fn first_video_es(s: &Segment) -> Vec<u8> {
    let mut es = Vec::new();
    let video = crate::packets(&s.data)
        .iter()
        .filter(|p| Header::parse(p).pid == VIDEO_PID);
    for (p, payload) in video.filter_map(|p| crate::payload(p).map(|pl| (p, pl))) {
        if Header::parse(p).pusi && !es.is_empty() {
            break;
        }
        es.extend_from_slice(payload);
    }
    let at = crate::pes::parse_header(&es).unwrap().payload_offset;
    es.split_off(at)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn random_access_indicator_on_every_frame_cuts_only_at_idr() {
    let mut c = SegmentCutter::new(policy(1));
    let mut g = Gen::new(50);
    g.mux.rai_everywhere = true;
    let segs = g.run(&mut c, 25 * 10);
    assert!(segs.len() >= 4);
    for s in &segs[..segs.len() - 1] {
        assert!(contains(&first_video_es(s), &IDR), "starts with an IDR");
        assert_eq!(s.duration % (50 * FRAME), 0, "whole GOPs: {}", s.duration);
    }
}

#[test]
fn long_gop_with_short_target_cuts_only_at_keyframes() {
    // A 10 s GOP, 1 s targets, the default hard cap of 30 s.
    let mut c = SegmentCutter::new(CutPolicy {
        max: Duration::from_secs(30),
        ..policy(1)
    });
    let segs = Gen::new(250).run(&mut c, 25 * 41);
    assert_eq!(c.counters().forced_cuts, 0);
    assert!(segs.iter().all(|s| s.keyframe && s.discontinuity.is_none()));
    assert_eq!(segs[1].duration, 250 * FRAME);
}

#[test]
fn parameter_sets_sent_once_are_inserted_into_each_segment() {
    let mut c = SegmentCutter::new(policy(2));
    let mut g = Gen::new(50);
    g.mux.sets_every_key = false;
    let segs = g.run(&mut c, 25 * 10);
    assert!(segs.len() >= 4);
    let sps_pps = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE];
    for (i, s) in segs.iter().enumerate() {
        let es = first_video_es(s);
        assert!(es.starts_with(&AUD), "segment {i}: the AUD stays first");
        assert!(contains(&es, &sps_pps) || (i == 0 && contains(&es, &SPS_PPS)));
        assert!(contains(&es, &IDR));
        // The inserted packets keep continuity counters whole.
        let mut a = crate::Analyzer::new();
        crate::packets(&s.data).iter().for_each(|p| {
            a.inspect(p);
        });
        assert_eq!(a.counters().cc_errors, 0, "segment {i}");
    }
    assert_eq!(c.counters().parameter_sets_inserted, segs.len() as u64 - 1);
}

#[test]
fn garbage_between_packets_is_counted_and_skipped() {
    let mut c = SegmentCutter::new(policy(6));
    let mut m = Mux::new();
    let mut d = m.psi();
    d.splice(188..188, [1u8, 2, 3, 4, 5]);
    d.extend_from_slice(&[0x47, 1, 2]);
    c.push_datagram(&d, SystemTime::UNIX_EPOCH, false);
    assert_eq!(c.counters().unsynced_bytes, 8);
}

#[test]
fn video_outage_is_timed_by_audio_at_the_target() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    // Video stops from 10 s to 30 s; audio goes on.
    g.no_video = 250..750;
    let segs = g.run(&mut c, 25 * 40);
    let total: u64 = segs.iter().map(|s| s.duration).sum();
    // Every tick, but the last frame (cut short at the end of the capture).
    assert_eq!(total, 40 * 90_000 - FRAME);
    assert_eq!(c.counters().video_outages, 1);
    assert_eq!(c.counters().forced_cuts, 0);
    // No segment runs past the target plus the wait for video.
    assert!(
        segs.iter().all(|s| s.duration <= 8 * 90_000),
        "{:?}",
        segs.iter().map(|s| s.duration).collect::<Vec<_>>()
    );
    // Audio-only segments in the outage, at the target.
    let audio_only: Vec<&Segment> = segs
        .iter()
        .filter(|s| !packets(s).iter().any(|h| h.pid == VIDEO_PID))
        .collect();
    assert!(audio_only.len() >= 2);
    assert!(audio_only[..audio_only.len() - 1]
        .iter()
        .all(|s| s.duration == 6 * 90_000));
    // Video takes back at its keyframe at 30 s, contiguous: no discontinuity.
    assert!(segs.iter().all(|s| s.discontinuity.is_none()));
    // The segment open when video comes back carries it from its keyframe.
    let back = segs
        .iter()
        .find(|s| s.start >= segs[0].start + Duration::from_secs(26))
        .unwrap();
    assert!(contains(&first_video_es(back), &IDR));
    assert!(
        segs.iter().all(|s| s.duration >= 2 * 90_000),
        "no sliver segments"
    );
}

#[test]
fn declared_video_that_never_comes_is_timed_by_audio_after_the_wait() {
    let mut c = SegmentCutter::new(policy(6));
    let mut g = Gen::new(50);
    g.no_video = 0..u64::MAX;
    let segs = g.run(&mut c, 25 * 20);
    assert_eq!(c.counters().video_outages, 1);
    assert!(segs.len() >= 3);
    // The first two seconds wait for video; then audio cuts at the target.
    let total: u64 = segs.iter().map(|s| s.duration).sum();
    assert!((17 * 90_000..=18 * 90_000).contains(&total), "{total}");
    // (The first ends at 10:00, 3 s in.)
    assert!(segs[1..segs.len() - 1]
        .iter()
        .all(|s| s.duration == 6 * 90_000));
    assert!(segs.iter().all(|s| !packets(s)
        .iter()
        .any(|h| h.pid == VIDEO_PID && h.has_payload)));
}

#[test]
fn a_timeline_without_a_break_keeps_its_wall_clock_past_57_hours() {
    // 10^9 × ticks overflowed 64 bits at 57 h: a clean live stream's
    // frames were then placed 57 hours back (or the analysis stopped).
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(T0);
    let anchor = Anchor { ext: 0, wall: t0 };
    for hours in [56, 57, 58, 60, 1000] {
        let ext = (hours * 3600 * PTS_HZ) as i64;
        assert_eq!(
            anchor.wall(ext),
            t0 + Duration::from_secs(hours * 3600),
            "{hours} h"
        );
    }
    assert_eq!(
        anchor.wall(-(60 * 3600 * PTS_HZ as i64)),
        t0 - Duration::from_secs(60 * 3600)
    );
}

#[test]
fn draining_settled_bytes_as_they_come_changes_no_segment() {
    // Losses (units dropped as unfinished), a stall, a capture gap, video
    // that stops while audio goes on, a hard cap: each with and without
    // draining after every datagram.
    type Setup = fn(&mut Gen);
    let setups: [(u64, u64, Setup); 5] = [
        (50, 30, |g| g.drop_frames = vec![130, 131, 300]),
        (50, 30, |g| {
            g.gap_at = Some((250, 8));
            g.stall_at = Some(250);
        }),
        (50, 30, |g| g.gap_at = Some((250, 30))),
        (50, 30, |g| g.no_video = 120..260),
        (0, 8, |_| {}),
    ];
    for (n, (gop, max, setup)) in setups.into_iter().enumerate() {
        let run = |drain: bool| {
            let mut g = Gen::new(gop);
            setup(&mut g);
            g.drained = drain.then(Default::default);
            let mut c = SegmentCutter::new(CutPolicy {
                max: Duration::from_secs(max),
                ..policy(6)
            });
            let segs = g.run(&mut c, 25 * 20);
            assert!(
                g.drained.is_none_or(|d| d.is_empty()),
                "case {n}: drained bytes of a segment never emitted"
            );
            if drain && g.no_video.is_empty() {
                // Only the units still open at the end stayed in memory (a
                // video frame followed by no other stays open: case 3).
                assert!(
                    g.kept_most < 16 * PACKET_SIZE,
                    "case {n}: {} bytes kept",
                    g.kept_most
                );
            }
            (segs, c.counters())
        };
        let (kept, kept_counters) = run(false);
        let (drained, drained_counters) = run(true);
        assert!(kept.len() >= 3, "case {n}");
        assert_eq!(kept_counters, drained_counters, "case {n}");
        assert_eq!(kept.len(), drained.len(), "case {n}");
        for (a, b) in kept.iter().zip(&drained) {
            assert_eq!(a.id, b.id, "case {n}");
            assert_eq!((a.start, a.duration), (b.start, b.duration), "case {n}");
            assert!(a.data == b.data, "case {n}: segment {} differs", a.id);
        }
    }
}

#[test]
fn a_growing_segment_cut_short_by_a_crash_is_cut_again_into_a_whole_one() {
    let mut g = Gen::new(50);
    g.drained = Some(Default::default());
    let mut c = SegmentCutter::new(policy(6));
    // 9.5 s: the second segment (from 4 s, the first keyframe of the new
    // hour) grew 5.5 s, then the process died.
    let done = g.run_without_finish(&mut c, 25 * 19 / 2);
    assert_eq!(done.len(), 1);
    let grown = g
        .drained
        .as_mut()
        .unwrap()
        .remove(&1)
        .expect("segment 1 grew");
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 4);
    // A torn last write: half a packet more.
    let torn = [&grown[..], &[0x47; 94]].concat();
    let again = recut(&torn, start, Default::default());
    assert_eq!(again.len(), 1);
    let seg = &again[0];
    assert_eq!(seg.start, start);
    assert_eq!(&seg.data[..3], &[0x47, 0x40, 0x00], "PAT first");
    assert!(first_video_is_key(seg));
    // Frames 100..=235 were whole on disk (236 was still arriving): the
    // newest, which a tear may have cut, is dropped too.
    assert_eq!(seg.duration, (235 - 100) * FRAME);
    assert!(seg.data.len() <= grown.len() + 2 * PACKET_SIZE);
}

/// A stream with a keyframe every 10 frames (0.4 s) and a splice out
/// announced at frame 20 for frame 80 (3.2 s in).
fn spliced(cut_at_splice: bool) -> (Gen, SegmentCutter) {
    let mut g = Gen::new(10);
    g.mux.scte35 = true;
    g.sections = vec![(20, splice_out(9, g.pts0 + 80 * FRAME))];
    let cutter = SegmentCutter::new(CutPolicy {
        cut_at_splice,
        aligned: false,
        ..policy(6)
    });
    (g, cutter)
}

#[test]
fn a_splice_point_starts_a_segment_at_its_keyframe_with_its_marker() {
    let (mut g, mut c) = spliced(true);
    let segs = g.run(&mut c, 400);
    let frames: Vec<u64> = segs.iter().map(|s| s.duration / FRAME).collect();
    // Cut at the hour (frame 60), at the splice (80), then every 6 s
    // (150 frames) from there.
    assert_eq!(frames, [60, 20, 150, 150, 19]);
    let with: Vec<usize> = (0..segs.len())
        .filter(|&i| !segs[i].markers.is_empty())
        .collect();
    assert_eq!(with, [2]);
    let placed = &segs[2].markers[0];
    assert_eq!(
        placed.at, segs[2].start,
        "the splice is the segment's first frame"
    );
    assert_eq!(
        placed.marker.cue,
        crate::scte35::Cue::Out {
            event_id: 9,
            planned: Some(2_700_000)
        }
    );
}

#[test]
fn without_cut_at_splice_a_marker_goes_in_the_segment_its_time_falls_in() {
    let (mut g, mut c) = spliced(false);
    let segs = g.run(&mut c, 400);
    let frames: Vec<u64> = segs.iter().map(|s| s.duration / FRAME).collect();
    // Cut at the hour (frame 60), then every 6 s: the splice at 80 falls
    // 20 frames into the second segment.
    assert_eq!(frames, [60, 150, 150, 39]);
    let with: Vec<usize> = (0..segs.len())
        .filter(|&i| !segs[i].markers.is_empty())
        .collect();
    assert_eq!(with, [1]);
    let offset = segs[1].markers[0].at.duration_since(segs[1].start).unwrap();
    assert_eq!(offset, Duration::from_millis(20 * 40));
}

#[test]
fn a_marker_past_the_end_of_the_stream_goes_with_the_last_segment() {
    let (mut g, mut c) = spliced(true);
    g.sections = vec![(20, splice_out(9, g.pts0 + 1000 * FRAME))];
    let segs = g.run(&mut c, 200);
    let last = segs.last().unwrap();
    assert_eq!(last.markers.len(), 1);
    assert!(segs[..segs.len() - 1].iter().all(|s| s.markers.is_empty()));
    let ahead = last.markers[0].at.duration_since(segs[1].start).unwrap();
    assert_eq!(ahead, Duration::from_millis((1000 - 60) * 40));
}

#[test]
fn aligned_cuts_fall_on_the_same_frames_for_recorders_that_started_apart() {
    // One stream (1 s GOPs, PTS 10 s at 09:59:57), seen by a recorder from
    // its start and by one that joined 5 s later (past 10:00); both until
    // PTS 40 s.
    let cut = |joined: u64, policy: CutPolicy| -> Vec<(SystemTime, u64)> {
        // A recorder that joined later sees the stream from then on.
        let mut g = Gen::new(25);
        g.pts0 = 900_000 + joined * 90_000;
        g.gap_at = Some((0, joined));
        let mut c = SegmentCutter::new(policy);
        g.run(&mut c, 25 * (30 - joined))
            .into_iter()
            .map(|s| (s.start, s.duration))
            .collect()
    };
    let aligned = CutPolicy {
        aligned: true,
        ..policy(4)
    };
    let (early, late) = (cut(0, aligned), cut(5, aligned));
    // The late one's first segment is what it caught of a slot; from its
    // second on, both cut the same.
    let from = early
        .iter()
        .position(|s| s.0 == late[1].0)
        .expect("a boundary in common");
    assert_eq!(
        &early[from..],
        &late[1..],
        "the same segments from there on"
    );
    // Each multiple of 4 s of PTS is a boundary (12 s, 16 s, ...), and the
    // hour (the first keyframe past 10:00:00 is at 13 s): 10-12, 12-13,
    // 13-16, then 4 s each; the capture ends inside the last frame.
    let secs: Vec<u64> = early.iter().map(|s| s.1).collect();
    let s = 90_000;
    assert_eq!(
        secs,
        [
            2 * s,
            s,
            3 * s,
            4 * s,
            4 * s,
            4 * s,
            4 * s,
            4 * s,
            4 * s - FRAME
        ]
    );
    // Cut by length from their own start, the same recorders disagree.
    let (early, late) = (cut(0, policy(4)), cut(5, policy(4)));
    let from = early.iter().position(|s| s.0 == late[1].0);
    assert!(from.is_none_or(|from| early[from..] != late[1..]));
}

#[test]
fn aligned_cuts_go_on_across_the_33_bit_wrap() {
    // PTS wraps 12 s in: the slot count starts again there, so both sides
    // of the wrap cut at the first keyframe (each second) at or after a
    // multiple of 4 s of the PTS they carry.
    let mut g = Gen::new(25);
    g.pts0 = PTS_WRAP - 12 * 90_000;
    let mut c = SegmentCutter::new(CutPolicy {
        aligned: true,
        ..policy(4)
    });
    let segs = g.run(&mut c, 25 * 24);
    let firsts: Vec<u64> = segs
        .iter()
        .scan(g.pts0, |pts, s| {
            let first = *pts;
            *pts = (*pts + s.duration) % PTS_WRAP;
            Some(first)
        })
        .collect();
    assert!(segs.iter().all(|s| s.discontinuity.is_none()));
    let slot = |pts: u64| pts / (4 * 90_000);
    for (i, first) in firsts.iter().enumerate().skip(1) {
        let at_hour = segs[i].hour() != segs[i - 1].hour();
        let at_wrap = *first < firsts[i - 1];
        let keyframe_before = (first + PTS_WRAP - 90_000) % PTS_WRAP;
        assert!(
            slot(*first) != slot(keyframe_before) || at_hour || at_wrap,
            "segment {i} starts at PTS {first}"
        );
    }
    assert!(firsts.windows(2).any(|w| w[1] < w[0]), "it wrapped");
}
