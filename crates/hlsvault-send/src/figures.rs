//! What a sender counts, readable while it runs: for the log every
//! `stats_interval`, `/metrics` and the status page.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Jitter is counted in steps of this many microseconds…
const STEP_US: u64 = 10;
/// …up to this many steps; beyond, in the last.
const STEPS: usize = 1000;

/// A send later than this after its time is a late send.
pub const LATE: Duration = Duration::from_millis(1);

/// A sender's counters (shared with its thread).
#[derive(Debug)]
pub struct SendFigures {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    late: AtomicU64,
    rebased: AtomicU64,
    underruns: AtomicU64,
    jitter_max_ns: AtomicU64,
    /// Sends by how late they left, in steps of [`STEP_US`].
    jitter: Box<[AtomicU64]>,
}

impl Default for SendFigures {
    fn default() -> Self {
        SendFigures {
            datagrams: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            late: AtomicU64::new(0),
            rebased: AtomicU64::new(0),
            underruns: AtomicU64::new(0),
            jitter_max_ns: AtomicU64::new(0),
            jitter: (0..STEPS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl SendFigures {
    /// A datagram of `bytes` sent `lateness` after its time.
    pub(crate) fn sent(&self, bytes: usize, lateness: Duration) {
        self.datagrams.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        if lateness > LATE {
            self.late.fetch_add(1, Relaxed);
        }
        let ns = lateness.as_nanos().min(u64::MAX as u128) as u64;
        self.jitter_max_ns.fetch_max(ns, Relaxed);
        let step = ((ns / 1000 / STEP_US) as usize).min(STEPS - 1);
        self.jitter[step].fetch_add(1, Relaxed);
    }

    /// The schedule was moved on: the sender was too late to catch up.
    pub(crate) fn rebased(&self) {
        self.rebased.fetch_add(1, Relaxed);
    }

    /// A datagram was due and none was there to send.
    pub(crate) fn underrun(&self) {
        self.underruns.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> SendSnapshot {
        SendSnapshot {
            datagrams: self.datagrams.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            late: self.late.load(Relaxed),
            rebased: self.rebased.load(Relaxed),
            underruns: self.underruns.load(Relaxed),
            jitter_max: Duration::from_nanos(self.jitter_max_ns.load(Relaxed)),
            jitter: self.jitter.iter().map(|c| c.load(Relaxed)).collect(),
        }
    }
}

/// A sender's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSnapshot {
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams that left more than [`LATE`] after their time.
    pub late: u64,
    /// Times the sender was so late it moved its schedule on instead of
    /// catching up.
    pub rebased: u64,
    /// Times a datagram was due and the reader had none ready.
    pub underruns: u64,
    /// The latest send since the start.
    pub jitter_max: Duration,
    jitter: Vec<u64>,
}

impl SendSnapshot {
    /// How late the sends left at quantile `q` (0.5, 0.99), to 10 µs
    /// (the step's upper bound); zero before the first send.
    ///
    /// ```
    /// let figures = hlsvault_send::SendFigures::default();
    /// assert_eq!(figures.snapshot().jitter(0.99), std::time::Duration::ZERO);
    /// ```
    pub fn jitter(&self, q: f64) -> Duration {
        let total: u64 = self.jitter.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (step, &n) in self.jitter.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_micros((step as u64 + 1) * STEP_US).min(self.jitter_max);
            }
        }
        self.jitter_max
    }

    /// What happened between `earlier` and this one (the maximum stays
    /// the whole run's).
    pub fn since(&self, earlier: &SendSnapshot) -> SendSnapshot {
        SendSnapshot {
            datagrams: self.datagrams - earlier.datagrams,
            bytes: self.bytes - earlier.bytes,
            late: self.late - earlier.late,
            rebased: self.rebased - earlier.rebased,
            underruns: self.underruns - earlier.underruns,
            jitter_max: self.jitter_max,
            jitter: self
                .jitter
                .iter()
                .zip(earlier.jitter.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| a - b)
                .collect(),
        }
    }
}

impl std::fmt::Display for SendSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |d: Duration| d.as_micros();
        write!(
            f,
            "{} datagrams, {} bytes, jitter p50 {} µs p99 {} µs max {} µs, {} late, {} rebased, {} underruns",
            self.datagrams,
            self.bytes,
            us(self.jitter(0.5)),
            us(self.jitter(0.99)),
            us(self.jitter_max),
            self.late,
            self.rebased,
            self.underruns
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_steps_and_never_pass_the_maximum() {
        let f = SendFigures::default();
        for _ in 0..98 {
            f.sent(1316, Duration::from_micros(3));
        }
        f.sent(1316, Duration::from_micros(455));
        f.sent(1316, Duration::from_millis(2));
        let s = f.snapshot();
        assert_eq!(s.jitter(0.5), Duration::from_micros(10));
        assert_eq!(s.jitter(0.99), Duration::from_micros(460));
        assert_eq!(s.jitter(1.0), Duration::from_millis(2));
        assert_eq!((s.datagrams, s.bytes, s.late), (100, 131_600, 1));
        let later = {
            f.sent(1316, Duration::from_micros(50));
            f.snapshot()
        };
        let d = later.since(&s);
        assert_eq!((d.datagrams, d.jitter(0.5)), (1, Duration::from_micros(60)));
    }
}
