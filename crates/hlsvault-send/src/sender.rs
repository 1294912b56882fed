//! The sending thread: datagrams leave when their schedule says, against
//! the monotonic clock.
//!
//! One thread per destination sleeps until each datagram is due (timer
//! slack cut to a microsecond, so a wake-up is not rounded 50 µs late)
//! and sends it; nothing sleeps per TS packet. It runs at a real-time
//! priority where the process may have one. A sender that falls behind
//! (the reader was slow, the machine busy) catches up at most
//! [`CATCH_UP`] times the stream's own rate, so a receiver sees a
//! steeper stream for a while rather than a line-rate burst; one more
//! than [`MAX_LATE`] behind moves its schedule on instead (counted as
//! rebased): the stream pauses, it does not rush.

use std::io::{self, IoSlice};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hlsvault_ts::pace::Timed;
use hlsvault_ts::rtp::RtpHeaders;
use tokio::sync::mpsc;

use crate::{socket, Destination, SendFigures, SocketError};

/// A late sender sends at most this many times the stream's rate.
pub const CATCH_UP: u32 = 2;
/// Further behind than this, the schedule moves on.
pub const MAX_LATE: Duration = Duration::from_millis(500);
/// A batch's wall-clock time is kept to within this; closer, the
/// stream's own clock rules (capture times jitter by a few ms).
pub const ANCHOR_TOLERANCE: Duration = Duration::from_millis(100);

/// Datagrams to send, in schedule order.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub datagrams: Vec<Timed>,
    /// When the first datagram must leave, on the wall clock (a delayed
    /// playout follows the archive's times); None to keep to the
    /// stream's own clock.
    pub due_at: Option<SystemTime>,
}

/// How a sender sends.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    pub destination: Destination,
    /// RTP's source id, stable for one playout.
    pub ssrc: u32,
    /// Batches queued for the thread at most.
    pub queue: usize,
}

/// A running sender: batches go in with [`Sender::send`].
pub struct Sender {
    tx: mpsc::Sender<Batch>,
    thread: JoinHandle<io::Result<()>>,
    figures: Arc<SendFigures>,
    stop: Arc<AtomicBool>,
}

/// The sender has stopped (asked to, or its socket failed).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the sender has stopped")]
pub struct Stopped;

