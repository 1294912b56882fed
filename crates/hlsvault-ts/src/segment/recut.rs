//! A growing segment that a crash left on disk, cut again.

use std::time::{Duration, SystemTime};

use super::{CutPolicy, Segment, SegmentCutter};
use crate::program::{ProgramChoice, Selection};
use crate::PACKET_SIZE;

/// The segments in `bytes`, the part of a growing segment that reached the
/// disk before a crash (see [`SegmentCutter::drain_settled`]), whose first
/// frame was shown at `start`, of a stream whose timed program is `program`.
///
/// The bytes are cut again as a stream of their own, so that the result
/// is what a segment must be: it starts at its keyframe, its last units,
/// which the crash may have torn, are dropped, and its duration is measured
/// from its PTS. Nothing else is dropped: the bytes were already filtered.
/// A segment that had no keyframe (cut by the hard cap) gives nothing.
///
/// ```
/// use std::time::SystemTime;
/// use hlsvault_ts::segment::recut;
/// let nothing = recut(&[0x47; 188 * 3], SystemTime::UNIX_EPOCH, Default::default());
/// assert!(nothing.is_empty());
/// ```
pub fn recut(bytes: &[u8], start: SystemTime, program: ProgramChoice) -> Vec<Segment> {
    // Only the hour and the end of the bytes may cut.
    let whole = Duration::from_secs(1 << 32);
    let mut cutter = SegmentCutter::new(CutPolicy {
        target: whole,
        max: whole,
        recovery: true,
        selection: Selection {
            program,
            whole_multiplex: true,
            keep_nulls: true,
        },
        gap: whole,
        cut_at_splice: false,
        aligned: false,
    });
    let packets = bytes.len() / PACKET_SIZE * PACKET_SIZE;
    cutter.push_datagram(&bytes[..packets], start, false);
    cutter.finish();
    let mut segments: Vec<Segment> = cutter.take_ready().collect();
    // The cutter placed the first frame by the PCR; it was shown at `start`.
    let shift = segments.first().map(|s| (s.start, start));
    for s in &mut segments {
        if let Some((was, is)) = shift {
            s.start = match s.start.duration_since(was) {
                Ok(after) => is + after,
                Err(_) => is,
            };
        }
    }
    segments
}
