//! Analyzer tests on crafted packets, and the tiny muxer they (and the
//! segmenter's tests) build streams with.

use super::*;
use crate::pes::tests::header as pes_header;
use crate::program::Selection;
use crate::psi::tests::{pat, pmt};
use crate::scte35::tests::{header as splice_header, section as splice_section};
use crate::scte35::Cue;

pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x100;
pub const AUDIO_PID: u16 = 0x101;
pub const SCTE35_PID: u16 = 0x1F0;
/// H.264 NAL units the muxer writes: an access unit delimiter, SPS and PPS,
/// an IDR slice, a P slice.
pub const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
pub const SPS_PPS: [u8; 13] = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 1, 0x68, 0xCE];
pub const IDR: [u8; 5] = [0, 0, 1, 0x65, 0x88];
pub const P_SLICE: [u8; 5] = [0, 0, 1, 0x41, 0x9A];

/// Builds TS packets for a one-program stream with H.264 video and AAC audio.
pub struct Mux {
    cc: [u8; 8192],
    /// Set the adaptation field random access indicator on keyframes.
    pub rai: bool,
    /// Set it on every video PES, as some broadcast encoders do.
    pub rai_everywhere: bool,
    /// Send SPS and PPS with every keyframe (else only with the first).
    pub sets_every_key: bool,
    sets_sent: bool,
    /// Video stream type in the PMT (0 for an audio-only program).
    pub video_type: u8,
    /// The PMT declares a SCTE-35 PID ([`SCTE35_PID`]).
    pub scte35: bool,
}

impl Mux {
    pub fn new() -> Self {
        Mux {
            cc: [0; 8192],
            rai: true,
            rai_everywhere: false,
            sets_every_key: true,
            sets_sent: false,
            video_type: 0x1B,
            scte35: false,
        }
    }

    fn next_cc(&mut self, pid: u16) -> u8 {
        let c = self.cc[pid as usize];
        self.cc[pid as usize] = (c + 1) & 0x0F;
        c
    }

    /// PAT and PMT packets.
    pub fn psi(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let cc = self.next_cc(PID_PAT);
        psi::packetize(PID_PAT, &pat(&[(1, PMT_PID)]), cc, &mut out);
        let mut streams: Vec<(u8, u16)> = if self.video_type == 0 {
            vec![(0x0F, AUDIO_PID)]
        } else {
            vec![(self.video_type, VIDEO_PID), (0x0F, AUDIO_PID)]
        };
        if self.scte35 {
            streams.push((crate::scte35::STREAM_TYPE_SCTE35, SCTE35_PID));
        }
        let pcr_pid = if self.video_type == 0 {
            AUDIO_PID
        } else {
            VIDEO_PID
        };
        let cc = self.next_cc(PMT_PID);
        psi::packetize(PMT_PID, &pmt(1, pcr_pid, &streams), cc, &mut out);
        out
    }

    /// A section as packets on `pid`, following its counter.
    pub fn section(&mut self, pid: u16, section: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        psi::packetize(pid, section, 0, &mut out);
        for p in out.chunks_mut(PACKET_SIZE) {
            p[3] = (p[3] & 0xF0) | self.next_cc(pid);
        }
        out
    }

    /// A packet that carries only a PCR in its adaptation field (encoders
    /// send them on the PCR PID when there is no payload to carry it).
    pub fn pcr_only(&mut self, pid: u16, pcr: u64) -> Vec<u8> {
        // Without a payload the counter does not advance: repeat the last.
        let cc = self.cc[pid as usize].wrapping_sub(1) & 0x0F;
        let mut p = vec![0x47, (pid >> 8) as u8, pid as u8, 0x20 | cc, 183, 0x10];
        p.resize(188, 0xFF);
        let field: &mut [u8; 6] = (&mut p[6..12]).try_into().unwrap();
        crate::clock::write_pcr(field, pcr);
        p
    }

