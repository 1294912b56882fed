//! Cuts a TS stream into HLS segments at random access points.
//!
//! The cutter owns the stream's [`Analyzer`] and decides, packet by packet,
//! where segments begin and end:
//!
//! - a segment opens at a random access point, with fresh PAT/PMT copies in
//!   front, so every file plays on its own;
//! - it closes at the first random access point at or after the target
//!   duration, at an hour boundary, at a hard cap when no keyframe comes, and
//!   at every break in the timeline (continuity error, PCR jump, lost
//!   datagrams, capture gap);
//! - its duration is the PTS distance from its first frame to the next
//!   segment's first frame, so the playlist timeline is the stream's own.
//!
//! Other elementary streams do not switch segment at the video cut: a PID
//! whose unit (PES or section) began before the cut keeps sending it to the
//! earlier segment until its next unit starts. No audio frame is split.

mod outage;
mod recut;
mod splice_points;
#[cfg(test)]
mod tests;

pub use recut::recut;
pub use splice_points::Placed;

use outage::{AudioRole, VideoWatch};
use splice_points::SplicePoints;

use std::time::{Duration, SystemTime};

use crate::clock::{pts_diff, ticks_to_duration, writable, PtsExtender, PCR_HZ, PTS_HZ};
use crate::keyframe::Picture;
use crate::pes::insert_into_unit_start;
use crate::program::Selection;
use crate::{
    packets, payload, AccessUnit, Analyzer, Break, Header, Hour, Packet, TsCounters, PACKET_SIZE,
    PID_NULL, PID_PAT, SYNC_BYTE,
};

/// A segment cannot grow past this many bytes, whatever the stream does.
const MAX_SEGMENT_BYTES: usize = 512 << 20;
/// Audio without video for this long times the stream until video is
/// back: longer than any skew between a program's audio and video in the
/// multiplex, short enough that the segment open when video stopped ends
/// within the target plus this.
const VIDEO_WAIT: Duration = Duration::from_secs(2);
/// After a cut, the earlier segment waits at most this many packets for the
/// rest of the units it holds.
const STRAGGLER_PACKETS: u32 = 4096;

/// How segments are cut.
#[derive(Debug, Clone, Copy)]
pub struct CutPolicy {
    /// Cut at the first keyframe at or after this much media.
    pub target: Duration,
    /// Cut at the first access unit past this much media, keyframe or not
    /// (a safety net for streams without keyframes).
    pub max: Duration,
    /// Recovery points (periodic intra refresh) may start a segment too.
    pub recovery: bool,
    /// The program that is timed, and what is kept of the multiplex.
    pub selection: Selection,
    /// A silence longer than this between datagrams breaks the timeline.
    pub gap: Duration,
    /// A SCTE-35 splice point starts a segment at its keyframe.
    pub cut_at_splice: bool,
    /// Cut at the first keyframe at or after each multiple of `target` on
    /// the stream's own 33-bit PTS timeline, instead of `target` after the
    /// segment's start: recorders of the same stream that started at
    /// different times then cut the same segments (after their first).
    pub aligned: bool,
}

/// Why a segment ended early and the next is marked discontinuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The TS timeline broke.
    Stream(Break),
    /// Datagrams were lost (RTP sequence gap).
    LostDatagrams,
    /// No datagram arrived for this long.
    CaptureGap(Duration),
    /// A segment grew past the size bound without a cut.
    Oversized,
    /// No keyframe came within the hard cap: the segment was cut without one.
    HardCap,
    /// Video came back after audio timed the stream, on another timeline.
    VideoJump,
    /// A killed run saw a break before it (which one is not kept).
    BeforeRestart,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Stream(b) => b.fmt(f),
            Cause::LostDatagrams => f.write_str("lost datagrams"),
            Cause::CaptureGap(d) => write!(f, "capture gap of {}", humantime::format_duration(*d)),
            Cause::Oversized => f.write_str("segment size bound reached"),
            Cause::HardCap => f.write_str("no keyframe within the hard cap"),
            Cause::VideoJump => f.write_str("video came back on another timeline"),
            Cause::BeforeRestart => f.write_str("a break before a restart"),
        }
    }
}

/// A finished segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Which segment of the cutter it is: they are numbered as they open,
    /// from 0 (a segment that never had media is skipped, not emitted).
    pub id: u64,
    /// The TS bytes: PAT, PMTs, then the stream from a random access point;
    /// without the first `data_offset` of them, which
    /// [`SegmentCutter::drain_settled`] handed out already.
    pub data: Vec<u8>,
    /// How many of the segment's bytes come before `data`.
    pub data_offset: u64,
    /// Wall-clock time (UTC) of its first frame.
    pub start: SystemTime,
    /// The PTS of its first frame (33 bits): where it lies on the stream's
    /// own clock, the same for every recorder of the stream.
    pub pts: u64,
    /// Media duration in 90 kHz ticks.
    pub duration: u64,
    /// Why the timeline broke just before this segment, if it did.
    pub discontinuity: Option<Cause>,
    /// It starts with a random access point (false after a hard-cap cut).
    pub keyframe: bool,
    /// The SCTE-35 markers whose splice falls in it (or, at the end of a
    /// run, after it), in the order they came.
    pub markers: Vec<Placed>,
}

