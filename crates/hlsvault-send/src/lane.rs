//! One destination's schedule: when each of its datagrams leaves, against
//! the monotonic clock, and its send. A pacing thread (`pacing.rs`) holds
//! many lanes and asks each in turn.
//!
//! A lane that falls behind (its feeder was slow, the machine busy)
//! catches up at most [`CATCH_UP`] times the stream's own rate, so a
//! receiver sees a steeper stream for a while rather than a line-rate
//! burst; one more than [`MAX_LATE`] behind moves its schedule on instead
//! (counted as rebased): the stream pauses, it does not rush.

use std::io::{self, IoSlice};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hlsvault_ts::pace::Timed;
use hlsvault_ts::rtp::RtpHeaders;
use tokio::sync::mpsc;

use crate::{Batch, SendFigures};

/// A late sender sends at most this many times the stream's rate.
pub const CATCH_UP: u32 = 2;
/// Further behind than this, the schedule moves on.
pub const MAX_LATE: Duration = Duration::from_millis(500);
/// A batch's wall-clock time is kept to within this; closer, the
/// stream's own clock rules (capture times jitter by a few ms).
pub const ANCHOR_TOLERANCE: Duration = Duration::from_millis(100);

/// What a lane has to do next.
pub(crate) enum Turn {
    /// Its next datagram leaves at this instant.
    Due(Instant),
    /// Its queue is empty.
    Waiting,
    /// It is done: its queue closed and is sent, or it was stopped, or
    /// its socket failed.
    Ended(io::Result<()>),
}

/// A destination's socket, queue and schedule.
pub(crate) struct Lane {
    pub socket: UdpSocket,
    pub rtp: Option<RtpHeaders>,
    pub figures: Arc<SendFigures>,
    pub stop: Arc<AtomicBool>,
    pub queue: mpsc::Receiver<Batch>,
    /// The rest of the batch being sent.
    pub batch: std::vec::IntoIter<Timed>,
    /// The queue ran dry: the next batch may come late (an underrun).
    pub dry: bool,
    /// The instant of schedule time 0.
    pub base: Option<Instant>,
    /// The last datagram sent: its schedule time and when it left.
    pub last: Option<(u64, Instant)>,
    /// The next datagram's schedule, once [`Lane::turn`] worked it out.
    pub due: Option<Instant>,
}

impl Lane {
    /// A lane for a socket that takes its batches from `queue`.
    pub fn new(
        socket: UdpSocket,
        rtp: Option<RtpHeaders>,
        figures: Arc<SendFigures>,
        stop: Arc<AtomicBool>,
        queue: mpsc::Receiver<Batch>,
    ) -> Lane {
        Lane {
            socket,
            rtp,
            figures,
            stop,
            queue,
            batch: Vec::new().into_iter(),
            dry: false,
            base: None,
            last: None,
            due: None,
        }
    }

    /// When its next datagram leaves, taking the next batch off its queue
    /// if the one before is sent.
    pub fn turn(&mut self, now: Instant) -> Turn {
        if self.stop.load(Ordering::Relaxed) {
            return Turn::Ended(Ok(()));
        }
        while self.batch.as_slice().is_empty() {
            let batch = match self.queue.try_recv() {
                Ok(b) => b,
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.dry = true;
                    return Turn::Waiting;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return Turn::Ended(Ok(())),
            };
            if std::mem::take(&mut self.dry) && self.first_due(&batch).is_some_and(|d| d < now) {
                self.figures.underrun();
            }
            if let Some(wall) = batch.due_at {
                self.anchor(&batch, wall, now);
            }
            self.batch = batch.datagrams.into_iter();
        }
        let at = self.batch.as_slice()[0].at;
        Turn::Due(self.leave(at, now))
    }

    /// Sends the datagram [`Lane::turn`] said is due (not before it is:
    /// the pacing thread waits). A socket that cannot take it now
    /// (`WouldBlock`) keeps it for the next turn.
    pub fn send(&mut self) -> io::Result<()> {
        let Some(d) = self.batch.as_slice().first() else {
            return Ok(());
        };
        let due = self.due.unwrap_or_else(Instant::now);
        let at = Duration::from_nanos(d.at);
        // The datagram as it is, behind its RTP header if any: no copy.
        // The header numbers only what leaves (a socket that is full
        // keeps the datagram, and its number, for the next turn).
        let mut rtp = self.rtp;
        let header = rtp.as_mut().map(|rtp| {
            let ticks = at.as_nanos() * 9 / 100_000;
            rtp.next(ticks as u32)
        });
        let sent = Instant::now();
        let result = match &header {
            Some(h) => socket2::SockRef::from(&self.socket)
                .send_vectored(&[IoSlice::new(h), IoSlice::new(&d.bytes)]),
            None => self.socket.send(&d.bytes),
        };
        let len = match result {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                self.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.rtp = rtp;
        self.figures.sent(len, sent.saturating_duration_since(due));
        self.last = Some((d.at, sent));
        self.batch.next();
        if let Some(next) = self.batch.as_slice().first() {
            prefetch(&next.bytes);
        }
        Ok(())
    }

    /// The instant a batch's first datagram is due.
    fn first_due(&self, batch: &Batch) -> Option<Instant> {
        let first = batch.datagrams.first()?;
        Some(self.base? + Duration::from_nanos(first.at))
    }

    /// When the datagram of schedule time `at` leaves: at its time, or as
    /// soon as catching up allows; a schedule too far behind moves on.
    fn leave(&mut self, at: u64, now: Instant) -> Instant {
        let offset = Duration::from_nanos(at);
        let base = *self
            .base
            .get_or_insert_with(|| now.checked_sub(offset).unwrap_or(now));
        let mut due = base + offset;
        if now > due + MAX_LATE {
            self.base = Some(base + (now - due));
            self.figures.rebased();
            due = now;
            self.last = None;
        }
        self.due = Some(due);
        // Catching up: no faster than CATCH_UP times the stream's rate.
        let earliest = self.last.map_or(due, |(before, sent)| {
            sent + Duration::from_nanos(at.saturating_sub(before)) / CATCH_UP
        });
        due.max(earliest)
    }

    /// Moves the schedule so that the batch leaves at `wall`, when it is
    /// off by more than [`ANCHOR_TOLERANCE`]: ahead, it waits; behind, it
    /// catches up (by half of [`MAX_LATE`] at most, the rest later).
    fn anchor(&mut self, batch: &Batch, wall: SystemTime, now: Instant) {
        let Some(first) = batch.datagrams.first() else {
            return;
        };
        let target = match wall.duration_since(SystemTime::now()) {
            Ok(ahead) => now + ahead,
            Err(e) => now.checked_sub(e.duration()).unwrap_or(now),
        };
        let Some(base) = self.base else {
            self.base = target.checked_sub(Duration::from_nanos(first.at));
            return;
        };
        let due = base + Duration::from_nanos(first.at);
        if target > due + ANCHOR_TOLERANCE {
            self.base = Some(base + (target - due));
        } else if due > target + ANCHOR_TOLERANCE {
            let back = (due - target).min(MAX_LATE / 2);
            self.base = base.checked_sub(back).or(self.base);
        }
    }
}

/// Starts loading a datagram into the cache while the thread waits until
/// it is due: read from the store seconds before, it is in memory, not in
/// the cache, and the send would wait for it.
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        // SAFETY: a prefetch is a hint: it reads nothing into the program
        // and never faults, and the address lies in a live slice.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast()) };
    }
}
