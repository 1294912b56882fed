//! Wiring and supervision: readers feed per-stream analysis threads, which
//! feed per-stream archive writers.
//!
//! ```text
//! capture file / interface ──reader thread──┬─> stream thread (RTP, TS, cutter) ──> archive task ──> store
//!   (one pass, demux by dst)                └─> stream thread ...                ──> archive task ──> store
//! ```
//!
//! Each stream runs on its own thread and task: a stream that fails (a
//! panic, a store error) is logged and counted, and the others go on. The
//! supervisor starts and stops them, also while running, when the
//! config file changes (see `hlsvault run --help`).
//! SIGINT or SIGTERM stops the readers; every stream then flushes its open
//! segment and playlists, and the open hours stay open.

mod archive;
mod hours;
mod reader;
mod supervisor;
mod watch;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Backend, Config, Problem, SourceConfig, SourceKind, StreamConfig};
use crate::figures::{Figures, Snapshot, StreamStats};
pub use archive::{ArchiveSettings, StreamArchive};
use hlsvault_capture::{netif, CaptureError, PcapFileSource, PcapLiveSource};
use hlsvault_plugin::{self as plugin, Slot, StreamPlugins};
use hlsvault_store::{FsStore, ObjectStore, QueueLimits, S3Store, StoreError, UploadQueue};
use hlsvault_ts::rtp::{self, Payload};
use hlsvault_ts::segment::{CutPolicy, Segment, SegmentCutter};
pub use hours::{HourPublisher, Urls};
pub use reader::SourceReport;
use reader::{Input, Progress, ReaderKey};
use supervisor::Supervisor;
use watch::FileWatch;

/// Batches queued per stream before the reader waits (files) or drops and
/// counts (live sources): about 4 MiB.
const QUEUE_BATCHES: usize = 16;
/// Finished segments queued per stream before the analysis waits.
const QUEUE_SEGMENTS: usize = 4;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per stream: its name and figures, in config order.
    pub streams: Vec<(String, Snapshot)>,
    /// Per reader (capture file or interface), what it saw.
    pub sources: Vec<SourceReport>,
    /// Per plugin: its name and figures.
    pub plugins: Vec<(String, plugin::PluginSnapshot)>,
    /// Per stream: what each of its PIDs was, and whether it was kept.
    pub pids: Vec<(String, Vec<hlsvault_ts::PidInfo>)>,
    /// Streams of capture files that archived nothing, and why.
    pub empty: Vec<(String, String)>,
}

/// Why a capture file's stream archived nothing: the analysis's reason, or
/// what the file held instead of the stream's datagrams.
fn why_empty(cfg: &StreamConfig, stats: &StreamStats, sources: &[SourceReport]) -> String {
    if let Some(why) = stats.why_empty() {
        return why;
    }
    let file = cfg.source.path.as_deref().unwrap_or(Path::new(""));
    let report = sources.iter().find(|r| Path::new(&r.source) == file);
    no_datagrams(cfg, file, report)
}

/// Says that `file` held no datagram for `cfg`, and what it held instead
/// (from its reader's `report`).
fn no_datagrams(cfg: &StreamConfig, file: &Path, report: Option<&SourceReport>) -> String {
    let mut why = format!("no datagrams to {} in {}", cfg.source.dst(), file.display());
    let Some(report) = report else {
        return why;
    };
    let c = &report.counters;
    if !report.destinations.is_empty() {
        let listed: Vec<String> = report
            .destinations
            .iter()
            .take(10)
            .map(|(dst, n)| format!("{dst} ({n} datagrams)"))
            .collect();
        why.push_str(&format!("; it carries UDP to {}", listed.join(", ")));
    }
    if c.not_udp > 0 {
        why.push_str(&format!(
            "; {} records are not UDP over IP (TCP, ARP, ...)",
            c.not_udp
        ));
    }
    if c.truncated > 0 {
        why.push_str(&format!(
            "; {} records were cut short by the capture's snap length (capture again with a larger snaplen)",
            c.truncated
        ));
    }
    if c.fragments_incomplete > 0 {
        why.push_str(&format!(
            "; {} datagrams arrived as IP fragments that never all came",
            c.fragments_incomplete
        ));
    }
    if c.records == 0 {
        why.push_str("; the file holds no records");
    }
    why
}

