//! A sender: one destination's socket and queue, sent from by a shared
//! pacing thread (`pacing.rs`) when each datagram is due.
//!
//! Batches go in by [`Sender::send`] (blocking while its queue is full,
//! which is how a feeder keeps pace); [`Sender::finish`] waits until what
//! is queued has left.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::SystemTime;

use hlsvault_ts::pace::Timed;
use hlsvault_ts::rtp::RtpHeaders;
use tokio::sync::mpsc;

use crate::lane::Lane;
use crate::{pacing, socket, Destination, SendFigures, SocketError};

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
    queue: Queue,
    verdict: std::sync::mpsc::Receiver<io::Result<()>>,
    figures: Arc<SendFigures>,
    stopper: Stopper,
}

/// The sender's end of its queue; the pacing thread is woken when a
/// batch comes and when the queue closes.
struct Queue {
    /// Always Some until dropped.
    tx: Option<mpsc::Sender<Batch>>,
    pacer: Thread,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Closed first, so that the woken thread finds it closed.
        self.tx = None;
        self.pacer.unpark();
    }
}

/// Stops a sender at its next datagram boundary.
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    pacer: Thread,
}

impl Stopper {
    /// Stops it: nothing more leaves.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::Relaxed);
        self.pacer.unpark();
    }
}

/// The sender has stopped (asked to, or its socket failed).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the sender has stopped")]
pub struct Stopped;

impl Sender {
    /// Opens the destination's socket (failing on a wrong option) and
    /// hands it to a pacing thread.
    pub fn start(settings: &SenderSettings) -> Result<Sender, SocketError> {
        let failed = |e: io::Error| SocketError {
            option: format!("to {}", settings.destination),
            reason: e.to_string(),
        };
        let socket = socket::open(&settings.destination)?;
        // A destination whose socket is full must not hold up the
        // others its pacing thread sends to.
        socket.set_nonblocking(true).map_err(failed)?;
        let (tx, rx) = mpsc::channel(settings.queue.max(1));
        let figures = Arc::new(SendFigures::default());
        let flag = Arc::new(AtomicBool::new(false));
        let rtp = settings
            .destination
            .rtp
            .then(|| RtpHeaders::new(settings.ssrc, (settings.ssrc >> 16) as u16));
        let lane = Lane::new(socket, rtp, figures.clone(), flag.clone(), rx);
        let (verdict_tx, verdict) = std::sync::mpsc::sync_channel(1);
        let pacer = pacing::join(lane, verdict_tx).map_err(failed)?;
        Ok(Sender {
            queue: Queue {
                tx: Some(tx),
                pacer: pacer.clone(),
            },
            verdict,
            figures,
            stopper: Stopper { flag, pacer },
        })
    }

    /// Queues a batch, blocking while the queue is full (so not from an
    /// async task: the thread that times the datagrams calls it).
    pub fn send(&self, batch: Batch) -> Result<(), Stopped> {
        let tx = self.queue.tx.as_ref().ok_or(Stopped)?;
        tx.blocking_send(batch).map_err(|_| Stopped)?;
        self.queue.pacer.unpark();
        Ok(())
    }

    /// Its counters.
    pub fn figures(&self) -> Arc<SendFigures> {
        self.figures.clone()
    }

    /// A handle that stops it at its next datagram boundary.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Sends what is queued and ends; its socket's failure if one stopped
    /// it.
    pub fn finish(self) -> io::Result<()> {
        drop(self.queue);
        self.verdict
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the pacing thread panicked")))
    }
}

/// The real-time priority of a thread that feeds a sender: below the
/// pacing threads, so that its work on a whole segment (milliseconds)
/// never holds a core one of them is due on, and above every ordinary
/// thread.
const FEEDING_PRIORITY: i32 = 5;

/// Makes this thread wake when asked, which is what pacing is: timer
/// slack cut from 50 µs to 1 µs.
pub(crate) fn precise_sleeps() {
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
/// The threads that ask wait for their queues and the pacing threads
/// sleep between datagrams, so none holds a core; the kernel caps real-time
/// threads at 95% of the machine besides.
pub(crate) fn realtime(priority: i32) {
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
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

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

    #[test]
    fn senders_that_share_pacing_threads_each_keep_their_own_schedule() {
        // More senders than cores: the pacing threads hold several each.
        let pairs: Vec<_> = (0..9).map(|_| started(false)).collect();
        let queued = Instant::now();
        for (i, (_, sender)) in pairs.iter().enumerate() {
            let mut own = datagrams(20, Duration::from_millis(5));
            // Each one's schedule is offset from the others'.
            own.iter_mut().for_each(|d| d.at += i as u64 * 300_000);
            queue(sender, own, None);
        }
        for (receiver, sender) in pairs {
            let got = receive(&receiver, 20);
            let figures = sender.figures().snapshot();
            sender.finish().unwrap();
            assert_eq!(figures.datagrams, 20);
            // 19 intervals of 5 ms after the first: never early by more
            // than the TOGETHER a shared wake-up allows.
            assert!(got[19].0 - queued >= Duration::from_millis(95) - crate::TOGETHER);
        }
    }

    #[test]
    fn a_stopped_sender_ends_at_once_while_one_beside_it_goes_on() {
        let (_, stopped) = started(false);
        let (receiver, going) = started(false);
        // Due a minute from now: the pacing thread would sleep till then.
        queue(
            &stopped,
            datagrams(2, Duration::from_secs(1)),
            Some(SystemTime::now() + Duration::from_secs(60)),
        );
        queue(&going, datagrams(10, Duration::from_millis(5)), None);
        stopped.stopper().stop();
        stopped.finish().unwrap();
        assert_eq!(receive(&receiver, 10).len(), 10);
        going.finish().unwrap();
    }
}
