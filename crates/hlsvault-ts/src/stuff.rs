//! Null packets put back: an archive that dropped a constant-rate
//! multiplex's stuffing replays at that constant rate again.
//!
//! A CBR multiplex sends the same number of bytes between any two PCRs
//! for the same PCR interval; dropping its null packets leaves fewer in
//! most intervals. The rate is the highest that two intervals between
//! PCRs agree on (intervals that had no stuffing to lose: a keyframe's;
//! one PCR off its time makes one interval alone look faster), taken
//! over each whole push before it is stuffed, so that the first segment
//! is stuffed to its own peak. Each interval gets null packets for what it lacks of
//! that rate, spread evenly among its packets (a fraction of a packet
//! carried to the next interval). The packets after the last PCR wait for
//! the next one; nothing is stuffed across a splice, a PCR jump or before
//! the first PCR.
//!
//! ```
//! use hlsvault_ts::stuff::Stuffer;
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
//! // PCRs 10 ms (900 ticks of 90 kHz) apart: 10 packets in the first two
//! // intervals (1.504 Mbit/s), 5 in the third (its nulls dropped).
//! let mut ts: Vec<u8> = Vec::new();
//! for (pcr, after) in [(0, 9), (900, 9), (1800, 4)] {
//!     ts.extend(packet(Some(pcr)));
//!     (0..after).for_each(|_| ts.extend(packet(None)));
//! }
//! ts.extend(packet(Some(2700)));
//! let mut stuffer = Stuffer::new();
//! let out: Vec<u8> = stuffer.push(ts.into(), false).concat();
//! // All three intervals now hold 10 packets; the last PCR's waits.
//! assert_eq!(out.len(), 30 * 188);
//! assert_eq!(stuffer.added(), 5);
//! assert_eq!(stuffer.bits_per_second(), 1_504_000);
//! ```

use bytes::Bytes;

use crate::clock::{pcr_forward, PcrTrack, PCR_HZ};
use crate::pace::MAX_PCR_STEP;
use crate::{packets, PACKET_SIZE, PID_NULL};

/// An interval shorter than this (1 ms) is not a measure of the rate.
const MIN_MEASURE: u64 = PCR_HZ / 1000;
/// The highest rate believed (a PCR that lies cannot ask for more).
const MAX_RATE: f64 = 1e9;
/// Rates of two intervals within this share of each other agree.
const AGREE: f64 = 0.001;

/// The highest rate that two intervals agree on (to 0.1%): a multiplex's
/// own rate shows in every interval that lost no stuffing, exactly,
/// where one PCR off its time (a glitch, a re-multiplexer's jitter) makes
/// one interval alone look faster. 0 if none agree.
fn confirmed_peak(mut rates: Vec<f64>) -> f64 {
    rates.retain(|r| r.is_finite() && *r <= MAX_RATE);
    rates.sort_by(|a, b| b.total_cmp(a));
    rates
        .windows(2)
        .find(|w| w[0] - w[1] <= w[0] * AGREE)
        .map_or(0.0, |w| w[1])
}

/// Null packets, to hand out slices of.
static NULLS: [u8; PACKET_SIZE * NULLS_AT_ONCE] = {
    let mut nulls = [0xFFu8; PACKET_SIZE * NULLS_AT_ONCE];
    let mut i = 0;
    while i < NULLS_AT_ONCE {
        nulls[i * PACKET_SIZE] = 0x47;
        nulls[i * PACKET_SIZE + 1] = (PID_NULL >> 8) as u8;
        nulls[i * PACKET_SIZE + 2] = PID_NULL as u8;
        nulls[i * PACKET_SIZE + 3] = 0x10;
        i += 1;
    }
    nulls
};

/// Null packets in one slice at most.
const NULLS_AT_ONCE: usize = 64;

/// Puts null packets back to the PCR-derived rate.
#[derive(Debug, Default)]
pub struct Stuffer {
    pcrs: PcrTrack,
    /// Bits per second: the highest between two PCRs so far.
    rate: f64,
    /// The last PCR and the packets from it on, not passed on yet.
    last_pcr: Option<u64>,
    held: Vec<Bytes>,
    /// The next PCR does not go on from the last.
    splice: bool,
    /// Null packets owed to the rate, as a fraction.
    owed: f64,
    added: u64,
}

/// One interval between two PCRs: its packets and PCR ticks.
struct Interval {
    packets: Vec<Bytes>,
    ticks: Option<u64>,
}