impl Report {
    /// Whether every stream ran to the end without losing anything, and
    /// every capture file gave each of its streams something to archive.
    pub fn healthy(&self) -> bool {
        self.streams.iter().all(|(_, s)| s.healthy()) && self.empty.is_empty()
    }
}

/// Checks what the configuration refers to (capture files, link types,
/// interfaces, the privilege to capture) without archiving anything. The
/// streams of capture files that open are tried on the file's first
/// [`DRY_RUN`] of capture time: one that would archive nothing says why.
pub fn check(config: &Config) -> Vec<Problem> {
    let mut problems: Vec<Problem> = findings(config).into_iter().map(|(p, _)| p).collect();
    let mut files: BTreeMap<&Path, Vec<(usize, &StreamConfig)>> = BTreeMap::new();
    for (i, s) in config.streams.iter().enumerate() {
        let opens = !problems
            .iter()
            .any(|p| p.key.starts_with(&format!("streams[{i}] ")));
        if let (SourceKind::PcapFile, Some(path), true) = (s.source.kind, &s.source.path, opens) {
            files.entry(path).or_default().push((i, s));
        }
    }
    for (path, streams) in files {
        let cfgs: Vec<&StreamConfig> = streams.iter().map(|(_, s)| *s).collect();
        match dry_run(path, &cfgs) {
            Ok(whys) => {
                for ((i, s), why) in streams.iter().zip(whys) {
                    if let Some(why) = why {
                        problems.push(Problem {
                            key: format!("streams[{i}] (\"{}\").source", s.name),
                            reason: format!("would archive nothing: {why}"),
                        });
                    }
                }
            }
            Err(e) => problems.push(Problem {
                key: format!(
                    "streams[{}] (\"{}\").source.path",
                    streams[0].0, streams[0].1.name
                ),
                reason: e.to_string(),
            }),
        }
    }
    problems
}

/// How much of a capture file `check` tries each stream on.
const DRY_RUN: Duration = Duration::from_secs(30);

/// Cuts each stream of `path` in memory over the file's first [`DRY_RUN`]
/// of capture time: for each, why it would archive nothing (`None` when it
/// cuts a segment).
fn dry_run(path: &Path, streams: &[&StreamConfig]) -> Result<Vec<Option<String>>, CaptureError> {
    use hlsvault_capture::{Event, Flow, Source};
    let mut cutters: Vec<SegmentCutter> = streams
        .iter()
        .map(|s| SegmentCutter::new(cut_policy(s)))
        .collect();
    let mut seen = vec![false; streams.len()];
    let mut destinations = reader::Destinations::default();
    let mut first = None;
    let mut source = PcapFileSource::new(path.to_path_buf(), crate::config::Pace::Fast);
    let (_, counters) = source.run(&mut |e| {
        let Event::Datagram(d) = e else {
            return Flow::Continue;
        };
        let t0 = *first.get_or_insert(d.at);
        if d.at.duration_since(t0).unwrap_or_default() > DRY_RUN {
            return Flow::Stop;
        }
        destinations.count(d.dst);
        for (i, s) in streams.iter().enumerate() {
            if d.dst == s.source.dst() {
                seen[i] = true;
                if let Payload::Ts(ts) | Payload::Rtp { ts, .. } = rtp::classify(d.payload) {
                    cutters[i].push_datagram(&hlsvault_ts::as_188(ts), d.at, false);
                    cutters[i].take_ready().for_each(drop);
                }
            }
        }
        Flow::Continue
    })?;
    let report = SourceReport {
        source: path.display().to_string(),
        counters,
        ignored: 0,
        destinations: destinations.most_first(),
    };
    Ok(cutters
        .iter_mut()
        .zip(streams)
        .zip(seen)
        .map(|((cutter, s), seen)| match seen {
            true => cutter.why_empty(),
            false => Some(no_datagrams(s, path, Some(&report))),
        })
        .collect())
}