impl Segment {
    /// The UTC hour the segment belongs to.
    pub fn hour(&self) -> Hour {
        Hour::of(self.start)
    }
}

/// What the cutter counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutCounters {
    /// Packets dropped because no segment could hold them: before the first
    /// keyframe, and between a break and the next keyframe.
    pub skipped_packets: u64,
    /// Bytes that were not TS packets inside TS datagrams (lost sync).
    pub unsynced_bytes: u64,
    /// Segments cut by the hard cap without a keyframe.
    pub forced_cuts: u64,
    /// Segments whose first picture was given the parameter sets it lacked.
    pub parameter_sets_inserted: u64,
    /// Null packets dropped (`null_packets = "drop"`).
    pub null_packets_dropped: u64,
    /// Times video stopped (or never came) while audio went on, and audio
    /// timed the segments.
    pub video_outages: u64,
    /// Packets of other programs and of PIDs no kept table names.
    pub other_packets_dropped: u64,
    /// Breaks in the timeline.
    pub discontinuities: u64,
}

/// A segment still growing, as [`SegmentCutter::drain_settled`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growing {
    /// The id its [`Segment`] will have.
    pub id: u64,
    /// Wall-clock time (UTC) of its first frame.
    pub start: SystemTime,
    /// The timeline broke just before it.
    pub discontinuity: bool,
    /// It starts with a random access point.
    pub keyframe: bool,
}

/// The newest unit (PES or section) of a PID in an open segment.
#[derive(Clone, Copy)]
struct Unit {
    pid: u16,
    /// Where it starts, counted from the segment's first byte.
    at: usize,
    /// Payload bytes it still lacks: `Some(0)` once whole (a section, or a
    /// PES whose length field is met); `None` while its end is unknown (a
    /// PES of unbounded length, as video's, ends where the next begins).
    need: Option<usize>,
}

impl Unit {
    /// A unit that starts with `head`, the payload of its first packet.
    fn starting(pid: u16, at: usize, head: Option<&[u8]>) -> Self {
        let need = match head {
            Some(head) if head.starts_with(&[0, 0, 1]) => match head.get(4..6) {
                Some(b) => match u16::from_be_bytes([b[0], b[1]]) as usize {
                    0 => None,
                    len => Some((6 + len).saturating_sub(head.len())),
                },
                None => None,
            },
            _ => Some(0),
        };
        Unit { pid, at, need }
    }

    fn whole(&self) -> bool {
        self.need == Some(0)
    }
}

/// A segment being filled.
struct Open {
    id: u64,
    /// Its bytes, but the first `drained` (handed out already).
    buf: Vec<u8>,
    drained: usize,
    first: i64,
    /// Largest PTS of its access units.
    last: i64,
    /// Largest PTS of its access units but the newest (which may still be
    /// arriving); `None` while only one has started.
    complete: Option<i64>,
    /// Per PID, its newest unit.
    units: Vec<Unit>,
    hour: Hour,
    start: SystemTime,
    discontinuity: Option<Cause>,
    keyframe: bool,
    /// Parameter sets its first picture lacks, and where they go in that
    /// picture's elementary stream bytes.
    sets: Option<(usize, Vec<u8>)>,
    markers: Vec<Placed>,
}

/// A cut segment still collecting the ends of its units. Without a segment
/// (at the start of a run) those ends cannot be decoded and are dropped.
struct Tail {
    open: Option<Open>,
    duration: u64,
    waiting: Vec<u16>,
    budget: u32,
}

/// Packets held back until we know whether an access unit is a keyframe.
struct Pending {
    ext: i64,
    packets: Vec<u8>,
}

/// Maps the stream's timeline onto the wall clock for one contiguous run.
#[derive(Clone, Copy)]
struct Anchor {
    ext: i64,
    wall: SystemTime,
}

impl Open {
    /// Takes note of an access unit starting: the one before is complete.
    fn access_unit(&mut self, ext: i64) {
        if ext != self.first || self.complete.is_some() || !self.units.is_empty() {
            self.complete = Some(self.last);
        }
        self.last = self.last.max(ext);
    }

    /// Removes the newest unit of each PID in `pids` (all PIDs if `None`):
    /// after a loss, or at the end of a capture, it may be cut short, and a
    /// damaged frame is worse than a missing one. Returns packets removed.
    fn drop_unfinished(&mut self, pids: Option<&[u16]>, timing: Option<u16>) -> u64 {
        let starts: Vec<(u16, usize)> = self
            .unfinished(pids)
            .map(|u| (u.pid, u.at - self.drained))
            .collect();
        let Some(from) = starts.iter().map(|u| u.1).min() else {
            return 0;
        };
        let mut write = from;
        let mut dropped = 0;
        for read in (from..self.buf.len()).step_by(PACKET_SIZE) {
            let pid = Header::parse(&packets(&self.buf[read..])[0]).pid;
            if starts.iter().any(|&(p, at)| p == pid && at <= read) {
                dropped += 1;
                continue;
            }
            self.buf.copy_within(read..read + PACKET_SIZE, write);
            write += PACKET_SIZE;
        }
        self.buf.truncate(write);
        self.units.retain(|u| !starts.iter().any(|s| s.0 == u.pid));
        if timing.is_some_and(|t| starts.iter().any(|u| u.0 == t)) {
            self.last = self.complete.unwrap_or(self.first - 1);
        }
        dropped
    }

