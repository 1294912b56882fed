//! What the server's clips did: how many stream now, what they sent, and
//! how each ended. A clip whose client goes away is dropped with its
//! stream: the fetches ahead stop with it, and it counts as aborted.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// Clip counters, shared by the handlers that stream clips and `/metrics`.
#[derive(Debug, Default)]
pub struct ExportFigures {
    active: AtomicU64,
    bytes: AtomicU64,
    completed: AtomicU64,
    aborted: AtomicU64,
    failed: AtomicU64,
}

/// [`ExportFigures`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSnapshot {
    /// Clips streaming now.
    pub active: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Clips sent whole.
    pub completed: u64,
    /// Clips whose client went away before the end.
    pub aborted: u64,
    /// Clips the store failed (a segment gone or unreadable).
    pub failed: u64,
}

impl ExportFigures {
    pub fn snapshot(&self) -> ExportSnapshot {
        let read = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ExportSnapshot {
            active: read(&self.active),
            bytes: read(&self.bytes),
            completed: read(&self.completed),
            aborted: read(&self.aborted),
            failed: read(&self.failed),
        }
    }

    /// `clip`, `len` bytes long if known, counted as it streams and as it
    /// ends. It is complete at its end, or once `len` bytes are out: a
    /// server that announced the length stops reading there.
    pub fn counted<E>(
        self: &Arc<Self>,
        clip: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
        len: Option<u64>,
    ) -> Counted<E> {
        self.active.fetch_add(1, Ordering::Relaxed);
        Counted {
            clip: Box::pin(clip),
            figures: self.clone(),
            left: len.unwrap_or(u64::MAX),
            ended: false,
        }
    }
}

/// A clip's stream, counted (see [`ExportFigures::counted`]).
pub struct Counted<E> {
    clip: Pin<Box<dyn Stream<Item = Result<Bytes, E>> + Send>>,
    figures: Arc<ExportFigures>,
    /// Bytes still to send.
    left: u64,
    ended: bool,
}

impl<E> Stream for Counted<E> {
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.clip.as_mut().poll_next(cx);
        let sent = match &next {
            Poll::Ready(Some(Ok(bytes))) => bytes.len() as u64,
            _ => 0,
        };
        self.left = self.left.saturating_sub(sent);
        let figures = &self.figures;
        figures.bytes.fetch_add(sent, Ordering::Relaxed);
        let ended = match &next {
            Poll::Ready(Some(Ok(_))) if self.left == 0 => Some(&figures.completed),
            Poll::Ready(Some(Ok(_))) => None,
            Poll::Ready(Some(Err(_))) => Some(&figures.failed),
            Poll::Ready(None) => Some(&figures.completed),
            Poll::Pending => None,
        };
        if let Some(outcome) = ended {
            if !self.ended {
                outcome.fetch_add(1, Ordering::Relaxed);
                self.figures.active.fetch_sub(1, Ordering::Relaxed);
                self.ended = true;
            }
        }
        next
    }
}

impl<E> Drop for Counted<E> {
    fn drop(&mut self) {
        if !self.ended {
            self.figures.aborted.fetch_add(1, Ordering::Relaxed);
            self.figures.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