/// A stream's segment cutting settings.
fn cut_policy(cfg: &StreamConfig) -> CutPolicy {
    CutPolicy {
        target: cfg.segment_duration,
        max: cfg.max_segment(),
        recovery: cfg.keyframes == crate::config::Keyframes::Recovery,
        selection: cfg.selection(),
        gap: cfg.max_gap,
    }
}

/// Checks before a run: what a run cannot start with. A missing or down
/// interface, or an unreachable store, is only logged: live sources wait
/// for their interface (hlsvault may start before the network does), and
/// store failures are counted as they happen.
pub fn preflight(config: &Config) -> Vec<Problem> {
    let mut fatal = Vec::new();
    for (p, transient) in findings(config) {
        if transient {
            tracing::warn!(key = %p.key, "{}; starting anyway", p.reason);
        } else {
            fatal.push(p);
        }
    }
    fatal
}

/// Every problem found, and whether it may go away by itself. Each file
/// and interface is probed once, however many streams use it.
fn findings(config: &Config) -> Vec<(Problem, bool)> {
    let mut problems: Vec<(Problem, bool)> = store_finding(config).into_iter().collect();
    if !config.plugins.is_empty() {
        match plugin::Runtime::new(Some(config.plugin_cache.clone())) {
            Ok(runtime) => problems.extend(
                load_plugins(config, &runtime)
                    .1
                    .into_iter()
                    .map(|p| (p, false)),
            ),
            Err(e) => problems.push((
                Problem {
                    key: "plugins".into(),
                    reason: e.to_string(),
                },
                false,
            )),
        }
    }
    problems.extend(source_findings(config.streams.iter().enumerate()));
    problems
}

/// What is wrong with the sources of `streams` (each with its index in
/// the config), and whether it may go away by itself (a missing or down
/// interface). Each file and interface is probed once.
fn source_findings<'a>(
    streams: impl Iterator<Item = (usize, &'a StreamConfig)>,
) -> Vec<(Problem, bool)> {
    type Outcome = Option<(&'static str, String, bool)>;
    let mut probed: HashMap<(SourceKind, Option<String>, Option<PathBuf>), Outcome> =
        HashMap::new();
    let mut problems = Vec::new();
    for (i, s) in streams {
        let src = &s.source;
        let outcome = probed
            .entry((src.kind, src.interface.clone(), src.path.clone()))
            .or_insert_with(|| {
                probe(src).err().map(|(key, e)| {
                    let transient = matches!(e, CaptureError::Interface(_));
                    (key, e.to_string(), transient)
                })
            });
        if let Some((key, reason, transient)) = outcome {
            let key = format!("streams[{i}] (\"{}\").source.{key}", s.name);
            let reason = reason.clone();
            problems.push((Problem { key, reason }, *transient));
        }
    }
    problems
}

/// A plugin that cannot be used is a problem at its `path`.
fn plugin_problem(name: &str, reason: String) -> Problem {
    Problem {
        key: format!("plugins.{name}.path"),
        reason,
    }
}

/// Compiles and pre-instantiates every plugin the config declares.
fn load_plugins(
    config: &Config,
    runtime: &plugin::Runtime,
) -> (BTreeMap<String, Arc<Slot>>, Vec<Problem>) {
    let mut loaded = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, p) in &config.plugins {
        match runtime.load(p) {
            Ok(l) => {
                loaded.insert(name.clone(), Slot::new(l));
            }
            Err(e) => problems.push(plugin_problem(name, e.to_string())),
        }
    }
    (loaded, problems)
}

/// Opens what a source refers to, reading nothing; on failure, the key at
/// fault.
fn probe(src: &SourceConfig) -> Result<(), (&'static str, CaptureError)> {
    let interface = || src.interface.clone().unwrap_or_default();
    match src.kind {
        SourceKind::PcapFile => {
            PcapFileSource::new(src.path.clone().unwrap_or_default(), src.pace())
                .probe()
                .map_err(|e| ("path", e))
        }
        SourceKind::Pcap => PcapLiveSource::new(interface(), Default::default())
            .probe()
            .map_err(|e| ("interface", e)),
        SourceKind::Udp if src.interface.is_some() => netif::find(&interface())
            .map(drop)
            .map_err(|e| ("interface", e.into())),
        SourceKind::Udp => Ok(()),
    }
}