    /// The newest units of `pids` (all PIDs if `None`) not known whole.
    fn unfinished<'a>(&'a self, pids: Option<&'a [u16]>) -> impl Iterator<Item = Unit> + 'a {
        self.units
            .iter()
            .copied()
            .filter(move |u| pids.is_none_or(|p| p.contains(&u.pid)) && !u.whole())
    }

    /// Where its settled bytes end: nothing before it can be dropped or
    /// rewritten any more (only the unfinished units of `pids` can).
    fn settled(&self, pids: Option<&[u16]>) -> usize {
        self.unfinished(pids)
            .map(|u| u.at)
            .min()
            .unwrap_or(self.drained + self.buf.len())
    }

    /// Hands the settled bytes not handed out yet to `out`, and forgets them.
    fn drain_settled(&mut self, pids: Option<&[u16]>, out: &mut impl FnMut(Growing, &[u8])) {
        let n = self.settled(pids) - self.drained;
        if n == 0 {
            return;
        }
        out(self.growing(), &self.buf[..n]);
        self.buf.drain(..n);
        self.drained += n;
    }

    fn growing(&self) -> Growing {
        Growing {
            id: self.id,
            start: self.start,
            discontinuity: self.discontinuity.is_some(),
            keyframe: self.keyframe,
        }
    }

    /// Bytes from `from` in `buf` were appended: notes the units they start
    /// or continue.
    fn appended(&mut self, from: usize) {
        for (i, p) in packets(&self.buf[from..]).iter().enumerate() {
            let h = Header::parse(p);
            if !h.has_payload {
                continue;
            }
            let body = payload(p);
            let unit = self.units.iter_mut().find(|u| u.pid == h.pid);
            match (h.pusi, unit) {
                (true, unit) => {
                    let new = Unit::starting(h.pid, self.drained + from + i * PACKET_SIZE, body);
                    match unit {
                        Some(u) => *u = new,
                        None => self.units.push(new),
                    }
                }
                (false, Some(u)) => {
                    let got = body.map_or(0, <[u8]>::len);
                    u.need = u.need.map(|n| n.saturating_sub(got));
                }
                (false, None) => {}
            }
        }
    }

    /// Its size so far, handed out or not.
    fn len(&self) -> usize {
        self.drained + self.buf.len()
    }

    /// Whether it still holds a whole access unit.
    fn has_media(&self) -> bool {
        self.last >= self.first
    }
}

impl Anchor {
    fn wall(&self, ext: i64) -> SystemTime {
        let d = ext - self.ext;
        if d >= 0 {
            self.wall + ticks_to_duration(d)
        } else {
            self.wall - ticks_to_duration(-d)
        }
    }
}

/// Cuts one stream into segments. See the module documentation.
pub struct SegmentCutter {
    analyzer: Analyzer,
    target: i64,
    max: i64,
    gap: Duration,
    recovery: bool,
    cut_at_splice: bool,
    aligned: bool,
    /// SCTE-35 markers waiting for their segment.
    splices: SplicePoints,
    /// Times audio in for absent video.
    watch: VideoWatch,
    /// The next cut point cuts whatever the target says (timing changed
    /// hands between video and audio).
    force_cut: bool,
    cur: Option<Open>,
    tail: Option<Tail>,
    pending: Option<Pending>,
    anchor: Option<Anchor>,
    extender: PtsExtender,
    last_au: Option<i64>,
    frame: Option<u64>,
    last_pcr: Option<(u64, SystemTime)>,
    last_capture: Option<SystemTime>,
    unit_pid: Box<[bool; 8192]>,
    unit_pids: Vec<u16>,
    /// The next segment follows a break, for this cause.
    break_pending: Option<Cause>,
    started: bool,
    /// Segments opened so far (the next one's id).
    opened: u64,
    skipped_since_log: u64,
    counters: CutCounters,
    ready: Vec<Segment>,
}