    /// One PES as packets. `pcr` is written into the first packet's
    /// adaptation field; `key` marks a keyframe (RAI and an IDR NAL).
    pub fn pes(&mut self, pid: u16, pts: u64, key: bool, pcr: Option<u64>, size: usize) -> Vec<u8> {
        let stream_id = if pid == VIDEO_PID { 0xE0 } else { 0xC0 };
        let mut es = pes_header(stream_id, pts);
        if pid == VIDEO_PID {
            es.extend_from_slice(&AUD);
            if key && (self.sets_every_key || !self.sets_sent) {
                es.extend_from_slice(&SPS_PPS);
                self.sets_sent = true;
            }
            es.extend_from_slice(if key { &IDR } else { &P_SLICE });
        }
        es.resize(es.len().max(size), 0xAB);
        if pid == AUDIO_PID {
            // Audio carries its PES length; video leaves it unbounded (0).
            let len = (es.len() - 6) as u16;
            es[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let mut out = Vec::new();
        let mut rest = &es[..];
        let mut first = true;
        let rai = self.rai && (key || self.rai_everywhere) && pid == VIDEO_PID;
        while !rest.is_empty() {
            // Adaptation field content (flags onwards), or None for no field.
            let mut af: Option<Vec<u8>> = None;
            if first && (pcr.is_some() || rai) {
                let mut f = vec![if rai { 0x40 } else { 0 }];
                if let Some(pcr) = pcr {
                    f[0] |= 0x10;
                    let mut field = [0u8; 6];
                    crate::clock::write_pcr(&mut field, pcr);
                    f.extend_from_slice(&field);
                }
                af = Some(f);
            }
            let used = af.as_ref().map_or(0, |f| 1 + f.len());
            let room = 184 - used;
            if rest.len() < room {
                // Stuff the adaptation field so the payload ends the packet.
                let stuff = room - rest.len();
                match &mut af {
                    Some(f) => f.resize(f.len() + stuff, 0xFF),
                    None if stuff == 1 => af = Some(Vec::new()),
                    None => {
                        let mut f = vec![0];
                        f.resize(stuff - 1, 0xFF);
                        af = Some(f);
                    }
                }
            }
            let take = rest.len().min(184 - af.as_ref().map_or(0, |f| 1 + f.len()));
            let cc = self.next_cc(pid);
            out.extend_from_slice(&[
                0x47,
                (if first { 0x40 } else { 0 }) | (pid >> 8) as u8,
                pid as u8,
                if af.is_some() { 0x30 } else { 0x10 } | cc,
            ]);
            if let Some(f) = &af {
                out.push(f.len() as u8);
                out.extend_from_slice(f);
            }
            out.extend_from_slice(&rest[..take]);
            assert_eq!(out.len() % 188, 0, "packet size");
            rest = &rest[take..];
            first = false;
        }
        out
    }
}

fn inspect_all(a: &mut Analyzer, bytes: &[u8]) -> Vec<Inspection> {
    crate::packets(bytes).iter().map(|p| a.inspect(p)).collect()
}

#[test]
fn learns_program_and_reads_pts_pcr_and_keyframes() {
    let mut m = Mux::new();
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let got = inspect_all(
        &mut a,
        &m.pes(VIDEO_PID, 900_000, true, Some(890_000 * 300), 1000),
    );
    assert_eq!(got[0].pcr, Some(890_000 * 300));
    assert_eq!(
        got[0].access_unit,
        Some(AccessUnit {
            pts: Some(900_000),
            dts: None,
            key: Some(Picture::Key),
            rai: true,
        })
    );
    assert!(got[1..].iter().all(|i| i.access_unit.is_none()));
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 903_600, false, None, 500));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::NotKey));
    let got = inspect_all(&mut a, &m.pes(AUDIO_PID, 900_000, true, None, 300));
    assert!(
        got[0].access_unit.is_none(),
        "audio does not drive timing with video present"
    );
    assert_eq!(a.counters(), TsCounters::default());
    assert!(!a.audio_timed());
}

