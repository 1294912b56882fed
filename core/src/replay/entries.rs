//! Which segments a playout sends, in order: a range's (once, or looped),
//! or the archive followed as it grows, a fixed delay behind its live
//! edge.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, BoxStream, StreamExt};
use hlsvault_hls::{Entry, Layout};
use hlsvault_store::ObjectStore;

use super::figures::ReplayFigures;
use super::ReplayError;
use crate::export::{nearest_recorded, range_playlist, ExportError};

/// How far past the delayed position a poll looks for segments.
const LOOKAHEAD: Duration = Duration::from_secs(60);
/// How often following polls the archive while nothing new is there.
const POLL: Duration = Duration::from_millis(500);
/// Following counts a stall when the next segment is this late.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// A segment to send.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its key in the store.
    pub key: String,
    /// It does not go on from the segment before it (a discontinuity in
    /// the archive, a gap, a loop's wrap).
    pub discontinuity: bool,
    /// When it must leave on the wall clock (following), if it must.
    pub due_at: Option<SystemTime>,
}

/// The segments that hold `[start, end)`, `passes` times over (None:
/// until stopped); an error naming what is recorded nearest when the
/// range holds nothing.
pub async fn range(
    store: &dyn ObjectStore,
    stream: &str,
    [start, end]: [SystemTime; 2],
    passes: Option<u64>,
    figures: Arc<ReplayFigures>,
) -> Result<BoxStream<'static, Result<Planned, ReplayError>>, ReplayError> {
    let layout = Layout::new(stream);
    let Some(playlist) = range_playlist(store, &layout, start, end).await? else {
        return Err(ReplayError::Nothing(ExportError::Nothing {
            stream: stream.to_string(),
            start,
            end,
            nearest: nearest_recorded(store, &layout, start, end).await?,
        }));
    };
    let once: Vec<Planned> = playlist
        .entries()
        .map(|e| Planned {
            key: format!("{stream}/{}", e.uri),
            discontinuity: e.discontinuity,
            due_at: None,
        })
        .collect();
    let passes = passes.unwrap_or(u64::MAX);
    Ok(stream::iter(0..passes)
        .flat_map(move |pass| {
            figures.passes.fetch_add(1, Relaxed);
            let mut entries = once.clone();
            entries[0].discontinuity = pass > 0;
            stream::iter(entries.into_iter().map(Ok))
        })
        .boxed())
}

/// The archive of `stream` from `delay` ago on, each segment due `delay`
/// after it was recorded; polled for new segments as it grows.
pub fn follow(
    store: Arc<dyn ObjectStore>,
    stream: &str,
    delay: Duration,
    figures: Arc<ReplayFigures>,
) -> BoxStream<'static, Result<Planned, ReplayError>> {
    let state = Follow {
        store,
        layout: Layout::new(stream),
        stream: stream.to_string(),
        delay,
        figures,
        last: None,
        found: VecDeque::new(),
        behind: false,
        store_down: false,
    };
    stream::unfold(state, |mut s| async move {
        let next = s.next().await;
        Some((next, s))
    })
    .boxed()
}

struct Follow {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    stream: String,
    delay: Duration,
    figures: Arc<ReplayFigures>,
    /// The last segment handed out.
    last: Option<Entry>,
    /// Segments found after it, not handed out yet.
    found: VecDeque<Entry>,
    /// A segment was skipped for being past due: the next is a splice.
    behind: bool,
    /// The last poll failed.
    store_down: bool,
}

impl Follow {
    /// Where the delayed playout is now.
    fn position(&self) -> SystemTime {
        SystemTime::now()
            .checked_sub(self.delay)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    async fn next(&mut self) -> Result<Planned, ReplayError> {
        loop {
            while let Some(e) = self.found.pop_front() {
                // Wholly past due (the playout fell behind): skipped, so
                // the delay holds.
                if e.end() < self.position() && !self.found.is_empty() {
                    tracing::warn!(stream = %self.stream, uri = %e.uri, "the playout is behind its delay; a segment is skipped to keep it");
                    self.figures.skipped.fetch_add(1, Relaxed);
                    self.behind = true;
                    continue;
                }
                let planned = Planned {
                    key: format!("{}/{}", self.stream, e.uri),
                    discontinuity: std::mem::take(&mut self.behind) || e.discontinuity,
                    due_at: e.start.checked_add(self.delay),
                };
                self.last = Some(e);
                return Ok(planned);
            }
            self.poll().await;
        }
    }

    /// Reads what the archive holds after the last segment; waits a
    /// little when that is nothing yet, or the store does not answer (a
    /// stall, not the playout's end).
    async fn poll(&mut self) {
        let position = self.position();
        let (from, to) = match &self.last {
            // From the last segment, so that the first after it is marked
            // as the archive marks it.
            Some(l) => (l.start, l.end().max(position) + LOOKAHEAD),
            None => (position, position + LOOKAHEAD),
        };
        let read = range_playlist(self.store.as_ref(), &self.layout, from, to).await;
        let found: Vec<Entry> = match read {
            Err(e) => {
                self.figures.retries.fetch_add(1, Relaxed);
                if !std::mem::replace(&mut self.store_down, true) {
                    tracing::warn!(stream = %self.stream, error = %e, "the store does not answer; the playout waits for it");
                }
                Vec::new()
            }
            Ok(p) => {
                if std::mem::take(&mut self.store_down) {
                    tracing::info!(stream = %self.stream, "the store answers again");
                }
                p.map(|p| p.entries().cloned().collect())
                    .unwrap_or_default()
            }
        };
        // The first segment is the first that starts at or after the
        // delayed position: it leaves on time, where the one holding the
        // position would leave up to a segment late.
        let new = found.into_iter().filter(|e| match &self.last {
            Some(l) => e.start > l.start,
            None => e.start >= position,
        });
        self.found.extend(new);
        if !self.found.is_empty() {
            if self.figures.stalled.swap(false, Relaxed) {
                tracing::info!(stream = %self.stream, "the archive goes on; the playout follows it again");
            }
            return;
        }
        let expected = self.last.as_ref().map_or(position, Entry::end);
        if position > expected + STALL_GRACE && !self.figures.stalled.swap(true, Relaxed) {
            self.figures.stalls.fetch_add(1, Relaxed);
            tracing::warn!(
                stream = %self.stream,
                "nothing archived after {}: the playout waits for the archive",
                humantime::format_rfc3339_millis(expected)
            );
        }
        // Near the live edge the next segment is stored once it ends: not
        // before the last one's length after the last one's end. Until
        // then a poll (two reads of a bucket) finds nothing.
        let stored = self.last.as_ref().and_then(|l| {
            let length = l.end().duration_since(l.start).ok()?;
            (l.end() + length).duration_since(SystemTime::now()).ok()
        });
        tokio::time::sleep(POLL.max(stored.unwrap_or_default())).await;
    }
}
