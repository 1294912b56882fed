//! `GET /metrics`: the engine's per-stream figures, the server's own and
//! the process's, in the Prometheus text format. The figures are read at
//! scrape time from the same counters the logs use; nothing is copied on
//! the archiving path.

use std::time::SystemTime;

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use crate::export::ExportSnapshot;
use crate::figures::{Figures, Role, Snapshot};
use crate::ranges::Glance;
use hlsvault_store::LATENCY_BOUNDS;

/// The families of one scrape, in order.
#[derive(Default)]
struct Scrape(Vec<MetricFamily>);

impl Scrape {
    fn family(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
        // An empty family is not valid exposition text.
        if metrics.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        f.set_metric(metrics);
        self.0.push(f);
    }
}

impl Scrape {
    /// One family per field, with a sample per row, labelled `label` =
    /// the row's name.
    fn per_row<S>(
        &mut self,
        kind: MetricType,
        label: &str,
        fields: &[Field<S>],
        rows: &[(&str, S)],
    ) {
        for (name, help, read) in fields {
            let m = rows
                .iter()
                .map(|(row, snap)| match kind {
                    MetricType::COUNTER => counter(&[(label, row)], read(snap)),
                    _ => gauge(&[(label, row)], read(snap)),
                })
                .collect();
            self.family(name, help, kind, m);
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

/// What the store says of one stream's archive.
pub struct ArchiveGlance<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The end of its newest segment (from the live window).
    pub newest_end: Option<SystemTime>,
    /// Its hours and its last gap.
    pub glance: Glance,
}

/// Families of what the store says of each stream's archive (`None`: the
/// store could not be read). A lone `serve` shows these too: alerting
/// works when the recorder and the server are separate processes.
fn archive_families(out: &mut Scrape, archives: Option<&[ArchiveGlance]>, now: SystemTime) {
    out.family(
        "hlsvault_store_readable",
        "1 when the store answered the reads of this scrape.",
        MetricType::GAUGE,
        vec![gauge(&[], f64::from(u8::from(archives.is_some())))],
    );
    let archives = archives.unwrap_or_default();
    let per_stream = |read: &dyn Fn(&ArchiveGlance) -> Option<f64>| -> Vec<Metric> {
        archives
            .iter()
            .filter_map(|a| Some(gauge(&[("stream", a.stream)], read(a)?)))
            .collect()
    };
    out.family(
        "hlsvault_archive_newest_segment_end_timestamp_seconds",
        "When the newest stored segment ends (Unix time), from the store.",
        MetricType::GAUGE,
        per_stream(&|a| a.newest_end.map(unix)),
    );
    out.family(
        "hlsvault_archive_newest_segment_age_seconds",
        "Seconds since the newest stored segment ended, from the store.",
        MetricType::GAUGE,
        per_stream(&|a| Some(now.duration_since(a.newest_end?).ok()?.as_secs_f64())),
    );
    out.family(
        "hlsvault_archive_recorded_hours",
        "Hours the archive lists (hours.log).",
        MetricType::GAUGE,
        per_stream(&|a| Some(a.glance.hours as f64)),
    );
    let last_gap = |read: fn(&hlsvault_hls::Gap) -> f64| -> Vec<Metric> {
        archives
            .iter()
            .filter_map(|a| {
                let gap = a.glance.last_gap?;
                let labels = [("stream", a.stream), ("cause", gap.cause.as_str())];
                Some(gauge(&labels, read(&gap)))
            })
            .collect()
    };
    out.family(
        "hlsvault_archive_last_gap_seconds",
        "How long the newest gap of the last 24 h between recorded ranges lasted, by its cause.",
        MetricType::GAUGE,
        last_gap(|g| {
            g.end
                .duration_since(g.start)
                .unwrap_or_default()
                .as_secs_f64()
        }),
    );
    out.family(
        "hlsvault_archive_last_gap_end_timestamp_seconds",
        "When the newest gap of the last 24 h ended (Unix time), by its cause.",
        MetricType::GAUGE,
        last_gap(|g| unix(g.end)),
    );
}

/// Unix time in seconds.
fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// How to read a figure from a snapshot of `S`.
type Read<S = Snapshot> = fn(&S) -> f64;

/// A figure: name, help, and how to read it from a snapshot of `S`.
type Field<S = Snapshot> = (&'static str, &'static str, Read<S>);

const COUNTERS: &[Field] = &[
    ("hlsvault_stream_datagrams_total", "Datagrams delivered to the stream.", |s| s.datagrams as f64),
    ("hlsvault_stream_received_bytes_total", "TS bytes received.", |s| s.ts_bytes as f64),
    ("hlsvault_stream_kernel_drops_total", "Packets the kernel capture buffer dropped (libpcap ps_drop; shared by the streams of one interface).", |s| s.kernel_drops as f64),
    ("hlsvault_stream_interface_drops_total", "Packets the interface dropped (libpcap ps_ifdrop; shared by the streams of one interface).", |s| s.interface_drops as f64),
    ("hlsvault_stream_socket_drops_total", "Datagrams the kernel dropped for the stream's socket (buffer full).", |s| s.socket_drops as f64),
    ("hlsvault_stream_rtp_lost_datagrams_total", "Datagrams missing by RTP sequence number.", |s| s.rtp_lost as f64),
    ("hlsvault_stream_rtp_reordered_datagrams_total", "RTP datagrams put back in order.", |s| s.rtp_reordered as f64),
    ("hlsvault_stream_cc_errors_total", "Continuity counter errors.", |s| s.cc_errors as f64),
    ("hlsvault_stream_psi_errors_total", "PSI sections or adaptation fields refused.", |s| s.psi_errors as f64),
    ("hlsvault_stream_scte35_markers_total", "SCTE-35 markers stored in the playlists with their segments.", |s| s.scte35_markers as f64),
    ("hlsvault_stream_scte35_errors_total", "SCTE-35 sections refused (CRC, truncated, encrypted) and skipped.", |s| s.scte35_errors as f64),
    ("hlsvault_stream_transport_error_packets_total", "Packets with the transport error indicator.", |s| s.tei_packets as f64),
    ("hlsvault_stream_discontinuities_total", "Breaks in the timeline (marked in the playlists).", |s| s.discontinuities as f64),
    ("hlsvault_stream_stalls_total", "Times the stream went silent past its stall timeout.", |s| s.stalls as f64),
    ("hlsvault_stream_skipped_packets_total", "Packets no segment could hold (before a keyframe, or a unit cut short).", |s| s.skipped_packets as f64),
    ("hlsvault_stream_forced_cuts_total", "Segments cut without a keyframe (max_segment_duration).", |s| s.forced_cuts as f64),
    ("hlsvault_stream_segments_total", "Segments stored.", |s| s.segments as f64),
    ("hlsvault_stream_segment_bytes_total", "Bytes of segments stored.", |s| s.segment_bytes as f64),
    ("hlsvault_stream_store_errors_total", "Store operations that failed for good.", |s| s.store_errors as f64),
    ("hlsvault_stream_store_retries_total", "Uploads that failed and were retried.", |s| s.store_retries as f64),
    ("hlsvault_stream_spooled_objects_total", "Objects written to the spool while the store was down.", |s| s.spooled as f64),
    ("hlsvault_stream_refused_objects_total", "Objects the upload queue could not keep.", |s| s.refused as f64),
    ("hlsvault_stream_lost_segments_total", "Segments that could not be stored.", |s| s.lost_segments as f64),
];

/// Datagrams discarded, by reason.
const DISCARDED: &[(&str, Read)] = &[
    ("not_ts", |s| s.not_ts as f64),
    ("rtp_late", |s| s.rtp_late as f64),
    ("pipeline_failed", |s| s.undelivered as f64),
    ("overflow", |s| s.overflow as f64),
];

fn stream_families(out: &mut Scrape, figures: &Figures) {
    let streams = figures.streams();
    let now: Vec<(&str, Snapshot, Option<f64>)> = streams
        .iter()
        .map(|s| {
            let rate = s.stats.bitrate_history().last().map(|(_, bps)| *bps);
            (s.name.as_str(), s.stats.snapshot(), rate)
        })
        .collect();
    let rows: Vec<(&str, Snapshot)> = now.iter().map(|(s, snap, _)| (*s, *snap)).collect();
    out.per_row(MetricType::COUNTER, "stream", COUNTERS, &rows);
    let m = now
        .iter()
        .flat_map(|(s, snap, _)| {
            DISCARDED
                .iter()
                .map(move |(why, read)| counter(&[("stream", s), ("reason", why)], read(snap)))
        })
        .collect();
    out.family(
        "hlsvault_stream_discarded_datagrams_total",
        "Datagrams discarded, by reason.",
        MetricType::COUNTER,
        m,
    );
    let m = now
        .iter()
        .map(|(s, snap, _)| counter(&[("stream", s)], snap.media_ticks as f64 / 90_000.0))
        .collect();
    out.family(
        "hlsvault_stream_media_seconds_total",
        "Media stored, in seconds.",
        MetricType::COUNTER,
        m,
    );
    let m = now
        .iter()
        .filter_map(|(s, _, rate)| rate.map(|r| gauge(&[("stream", s)], r)))
        .collect();
    out.family(
        "hlsvault_stream_bitrate_bits_per_second",
        "Received TS bit rate over the last sample interval.",
        MetricType::GAUGE,
        m,
    );
    let gauges: [Field; 3] = [
        (
            "hlsvault_stream_queue_objects",
            "Objects waiting in the upload queue.",
            |s| s.waiting as f64,
        ),
        (
            "hlsvault_stream_spool_depth",
            "Objects waiting in the spool on disk.",
            |s| s.spool_depth as f64,
        ),
        (
            "hlsvault_stream_failed",
            "1 when the stream's pipeline failed.",
            |s| f64::from(u8::from(s.failed)),
        ),
    ];
    out.per_row(MetricType::GAUGE, "stream", &gauges, &rows);
    let m = now
        .iter()
        .filter_map(|(s, snap, _)| {
            let age = SystemTime::now().duration_since(snap.last_segment?).ok()?;
            Some(gauge(&[("stream", s)], age.as_secs_f64()))
        })
        .collect();
    out.family(
        "hlsvault_stream_last_segment_age_seconds",
        "Seconds since the stream's last segment was stored.",
        MetricType::GAUGE,
        m,
    );
    let m = now
        .iter()
        .map(|(s, snap, _)| {
            let l = snap.publish_latency;
            let mut cumulative = 0;
            let buckets = LATENCY_BOUNDS
                .iter()
                .zip(l.buckets)
                .map(|(bound, n)| {
                    cumulative += n;
                    let mut b = Bucket::default();
                    b.set_upper_bound(*bound);
                    b.set_cumulative_count(cumulative);
                    b
                })
                .collect();
            let mut h = Histogram::default();
            h.set_sample_count(l.count);
            h.set_sample_sum(l.sum_micros as f64 / 1e6);
            h.set_bucket(buckets);
            let mut m = Metric::from_label(labels(&[("stream", s)]));
            m.set_histogram(h);
            m
        })
        .collect();
    out.family(
        "hlsvault_stream_publish_latency_seconds",
        "From a segment entering the upload queue to the store accepting it.",
        MetricType::HISTOGRAM,
        m,
    );
}

/// This node's part in a cluster: per stream, its role here and what the
/// duty counted; the node's lease renewals and joins.
fn cluster_families(out: &mut Scrape, figures: &Figures) {
    let Some(node) = figures.node() else {
        return;
    };
    out.family(
        "hlsvault_cluster_joins_total",
        "Times this node joined the cluster (again, after etcd let its lease lapse).",
        MetricType::COUNTER,
        vec![counter(&[], node.joins() as f64)],
    );
    out.family(
        "hlsvault_cluster_view_errors_total",
        "Reads of the cluster from etcd that failed.",
        MetricType::COUNTER,
        vec![counter(&[], node.view_errors() as f64)],
    );
    out.family(
        "hlsvault_cluster_lease_renew_latency_seconds",
        "The last lease renewal's round trip to etcd.",
        MetricType::GAUGE,
        node.renew_latency()
            .map(|l| gauge(&[], l.as_secs_f64()))
            .into_iter()
            .collect(),
    );
    let streams = figures.streams();
    let rows: Vec<(&str, &crate::figures::ClusterFigures)> = streams
        .iter()
        .map(|s| (s.name.as_str(), &s.stats.cluster))
        .collect();
    let roles = rows
        .iter()
        .flat_map(|(s, c)| {
            let now = c.role();
            [Role::Owner, Role::Standby].map(|role| {
                let is = f64::from(u8::from(now == role));
                gauge(&[("stream", s), ("role", role.as_str())], is)
            })
        })
        .collect();
    out.family(
        "hlsvault_cluster_role",
        "1 for the stream's role on this node (owner: records and publishes; standby: records, ready to take over).",
        MetricType::GAUGE,
        roles,
    );
    let fields: [Field<&crate::figures::ClusterFigures>; 2] = [
        (
            "hlsvault_cluster_takeovers_total",
            "Times this node took the stream over.",
            |c| c.takeovers() as f64,
        ),
        (
            "hlsvault_cluster_fencing_rejections_total",
            "Times this node stopped publishing the stream because its claim or lease could no longer be trusted.",
            |c| c.fencing_rejections() as f64,
        ),
    ];
    out.per_row(MetricType::COUNTER, "stream", &fields, &rows);
    let depth: [Field<&crate::figures::ClusterFigures>; 1] = [(
        "hlsvault_cluster_standby_buffer_segments",
        "Segments held and not published (a standby's buffer).",
        |c| c.buffered() as f64,
    )];
    out.per_row(MetricType::GAUGE, "stream", &depth, &rows);
}

fn plugin_families(out: &mut Scrape, figures: &Figures) {
    let plugins = figures.plugins();
    let now: Vec<(&str, hlsvault_plugin::PluginSnapshot)> = plugins
        .iter()
        .map(|(n, f)| (n.as_str(), f.snapshot()))
        .collect();
    let fields: [Field<hlsvault_plugin::PluginSnapshot>; 5] = [
        (
            "hlsvault_plugin_calls_total",
            "Calls made to the plugin.",
            |p| p.calls as f64,
        ),
        (
            "hlsvault_plugin_failures_total",
            "Calls that trapped, ran past their deadline or returned an invalid result.",
            |p| p.failures as f64,
        ),
        (
            "hlsvault_plugin_timeouts_total",
            "Calls stopped at their deadline.",
            |p| p.timeouts as f64,
        ),
        (
            "hlsvault_plugin_skipped_total",
            "Calls not made while the plugin was suspended.",
            |p| p.skipped as f64,
        ),
        (
            "hlsvault_plugin_seconds_total",
            "Time spent in the plugin's calls.",
            |p| p.nanos as f64 / 1e9,
        ),
    ];
    out.per_row(MetricType::COUNTER, "plugin", &fields, &now);
}

fn playout_families(out: &mut Scrape, figures: &Figures) {
    use crate::replay::ReplaySnapshot;
    let playouts = figures.playouts();
    let now: Vec<(&str, ReplaySnapshot)> = playouts
        .iter()
        .map(|p| (p.config.name.as_str(), p.figures.snapshot()))
        .collect();
    let counters: [Field<ReplaySnapshot>; 10] = [
        ("hlsvault_playout_datagrams_total", "Datagrams sent.", |p| {
            p.send.datagrams as f64
        }),
        (
            "hlsvault_playout_bytes_total",
            "Bytes sent (UDP payload).",
            |p| p.send.bytes as f64,
        ),
        (
            "hlsvault_playout_late_datagrams_total",
            "Datagrams sent more than 1 ms after their PCR said.",
            |p| p.send.late as f64,
        ),
        (
            "hlsvault_playout_rebased_total",
            "Times the sender was over 500 ms behind and moved its schedule on.",
            |p| p.send.rebased as f64,
        ),
        (
            "hlsvault_playout_underruns_total",
            "Times a datagram was due and none had been read.",
            |p| p.send.underruns as f64,
        ),
        ("hlsvault_playout_segments_total", "Segments sent.", |p| {
            p.segments as f64
        }),
        (
            "hlsvault_playout_splices_total",
            "Clean splices sent (discontinuities, gaps, skipped segments).",
            |p| p.splices as f64,
        ),
        (
            "hlsvault_playout_skipped_segments_total",
            "Segments that could not be read after their retries, or were past due.",
            |p| p.skipped as f64,
        ),
        (
            "hlsvault_playout_stalls_total",
            "Times the archive had nothing new when the playout needed it.",
            |p| p.stalls as f64,
        ),
        (
            "hlsvault_playout_nulls_put_back_total",
            "Null packets put back to the multiplex rate (cbr).",
            |p| p.stuffed as f64,
        ),
    ];
    out.per_row(MetricType::COUNTER, "playout", &counters, &now);
    let gauges: [Field<ReplaySnapshot>; 4] = [
        (
            "hlsvault_playout_jitter_p50_seconds",
            "How late datagrams left, median since the playout started.",
            |p| p.send.jitter(0.5).as_secs_f64(),
        ),
        (
            "hlsvault_playout_jitter_p99_seconds",
            "How late datagrams left, 99th percentile since the playout started.",
            |p| p.send.jitter(0.99).as_secs_f64(),
        ),
        (
            "hlsvault_playout_jitter_max_seconds",
            "The latest a datagram left since the playout started.",
            |p| p.send.jitter_max.as_secs_f64(),
        ),
        (
            "hlsvault_playout_stalled",
            "1 while the playout waits for the archive.",
            |p| f64::from(u8::from(p.stalled)),
        ),
    ];
    out.per_row(MetricType::GAUGE, "playout", &gauges, &now);
}

/// The server's own figures.
pub struct ServerFigures {
    /// Playback requests refused for a missing or wrong token.
    pub auth_failures: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// Connections closed at accept because `max_connections` was reached.
    pub refused_connections: u64,
    /// What clips did.
    pub exports: ExportSnapshot,
}

/// The exposition text of one scrape.
pub fn render(
    process: &ProcessCollector,
    figures: Option<&Figures>,
    archives: Option<&[ArchiveGlance]>,
    server: ServerFigures,
) -> String {
    let mut out = Scrape::default();
    out.family(
        "hlsvault_build_info",
        "The running hlsvault version.",
        MetricType::GAUGE,
        vec![gauge(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    out.family(
        "hlsvault_http_auth_failures_total",
        "Playback requests refused for a missing or wrong token.",
        MetricType::COUNTER,
        vec![counter(&[], server.auth_failures as f64)],
    );
    out.family(
        "hlsvault_http_connections",
        "Playback connections open now.",
        MetricType::GAUGE,
        vec![gauge(&[], server.open_connections as f64)],
    );
    out.family(
        "hlsvault_http_connections_refused_total",
        "Connections closed at accept because max_connections was reached.",
        MetricType::COUNTER,
        vec![counter(&[], server.refused_connections as f64)],
    );
    let x = server.exports;
    out.family(
        "hlsvault_exports",
        "Clips streaming now.",
        MetricType::GAUGE,
        vec![gauge(&[], x.active as f64)],
    );
    out.family(
        "hlsvault_export_bytes_total",
        "Bytes of clips sent.",
        MetricType::COUNTER,
        vec![counter(&[], x.bytes as f64)],
    );
    out.family(
        "hlsvault_exports_total",
        "Clips by how they ended: completed, aborted (the client went away), failed (the store).",
        MetricType::COUNTER,
        [
            ("completed", x.completed),
            ("aborted", x.aborted),
            ("failed", x.failed),
        ]
        .iter()
        .map(|(outcome, n)| counter(&[("outcome", outcome)], *n as f64))
        .collect(),
    );
    archive_families(&mut out, archives, SystemTime::now());
    if let Some(f) = figures {
        stream_families(&mut out, f);
        plugin_families(&mut out, f);
        playout_families(&mut out, f);
        cluster_families(&mut out, f);
    }
    out.0.extend(process.collect());
    let mut text = Vec::new();
    // Encoding only fails on families this module does not make (empty
    // ones, or a histogram without buckets).
    if let Err(e) = TextEncoder::new().encode(&out.0, &mut text) {
        tracing::error!(error = %e, "cannot encode the metrics");
    }
    String::from_utf8(text).unwrap_or_default()
}
