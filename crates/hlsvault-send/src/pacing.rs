//! The pacing threads: at most one per core, shared by every sender of
//! the process, each sleeping until the earliest datagram of its lanes
//! is due and then sending every datagram due by then.
//!
//! Half of a pacer's CPU is the wake-up per datagram (a context switch
//! each). Fifty playouts at 20 Mbit/s are 95,000 datagrams a second; one
//! thread per destination wakes 95,000 times, a thread shared by the
//! destinations sends those due within [`TOGETHER`] of each other on one
//! wake-up. A lone playout is paced as by a thread of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::lane::{Lane, Turn};

/// Datagrams due within this of the one a thread woke for leave with it,
/// this much early at most: one wake-up for several playouts.
pub const TOGETHER: Duration = Duration::from_micros(50);
/// A socket that was full is tried again this much later.
const FULL_RETRY: Duration = Duration::from_micros(100);
/// The real-time priority of the pacing threads (as `multicat -i`).
pub(crate) const PRIORITY: i32 = 10;

/// A lane's verdict, told to its sender when it ends.
pub(crate) type Verdict = mpsc::SyncSender<std::io::Result<()>>;

/// A running pacing thread, as senders see it.
struct Pacer {
    lanes: mpsc::Sender<(Lane, Verdict)>,
    thread: Thread,
    /// Lanes it holds.
    load: Arc<AtomicUsize>,
}

/// The process's pacing threads, started as senders need them.
static PACERS: OnceLock<Mutex<Vec<Pacer>>> = OnceLock::new();

/// Hands `lane` to the least busy pacing thread (starting one while
/// there are fewer than cores and each has a lane); returns that thread,
/// to be woken when the lane's queue gets a batch.
pub(crate) fn join(lane: Lane, verdict: Verdict) -> std::io::Result<Thread> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut pacers = PACERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let idle = pacers
        .iter()
        .position(|p| p.load.load(Ordering::Relaxed) == 0);
    if idle.is_none() && pacers.len() < cores {
        let started = start(pacers.len())?;
        pacers.push(started);
    }
    let pacer = idle
        .or_else(|| {
            pacers
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.load.load(Ordering::Relaxed))
                .map(|(i, _)| i)
        })
        .and_then(|i| pacers.get(i))
        .ok_or_else(|| std::io::Error::other("no pacing thread"))?;
    pacer.load.fetch_add(1, Ordering::Relaxed);
    pacer
        .lanes
        .send((lane, verdict))
        .map_err(|_| std::io::Error::other("the pacing thread has ended"))?;
    pacer.thread.unpark();
    Ok(pacer.thread.clone())
}

fn start(index: usize) -> std::io::Result<Pacer> {
    let (lanes, inbox) = mpsc::channel();
    let load = Arc::new(AtomicUsize::new(0));
    let counted = load.clone();
    let handle = std::thread::Builder::new()
        .name(format!("pacing {index}"))
        .spawn(move || run(&inbox, &counted))?;
    Ok(Pacer {
        lanes,
        thread: handle.thread().clone(),
        load,
    })
}

/// The thread: lives as long as the process, parked while no lane has
/// anything to send.
fn run(inbox: &mpsc::Receiver<(Lane, Verdict)>, load: &AtomicUsize) {
    crate::sender::precise_sleeps();
    crate::sender::realtime(PRIORITY);
    let mut lanes: Vec<(Lane, Verdict)> = Vec::new();
    loop {
        lanes.extend(inbox.try_iter());
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        lanes.retain_mut(|(lane, verdict)| {
            let ended = loop {
                match lane.turn(now) {
                    Turn::Due(at) if at <= now + TOGETHER => {
                        let before = lane.batch.len();
                        if let Err(e) = lane.send() {
                            break Err(e);
                        }
                        if lane.batch.len() == before {
                            // Full: the datagram waits for room.
                            let retry = Instant::now() + FULL_RETRY;
                            wake = Some(wake.map_or(retry, |w| w.min(retry)));
                            return true;
                        }
                    }
                    Turn::Due(at) => {
                        wake = Some(wake.map_or(at, |w| w.min(at)));
                        return true;
                    }
                    Turn::Waiting => return true,
                    Turn::Ended(result) => break result,
                }
            };
            // Its sender may have gone without waiting for the verdict.
            let _ = verdict.send(ended);
            load.fetch_sub(1, Ordering::Relaxed);
            false
        });
        match wake {
            Some(at) => {
                let now = Instant::now();
                if at > now {
                    std::thread::park_timeout(at - now);
                }
            }
            None => std::thread::park(),
        }
    }
}
