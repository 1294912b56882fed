//! IPv4 reassembly of fragmented UDP datagrams, for the pcap sources (the
//! kernel reassembles for sockets, libpcap sees the fragments). A TS
//! sender with datagrams above the path MTU (21 × 188 bytes over 1500, say)
//! fragments every one of them.
//!
//! Memory is bounded: at most [`MAX_PENDING`] datagrams of at most 64 KiB
//! are rebuilt at once, and one that is not complete within
//! [`FRAGMENT_TIMEOUT`] of capture time is given up and counted.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

/// Datagrams being rebuilt at once, at most (the oldest is given up first).
pub const MAX_PENDING: usize = 64;
/// A datagram whose fragments have not all come this long after its first
/// one (capture time) is given up.
pub const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// One IPv4 fragment of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP identification.
    pub id: u16,
    /// Byte offset of this fragment's data in the datagram's IP payload.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
    /// The fragment's data.
    pub data: &'a [u8],
}

struct Pending {
    key: (Ipv4Addr, Ipv4Addr, u16),
    first: SystemTime,
    data: Vec<u8>,
    /// Byte ranges received, unordered.
    have: Vec<(usize, usize)>,
    total: Option<usize>,
}

impl Pending {
    fn complete(&mut self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        self.have.sort_unstable();
        let mut covered = 0;
        for &(from, to) in &self.have {
            if from > covered {
                return false;
            }
            covered = covered.max(to);
        }
        covered >= total
    }
}

/// What the reassembler counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// Datagrams rebuilt whole.
    pub reassembled: u64,
    /// Datagrams given up: a fragment never came in time, too many were
    /// pending, or the fragments did not fit together.
    pub incomplete: u64,
}

/// Rebuilds IPv4 datagrams from their fragments.
#[derive(Default)]
pub struct Reassembler {
    pending: Vec<Pending>,
    done: Vec<u8>,
    counters: FragmentCounters,
}

impl Reassembler {
    /// What was counted so far.
    pub fn counters(&self) -> FragmentCounters {
        self.counters
    }

    /// Takes one fragment captured at `at`; returns the datagram's whole IP
    /// payload (UDP header first) once its last missing fragment came.
    pub fn push(&mut self, at: SystemTime, f: Fragment<'_>) -> Option<&[u8]> {
        self.expire(at);
        let key = (f.src, f.dst, f.id);
        let end = f.offset + f.data.len();
        let slot = match self.pending.iter().position(|p| p.key == key) {
            Some(i) => i,
            None => {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                    self.counters.incomplete += 1;
                }
                self.pending.push(Pending {
                    key,
                    first: at,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                });
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[slot];
        let overrun = end > u16::MAX as usize || p.total.is_some_and(|t| end > t);
        let short_end = !f.more && p.have.iter().any(|&(_, to)| to > end);
        if overrun || short_end {
            self.pending.remove(slot);
            self.counters.incomplete += 1;
            return None;
        }
        if p.data.len() < end {
            p.data.resize(end, 0);
        }
        p.data[f.offset..end].copy_from_slice(f.data);
        p.have.push((f.offset, end));
        if !f.more {
            p.total = Some(end);
        }
        if !p.complete() {
            return None;
        }
        let p = self.pending.remove(slot);
        self.counters.reassembled += 1;
        self.done = p.data;
        Some(&self.done)
    }

    /// Gives up the datagrams whose time ran out by `now` (capture time).
    pub fn expire(&mut self, now: SystemTime) {
        let before = self.pending.len();
        self.pending.retain(|p| {
            now.duration_since(p.first)
                .map_or(true, |waited| waited <= FRAGMENT_TIMEOUT)
        });
        self.counters.incomplete += (before - self.pending.len()) as u64;
    }

    /// A fragment that cannot be reassembled (IPv6, or not UDP).
    pub fn unsupported(&mut self) {
        self.counters.incomplete += 1;
    }

    /// The source ended: what is still pending never completes.
    pub fn finish(&mut self) {
        self.counters.incomplete += self.pending.len() as u64;
        self.pending.clear();
    }

    /// Ends the source's reassembly and returns its counters with the
    /// reassembler's.
    pub fn finished(&mut self, mut n: crate::SourceCounters) -> crate::SourceCounters {
        self.finish();
        n.reassembled = self.counters.reassembled;
        n.fragments_incomplete = self.counters.incomplete;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(id: u16, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(239, 1, 1, 1),
            id,
            offset,
            more,
            data,
        }
    }

    fn t(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn rebuilds_in_any_order() {
        let whole: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut r = Reassembler::default();
        assert_eq!(r.push(t(0), frag(7, 1480, true, &whole[1480..2960])), None);
        assert_eq!(r.push(t(1), frag(7, 2960, false, &whole[2960..])), None);
        // A duplicate changes nothing.
        assert_eq!(r.push(t(1), frag(7, 2960, false, &whole[2960..])), None);
        assert_eq!(
            r.push(t(2), frag(7, 0, true, &whole[..1480])),
            Some(&whole[..])
        );
        assert_eq!(
            r.counters(),
            FragmentCounters {
                reassembled: 1,
                incomplete: 0
            }
        );
    }

    #[test]
    fn what_never_completes_is_counted() {
        let mut r = Reassembler::default();
        r.push(t(0), frag(1, 0, true, &[0; 1480]));
        // Another datagram 3 s later: the first has timed out.
        r.push(t(3000), frag(2, 0, true, &[0; 1480]));
        assert_eq!(r.counters().incomplete, 1);
        r.finish();
        assert_eq!(r.counters().incomplete, 2);
        // Too many at once: the oldest goes.
        for id in 0..=MAX_PENDING as u16 {
            r.push(t(4000), frag(id, 0, true, &[0; 8]));
        }
        assert_eq!(r.counters().incomplete, 3);
        // Fragments that overrun the end announced.
        let mut r = Reassembler::default();
        r.push(t(5000), frag(900, 8, false, &[0; 8]));
        assert_eq!(r.push(t(5000), frag(900, 16, true, &[0; 8])), None);
        assert_eq!(r.counters().incomplete, 1);
    }
}
