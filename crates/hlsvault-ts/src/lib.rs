//! The MPEG-TS core of hlsvault: TS packets, PSI, PES, the 90 kHz and
//! 27 MHz clocks, keyframe verification, program selection, RTP, and the
//! segment cutter. Pure code: no I/O, no `unsafe`.
//!
//! The [`Analyzer`] makes one pass per packet that follows the PSI, checks
//! continuity, reads PCR and PTS, and finds random access points. It is
//! hand-written for speed: per-PID state lives in flat arrays indexed by
//! PID, and a packet that needs nothing costs a header decode, a table
//! lookup and a continuity check. The [`segment::SegmentCutter`] on top of
//! it decides where segments begin and end.

#![forbid(unsafe_code)]

pub mod audio;
pub mod bits;
pub mod clock;
mod hour;
pub mod join;
pub mod keyframe;
pub mod pace;
pub mod pes;
pub mod pes_units;
pub mod program;
pub mod psi;
pub mod restamp;
pub mod rtp;
pub mod scte35;
pub mod segment;
pub mod splice;
pub mod sps;
pub mod stuff;

pub use hour::Hour;

use clock::{pcr_forward, PCR_HZ};
use keyframe::{ParameterSets, Picture, VideoCodec};
use program::{Selection, TimingKind};
use psi::{PatEntry, Pmt, SectionAssembler};

/// Size of a TS packet.
pub const PACKET_SIZE: usize = 188;

/// One TS packet. Functions that read a packet take this type, not a
/// slice, so that no input can be too short for them.
pub type Packet = [u8; PACKET_SIZE];

/// The whole packets at the start of `bytes` (what follows is less than a
/// packet).
///
/// ```
/// let bytes = [0x47u8; 2 * 188 + 10];
/// assert_eq!(hlsvault_ts::packets(&bytes).len(), 2);
/// ```
#[inline]
pub fn packets(bytes: &[u8]) -> &[Packet] {
    bytes.as_chunks::<PACKET_SIZE>().0
}

/// [`packets`], to change them in place.
#[inline]
pub fn packets_mut(bytes: &mut [u8]) -> &mut [Packet] {
    bytes.as_chunks_mut::<PACKET_SIZE>().0
}

/// First byte of every TS packet.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the program association table.
pub const PID_PAT: u16 = 0;
/// PID of null (stuffing) packets.
pub const PID_NULL: u16 = 0x1FFF;
/// A PCR step larger than this is a jump (the standard asks for a PCR at
/// least every 100 ms, so a second is far outside normal).
const PCR_JUMP: u64 = PCR_HZ;
/// Give up looking for the first picture of an access unit after this many
/// bytes; the unit is then treated as not a random access point.
const MAX_SCAN: usize = 64 * 1024;
/// SCTE-35 markers kept for [`Analyzer::take_markers`] at most (its
/// caller takes them at each packet that says one came).
const MAX_MARKERS: usize = 64;
const UNSEEN: u8 = 0xFF;
/// PAT repeats after which the program choice is final even if some PMTs
/// listed never came (PATs repeat every 100 ms or so; PMTs every 500 ms at
/// most).
const SETTLE_PATS: u32 = 10;

/// The parts of a TS packet header the pipeline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet identifier.
    pub pid: u16,
    /// Payload unit start indicator.
    pub pusi: bool,
    /// Transport error indicator.
    pub tei: bool,
    /// The packet has an adaptation field.
    pub has_af: bool,
    /// The packet has a payload.
    pub has_payload: bool,
    /// Continuity counter.
    pub cc: u8,
}

impl Header {
    /// Decodes the 4-byte header of a packet (sync byte checked by the caller).
    #[inline]
    pub fn parse(p: &Packet) -> Self {
        Header {
            pid: u16::from_be_bytes([p[1], p[2]]) & 0x1FFF,
            pusi: p[1] & 0x40 != 0,
            tei: p[1] & 0x80 != 0,
            has_af: p[3] & 0x20 != 0,
            has_payload: p[3] & 0x10 != 0,
            cc: p[3] & 0x0F,
        }
    }
}