#[test]
fn finds_idr_without_random_access_indicator() {
    let mut m = Mux::new();
    m.rai = false;
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 0, true, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::Key));
}

#[test]
fn resolves_key_when_first_picture_is_in_a_later_packet() {
    let mut m = Mux::new();
    m.rai = false;
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    // A PES whose first packet holds only SEI filler: build by hand.
    let mut es = pes_header(0xE0, 0);
    es.extend_from_slice(&SPS_PPS);
    es.extend_from_slice(&[0, 0, 0, 1, 0x06]);
    es.resize(184 + 100, 0x80);
    es.extend_from_slice(&IDR);
    es.resize(2 * 184, 0x11);
    let mut pkts = Vec::new();
    for (i, chunk) in es.chunks(184).enumerate() {
        pkts.extend_from_slice(&[0x47, if i == 0 { 0x41 } else { 0x01 }, 0x00, 0x10 | i as u8]);
        pkts.extend_from_slice(chunk);
    }
    let got = inspect_all(&mut a, &pkts);
    assert_eq!(got[0].access_unit.unwrap().key, None);
    assert_eq!(got[1].key_resolved, Some(Picture::Key));
}

#[test]
fn random_access_indicator_on_a_p_frame_is_no_keyframe() {
    let mut m = Mux::new();
    m.rai_everywhere = true;
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 0, false, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::NotKey));
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 3600, true, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::Key));
}

#[test]
fn idr_without_parameter_sets_cuts_only_once_they_were_seen() {
    let mut m = Mux::new();
    m.sets_every_key = false;
    m.sets_sent = true; // as if the stream's first sets went by before the capture
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 0, true, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::NotKey));
    assert_eq!(a.take_cut_sets(), None);
    m.sets_sent = false;
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 3600, true, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::Key));
    assert_eq!(a.take_cut_sets(), None, "it carries its own");
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 7200, true, None, 1000));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::Key));
    let want = vec![0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE];
    assert_eq!(a.take_cut_sets(), Some((AUD.len(), want)));
}

#[test]
fn continuity_error_on_program_pid_breaks_timeline() {
    let mut m = Mux::new();
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let frame = m.pes(VIDEO_PID, 0, true, None, 600);
    inspect_all(&mut a, &frame[..188]);
    // Skip one packet.
    let got = inspect_all(&mut a, &frame[376..]);
    assert_eq!(got[0].brk, Some(Break::Continuity { pid: VIDEO_PID }));
    assert_eq!(a.counters().cc_errors, 1);
    // A duplicate packet is allowed.
    let dup = crate::packets(&frame[frame.len() - 188..]).first().unwrap();
    assert_eq!(a.inspect(dup).brk, None);
}

#[test]
fn pcr_jump_and_wrap() {
    let mut m = Mux::new();
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    let near_wrap = clock::PCR_WRAP - 27_000 * 20;
    inspect_all(&mut a, &m.pes(VIDEO_PID, 0, true, Some(near_wrap), 100));
    let got = inspect_all(
        &mut a,
        &m.pes(VIDEO_PID, 3600, false, Some(27_000 * 20), 100),
    );
    assert_eq!(got[0].brk, None, "40 ms across the wrap is no jump");
    let got = inspect_all(
        &mut a,
        &m.pes(VIDEO_PID, 7200, false, Some(27_000 * 10), 100),
    );
    assert_eq!(got[0].brk, Some(Break::PcrJump), "backwards");
    let got = inspect_all(
        &mut a,
        &m.pes(VIDEO_PID, 7200, false, Some(27_000 * 5000), 100),
    );
    assert_eq!(got[0].brk, Some(Break::PcrJump), "5 s forwards");
}

#[test]
fn audio_only_program_is_timed_by_audio() {
    let mut m = Mux::new();
    m.video_type = 0;
    let mut a = Analyzer::new();
    inspect_all(&mut a, &m.psi());
    assert!(a.audio_timed());
    let got = inspect_all(&mut a, &m.pes(AUDIO_PID, 1234, false, None, 200));
    assert_eq!(
        got[0].access_unit,
        Some(AccessUnit {
            pts: Some(1234),
            dts: None,
            key: Some(Picture::Key),
            rai: false,
        })
    );
}

