//! When each datagram of a TS stream should leave, from its PCRs: what a
//! replay needs to send archived segments at the pace they were received.
//!
//! A multiplex runs at a constant rate between two PCRs, so a packet's
//! time is interpolated between the PCRs around it by its byte position.
//! A datagram leaves when its first packet is due, or, when it carries a
//! PCR, when that PCR is. Packets after the last PCR wait for the next
//! one; at the end they are extrapolated at the last interval's rate. Times are nanoseconds from
//! the stream's first packet, for the sender to add to a monotonic clock.
//!
//! Across a splice (a discontinuity, a restart, a loop) the PCR starts
//! again anywhere: the schedule goes on as if the stream had not broken,
//! the first PCR after it landing where the last rate puts it. So does a
//! PCR that jumps further than [`MAX_PCR_STEP`] without a splice being
//! declared (the archive missed the mark), or that goes back.
//!
//! ```
//! use hlsvault_ts::pace::Pacer;
//! // 1.504 Mbit/s: a PCR every 10 packets, 10 ms (900 ticks of 90 kHz)
//! // apart.
//! let packet = |i: u64| {
//!     let mut p = [0xFFu8; 188];
//!     p[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x30 | (i % 16) as u8]);
//!     p[4] = 7;
//!     p[5] = 0x10; // a PCR
//!     let base = i / 10 * 900;
//!     p[6..12].copy_from_slice(&[(base >> 25) as u8, (base >> 17) as u8,
//!         (base >> 9) as u8, (base >> 1) as u8, ((base & 1) << 7) as u8 | 0x7E, 0]);
//!     if i % 10 != 0 { p[5] = 0; }
//!     p
//! };
//! let ts: Vec<u8> = (0..71).flat_map(packet).collect();
//! let mut pacer = Pacer::new(7);
//! let sent = pacer.push(ts.into(), false);
//! // Datagrams of 7 packets (1316 bytes) every 7 ms, or when their PCR
//! // is due: packets 7-13 leave with the PCR of packet 10.
//! assert_eq!(sent[1].at, 10_000_000);
//! assert_eq!(sent[9].at, 63_000_000);
//! assert_eq!(sent[1].bytes.len(), 7 * 188);
//! ```

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;

use crate::clock::{pcr_field, pcr_forward, pts_diff, read_pcr, PcrTrack, PCR_HZ};
use crate::{packets, payload, pes, Header, PACKET_SIZE};

/// A presentation lead beyond this is not believed.
const MAX_LEAD: Duration = Duration::from_secs(10);

/// How long after its first PCR a segment's first PES (the keyframe it
/// opens with) is presented: how far its program date-time (the time of
/// that frame) is ahead of when its first packets arrived. None without
/// a PCR and a PTS, or for a lead beyond 10 s (not a real mux).
///
/// ```
/// use hlsvault_ts::pace::presentation_lead;
/// let mut p = [0xFFu8; 188];
/// // PID 256, PCR 0 in the adaptation field, then a PES with PTS 63,000
/// // (0.7 s at 90 kHz).
/// p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x30]);
/// p[4..12].copy_from_slice(&[7, 0x10, 0, 0, 0, 0, 0x7E, 0]);
/// let pts: u64 = 63_000;
/// p[12..26].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5,
///     0x21 | ((pts >> 29) & 0x0E) as u8, (pts >> 22) as u8, ((pts >> 14) & 0xFE) as u8 | 1,
///     (pts >> 7) as u8, ((pts << 1) & 0xFE) as u8 | 1]);
/// assert_eq!(presentation_lead(&p), Some(std::time::Duration::from_millis(700)));
/// ```
pub fn presentation_lead(ts: &[u8]) -> Option<Duration> {
    let mut pcr = None;
    let mut pts = None;
    for p in packets(ts) {
        let h = Header::parse(p);
        if pcr.is_none() && h.has_af && p[4] >= 7 && p[5] & 0x10 != 0 {
            pcr = Some(read_pcr(pcr_field(p)) / 300);
        }
        if pts.is_none() && h.pusi {
            pts = payload(p).and_then(pes::parse_header).and_then(|h| h.pts);
        }
        if let (Some(pcr), Some(pts)) = (pcr, pts) {
            let lead = u64::try_from(pts_diff(pts, pcr)).ok()?;
            let lead = Duration::from_micros(lead * 100 / 9);
            return (lead <= MAX_LEAD).then_some(lead);
        }
    }
    None
}