/// The payload of a packet (sync byte checked by the caller), if it has one
/// that fits.
pub fn payload(p: &Packet) -> Option<&[u8]> {
    let h = Header::parse(p);
    let at = if h.has_af { 5 + p[4] as usize } else { 4 };
    (h.has_payload && at < PACKET_SIZE).then(|| &p[at..])
}

/// How the TS packets of a datagram are laid out: `(stride, offset)`, the
/// bytes from one packet to the next and where the 188 TS bytes start in
/// each. `(188, 0)` is plain TS; `(204, 0)` carries 16 bytes of
/// Reed-Solomon parity after each packet (DVB-ASI, some satellite gear);
/// `(192, 4)` is M2TS, a 4-byte timestamp before each packet.
///
/// ```
/// use hlsvault_ts::packet_layout;
/// let mut rs = vec![0u8; 7 * 204];
/// rs.chunks_mut(204).for_each(|p| p[0] = 0x47);
/// assert_eq!(packet_layout(&rs), (204, 0));
/// assert_eq!(packet_layout(&[0x47; 1316]), (188, 0));
/// ```
pub fn packet_layout(d: &[u8]) -> (usize, usize) {
    let synced = |stride: usize, offset: usize| {
        d.len().is_multiple_of(stride)
            && !d.is_empty()
            && d.chunks_exact(stride).all(|p| p[offset] == SYNC_BYTE)
    };
    if synced(PACKET_SIZE, 0) {
        (PACKET_SIZE, 0)
    } else if synced(204, 0) {
        (204, 0)
    } else if synced(192, 4) {
        (192, 4)
    } else {
        (PACKET_SIZE, 0)
    }
}

/// The datagram's TS packets as 188-byte packets: as they are (borrowed)
/// when they are plain TS, without their parity or timestamp bytes
/// (owned) when they are 204 or 192 bytes long (see [`packet_layout`]).
///
/// ```
/// use hlsvault_ts::as_188;
/// let mut m2ts = vec![0u8; 2 * 192];
/// m2ts.chunks_mut(192).for_each(|p| p[4] = 0x47);
/// assert_eq!(as_188(&m2ts).len(), 2 * 188);
/// ```
pub fn as_188(d: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match packet_layout(d) {
        (PACKET_SIZE, _) => std::borrow::Cow::Borrowed(d),
        (stride, offset) => d
            .chunks_exact(stride)
            .flat_map(|p| &p[offset..offset + PACKET_SIZE])
            .copied()
            .collect(),
    }
}

/// Why the timeline broke at a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// A continuity counter skipped on one of the timed program's PIDs.
    Continuity {
        /// The PID whose counter skipped.
        pid: u16,
    },
    /// The PCR stepped backwards or forwards by more than a second.
    PcrJump,
    /// The adaptation field announced a discontinuity.
    Announced,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Continuity { pid } => write!(f, "continuity error on PID {pid}"),
            Break::PcrJump => f.write_str("PCR jump"),
            Break::Announced => f.write_str("announced discontinuity"),
        }
    }
}

/// The start of an access unit on the timing PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessUnit {
    /// Its PTS, when the PES header carries one.
    pub pts: Option<u64>,
    /// Its DTS, when the PES header carries one apart from the PTS.
    pub dts: Option<u64>,
    /// Whether a decoder can start at it; `None` while its first picture
    /// has not been seen yet (see [`Inspection::key_resolved`]).
    pub key: Option<Picture>,
    /// The adaptation field's random access indicator was set on it (a
    /// hint only: encoders set it on P-frames too).
    pub rai: bool,
}

/// What one packet told the analyzer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspection {
    /// The packet's header.
    pub header: Header,
    /// The timeline broke at this packet.
    pub brk: Option<Break>,
    /// PCR carried by this packet on the timed program's PCR PID.
    pub pcr: Option<u64>,
    /// An access unit starts on the timing PID with this packet.
    pub access_unit: Option<AccessUnit>,
    /// The pending access unit's random access status became known.
    pub key_resolved: Option<Picture>,
    /// An audio unit starts on the fallback PID (see
    /// [`Analyzer::fallback_pid`]), with this PTS.
    pub audio_pts: Option<u64>,
    /// A SCTE-35 marker completed with this packet (see
    /// [`Analyzer::take_markers`]).
    pub marker: bool,
}

