//! `hlsvault probe`: what a capture file or an interface carries, per UDP
//! destination (RTP or not, rate), per program (PIDs, stream types,
//! codecs), with the timed stream's GOP and keyframe signalling, the PCR
//! interval, continuity errors and the null share, and a ready
//! `[[streams]]` snippet for each destination.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Pace;
use hlsvault_capture::{
    CaptureError, Endpoint, Event, Flow, PcapFileSource, PcapLiveSource, SourceCounters, Target,
    Targets,
};
use hlsvault_ts::clock::{PtsExtender, PCR_HZ, PTS_HZ};
use hlsvault_ts::keyframe::Picture;
use hlsvault_ts::program::{ProgramChoice, Selection};
use hlsvault_ts::rtp::{self, Payload};
use hlsvault_ts::{
    as_188, packet_layout, packets, Analyzer, Packet, PidInfo, PACKET_SIZE, PID_NULL,
};

/// Destinations followed at most (the rest are counted).
const MAX_DESTINATIONS: usize = 64;

/// Where the datagrams came from, for the snippets.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A capture file.
    File(PathBuf),
    /// Live on an interface.
    Interface(String),
}

/// What one destination carried.
pub struct Destination {
    /// The UDP destination.
    pub dst: SocketAddr,
    /// Datagrams, and their UDP payload bytes.
    pub datagrams: u64,
    bytes: u64,
    rtp: u64,
    not_ts: u64,
    packet_size: usize,
    first: Option<SystemTime>,
    last: Option<SystemTime>,
    ts: TsProbe,
}

/// The TS analysis of one destination: its timed stream's keyframes and
/// clock.
struct TsProbe {
    analyzer: Analyzer,
    extender: PtsExtender,
    /// The access unit whose picture is not known yet: its PTS and RAI.
    pending: Option<(i64, bool)>,
    frames: u64,
    keys: u64,
    recovery_points: u64,
    rai_on_keys: u64,
    rai_on_others: u64,
    last_key: Option<i64>,
    /// GOP lengths (ticks between keyframes): shortest, longest, sum.
    gops: (i64, i64, i64, u64),
    last_pcr: Option<u64>,
    max_pcr_gap: u64,
    pcrs: u64,
}

impl TsProbe {
    fn new() -> Self {
        TsProbe {
            analyzer: Analyzer::with_selection(Selection {
                program: ProgramChoice::Auto,
                whole_multiplex: true,
                keep_nulls: true,
            }),
            extender: PtsExtender::default(),
            pending: None,
            frames: 0,
            keys: 0,
            recovery_points: 0,
            rai_on_keys: 0,
            rai_on_others: 0,
            last_key: None,
            gops: (i64::MAX, 0, 0, 0),
            last_pcr: None,
            max_pcr_gap: 0,
            pcrs: 0,
        }
    }

    fn packet(&mut self, p: &Packet) {
        let ins = self.analyzer.inspect(p);
        if let Some(pcr) = ins.pcr {
            if let Some(last) = self.last_pcr {
                let gap = hlsvault_ts::clock::pcr_forward(pcr, last);
                if gap < PCR_HZ {
                    self.max_pcr_gap = self.max_pcr_gap.max(gap);
                }
            }
            self.last_pcr = Some(pcr);
            self.pcrs += 1;
        }
        if ins.brk.is_some() {
            self.last_pcr = ins.pcr;
        }
        if let Some(au) = ins.access_unit {
            if let Some((ext, rai)) = self.pending.take() {
                self.picture(ext, rai, Picture::NotKey);
            }
            if let Some(pts) = au.pts {
                let ext = self.extender.extend(pts);
                match au.key {
                    Some(picture) => self.picture(ext, au.rai, picture),
                    None => self.pending = Some((ext, au.rai)),
                }
            }
        } else if let Some(picture) = ins.key_resolved {
            if let Some((ext, rai)) = self.pending.take() {
                self.picture(ext, rai, picture);
            }
        }
    }

    fn picture(&mut self, ext: i64, rai: bool, picture: Picture) {
        self.frames += 1;
        match picture {
            Picture::Key => {
                self.keys += 1;
                if let Some(last) = self.last_key {
                    let gop = ext - last;
                    if gop > 0 {
                        let g = &mut self.gops;
                        *g = (g.0.min(gop), g.1.max(gop), g.2 + gop, g.3 + 1);
                    }
                }
                self.last_key = Some(ext);
            }
            Picture::Recovery(_) => self.recovery_points += 1,
            Picture::NotKey => {}
        }
        match (picture == Picture::Key, rai) {
            (true, true) => self.rai_on_keys += 1,
            (false, true) => self.rai_on_others += 1,
            _ => {}
        }
    }
}

impl Destination {
    fn new(dst: SocketAddr) -> Self {
        Destination {
            dst,
            datagrams: 0,
            bytes: 0,
            rtp: 0,
            not_ts: 0,
            packet_size: PACKET_SIZE,
            first: None,
            last: None,
            ts: TsProbe::new(),
        }
    }