/// A PCR further than this from the last one (or before it) starts a new
/// time base: a multiplex sends one at least every 100 ms.
pub const MAX_PCR_STEP: u64 = PCR_HZ;

/// One datagram and when it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// Nanoseconds from the stream's first packet.
    pub at: u64,
    /// Its packets: a slice of the stream as pushed (copied only when a
    /// datagram spans two pushes).
    pub bytes: Bytes,
}

/// A PCR and where it lies: its byte position in the stream and its time
/// on the schedule.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    position: u64,
    pcr: u64,
    at: u64,
}

/// Times a stream's packets by its PCRs and groups them into datagrams.
pub struct Pacer {
    per_datagram: usize,
    /// Packets not timed yet (after the last PCR), as runs of the pushed
    /// bytes, and where the first lies in the stream.
    waiting: Vec<Run>,
    waiting_from: u64,
    /// The last PCR.
    anchor: Option<Anchor>,
    /// Nanoseconds a byte takes, in the last interval between PCRs.
    ns_per_byte: f64,
    /// The next PCR starts a new time base.
    splice: bool,
    /// The PCRs that pace.
    pcrs: PcrTrack,
    /// A datagram being filled: its packets (one run unless it spans two
    /// pushes), how many it has, and its time.
    filling: Vec<Run>,
    filled: usize,
    filling_at: u64,
}

impl Pacer {
    /// A pacer that sends `per_datagram` packets a datagram (7 in UDP).
    pub fn new(per_datagram: usize) -> Self {
        Pacer {
            per_datagram: per_datagram.max(1),
            waiting: Vec::new(),
            waiting_from: 0,
            anchor: None,
            ns_per_byte: 0.0,
            splice: false,
            pcrs: PcrTrack::default(),
            filling: Vec::new(),
            filled: 0,
            filling_at: 0,
        }
    }

    /// Takes the next whole packets of the stream (a trailing part of a
    /// packet is ignored), `splice` if they do not go on from the ones
    /// before; returns the datagrams now timed.
    pub fn push(&mut self, ts: Bytes, splice: bool) -> Vec<Timed> {
        self.splice |= splice;
        let mut out = Vec::new();
        let whole = packets(&ts).len() * PACKET_SIZE;
        // The run of packets since the last PCR in this push.
        let mut run_from = 0;
        for (i, p) in packets(&ts).iter().enumerate() {
            if let Some(pcr) = self.pcrs.pcr(p) {
                let offset = i * PACKET_SIZE;
                self.wait(&ts, run_from..offset);
                run_from = offset;
                let position = self.waiting_end();
                self.anchor_at(pcr, position, &mut out);
            }
        }
        self.wait(&ts, run_from..whole);
        out
    }

    /// The end of the stream: the packets after the last PCR, timed at
    /// the last rate, and the last datagram, however short.
    pub fn finish(&mut self) -> Vec<Timed> {
        let mut out = Vec::new();
        let end = self.waiting_end();
        let at = self.extrapolate(end);
        self.time_waiting(end, at, &mut out);
        if self.filled > 0 {
            self.filled = 0;
            out.push(Timed {
                at: self.filling_at,
                bytes: joined(std::mem::take(&mut self.filling)),
            });
        }
        out
    }

    /// Packets that wait for the next PCR.
    fn wait(&mut self, pushed: &Bytes, range: Range<usize>) {
        if !range.is_empty() {
            self.waiting.push(Run {
                of: pushed.clone(),
                range,
            });
        }
    }

    /// Where the waiting packets end in the stream.
    fn waiting_end(&self) -> u64 {
        self.waiting_from
            + self
                .waiting
                .iter()
                .map(|r| r.range.len() as u64)
                .sum::<u64>()
    }

    /// Where the schedule puts the byte at `position` by the last rate.
    fn extrapolate(&self, position: u64) -> u64 {
        self.anchor.map_or(0, |a| {
            a.at + (position.saturating_sub(a.position) as f64 * self.ns_per_byte) as u64
        })
    }

