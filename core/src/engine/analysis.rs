//! One stream's analysis: RTP, packet filter plugins, TS analysis and
//! cutting, with segments growing on disk. [`StreamAnalysis`] takes the
//! reader's inputs one by one and hands back the segments they finished;
//! [`analyse`] runs it on the stream's thread.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::growing::{Finished, GrowingSegments};
use super::plugins::plugins_of;
use super::reader::Input;
use crate::config::{Keyframes, StreamConfig};
use crate::figures::{InputProblems, StreamStats};
use hlsvault_plugin::{Slot, StreamPlugins};
use hlsvault_ts::rtp::{self, Payload};
use hlsvault_ts::segment::{CutPolicy, SegmentCutter};

/// A live stream that receives data but has cut no segment after this (or
/// three target durations, if longer) logs why.
const NO_SEGMENT_WARNING: Duration = Duration::from_secs(10);

/// How often a stream's PID table is taken for the figures.
const PID_TABLE_EVERY: Duration = Duration::from_secs(1);

/// A stream's segment cutting settings.
pub(super) fn cut_policy(cfg: &StreamConfig) -> CutPolicy {
    CutPolicy {
        target: cfg.segment_duration,
        max: cfg.max_segment,
        recovery: cfg.keyframes == Keyframes::Recovery,
        selection: cfg.selection(),
        gap: cfg.max_gap,
        cut_at_splice: cfg.cut_at_splice,
        aligned: cfg.aligned_cuts,
    }
}

/// One stream's analysis, fed input by input (no thread of its own).
pub struct StreamAnalysis {
    plugins: StreamPlugins,
    cutter: SegmentCutter,
    growing: GrowingSegments,
    reorder: rtp::Reorder,
    problems: ProblemLog,
    stats: Arc<StreamStats>,
    /// When the PID table was last taken for the figures.
    pids_at: Option<Instant>,
    started: Instant,
    /// A live stream that receives data but cuts nothing says why, once.
    told_empty: bool,
    silent_for: Duration,
}

impl StreamAnalysis {
    /// The analysis of stream `cfg`, counting into `stats`, with its
    /// instances of the packet filter plugins in `slots`; its segments grow
    /// on disk in `growing` (in memory without).
    pub fn new(
        cfg: &StreamConfig,
        stats: Arc<StreamStats>,
        slots: &[Arc<Slot>],
        growing: Option<PathBuf>,
    ) -> Self {
        StreamAnalysis {
            plugins: plugins_of(slots, cfg),
            cutter: SegmentCutter::new(cut_policy(cfg)),
            growing: GrowingSegments::new(growing),
            reorder: rtp::Reorder::default(),
            problems: ProblemLog::default(),
            stats,
            pids_at: None,
            started: Instant::now(),
            told_empty: !cfg.source.is_live(),
            silent_for: (cfg.segment_duration * 3).max(NO_SEGMENT_WARNING),
        }
    }

    /// Takes one input from the reader; returns the segments it finished.
    pub fn feed(&mut self, input: Input) -> Vec<Finished> {
        match input {
            Input::Data(batch) => self.datagrams(&batch.data, &batch.items),
            Input::Stalled(silence) => {
                self.flush_reorder();
                self.cutter.stall(silence);
            }
        }
        self.report(false);
        self.finished()
    }

    /// The input has ended: returns the last segments.
    pub fn finish(mut self) -> Vec<Finished> {
        self.flush_reorder();
        self.cutter.finish();
        self.stats.set_empty(self.cutter.why_empty());
        self.report(true);
        let last = self.finished();
        self.growing.end();
        last
    }

    /// Writes what settled to disk; returns the segments finished.
    fn finished(&mut self) -> Vec<Finished> {
        self.growing.drain(&mut self.cutter);
        let growing = &mut self.growing;
        self.cutter
            .take_ready()
            .map(|s| growing.finish(s))
            .collect()
    }

    /// Datagrams `data`, one per `items` entry (capture time, length).
    fn datagrams(&mut self, data: &[u8], items: &[(SystemTime, usize)]) {
        let stats = &self.stats;
        let mut at = 0;
        let items: Vec<(SystemTime, Payload)> = items
            .iter()
            .map(|&(time, len)| {
                at += len;
                (time, rtp::classify(&data[at - len..at]))
            })
            .collect();
        // 204-byte and 192-byte packets become 188 here, before the packet
        // filters and the analysis see them.
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
        let mut filtered = self.plugins.filter(data, &ts);
        stats.filtered(filtered.dropped);
        let cutter = &mut self.cutter;
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
                    self.reorder.push(seq, packets, *time, &mut |ts, at, lost| {
                        cutter.push_datagram(ts, at, lost > 0)
                    });
                }
                Payload::NotTs => stats.not_ts(),
            }
            // A segment ended in this datagram: a plugin whose file changed
            // takes over from the next one, and the rest of the batch is
            // filtered again by it.
            if cutter.ready_count() > ready && self.plugins.segment_boundary() {
                let rest = self.plugins.filter(data, &ts[i + 1..]);
                stats.filtered(rest.dropped);
                filtered.packets.truncate(i + 1);
                filtered.packets.extend(rest.packets);
            }
        }
    }

    /// Hands the datagrams the RTP reorder buffer holds to the cutter.
    fn flush_reorder(&mut self) {
        let cutter = &mut self.cutter;
        self.reorder
            .flush(&mut |ts, at, lost| cutter.push_datagram(ts, at, lost > 0));
    }

    /// Updates the figures and logs what went wrong; `last` at the end.
    fn report(&mut self, last: bool) {
        let stats = &self.stats;
        stats.rtp(self.reorder.counters());
        stats.analysis(self.cutter.ts_counters(), self.cutter.counters());
        self.problems.report(stats.input_problems(), last);
        // The table walks every PID: once a second is enough.
        if !(last || self.pids_at.is_none_or(|t| t.elapsed() >= PID_TABLE_EVERY)) {
            return;
        }
        stats.set_pids(self.cutter.analyzer().pids());
        self.pids_at = Some(Instant::now());
        if !self.told_empty && self.started.elapsed() >= self.silent_for {
            self.told_empty = true;
            if let Some(why) = self.cutter.why_empty() {
                tracing::warn!(
                    after = %humantime::format_duration(self.silent_for),
                    "receiving, but no segment yet: {why}"
                );
            }
        }
    }
}