/// The store the config names.
pub fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Ok(match config.storage.backend {
        Backend::Fs => Arc::new(FsStore::new(&config.storage.root)),
        Backend::S3 => Arc::new(S3Store::new(&s3_settings(config)?)?),
    })
}

/// The S3 settings validation proved complete.
fn s3_settings(config: &Config) -> Result<hlsvault_store::S3Settings, StoreError> {
    config.storage.s3().ok_or_else(|| StoreError::Backend {
        op: "connect",
        key: "storage".into(),
        reason: "endpoint, bucket or credentials missing".into(),
    })
}

/// Reaches the S3 store, if that is the backend; an unreachable endpoint
/// may come back (transient), refused credentials or a missing bucket
/// will not.
fn store_finding(config: &Config) -> Option<(Problem, bool)> {
    if config.storage.backend != Backend::S3 {
        return None;
    }
    let problem = |key: &str, reason: String| Problem {
        key: format!("storage.{key}"),
        reason,
    };
    let store = match s3_settings(config).and_then(|s| S3Store::new(&s)) {
        Ok(s) => s,
        Err(e) => return Some((problem("endpoint", e.to_string()), false)),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Some((problem("endpoint", e.to_string()), false)),
    };
    let checked = runtime.block_on(async {
        tokio::time::timeout(
            STORE_CHECK_TIMEOUT,
            store.check(config.storage.create_bucket),
        )
        .await
    });
    match checked {
        Ok(Ok(())) => None,
        Ok(Err(f)) => Some((problem(f.key, f.reason), f.unreachable)),
        Err(_) => Some((
            problem(
                "endpoint",
                format!(
                    "no answer within {}",
                    humantime::format_duration(STORE_CHECK_TIMEOUT)
                ),
            ),
            true,
        )),
    }
}