#[test]
fn injected_psi_continues_the_stream_counters() {
    let mut m = Mux::new();
    let mut a = Analyzer::with_selection(Selection {
        whole_multiplex: true,
        ..Default::default()
    });
    let mut out = Vec::new();
    a.write_psi(&mut out);
    assert!(out.is_empty(), "nothing before PAT and PMT are known");
    for _ in 0..3 {
        inspect_all(&mut a, &m.psi());
    }
    a.write_psi(&mut out);
    assert_eq!(out.len(), 2 * 188);
    // The stream's next PAT/PMT carry CC 3: injected copies carry 2.
    assert_eq!(out[3] & 0x0F, 2);
    assert_eq!(out[188 + 3] & 0x0F, 2);
    let mut fresh = Analyzer::new();
    inspect_all(&mut fresh, &out);
    let next = inspect_all(&mut fresh, &m.psi());
    assert!(next.iter().all(|i| i.brk.is_none()));
    assert_eq!(fresh.counters().cc_errors, 0);
}

#[test]
fn a_program_whose_pmt_never_comes_does_not_block_the_others() {
    let mut m = Mux::new();
    let mut a = Analyzer::new();
    // The PAT lists programs 1..=5; only program 3's PMT is ever sent.
    let mut pat = Vec::new();
    let programs: Vec<(u16, u16)> = (1..=5).map(|n| (n, 0x1000 + n)).collect();
    psi::packetize(PID_PAT, &psi::tests::pat(&programs), 0, &mut pat);
    let mut pmt3 = Vec::new();
    let section = psi::tests::pmt(3, VIDEO_PID, &[(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)]);
    psi::packetize(0x1003, &section, 0, &mut pmt3);
    inspect_all(&mut a, &pat);
    inspect_all(&mut a, &pmt3);
    assert_eq!(a.program(), Some(3));
    assert_eq!(a.timing_pid(), Some(VIDEO_PID));
    let got = inspect_all(&mut a, &m.pes(VIDEO_PID, 0, true, None, 500));
    assert_eq!(got[0].access_unit.unwrap().key, Some(Picture::Key));
    // Kept: the chosen program's PMT and streams; the PAT is rewritten.
    assert!(a.keeps(0x1003) && a.keeps(VIDEO_PID) && a.keeps(AUDIO_PID));
    assert!(!a.keeps(0x1001) && !a.keeps(PID_PAT) && !a.keeps(PID_NULL));
    assert!(a.keeps(0x11) && a.keeps(0x12), "SDT and EIT");
    let mut out = Vec::new();
    a.write_pat(true, &mut out);
    let mut fresh = Analyzer::new();
    inspect_all(&mut fresh, &out);
    inspect_all(&mut fresh, &pmt3);
    assert_eq!(fresh.program(), Some(3));
    assert_eq!(fresh.pids()[0].what, "PAT");
    let listed = psi::parse_pat(&fresh.pat.clone().unwrap()).unwrap();
    assert_eq!(listed.len(), 1, "the archived PAT lists the chosen program");
    let what: Vec<(u16, String, bool)> = a
        .pids()
        .into_iter()
        .map(|p| (p.pid, p.what, p.kept))
        .collect();
    assert_eq!(
        what,
        vec![
            (PID_PAT, "PAT".to_string(), true),
            (VIDEO_PID, "H.264 video".to_string(), true),
            (0x1003, "PMT".to_string(), true),
        ]
    );
}