impl SegmentCutter {
    /// A cutter for a new stream.
    pub fn new(policy: CutPolicy) -> Self {
        let ticks = |d: Duration| (d.as_nanos() * PTS_HZ as u128 / 1_000_000_000) as i64;
        SegmentCutter {
            analyzer: Analyzer::with_selection(policy.selection),
            target: ticks(policy.target),
            max: ticks(policy.max),
            gap: policy.gap,
            recovery: policy.recovery,
            cut_at_splice: policy.cut_at_splice,
            aligned: policy.aligned,
            splices: SplicePoints::default(),
            watch: VideoWatch::new(ticks(VIDEO_WAIT)),
            force_cut: false,
            cur: None,
            tail: None,
            pending: None,
            anchor: None,
            extender: PtsExtender::default(),
            last_au: None,
            frame: None,
            last_pcr: None,
            last_capture: None,
            unit_pid: Box::new([false; 8192]),
            unit_pids: Vec::new(),
            break_pending: None,
            started: false,
            opened: 0,
            skipped_since_log: 0,
            counters: CutCounters::default(),
            ready: Vec::new(),
        }
    }

    /// What the cutter counted.
    pub fn counters(&self) -> CutCounters {
        self.counters
    }

    /// What the TS analysis counted.
    pub fn ts_counters(&self) -> TsCounters {
        self.analyzer.counters()
    }

    /// Why no segment came out of the packets pushed so far, in words for
    /// an operator (`None` once one did, or before any packet came).
    pub fn why_empty(&self) -> Option<String> {
        if self.started {
            return None;
        }
        let a = &self.analyzer;
        let pids = a.pids();
        if pids.is_empty() {
            return (self.counters.unsynced_bytes > 0)
                .then(|| "its datagrams carry no TS packets (no sync byte)".into());
        }
        let listed = |pred: &dyn Fn(&crate::PidInfo) -> bool| {
            pids.iter()
                .filter(|p| pred(p))
                .map(|p| format!("{} ({})", p.pid, p.what))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let programs = || -> Vec<String> {
            a.listed_programs()
                .iter()
                .map(|e| format!("program {} (PMT PID {})", e.program, e.pmt_pid))
                .collect()
        };
        Some(if !pids.iter().any(|p| p.pid == PID_PAT) {
            format!(
                "no PAT in {} TS packets; PIDs: {}",
                pids.iter().map(|p| p.packets).sum::<u64>(),
                listed(&|_| true)
            )
        } else if let Some(n) = a.missing_program() {
            format!("program = {n}, but the PAT lists {}", programs().join(", "))
        } else if !a.has_pmt() {
            format!(
                "no PMT: the PAT lists {} and none of their PMTs came",
                programs().join(", ")
            )
        } else if a.timing_pid().is_none() {
            format!(
                "no program with video or audio: only {}",
                listed(&|p| p.pid != PID_PAT)
            )
        } else if let Some(timing) = a.timing_pid().filter(|t| !pids.iter().any(|p| p.pid == *t)) {
            format!(
                "the PMT declares PID {timing} for its timing but it carries nothing; the stream carries only {}",
                listed(&|p| p.pid != PID_PAT)
            )
        } else {
            match a.audio_timed() {
                true => "no audio unit with a PTS".into(),
                false => format!(
                    "no decodable keyframe on PID {} in {} packets (an IDR, an I picture with a recovery point, an IRAP, an MPEG-2 I picture, with its parameter sets)",
                    a.timing_pid().unwrap_or_default(),
                    pids.iter().find(|p| Some(p.pid) == a.timing_pid()).map_or(0, |p| p.packets)
                ),
            }
        })
    }

    /// The stream's analysis: its chosen program and PIDs.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// How many finished segments wait to be taken.
    pub fn ready_count(&self) -> usize {
        self.ready.len()
    }

    /// Takes the segments finished so far, oldest first.
    pub fn take_ready(&mut self) -> std::vec::Drain<'_, Segment> {
        self.ready.drain(..)
    }

    /// Hands out the bytes of the growing segments that nothing can change
    /// any more (all but the units that may still be dropped as unfinished),
    /// oldest segment first, and forgets them: a caller that writes them to
    /// disk as they come keeps the cutter's memory to about a frame per
    /// PID, and loses at most that much in a crash. The [`Segment`]
    /// emitted later holds only the rest (see [`Segment::data_offset`]).
    ///
    /// ```
    /// use hlsvault_ts::segment::{CutPolicy, SegmentCutter};
    /// # use std::time::{Duration, SystemTime};
    /// # let policy = CutPolicy { target: Duration::from_secs(4), max: Duration::from_secs(30), recovery: false, selection: Default::default(), gap: Duration::from_secs(10), cut_at_splice: true, aligned: false };
    /// let mut cutter = SegmentCutter::new(policy);
    /// cutter.push_datagram(&[0x47; 188], SystemTime::now(), false);
    /// let mut written = 0;
    /// cutter.drain_settled(|growing, bytes| written += bytes.len());
    /// assert_eq!(written, 0, "no keyframe yet: nothing is growing");
    /// ```
    pub fn drain_settled(&mut self, mut out: impl FnMut(Growing, &[u8])) {
        if let Some(Tail {
            open: Some(open),
            waiting,
            ..
        }) = &mut self.tail
        {
            open.drain_settled(Some(waiting), &mut out);
        }
        if let Some(cur) = &mut self.cur {
            cur.drain_settled(None, &mut out);
        }
    }

