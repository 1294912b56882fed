//! Wiring and supervision: sources feed per-stream analysis threads, which
//! feed per-stream archive writers.
//!
//! ```text
//! capture file ──reader thread──┬─> stream thread (RTP, TS, cutter) ──> archive task ──> store
//!   (one pass, demux by dst)    └─> stream thread ...                ──> archive task ──> store
//! ```
//!
//! Each stream runs on its own thread and task: a stream that fails (a
//! panic, a store error) is logged and counted, and the others go on.

mod archive;
pub mod stats;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument;

use crate::capture::rtp::{self, Payload, SeqCheck};
use crate::capture::{Flow, PcapFileSource, Source, SourceCounters};
use crate::config::{Backend, Config, Pace, Problem, SourceKind, StreamConfig};
use crate::segment::{CutPolicy, Segment, SegmentCutter};
use crate::storage::{FsStore, ObjectStore};
pub use archive::StreamArchive;
pub use stats::{Snapshot, StreamStats};

/// Datagrams are handed to a stream thread in batches of about this size.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches queued per stream before the reader waits.
const QUEUE_BATCHES: usize = 16;
/// Finished segments queued per stream before the analysis waits.
const QUEUE_SEGMENTS: usize = 4;

/// Datagrams for one stream, packed into one buffer.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<(SystemTime, usize)>,
}

/// What the reader of one capture file saw.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The capture file.
    pub path: PathBuf,
    /// Records, and those that were not usable datagrams.
    pub counters: SourceCounters,
    /// Datagrams to destinations no stream asked for.
    pub ignored: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per stream: its name and figures, in config order.
    pub streams: Vec<(String, Snapshot)>,
    /// Per capture file, what its reader saw.
    pub sources: Vec<SourceReport>,
}

impl Report {
    /// Whether every stream ran to the end without losing anything.
    pub fn healthy(&self) -> bool {
        self.streams.iter().all(|(_, s)| s.healthy())
    }
}