#[test]
fn the_first_program_with_video_wins_until_the_choice_settles() {
    let two = |late_first: bool| {
        let mut a = Analyzer::new();
        let mut pat = Vec::new();
        psi::packetize(
            PID_PAT,
            &psi::tests::pat(&[(1, 0x1001), (2, 0x1002), (3, 0x1003)]),
            0,
            &mut pat,
        );
        let pmt = |n: u16, pid: u16| {
            let mut out = Vec::new();
            let es = 0x100 * (n + 1);
            psi::packetize(
                pid,
                &psi::tests::pmt(n, es, &[(0x1B, es), (0x0F, es + 1)]),
                0,
                &mut out,
            );
            out
        };
        inspect_all(&mut a, &pat);
        inspect_all(&mut a, &pmt(2, 0x1002));
        assert_eq!(a.program(), Some(2), "provisional");
        if late_first {
            // Program 3's PMT never comes: the PAT repeats, the choice settles.
            for cc in 1..=SETTLE_PATS {
                let mut again = pat.clone();
                again[3] = 0x10 | (cc as u8 & 0x0F);
                inspect_all(&mut a, &again);
            }
        }
        inspect_all(&mut a, &pmt(1, 0x1001));
        a.program()
    };
    assert_eq!(two(false), Some(1), "program 1's PMT came in time");
    assert_eq!(two(true), Some(2), "settled before program 1's PMT came");
}

#[test]
fn chosen_program_by_number_in_a_multiplex() {
    let mut a = Analyzer::with_selection(Selection {
        program: program::ProgramChoice::Number(2),
        ..Default::default()
    });
    let mut psi_packets = Vec::new();
    psi::packetize(
        PID_PAT,
        &psi::tests::pat(&[(1, 0x1001), (2, 0x1002)]),
        0,
        &mut psi_packets,
    );
    for (n, pid) in [(1u16, 0x1001u16), (2, 0x1002)] {
        let es = 0x100 * (n + 1);
        let section = psi::tests::pmt(n, es, &[(0x1B, es), (0x0F, es + 1)]);
        psi::packetize(pid, &section, 0, &mut psi_packets);
    }
    inspect_all(&mut a, &psi_packets);
    assert_eq!(a.program(), Some(2));
    assert_eq!(a.timing_pid(), Some(0x300));
    assert!(a.keeps(0x301) && !a.keeps(0x200) && !a.keeps(0x1001));
}

#[test]
fn garbage_never_panics() {
    let mut a = Analyzer::new();
    let mut seed = 0x1234_5678u32;
    let mut pkt = [0u8; 188];
    for _ in 0..20_000 {
        for b in pkt.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *b = seed as u8;
        }
        pkt[0] = SYNC_BYTE;
        // Aim some packets at PSI and the program PIDs.
        if seed.is_multiple_of(3) {
            pkt[1] &= 0xE0;
            pkt[2] = 0;
        }
        a.inspect(&pkt);
    }
    assert!(a.counters().bad_adaptation > 0);
}

#[test]
fn packet_layouts_are_told_apart_by_their_sync_bytes() {
    let packets = |stride: usize, offset: usize, n: usize| {
        let mut d = vec![0u8; stride * n];
        d.chunks_mut(stride).for_each(|p| p[offset] = SYNC_BYTE);
        d
    };
    assert_eq!(packet_layout(&packets(188, 0, 7)), (188, 0));
    assert_eq!(packet_layout(&packets(204, 0, 7)), (204, 0));
    assert_eq!(packet_layout(&packets(192, 4, 7)), (192, 4));
    assert_eq!(packet_layout(&packets(204, 0, 1)), (204, 0));
    // 204 x 47 = 188 x 51: the sync bytes decide.
    assert_eq!(packet_layout(&packets(204, 0, 47)), (204, 0));
    assert_eq!(packet_layout(&packets(188, 0, 51)), (188, 0));
    // Neither: left to the plain path, which counts bytes without sync.
    assert_eq!(packet_layout(&[0u8; 1000]), (188, 0));
}