/// Counters of what the analysis found wrong, kept by the analyzer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsCounters {
    /// Continuity counter errors, on any PID.
    pub cc_errors: u64,
    /// Packets with the transport error indicator set.
    pub tei_packets: u64,
    /// PSI sections refused (CRC, length, structure).
    pub psi_errors: u64,
    /// Adaptation fields that do not fit their packet.
    pub bad_adaptation: u64,
    /// PCR jumps and announced discontinuities on the timed program.
    pub pcr_breaks: u64,
    /// SCTE-35 sections refused (CRC, truncated, encrypted).
    pub scte35_errors: u64,
}

/// How a PID is used, as learnt from PAT and PMTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Unknown,
    Pat,
    Pmt,
    /// The elementary stream that drives timing.
    Timing,
    /// The chosen program's first audio stream while video times it: it
    /// times the stream while video is absent.
    Fallback,
    /// Another PID of the chosen program.
    Program,
    /// A SCTE-35 PID of the chosen program (stream type 0x86): its splice
    /// information is read.
    Scte35,
    /// A PID of another program.
    Other,
}

/// One PID seen in a stream: what it is and whether the archive keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PidInfo {
    /// The PID.
    pub pid: u16,
    /// What it carries, in words ("H.264 video", "PMT", "SDT/BAT", ...).
    pub what: String,
    /// The program it belongs to, if a PMT names it.
    pub program: Option<u16>,
    /// Packets seen.
    pub packets: u64,
    /// Whether its packets go into the archive.
    pub kept: bool,
}

/// Per-stream TS analyzer.
pub struct Analyzer {
    role: Box<[Role; 8192]>,
    cc: Box<[u8; 8192]>,
    assemblers: Vec<(u16, SectionAssembler)>,
    pat: Option<Vec<u8>>,
    programs: Vec<PatEntry>,
    /// Latest PMT section per PMT PID, parsed, in PAT order.
    pmts: Vec<(u16, Vec<u8>, Pmt)>,
    selection: Selection,
    /// PMT PID of the chosen program.
    chosen: Option<u16>,
    /// The choice is final: every PMT the PAT lists has come, or the PAT
    /// has repeated [`SETTLE_PATS`] times. Before, a program earlier in
    /// the PAT whose PMT comes later takes over.
    settled: bool,
    /// Repeats of the current PAT.
    pats_seen: u32,
    /// Per PID: whether the archive keeps its packets.
    keep: Box<[bool; 8192]>,
    /// The PAT as archived (only the chosen program) and the continuity
    /// counter of its last packet written.
    out_pat: Option<(Vec<u8>, u8)>,
    /// Packets seen per PID.
    packets: Box<[u64; 8192]>,
    pcr_pid: Option<u16>,
    timing: Option<(u16, TimingKind)>,
    /// The audio PID that times the stream while its video is absent.
    fallback: Option<u16>,
    last_pcr: Option<u64>,
    scan: Option<Vec<u8>>,
    /// The last scan of `scan` needs a new start code to say more.
    scan_awaits_start_code: bool,
    /// The timing PID's latest parameter sets.
    sets: ParameterSets,
    /// What the latest access unit lacks to start a segment.
    cut_sets: Option<(usize, Vec<u8>)>,
    /// SCTE-35 markers read and not taken yet.
    markers: Vec<scte35::Marker>,
    counters: TsCounters,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// A fresh analyzer that knows nothing about the stream yet, keeping
    /// the first program with video (or audio) and dropping null packets.
    pub fn new() -> Self {
        Self::with_selection(Selection::default())
    }

