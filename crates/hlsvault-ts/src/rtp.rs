//! RTP: recognise RTP-wrapped TS, strip its real header, follow sequence
//! numbers; and write the headers of TS sent out in RTP.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// What a datagram's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Plain TS packets.
    Ts(&'a [u8]),
    /// TS packets inside RTP, with the RTP sequence number.
    Rtp {
        /// The TS bytes.
        ts: &'a [u8],
        /// RTP sequence number.
        seq: u16,
    },
    /// Neither.
    NotTs,
}

/// Classifies a UDP payload and finds its TS bytes.
///
/// RTP is recognised by version 2 and payload type 33 (MP2T) or a dynamic
/// type (96-127) whose payload starts with a TS sync byte; the header length
/// counts the CSRC list and the header extension, and padding is removed.
pub fn classify(p: &[u8]) -> Payload<'_> {
    if p.first() == Some(&0x47) && p.len() >= 188 {
        return Payload::Ts(p);
    }
    // M2TS: a 4-byte timestamp before each packet.
    if p.len() >= 192 && p.len().is_multiple_of(192) && p[4] == 0x47 && p[0] >> 6 != 2 {
        return Payload::Ts(p);
    }
    if p.len() < 12 + 188 || p[0] >> 6 != 2 {
        return Payload::NotTs;
    }
    let pt = p[1] & 0x7F;
    if pt != 33 && !(96..=127).contains(&pt) {
        return Payload::NotTs;
    }
    let mut header = 12 + 4 * (p[0] & 0x0F) as usize;
    if p[0] & 0x10 != 0 {
        let Some(ext) = p.get(header + 2..header + 4) else {
            return Payload::NotTs;
        };
        header += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.saturating_sub(p[p.len() - 1] as usize);
    }
    if header + 188 > end || p[header] != 0x47 {
        return Payload::NotTs;
    }
    Payload::Rtp {
        ts: &p[header..end],
        seq: u16::from_be_bytes([p[2], p[3]]),
    }
}

/// Datagrams held while waiting for a missing one: beyond this many, the
/// missing one is given up as lost.
pub const REORDER_WINDOW: usize = 64;
/// How long (in capture time) a missing datagram is waited for.
pub const REORDER_WAIT: Duration = Duration::from_millis(50);

/// What [`Reorder`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderCounters {
    /// Datagrams that arrived after one with a later sequence number and
    /// were put back in place (not those merely held behind a loss).
    pub reordered: u64,
    /// Datagrams given up as lost.
    pub lost: u64,
    /// Repeats, and datagrams that came after they were given up.
    pub late: u64,
}

struct Held {
    at: SystemTime,
    data: Vec<u8>,
}

/// Puts the datagrams of one RTP stream back in sequence order: a datagram
/// that overtook a missing one waits (up to [`REORDER_WINDOW`] datagrams or
/// [`REORDER_WAIT`]) for it to arrive; then the missing one is lost.
///
/// Datagrams come out through a callback as `(ts, capture time, lost)`,
/// where `lost` counts the datagrams given up just before this one.
#[derive(Default)]
pub struct Reorder {
    /// The sequence number expected next.
    next: Option<u16>,
    /// Slot `k` holds sequence number `next + k` once it has arrived.
    slots: VecDeque<Option<Held>>,
    /// Capture time of the oldest datagram held.
    waiting_since: Option<SystemTime>,
    counters: ReorderCounters,
}

impl Reorder {
    /// What was counted so far.
    pub fn counters(&self) -> ReorderCounters {
        self.counters
    }

    /// Takes one datagram with sequence number `seq`.
    pub fn push(
        &mut self,
        seq: u16,
        ts: &[u8],
        at: SystemTime,
        out: &mut dyn FnMut(&[u8], SystemTime, u64),
    ) {
        let next = *self.next.get_or_insert(seq);
        let ahead = seq.wrapping_sub(next) as usize;
        if ahead >= 0x8000 || self.slots.get(ahead).is_some_and(|s| s.is_some()) {
            self.counters.late += 1;
            return;
        }
        // A later datagram is held already: this one overtook nothing, it
        // was overtaken.
        if self.slots.len() > ahead + 1 {
            self.counters.reordered += 1;
        }
        let waited = self
            .waiting_since
            .is_some_and(|t| at.duration_since(t).unwrap_or_default() > REORDER_WAIT);
        if ahead > 0 && ahead < REORDER_WINDOW && !waited {
            if self.slots.len() <= ahead {
                self.slots.resize_with(ahead + 1, || None);
            }
            self.slots[ahead] = Some(Held {
                at,
                data: ts.to_vec(),
            });
            self.waiting_since.get_or_insert(at);
            return;
        }
        // In order, or the wait is over: give up on what is missing first.
        let lost = self.advance(ahead, out);
        out(ts, at, lost);
        self.step();
        self.release_ready(out);
        self.waiting_since = self.slots.iter().flatten().map(|h| h.at).min();
    }