/// Checks what the configuration refers to (capture files, link types)
/// without archiving anything.
pub fn check(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, s) in config.streams.iter().enumerate() {
        match s.source.kind {
            SourceKind::PcapFile => {
                let path = s.source.path.clone().unwrap_or_default();
                if let Err(e) = PcapFileSource::new(path, s.source.pace).probe() {
                    problems.push(Problem {
                        key: format!("streams[{i}] (\"{}\").source.path", s.name),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    problems
}

fn build_store(config: &Config) -> Arc<dyn ObjectStore> {
    match config.storage.backend {
        Backend::Fs => Arc::new(FsStore::new(&config.storage.root)),
    }
}

/// Archives every stream of `config` until its sources end.
pub fn run(config: &Config) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hlsvault-io")
        .enable_all()
        .build()?;
    let store = build_store(config);
    tracing::info!(
        store = store.describe(),
        streams = config.streams.len(),
        "archiving"
    );

    let stats: Vec<Arc<StreamStats>> = config.streams.iter().map(|_| Arc::default()).collect();
    let mut inputs = Vec::new();
    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for (s, st) in config.streams.iter().zip(&stats) {
        let (batch_tx, batch_rx) = sync_channel::<Batch>(QUEUE_BATCHES);
        let (seg_tx, seg_rx) = tokio::sync::mpsc::channel::<Segment>(QUEUE_SEGMENTS);
        inputs.push(batch_tx);
        let (cfg, st2) = (s.clone(), st.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("stream-{}", s.name))
                .spawn(move || analyse(cfg, batch_rx, seg_tx, st2))?,
        );
        let span = tracing::info_span!("stream", name = %s.name);
        tasks.push(
            runtime.spawn(publish(store.clone(), s.clone(), seg_rx, st.clone()).instrument(span)),
        );
    }

    let sources = read_sources(config, inputs, &stats);
    for t in threads {
        let _ = t.join();
    }
    runtime.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    Ok(Report {
        streams: config
            .streams
            .iter()
            .zip(&stats)
            .map(|(s, st)| (s.name.clone(), st.snapshot()))
            .collect(),
        sources,
    })
}

/// Reads every capture file once, each on its own thread, and hands each
/// datagram to the streams whose destination it matches.
fn read_sources(
    config: &Config,
    inputs: Vec<SyncSender<Batch>>,
    stats: &[Arc<StreamStats>],
) -> Vec<SourceReport> {
    // One reader per (file, pace); each stream is fed by exactly one.
    let mut files: Vec<(PathBuf, Pace, Vec<Route>)> = Vec::new();
    for ((s, tx), st) in config.streams.iter().zip(inputs).zip(stats) {
        let SourceKind::PcapFile = s.source.kind;
        let path = s.source.path.clone().unwrap_or_default();
        let route = Route {
            dst: SocketAddr::new(s.source.group, s.source.port),
            tx: Some(tx),
            batch: Batch::default(),
            stats: st.clone(),
            stream: s.name.clone(),
        };
        match files
            .iter_mut()
            .find(|(p, pace, _)| *p == path && *pace == s.source.pace)
        {
            Some((_, _, routes)) => routes.push(route),
            None => files.push((path, s.source.pace, vec![route])),
        }
    }
    let total = files
        .iter()
        .filter_map(|(p, _, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new(total);
    let report = std::thread::scope(|scope| {
        let progress = &progress;
        let handles: Vec<_> = files
            .into_iter()
            .map(|(path, pace, routes)| {
                let h = scope.spawn({
                    let path = path.clone();
                    move || read_file(&path, pace, routes, progress)
                });
                (path, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(path, h)| {
                let (counters, ignored) = h.join().unwrap_or_else(|_| {
                    tracing::error!(file = %path.display(), "capture reader panicked");
                    (SourceCounters::default(), 0)
                });
                SourceReport {
                    path,
                    counters,
                    ignored,
                }
            })
            .collect()
    });
    progress.finish();
    report
}

/// One stream's route from a reader: where its batches go.
struct Route {
    dst: SocketAddr,
    tx: Option<SyncSender<Batch>>,
    batch: Batch,
    stats: Arc<StreamStats>,
    stream: String,
}

impl Route {
    fn flush(&mut self) {
        if self.batch.items.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let n = batch.items.len();
        if let Some(tx) = &self.tx {
            if tx.send(batch).is_ok() {
                return;
            }
            tracing::error!(stream = %self.stream, "stream pipeline has stopped; its datagrams are counted as undelivered");
            self.tx = None;
        }
        for _ in 0..n {
            self.stats.undelivered();
        }
    }
}

fn read_file(
    path: &Path,
    pace: Pace,
    mut routes: Vec<Route>,
    progress: &Progress,
) -> (SourceCounters, u64) {
    let mut table: HashMap<SocketAddr, Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        table.entry(r.dst).or_default().push(i);
    }
    let realtime = pace == Pace::Realtime;
    let mut ignored = 0u64;
    let mut reported = 0u64;
    let mut sink = |d: crate::capture::Datagram<'_>| {
        let Some(targets) = table.get(&d.dst) else {
            ignored += 1;
            return Flow::Continue;
        };
        for &r in targets {
            let route = &mut routes[r];
            route.batch.data.extend_from_slice(d.payload);
            route.batch.items.push((d.at, d.payload.len()));
            if realtime || route.batch.data.len() >= BATCH_BYTES {
                route.flush();
            }
        }
        Flow::Continue
    };
    let mut on_progress = |c: &SourceCounters| {
        progress.add(c.bytes - reported);
        reported = c.bytes;
    };
    let result = PcapFileSource::new(path.to_path_buf(), pace).run(&mut sink, &mut on_progress);
    for r in &mut routes {
        r.flush();
    }
    match result {
        Ok(c) => (c, ignored),
        Err(e) => {
            tracing::error!(error = %e, "capture source failed");
            (SourceCounters::default(), ignored)
        }
    }
}

/// The analysis thread of one stream: RTP, TS analysis and cutting.
fn analyse(
    cfg: StreamConfig,
    rx: Receiver<Batch>,
    tx: tokio::sync::mpsc::Sender<Segment>,
    stats: Arc<StreamStats>,
) {
    let span = tracing::info_span!("stream", name = %cfg.name);
    let _enter = span.enter();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut cutter = SegmentCutter::new(CutPolicy {
            target: cfg.segment_duration,
            max: cfg.max_segment(),
            gap: cfg.max_gap,
        });
        let mut sequence = rtp::Sequence::default();
        let mut problems = ProblemLog::default();
        let send = |cutter: &mut SegmentCutter| {
            for seg in cutter.take_ready() {
                if tx.blocking_send(seg).is_err() {
                    stats.lost_segment();
                }
            }
        };
        for batch in rx {
            let mut at = 0;
            for (time, len) in batch.items {
                let payload = &batch.data[at..at + len];
                at += len;
                match rtp::classify(payload) {
                    Payload::Ts(ts) => {
                        stats.datagram(ts.len());
                        cutter.push_datagram(ts, time, false);
                    }
                    Payload::Rtp { ts, seq } => match sequence.check(seq) {
                        SeqCheck::InOrder => {
                            stats.datagram(ts.len());
                            cutter.push_datagram(ts, time, false);
                        }
                        SeqCheck::Lost(n) => {
                            stats.rtp_lost(n);
                            stats.datagram(ts.len());
                            cutter.push_datagram(ts, time, true);
                        }
                        SeqCheck::Late => stats.rtp_late(),
                    },
                    Payload::NotTs => stats.not_ts(),
                }
            }
            stats.analysis(cutter.ts_counters(), cutter.counters());
            problems.report(&stats.snapshot(), false);
            send(&mut cutter);
        }
        cutter.finish();
        stats.analysis(cutter.ts_counters(), cutter.counters());
        problems.report(&stats.snapshot(), true);
        send(&mut cutter);
    }));
    if run.is_err() {
        tracing::error!("stream analysis panicked; this stream stops, the others go on");
        stats.fail();
    }
}

/// Logs what a stream's input got wrong: at once the first time, then at
/// most every `PROBLEM_LOG_EVERY`, with what changed since the last line.
#[derive(Default)]
struct ProblemLog {
    logged: Snapshot,
    at: Option<Instant>,
}

const PROBLEM_LOG_EVERY: Duration = Duration::from_secs(10);

impl ProblemLog {
    fn report(&mut self, now: &Snapshot, last: bool) {
        let due = self.at.is_none_or(|t| t.elapsed() >= PROBLEM_LOG_EVERY);
        let (was, n) = (&self.logged, now);
        let delta = [
            (n.cc_errors - was.cc_errors, "continuity errors"),
            (
                n.psi_errors - was.psi_errors,
                "bad PSI sections or adaptation fields",
            ),
            (
                n.unsynced_bytes - was.unsynced_bytes,
                "bytes without TS sync",
            ),
            (
                n.tei_packets - was.tei_packets,
                "packets flagged with transport errors",
            ),
            (n.not_ts - was.not_ts, "datagrams that are not TS"),
            (n.rtp_lost - was.rtp_lost, "datagrams lost (RTP sequence)"),
            (n.rtp_late - was.rtp_late, "late or repeated RTP datagrams"),
        ];
        let found: Vec<String> = delta
            .iter()
            .filter(|d| d.0 > 0)
            .map(|(k, what)| format!("{k} {what}"))
            .collect();
        if found.is_empty() || !(due || last) {
            return;
        }
        tracing::warn!("input problems (counted, skipped): {}", found.join(", "));
        self.logged = *now;
        self.at = Some(Instant::now());
    }
}

/// The archive task of one stream: stores segments and playlists in order.
async fn publish(
    store: Arc<dyn ObjectStore>,
    cfg: StreamConfig,
    mut rx: tokio::sync::mpsc::Receiver<Segment>,
    stats: Arc<StreamStats>,
) {
    let target = cfg.segment_duration.as_secs_f64().round() as u64;
    let mut archive = match StreamArchive::open(
        store,
        &cfg.name,
        target,
        cfg.live_window,
        stats.clone(),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the stream's archive; its segments are lost");
            stats.fail();
            while rx.recv().await.is_some() {
                stats.lost_segment();
            }
            return;
        }
    };
    while let Some(seg) = rx.recv().await {
        if let Err(e) = archive.add(seg).await {
            tracing::error!(error = %e, "store write failed");
        }
    }
    if let Err(e) = archive.finish(true).await {
        tracing::error!(error = %e, "cannot write the final playlists");
    }
}

/// Reading progress: a bar on a terminal, a log line now and then elsewhere.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    total: u64,
    last_log: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