    /// A fresh analyzer that keeps and times what `selection` says.
    pub fn with_selection(selection: Selection) -> Self {
        let mut role = Box::new([Role::Unknown; 8192]);
        role[PID_PAT as usize] = Role::Pat;
        let mut a = Analyzer {
            role,
            cc: Box::new([UNSEEN; 8192]),
            assemblers: Vec::new(),
            pat: None,
            programs: Vec::new(),
            pmts: Vec::new(),
            selection,
            chosen: None,
            settled: false,
            pats_seen: 0,
            keep: Box::new([false; 8192]),
            out_pat: None,
            packets: Box::new([0; 8192]),
            pcr_pid: None,
            timing: None,
            fallback: None,
            last_pcr: None,
            scan: None,
            scan_awaits_start_code: false,
            sets: ParameterSets::default(),
            cut_sets: None,
            markers: Vec::new(),
            counters: TsCounters::default(),
        };
        a.assign();
        a
    }

    /// What the analysis found wrong so far.
    pub fn counters(&self) -> TsCounters {
        self.counters
    }

    /// The PID that drives timing, once the PMT is known.
    pub fn timing_pid(&self) -> Option<u16> {
        self.timing.map(|(pid, _)| pid)
    }

    /// The chosen program's first audio PID, when video times it: it times
    /// the stream while the video is absent.
    pub fn fallback_pid(&self) -> Option<u16> {
        self.fallback
    }

    /// Whether the timed program's PID drives timing with audio (no video).
    pub fn audio_timed(&self) -> bool {
        matches!(self.timing, Some((_, TimingKind::Audio)))
    }

    /// Forgets clock and continuity history after a capture gap (already a
    /// break): the next PCR must not read as a jump a second time, and a
    /// sender that restarted meanwhile starts its counters afresh.
    pub fn forget_history(&mut self) {
        self.last_pcr = None;
        self.cc.fill(UNSEEN);
    }

    /// Appends the latest PAT and the kept PMTs as TS packets, with
    /// continuity counters that the stream's next packets continue.
    /// Writes nothing until both PAT and the timed program's PMT are known.
    pub fn write_psi(&self, out: &mut Vec<u8>) {
        if self.timing.is_none() {
            return;
        }
        match (&self.out_pat, &self.pat) {
            (Some((pat, cc)), _) => psi::packetize(PID_PAT, pat, *cc, out),
            (None, Some(pat)) => psi::packetize(PID_PAT, pat, self.cc_or_zero(PID_PAT), out),
            (None, None) => return,
        }
        for (pid, section, _) in &self.pmts {
            if self.keep[*pid as usize] {
                psi::packetize(*pid, section, self.cc_or_zero(*pid), out);
            }
        }
    }

    /// Whether the archive keeps packets of `pid` as they come. The PAT is
    /// kept rewritten (see [`Analyzer::write_pat`]) unless the whole
    /// multiplex is.
    #[inline]
    pub fn keeps(&self, pid: u16) -> bool {
        self.keep[pid as usize]
    }

    /// In place of a PAT packet that starts a section: the PAT as archived,
    /// listing the chosen program only (nothing for the rest of a PAT
    /// spread over several packets, or before the choice is made).
    pub fn write_pat(&mut self, pusi: bool, out: &mut Vec<u8>) {
        if let (true, Some((pat, cc))) = (pusi, &mut self.out_pat) {
            *cc = (*cc + 1) & 0x0F;
            psi::packetize(PID_PAT, pat, *cc, out);
        }
    }