/// How long `check` waits for the store to answer.
const STORE_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Archives every stream of `config` until its sources end (capture files)
/// or a SIGINT/SIGTERM stops them (live sources). With `file` (the config's
/// path), changes to it and to the plugin files are applied while running
/// (see `Supervisor::reload`).
pub fn run(config: &Config, file: Option<&Path>) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hlsvault-io")
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    runtime.spawn(stop_on_signal(stop.clone()));
    let store = open_store(config)?;
    let plugin_runtime = match config.plugins.is_empty() {
        true => None,
        false => Some(Arc::new(plugin::Runtime::new(Some(
            config.plugin_cache.clone(),
        ))?)),
    };
    let plugins = match &plugin_runtime {
        Some(r) => {
            let (loaded, problems) = load_plugins(config, r);
            if let Some(p) = problems.first() {
                anyhow::bail!("{}: {}", p.key, p.reason);
            }
            loaded
        }
        None => BTreeMap::new(),
    };
    let figures = Arc::new(Figures::default());
    if let Some(serve) = &config.serve {
        let listener = runtime.block_on(tokio::net::TcpListener::bind(serve.listen))?;
        let figures = figures.clone();
        let (store, config) = (store.clone(), config.clone());
        runtime.spawn(async move {
            if let Err(e) = crate::serve::serve(listener, store, &config, Some(figures)).await {
                tracing::error!(error = %e, "playback server failed");
            }
        });
    }
    tracing::info!(
        store = store.describe(),
        streams = config.streams.len(),
        "archiving"
    );
    let total = config
        .streams
        .iter()
        .filter_map(|s| match ReaderKey::of(s) {
            ReaderKey::File(p, _) => Some(p),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Arc::new(Progress::new(total));
    let mut files = FileWatch::new();
    let shared = supervisor::Shared {
        io: runtime.handle().clone(),
        limits: QueueLimits {
            uploads: Arc::new(tokio::sync::Semaphore::new(
                config.storage.upload_concurrency,
            )),
            memory: config.storage.queue_bytes(),
            spool_dir: config.storage.spool_dir.clone(),
        },
        store,
        stop,
        progress: progress.clone(),
        figures: figures.clone(),
        wake: files.waker(),
    };
    let mut running = Supervisor::start(shared, config.clone(), plugin_runtime, plugins)?;
    if let Some(f) = file {
        files.set(running.watched(f));
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let interval = config.stats_interval;
    let logger = {
        let figures = figures.clone();
        std::thread::Builder::new()
            .name("figures".into())
            .spawn(move || watch_figures(&figures, interval, done_rx))?
    };
    // Until every reader has ended: apply the changed files.
    let mut ended = Vec::new();
    while running.reap(&ended) {
        let changed;
        (ended, changed) = files.next(WATCH_EVERY);
        let Some(f) = file else { continue };
        if changed.is_empty() {
            continue;
        }
        for path in changed {
            match path == watch::absolute(f) {
                true => running.reload(f),
                false => running.plugin_file_changed(&path),
            }
        }
        // A reload may have changed which plugin files there are.
        files.set(running.watched(f));
    }
    let running_config = running.config().clone();
    let outcome = running.finish();
    progress.finish();
    drop(done_tx);
    let _ = logger.join();
    Ok(Report {
        streams: outcome
            .streams
            .iter()
            .map(|(n, st)| (n.clone(), st.snapshot()))
            .collect(),
        pids: outcome
            .streams
            .iter()
            .map(|(n, st)| (n.clone(), st.pids()))
            .collect(),
        empty: outcome
            .streams
            .iter()
            .filter_map(|(name, st)| {
                let cfg = running_config.streams.iter().find(|s| &s.name == name)?;
                let files = cfg.source.kind == SourceKind::PcapFile;
                let snap = st.snapshot();
                // Empty because of what the file holds (what plugins or
                // the store did is counted and judged apart).
                let input = st.why_empty().is_some() || snap.datagrams == 0;
                (files && input && snap.segments == 0 && !snap.failed)
                    .then(|| (name.clone(), why_empty(cfg, st, &outcome.sources)))
            })
            .collect(),
        sources: outcome.sources,
        plugins: outcome
            .plugins
            .into_iter()
            .map(|(n, f)| (n, f.snapshot()))
            .collect(),
    })
}

/// How often the run looks at its readers and watched files when nothing
/// wakes it.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Signs an hour again: writes a fresh `index.signed.m3u8` for `stream`'s
/// hour `label` (`YYYY-MM-DDTHH`, UTC), updates its line in `hours.log`
/// when the config hands out presigned URLs, and returns the playlist's
/// new presigned URL (valid for `url_expiry`).
pub fn sign(config: &Config, stream: &str, label: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    if !config.streams.iter().any(|s| s.name == stream) {
        anyhow::bail!("no stream named \"{stream}\" in the config");
    }
    let hour = hlsvault_hls::Hour::parse(label)
        .with_context(|| format!("\"{label}\" is not an hour: write it as YYYY-MM-DDTHH (UTC)"))?;
    let store = open_store(config)?;
    let layout = hlsvault_hls::Layout::new(stream);
    let urls = Urls::Presigned {
        expiry: config.storage.url_expiry,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let key = layout.hour_playlist_key(hour);
        let text = store.get(&key).await?.with_context(|| {
            format!("the store holds no playlist for {stream} at {label} ({key})")
        })?;
        let playlist = hlsvault_hls::Playlist::parse(
            hlsvault_hls::Kind::Event,
            &String::from_utf8_lossy(&text),
        )
        .with_context(|| format!("{key} cannot be read"))?;
        let kind = match playlist.is_ended() {
            true => hlsvault_store::ObjectKind::ClosedPlaylist,
            false => hlsvault_store::ObjectKind::OpenPlaylist,
        };
        // hours.log hands out presigned URLs only when the config says so;
        // otherwise its line stays as it is.
        let url = match config.storage.urls == crate::config::UrlMode::Presigned {
            true => HourPublisher::open(store.clone(), layout, urls)
                .await?
                .publish(hour, &playlist, kind, |url| Some(url.to_string()))
                .await?
                .context("no URL")?,
            false => {
                urls.hand_out(store.as_ref(), &layout, hour, &playlist, kind)
                    .await?
            }
        };
        Ok(url)
    })
}

/// Sets `stop` at the first SIGINT or SIGTERM; a second one exits at once.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; SIGTERM will not flush");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(
        "stopping: flushing open segments and playlists (a second signal exits at once)"
    );
    stop.store(true, Ordering::Relaxed);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::error!("second signal: exiting without flushing");
    std::process::exit(130);
}