    /// Releases everything held, giving up on what is missing before it
    /// (at a stall or the end of the stream).
    pub fn flush(&mut self, out: &mut dyn FnMut(&[u8], SystemTime, u64)) {
        self.advance(self.slots.len(), out);
        self.waiting_since = None;
    }

    /// Passes the next sequence number: returns its slot.
    fn step(&mut self) -> Option<Held> {
        self.next = self.next.map(|n| n.wrapping_add(1));
        self.slots.pop_front().flatten()
    }

    /// Moves the expectation `by` sequence numbers on, releasing what is
    /// held on the way and counting the rest lost; returns how many were
    /// lost after the last one released.
    fn advance(&mut self, by: usize, out: &mut dyn FnMut(&[u8], SystemTime, u64)) -> u64 {
        let mut missing = 0;
        let held = by.min(self.slots.len());
        for _ in 0..held {
            match self.step() {
                Some(h) => {
                    out(&h.data, h.at, missing);
                    missing = 0;
                }
                None => {
                    missing += 1;
                    self.counters.lost += 1;
                }
            }
        }
        // Past the slots nothing is held: a jump of 30,000 sequence
        // numbers is one step, not 30,000.
        let rest = (by - held) as u64;
        self.next = self.next.map(|n| n.wrapping_add(rest as u16));
        self.counters.lost += rest;
        missing + rest
    }

    /// Releases the held datagrams that are now next in order.
    fn release_ready(&mut self, out: &mut dyn FnMut(&[u8], SystemTime, u64)) {
        while self.slots.front().is_some_and(|s| s.is_some()) {
            self.advance(1, out);
        }
    }
}

/// Headers for TS sent in RTP (RFC 2250): payload type 33, one SSRC,
/// sequence numbers that go on across everything the sender sends, and
/// the 90 kHz timestamp the caller gives (its schedule, from the PCR).
///
/// ```
/// use hlsvault_ts::rtp::{classify, Payload, RtpHeaders};
/// let mut rtp = RtpHeaders::new(0x1234_5678, 65_535);
/// let datagram = [&rtp.next(90_000)[..], &[0x47; 188]].concat();
/// assert!(matches!(classify(&datagram), Payload::Rtp { seq: 65_535, .. }));
/// assert_eq!(rtp.next(93_600)[2..4], [0, 0], "the sequence wraps");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RtpHeaders {
    ssrc: u32,
    seq: u16,
}

impl RtpHeaders {
    /// Headers of source `ssrc`, the first numbered `first_seq`.
    pub fn new(ssrc: u32, first_seq: u16) -> Self {
        RtpHeaders {
            ssrc,
            seq: first_seq,
        }
    }

