//! The figures registry: per-stream and per-plugin counters, kept in one
//! place so logs, the run summary, the metrics endpoint and the status page
//! all read the same numbers. The engine writes them, serve reads them;
//! neither imports the other.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

mod cluster;

pub use cluster::{ClusterFigures, NodeFigures, Role};

use hlsvault_hls::Playlist;
use hlsvault_store::{PublishLatency, QueueCounters, UploadQueue};
use hlsvault_ts::clock::format_seconds;
use hlsvault_ts::segment::CutCounters;
use hlsvault_ts::{PidInfo, TsCounters};

/// Live counters of one stream, shared between its threads.
#[derive(Default)]
pub struct StreamStats {
    datagrams: AtomicU64,
    ts_bytes: AtomicU64,
    not_ts: AtomicU64,
    filtered: AtomicU64,
    plugin_dropped_segments: AtomicU64,
    rtp_late: AtomicU64,
    rtp_lost: AtomicU64,
    rtp_reordered: AtomicU64,
    undelivered: AtomicU64,
    overflow: AtomicU64,
    kernel_drops: AtomicU64,
    interface_drops: AtomicU64,
    socket_drops: AtomicU64,
    stalls: AtomicU64,
    cc_errors: AtomicU64,
    psi_errors: AtomicU64,
    scte35_errors: AtomicU64,
    scte35_markers: AtomicU64,
    tei_packets: AtomicU64,
    discontinuities: AtomicU64,
    skipped_packets: AtomicU64,
    unsynced_bytes: AtomicU64,
    forced_cuts: AtomicU64,
    parameter_sets_inserted: AtomicU64,
    resized_packets: AtomicU64,
    video_outages: AtomicU64,
    null_packets_dropped: AtomicU64,
    other_packets_dropped: AtomicU64,
    segments: AtomicU64,
    segment_bytes: AtomicU64,
    media_ticks: AtomicU64,
    store_errors: AtomicU64,
    lost_segments: AtomicU64,
    /// Unix time (ms) the last segment was stored; 0 before the first.
    last_segment_ms: AtomicU64,
    failed: AtomicBool,
    /// The stream's upload queue, once it runs: its counters are read live.
    queue: OnceLock<Arc<UploadQueue>>,
    bitrate: Mutex<BitrateHistory>,
    /// What each PID of the stream is, and whether it is kept.
    pids: Mutex<Vec<PidInfo>>,
    /// Why the stream's analysis produced no segment, when it did not.
    empty: Mutex<Option<String>>,
    /// Its part in a cluster (`[cluster]`).
    pub cluster: ClusterFigures,
}

/// What the engine shares with the server: the figures of every stream
/// that runs now (config order) and every plugin's. A config reload
/// changes the lists; readers take a copy.
#[derive(Debug, Default)]
pub struct Figures {
    /// Every stream of the config, and its stall timeout (in a cluster,
    /// also those that run on other nodes).
    configured: RwLock<Vec<(String, Duration)>>,
    streams: RwLock<Vec<StreamFigures>>,
    plugins: RwLock<Vec<(String, Arc<hlsvault_plugin::PluginFigures>)>>,
    playouts: RwLock<Vec<PlayoutFigures>>,
    /// This node, in a cluster.
    node: OnceLock<Arc<NodeFigures>>,
}

/// One running playout's figures.
#[derive(Debug, Clone)]
pub struct PlayoutFigures {
    /// Its settings.
    pub config: crate::config::PlayoutConfig,
    /// Its counters (a restarted playout gets new ones).
    pub figures: Arc<crate::replay::ReplayFigures>,
}

/// One running stream's figures.
#[derive(Debug, Clone)]
pub struct StreamFigures {
    /// The stream's name.
    pub name: String,
    /// Silence longer than this makes it stalled.
    pub stall_timeout: Duration,
    /// Its counters (a restarted stream gets new ones).
    pub stats: Arc<StreamStats>,
}

impl Figures {
    /// Every running stream's figures, in config order.
    pub fn streams(&self) -> Vec<StreamFigures> {
        self.streams.read().expect("figures lock").clone()
    }

