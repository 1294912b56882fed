//! What a playout counts besides its sender's figures: the archive side.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use hlsvault_send::{SendFigures, SendSnapshot};

/// A playout's counters, shared with whoever reports them.
#[derive(Debug, Default)]
pub struct ReplayFigures {
    pub(super) segments: AtomicU64,
    pub(super) splices: AtomicU64,
    pub(super) skipped: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) stalls: AtomicU64,
    pub(super) stalled: AtomicBool,
    pub(super) passes: AtomicU64,
    pub(super) stuffed: AtomicU64,
    pub(super) send: std::sync::OnceLock<Arc<SendFigures>>,
}

impl ReplayFigures {
    /// The counters now.
    pub fn snapshot(&self) -> ReplaySnapshot {
        ReplaySnapshot {
            segments: self.segments.load(Relaxed),
            splices: self.splices.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            retries: self.retries.load(Relaxed),
            stalls: self.stalls.load(Relaxed),
            stalled: self.stalled.load(Relaxed),
            passes: self.passes.load(Relaxed),
            stuffed: self.stuffed.load(Relaxed),
            send: self.send.get().map(|s| s.snapshot()).unwrap_or_default(),
        }
    }
}

/// A playout's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ReplaySnapshot {
    /// Segments sent.
    pub segments: u64,
    /// Joins where the stream does not go on (a discontinuity, a
    /// skipped segment, a loop's wrap), each sent as a clean splice.
    pub splices: u64,
    /// Segments that could not be read after their retries.
    pub skipped: u64,
    /// Reads tried again.
    pub retries: u64,
    /// Times following the archive found nothing new when it was due.
    pub stalls: u64,
    /// Waiting for the archive now.
    pub stalled: bool,
    /// Passes over the range begun (a loop's count).
    pub passes: u64,
    /// Null packets put back (`cbr`).
    pub stuffed: u64,
    /// The sender's.
    pub send: SendSnapshot,
}

impl std::fmt::Display for ReplaySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} segments, {} splices, {} skipped, {} retries, {} stalls, {} nulls put back; {}",
            self.segments,
            self.splices,
            self.skipped,
            self.retries,
            self.stalls,
            self.stuffed,
            self.send
        )
    }
}
