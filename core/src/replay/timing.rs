//! The playout's timing thread: each segment read from the store is
//! spliced, restamped, stuffed (`cbr`), timed and queued to the sending
//! thread here, at a real-time priority just below the sender's.
//!
//! On a busy machine (fifty playouts on two cores) ordinary threads wait
//! behind real-time ones for seconds; a feeder among them would leave its
//! sender nothing to send. Below the senders, its work on a whole
//! segment never holds a core that one of them is due on. Only the reads stay on the async runtime, a
//! segment ahead, which is seconds of slack rather than the sender's
//! queue's one.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use hlsvault_send::{Batch, Sender};
use hlsvault_ts::join::{JoinSettings, Joiner};
use tokio::sync::mpsc;

use super::{Replay, ReplayFigures};

/// TS packets in a UDP datagram.
const PACKETS_PER_DATAGRAM: usize = 7;
/// A segment's datagrams go to the sender in batches of this many (about
/// a thousand TS packets).
const BATCH_DATAGRAMS: usize = 150;

/// A segment read from the store, in playout order.
#[derive(Debug)]
pub struct Fetched {
    pub bytes: Bytes,
    /// It does not go on from the one before (a discontinuity, a skipped
    /// segment, a loop wrap).
    pub splice: bool,
    /// When its program date-time says it is due on the wall clock
    /// (following), or None to keep the stream's own clock.
    pub due_at: Option<SystemTime>,
}

/// Read buffers whose datagrams have all been sent, for the next reads:
/// a fresh 15 MB buffer a segment is page faults the kernel zeroes.
#[derive(Debug, Default)]
pub struct Buffers(Mutex<Vec<Vec<u8>>>);

/// Buffers kept at most (as many as segments are held: sending, timed,
/// read).
const KEPT_BUFFERS: usize = 3;

impl Buffers {
    /// A buffer to read into (empty if none is free).
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| b.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn give(&self, buffer: Vec<u8>) {
        if let Ok(mut b) = self.0.lock() {
            if b.len() < KEPT_BUFFERS {
                b.push(buffer);
            }
        }
    }
}

/// Starts the thread: segments go in by the returned channel; it ends
/// when that closes (sending the last datagram) or the sender stops, and
/// returns the sender's verdict. Each segment's buffer goes back to
/// `buffers` once its datagrams are sent.
pub fn start(
    sender: Sender,
    replay: &Replay,
    figures: Arc<ReplayFigures>,
    buffers: Arc<Buffers>,
) -> io::Result<(mpsc::Sender<Fetched>, JoinHandle<io::Result<()>>)> {
    let settings = JoinSettings {
        rate: replay.rate,
        cbr: replay.cbr,
        per_datagram: PACKETS_PER_DATAGRAM,
    };
    // One segment waits here while the thread times the one before.
    let (tx, rx) = mpsc::channel(1);
    let thread = std::thread::Builder::new()
        .name("playout timing".into())
        .spawn(move || {
            hlsvault_send::feeding_priority();
            let mut timing = Timing {
                joiner: Joiner::new(settings),
                figures,
                timed: VecDeque::new(),
                buffers,
            };
            // A send that fails means the sender stopped: its verdict
            // says why.
            let _ = timing.run(rx, &sender);
            sender.finish()
        })?;
    Ok((tx, thread))
}

struct Timing {
    joiner: Joiner,
    figures: Arc<ReplayFigures>,
    /// The segments timed, oldest first, until their datagrams are sent.
    timed: VecDeque<Bytes>,
    buffers: Arc<Buffers>,
}

impl Timing {
    fn run(
        &mut self,
        mut rx: mpsc::Receiver<Fetched>,
        sender: &Sender,
    ) -> Result<(), hlsvault_send::Stopped> {
        // Buffers go back before the next segment is taken, which is
        // when the next read starts.
        while let Some(segment) = {
            self.recycle();
            rx.blocking_recv()
        } {
            self.segment(segment, sender)?;
        }
        sender.send(Batch {
            datagrams: self.joiner.finish(),
            due_at: None,
        })
    }

    fn segment(&mut self, segment: Fetched, sender: &Sender) -> Result<(), hlsvault_send::Stopped> {
        // Rewritten in place: the read's buffer is the datagrams'.
        let joined = self
            .joiner
            .push(BytesMut::from(segment.bytes), segment.splice);
        self.figures
            .stuffed
            .store(self.joiner.nulls_added(), Relaxed);
        // Following: the segment's program date-time is its first
        // frame's, which arrived ahead of it by the mux's presentation
        // lead.
        let mut due_at = segment.due_at.map(|t| {
            let lead = hlsvault_ts::pace::presentation_lead(&joined.segment).unwrap_or_default();
            t.checked_sub(lead).unwrap_or(t)
        });
        self.timed.push_back(joined.segment);
        let mut datagrams = joined.datagrams.into_iter();
        loop {
            let batch: Vec<_> = datagrams.by_ref().take(BATCH_DATAGRAMS).collect();
            if batch.is_empty() && due_at.is_none() {
                return Ok(());
            }
            sender.send(Batch {
                datagrams: batch,
                due_at: due_at.take(),
            })?;
        }
    }

    /// Gives back the buffers of the oldest segments, once nothing else
    /// holds them (their last datagram has been sent).
    fn recycle(&mut self) {
        while let Some(oldest) = self.timed.pop_front() {
            match oldest.try_into_mut() {
                Ok(mut buffer) => {
                    buffer.clear();
                    self.buffers.give(buffer.into());
                }
                Err(held) => {
                    self.timed.push_front(held);
                    return;
                }
            }
        }
    }
}