    /// Every stream of the config and its stall timeout, with its figures
    /// if it runs here.
    pub fn configured(&self) -> Vec<(String, Duration, Option<Arc<StreamStats>>)> {
        let streams = self.streams.read().expect("figures lock");
        let stats = |name: &str| {
            let running = streams.iter().find(|s| s.name == name);
            running.map(|s| s.stats.clone())
        };
        let configured = self.configured.read().expect("figures lock");
        configured
            .iter()
            .map(|(n, stall)| (n.clone(), *stall, stats(n)))
            .collect()
    }

    /// Whether stream `name` is in the config.
    pub fn knows(&self, name: &str) -> bool {
        let configured = self.configured.read().expect("figures lock");
        configured.iter().any(|(n, _)| n == name)
    }

    /// Every plugin's figures, by name.
    pub fn plugins(&self) -> Vec<(String, Arc<hlsvault_plugin::PluginFigures>)> {
        self.plugins.read().expect("figures lock").clone()
    }

    /// Every running playout's figures, in config order.
    pub fn playouts(&self) -> Vec<PlayoutFigures> {
        self.playouts.read().expect("figures lock").clone()
    }

    /// Makes this process a node of a cluster, with these figures.
    pub fn set_node(&self, node: Arc<NodeFigures>) {
        let _ = self.node.set(node);
    }

    /// This node's figures, in a cluster.
    pub fn node(&self) -> Option<&Arc<NodeFigures>> {
        self.node.get()
    }

    /// Replaces the playouts that run.
    pub fn set_playouts(&self, playouts: Vec<PlayoutFigures>) {
        *self.playouts.write().expect("figures lock") = playouts;
    }

    /// Replaces what runs.
    pub fn set(
        &self,
        configured: Vec<(String, Duration)>,
        streams: Vec<StreamFigures>,
        plugins: Vec<(String, Arc<hlsvault_plugin::PluginFigures>)>,
    ) {
        *self.configured.write().expect("figures lock") = configured;
        *self.streams.write().expect("figures lock") = streams;
        *self.plugins.write().expect("figures lock") = plugins;
    }
}

/// What a stream's recording is doing, as the store shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Its live window is open and its newest segment is recent.
    Receiving,
    /// Its live window is open but nothing came for longer than the stall
    /// timeout (and a minute of slack for the upload).
    Stalled,
    /// No live window, or it is ended: the stream does not run.
    Stopped,
}

impl StreamState {
    /// The state of a stream whose live window is `live` (if the store
    /// has one), `age` after its newest segment ended.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hlsvault::figures::StreamState;
    /// let stall = Duration::from_secs(5);
    /// assert_eq!(StreamState::of(None, None, stall), StreamState::Stopped);
    /// ```
    pub fn of(live: Option<&Playlist>, age: Option<Duration>, stall: Duration) -> Self {
        match (live, age) {
            (Some(p), Some(a)) if !p.is_ended() => match a <= stall + UPLOAD_SLACK {
                true => StreamState::Receiving,
                false => StreamState::Stalled,
            },
            _ => StreamState::Stopped,
        }
    }

    /// Its name, as JSON and the status page show it.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Receiving => "receiving",
            StreamState::Stalled => "stalled",
            StreamState::Stopped => "stopped",
        }
    }
}

/// How long a segment may take to reach the store before its stream looks
/// stalled.
const UPLOAD_SLACK: Duration = Duration::from_secs(60);

/// How far back the bit rate history reaches.
pub const HISTORY: Duration = Duration::from_secs(3600);

/// The received bit rate, sampled over the last [`HISTORY`].
#[derive(Debug, Default)]
struct BitrateHistory {
    /// (when, bits per second) of each sample, oldest first.
    samples: VecDeque<(SystemTime, f64)>,
    /// TS bytes and time of the last sample.
    last: Option<(u64, Instant)>,
}

