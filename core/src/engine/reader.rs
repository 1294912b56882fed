//! Reader threads: one per capture file, per interface captured with
//! libpcap, and per interface received with UDP sockets. Each hands the
//! datagrams to the streams whose destination they match, notices silence,
//! and (for live sources) retries a source that fails.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{self, Pace, StreamConfig};
use crate::figures::StreamStats;
use hlsvault_capture::{
    Datagram, Endpoint, Event, Flow, PcapFileSource, PcapLiveSource, Source, SourceCounters,
    Target, Targets, UdpSource,
};

/// Datagrams are handed to a stream thread in batches of about this size.
const BATCH_BYTES: usize = 256 * 1024;
/// First wait before a failed live source is opened again; it doubles up
/// to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// At most one "fell behind" warning per stream this often.
const OVERFLOW_LOG_EVERY: Duration = Duration::from_secs(10);

/// Datagrams for one stream, packed into one buffer.
#[derive(Default)]
pub struct Batch {
    pub data: Vec<u8>,
    pub items: Vec<(SystemTime, usize)>,
}

/// What a reader sends to a stream's analysis thread.
pub enum Input {
    /// Datagrams.
    Data(Batch),
    /// Nothing arrived for this long: end the segment now.
    Stalled(Duration),
}

/// What feeds a set of streams: streams with equal keys share one reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReaderKey {
    /// A capture file, at a pace.
    File(PathBuf, Pace),
    /// libpcap on an interface.
    Pcap(String),
    /// UDP sockets, joined on an interface (or as routed).
    Udp(Option<String>),
}

impl ReaderKey {
    /// The reader of a stream.
    pub fn of(s: &StreamConfig) -> Self {
        match &s.source {
            config::Source::PcapFile { path, pace, .. } => ReaderKey::File(path.clone(), *pace),
            config::Source::Pcap { interface, .. } => ReaderKey::Pcap(interface.clone()),
            config::Source::Udp { interface, .. } => ReaderKey::Udp(interface.clone()),
        }
    }

    /// Whether it is a live source (which takes streams while running).
    pub fn is_live(&self) -> bool {
        !matches!(self, ReaderKey::File(..))
    }

    /// How the reader is named in logs and the summary.
    pub fn describe(&self) -> String {
        match self {
            ReaderKey::File(p, _) => p.display().to_string(),
            ReaderKey::Pcap(i) => format!("pcap on {i}"),
            ReaderKey::Udp(Some(i)) => format!("udp on {i}"),
            ReaderKey::Udp(None) => "udp".into(),
        }
    }
}

/// One stream's route from a reader: where its batches go.
pub struct Route {
    /// Unique in the run: the reader and its source know the route by it.
    pub id: usize,
    pub endpoint: Endpoint,
    pub buffer: u64,
    pub stall_timeout: Duration,
    pub tx: SyncSender<Input>,
    pub stats: Arc<StreamStats>,
    pub stream: String,
}

/// A route while its reader runs.
struct Lane {
    route: Route,
    open: bool,
    batch: Batch,
    /// A datagram arrived since the last tick.
    fresh: bool,
    /// When the last datagram arrived (the start, before the first).
    last_data: Instant,
    /// A datagram has arrived since the reader started.
    seen: bool,
    stalled: bool,
    overflow_logged: Option<Instant>,
    overflow_since_log: u64,
}

impl Lane {
    fn new(route: Route) -> Self {
        Lane {
            route,
            open: true,
            batch: Batch::default(),
            fresh: false,
            last_data: Instant::now(),
            seen: false,
            stalled: false,
            overflow_logged: None,
            overflow_since_log: 0,
        }
    }

    /// Hands the batch to the stream. A live reader never waits for a
    /// stream that fell behind (it would hold up every other stream and
    /// lose datagrams in the kernel instead): the batch is counted and
    /// dropped. A file reader waits.
    fn flush(&mut self, live: bool) {
        if self.batch.items.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.items.len() as u64;
        if self.open {
            let sent = if live {
                self.route.tx.try_send(Input::Data(batch))
            } else {
                self.route
                    .tx
                    .send(Input::Data(batch))
                    .map_err(|e| TrySendError::Disconnected(e.0))
            };
            match sent {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => {
                    self.route.stats.overflow(n);
                    self.overflow_since_log += n;
                    if self
                        .overflow_logged
                        .is_none_or(|t| t.elapsed() >= OVERFLOW_LOG_EVERY)
                    {
                        tracing::warn!(stream = %self.route.stream, datagrams = self.overflow_since_log, "stream analysis fell behind the capture; datagrams dropped (counted)");
                        self.overflow_logged = Some(Instant::now());
                        self.overflow_since_log = 0;
                    }
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    tracing::error!(stream = %self.route.stream, "stream pipeline has stopped; its datagrams are counted as undelivered");
                    self.open = false;
                }
            }
        }
        for _ in 0..n {
            self.route.stats.undelivered();
        }
    }