    /// Feeds the TS payload of one datagram captured at `at` (188-byte
    /// packets: see [`crate::as_188`]). `lost_before` says that
    /// datagrams were lost just before this one.
    pub fn push_datagram(&mut self, ts: &[u8], at: SystemTime, lost_before: bool) {
        if let Some(last) = self.last_capture {
            if let Ok(gap) = at.duration_since(last) {
                if gap > self.gap {
                    self.brk(Cause::CaptureGap(gap));
                    self.analyzer.forget_history();
                }
            }
        }
        self.last_capture = Some(at);
        if lost_before {
            self.brk(Cause::LostDatagrams);
        }
        let mut i = 0;
        while let Some(p) = ts[i..].first_chunk::<PACKET_SIZE>() {
            if p[0] == SYNC_BYTE {
                self.push_packet(p, at);
                i += PACKET_SIZE;
            } else {
                let next = ts[i + 1..]
                    .iter()
                    .position(|&b| b == SYNC_BYTE)
                    .map_or(ts.len(), |n| i + 1 + n);
                self.counters.unsynced_bytes += (next - i) as u64;
                i = next;
            }
        }
        self.counters.unsynced_bytes += (ts.len() - i) as u64;
    }

    /// The source went silent for `silence`: the open segment ends now
    /// rather than when data returns, and the next one is a discontinuity.
    pub fn stall(&mut self, silence: Duration) {
        self.brk(Cause::CaptureGap(silence));
        self.analyzer.forget_history();
        // The return of data is the same break, not a second one.
        self.last_capture = None;
    }

    /// Ends the stream: closes every segment, as at a break.
    pub fn finish(&mut self) {
        // A capture ends at an arbitrary packet: the last units may be cut.
        self.close_all(true);
        self.log_skipped("the stream ended");
    }

    fn push_packet(&mut self, p: &Packet, at: SystemTime) {
        let ins = self.analyzer.inspect(p);
        let h = ins.header;
        if let Some(b) = ins.brk {
            self.brk(Cause::Stream(b));
        }
        if let Some(pcr) = ins.pcr {
            self.last_pcr = Some((pcr, at));
        }
        if ins.marker {
            for marker in self.analyzer.take_markers() {
                self.splices.add(marker, self.last_au);
            }
        }
        if !self.analyzer.keeps(h.pid) {
            match h.pid {
                PID_PAT => {
                    let mut pat = Vec::new();
                    self.analyzer.write_pat(h.pusi, &mut pat);
                    for q in packets(&pat) {
                        self.take(q, Header::parse(q), None, at);
                    }
                }
                PID_NULL => self.counters.null_packets_dropped += 1,
                // Before the program is known nothing can be kept yet.
                _ if self.analyzer.timing_pid().is_none() => {
                    self.counters.skipped_packets += 1;
                    self.skipped_since_log += 1;
                }
                _ => self.counters.other_packets_dropped += 1,
            }
            return;
        }
        if h.pusi && h.has_payload && !self.unit_pid[h.pid as usize] && h.pid != PID_NULL {
            self.unit_pid[h.pid as usize] = true;
            self.unit_pids.push(h.pid);
        }
        if let Some(pts) = ins.audio_pts {
            if self.audio_unit(pts, p, h, at) {
                return;
            }
        }
        if let Some(au) = ins.access_unit {
            self.access_unit(au, p, h, at);
            return;
        }
        self.take(p, h, ins.key_resolved, at);
    }

    /// An audio unit of the program's fallback PID: it times the stream
    /// while video is absent. Returns whether it was taken as such.
    fn audio_unit(&mut self, pts: u64, p: &Packet, h: Header, at: SystemTime) -> bool {
        let ext = self.extender.extend(pts);
        match self.watch.audio(ext) {
            AudioRole::Ignored => return false,
            AudioRole::Takes { absent, silence } => {
                let silence = humantime::format_duration(ticks_to_duration(silence));
                match absent {
                    true => {
                        tracing::warn!(%silence, video_pid = ?self.analyzer.timing_pid(), audio_pid = h.pid, "the PMT declares video that has not come: audio times the segments")
                    }
                    false => {
                        tracing::warn!(%silence, audio_pid = h.pid, "video stopped while audio goes on: audio times the segments until a video keyframe is back")
                    }
                }
                self.counters.video_outages += 1;
                self.last_au = None;
                self.frame = None;
                self.force_cut = true;
            }
            AudioRole::Times => {}
        }
        let unit = AccessUnit {
            pts: Some(pts),
            dts: None,
            key: Some(Picture::Key),
            rai: false,
        };
        self.access_unit(unit, p, h, at);
        true
    }

    /// A video keyframe at `ext` while audio times the stream: video times
    /// it again from this picture. Media that runs on stays in the open
    /// segment (its video starts at this keyframe) and the next cut comes
    /// at the target; media that jumps starts a new segment after a
    /// discontinuity.
    fn video_back(&mut self, ext: i64) {
        let contiguous = self.watch.video_returns(ext);
        tracing::info!(contiguous, "video is back: it times the segments again");
        if !contiguous && self.cur.is_some() {
            self.counters.discontinuities += 1;
            self.break_pending = Some(Cause::VideoJump);
        }
        self.last_au = None;
        self.frame = None;
        self.force_cut = !contiguous;
    }