    /// A PCR at `position`: the packets before it are timed.
    fn anchor_at(&mut self, pcr: u64, position: u64, out: &mut Vec<Timed>) {
        let step = self.anchor.map(|a| pcr_forward(pcr, a.pcr));
        let goes_on = !std::mem::take(&mut self.splice) && step.is_some_and(|s| s <= MAX_PCR_STEP);
        let at = match (self.anchor, step) {
            (Some(a), Some(step)) if goes_on => {
                let at = a.at + step * 1_000 / 27;
                let bytes = position.saturating_sub(a.position);
                if bytes > 0 {
                    self.ns_per_byte = (at - a.at) as f64 / bytes as f64;
                }
                at
            }
            _ => self.extrapolate(position),
        };
        self.time_waiting(position, at, out);
        self.anchor = Some(Anchor { position, pcr, at });
    }

    /// Times the waiting packets, which end at `end`, where the schedule
    /// says `at`: evenly between the last anchor and there.
    fn time_waiting(&mut self, end: u64, at: u64, out: &mut Vec<Timed>) {
        let (from_position, from_at) = self
            .anchor
            .map_or((self.waiting_from, at), |a| (a.position, a.at));
        let span = end.saturating_sub(from_position).max(1) as f64;
        let mut position = self.waiting_from;
        for run in std::mem::take(&mut self.waiting) {
            // Where the datagram being filled starts in this run.
            let mut start = run.range.start;
            for offset in run.range.clone().step_by(PACKET_SIZE) {
                let share = position.saturating_sub(from_position) as f64 / span;
                let t = from_at + (at.saturating_sub(from_at) as f64 * share) as u64;
                // A datagram leaves when its first packet is due, or when
                // its PCR is: the PCR then arrives on time to the
                // microsecond, wherever it lies in the datagram (the others
                // move by less than a datagram's time).
                let carries_pcr = self.anchor.is_some_and(|a| a.position == position);
                if self.filled == 0 || carries_pcr {
                    self.filling_at = t;
                }
                self.filled += 1;
                position += PACKET_SIZE as u64;
                if self.filled == self.per_datagram {
                    let end = offset + PACKET_SIZE;
                    self.fill(&run.of, start..end);
                    out.push(Timed {
                        at: self.filling_at,
                        bytes: joined(std::mem::take(&mut self.filling)),
                    });
                    self.filled = 0;
                    start = end;
                }
            }
            if start < run.range.end {
                self.fill(&run.of, start..run.range.end);
            }
        }
        self.waiting_from = end;
    }

    /// Adds packets to the datagram being filled: to its last run when
    /// they follow it in the same push.
    fn fill(&mut self, pushed: &Bytes, range: Range<usize>) {
        match self.filling.last_mut() {
            Some(last) if last.of.as_ptr() == pushed.as_ptr() && last.range.end == range.start => {
                last.range.end = range.end;
            }
            _ => self.filling.push(Run {
                of: pushed.clone(),
                range,
            }),
        }
    }
}

/// Whole packets of one push.
#[derive(Debug, Clone)]
struct Run {
    of: Bytes,
    range: Range<usize>,
}

