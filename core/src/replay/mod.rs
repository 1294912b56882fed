//! Replay: any archived range sent out again as UDP or RTP multicast, at
//! the pace its PCRs set, once, looped, or following the live archive a
//! fixed delay behind (timeshift).
//!
//! Segments are read from the store ahead of their turn (one ahead; each
//! read tried again on a store error); a thread at a real-time priority
//! just below the sender's (`timing.rs`) joins them by [`hlsvault_ts::splice::Splicer`] so that
//! continuity counters go on and every discontinuity, gap, skipped
//! segment and loop wrap is a clean splice (each segment opens with its
//! PAT and PMT; the first PCR after the join has the discontinuity
//! indicator), puts null packets back if asked (`cbr`), times them by
//! [`hlsvault_ts::pace::Pacer`] and queues
//! them to [`hlsvault_send::Sender`].

mod entries;
mod fetch;
mod figures;
mod timing;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use hlsvault_send::{Sender, SenderSettings, SocketError};
use hlsvault_store::{ObjectStore, StoreError};
use tokio::sync::mpsc;

pub use figures::{ReplayFigures, ReplaySnapshot};

use crate::export::ExportError;

/// Batches (of about a thousand TS packets) that wait for the sender at
/// most: its buffer (at 20 Mbit/s about 1.2 s), with the next segment
/// timed and the one after read beside it.
const QUEUED_BATCHES: usize = 16;

/// A playout.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The stream, as the config names it.
    pub stream: String,
    pub span: Span,
    /// Times a range is played (None: until stopped).
    pub passes: Option<u64>,
    /// Speed (2.0: twice as fast); other than 1, the PCR, PTS and DTS are
    /// restamped to it.
    pub rate: f64,
    /// Null packets put back to the PCR-derived rate (an archive that
    /// dropped a CBR multiplex's stuffing goes out at constant rate).
    pub cbr: bool,
    /// Where it goes and how.
    pub sender: SenderSettings,
    /// How often its figures are logged.
    pub stats_interval: Duration,
}

/// What a playout sends.
#[derive(Debug, Clone, Copy)]
pub enum Span {
    /// A range of the archive.
    Range { start: SystemTime, end: SystemTime },
    /// The archive from `delay` ago on, following it as it grows.
    Follow { delay: Duration },
}

/// Why a playout cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Nothing is archived in the range.
    #[error(transparent)]
    Nothing(ExportError),
    /// The destination cannot be sent to.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The store failed (reading playlists; segments are retried).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sending failed.
    #[error("sending to {to}: {source}")]
    Send { to: String, source: std::io::Error },
    /// No segment of the range could be read.
    #[error("no segment of the range could be read from the store")]
    NothingSent,
}

impl Replay {
    /// A stable RTP source id for a playout of `stream` to `to`.
    pub fn ssrc(stream: &str, to: &hlsvault_send::Destination) -> u32 {
        // FNV-1a: the same playout keeps its id across restarts.
        format!("{stream} {}", to.addr)
            .bytes()
            .fold(0x811c_9dc5u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            })
    }

    /// Plays until the span ends or `stop` resolves (then at a datagram
    /// boundary), counting in `figures`.
    pub async fn run(
        &self,
        store: Arc<dyn ObjectStore>,
        figures: Arc<ReplayFigures>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<ReplaySnapshot, ReplayError> {
        let segments = match self.span {
            Span::Range { start, end } => {
                entries::range(
                    store.as_ref(),
                    &self.stream,
                    [start, end],
                    self.passes,
                    figures.clone(),
                )
                .await?
            }
            Span::Follow { delay } => {
                entries::follow(store.clone(), &self.stream, delay, figures.clone())
            }
        };
        let sender = Sender::start(&SenderSettings {
            queue: QUEUED_BATCHES,
            ..self.sender.clone()
        })?;
        let _ = figures.send.set(sender.figures());
        let stopper = sender.stopper();
        let to = self.sender.destination.to_string();
        let buffers = Arc::new(timing::Buffers::default());
        let (segments_tx, timing) = timing::start(sender, self, figures.clone(), buffers.clone())
            .map_err(|e| SocketError {
            option: format!("to {to}"),
            reason: e.to_string(),
        })?;
        let logging = tokio::spawn(log_figures(
            self.stream.clone(),
            to.clone(),
            figures.clone(),
            self.stats_interval,
        ));
        let played = tokio::select! {
            played = play(store, segments, segments_tx, buffers, &figures) => played,
            () = stop => {
                stopper.stop();
                Ok(())
            }
        };
        logging.abort();
        let sent = tokio::task::spawn_blocking(move || {
            timing
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the timing thread panicked")))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        // A socket that failed stops the reader too: its error is the one
        // to tell.
        sent.map_err(|source| ReplayError::Send { to, source })?;
        played?;
        Ok(figures.snapshot())
    }
}

/// Reads each segment and hands it to the timing thread: one segment
/// ahead, read once the thread has taken the one before, so that three
/// read buffers (one sending, one timed, one read) go round and a
/// playout faults in no fresh memory after its first three segments.
async fn play(
    store: Arc<dyn ObjectStore>,
    mut segments: futures_util::stream::BoxStream<'static, Result<entries::Planned, ReplayError>>,
    timing: mpsc::Sender<timing::Fetched>,
    buffers: Arc<timing::Buffers>,
    figures: &Arc<ReplayFigures>,
) -> Result<(), ReplayError> {
    let mut broken = false;
    let mut sent_any = false;
    loop {
        let Ok(slot) = timing.reserve().await else {
            // The sender stopped: its verdict is the one to tell.
            return Ok(());
        };
        let Some(planned) = segments.next().await else {
            break;
        };
        let planned = planned?;
        let read = fetch::segment(store.as_ref(), &planned.key, figures, buffers.take()).await;
        let bytes = match read {
            Ok(b) => b,
            Err(reason) => {
                tracing::warn!(key = %planned.key, %reason, "a segment cannot be read; the playout splices past it");
                figures.skipped.fetch_add(1, Relaxed);
                broken = true;
                continue;
            }
        };
        let splice = sent_any && (planned.discontinuity || std::mem::take(&mut broken));
        if splice {
            figures.splices.fetch_add(1, Relaxed);
        }
        slot.send(timing::Fetched {
            bytes,
            splice,
            due_at: planned.due_at,
        });
        figures.segments.fetch_add(1, Relaxed);
        sent_any = true;
    }
    if !sent_any {
        return Err(ReplayError::NothingSent);
    }
    Ok(())
}

/// Logs a playout's figures every `interval`: what happened in it.
async fn log_figures(stream: String, to: String, figures: Arc<ReplayFigures>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    let mut before = figures.snapshot();
    loop {
        ticks.tick().await;
        let now = figures.snapshot();
        let send = now.send.since(&before.send);
        tracing::info!(
            %stream,
            %to,
            segments = now.segments - before.segments,
            splices = now.splices - before.splices,
            skipped = now.skipped - before.skipped,
            stalled = now.stalled,
            "playout: {send}"
        );
        before = now;
    }
}
