//! A stream's clock sped up or slowed down: PCR, PTS and DTS rewritten so
//! that the stream plays `rate` times as fast, for a test bench fed faster
//! (or slower) than real time. Pacing by the rewritten PCR then sends it
//! at that rate.
//!
//! Each time base (from a splice, or a PCR that jumps further than
//! [`crate::pace::MAX_PCR_STEP`] or goes back) is mapped from its first
//! PCR: `out = origin_out + (in - origin_in) / rate`, PTS and DTS by the
//! same line on their 90 kHz clock, so their distance to the PCR shrinks
//! with the rate as a decoder needs. The output clock goes on across time
//! bases from where it was. The bytes change in place.

use crate::clock::{pcr_forward, pts_diff, read_pcr, write_pcr, PCR_WRAP, PTS_WRAP};
use crate::pace::MAX_PCR_STEP;
use crate::{packets_mut, pes, Header, PACKET_SIZE};

/// Rewrites the timestamps of a stream to play at another speed.
///
/// ```
/// use hlsvault_ts::clock::{pcr_field, read_pcr};
/// use hlsvault_ts::restamp::Restamper;
/// // Two PCR packets one second apart, played twice as fast.
/// let pcr_packet = |pcr: u64| {
///     let mut p = [0xFFu8; 188];
///     p[..6].copy_from_slice(&[0x47, 0x01, 0x00, 0x20, 183, 0x10]);
///     hlsvault_ts::clock::write_pcr((&mut p[6..12]).try_into().unwrap(), pcr);
///     p
/// };
/// let mut ts = [pcr_packet(27_000_000), pcr_packet(54_000_000)].concat();
/// let mut restamper = Restamper::new(2.0);
/// restamper.segment(false);
/// restamper.rewrite(&mut ts);
/// let pcr = |p: &[u8]| read_pcr(pcr_field(p.try_into().unwrap()));
/// assert_eq!(pcr(&ts[188..]) - pcr(&ts[..188]), 13_500_000);
/// ```
pub struct Restamper {
    rate: f64,
    /// The current time base: its first PCR in and out (27 MHz).
    origin: Option<(u64, u64)>,
    /// The last PCR in and out.
    last: Option<(u64, u64)>,
    /// The next PCR starts a new time base.
    splice: bool,
    /// How far the latest PTS out ran ahead of the last PCR out (90 kHz):
    /// the next time base starts past it, so that no timestamp goes back.
    lead: u64,
}

impl Restamper {
    /// A restamper to `rate` times the speed (2.0: twice as fast).
    pub fn new(rate: f64) -> Self {
        Restamper {
            rate: if rate > 0.0 { rate } else { 1.0 },
            origin: None,
            last: None,
            splice: false,
            lead: 0,
        }
    }

    /// The next bytes are a new segment; `splice` when its timeline does
    /// not go on from the one before.
    pub fn segment(&mut self, splice: bool) {
        self.splice |= splice;
    }

    /// Rewrites the PCRs, PTSs and DTSs in `ts` (whole packets).
    pub fn rewrite(&mut self, ts: &mut [u8]) {
        let whole = ts.len() / PACKET_SIZE * PACKET_SIZE;
        for p in packets_mut(&mut ts[..whole]) {
            let h = Header::parse(p);
            let mut at = 4;
            if h.has_af {
                let len = usize::from(p[4]);
                if len >= 7 && p[5] & 0x10 != 0 {
                    let field: &mut [u8; 6] = (&mut p[6..12]).try_into().expect("6 bytes");
                    let pcr = read_pcr(field);
                    write_pcr(field, self.pcr(pcr));
                }
                at = 5 + len;
            }
            if h.pusi && h.has_payload && at + 19 <= PACKET_SIZE {
                self.pes_timestamps(&mut p[at..]);
            }
        }
    }