    /// The PID whose units time the stream now: video, or the audio that
    /// stands in for it.
    fn timing_pid(&self) -> Option<u16> {
        match self.watch.audio_times() {
            true => self.analyzer.fallback_pid(),
            false => self.analyzer.timing_pid(),
        }
    }

    /// A kept packet that starts no access unit: held while the pending
    /// unit's picture is not known, routed otherwise.
    fn take(&mut self, p: &Packet, h: Header, key_resolved: Option<Picture>, at: SystemTime) {
        if self.pending.is_none() && self.dropped_while_audio_times(h.pid) {
            return;
        }
        if let Some(pending) = &mut self.pending {
            pending.packets.extend_from_slice(p);
            if let Some(picture) = key_resolved {
                self.resolve(picture, at);
            } else if pending.packets.len() > MAX_SEGMENT_BYTES / 8 {
                self.resolve(Picture::NotKey, at);
            }
            return;
        }
        self.route(p, h);
    }

    fn access_unit(&mut self, au: AccessUnit, p: &Packet, h: Header, at: SystemTime) {
        if self.pending.is_some() {
            // The previous unit never showed a picture: not a keyframe.
            self.resolve(Picture::NotKey, at);
        }
        let Some(pts) = au.pts else {
            self.route(p, h);
            return;
        };
        let ext = self.extender.extend(pts);
        let video = Some(h.pid) == self.analyzer.timing_pid() && !self.analyzer.audio_timed();
        if video && self.watch.audio_times() {
            match au.key.map(|p| self.starts(p)) {
                Some(true) => self.video_back(ext),
                Some(false) => {
                    self.dropped_while_audio_times(h.pid);
                    return;
                }
                None => {
                    self.pending = Some(Pending {
                        ext,
                        packets: p.to_vec(),
                    });
                    return;
                }
            }
        } else if video {
            self.watch.video(ext);
        }
        // Frame duration: the smallest decode-order step. DTS advances one
        // frame at a time; PTS (without DTS) only in streams without reordering.
        let decode = ext + au.dts.map_or(0, |dts| pts_diff(dts, pts));
        if let Some(last) = self.last_au {
            let step = decode - last;
            if step > 0 && self.frame.is_none_or(|f| (step as u64) < f) {
                self.frame = Some(step as u64);
            }
        }
        self.last_au = Some(decode);
        self.splices.access_unit(ext);
        match au.key.map(|p| self.starts(p)) {
            Some(true) => self.keyframe(ext, at),
            Some(false) => self.non_keyframe(ext, at),
            None if self.would_cut(ext, at) => {
                self.pending = Some(Pending {
                    ext,
                    packets: p.to_vec(),
                });
                return;
            }
            None => self.non_keyframe(ext, at),
        }
        if let Some(cur) = &mut self.cur {
            cur.access_unit(ext);
        }
        self.route(p, h);
    }

    /// While audio times the stream, video waits for its keyframe: what
    /// comes before it cannot decode. Counted as skipped.
    fn dropped_while_audio_times(&mut self, pid: u16) -> bool {
        let video = self.watch.audio_times() && Some(pid) == self.analyzer.timing_pid();
        if video {
            self.counters.skipped_packets += 1;
        }
        video
    }

    /// Whether a segment may start at this picture.
    fn starts(&self, picture: Picture) -> bool {
        match picture {
            Picture::Key => true,
            Picture::Recovery(_) => self.recovery,
            Picture::NotKey => false,
        }
    }

    /// Settles a pending access unit and replays its packets.
    fn resolve(&mut self, picture: Picture, at: SystemTime) {
        let key = self.starts(picture);
        let Some(pending) = self.pending.take() else {
            return;
        };
        if self.watch.audio_times() {
            if !key {
                // Video that cannot decode yet: the rest goes on.
                for p in packets(&pending.packets) {
                    let h = Header::parse(p);
                    if !self.dropped_while_audio_times(h.pid) {
                        self.route(p, h);
                    }
                }
                return;
            }
            self.video_back(pending.ext);
        }
        if key {
            self.keyframe(pending.ext, at);
        } else {
            self.non_keyframe(pending.ext, at);
        }
        if let Some(cur) = &mut self.cur {
            cur.access_unit(pending.ext);
        }
        for p in packets(&pending.packets) {
            self.route(p, Header::parse(p));
        }
    }

    /// Where the frame at `ext` falls on the wall clock, inside what the
    /// archive can name (a corrupt capture's clock can be anywhere).
    fn wall_of(&self, ext: i64, at: SystemTime) -> SystemTime {
        writable(match self.anchor {
            Some(a) => a.wall(ext),
            None => self.new_anchor(ext, at).wall,
        })
    }