/// How often the bit rate is sampled (for the metrics and the status page).
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Samples every stream's bit rate and logs its figures each `interval`,
/// until `done` closes.
fn watch_figures(figures: &Figures, interval: Duration, done: Receiver<()>) {
    // Per stream: its counters and their snapshot at the last line (a
    // restarted stream has new counters, and starts from zero).
    let mut last: HashMap<String, (Arc<StreamStats>, Snapshot)> = HashMap::new();
    let mut at = Instant::now();
    let tick = interval.min(SAMPLE_EVERY);
    figures
        .streams()
        .iter()
        .for_each(|s| s.stats.sample_bitrate());
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(tick) {
        let streams = figures.streams();
        streams.iter().for_each(|s| s.stats.sample_bitrate());
        if at.elapsed() < interval.saturating_sub(tick / 2) {
            continue;
        }
        let secs = at.elapsed().as_secs_f64();
        at = Instant::now();
        let mut now_last = HashMap::new();
        for s in streams {
            let now = s.stats.snapshot();
            let was = match last.remove(&s.name) {
                Some((stats, snap)) if Arc::ptr_eq(&stats, &s.stats) => snap,
                _ => Snapshot::default(),
            };
            tracing::info!(stream = %s.name, "{}", now.live_line(&was, secs));
            now_last.insert(s.name, (s.stats, now));
        }
        last = now_last;
        for (name, p) in figures.plugins() {
            tracing::info!(plugin = %name, "{}", p.snapshot());
        }
    }
}

/// One side's instances of stream `cfg`'s plugins (`slots`).
fn plugins_of(slots: &[Arc<Slot>], cfg: &StreamConfig) -> StreamPlugins {
    StreamPlugins::new(
        slots,
        &cfg.name,
        cfg.source.group.to_string(),
        cfg.source.port,
    )
}