    /// Every PID seen so far: what it is, its packets, whether it is kept.
    pub fn pids(&self) -> Vec<PidInfo> {
        let mut out = Vec::new();
        for (pid, &packets) in self.packets.iter().enumerate() {
            if packets == 0 {
                continue;
            }
            let pid = pid as u16;
            let mut program = None;
            let what: String = match (pid, program::si_table(pid)) {
                (PID_PAT, _) => "PAT".into(),
                (PID_NULL, _) => "null packets".into(),
                (_, Some(table)) => table.into(),
                _ => match self.pmts.iter().find_map(|(pmt_pid, _, pmt)| {
                    if *pmt_pid == pid {
                        return Some((pmt.program, "PMT".to_string()));
                    }
                    let es = pmt.streams.iter().find(|s| s.pid == pid);
                    let what = match es {
                        Some(es) => program::describe(es.stream_type, &es.descriptor_tags),
                        None if pmt.pcr_pid == pid => "PCR",
                        None => return None,
                    };
                    Some((pmt.program, what.to_string()))
                }) {
                    Some((p, what)) => {
                        program = Some(p);
                        what
                    }
                    None if self.programs.iter().any(|e| e.pmt_pid == pid) => {
                        "PMT (not received)".into()
                    }
                    None => "not in any PMT".into(),
                },
            };
            out.push(PidInfo {
                pid,
                what,
                program,
                packets,
                kept: self.keep[pid as usize] || (pid == PID_PAT && self.out_pat.is_some()),
            });
        }
        out
    }

    /// The programs the latest PAT lists.
    pub fn listed_programs(&self) -> &[PatEntry] {
        &self.programs
    }

    /// Whether any PMT the PAT lists has come.
    pub fn has_pmt(&self) -> bool {
        !self.pmts.is_empty()
    }

    /// The programs whose PMT has come with video or audio (PAT order).
    pub fn timed_programs(&self) -> Vec<u16> {
        self.pmts
            .iter()
            .filter(|(_, _, pmt)| program::timing_of(pmt).is_some())
            .map(|(_, _, pmt)| pmt.program)
            .collect()
    }

    /// The program number asked for (`program = N`), when the PAT does not
    /// list it.
    pub fn missing_program(&self) -> Option<u16> {
        match self.selection.program {
            program::ProgramChoice::Number(n) if self.pat.is_some() => {
                (!self.programs.iter().any(|e| e.program == n)).then_some(n)
            }
            _ => None,
        }
    }

    /// The program chosen for timing, by number, once its PMT is known.
    pub fn program(&self) -> Option<u16> {
        let chosen = self.chosen?;
        self.pmts
            .iter()
            .find(|(pid, _, _)| *pid == chosen)
            .map(|(_, _, pmt)| pmt.program)
    }

    fn cc_or_zero(&self, pid: u16) -> u8 {
        match self.cc[pid as usize] {
            UNSEEN => 0,
            cc => cc,
        }
    }

    /// Inspects one 188-byte packet whose first byte is the sync byte.
    #[inline]
    pub fn inspect(&mut self, p: &Packet) -> Inspection {
        let header = Header::parse(p);
        let mut out = Inspection {
            header,
            brk: None,
            pcr: None,
            access_unit: None,
            key_resolved: None,
            audio_pts: None,
            marker: false,
        };
        if header.tei {
            self.counters.tei_packets += 1;
        }
        self.packets[header.pid as usize] += 1;
        if header.pid == PID_NULL {
            return out;
        }
        let role = self.role[header.pid as usize];

        let mut payload_at = 4;
        let mut announced = false;
        let mut rai = false;
        if header.has_af {
            let af_len = p[4] as usize;
            if af_len > 183 || (af_len == 183 && header.has_payload) {
                self.counters.bad_adaptation += 1;
                return out;
            }
            payload_at = 5 + af_len;
            if af_len > 0 {
                let flags = p[5];
                announced = flags & 0x80 != 0;
                rai = flags & 0x40 != 0;
                if flags & 0x10 != 0 && af_len >= 7 && Some(header.pid) == self.pcr_pid {
                    let pcr = clock::read_pcr(clock::pcr_field(p));
                    out.pcr = Some(pcr);
                    if let Some(last) = self.last_pcr {
                        if announced {
                            out.brk = Some(Break::Announced);
                        } else if pcr_forward(pcr, last) > PCR_JUMP {
                            out.brk = Some(Break::PcrJump);
                        }
                        if out.brk.is_some() {
                            self.counters.pcr_breaks += 1;
                        }
                    }
                    self.last_pcr = Some(pcr);
                }
            }
        }

        if self.continuity_broken(header, announced) {
            self.counters.cc_errors += 1;
            match role {
                Role::Timing | Role::Program | Role::Fallback => {
                    out.brk = out.brk.or(Some(Break::Continuity { pid: header.pid }));
                    if role == Role::Timing {
                        self.scan = None;
                    }
                }
                Role::Scte35 => {
                    out.brk = out.brk.or(Some(Break::Continuity { pid: header.pid }));
                    self.assembler(header.pid).reset();
                }
                Role::Pat | Role::Pmt => self.assembler(header.pid).reset(),
                _ => {}
            }
        }
        if !header.has_payload {
            return out;
        }
        let payload = &p[payload_at..];
        match role {
            Role::Timing => self.timing_payload(header, payload, rai, &mut out),
            Role::Fallback if header.pusi => {
                out.audio_pts = pes::parse_header(payload).and_then(|pes| pes.pts);
            }
            Role::Pat | Role::Pmt => self.psi_payload(header, payload),
            Role::Scte35 => out.marker = self.scte35_payload(header, payload),
            _ => {}
        }
        out
    }