    /// The next datagram's header, stamped `timestamp` (90 kHz, wrapping).
    pub fn next(&mut self, timestamp: u32) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = 0x80; // version 2, no padding, extension or CSRC
        h[1] = 33; // MP2T, no marker
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&timestamp.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, csrc: u8, ext_words: Option<u16>, pad: u8) -> Vec<u8> {
        let mut p = vec![
            0x80 | csrc
                | if ext_words.is_some() { 0x10 } else { 0 }
                | if pad > 0 { 0x20 } else { 0 },
            pt,
            0x12,
            0x34,
        ];
        p.extend_from_slice(&[0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF]);
        for _ in 0..csrc {
            p.extend_from_slice(&[1, 2, 3, 4]);
        }
        if let Some(words) = ext_words {
            p.extend_from_slice(&[0xBE, 0xDE]);
            p.extend_from_slice(&words.to_be_bytes());
            p.extend(std::iter::repeat_n(0xEE, 4 * words as usize));
        }
        p.extend(std::iter::repeat_n(0x47, 7 * 188));
        if pad > 0 {
            p.extend(std::iter::repeat_n(0, pad as usize - 1));
            p.push(pad);
        }
        p
    }

    #[test]
    fn strips_the_real_header_length() {
        for (csrc, ext, pad) in [(0, None, 0), (3, None, 0), (0, Some(2), 0), (2, Some(1), 4)] {
            let p = rtp(33, csrc, ext, pad);
            match classify(&p) {
                Payload::Rtp { ts, seq } => {
                    assert_eq!(ts.len(), 7 * 188, "csrc {csrc} ext {ext:?} pad {pad}");
                    assert_eq!(seq, 0x1234);
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            classify(&rtp(96, 0, None, 0)),
            Payload::Rtp { .. }
        ));
        assert_eq!(
            classify(&rtp(14, 0, None, 0)),
            Payload::NotTs,
            "MPA is not TS"
        );
    }

    #[test]
    fn plain_ts_and_garbage() {
        assert!(matches!(classify(&[0x47; 1316]), Payload::Ts(_)));
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Payload::NotTs);
        assert_eq!(classify(&[0x80; 300]), Payload::NotTs);
    }

    fn run(r: &mut Reorder, seqs: &[(u16, u64)]) -> Vec<(u16, u64)> {
        let mut out = Vec::new();
        for &(seq, ms) in seqs {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
            r.push(seq, &seq.to_be_bytes(), at, &mut |ts, _, lost| {
                out.push((u16::from_be_bytes([ts[0], ts[1]]), lost))
            });
        }
        out
    }

    #[test]
    fn in_order_across_the_wrap() {
        let mut r = Reorder::default();
        let got = run(&mut r, &[(65534, 0), (65535, 1), (0, 2), (1, 3)]);
        assert_eq!(got, vec![(65534, 0), (65535, 0), (0, 0), (1, 0)]);
        assert_eq!(r.counters(), ReorderCounters::default());
    }

    #[test]
    fn small_reorders_are_repaired() {
        let mut r = Reorder::default();
        let got = run(
            &mut r,
            &[(10, 0), (12, 1), (13, 1), (11, 2), (14, 3), (14, 3)],
        );
        assert_eq!(got, vec![(10, 0), (11, 0), (12, 0), (13, 0), (14, 0)]);
        assert_eq!(
            r.counters(),
            ReorderCounters {
                reordered: 1,
                lost: 0,
                late: 1
            }
        );
    }

    #[test]
    fn a_missing_datagram_is_given_up_after_the_wait_or_the_window() {
        let mut r = Reorder::default();
        // 2 never comes; 5 arrives after the wait is over.
        let got = run(&mut r, &[(1, 0), (3, 1), (4, 2), (5, 100), (2, 101)]);
        assert_eq!(got, vec![(1, 0), (3, 1), (4, 0), (5, 0)]);
        assert_eq!(r.counters().lost, 1);
        assert_eq!(r.counters().late, 1, "2 came after it was given up");
        assert_eq!(
            r.counters().reordered,
            0,
            "held behind a loss is not reordered"
        );

        // A jump past the window gives up at once.
        let mut r = Reorder::default();
        let far = 1 + REORDER_WINDOW as u16 + 5;
        let got = run(&mut r, &[(0, 0), (far, 1), (far + 1, 2)]);
        assert_eq!(got, vec![(0, 0), (far, far as u64 - 1), (far + 1, 0)]);
    }

    #[test]
    fn flush_releases_what_is_held() {
        let mut r = Reorder::default();
        let mut got = run(&mut r, &[(1, 0), (3, 1), (5, 2)]);
        r.flush(&mut |ts, _, lost| got.push((u16::from_be_bytes([ts[0], ts[1]]), lost)));
        assert_eq!(got, vec![(1, 0), (3, 1), (5, 1)]);
        assert_eq!(r.counters().lost, 2);
        assert_eq!(r.counters().reordered, 0);
        // After the flush, the sequence goes on from the last one released.
        assert_eq!(run(&mut r, &[(6, 3)]), vec![(6, 0)]);
    }

    #[test]
    fn wild_jumps_count_every_missing_datagram_and_keep_the_order() {
        let mut r = Reorder::default();
        // Held 3 and 5 behind a missing 2, then a jump of 30,000.
        let got = run(&mut r, &[(1, 0), (3, 1), (5, 2), (30_005, 3), (30_006, 4)]);
        assert_eq!(
            got,
            vec![(1, 0), (3, 1), (5, 1), (30_005, 29_999), (30_006, 0)]
        );
        assert_eq!(r.counters().lost, 1 + 1 + 29_999);
        // Across the wrap too.
        let got = run(&mut r, &[(62_000, 5), (62_001, 6)]);
        assert_eq!(got, vec![(62_000, 31_993), (62_001, 0)]);
    }
}