    /// Anchors a new run: the frame is presented when the decoder clock
    /// (PCR, placed on the wall clock by its capture time) reaches its PTS.
    fn new_anchor(&self, ext: i64, at: SystemTime) -> Anchor {
        let wall = self
            .last_pcr
            .and_then(|(pcr, pcr_at)| {
                let pts = ext.rem_euclid(1 << 33) as u64;
                let lead = pts_diff(pts, pcr / (PCR_HZ / PTS_HZ));
                (lead.abs() < 10 * PTS_HZ as i64).then(|| {
                    Anchor {
                        ext: 0,
                        wall: pcr_at,
                    }
                    .wall(lead)
                })
            })
            .unwrap_or(at);
        Anchor { ext, wall }
    }

    fn would_cut(&self, ext: i64, at: SystemTime) -> bool {
        if self.force_cut {
            return true;
        }
        match &self.cur {
            None => true,
            Some(cur) => {
                self.target_reached(cur.first, ext)
                    || Hour::of(self.wall_of(ext, at)) != cur.hour
                    || (self.cut_at_splice && self.splices.due(cur.first, ext))
            }
        }
    }

    /// Whether a keyframe at `ext` ends the segment that began at `first`
    /// by its length: `target` after it, or (aligned) in a later multiple
    /// of `target` on the PTS timeline, which the 33-bit wrap also starts.
    fn target_reached(&self, first: i64, ext: i64) -> bool {
        match self.aligned {
            true => {
                let slot = |t: i64| t.rem_euclid(1 << 33) / self.target.max(1);
                slot(ext) != slot(first)
            }
            false => ext - first >= self.target,
        }
    }

    fn keyframe(&mut self, ext: i64, at: SystemTime) {
        if !self.would_cut(ext, at) {
            return;
        }
        self.cut(ext, at, true);
    }

    fn non_keyframe(&mut self, ext: i64, at: SystemTime) {
        let Some(cur) = &self.cur else { return };
        if ext - cur.first >= self.max {
            self.counters.forced_cuts += 1;
            tracing::warn!(
                after = %humantime::format_duration(ticks_to_duration(ext - cur.first)),
                "no keyframe within the hard cap: cutting without one (the next segment is a discontinuity)"
            );
            // Its first pictures need the previous segment's: players must
            // not take them as continuing it.
            self.counters.discontinuities += 1;
            self.break_pending = Some(Cause::HardCap);
            self.cut(ext, at, false);
        }
    }

    /// Closes the open segment (its duration ends at `ext`) and opens the next.
    fn cut(&mut self, ext: i64, at: SystemTime, keyframe: bool) {
        if self.anchor.is_none() {
            self.anchor = Some(self.new_anchor(ext, at));
        }
        let start = self.wall_of(ext, at);
        let mut cur = self.cur.take();
        if let Some(cur) = &mut cur {
            self.place_markers(cur, Some(ext), at);
        }
        if cur.is_none() {
            self.log_skipped("a keyframe opened the stream");
        }
        self.flush_tail();
        // Every PID may be mid-unit; the cutting PID's own unit start
        // (routed next) takes it off the list at once.
        self.tail = Some(Tail {
            duration: cur.as_ref().map_or(0, |c| (ext - c.first).max(0) as u64),
            open: cur,
            waiting: self.unit_pids.clone(),
            budget: STRAGGLER_PACKETS,
        });
        self.started = true;
        self.force_cut = false;
        let mut buf = Vec::with_capacity(1 << 20);
        self.analyzer.write_psi(&mut buf);
        let sets = match keyframe {
            true => self.analyzer.take_cut_sets(),
            false => None,
        };
        self.cur = Some(Open {
            id: self.opened,
            buf,
            drained: 0,
            first: ext,
            last: ext,
            complete: None,
            units: Vec::new(),
            hour: Hour::of(start),
            start,
            discontinuity: std::mem::take(&mut self.break_pending),
            keyframe,
            sets,
            markers: Vec::new(),
        });
        self.opened += 1;
    }

    fn route(&mut self, p: &Packet, h: Header) {
        if let Some(tail) = &mut self.tail {
            if h.has_payload {
                if let Some(at) = tail.waiting.iter().position(|&pid| pid == h.pid) {
                    if !h.pusi {
                        match &mut tail.open {
                            Some(open) => {
                                open.buf.extend_from_slice(p);
                                open.appended(open.buf.len() - PACKET_SIZE);
                            }
                            None => self.counters.skipped_packets += 1,
                        }
                        return;
                    }
                    tail.waiting.swap_remove(at);
                }
            }
            tail.budget -= 1;
            if tail.waiting.is_empty() || tail.budget == 0 {
                self.flush_tail();
            }
        }
        let full = match &mut self.cur {
            Some(cur) => {
                let from = cur.buf.len();
                match cur.sets.take() {
                    Some((es_at, sets)) if h.pusi && Some(h.pid) == self.analyzer.timing_pid() => {
                        if insert_into_unit_start(p, es_at, &sets, &mut cur.buf) {
                            self.counters.parameter_sets_inserted += 1;
                        } else {
                            cur.buf.extend_from_slice(p);
                        }
                    }
                    sets => {
                        cur.sets = sets;
                        cur.buf.extend_from_slice(p);
                    }
                }
                cur.appended(from);
                cur.len() >= MAX_SEGMENT_BYTES
            }
            None => {
                self.counters.skipped_packets += 1;
                self.skipped_since_log += 1;
                false
            }
        };
        if full {
            self.brk(Cause::Oversized);
        }
    }