    /// The SCTE-35 markers read since the last call, in order.
    pub fn take_markers(&mut self) -> Vec<scte35::Marker> {
        std::mem::take(&mut self.markers)
    }

    /// Reads splice information; true when a marker completed.
    fn scte35_payload(&mut self, h: Header, payload: &[u8]) -> bool {
        let (sections, errors) = self.sections(h, payload);
        self.counters.scte35_errors += errors;
        let before = self.markers.len();
        for section in sections {
            match scte35::Marker::read(section) {
                Ok(Some(marker)) if self.markers.len() < MAX_MARKERS => self.markers.push(marker),
                Ok(_) => {}
                Err(_) => self.counters.scte35_errors += 1,
            }
        }
        self.markers.len() > before
    }

    /// Checks and records the continuity counter; true when it skipped.
    #[inline]
    fn continuity_broken(&mut self, h: Header, announced: bool) -> bool {
        let slot = &mut self.cc[h.pid as usize];
        let last = *slot;
        *slot = h.cc;
        if last == UNSEEN || announced {
            return false;
        }
        if h.has_payload {
            // Equal counters are an allowed duplicate packet.
            h.cc != (last + 1) & 0x0F && h.cc != last
        } else {
            h.cc != last
        }
    }

    fn timing_payload(&mut self, h: Header, payload: &[u8], rai: bool, out: &mut Inspection) {
        let Some((_, kind)) = self.timing else { return };
        if h.pusi {
            self.cut_sets = None;
            let Some(pes) = pes::parse_header(payload) else {
                self.scan = None;
                return;
            };
            let key = match kind {
                TimingKind::Audio => Some(Picture::Key),
                // Only the adaptation field tells for codecs we cannot read.
                TimingKind::Video(VideoCodec::Other) => Some(match rai {
                    true => Picture::Key,
                    false => Picture::NotKey,
                }),
                TimingKind::Video(codec) => {
                    let es = &payload[pes.payload_offset..];
                    let picture = self.verify(codec, es);
                    if picture.is_none() {
                        self.scan = Some(es.to_vec());
                    }
                    picture
                }
            };
            if key.is_some() {
                self.scan = None;
            }
            out.access_unit = Some(AccessUnit {
                pts: pes.pts,
                dts: pes.dts,
                key,
                rai,
            });
        } else if let (Some(mut buf), TimingKind::Video(codec)) = (self.scan.take(), kind) {
            let scanned = buf.len();
            buf.extend_from_slice(payload);
            // Scanning the growing unit again at every packet is quadratic
            // where no picture shows (scrambled or empty payload): without
            // a new start code, a new scan cannot say more.
            let unchanged = self.scan_awaits_start_code
                && !keyframe::has_start_code(&buf, scanned.saturating_sub(2));
            if unchanged && buf.len() < MAX_SCAN {
                self.scan = Some(buf);
                return;
            }
            match self.verify(codec, &buf) {
                None if buf.len() < MAX_SCAN => self.scan = Some(buf),
                picture => out.key_resolved = Some(picture.unwrap_or(Picture::NotKey)),
            }
        }
    }