/// The analysis thread of one stream: RTP, packet filter plugins, TS
/// analysis and cutting.
fn analyse(
    cfg: StreamConfig,
    rx: Receiver<Input>,
    tx: tokio::sync::mpsc::Sender<Segment>,
    stats: Arc<StreamStats>,
    slots: Vec<Arc<Slot>>,
) {
    let span = tracing::info_span!("stream", name = %cfg.name);
    let _enter = span.enter();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut plugins = plugins_of(&slots, &cfg);
        let mut cutter = SegmentCutter::new(cut_policy(&cfg));
        let mut reorder = rtp::Reorder::default();
        let mut problems = ProblemLog::default();
        let send = |cutter: &mut SegmentCutter| {
            for seg in cutter.take_ready() {
                if tx.blocking_send(seg).is_err() {
                    stats.lost_segment();
                }
            }
        };
        let mut pids_at: Option<Instant> = None;
        // A live stream that receives data but cuts nothing says why, once.
        let started = Instant::now();
        let mut told_empty = !cfg.source.kind.is_live();
        let silent_for = (cfg.segment_duration * 3).max(NO_SEGMENT_WARNING);
        let mut report =
            |cutter: &SegmentCutter, reorder: &rtp::Reorder, problems: &mut ProblemLog, last| {
                stats.rtp(reorder.counters());
                stats.analysis(cutter.ts_counters(), cutter.counters());
                problems.report(&stats.snapshot(), last);
                // The table walks every PID: once a second is enough.
                if last || pids_at.is_none_or(|t| t.elapsed() >= PID_TABLE_EVERY) {
                    stats.set_pids(cutter.analyzer().pids());
                    pids_at = Some(Instant::now());
                    if !told_empty && started.elapsed() >= silent_for {
                        told_empty = true;
                        if let Some(why) = cutter.why_empty() {
                            tracing::warn!(
                                after = %humantime::format_duration(silent_for),
                                "receiving, but no segment yet: {why}"
                            );
                        }
                    }
                }
            };
        for input in rx {
            match input {
                Input::Data(batch) => {
                    let mut at = 0;
                    let items: Vec<(SystemTime, Payload)> = batch
                        .items
                        .iter()
                        .map(|&(time, len)| {
                            at += len;
                            (time, rtp::classify(&batch.data[at - len..at]))
                        })
                        .collect();
                    // 204-byte and 192-byte packets become 188 here, before
                    // the packet filters and the analysis see them.
                    let packets: Vec<Cow<[u8]>> = items
                        .iter()
                        .map(|(_, p)| match p {
                            Payload::Ts(ts) | Payload::Rtp { ts, .. } => {
                                let plain = hlsvault_ts::as_188(ts);
                                if let Cow::Owned(o) = &plain {
                                    stats.resized(o.len() / hlsvault_ts::PACKET_SIZE);
                                }
                                plain
                            }
                            Payload::NotTs => Cow::Borrowed(&[][..]),
                        })
                        .collect();
                    let ts: Vec<&[u8]> = packets.iter().map(|p| &p[..]).collect();
                    // The packet filters see many datagrams in one call.
                    let mut filtered = plugins.filter(&batch.data, &ts);
                    stats.filtered(filtered.dropped);
                    for (i, (time, payload)) in items.iter().enumerate() {
                        let ready = cutter.ready_count();
                        let packets = &filtered.packets[i];
                        match *payload {
                            Payload::Ts(ts) => {
                                stats.datagram(ts.len());
                                cutter.push_datagram(packets, *time, false);
                            }
                            Payload::Rtp { ts, seq } => {
                                stats.datagram(ts.len());
                                reorder.push(seq, packets, *time, &mut |ts, at, lost| {
                                    cutter.push_datagram(ts, at, lost > 0)
                                });
                            }
                            Payload::NotTs => stats.not_ts(),
                        }
                        // A segment ended in this datagram: a plugin whose
                        // file changed takes over from the next one, and
                        // the rest of the batch is filtered again by it.
                        if cutter.ready_count() > ready && plugins.segment_boundary() {
                            let rest = plugins.filter(&batch.data, &ts[i + 1..]);
                            stats.filtered(rest.dropped);
                            filtered.packets.truncate(i + 1);
                            filtered.packets.extend(rest.packets);
                        }
                    }
                }
                Input::Stalled(silence) => {
                    reorder.flush(&mut |ts, at, lost| cutter.push_datagram(ts, at, lost > 0));
                    cutter.stall(silence);
                }
            }
            report(&cutter, &reorder, &mut problems, false);
            send(&mut cutter);
        }
        reorder.flush(&mut |ts, at, lost| cutter.push_datagram(ts, at, lost > 0));
        cutter.finish();
        stats.set_empty(cutter.why_empty());
        report(&cutter, &reorder, &mut problems, true);
        send(&mut cutter);
    }));
    if run.is_err() {
        tracing::error!("stream analysis panicked; this stream stops, the others go on");
        stats.fail();
    }
}

/// A live stream that receives data but has cut no segment after this (or
/// three target durations, if longer) logs why.
const NO_SEGMENT_WARNING: Duration = Duration::from_secs(10);

/// How often a stream's PID table is taken for the figures.
const PID_TABLE_EVERY: Duration = Duration::from_secs(1);

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

/// A stream's archive task, as the supervisor holds it: it ends with the
/// stream's uploads when the stream restarts (for the next incarnation).
type ArchiveTask = tokio::task::JoinHandle<Option<Uploads>>;

/// A stream's upload queue and the task that drains it. A restarted
/// stream hands them on to its next incarnation, so what waits for the
/// store (in memory or spooled) is neither dropped nor read back.
struct Uploads {
    queue: Arc<UploadQueue>,
    task: tokio::task::JoinHandle<()>,
    /// The figures of the incarnation it serves.
    stats: Arc<StreamStats>,
}

