//! SCTE-35 markers on the stream's timeline: each waits for the segment
//! its splice time falls in, and asks for a cut at the keyframe there
//! (encoders place one at a splice point) so that a break's edges fall on
//! segment boundaries.

use std::time::SystemTime;

use crate::clock::pts_diff;
use crate::scte35::Marker;

/// A marker and when its splice happens on the wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub marker: Marker,
    pub at: SystemTime,
}

/// Markers kept waiting at most: a stream that announces splices and
/// never reaches them (a PTS far off) cannot grow this without bound.
const MAX_WAITING: usize = 64;

/// Markers waiting for their segment.
#[derive(Debug, Default)]
pub(super) struct SplicePoints {
    /// Each with its splice time on the extended PTS timeline; None for
    /// an immediate one, which happens at the next access unit.
    waiting: Vec<(Option<i64>, Marker)>,
}

impl SplicePoints {
    /// A marker read while the latest access unit was at `now` (extended
    /// PTS; None before the first). Its PTS is placed on the timeline
    /// near `now` (a splice is announced seconds ahead, never half a
    /// wrap).
    pub(super) fn add(&mut self, marker: Marker, now: Option<i64>) {
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.remove(0);
        }
        let ext = marker.info.splice_pts().map(|pts| match now {
            Some(now) => now + pts_diff(pts, now.rem_euclid(1 << 33) as u64),
            None => pts as i64,
        });
        self.waiting.push((ext, marker));
    }

    /// An access unit starts at `ext`: immediate splices happen here.
    pub(super) fn access_unit(&mut self, ext: i64) {
        for (at, _) in &mut self.waiting {
            at.get_or_insert(ext);
        }
    }

    /// Whether a splice falls after `first` (the open segment's start)
    /// and at or before `ext`: a keyframe at `ext` starts the segment the
    /// splice opens.
    pub(super) fn due(&self, first: i64, ext: i64) -> bool {
        self.waiting
            .iter()
            .any(|(at, _)| at.is_some_and(|at| first < at && at <= ext))
    }

    /// The markers whose splice comes before `end`, in the order read
    /// (all of them with None: the timeline ends), each with its time
    /// (None: immediate, and no access unit came after it).
    pub(super) fn take_before(&mut self, end: Option<i64>) -> Vec<(Option<i64>, Marker)> {
        let mut taken = Vec::new();
        let mut kept = Vec::new();
        for (at, marker) in self.waiting.drain(..) {
            match (at, end) {
                (Some(at), Some(end)) if at >= end => kept.push((Some(at), marker)),
                (None, Some(_)) => kept.push((None, marker)),
                (at, _) => taken.push((at, marker)),
            }
        }
        self.waiting = kept;
        taken
    }
}