/// A copy of a stream's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Datagrams delivered to the stream.
    pub datagrams: u64,
    /// TS bytes received.
    pub ts_bytes: u64,
    /// Datagrams discarded: not TS (nor RTP-wrapped TS).
    pub not_ts: u64,
    /// TS packets packet filter plugins dropped.
    pub filtered: u64,
    /// Segments not stored because a fail-closed segment namer failed.
    pub plugin_dropped_segments: u64,
    /// Datagrams discarded: RTP repeats or late arrivals.
    pub rtp_late: u64,
    /// Datagrams missing by RTP sequence number.
    pub rtp_lost: u64,
    /// RTP datagrams that arrived out of order and were put back in place.
    pub rtp_reordered: u64,
    /// Datagrams discarded because the stream's pipeline had failed.
    pub undelivered: u64,
    /// Datagrams discarded because the stream's analysis fell behind the
    /// live capture (its queue was full).
    pub overflow: u64,
    /// Packets the kernel's capture buffer dropped (libpcap `ps_drop`), for
    /// the whole capture handle this stream shares.
    pub kernel_drops: u64,
    /// Packets the interface dropped (libpcap `ps_ifdrop`), likewise shared.
    pub interface_drops: u64,
    /// Datagrams the kernel dropped for this stream's socket (buffer full).
    pub socket_drops: u64,
    /// Times the stream went silent past its stall timeout.
    pub stalls: u64,
    /// Continuity counter errors.
    pub cc_errors: u64,
    /// PSI sections refused.
    pub psi_errors: u64,
    /// SCTE-35 sections refused (CRC, truncated, encrypted).
    pub scte35_errors: u64,
    /// SCTE-35 markers stored with their segments.
    pub scte35_markers: u64,
    /// Packets with the transport error indicator.
    pub tei_packets: u64,
    /// Breaks in the timeline.
    pub discontinuities: u64,
    /// Packets no segment could start with (before a keyframe).
    pub skipped_packets: u64,
    /// Bytes without TS sync inside TS datagrams.
    pub unsynced_bytes: u64,
    /// Segments cut without a keyframe.
    pub forced_cuts: u64,
    /// Segments given the parameter sets their first picture lacked.
    pub parameter_sets_inserted: u64,
    /// 204-byte (parity) and 192-byte (M2TS) packets stored as 188.
    pub resized_packets: u64,
    /// Times audio timed the segments while video was absent.
    pub video_outages: u64,
    /// Null packets not stored (`null_packets = "drop"`).
    pub null_packets_dropped: u64,
    /// Packets of other programs and unlisted PIDs not stored.
    pub other_packets_dropped: u64,
    /// Segments stored.
    pub segments: u64,
    /// Bytes of segments stored.
    pub segment_bytes: u64,
    /// Media stored, in 90 kHz ticks.
    pub media_ticks: u64,
    /// Failed store operations.
    pub store_errors: u64,
    /// Uploads that failed and were retried.
    pub store_retries: u64,
    /// Objects that waited in the spool while the store was down.
    pub spooled: u64,
    /// Objects the upload queue could not keep (no spool, queue full, or
    /// the store still down at exit without a spool).
    pub refused: u64,
    /// Objects waiting in the upload queue now.
    pub waiting: u64,
    /// Of those, objects waiting in the spool on disk.
    pub spool_depth: u64,
    /// How long segments waited in the upload queue.
    #[serde(skip)]
    pub publish_latency: PublishLatency,
    /// When the last segment was stored.
    #[serde(skip)]
    pub last_segment: Option<SystemTime>,
    /// Segments that could not be stored.
    pub lost_segments: u64,
    /// The stream's pipeline failed.
    pub failed: bool,
}

/// What a stream's input got wrong so far (cumulative): the counters its
/// analysis logs, read without the upload queue's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputProblems {
    /// Continuity counter errors.
    pub cc_errors: u64,
    /// PSI sections and adaptation fields refused.
    pub psi_errors: u64,
    /// SCTE-35 sections refused.
    pub scte35_errors: u64,
    /// Bytes without TS sync inside TS datagrams.
    pub unsynced_bytes: u64,
    /// Packets with the transport error indicator.
    pub tei_packets: u64,
    /// Datagrams that are not TS.
    pub not_ts: u64,
    /// Datagrams missing by RTP sequence number.
    pub rtp_lost: u64,
    /// RTP repeats or late arrivals.
    pub rtp_late: u64,
}

impl StreamStats {
    /// What the input got wrong so far.
    pub fn input_problems(&self) -> InputProblems {
        InputProblems {
            cc_errors: self.cc_errors.load(Relaxed),
            psi_errors: self.psi_errors.load(Relaxed),
            scte35_errors: self.scte35_errors.load(Relaxed),
            unsynced_bytes: self.unsynced_bytes.load(Relaxed),
            tei_packets: self.tei_packets.load(Relaxed),
            not_ts: self.not_ts.load(Relaxed),
            rtp_lost: self.rtp_lost.load(Relaxed),
            rtp_late: self.rtp_late.load(Relaxed),
        }
    }