    /// Reads an access unit's first picture from its first bytes `es`:
    /// keeps the parameter sets it carries, and says what is missing for a
    /// decoder to start at it (see [`Analyzer::take_cut_sets`]). A picture
    /// whose parameter sets never came is no cut point.
    fn verify(&mut self, codec: VideoCodec, es: &[u8]) -> Option<Picture> {
        let scan = keyframe::scan(codec, es);
        self.scan_awaits_start_code = scan.awaits_start_code;
        let picture = scan.picture?;
        self.sets.learn(es, &scan.sets);
        if picture == Picture::NotKey {
            return Some(picture);
        }
        match self.sets.missing(codec, &scan.sets) {
            Ok(missing) => {
                self.cut_sets = missing.map(|b| (scan.insert_at, b));
                Some(picture)
            }
            Err(()) => Some(Picture::NotKey),
        }
    }

    /// The parameter sets the latest access unit lacks to start a segment,
    /// with where they go in its elementary stream bytes (taken once).
    pub fn take_cut_sets(&mut self) -> Option<(usize, Vec<u8>)> {
        self.cut_sets.take()
    }

    /// The sections a packet's payload completes on its PID, and how many
    /// the assembler refused.
    fn sections(&mut self, h: Header, payload: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut sections = Vec::new();
        let mut errors = 0;
        self.assembler(h.pid).push(
            payload,
            h.pusi,
            |s| sections.push(s.to_vec()),
            |_| errors += 1,
        );
        (sections, errors)
    }

    fn assembler(&mut self, pid: u16) -> &mut SectionAssembler {
        let at = match self.assemblers.iter().position(|(p, _)| *p == pid) {
            Some(at) => at,
            None => {
                let assembler = match self.role[pid as usize] {
                    Role::Scte35 => SectionAssembler::with_max(scte35::MAX_SECTION),
                    _ => SectionAssembler::default(),
                };
                self.assemblers.push((pid, assembler));
                self.assemblers.len() - 1
            }
        };
        &mut self.assemblers[at].1
    }

    fn psi_payload(&mut self, h: Header, payload: &[u8]) {
        let (sections, errors) = self.sections(h, payload);
        self.counters.psi_errors += errors;
        for s in sections {
            let ok = match s[0] {
                psi::TABLE_PAT if h.pid == PID_PAT => self.on_pat(s),
                psi::TABLE_PMT if h.pid != PID_PAT => self.on_pmt(h.pid, s),
                _ => true, // other tables on these PIDs are not ours to judge
            };
            if !ok {
                self.counters.psi_errors += 1;
            }
        }
    }

    fn on_pat(&mut self, section: Vec<u8>) -> bool {
        if self.pat.as_deref() == Some(&section) {
            self.pats_seen += 1;
            self.settled |= self.pats_seen >= SETTLE_PATS;
            return true;
        }
        self.pats_seen = 0;
        self.settled = false;
        let Ok(programs) = psi::parse_pat(&section) else {
            return false;
        };
        if programs.is_empty() || programs.iter().any(|e| e.pmt_pid == PID_NULL) {
            return false;
        }
        for (pid, _, _) in std::mem::take(&mut self.pmts) {
            self.role[pid as usize] = Role::Unknown;
        }
        for e in &programs {
            if self.role[e.pmt_pid as usize] == Role::Unknown {
                self.role[e.pmt_pid as usize] = Role::Pmt;
            }
        }
        self.programs = programs;
        self.pat = Some(section);
        self.assign();
        true
    }

    fn on_pmt(&mut self, pid: u16, section: Vec<u8>) -> bool {
        let Some(index) = self.programs.iter().position(|e| e.pmt_pid == pid) else {
            return true; // not announced by the current PAT (yet)
        };
        let slot = self.pmts.iter().position(|(p, _, _)| *p == pid);
        if slot.is_some_and(|at| self.pmts[at].1 == section) {
            return true;
        }
        let Ok(pmt) = psi::parse_pmt(&section) else {
            return false;
        };
        if pmt.program != self.programs[index].program {
            return false;
        }
        match slot {
            Some(at) => self.pmts[at] = (pid, section, pmt),
            None => {
                self.pmts.push((pid, section, pmt));
                // PAT order: the automatic choice and injected tables follow it.
                let order = |p: &u16| self.programs.iter().position(|e| e.pmt_pid == *p);
                self.pmts.sort_by_key(|(p, _, _)| order(p));
            }
        }
        self.assign();
        true
    }

