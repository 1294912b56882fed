//! How a received stream keeps to its PCR: each PCR's arrival against
//! where the PCR says it belongs, and the continuity errors a receiver
//! sees. Fed datagram by datagram (a live capture at 1 Gbit/s keeps none
//! of its payload), by the replay tests and by `pcrjitter`.

use hlsvault_ts::clock::{pcr_field, read_pcr};
use hlsvault_ts::{packets, Analyzer, Header};

/// One destination's arrivals.
pub struct Arrivals {
    pcr_pid: Option<u16>,
    /// Per run of the timeline (a run ends at a discontinuity indicator):
    /// arrival minus PCR time, ms, per PCR.
    runs: Vec<Vec<f64>>,
    analyzer: Analyzer,
    /// Datagrams and TS bytes seen.
    pub datagrams: u64,
    pub bytes: u64,
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals {
            pcr_pid: None,
            runs: vec![Vec::new()],
            analyzer: Analyzer::new(),
            datagrams: 0,
            bytes: 0,
        }
    }
}

impl Arrivals {
    /// A datagram's TS, arrived at `at_ns` (any epoch).
    pub fn push(&mut self, at_ns: i128, ts: &[u8]) {
        self.datagrams += 1;
        self.bytes += ts.len() as u64;
        for p in packets(ts) {
            self.analyzer.inspect(p);
            let h = Header::parse(p);
            if !h.has_af
                || p[4] < 7
                || p[5] & 0x10 == 0
                || *self.pcr_pid.get_or_insert(h.pid) != h.pid
            {
                continue;
            }
            if p[5] & 0x80 != 0 {
                self.runs.push(Vec::new());
            }
            let pcr = read_pcr(pcr_field(p));
            let offset = at_ns as f64 / 1e6 - pcr as f64 / 27_000.0;
            self.runs.last_mut().unwrap().push(offset);
        }
    }

    /// How far each PCR arrived from where its run's median puts it, ms,
    /// sorted.
    pub fn deviations(&self) -> Vec<f64> {
        let mut all: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| !r.is_empty())
            .flat_map(|run| {
                let mut sorted = run.clone();
                sorted.sort_by(f64::total_cmp);
                let median = sorted[sorted.len() / 2];
                run.iter().map(move |o| (o - median).abs())
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all
    }

    /// Continuity errors a receiver sees.
    pub fn cc_errors(&self) -> u64 {
        self.analyzer.counters().cc_errors
    }
}

/// The `q` quantile of `sorted` (0 when empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => sorted[((n as f64 * q) as usize).min(n - 1)],
    }
}