/// One datagram's packets as one slice: copied only when they lie in two
/// pushes.
fn joined(mut runs: Vec<Run>) -> Bytes {
    match runs.len() {
        1 => runs.pop().map(|r| r.of.slice(r.range)).unwrap_or_default(),
        _ => runs
            .iter()
            .flat_map(|r| &r.of[r.range.clone()])
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of PID 0x100, with a PCR of `pcr` (27 MHz) if given.
    fn packet(pcr: Option<u64>) -> crate::Packet {
        let mut p = [0xFFu8; PACKET_SIZE];
        match pcr {
            Some(pcr) => p.copy_from_slice(&crate::tests::Mux::new().pcr_only(0x100, pcr)),
            None => p[..6].copy_from_slice(&[0x47, 0x01, 0x00, 0x30, 7, 0]),
        }
        p
    }

    /// `count` packets at `bits_per_second`, a PCR every `every` packets,
    /// the first PCR `first`.
    fn stream(count: u64, every: u64, bits_per_second: u64, first: u64) -> Vec<u8> {
        let ticks_per_packet = PACKET_SIZE as u64 * 8 * PCR_HZ / bits_per_second;
        (0..count)
            .flat_map(|i| {
                let pcr = (i % every == 0)
                    .then(|| (first + i * ticks_per_packet) % crate::clock::PCR_WRAP);
                packet(pcr)
            })
            .collect()
    }

    fn times(sent: &[Timed]) -> Vec<u64> {
        sent.iter().map(|t| t.at).collect()
    }

    /// When datagram `i` of 7 packets leaves, packets `packet_ns` apart with
    /// a PCR every `every`: at its first packet, or at its PCR.
    fn due(i: u64, every: u64, packet_ns: u64) -> u64 {
        let first = i * 7;
        let at = (first..first + 7).find(|p| p % every == 0).unwrap_or(first);
        at * packet_ns
    }

    #[test]
    fn datagrams_leave_when_their_first_packet_or_their_pcr_is_due() {
        // 2 Mbit/s: a packet every 752 µs.
        let ts = stream(141, 20, 2_000_000, 0);
        let mut pacer = Pacer::new(7);
        let mut sent = pacer.push(ts.into(), false);
        sent.extend(pacer.finish());
        assert_eq!(
            sent.len(),
            21,
            "141 packets: 20 datagrams of 7 and one of 1"
        );
        let expected: Vec<u64> = (0..21).map(|i| due(i, 20, 752_000)).collect();
        assert_eq!(times(&sent), expected);
        assert_eq!(sent[20].bytes.len(), PACKET_SIZE);
    }

    #[test]
    fn the_pcr_wraps_and_the_schedule_goes_on() {
        let near_wrap = crate::clock::PCR_WRAP - 27_000 * 5;
        let ts = stream(140, 10, 2_000_000, near_wrap);
        let mut pacer = Pacer::new(7);
        let mut sent = pacer.push(ts.into(), false);
        sent.extend(pacer.finish());
        let expected: Vec<u64> = (0..20).map(|i| due(i, 10, 752_000)).collect();
        assert_eq!(times(&sent), expected);
    }

    #[test]
    fn a_splice_lands_where_the_last_rate_puts_it() {
        let mut pacer = Pacer::new(7);
        let mut sent = pacer.push(stream(70, 10, 2_000_000, 5_000_000).into(), false);
        // The next segment's clock starts anywhere (here: back at 0).
        sent.extend(pacer.push(stream(70, 10, 2_000_000, 0).into(), true));
        sent.extend(pacer.finish());
        let t = times(&sent);
        let expected: Vec<u64> = (0..20).map(|i| due(i, 10, 752_000)).collect();
        assert_eq!(t, expected);
        // The same without saying so: a PCR that goes back is a splice.
        let mut pacer = Pacer::new(7);
        let mut sent = pacer.push(stream(70, 10, 2_000_000, 5_000_000).into(), false);
        sent.extend(pacer.push(stream(70, 10, 2_000_000, 0).into(), false));
        sent.extend(pacer.finish());
        assert_eq!(times(&sent), t);
    }

    #[test]
    fn packets_before_the_first_pcr_leave_at_once() {
        let mut ts: Vec<u8> = (0..3).flat_map(|_| packet(None)).collect();
        ts.extend(stream(11, 10, 2_000_000, 0));
        let mut pacer = Pacer::new(1);
        let mut sent = pacer.push(ts.into(), false);
        sent.extend(pacer.finish());
        assert_eq!(&times(&sent)[..4], [0, 0, 0, 0]);
        assert_eq!(sent.len(), 14);
    }

    #[test]
    fn datagrams_are_slices_of_what_was_pushed_but_one_across_two_pushes() {
        let ts = Bytes::from(stream(30, 10, 2_000_000, 0));
        let mut pacer = Pacer::new(7);
        // 30 packets in pushes of 10 and 20: datagram 1 (packets 7-13)
        // lies in both, the others in one (2 across the PCR of packet 20).
        let mut sent = pacer.push(ts.slice(..10 * PACKET_SIZE), false);
        sent.extend(pacer.push(ts.slice(10 * PACKET_SIZE..), false));
        sent.extend(pacer.finish());
        let within = |d: &Timed| {
            let range = ts.as_ptr_range();
            range.contains(&d.bytes.as_ptr())
        };
        assert_eq!(
            sent.iter().map(within).collect::<Vec<_>>(),
            [true, false, true, true, true]
        );
        let out: Vec<u8> = sent.iter().flat_map(|d| d.bytes.to_vec()).collect();
        assert_eq!(out, ts, "every packet once, in order");
    }

    #[test]
    fn a_stream_without_pcr_is_not_paced() {
        let ts: Vec<u8> = (0..14).flat_map(|_| packet(None)).collect();
        let mut pacer = Pacer::new(7);
        let mut sent = pacer.push(ts.into(), false);
        assert!(sent.is_empty(), "nothing is timed before a PCR");
        sent.extend(pacer.finish());
        assert_eq!(times(&sent), [0, 0]);
    }
}
