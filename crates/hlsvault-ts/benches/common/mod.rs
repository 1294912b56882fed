//! What the benchmarks share: the engine's cutting settings for a 6 s
//! stream, and the capture clock they start from.

use std::time::{Duration, SystemTime};

use hlsvault_ts::segment::{CutPolicy, SegmentCutter};

/// A cutter as the engine makes one for 6 s segments.
pub fn cutter() -> SegmentCutter {
    SegmentCutter::new(CutPolicy {
        target: Duration::from_secs(6),
        max: Duration::from_secs(30),
        recovery: false,
        selection: Default::default(),
        gap: Duration::from_secs(1),
        cut_at_splice: true,
        aligned: false,
    })
}

/// Capture time of datagram `i`, at 20 Mbit/s from 09:55 UTC.
pub fn capture_time(i: usize) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(1_795_254_900)
        + Duration::from_micros(i as u64 * 526)
}