    fn datagram(&mut self, at: SystemTime, payload: &[u8]) {
        self.datagrams += 1;
        self.bytes += payload.len() as u64;
        self.first.get_or_insert(at);
        self.last = Some(at);
        let ts = match rtp::classify(payload) {
            Payload::Ts(ts) => ts,
            Payload::Rtp { ts, .. } => {
                self.rtp += 1;
                ts
            }
            Payload::NotTs => {
                self.not_ts += 1;
                return;
            }
        };
        self.packet_size = packet_layout(ts).0;
        for p in packets(&as_188(ts)) {
            if p[0] == hlsvault_ts::SYNC_BYTE {
                self.ts.packet(p);
            }
        }
    }

    /// Mbit/s of UDP payload over the time it was seen.
    fn mbps(&self) -> f64 {
        let secs = match (self.first, self.last) {
            (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default().as_secs_f64(),
            _ => 0.0,
        };
        if secs <= 0.0 {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / secs / 1e6
    }

    /// The PIDs, grouped by program (PIDs of no program last).
    fn programs(&self) -> Vec<(Option<u16>, Vec<PidInfo>)> {
        let mut out: Vec<(Option<u16>, Vec<PidInfo>)> = Vec::new();
        for p in self.ts.analyzer.pids() {
            match out.iter_mut().find(|(n, _)| *n == p.program) {
                Some((_, list)) => list.push(p),
                None => out.push((p.program, vec![p])),
            }
        }
        out.sort_by_key(|(n, _)| n.is_none());
        out
    }

    /// The `[[streams]]` snippet that archives this destination.
    fn snippet(&self, origin: &Origin, out: &mut String) {
        let name: String = format!("{}-{}", self.dst.ip(), self.dst.port())
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = writeln!(out, "[[streams]]\nname = \"{name}\"");
        let timed = self.ts.analyzer.timed_programs();
        if timed.len() > 1 {
            let chosen = self.ts.analyzer.program().unwrap_or(timed[0]);
            let others: Vec<String> = timed.iter().map(u16::to_string).collect();
            let _ = writeln!(
                out,
                "program = {chosen}            # this multiplex carries programs {}",
                others.join(", ")
            );
        }
        // At most one keyframe (the encoder's first), then recovery points.
        if self.ts.gops.3 == 0 && self.ts.recovery_points > 0 {
            let _ = writeln!(
                out,
                "keyframes = \"recovery\"  # no keyframe, only recovery points (intra refresh)"
            );
        }
        let null_share = self.null_share();
        if null_share > 0.0 {
            let _ = writeln!(
                out,
                "# null_packets = \"keep\"   # {:.1} % of the packets are nulls, dropped by default",
                null_share * 100.0
            );
        }
        let _ = writeln!(out, "[streams.source]");
        match origin {
            Origin::File(path) => {
                let _ = writeln!(out, "kind = \"pcap-file\"\npath = \"{}\"", path.display());
            }
            Origin::Interface(i) => {
                let _ = writeln!(out, "kind = \"pcap\"\ninterface = \"{i}\"");
            }
        }
        let _ = writeln!(
            out,
            "group = \"{}\"\nport = {}",
            self.dst.ip(),
            self.dst.port()
        );
    }

    fn null_share(&self) -> f64 {
        let pids = self.ts.analyzer.pids();
        let total: u64 = pids.iter().map(|p| p.packets).sum();
        let nulls = pids
            .iter()
            .find(|p| p.pid == PID_NULL)
            .map_or(0, |p| p.packets);
        match total {
            0 => 0.0,
            t => nulls as f64 / t as f64,
        }
    }
}

/// What a probe found.
pub struct Report {
    /// Where it looked.
    pub origin: Origin,
    /// What the source counted (records, not UDP, truncated, fragments).
    pub counters: SourceCounters,
    /// Each destination, most datagrams first.
    pub destinations: Vec<Destination>,
    /// Datagrams to destinations past [`MAX_DESTINATIONS`].
    pub unfollowed: u64,
}

/// Probes a capture file, whole or its first `limit` of capture time.
pub fn probe_file(path: &Path, limit: Option<Duration>) -> Result<Report, CaptureError> {
    let mut source = PcapFileSource::new(path.to_path_buf(), Pace::Fast);
    let mut first = None;
    probe(Origin::File(path.to_path_buf()), &mut source, move |at| {
        let Some(at) = at else { return false };
        let t0 = *first.get_or_insert(at);
        limit.is_some_and(|l| at.duration_since(t0).unwrap_or_default() > l)
    })
}

/// Probes `group:port` live on `interface` for `seconds`.
pub fn probe_live(
    interface: &str,
    group: IpAddr,
    port: u16,
    seconds: Duration,
) -> Result<Report, CaptureError> {
    let target = Target {
        id: 0,
        endpoint: Endpoint {
            group,
            port,
            source: None,
        },
        buffer: 32 << 20,
    };
    let mut source = PcapLiveSource::new(interface.to_string(), Targets::new(vec![target]));
    let until = Instant::now() + seconds;
    probe(
        Origin::Interface(interface.to_string()),
        &mut source,
        move |_| Instant::now() >= until,
    )
}

/// Reads `source` until it ends or `done` says so: `done` is asked with
/// each datagram's capture time, and with `None` as time passes (live
/// sources tick even when nothing comes).
fn probe(
    origin: Origin,
    source: &mut dyn hlsvault_capture::Source,
    mut done: impl FnMut(Option<SystemTime>) -> bool,
) -> Result<Report, CaptureError> {
    let mut by_dst: HashMap<SocketAddr, Destination> = HashMap::new();
    let mut unfollowed = 0;
    let (_, counters) = source.run(&mut |e| {
        match e {
            Event::Datagram(d) => {
                if done(Some(d.at)) {
                    return Flow::Stop;
                }
                let room = by_dst.len() < MAX_DESTINATIONS;
                match by_dst.get_mut(&d.dst) {
                    Some(dest) => dest.datagram(d.at, d.payload),
                    None if room => by_dst
                        .entry(d.dst)
                        .or_insert_with(|| Destination::new(d.dst))
                        .datagram(d.at, d.payload),
                    None => unfollowed += 1,
                }
            }
            Event::Tick | Event::Progress(_) => {
                if done(None) {
                    return Flow::Stop;
                }
            }
            Event::SocketDrops { .. } => {}
        }
        Flow::Continue
    })?;
    let mut destinations: Vec<Destination> = by_dst.into_values().collect();
    destinations.sort_by(|a, b| b.datagrams.cmp(&a.datagrams).then(a.dst.cmp(&b.dst)));
    Ok(Report {
        origin,
        counters,
        destinations,
        unfollowed,
    })
}

fn secs(ticks: i64) -> String {
    format!("{:.2} s", ticks as f64 / PTS_HZ as f64)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counters;
        let source = match &self.origin {
            Origin::File(p) => p.display().to_string(),
            Origin::Interface(i) => format!("pcap on {i}"),
        };
        writeln!(
            f,
            "{source}: {} records, {} UDP destinations, {} not UDP, {} truncated, {} IP fragments ({} reassembled, {} incomplete)",
            c.records,
            self.destinations.len(),
            c.not_udp,
            c.truncated,
            c.fragments,
            c.reassembled,
            c.fragments_incomplete
        )?;
        if self.unfollowed > 0 {
            writeln!(
                f,
                "({} datagrams to further destinations not followed)",
                self.unfollowed
            )?;
        }
        for d in &self.destinations {
            self.destination(d, f)?;
        }
        Ok(())
    }
}

impl Report {
    fn destination(&self, d: &Destination, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (d.rtp, d.not_ts) {
            (0, n) if n == d.datagrams => "not MPEG-TS".to_string(),
            (0, _) => "plain TS".to_string(),
            (r, _) if r == d.datagrams => "RTP".to_string(),
            (r, _) => format!("RTP in {r} of them"),
        };
        let size = match d.packet_size {
            PACKET_SIZE => String::new(),
            n => format!(", {n}-byte packets"),
        };
        writeln!(
            f,
            "\n{}: {kind}{size}, {} datagrams, {:.2} Mbit/s",
            d.dst,
            d.datagrams,
            d.mbps()
        )?;
        for (program, pids) in d.programs() {
            match program {
                Some(n) => {
                    let timed = d.ts.analyzer.program() == Some(n);
                    let mark = if timed { " (timed by default)" } else { "" };
                    writeln!(f, "  program {n}{mark}")?;
                }
                None => writeln!(f, "  outside any program")?,
            }
            for p in pids {
                let timing = Some(p.pid) == d.ts.analyzer.timing_pid();
                let mark = if timing { "  <- timing" } else { "" };
                writeln!(
                    f,
                    "    PID {:>4}  {:<22} {:>9} packets{mark}",
                    p.pid, p.what, p.packets
                )?;
            }
        }
        let t = &d.ts;
        if t.frames > 0 {
            let gop = match t.gops.3 {
                0 => "one keyframe or none: no GOP measured".to_string(),
                n => format!(
                    "GOP {} (from {} to {})",
                    secs(t.gops.2 / n as i64),
                    secs(t.gops.0),
                    secs(t.gops.1)
                ),
            };
            writeln!(
                f,
                "  {} units on the timing PID, {} keyframes, {} recovery points; {gop}",
                t.frames, t.keys, t.recovery_points
            )?;
            let rai = match (t.rai_on_keys, t.rai_on_others) {
                (0, 0) => "the random access indicator is never set".to_string(),
                (k, 0) => format!("RAI on {k} of {} keyframes, never on other pictures", t.keys),
                (k, o) => format!(
                    "RAI on {k} keyframes and on {o} other pictures (not trusted: pictures are verified)"
                ),
            };
            writeln!(f, "  {rai}")?;
        }
        let counters = t.analyzer.counters();
        writeln!(
            f,
            "  PCR: {} seen, longest interval {:.1} ms; {} CC errors; nulls {:.1} %",
            t.pcrs,
            t.max_pcr_gap as f64 / (PCR_HZ as f64 / 1000.0),
            counters.cc_errors,
            d.null_share() * 100.0
        )?;
        let mut snippet = String::new();
        d.snippet(&self.origin, &mut snippet);
        writeln!(f, "\n{snippet}")
    }
}