impl Uploads {
    fn start(queue: UploadQueue, stats: Arc<StreamStats>) -> Self {
        let queue = Arc::new(queue);
        let task = tokio::spawn({
            let q = queue.clone();
            async move { q.run().await }
        });
        Uploads { queue, task, stats }
    }

    /// No more objects come: waits until every one is stored (or, while
    /// the store is down, spooled for the next run).
    async fn finish(self) {
        self.queue.close();
        if self.task.await.is_err() {
            tracing::error!("the upload task panicked");
            self.stats.fail();
        }
    }
}

/// The archive task of one stream: stores segments and playlists in order,
/// through the stream's upload queue.
///
/// `keep_open` holds the run's stop flag (a signal) and the stream's own
/// (a restart): either leaves the hour open at the end; a restart also
/// hands the uploads on. An earlier incarnation of the stream (`after`)
/// finishes writing first, and its uploads go on here.
#[allow(clippy::too_many_arguments)]
async fn publish(
    store: Arc<dyn ObjectStore>,
    limits: QueueLimits,
    settings: ArchiveSettings,
    cfg: StreamConfig,
    mut rx: tokio::sync::mpsc::Receiver<Segment>,
    stats: Arc<StreamStats>,
    keep_open: [Arc<AtomicBool>; 2],
    after: Option<ArchiveTask>,
) -> Option<Uploads> {
    let handed = match after {
        Some(earlier) => earlier.await.ok().flatten(),
        None => None,
    };
    let mut uploads = match handed {
        Some(u) => u,
        None => match UploadQueue::new(store, &cfg.name, limits) {
            Ok(q) => Uploads::start(q, stats.clone()),
            Err(e) => {
                tracing::error!(error = %e, "cannot open the stream's spool; its segments are lost");
                lose_all(&mut rx, &stats).await;
                return None;
            }
        },
    };
    uploads.stats = stats.clone();
    stats.attach_queue(uploads.queue.clone());
    archive(
        uploads.queue.clone(),
        settings,
        &cfg,
        &mut rx,
        &stats,
        &keep_open,
    )
    .await;
    if keep_open[1].load(Ordering::Relaxed) {
        return Some(uploads);
    }
    uploads.finish().await;
    None
}

/// The stream has failed: every segment still coming is counted lost.
async fn lose_all(rx: &mut tokio::sync::mpsc::Receiver<Segment>, stats: &StreamStats) {
    stats.fail();
    while rx.recv().await.is_some() {
        stats.lost_segment();
    }
}

async fn archive(
    store: Arc<UploadQueue>,
    settings: ArchiveSettings,
    cfg: &StreamConfig,
    rx: &mut tokio::sync::mpsc::Receiver<Segment>,
    stats: &Arc<StreamStats>,
    keep_open: &[Arc<AtomicBool>; 2],
) {
    let [stop, restart] = keep_open;
    // A store that cannot be reached yet is waited for: reading the archive
    // back (never guessing) comes before the first segment. Meanwhile the
    // segments queue up behind this task.
    let mut wait = Duration::from_secs(1);
    let mut archive = loop {
        let plugins = plugins_of(&settings.plugins, cfg);
        match StreamArchive::open(
            store.clone(),
            &cfg.name,
            settings.clone(),
            stats.clone(),
            plugins,
        )
        .await
        {
            Ok(a) => break a,
            Err(e @ StoreError::Unreachable { .. }) if !stop.load(Ordering::Relaxed) => {
                tracing::warn!(error = %e, retry_in = %humantime::format_duration(wait), "cannot read the stream's archive back yet; waiting for the store");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open the stream's archive; its segments are lost");
                return lose_all(rx, stats).await;
            }
        }
    };
    while let Some(seg) = rx.recv().await {
        if let Err(e) = archive.add(seg).await {
            tracing::error!(error = %e, "store write failed");
        }
    }
    // Stopped by a signal or restarted, the hour stays open for the next
    // run or incarnation to continue.
    let end = !(stop.load(Ordering::Relaxed) || restart.load(Ordering::Relaxed));
    if let Err(e) = archive.finish(end).await {
        tracing::error!(error = %e, "cannot write the final playlists");
    }
}
