//! The figures log: every stream's bit rate sampled, and its figures
//! logged, at an interval while a run goes on.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::figures::{Figures, Snapshot, StreamStats};

/// How often the bit rate is sampled (for the metrics and the status page).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Samples every stream's bit rate and logs its figures each `interval`,
/// until `done` closes.
pub(super) fn watch_figures(figures: &Figures, interval: Duration, done: Receiver<()>) {
    // Per stream: its counters and their snapshot at the last line (a
    // restarted stream has new counters, and starts from zero).
    let mut last: HashMap<String, (Arc<StreamStats>, Snapshot)> = HashMap::new();
    let mut at = Instant::now();
    let tick = interval.min(SAMPLE_EVERY);
    figures
        .streams()
        .iter()
        .for_each(|s| s.stats.sample_bitrate());
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(tick) {
        let streams = figures.streams();
        streams.iter().for_each(|s| s.stats.sample_bitrate());
        if at.elapsed() < interval.saturating_sub(tick / 2) {
            continue;
        }
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        let mut now_last = HashMap::new();
        for s in streams {
            let now = s.stats.snapshot();
            let was = match last.remove(&s.name) {
                Some((stats, snap)) if Arc::ptr_eq(&stats, &s.stats) => snap,
                _ => Snapshot::default(),
            };
            tracing::info!(stream = %s.name, "{}", now.live_line(&was, secs));
            now_last.insert(s.name, (s.stats, now));
        }
        last = now_last;
        for (name, p) in figures.plugins() {
            tracing::info!(plugin = %name, "{}", p.snapshot());
        }
    }
}