    /// A datagram arrived with `ts_bytes` of TS.
    pub fn datagram(&self, ts_bytes: usize) {
        self.datagrams.fetch_add(1, Relaxed);
        self.ts_bytes.fetch_add(ts_bytes as u64, Relaxed);
    }

    /// A datagram carried `n` 204-byte or 192-byte packets, stored as 188.
    pub fn resized(&self, n: usize) {
        self.resized_packets.fetch_add(n as u64, Relaxed);
    }

    /// A datagram was not TS.
    pub fn not_ts(&self) {
        self.datagrams.fetch_add(1, Relaxed);
        self.not_ts.fetch_add(1, Relaxed);
    }

    /// Packet filter plugins dropped `n` TS packets.
    pub fn filtered(&self, n: u64) {
        if n > 0 {
            self.filtered.fetch_add(n, Relaxed);
        }
    }

    /// A fail-closed segment namer failed: the segment was not stored.
    pub fn plugin_dropped_segment(&self) {
        self.plugin_dropped_segments.fetch_add(1, Relaxed);
    }

    /// Takes the RTP reorder counters (they are cumulative).
    pub fn rtp(&self, r: hlsvault_ts::rtp::ReorderCounters) {
        self.rtp_lost.store(r.lost, Relaxed);
        self.rtp_reordered.store(r.reordered, Relaxed);
        self.rtp_late.store(r.late, Relaxed);
    }

    /// `n` datagrams were dropped because the analysis fell behind.
    pub fn overflow(&self, n: u64) {
        self.overflow.fetch_add(n, Relaxed);
    }

    /// Takes the drop counters of the capture handle (cumulative).
    pub fn capture_drops(&self, kernel: u64, interface: u64) {
        self.kernel_drops.store(kernel, Relaxed);
        self.interface_drops.store(interface, Relaxed);
    }

    /// Takes the drop counter of the stream's socket (cumulative).
    pub fn socket_drops(&self, n: u64) {
        self.socket_drops.store(n, Relaxed);
    }

    /// The stream went silent.
    pub fn stall(&self) {
        self.stalls.fetch_add(1, Relaxed);
    }

    /// A datagram could not be handed to the stream's failed pipeline.
    pub fn undelivered(&self) {
        self.undelivered.fetch_add(1, Relaxed);
    }

    /// Takes the analysis counters (they are cumulative).
    pub fn analysis(&self, ts: TsCounters, cut: CutCounters) {
        self.cc_errors.store(ts.cc_errors, Relaxed);
        self.psi_errors
            .store(ts.psi_errors + ts.bad_adaptation, Relaxed);
        self.scte35_errors.store(ts.scte35_errors, Relaxed);
        self.tei_packets.store(ts.tei_packets, Relaxed);
        self.discontinuities.store(cut.discontinuities, Relaxed);
        self.skipped_packets.store(cut.skipped_packets, Relaxed);
        self.unsynced_bytes.store(cut.unsynced_bytes, Relaxed);
        self.forced_cuts.store(cut.forced_cuts, Relaxed);
        self.parameter_sets_inserted
            .store(cut.parameter_sets_inserted, Relaxed);
        self.null_packets_dropped
            .store(cut.null_packets_dropped, Relaxed);
        self.video_outages.store(cut.video_outages, Relaxed);
        self.other_packets_dropped
            .store(cut.other_packets_dropped, Relaxed);
    }

    /// Takes the stream's PID table (what each PID is, packets, kept).
    pub fn set_pids(&self, pids: Vec<PidInfo>) {
        *self.pids.lock().expect("pids lock") = pids;
    }

    /// What each PID of the stream is, its packets, and whether it is kept.
    pub fn pids(&self) -> Vec<PidInfo> {
        self.pids.lock().expect("pids lock").clone()
    }

    /// Takes why the analysis produced no segment (at its end).
    pub fn set_empty(&self, why: Option<String>) {
        *self.empty.lock().expect("empty lock") = why;
    }

    /// Why the analysis produced no segment, if it ended without one.
    pub fn why_empty(&self) -> Option<String> {
        self.empty.lock().expect("empty lock").clone()
    }

