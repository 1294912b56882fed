//! Whole PES units out of TS packets, per PID, with their timestamps: what
//! a remuxer into another container (MP4) takes samples from.
//!
//! A unit ends where its declared length is met, or, for a PES of
//! unbounded length (video), where the PID's next unit starts. A unit that
//! lost packets (a continuity counter that jumps) or never ends is
//! returned marked `damaged`, for the caller to drop or keep.
//!
//! ```
//! use hlsvault_ts::pes_units::PesUnits;
//! let mut units = PesUnits::new(&[0x100]);
//! // A PES (stream 0xE0, unbounded) with a PTS, in one packet, then the
//! // next unit's start.
//! let packet = |cc: u8| {
//!     let mut p = [0xFFu8; 188];
//!     p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10 | cc]);
//!     p[4..18].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1]);
//!     p
//! };
//! assert!(units.push(&packet(0)).is_none());
//! let unit = units.push(&packet(1)).expect("the first unit is whole");
//! assert_eq!((unit.pid, unit.pts, unit.data.len()), (0x100, Some(0), 188 - 18));
//! assert!(!unit.damaged);
//! ```

use crate::pes::parse_header;
use crate::{payload, Header, Packet};

/// One PES unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub pid: u16,
    /// Presentation time stamp (33 bits).
    pub pts: Option<u64>,
    /// Decoding time stamp, when it differs from the PTS.
    pub dts: Option<u64>,
    /// The elementary stream bytes (the PES payload).
    pub data: Vec<u8>,
    /// The adaptation field of its first packet set the random access
    /// indicator.
    pub random_access: bool,
    /// Packets of it were lost, or it was cut short.
    pub damaged: bool,
}

/// A unit being filled.
struct Partial {
    unit: Unit,
    /// Bytes of the PES packet still to come, when its length is declared.
    left: Option<usize>,
    /// The PES header is not whole yet: its bytes wait here.
    head: Vec<u8>,
    last_cc: u8,
}

/// Reassembles the PES units of a set of PIDs.
pub struct PesUnits {
    pids: Vec<u16>,
    open: Vec<Option<Partial>>,
    /// Per PID, the length of its last unit: room for the next one is
    /// made at once, not as it grows (a video unit is many packets).
    last_len: Vec<usize>,
}

impl PesUnits {
    /// Units of `pids`; other packets are ignored.
    pub fn new(pids: &[u16]) -> Self {
        PesUnits {
            pids: pids.to_vec(),
            open: pids.iter().map(|_| None).collect(),
            last_len: vec![0; pids.len()],
        }
    }

    /// Takes one packet; returns the unit it completes, if any (a unit
    /// start completes the unit before it on its PID).
    pub fn push(&mut self, p: &Packet) -> Option<Unit> {
        let h = Header::parse(p);
        let slot = self.pids.iter().position(|&pid| pid == h.pid)?;
        let body = payload(p).filter(|_| h.has_payload)?;
        let open = &mut self.open[slot];
        if h.pusi {
            let done = open.take().map(|mut o| {
                o.unit.damaged |= o.left.is_some_and(|l| l > 0) || !o.head.is_empty();
                o.unit
            });
            if let Some(d) = &done {
                self.last_len[slot] = d.data.len();
            }
            let random_access = h.has_af && p[4] > 0 && p[5] & 0x40 != 0;
            let hint = self.last_len[slot];
            *open = Some(Partial {
                unit: Unit {
                    pid: h.pid,
                    pts: None,
                    dts: None,
                    data: Vec::with_capacity(hint + hint / 4),
                    random_access,
                    damaged: false,
                },
                left: None,
                head: Vec::new(),
                last_cc: h.cc,
            });
            let finished = Self::take(open, body);
            return done.or(finished);
        }
        let o = open.as_mut()?;
        if h.cc == o.last_cc {
            return None; // a repeated packet
        }
        if h.cc != (o.last_cc + 1) & 0x0F {
            o.unit.damaged = true;
        }
        o.last_cc = h.cc;
        Self::take(open, body)
    }