    /// Chooses the program among the PMTs received and sets every PID's
    /// role and fate from the choice. PMTs repeat at least every half
    /// second, so the choice settles within the stream's first moments; a
    /// program listed whose PMT never comes is never waited for.
    fn assign(&mut self) {
        for r in self.role.iter_mut() {
            if matches!(
                r,
                Role::Timing | Role::Program | Role::Fallback | Role::Scte35 | Role::Other
            ) {
                *r = Role::Unknown;
            }
        }
        let whole = self.selection.whole_multiplex;
        self.keep.fill(whole);
        for pid in (0..0x20).filter(|&p| program::is_si(p)) {
            self.keep[pid as usize] = true;
        }
        self.keep[PID_PAT as usize] = whole;
        self.keep[PID_NULL as usize] = self.selection.keep_nulls;
        let parsed: Vec<&Pmt> = self.pmts.iter().map(|(_, _, p)| p).collect();
        // Once settled, the choice stays while its program does.
        let kept = self.settled.then_some(self.chosen).flatten();
        let chosen = match kept.and_then(|pid| self.pmts.iter().position(|(p, _, _)| *p == pid)) {
            Some(i) => Some(i),
            None => program::choose(self.selection.program, &parsed),
        };
        let all_arrived = self
            .programs
            .iter()
            .all(|e| self.pmts.iter().any(|(p, _, _)| *p == e.pmt_pid));
        self.settled |= all_arrived;
        let mut timing = None;
        let mut fallback = None;
        let mut pcr_pid = None;
        let others = self
            .pmts
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != chosen);
        for (_, (_, _, pmt)) in others {
            for es in &pmt.streams {
                if self.role[es.pid as usize] == Role::Unknown {
                    self.role[es.pid as usize] = Role::Other;
                }
            }
        }
        if let Some((pmt_pid, _, pmt)) = chosen.map(|i| &self.pmts[i]) {
            timing = program::timing_of(pmt);
            fallback = match timing {
                Some((_, TimingKind::Video(_))) => program::first_audio(pmt),
                _ => None,
            };
            pcr_pid = (pmt.pcr_pid != PID_NULL).then_some(pmt.pcr_pid);
            self.keep[*pmt_pid as usize] = true;
            let scte35 = |pid: u16| {
                pmt.streams
                    .iter()
                    .any(|s| s.pid == pid && s.stream_type == scte35::STREAM_TYPE_SCTE35)
            };
            let pids = pmt.streams.iter().map(|s| s.pid).chain(pcr_pid);
            for pid in pids {
                if pid == PID_NULL || matches!(self.role[pid as usize], Role::Pat | Role::Pmt) {
                    continue;
                }
                self.role[pid as usize] = match timing {
                    Some((t, _)) if t == pid => Role::Timing,
                    _ if fallback == Some(pid) => Role::Fallback,
                    _ if scte35(pid) => Role::Scte35,
                    _ => Role::Program,
                };
                self.keep[pid as usize] = true;
            }
        }
        self.chosen = chosen.map(|i| self.pmts[i].0);
        self.out_pat = match (&self.pat, chosen, whole) {
            (Some(pat), Some(i), false) => {
                let number = self.pmts[i].2.program;
                let cc = self.out_pat.as_ref().map_or(0x0F, |(_, cc)| *cc);
                Some((psi::rewrite_pat(pat, |p| p == 0 || p == number), cc))
            }
            _ => None,
        };
        if self.timing != timing {
            self.scan = None;
            self.sets.clear();
        }
        self.timing = timing;
        self.fallback = fallback;
        self.pcr_pid = pcr_pid;
    }
}

#[cfg(test)]
pub(crate) mod tests;