impl Stuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next whole packets of the stream, `splice` if they do not
    /// go on from the ones before; returns what can go out now, stuffed.
    pub fn push(&mut self, ts: Bytes, splice: bool) -> Vec<Bytes> {
        self.splice |= splice;
        let whole = packets(&ts).len() * PACKET_SIZE;
        // The intervals this push closes, each from one PCR to the next.
        let mut intervals = Vec::new();
        let mut from = 0;
        for (i, p) in packets(&ts).iter().enumerate() {
            let Some(pcr) = self.pcrs.pcr(p) else {
                continue;
            };
            let offset = i * PACKET_SIZE;
            let mut packets = std::mem::take(&mut self.held);
            packets.push(ts.slice(from..offset));
            let splice = std::mem::take(&mut self.splice);
            let ticks = self
                .last_pcr
                .map(|last| pcr_forward(pcr, last))
                .filter(|&t| !splice && t > 0 && t <= MAX_PCR_STEP);
            intervals.push(Interval { packets, ticks });
            self.last_pcr = Some(pcr);
            from = offset;
        }
        self.held.push(ts.slice(from..whole));
        let rates: Vec<f64> = intervals
            .iter()
            .filter_map(|i| {
                let ticks = i.ticks.filter(|&t| t >= MIN_MEASURE)?;
                Some(
                    Self::count(&i.packets) as f64 * (PACKET_SIZE * 8) as f64 * PCR_HZ as f64
                        / ticks as f64,
                )
            })
            .collect();
        self.rate = self.rate.max(confirmed_peak(rates));
        let mut out = Vec::new();
        for interval in intervals {
            self.stuff(interval, &mut out);
        }
        // Before the first PCR nothing is held: there is no rate to keep.
        if self.last_pcr.is_none() {
            out.append(&mut self.held);
        }
        out.retain(|b| !b.is_empty());
        out
    }

    /// The end of the stream: what waits, as it is.
    pub fn finish(&mut self) -> Vec<Bytes> {
        let mut out = std::mem::take(&mut self.held);
        out.retain(|b| !b.is_empty());
        out
    }

    /// The rate kept to, in bits per second (0 before two PCRs).
    pub fn bits_per_second(&self) -> u64 {
        self.rate.round() as u64
    }

    /// Null packets put in so far.
    pub fn added(&self) -> u64 {
        self.added
    }

    fn count(runs: &[Bytes]) -> usize {
        runs.iter().map(|r| r.len() / PACKET_SIZE).sum()
    }

    /// One interval out, with the null packets it lacks spread among its
    /// packets.
    fn stuff(&mut self, interval: Interval, out: &mut Vec<Bytes>) {
        let count = Self::count(&interval.packets);
        let Some(ticks) = interval.ticks.filter(|_| count > 0) else {
            // A splice or a jump: the interval is not a measure of time.
            out.extend(interval.packets);
            return;
        };
        let due = ticks as f64 * self.rate / (PCR_HZ as f64 * (PACKET_SIZE * 8) as f64);
        self.owed = (self.owed + due - count as f64).max(0.0);
        let nulls = self.owed.floor() as u64;
        self.owed -= nulls as f64;
        self.added += nulls;
        // After each packet, the nulls that are due by then.
        let per_packet = nulls as f64 / count as f64;
        let (mut given, mut done) = (0u64, 0usize);
        for run in interval.packets {
            let mut from = 0;
            for offset in (PACKET_SIZE..=run.len()).step_by(PACKET_SIZE) {
                done += 1;
                let due_now = (per_packet * done as f64).round() as u64;
                if due_now > given {
                    out.push(run.slice(from..offset));
                    from = offset;
                    push_nulls(due_now - given, out);
                    given = due_now;
                }
            }
            out.push(run.slice(from..));
        }
        push_nulls(nulls - given, out);
    }
}