/// The analysis thread of one stream: feeds its [`StreamAnalysis`] what
/// the reader sends, and the archive task the segments. A panic stops this
/// stream only.
pub(super) fn analyse(
    cfg: StreamConfig,
    rx: Receiver<Input>,
    tx: tokio::sync::mpsc::Sender<Finished>,
    stats: Arc<StreamStats>,
    slots: Vec<Arc<Slot>>,
    growing: Option<PathBuf>,
) {
    let span = tracing::info_span!("stream", name = %cfg.name);
    let _enter = span.enter();
    let send = |segments: Vec<Finished>| {
        for seg in segments {
            if tx.blocking_send(seg).is_err() {
                stats.lost_segment();
            }
        }
    };
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut analysis = StreamAnalysis::new(&cfg, stats.clone(), &slots, growing);
        for input in rx {
            send(analysis.feed(input));
        }
        send(analysis.finish());
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
    logged: InputProblems,
    at: Option<Instant>,
}

const PROBLEM_LOG_EVERY: Duration = Duration::from_secs(10);

impl ProblemLog {
    fn report(&mut self, now: InputProblems, last: bool) {
        let due = self.at.is_none_or(|t| t.elapsed() >= PROBLEM_LOG_EVERY);
        let (was, n) = (&self.logged, &now);
        let delta = [
            (n.cc_errors - was.cc_errors, "continuity errors"),
            (
                n.psi_errors - was.psi_errors,
                "bad PSI sections or adaptation fields",
            ),
            (
                n.scte35_errors - was.scte35_errors,
                "bad SCTE-35 sections (skipped)",
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
        self.logged = now;
        self.at = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reader::Batch;
    use hlsvault_testkit::{make_ts, StreamSpec};

    /// A udp stream with 4 s segments, as the config file declares it.
    fn stream() -> StreamConfig {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\nsource = { kind = \"udp\", group = \"239.1.1.1\", port = 5000 }\n",
        )
        .unwrap();
        crate::config::load(&file).unwrap().streams.remove(0)
    }

    /// `ts` as batches of datagrams of 7 packets, spread over `seconds`
    /// of capture time from `start`, with a datagram that is not TS first.
    fn batches(ts: &[u8], start: SystemTime, seconds: f64) -> Vec<Input> {
        let datagrams: Vec<&[u8]> = ts.chunks(7 * 188).collect();
        let step = Duration::from_secs_f64(seconds / datagrams.len() as f64);
        let mut out = vec![Input::Data(Batch {
            data: b"not a TS datagram".to_vec(),
            items: vec![(start, 17)],
        })];
        for (n, chunk) in datagrams.chunks(64).enumerate() {
            let mut batch = Batch {
                data: Vec::new(),
                items: Vec::new(),
            };
            for (i, d) in chunk.iter().enumerate() {
                batch.data.extend_from_slice(d);
                batch
                    .items
                    .push((start + step * (n * 64 + i) as u32, d.len()));
            }
            out.push(Input::Data(batch));
        }
        out
    }

    #[test]
    fn fed_a_stream_it_cuts_segments_at_keyframes_and_counts_what_is_not_ts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.ts");
        let spec = StreamSpec {
            seconds: 13.0,
            ..StreamSpec::default()
        };
        make_ts(&file, &spec).unwrap();
        let ts = std::fs::read(&file).unwrap();
        let stats = Arc::new(StreamStats::default());
        let mut analysis = StreamAnalysis::new(&stream(), stats.clone(), &[], None);
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        let mut segments = Vec::new();
        for input in batches(&ts, start, spec.seconds) {
            segments.extend(analysis.feed(input));
        }
        // 2 s GOPs and 4 s targets: 4, 4, 4, then the rest at the end.
        assert_eq!(segments.len(), 3, "before the end of the input");
        segments.extend(analysis.finish());
        let segments: Vec<_> = segments.into_iter().map(|f| f.segment).collect();
        let secs: Vec<u64> = segments.iter().map(|s| s.duration / 90_000).collect();
        assert_eq!(secs[..3], [4, 4, 4]);
        assert_eq!(segments.len(), 4);
        for s in &segments {
            // Each segment starts with the PAT and a keyframe.
            assert_eq!(&s.data[..3], &[0x47, 0x40, 0x00]);
            assert!(s.keyframe);
        }
        let figures = stats.snapshot();
        assert_eq!(figures.not_ts, 1);
        assert_eq!(figures.datagrams as usize, ts.chunks(7 * 188).count() + 1);
        assert_eq!(figures.cc_errors, 0);
        assert_eq!(stats.input_problems().not_ts, 1);
    }
}