    /// Time passed: notices silence and the return of data.
    fn tick(&mut self, now: Instant) {
        if self.fresh {
            self.fresh = false;
            if self.stalled {
                self.stalled = false;
                let silent = humantime::format_duration(round_ms(now - self.last_data));
                match self.seen {
                    true => {
                        tracing::info!(stream = %self.route.stream, %silent, "stream receiving again")
                    }
                    false => {
                        tracing::info!(stream = %self.route.stream, %silent, "first datagrams received")
                    }
                }
            }
            self.seen = true;
            self.last_data = now;
            return;
        }
        let silent = now - self.last_data;
        if !self.stalled && silent >= self.route.stall_timeout {
            self.stalled = true;
            if !self.seen {
                // Nothing to end: only say so.
                tracing::warn!(stream = %self.route.stream, silent = %humantime::format_duration(round_ms(silent)), "no datagrams received yet");
                return;
            }
            self.route.stats.stall();
            tracing::warn!(stream = %self.route.stream, silent = %humantime::format_duration(round_ms(silent)), "stream stalled: no datagrams; its segment ends here");
            if self.open {
                // Blocking is fine: a stalled stream's queue is draining.
                let _ = self.route.tx.send(Input::Stalled(silent));
            }
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// What one reader saw.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The capture file, or the interface and kind.
    pub source: String,
    /// Records, and those that were not usable datagrams.
    pub counters: SourceCounters,
    /// Datagrams to destinations no stream asked for.
    pub ignored: u64,
    /// Capture files: every UDP destination with its datagram count (at
    /// most [`MAX_DESTINATIONS`] of them), most datagrams first.
    pub destinations: Vec<(std::net::SocketAddr, u64)>,
}

/// Destinations a capture file's reader counts, at most.
pub const MAX_DESTINATIONS: usize = 64;

/// Datagrams per UDP destination, for the first [`MAX_DESTINATIONS`]
/// destinations seen.
#[derive(Default)]
pub struct Destinations(HashMap<std::net::SocketAddr, u64>);

impl Destinations {
    /// A datagram to `dst`.
    pub fn count(&mut self, dst: std::net::SocketAddr) {
        let room = self.0.len() < MAX_DESTINATIONS;
        match self.0.get_mut(&dst) {
            Some(n) => *n += 1,
            None if room => {
                self.0.insert(dst, 1);
            }
            None => {}
        }
    }

    /// Each destination with its datagrams, most first.
    pub fn most_first(self) -> Vec<(std::net::SocketAddr, u64)> {
        let mut list: Vec<_> = self.0.into_iter().collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        list
    }
}

/// A change to a running reader's streams (a config reload).
pub enum Control {
    /// Start feeding a stream.
    Add(Route),
    /// Stop feeding the stream of this route id: its queue closes, so its
    /// analysis flushes and ends.
    Remove(usize),
}

/// The routes of a running reader, and how a datagram finds its lanes.
struct Lanes {
    lanes: Vec<Lane>,
    /// Route id -> lane, for sources that know the target.
    by_id: HashMap<usize, usize>,
    /// Destination -> lanes, for sources that do not.
    by_dst: HashMap<SocketAddr, Vec<usize>>,
    /// What the source receives.
    targets: Arc<Targets>,
}

impl Lanes {
    fn new(routes: Vec<Route>) -> Self {
        let mut lanes = Lanes {
            lanes: routes.into_iter().map(Lane::new).collect(),
            by_id: HashMap::new(),
            by_dst: HashMap::new(),
            targets: Targets::new(Vec::new()),
        };
        lanes.index();
        lanes
    }

    /// Rebuilds the look-ups and tells the source what to receive.
    fn index(&mut self) {
        self.by_id.clear();
        self.by_dst.clear();
        for (i, l) in self.lanes.iter().enumerate() {
            self.by_id.insert(l.route.id, i);
            self.by_dst
                .entry(l.route.endpoint.dst())
                .or_default()
                .push(i);
        }
        self.targets.set(
            self.lanes
                .iter()
                .map(|l| Target {
                    id: l.route.id,
                    endpoint: l.route.endpoint,
                    buffer: l.route.buffer as usize,
                })
                .collect(),
        );
    }

    /// Applies the changes waiting in `control`; false when the reader is
    /// left with no stream (it ends).
    fn follow(&mut self, control: &Receiver<Control>, live: bool) -> bool {
        let mut changed = false;
        while let Ok(c) = control.try_recv() {
            changed = true;
            match c {
                Control::Add(route) => {
                    tracing::info!(stream = %route.stream, endpoint = %route.endpoint.dst(), "stream added to the capture");
                    self.lanes.push(Lane::new(route));
                }
                Control::Remove(id) => {
                    if let Some(i) = self.lanes.iter().position(|l| l.route.id == id) {
                        let mut lane = self.lanes.remove(i);
                        lane.flush(live);
                        tracing::info!(stream = %lane.route.stream, "stream removed from the capture");
                    }
                }
            }
        }
        if changed {
            self.index();
        }
        !self.lanes.is_empty()
    }

    /// Adds a datagram to the batches of the lanes it goes to; false when
    /// it goes to none.
    fn push(&mut self, d: &Datagram<'_>, live: bool, realtime: bool) -> bool {
        let targets = match d.endpoint {
            Some(id) => self.by_id.get(&id).map_or(&[][..], std::slice::from_ref),
            None => self.by_dst.get(&d.dst).map_or(&[][..], Vec::as_slice),
        };
        for &i in targets {
            let lane = &mut self.lanes[i];
            lane.fresh = true;
            lane.batch.data.extend_from_slice(d.payload);
            lane.batch.items.push((d.at, d.payload.len()));
            if realtime || lane.batch.data.len() >= BATCH_BYTES {
                lane.flush(live);
            }
        }
        !targets.is_empty()
    }

    fn flush(&mut self, live: bool) {
        for lane in &mut self.lanes {
            lane.flush(live);
        }
    }

    fn tick(&mut self, now: Instant) {
        for lane in &mut self.lanes {
            lane.tick(now);
        }
    }
}

/// Runs one reader until its source ends, `stop` is set, or (live) its
/// last stream is removed through `control`.
pub fn read(
    key: ReaderKey,
    routes: Vec<Route>,
    control: Receiver<Control>,
    progress: &Progress,
    stop: &AtomicBool,
) -> SourceReport {
    let live = key.is_live();
    let mut lanes = Lanes::new(routes);
    let mut source: Box<dyn Source> = match &key {
        ReaderKey::File(path, pace) => Box::new(PcapFileSource::new(path.clone(), *pace)),
        ReaderKey::Pcap(iface) => {
            Box::new(PcapLiveSource::new(iface.clone(), lanes.targets.clone()))
        }
        ReaderKey::Udp(iface) => Box::new(UdpSource::new(iface.clone(), lanes.targets.clone())),
    };
    let realtime = matches!(key, ReaderKey::File(_, Pace::Realtime));
    let mut ignored = 0u64;
    let mut destinations = Destinations::default();
    let mut total = SourceCounters::default();
    let mut retry = RETRY_FIRST;
    loop {
        let mut reported = 0u64;
        let mut delivered = false;
        let mut sink = |e: Event<'_>| {
            if stop.load(Ordering::Relaxed) {
                return Flow::Stop;
            }
            match e {
                Event::Datagram(d) => {
                    // What a file carries, to say so when a stream finds
                    // nothing in it.
                    if !live {
                        destinations.count(d.dst);
                    }
                    match lanes.push(&d, live, realtime) {
                        true => delivered = true,
                        false => ignored += 1,
                    }
                }
                Event::Tick => {
                    lanes.flush(live);
                    if live {
                        lanes.tick(Instant::now());
                    }
                    if !lanes.follow(&control, live) {
                        return Flow::Stop;
                    }
                }
                Event::Progress(c) => {
                    if !live {
                        progress.add(c.bytes - reported);
                        reported = c.bytes;
                    }
                    for lane in &lanes.lanes {
                        lane.route.stats.capture_drops(
                            total.kernel_drops + c.kernel_drops,
                            total.interface_drops + c.interface_drops,
                        );
                    }
                    if !lanes.follow(&control, live) {
                        return Flow::Stop;
                    }
                }
                Event::SocketDrops { endpoint, total } => {
                    if let Some(&i) = lanes.by_id.get(&endpoint) {
                        lanes.lanes[i].route.stats.socket_drops(total);
                    }
                }
            }
            Flow::Continue
        };
        let result = source.run(&mut sink);
        match result {
            Ok((_, c)) => {
                total.add(&c);
                break;
            }
            Err(e) if live && !stop.load(Ordering::Relaxed) => {
                if delivered {
                    retry = RETRY_FIRST;
                }
                tracing::error!(source = %key.describe(), error = %e, retry_in = %humantime::format_duration(retry), "live source failed; retrying");
                lanes.flush(live);
                let until = Instant::now() + retry;
                let mut wanted = true;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) && wanted {
                    std::thread::sleep(hlsvault_capture::TICK);
                    lanes.tick(Instant::now());
                    wanted = lanes.follow(&control, live);
                }
                retry = (retry * 2).min(RETRY_MAX);
                if stop.load(Ordering::Relaxed) || !wanted {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(source = %key.describe(), error = %e, "capture source failed");
                break;
            }
        }
    }
    lanes.flush(live);
    SourceReport {
        source: key.describe(),
        counters: total,
        ignored,
        destinations: destinations.most_first(),
    }
}

/// Reading progress of capture files: a bar on a terminal, a log line now
/// and then elsewhere.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    total: u64,
    last_log: std::sync::Mutex<Instant>,
}

impl Progress {
    /// Progress over `total` bytes of capture files (0: no file).
    pub fn new(total: u64) -> Self {
        let bar = (total > 0 && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .expect("valid template"),
            );
            bar
        });
        Progress {
            bar,
            done: AtomicU64::new(0),
            total,
            last_log: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn add(&self, bytes: u64) {
        if self.total == 0 {
            return;
        }
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.last_log.lock().expect("progress lock");
        if last.elapsed() >= Duration::from_secs(5) {
            *last = Instant::now();
            let pct = (done * 100).checked_div(self.total).unwrap_or(100);
            tracing::info!(read = done, total = self.total, "progress {pct}%");
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