    /// A segment was stored.
    pub fn segment(&self, bytes: usize, ticks: u64) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        self.last_segment_ms.store(now.as_millis() as u64, Relaxed);
        self.segments.fetch_add(1, Relaxed);
        self.segment_bytes.fetch_add(bytes as u64, Relaxed);
        self.media_ticks.fetch_add(ticks, Relaxed);
    }

    /// A store operation failed; `segment` says a segment was lost with it.
    pub fn store_error(&self, segment: bool) {
        self.store_errors.fetch_add(1, Relaxed);
        if segment {
            self.lost_segment();
        }
    }

    /// From now on the upload queue's counters are part of the figures.
    pub fn attach_queue(&self, queue: Arc<UploadQueue>) {
        let _ = self.queue.set(queue);
    }

    /// Takes a bit rate sample (received TS since the last one) and
    /// forgets samples older than [`HISTORY`].
    pub fn sample_bitrate(&self) {
        let bytes = self.ts_bytes.load(Relaxed);
        let now = Instant::now();
        let mut h = self.bitrate.lock().expect("bitrate lock");
        if let Some((was, at)) = h.last {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            h.samples
                .push_back((SystemTime::now(), (bytes - was) as f64 * 8.0 / secs));
        }
        h.last = Some((bytes, now));
        while h
            .samples
            .front()
            .is_some_and(|(t, _)| t.elapsed().unwrap_or_default() > HISTORY)
        {
            h.samples.pop_front();
        }
    }

    /// The bit rate samples of the last [`HISTORY`], oldest first.
    pub fn bitrate_history(&self) -> Vec<(SystemTime, f64)> {
        let h = self.bitrate.lock().expect("bitrate lock");
        h.samples.iter().copied().collect()
    }

    /// A finished segment could not be stored.
    pub fn lost_segment(&self) {
        self.lost_segments.fetch_add(1, Relaxed);
    }

    /// `count` SCTE-35 markers went into the playlists with a segment.
    pub fn markers(&self, count: u64) {
        self.scte35_markers.fetch_add(count, Relaxed);
    }

    /// The pipeline failed.
    pub fn fail(&self) {
        self.failed.store(true, Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let q = self
            .queue
            .get()
            .map_or_else(QueueCounters::default, |q| q.counters());
        let last_ms = self.last_segment_ms.load(Relaxed);
        Snapshot {
            datagrams: self.datagrams.load(Relaxed),
            ts_bytes: self.ts_bytes.load(Relaxed),
            not_ts: self.not_ts.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            plugin_dropped_segments: self.plugin_dropped_segments.load(Relaxed),
            rtp_late: self.rtp_late.load(Relaxed),
            rtp_lost: self.rtp_lost.load(Relaxed),
            rtp_reordered: self.rtp_reordered.load(Relaxed),
            undelivered: self.undelivered.load(Relaxed),
            overflow: self.overflow.load(Relaxed),
            kernel_drops: self.kernel_drops.load(Relaxed),
            interface_drops: self.interface_drops.load(Relaxed),
            socket_drops: self.socket_drops.load(Relaxed),
            stalls: self.stalls.load(Relaxed),
            cc_errors: self.cc_errors.load(Relaxed),
            psi_errors: self.psi_errors.load(Relaxed),
            scte35_errors: self.scte35_errors.load(Relaxed),
            scte35_markers: self.scte35_markers.load(Relaxed),
            tei_packets: self.tei_packets.load(Relaxed),
            discontinuities: self.discontinuities.load(Relaxed),
            skipped_packets: self.skipped_packets.load(Relaxed),
            unsynced_bytes: self.unsynced_bytes.load(Relaxed),
            forced_cuts: self.forced_cuts.load(Relaxed),
            parameter_sets_inserted: self.parameter_sets_inserted.load(Relaxed),
            null_packets_dropped: self.null_packets_dropped.load(Relaxed),
            resized_packets: self.resized_packets.load(Relaxed),
            video_outages: self.video_outages.load(Relaxed),
            other_packets_dropped: self.other_packets_dropped.load(Relaxed),
            segments: self.segments.load(Relaxed),
            segment_bytes: self.segment_bytes.load(Relaxed),
            media_ticks: self.media_ticks.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            store_retries: q.retries,
            spooled: q.spooled,
            refused: q.refused,
            waiting: q.waiting,
            spool_depth: q.spool_depth,
            publish_latency: q.latency,
            last_segment: (last_ms > 0)
                .then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(last_ms)),
            lost_segments: self.lost_segments.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

impl fmt::Debug for StreamStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StreamStats")
            .field(&self.snapshot())
            .finish()
    }
}