impl Sender {
    /// Opens the destination's socket (failing on a wrong option) and
    /// starts the thread.
    pub fn start(settings: &SenderSettings) -> Result<Sender, SocketError> {
        let socket = socket::open(&settings.destination)?;
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let figures = Arc::new(SendFigures::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = Pacing {
            socket,
            rtp: settings
                .destination
                .rtp
                .then(|| RtpHeaders::new(settings.ssrc, (settings.ssrc >> 16) as u16)),
            figures: figures.clone(),
            stop: stop.clone(),
            base: None,
            last: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("send {}", settings.destination.addr))
            .spawn(move || thread.run(rx))
            .map_err(|e| SocketError {
                option: format!("to {}", settings.destination),
                reason: e.to_string(),
            })?;
        Ok(Sender {
            tx,
            thread,
            figures,
            stop,
        })
    }

    /// Queues a batch, blocking while the queue is full (so not from an
    /// async task: the thread that times the datagrams calls it).
    pub fn send(&self, batch: Batch) -> Result<(), Stopped> {
        self.tx.blocking_send(batch).map_err(|_| Stopped)
    }

    /// Its counters.
    pub fn figures(&self) -> Arc<SendFigures> {
        self.figures.clone()
    }

    /// A handle that stops the thread at its next datagram boundary.
    pub fn stopper(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Sends what is queued and ends the thread; its socket's failure if
    /// one stopped it.
    pub fn finish(self) -> io::Result<()> {
        drop(self.tx);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the sending thread panicked")))
    }
}

/// The thread's state.
struct Pacing {
    socket: UdpSocket,
    rtp: Option<RtpHeaders>,
    figures: Arc<SendFigures>,
    stop: Arc<AtomicBool>,
    /// The instant of schedule time 0.
    base: Option<Instant>,
    /// The last datagram sent: its schedule time and when it left.
    last: Option<(u64, Instant)>,
}

impl Pacing {
    fn run(mut self, mut rx: mpsc::Receiver<Batch>) -> io::Result<()> {
        precise_sleeps();
        realtime(PRIORITY);
        loop {
            let batch = match rx.try_recv() {
                Ok(b) => b,
                Err(mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                Err(mpsc::error::TryRecvError::Empty) => {
                    let Some(b) = rx.blocking_recv() else {
                        return Ok(());
                    };
                    if self
                        .base
                        .is_some_and(|_| self.due(&b).is_some_and(|d| d < Instant::now()))
                    {
                        self.figures.underrun();
                    }
                    b
                }
            };
            if let Some(wall) = batch.due_at {
                self.anchor(&batch, wall);
            }
            for (i, d) in batch.datagrams.iter().enumerate() {
                if self.stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                self.send(d)?;
                if let Some(next) = batch.datagrams.get(i + 1) {
                    prefetch(&next.bytes);
                }
            }
        }
    }

    /// The instant a batch's first datagram is due.
    fn due(&self, batch: &Batch) -> Option<Instant> {
        let first = batch.datagrams.first()?;
        Some(self.base? + Duration::from_nanos(first.at))
    }

    /// Moves the schedule so that the batch leaves at `wall`, when it is
    /// off by more than [`ANCHOR_TOLERANCE`]: ahead, it waits; behind, it
    /// catches up (by half of [`MAX_LATE`] at most, the rest later).
    fn anchor(&mut self, batch: &Batch, wall: SystemTime) {
        let Some(first) = batch.datagrams.first() else {
            return;
        };
        let now = Instant::now();
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

    fn send(&mut self, d: &Timed) -> io::Result<()> {
        let now = Instant::now();
        let at = Duration::from_nanos(d.at);
        let base = *self
            .base
            .get_or_insert_with(|| now.checked_sub(at).unwrap_or(now));
        let mut due = base + at;
        if now > due + MAX_LATE {
            self.base = Some(base + (now - due));
            self.figures.rebased();
            due = now;
            self.last = None;
        }
        // Catching up: no faster than CATCH_UP times the stream's rate.
        let earliest = self.last.map_or(due, |(at, sent)| {
            sent + Duration::from_nanos(d.at.saturating_sub(at)) / CATCH_UP
        });
        let leave = due.max(earliest);
        if leave > now {
            std::thread::sleep(leave - now);
        }
        // The datagram as it is, behind its RTP header if any: no copy.
        let header = self.rtp.as_mut().map(|rtp| {
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
            Err(e) => {
                self.stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.figures.sent(len, sent.saturating_duration_since(due));
        self.last = Some((d.at, sent));
        Ok(())
    }
}

/// Starts loading a datagram into the cache while the thread sleeps until
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

/// The real-time priority the sending thread asks for (as `multicat -i`).
const PRIORITY: i32 = 10;
/// The one of the thread that feeds it: below every sending thread, so
/// that its work on a whole segment (milliseconds) never holds a core
/// that one is due on, and above every ordinary thread.
const FEEDING_PRIORITY: i32 = 5;

/// Makes this thread wake when asked, which is what pacing is: timer
/// slack cut from 50 µs to 1 µs.
fn precise_sleeps() {
    // SAFETY: prctl only sets a number on the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
    }
}

/// Puts the calling thread, which feeds a sender, at a real-time
/// priority ([`FEEDING_PRIORITY`]): starved behind real-time senders (fifty
/// playouts on two cores), an ordinary thread would leave them nothing to
/// send.
pub fn feeding_priority() {
    realtime(FEEDING_PRIORITY);
}

/// Puts the calling thread at a real-time priority (SCHED_FIFO) where the
/// process may have one (root or CAP_SYS_NICE), so that busy cores (an
/// archiver cutting segments beside it, other playouts) do not delay it.
/// The threads that ask wait for their queues and the sender sleeps
/// between datagrams, so none holds a core; the kernel caps real-time
/// threads at 95% of the machine besides.
fn realtime(priority: i32) {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler only sets numbers on the calling thread
    // (pid 0), from a parameter that lives across the call.
    let realtime = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
    if !realtime {
        tracing::debug!(
            "a playout thread runs without real-time priority (needs root or CAP_SYS_NICE)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_ts::rtp::{classify, Payload};

    /// A sender to a receiver on loopback.
    fn started(rtp: bool) -> (UdpSocket, Sender) {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let scheme = if rtp { "rtp" } else { "udp" };
        let port = receiver.local_addr().unwrap().port();
        let sender = Sender::start(&SenderSettings {
            destination: format!("{scheme}://127.0.0.1:{port}").parse().unwrap(),
            ssrc: 7,
            queue: 4,
        })
        .unwrap();
        (receiver, sender)
    }

    fn queue(sender: &Sender, datagrams: Vec<Timed>, due_at: Option<SystemTime>) {
        sender.send(Batch { datagrams, due_at }).unwrap();
    }

    fn datagrams(count: u64, every: Duration) -> Vec<Timed> {
        (0..count)
            .map(|i| Timed {
                at: i * every.as_nanos() as u64,
                bytes: vec![0x47; 1316].into(),
            })
            .collect()
    }

    fn receive(receiver: &UdpSocket, count: usize) -> Vec<(Instant, Vec<u8>)> {
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 2048];
        (0..count)
            .map(|_| {
                let n = receiver.recv(&mut buf).unwrap();
                (Instant::now(), buf[..n].to_vec())
            })
            .collect()
    }

    #[test]
    fn datagrams_leave_spaced_by_their_schedule_with_rtp_headers_in_sequence() {
        let (receiver, sender) = started(true);
        let queued = Instant::now();
        queue(&sender, datagrams(20, Duration::from_millis(10)), None);
        let got = receive(&receiver, 20);
        sender.finish().unwrap();
        // 19 intervals of 10 ms after the first, which left once queued:
        // the last arrives 190 ms after the queueing at the earliest (the
        // schedule is never early), however late the receiver reads.
        assert!(got[19].0 - queued >= Duration::from_millis(190));
        let seqs: Vec<(u16, u32)> = got
            .iter()
            .map(|(_, d)| match classify(d) {
                Payload::Rtp { seq, ts, .. } => (seq, ts.len() as u32),
                other => panic!("not RTP: {other:?}"),
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)));
        assert!(seqs.iter().all(|&(_, len)| len == 1316));
        let stamp = |d: &[u8]| u32::from_be_bytes(d[4..8].try_into().unwrap());
        assert_eq!(stamp(&got[19].1) - stamp(&got[0].1), 19 * 900, "90 kHz");
    }

    #[test]
    fn a_late_sender_catches_up_at_twice_the_rate_not_at_once() {
        let (receiver, sender) = started(false);
        let all = datagrams(30, Duration::from_millis(10));
        queue(&sender, all[..1].to_vec(), None);
        // The rest arrive 100 ms late: ten datagrams are due already.
        std::thread::sleep(Duration::from_millis(100));
        let late = Instant::now();
        queue(&sender, all[1..].to_vec(), None);
        let got = receive(&receiver, 30);
        let figures = sender.figures().snapshot();
        sender.finish().unwrap();
        // Ten due at once leave 5 ms apart at least, not in one burst: the
        // tenth 45 ms after they were queued at the earliest.
        assert!(got[10].0 - late >= Duration::from_millis(45));
        assert_eq!(figures.underruns, 1);
        assert_eq!(figures.rebased, 0);
    }

    #[test]
    fn a_batch_due_on_the_wall_clock_waits_for_it() {
        let (receiver, sender) = started(false);
        let began = Instant::now();
        queue(&sender, datagrams(2, Duration::from_millis(1)), None);
        // The next run starts 300 ms later on the wall clock (a gap in
        // the archive), though its schedule goes on.
        let mut next = datagrams(3, Duration::from_millis(1));
        next.iter_mut().for_each(|d| d.at += 2_000_000);
        queue(
            &sender,
            next,
            Some(SystemTime::now() + Duration::from_millis(300)),
        );
        let got = receive(&receiver, 5);
        sender.finish().unwrap();
        assert!(got[2].0 - began >= Duration::from_millis(299));
    }
}
