//! Joins archived segments into one TS stream that a receiver accepts.
//!
//! Each segment keeps the continuity counters its source sent, so two
//! segments put end to end jump wherever they were not cut from one run
//! (the PAT and PMT copies that open each segment, a discontinuity, a
//! restart). The splicer shifts each PID's counters in a segment by one
//! offset, chosen at its first packet there, so that they go on from the
//! last packet sent: the pattern inside a segment (a repeated packet, an
//! adaptation-only packet that does not count) is kept as it was. Where
//! the timeline breaks between two segments, the first packet after the
//! join that carries a PCR gets the discontinuity indicator, as a decoder
//! needs to take the new time base. The bytes change in place: the output
//! is as long as its input.

use crate::{packets_mut, Header, PACKET_SIZE, PID_NULL};

const UNSEEN: u8 = 0xFF;

/// Rewrites segments, one after the other, into one stream.
///
/// ```
/// use hlsvault_ts::splice::Splicer;
/// // Two segments of one PID whose counters both start at 0.
/// let packet = |cc: u8| { let mut p = [0xFFu8; 188]; p[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10 | cc]); p };
/// let mut a: Vec<u8> = [packet(0), packet(1)].concat();
/// let mut b: Vec<u8> = [packet(0), packet(1)].concat();
/// let mut splicer = Splicer::new();
/// splicer.segment(false);
/// splicer.rewrite(&mut a);
/// splicer.segment(false);
/// splicer.rewrite(&mut b);
/// assert_eq!((b[3] & 0x0F, b[188 + 3] & 0x0F), (2, 3));
/// ```
pub struct Splicer {
    /// Per PID, the counter of the last packet sent.
    last: Box<[u8; 8192]>,
    /// Per PID, what is added to its counters in this segment.
    shift: Box<[u8; 8192]>,
    /// PIDs whose shift is set in this segment.
    shifted: Vec<u16>,
    /// The next packet with a PCR starts a new time base.
    mark_pcr: bool,
}

impl Default for Splicer {
    fn default() -> Self {
        Self::new()
    }
}

impl Splicer {
    /// A splicer before its first segment.
    pub fn new() -> Self {
        Splicer {
            last: Box::new([UNSEEN; 8192]),
            shift: Box::new([UNSEEN; 8192]),
            shifted: Vec::new(),
            mark_pcr: false,
        }
    }

    /// The next bytes are a new segment; `discontinuity` when its timeline
    /// does not go on from the one before.
    pub fn segment(&mut self, discontinuity: bool) {
        for pid in self.shifted.drain(..) {
            self.shift[pid as usize] = UNSEEN;
        }
        self.mark_pcr |= discontinuity && self.last.iter().any(|&cc| cc != UNSEEN);
    }

    /// Rewrites the segment's packets in `ts` (whole 188-byte packets; a
    /// segment may come in several calls). Bytes after the last whole
    /// packet are left alone.
    pub fn rewrite(&mut self, ts: &mut [u8]) {
        let whole = ts.len() / PACKET_SIZE * PACKET_SIZE;
        for p in packets_mut(&mut ts[..whole]) {
            let h = Header::parse(p);
            if h.pid == PID_NULL {
                continue;
            }
            let pid = h.pid as usize;
            if self.shift[pid] == UNSEEN {
                let shift = match self.last[pid] {
                    UNSEEN => 0,
                    last => {
                        let expected = (last + u8::from(h.has_payload)) & 0x0F;
                        expected.wrapping_sub(h.cc) & 0x0F
                    }
                };
                self.shift[pid] = shift;
                self.shifted.push(h.pid);
            }
            let cc = (h.cc + self.shift[pid]) & 0x0F;
            p[3] = (p[3] & 0xF0) | cc;
            self.last[pid] = cc;
            // An adaptation field with the PCR flag set.
            if self.mark_pcr && h.has_af && p[4] > 0 && p[5] & 0x10 != 0 {
                p[5] |= 0x80;
                self.mark_pcr = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, cc: u8, pcr: bool) -> [u8; 188] {
        let mut p = [0xFF; 188];
        p[0] = 0x47;
        p[1..3].copy_from_slice(&pid.to_be_bytes());
        match pcr {
            true => {
                p[3] = 0x30 | cc;
                p[4] = 7;
                p[5] = 0x10;
            }
            false => p[3] = 0x10 | cc,
        }
        p
    }

    fn ccs(ts: &[u8], pid: u16) -> Vec<u8> {
        crate::packets(ts)
            .iter()
            .map(Header::parse)
            .filter(|h| h.pid == pid)
            .map(|h| h.cc)
            .collect()
    }

    #[test]
    fn counters_go_on_across_joins_and_keep_their_pattern_inside_a_segment() {
        let mut splicer = Splicer::new();
        // Segment 1: PID 256 from 5; segment 2 starts again at 9, with a
        // repeated packet (9, 9) that must stay a repeat.
        let mut one: Vec<u8> = [5, 6, 7].map(|cc| packet(256, cc, false)).concat();
        let mut two: Vec<u8> = [9, 9, 10].map(|cc| packet(256, cc, false)).concat();
        splicer.segment(false);
        splicer.rewrite(&mut one);
        splicer.segment(false);
        splicer.rewrite(&mut two);
        assert_eq!(ccs(&one, 256), [5, 6, 7]);
        assert_eq!(ccs(&two, 256), [8, 8, 9]);
    }

    #[test]
    fn a_discontinuity_marks_the_first_pcr_after_the_join_only() {
        let mut splicer = Splicer::new();
        let mut one = [packet(256, 0, true), packet(256, 1, false)].concat();
        let mut two = [
            packet(257, 3, false),
            packet(256, 4, true),
            packet(256, 5, true),
        ]
        .concat();
        splicer.segment(true);
        splicer.rewrite(&mut one);
        assert_eq!(one[5] & 0x80, 0, "nothing to break from at the start");
        splicer.segment(true);
        splicer.rewrite(&mut two);
        let marked: Vec<bool> = crate::packets(&two)
            .iter()
            .filter(|p| Header::parse(p).has_af)
            .map(|p| p[5] & 0x80 != 0)
            .collect();
        assert_eq!(marked, [true, false]);
        assert_eq!(ccs(&two, 256), [2, 3]);
    }
}
