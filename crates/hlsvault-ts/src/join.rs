//! Archived segments joined back into one stream to send: each one
//! spliced onto the one before, restamped to another speed, stuffed back
//! to its constant rate (`cbr`) and timed into datagrams by its PCR, in
//! that order.
//!
//! ```
//! use bytes::BytesMut;
//! use hlsvault_ts::join::{JoinSettings, Joiner};
//! let packet = |pcr: Option<u64>| {
//!     let mut p = [0xFFu8; 188];
//!     p[..6].copy_from_slice(&[0x47, 0x01, 0x00, 0x30, 7, 0]);
//!     if let Some(base) = pcr {
//!         p[5] = 0x10;
//!         p[6..12].copy_from_slice(&[(base >> 25) as u8, (base >> 17) as u8,
//!             (base >> 9) as u8, (base >> 1) as u8, ((base & 1) << 7) as u8 | 0x7E, 0]);
//!     }
//!     p
//! };
//! // Two PCRs 10 ms (900 ticks of 90 kHz) apart, 14 packets each.
//! let mut ts = BytesMut::new();
//! for pcr in [0, 900] {
//!     ts.extend_from_slice(&packet(Some(pcr)));
//!     (0..13).for_each(|_| ts.extend_from_slice(&packet(None)));
//! }
//! let mut joiner = Joiner::new(JoinSettings { rate: 1.0, cbr: false, per_datagram: 7 });
//! let joined = joiner.push(ts, false);
//! let mut datagrams = joined.datagrams;
//! datagrams.extend(joiner.finish());
//! // Four datagrams of 7 packets, 5 ms apart.
//! let at: Vec<u64> = datagrams.iter().map(|d| d.at).collect();
//! assert_eq!(at, [0, 5_000_000, 10_000_000, 15_000_000]);
//! ```

use bytes::{Bytes, BytesMut};

use crate::pace::{Pacer, Timed};
use crate::restamp::Restamper;
use crate::splice::Splicer;
use crate::stuff::Stuffer;

/// How segments are joined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JoinSettings {
    /// Speed: 1 as recorded; otherwise the PCR, PTS and DTS are restamped.
    pub rate: f64,
    /// Null packets put back to the PCR-derived rate.
    pub cbr: bool,
    /// TS packets in a datagram (7 in UDP).
    pub per_datagram: usize,
}

/// Joins segments into timed datagrams.
pub struct Joiner {
    splicer: Splicer,
    restamper: Option<Restamper>,
    stuffer: Option<Stuffer>,
    pacer: Pacer,
}

/// One segment joined.
#[derive(Debug)]
pub struct Joined {
    /// The segment as rewritten: the bytes the datagrams slice (it is
    /// free again once they are all dropped).
    pub segment: Bytes,
    /// The datagrams now timed (those after its last PCR wait for the
    /// next segment's first).
    pub datagrams: Vec<Timed>,
}

impl Joiner {
    pub fn new(settings: JoinSettings) -> Self {
        Joiner {
            splicer: Splicer::new(),
            restamper: (settings.rate != 1.0).then(|| Restamper::new(settings.rate)),
            stuffer: settings.cbr.then(Stuffer::new),
            pacer: Pacer::new(settings.per_datagram),
        }
    }

    /// The next segment, rewritten in place; `splice` if it does not go
    /// on from the one before (a discontinuity, a skipped segment, a
    /// loop wrap).
    pub fn push(&mut self, mut segment: BytesMut, splice: bool) -> Joined {
        self.splicer.segment(splice);
        self.splicer.rewrite(&mut segment);
        if let Some(r) = &mut self.restamper {
            r.segment(splice);
            r.rewrite(&mut segment);
        }
        let segment = segment.freeze();
        let runs = match &mut self.stuffer {
            Some(stuffer) => stuffer.push(segment.clone(), splice),
            None => vec![segment.clone()],
        };
        Joined {
            segment,
            datagrams: self.pace(runs, splice),
        }
    }

    /// The end: what waited for a PCR, and the last datagram, however
    /// short.
    pub fn finish(&mut self) -> Vec<Timed> {
        let runs = self
            .stuffer
            .as_mut()
            .map(Stuffer::finish)
            .unwrap_or_default();
        let mut datagrams = self.pace(runs, false);
        datagrams.extend(self.pacer.finish());
        datagrams
    }

    /// The null packets put back so far.
    pub fn nulls_added(&self) -> u64 {
        self.stuffer.as_ref().map_or(0, Stuffer::added)
    }

    /// Times runs of the stream (the first after a splice if `splice`).
    fn pace(&mut self, runs: Vec<Bytes>, splice: bool) -> Vec<Timed> {
        let mut datagrams = Vec::new();
        for (i, run) in runs.into_iter().enumerate() {
            datagrams.extend(self.pacer.push(run, splice && i == 0));
        }
        datagrams
    }
}