    /// A PCR's new value; a new time base starts at it when it must.
    fn pcr(&mut self, pcr: u64) -> u64 {
        let goes_on = !std::mem::take(&mut self.splice)
            && self
                .last
                .is_some_and(|(last, _)| pcr_forward(pcr, last) <= MAX_PCR_STEP);
        if !goes_on || self.origin.is_none() {
            // Past every timestamp of the time base before, by a frame's
            // worth (40 ms) more.
            let out = self.last.map_or(pcr, |(_, out)| {
                (out + (std::mem::take(&mut self.lead) + 3600) * 300) % PCR_WRAP
            });
            self.origin = Some((pcr, out));
        }
        let (origin_in, origin_out) = self.origin.expect("set above");
        let out = (origin_out + (pcr_forward(pcr, origin_in) as f64 / self.rate) as u64) % PCR_WRAP;
        self.last = Some((pcr, out));
        out
    }

    /// A 90 kHz timestamp on the current time base's line.
    fn timestamp(&self, ts: u64) -> u64 {
        let Some((origin_in, origin_out)) = self.origin else {
            return ts;
        };
        let from = pts_diff(ts, origin_in / 300) as f64 / self.rate;
        (((origin_out / 300) as i64 + from as i64).rem_euclid(PTS_WRAP as i64)) as u64
    }

    /// Rewrites the PTS and DTS of the PES header at the start of `payload`.
    fn pes_timestamps(&mut self, payload: &mut [u8]) {
        let Some(header) = pes::parse_header(payload) else {
            return;
        };
        if let Some(pts) = header.pts {
            let out = self.timestamp(pts);
            pes::write_timestamp(&mut payload[9..14], out);
            if let Some((_, pcr_out)) = self.last {
                let ahead = pts_diff(out, pcr_out / 300).max(0) as u64;
                self.lead = self.lead.max(ahead);
            }
        }
        if let Some(dts) = header.dts {
            pes::write_timestamp(&mut payload[14..19], self.timestamp(dts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::pcr_field;
    use crate::tests::Mux;

    fn pcrs_and_pts(ts: &[u8]) -> (Vec<u64>, Vec<u64>) {
        let mut pcrs = Vec::new();
        let mut ptss = Vec::new();
        for p in crate::packets(ts) {
            let h = Header::parse(p);
            if h.has_af && p[4] >= 7 && p[5] & 0x10 != 0 {
                pcrs.push(read_pcr(pcr_field(p)));
            }
            if let Some(pts) = crate::payload(p)
                .filter(|_| h.pusi)
                .and_then(pes::parse_header)
                .and_then(|h| h.pts)
            {
                ptss.push(pts);
            }
        }
        (pcrs, ptss)
    }

    #[test]
    fn twice_as_fast_halves_every_distance_and_goes_on_across_a_splice() {
        let mut mux = Mux::new();
        // A PES every 40 ms with its PCR 700 ms before its PTS.
        let stream = |mux: &mut Mux, from: u64| -> Vec<u8> {
            (0..10u64)
                .flat_map(|i| {
                    let pts = from + i * 3600;
                    mux.pes(0x100, pts, i == 0, Some((pts - 63_000) * 300), 100)
                })
                .collect()
        };
        let mut one = stream(&mut mux, 100_000);
        let mut two = stream(&mut mux, 5_000_000);
        let mut r = Restamper::new(2.0);
        r.segment(false);
        r.rewrite(&mut one);
        r.segment(true);
        r.rewrite(&mut two);
        let (pcrs, ptss) = pcrs_and_pts(&[one, two].concat());
        let step = |v: &[u64]| {
            v.windows(2)
                .map(|w| w[1] as i64 - w[0] as i64)
                .collect::<Vec<_>>()
        };
        // 40 ms becomes 20 ms: 540,000 → 270,000 (27 MHz), 3600 → 1800.
        assert!(step(&pcrs[..10]).iter().all(|&d| d == 540_000), "{pcrs:?}");
        assert!(step(&ptss[..10]).iter().all(|&d| d == 1800), "{ptss:?}");
        // The PTS lead over the PCR halves too: 700 ms → 350 ms.
        assert_eq!(ptss[0] * 300 - pcrs[0], 31_500 * 300);
        // The second time base starts after the first's last PTS.
        assert!(ptss[10] > ptss[9]);
        assert_eq!(pcrs[10] - pcrs[9], (31_500 + 3600) * 300);
        assert_eq!(ptss[10] * 300 - pcrs[10], 31_500 * 300);
    }
}