impl Snapshot {
    /// Whether anything was lost or went wrong that an operator must see.
    pub fn healthy(&self) -> bool {
        !self.failed
            && self.store_errors == 0
            && self.lost_segments == 0
            && self.undelivered == 0
            && self.overflow == 0
            && self.refused == 0
    }

    /// The figures an operator watches on a running stream, with the bit
    /// rate since `earlier`, taken `secs` seconds before.
    pub fn live_line(&self, earlier: &Snapshot, secs: f64) -> String {
        let mbps = (self.ts_bytes - earlier.ts_bytes) as f64 * 8.0 / secs.max(1e-3) / 1e6;
        format!(
            "{mbps:.2} Mbit/s, {} datagrams, {} kernel drops, {} interface drops, {} socket drops, {} CC errors, {} RTP lost, {} segments, {} stalls",
            self.datagrams,
            self.kernel_drops,
            self.interface_drops,
            self.socket_drops,
            self.cc_errors,
            self.rtp_lost,
            self.segments,
            self.stalls,
        )
    }
}

/// The one-line summary of a stream.
impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let media_secs = self.media_ticks as f64 / 90_000.0;
        let mbps = match media_secs > 0.0 {
            true => self.segment_bytes as f64 * 8.0 / media_secs / 1e6,
            false => 0.0,
        };
        write!(
            f,
            "{} segments, {} s media, {} bytes ({mbps:.2} Mbit/s), {} CC errors, {} discontinuities; {} datagrams",
            self.segments,
            format_seconds(self.media_ticks),
            self.segment_bytes,
            self.cc_errors,
            self.discontinuities,
            self.datagrams,
        )?;
        let discarded = [
            (self.not_ts, "not TS"),
            (self.rtp_late, "late/repeated RTP"),
            (self.undelivered, "pipeline failed"),
            (self.overflow, "analysis fell behind"),
        ];
        let total: u64 = discarded.iter().map(|d| d.0).sum();
        write!(f, ", {total} discarded")?;
        let reasons: Vec<String> = discarded
            .iter()
            .filter(|d| d.0 > 0)
            .map(|(n, why)| format!("{n} {why}"))
            .collect();
        if !reasons.is_empty() {
            write!(f, " ({})", reasons.join(", "))?;
        }
        let extra = [
            (self.filtered, "TS packets dropped by packet filter plugins"),
            (
                self.plugin_dropped_segments,
                "segments dropped (fail-closed segment namer failed)",
            ),
            (self.rtp_lost, "datagrams lost (RTP)"),
            (self.rtp_reordered, "RTP datagrams put back in order"),
            (
                self.kernel_drops,
                "kernel capture drops (shared by the interface)",
            ),
            (self.interface_drops, "interface drops"),
            (self.socket_drops, "socket buffer drops"),
            (self.stalls, "stalls"),
            (
                self.skipped_packets,
                "packets dropped (before a keyframe, or a unit cut short)",
            ),
            (self.unsynced_bytes, "bytes without TS sync"),
            (self.psi_errors, "bad PSI/adaptation fields"),
            (self.scte35_errors, "bad SCTE-35 sections"),
            (self.tei_packets, "packets with transport errors"),
            (self.forced_cuts, "cuts without keyframe"),
            (
                self.parameter_sets_inserted,
                "segments given the parameter sets sent before them",
            ),
            (
                self.other_packets_dropped,
                "packets of other programs or unlisted PIDs not kept",
            ),
            (
                self.resized_packets,
                "204-byte or 192-byte packets stored as 188",
            ),
            (self.video_outages, "video outages timed by audio"),
            (self.store_errors, "store errors"),
            (self.store_retries, "store retries"),
            (self.spooled, "objects spooled while the store was down"),
            (self.refused, "objects NOT stored (upload queue)"),
            (self.lost_segments, "segments NOT stored"),
        ];
        for (n, what) in extra.iter().filter(|e| e.0 > 0) {
            write!(f, "; {n} {what}")?;
        }
        if self.null_packets_dropped > 0 {
            write!(
                f,
                "; {} null packets dropped ({} bytes not stored)",
                self.null_packets_dropped,
                self.null_packets_dropped * 188
            )?;
        }
        if self.failed {
            f.write_str("; FAILED")?;
        }
        Ok(())
    }
}