    /// Adds `bytes` to the open unit; returns it if that makes it whole.
    fn take(open: &mut Option<Partial>, bytes: &[u8]) -> Option<Unit> {
        let o = open.as_mut()?;
        if o.unit.pts.is_none() && o.unit.data.is_empty() && o.left.is_none() {
            // Still in the PES header (it may span packets).
            o.head.extend_from_slice(bytes);
            let Some(header) = parse_header(&o.head) else {
                if o.head.len() >= 9 + 255 || (o.head.len() >= 3 && !o.head.starts_with(&[0, 0, 1]))
                {
                    *open = None; // not a PES: nothing to keep
                }
                return None;
            };
            let declared = usize::from(u16::from_be_bytes([o.head[4], o.head[5]]));
            let head = std::mem::take(&mut o.head);
            o.unit.pts = header.pts;
            o.unit.dts = header.dts;
            o.left = (declared > 0).then(|| (declared + 6).saturating_sub(header.payload_offset));
            let rest = &head[header.payload_offset..];
            return Self::append(open, rest);
        }
        Self::append(open, bytes)
    }

    fn append(open: &mut Option<Partial>, bytes: &[u8]) -> Option<Unit> {
        let o = open.as_mut()?;
        match &mut o.left {
            Some(left) => {
                let n = bytes.len().min(*left);
                o.unit.data.extend_from_slice(&bytes[..n]);
                *left -= n;
                if *left == 0 {
                    return open.take().map(|o| o.unit);
                }
            }
            None => o.unit.data.extend_from_slice(bytes),
        }
        None
    }

    /// The input has ended: the units still open, the unbounded ones whole
    /// as far as anyone can tell, those short of their length damaged.
    pub fn finish(&mut self) -> Vec<Unit> {
        self.open
            .iter_mut()
            .filter_map(Option::take)
            .map(|mut o| {
                o.unit.damaged |= o.left.is_some_and(|l| l > 0) || !o.head.is_empty();
                o.unit
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packets of one PES on `pid` from `cc`, with `es` bytes and a
    /// declared length or none.
    fn pes(pid: u16, cc: u8, pts: u64, es: &[u8], bounded: bool) -> Vec<[u8; 188]> {
        let mut bytes = crate::pes::tests::header(0xC0, pts);
        bytes.extend_from_slice(es);
        if bounded {
            let len = (bytes.len() - 6) as u16;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
        }
        bytes
            .chunks(184)
            .enumerate()
            .map(|(i, chunk)| {
                let mut p = [0xFF; 188];
                let c = (cc + i as u8) & 0x0F;
                p[..4].copy_from_slice(&[
                    0x47,
                    (pid >> 8) as u8 | if i == 0 { 0x40 } else { 0 },
                    pid as u8,
                    0x10 | c,
                ]);
                if chunk.len() < 184 {
                    // Stuff the rest with an adaptation field.
                    let stuffing = 184 - chunk.len();
                    p[3] |= 0x20;
                    p[4] = (stuffing - 1) as u8;
                    if stuffing > 1 {
                        p[5] = 0;
                    }
                    p[4 + stuffing..].copy_from_slice(chunk);
                } else {
                    p[4..].copy_from_slice(chunk);
                }
                p
            })
            .collect()
    }

    #[test]
    fn bounded_units_end_at_their_length_and_unbounded_at_the_next_start() {
        let es: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
        let mut units = PesUnits::new(&[0x101]);
        let mut out = Vec::new();
        for p in pes(0x101, 0, 9000, &es, true)
            .iter()
            .chain(&pes(0x101, 3, 10_920, &es[..7], true))
        {
            out.extend(units.push(p));
        }
        assert_eq!(out.len(), 2, "each bounded unit is out at its last byte");
        assert_eq!((out[0].pts, out[0].data.as_slice()), (Some(9000), &es[..]));
        assert_eq!(out[1].data, &es[..7]);
        let mut units = PesUnits::new(&[0x101]);
        let mut out = Vec::new();
        for p in pes(0x101, 0, 9000, &es, false) {
            out.extend(units.push(&p));
        }
        assert!(out.is_empty(), "unbounded: not whole until the next starts");
        let last = units.finish();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].data, es);
        assert!(!last[0].damaged);
    }

    #[test]
    fn a_lost_packet_marks_its_unit_damaged() {
        let es = [7u8; 600];
        let mut packets = pes(0x101, 0, 9000, &es, true);
        packets.remove(1);
        let mut units = PesUnits::new(&[0x101]);
        let mut out: Vec<Unit> = packets.iter().filter_map(|p| units.push(p)).collect();
        out.extend(units.finish());
        assert_eq!(out.len(), 1);
        assert!(out[0].damaged);
    }
}