/// PAT and a PMT with H.264 video and a SCTE-35 PID of stream type
/// `scte35_type`.
fn psi_with_scte35(scte35_type: u8) -> Vec<u8> {
    let mut out = Vec::new();
    psi::packetize(PID_PAT, &pat(&[(1, PMT_PID)]), 0, &mut out);
    let streams = [(0x1B, VIDEO_PID), (scte35_type, SCTE35_PID)];
    psi::packetize(PMT_PID, &pmt(1, VIDEO_PID, &streams), 0, &mut out);
    out
}

/// A splice_insert out of the network: event `id` at `pts`, a 30 s break.
pub fn splice_out(id: u32, pts: u64) -> Vec<u8> {
    let mut body = splice_header(0, 20, 0x05);
    body.extend(id.to_be_bytes());
    body.extend([0x7F, 0xEF, 0xFE | (pts >> 32) as u8]);
    body.extend((pts as u32).to_be_bytes());
    body.extend([0xFE, 0x00, 0x29, 0x32, 0xE0]); // auto return, 2,700,000 ticks
    body.extend([0, 1, 0, 0, 0, 0]);
    splice_section(&body)
}

/// A time_signal now, a placement opportunity start (event `id`) whose
/// 200-byte UPID makes the section span two packets.
fn long_time_signal(id: u32) -> Vec<u8> {
    let mut body = splice_header(0, 1, 0x06);
    body.push(0x7F); // no time: now
    body.extend([0, 217, 2, 215]);
    body.extend(b"CUEI");
    body.extend(id.to_be_bytes());
    body.extend([0x7F, 0xBF, 0x0C, 200]);
    body.extend([0xAA; 200]);
    body.extend([0x34, 0, 0]);
    splice_section(&body)
}

#[test]
fn scte35_markers_are_read_on_the_pid_the_pmt_declares() {
    let mut a = Analyzer::new();
    let mut ts = psi_with_scte35(0x86);
    let (out, signal) = (splice_out(5, 900_000), long_time_signal(6));
    psi::packetize(SCTE35_PID, &out, 0, &mut ts);
    psi::packetize(SCTE35_PID, &signal, 2, &mut ts);
    let markers_at: Vec<usize> = inspect_all(&mut a, &ts)
        .iter()
        .enumerate()
        .filter_map(|(i, x)| x.marker.then_some(i))
        .collect();
    // After PAT and PMT: the out's packet, and the second of the signal's.
    assert_eq!(markers_at, [2, 4]);
    let markers = a.take_markers();
    assert_eq!(
        markers[0].cue,
        Cue::Out {
            event_id: 5,
            planned: Some(2_700_000)
        }
    );
    assert_eq!(markers[0].info.splice_pts(), Some(900_000));
    assert_eq!(markers[1].section, signal);
    assert_eq!(
        markers[1].cue,
        Cue::Out {
            event_id: 6,
            planned: None
        }
    );
    assert!(a.take_markers().is_empty(), "taken once");
    assert_eq!(a.counters().scte35_errors, 0);
}

#[test]
fn a_corrupt_scte35_section_is_counted_and_a_splice_null_is_no_marker() {
    let mut a = Analyzer::new();
    let mut ts = psi_with_scte35(0x86);
    let mut bad = splice_out(5, 900_000);
    *bad.last_mut().unwrap() ^= 1;
    psi::packetize(SCTE35_PID, &bad, 0, &mut ts);
    let mut null = splice_header(0, 0, 0x00);
    null.extend([0, 0]);
    psi::packetize(SCTE35_PID, &splice_section(&null), 1, &mut ts);
    assert!(inspect_all(&mut a, &ts).iter().all(|x| !x.marker));
    assert!(a.take_markers().is_empty());
    assert_eq!(a.counters().scte35_errors, 1);
}

#[test]
fn splice_information_on_a_pid_not_declared_scte35_is_not_read() {
    let mut a = Analyzer::new();
    let mut ts = psi_with_scte35(0x06);
    psi::packetize(SCTE35_PID, &splice_out(5, 900_000), 0, &mut ts);
    assert!(inspect_all(&mut a, &ts).iter().all(|x| !x.marker));
    assert!(a.take_markers().is_empty());
}