/// `count` null packets, as slices of [`NULLS`].
fn push_nulls(mut count: u64, out: &mut Vec<Bytes>) {
    let most = (NULLS.len() / PACKET_SIZE) as u64;
    while count > 0 {
        let n = count.min(most);
        out.push(Bytes::from_static(&NULLS[..n as usize * PACKET_SIZE]));
        count -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` packets at `bits_per_second` with a PCR every `every`,
    /// without the packets for which `dropped` says so (keeping PCRs).
    fn stream(
        count: u64,
        every: u64,
        bits_per_second: u64,
        dropped: impl Fn(u64) -> bool,
    ) -> Vec<u8> {
        let ticks_per_packet = PACKET_SIZE as u64 * 8 * PCR_HZ / bits_per_second;
        let mut mux = crate::tests::Mux::new();
        (0..count)
            .filter(|&i| i % every == 0 || !dropped(i))
            .flat_map(|i| {
                if i % every == 0 {
                    mux.pcr_only(0x100, i * ticks_per_packet).to_vec()
                } else {
                    // Media on PID 0x101; the PCRs have 0x100 to themselves.
                    let mut p = [0xFFu8; PACKET_SIZE];
                    p[..4].copy_from_slice(&[0x47, 0x01, 0x01, 0x10]);
                    p.to_vec()
                }
            })
            .collect()
    }

    fn nulls_in(out: &[Bytes]) -> usize {
        out.iter()
            .flat_map(|b| packets(b))
            .filter(|p| crate::Header::parse(p).pid == PID_NULL)
            .count()
    }

    #[test]
    fn a_stream_with_its_nulls_dropped_gets_them_back_between_each_pcr() {
        // 2 Mbit/s, a PCR every 20 packets; every other interval lost its
        // last 8 packets (its stuffing), nine in all (the last, after the
        // last PCR, is whole).
        let full = stream(400, 20, 2_000_000, |_| false);
        let thinned = stream(400, 20, 2_000_000, |i| {
            (i / 20) % 2 == 1 && i % 20 >= 12 && i < 360
        });
        let mut stuffer = Stuffer::new();
        let mut out = stuffer.push(thinned.into(), false);
        out.extend(stuffer.finish());
        let bytes: usize = out.iter().map(Bytes::len).sum();
        assert_eq!(bytes, full.len(), "as many packets as the CBR stream had");
        assert_eq!(nulls_in(&out), 72);
        assert_eq!(stuffer.bits_per_second(), 2_000_000);
        // Between any two PCRs, 20 packets again.
        let all: Vec<u8> = out.concat();
        let pcr_at: Vec<usize> = packets(&all)
            .iter()
            .enumerate()
            .filter(|(_, p)| crate::Header::parse(p).pid == 0x100)
            .map(|(i, _)| i)
            .collect();
        assert!(pcr_at.windows(2).all(|w| w[1] - w[0] == 20), "{pcr_at:?}");
    }

    #[test]
    fn the_nulls_are_spread_among_the_interval_s_packets() {
        // Half of each second interval dropped: 10 packets get 10 nulls,
        // one after each.
        let thinned = stream(80, 20, 2_000_000, |i| (i / 20) == 1 && i % 2 == 1);
        let mut out = Stuffer::new().push(thinned.into(), false);
        out.retain(|b| !b.is_empty());
        let all: Vec<u8> = out.concat();
        let pids: Vec<u16> = packets(&all)
            .iter()
            .map(|p| crate::Header::parse(p).pid)
            .collect();
        let second = &pids[20..40];
        assert!(
            second
                .chunks(2)
                .all(|pair| pair[0] != PID_NULL && pair[1] == PID_NULL),
            "{second:?}"
        );
    }

    #[test]
    fn one_pcr_off_its_time_does_not_raise_the_rate() {
        // The PCR of packet 40 is 2 ms early: its interval looks 11%
        // faster, the next one slower.
        let mut ts = stream(100, 20, 2_000_000, |_| false);
        let early = crate::tests::Mux::new().pcr_only(0x100, 40 * 20_304 - 54_000);
        ts[40 * PACKET_SIZE..41 * PACKET_SIZE].copy_from_slice(&early);
        let mut stuffer = Stuffer::new();
        stuffer.push(ts.into(), false);
        assert_eq!(stuffer.bits_per_second(), 2_000_000);
        // The interval after it spans 2 ms more: what 2 ms takes at 2
        // Mbit/s (2.7 packets) goes in, the fraction carried.
        assert_eq!(stuffer.added(), 2);
    }

    #[test]
    fn a_rate_past_a_gigabit_or_seen_once_is_not_believed() {
        // Found by fuzzing: two intervals claiming 300 Gbit/s set the rate,
        // and the next long interval asked for billions of nulls.
        assert_eq!(confirmed_peak(vec![3e11, 3e11, 2e6, 5e6, 2e6]), 2e6);
        assert_eq!(confirmed_peak(vec![5e6, 2e6]), 0.0);
    }

    #[test]
    fn nothing_is_stuffed_across_a_splice() {
        let first = stream(60, 20, 2_000_000, |_| false);
        // The next segment's clock starts over (back at 0), thinned.
        let second = stream(40, 20, 2_000_000, |i| i % 20 >= 10);
        let mut stuffer = Stuffer::new();
        let mut out = stuffer.push(first.into(), false);
        out.extend(stuffer.push(second.into(), true));
        out.extend(stuffer.finish());
        // The interval across the splice is 20 packets long, as it was;
        // the thinned one after it is stuffed.
        assert_eq!(stuffer.added(), 10);
        assert_eq!(nulls_in(&out), 10);
    }

    #[test]
    fn packets_before_the_first_pcr_pass_at_once() {
        let ts: Vec<u8> = (0..3)
            .flat_map(|_| {
                let mut p = [0xFFu8; PACKET_SIZE];
                p[..4].copy_from_slice(&[0x47, 0x01, 0x00, 0x10]);
                p
            })
            .collect();
        let out = Stuffer::new().push(ts.clone().into(), false);
        assert_eq!(out.concat(), ts);
    }
}