    fn flush_tail(&mut self) {
        if let Some(Tail {
            open: Some(open),
            duration,
            ..
        }) = self.tail.take()
        {
            self.emit(open, duration);
        }
    }

    fn emit(&mut self, open: Open, duration: u64) {
        self.ready.push(Segment {
            id: open.id,
            data: open.buf,
            data_offset: open.drained as u64,
            start: open.start,
            pts: open.first.rem_euclid(1 << 33) as u64,
            duration,
            discontinuity: open.discontinuity,
            keyframe: open.keyframe,
            markers: open.markers,
        });
    }

    /// The run ends: the markers still waiting go with its last segment
    /// (their times are on this run's clock, which the next one is not).
    fn place_last_markers(&mut self) {
        let at = self.last_capture.unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(mut cur) = self.cur.take() {
            self.place_markers(&mut cur, None, at);
            self.cur = Some(cur);
        } else if let Some(mut open) = self.tail.as_mut().and_then(|t| t.open.take()) {
            self.place_markers(&mut open, None, at);
            if let Some(tail) = &mut self.tail {
                tail.open = Some(open);
            }
        } else {
            let lost = self.splices.take_before(None).len();
            if lost > 0 {
                tracing::warn!(
                    markers = lost,
                    "SCTE-35 markers before any segment of the run: dropped"
                );
            }
        }
    }

    /// Gives `open` (ending at `end`; None: the run ends with it) the
    /// markers whose splice comes before that, on the wall clock.
    fn place_markers(&mut self, open: &mut Open, end: Option<i64>, at: SystemTime) {
        for (ext, marker) in self.splices.take_before(end) {
            // An immediate splice with no frame after it: at the last.
            let ext = ext.unwrap_or(open.last);
            let at = self.wall_of(ext, at);
            open.markers.push(Placed { marker, at });
        }
    }

    /// The timeline broke: close everything; the next segment opens at the
    /// next keyframe, marked discontinuous, on a new wall-clock anchor.
    fn brk(&mut self, cause: Cause) {
        // On this run's clock, before it is forgotten.
        self.place_last_markers();
        self.anchor = None;
        self.watch.forget();
        if self.cur.is_none() && self.tail.is_none() && self.pending.is_none() {
            // Already waiting for a keyframe: the same gap, not a new one.
            return;
        }
        self.counters.discontinuities += 1;
        let had_media = self.started;
        tracing::info!(%cause, "timeline break: segment ends, next one is a discontinuity");
        if let Some(pending) = self.pending.take() {
            for p in packets(&pending.packets) {
                self.route(p, Header::parse(p));
            }
        }
        // Data was lost or the stream restarted: units in flight may be cut
        // short. An announced discontinuity or a size bound loses nothing.
        let unfinished = !matches!(cause, Cause::Stream(Break::Announced) | Cause::Oversized);
        self.close_all(unfinished);
        self.break_pending = had_media.then_some(cause);
    }

    /// Closes the tail and the open segment. With `unfinished`, units that
    /// may be cut short are dropped first (counted and logged).
    fn close_all(&mut self, unfinished: bool) {
        self.place_last_markers();
        let timing = self.timing_pid();
        let mut dropped = 0;
        if let Some(tail) = &mut self.tail {
            if let (true, Some(open)) = (unfinished, &mut tail.open) {
                dropped += open.drop_unfinished(Some(&tail.waiting), timing);
            }
        }
        self.flush_tail();
        if let Some(mut cur) = self.cur.take() {
            if unfinished {
                dropped += cur.drop_unfinished(None, timing);
            }
            if cur.has_media() {
                // No next frame to measure to: the last frame ends the segment.
                let duration = (cur.last - cur.first) as u64 + self.frame.unwrap_or(0);
                self.emit(cur, duration);
            } else {
                dropped += (cur.len() / PACKET_SIZE) as u64;
            }
        }
        self.pending = None;
        if dropped > 0 {
            self.counters.skipped_packets += dropped;
            tracing::warn!(
                packets = dropped,
                "dropped units that may be cut short (the last frame before a loss or the end)"
            );
        }
    }

    fn log_skipped(&mut self, why: &str) {
        let n = std::mem::take(&mut self.skipped_since_log);
        if n == 0 {
            return;
        }
        // Before the very first keyframe this is how every capture starts;
        // after a break it is data lost to the break.
        if self.break_pending.is_some() {
            tracing::warn!(
                packets = n,
                "dropped packets that no segment could start with until {why}"
            );
        } else {
            tracing::info!(
                packets = n,
                "skipped packets before the first keyframe until {why}"
            );
        }
    }
}
