//! MPEG-TS analysis: one pass per packet that follows the PSI, checks
//! continuity, reads PCR and PTS, and finds random access points.
//!
//! Everything here is hand-written for speed: per-PID state lives in flat
//! arrays indexed by PID, and a packet that needs nothing costs a header
//! decode, a table lookup and a continuity check.

pub mod clock;
pub mod keyframe;
pub mod pes;
pub mod psi;

use clock::{pcr_forward, PCR_HZ};
use keyframe::{ParameterSets, Picture, VideoCodec};
use psi::{PatEntry, SectionAssembler};

/// Size of a TS packet.
pub const PACKET_SIZE: usize = 188;
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
const UNSEEN: u8 = 0xFF;

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
    pub fn parse(p: &[u8]) -> Self {
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
pub fn payload(p: &[u8]) -> Option<&[u8]> {
    let h = Header::parse(p);
    let at = if h.has_af { 5 + p[4] as usize } else { 4 };
    (h.has_payload && at < PACKET_SIZE).then(|| &p[at..])
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
}

/// How a PID is used, as learnt from PAT and PMTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Unknown,
    Pat,
    Pmt,
    /// The elementary stream that drives timing.
    Timing,
    /// Another PID of the timed (first) program.
    Program,
    /// A PID of another program.
    Other,
}

/// How the timing PID finds random access points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimingKind {
    Video(VideoCodec),
    Audio,
}

/// Per-stream TS analyzer.
pub struct Analyzer {
    role: Box<[Role; 8192]>,
    cc: Box<[u8; 8192]>,
    assemblers: Vec<(u16, SectionAssembler)>,
    pat: Option<Vec<u8>>,
    programs: Vec<PatEntry>,
    /// Latest PMT section per PMT PID, in PAT order.
    pmts: Vec<(u16, Vec<u8>)>,
    /// ES PIDs by PMT PID, to clear roles when a PMT changes.
    es_of: Vec<(u16, Vec<u16>)>,
    pcr_pid: Option<u16>,
    timing: Option<(u16, TimingKind)>,
    last_pcr: Option<u64>,
    scan: Option<Vec<u8>>,
    /// The timing PID's latest parameter sets.
    sets: ParameterSets,
    /// What the latest access unit lacks to start a segment.
    cut_sets: Option<(usize, Vec<u8>)>,
    counters: TsCounters,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// A fresh analyzer that knows nothing about the stream yet.
    pub fn new() -> Self {
        let mut role = Box::new([Role::Unknown; 8192]);
        role[PID_PAT as usize] = Role::Pat;
        Analyzer {
            role,
            cc: Box::new([UNSEEN; 8192]),
            assemblers: Vec::new(),
            pat: None,
            programs: Vec::new(),
            pmts: Vec::new(),
            es_of: Vec::new(),
            pcr_pid: None,
            timing: None,
            last_pcr: None,
            scan: None,
            sets: ParameterSets::default(),
            cut_sets: None,
            counters: TsCounters::default(),
        }
    }

    /// What the analysis found wrong so far.
    pub fn counters(&self) -> TsCounters {
        self.counters
    }

    /// The PID that drives timing, once the PMT is known.
    pub fn timing_pid(&self) -> Option<u16> {
        self.timing.map(|(pid, _)| pid)
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

    /// Appends the latest PAT and every known PMT as TS packets, with
    /// continuity counters that the stream's next packets continue.
    /// Writes nothing until both PAT and the timed program's PMT are known.
    pub fn write_psi(&self, out: &mut Vec<u8>) {
        let Some(pat) = &self.pat else { return };
        if self.timing.is_none() {
            return;
        }
        psi::packetize(PID_PAT, pat, self.cc_or_zero(PID_PAT), out);
        for (pid, section) in &self.pmts {
            psi::packetize(*pid, section, self.cc_or_zero(*pid), out);
        }
    }

    fn cc_or_zero(&self, pid: u16) -> u8 {
        match self.cc[pid as usize] {
            UNSEEN => 0,
            cc => cc,
        }
    }

    /// Inspects one 188-byte packet whose first byte is the sync byte.
    #[inline]
    pub fn inspect(&mut self, p: &[u8]) -> Inspection {
        debug_assert_eq!(p.len(), PACKET_SIZE);
        let header = Header::parse(p);
        let mut out = Inspection {
            header,
            brk: None,
            pcr: None,
            access_unit: None,
            key_resolved: None,
        };
        if header.tei {
            self.counters.tei_packets += 1;
        }
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
                    let b = &p[6..12];
                    let base = (b[0] as u64) << 25
                        | (b[1] as u64) << 17
                        | (b[2] as u64) << 9
                        | (b[3] as u64) << 1
                        | (b[4] as u64) >> 7;
                    let ext = ((b[4] as u64 & 1) << 8) | b[5] as u64;
                    let pcr = base * 300 + ext;
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
                Role::Timing | Role::Program => {
                    out.brk = out.brk.or(Some(Break::Continuity { pid: header.pid }));
                    if role == Role::Timing {
                        self.scan = None;
                    }
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
            Role::Pat | Role::Pmt => self.psi_payload(header, payload),
            _ => {}
        }
        out
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
            });
        } else if let (Some(mut buf), TimingKind::Video(codec)) = (self.scan.take(), kind) {
            buf.extend_from_slice(payload);
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

    fn assembler(&mut self, pid: u16) -> &mut SectionAssembler {
        let at = match self.assemblers.iter().position(|(p, _)| *p == pid) {
            Some(at) => at,
            None => {
                self.assemblers.push((pid, SectionAssembler::default()));
                self.assemblers.len() - 1
            }
        };
        &mut self.assemblers[at].1
    }

    fn psi_payload(&mut self, h: Header, payload: &[u8]) {
        let mut sections = Vec::new();
        let mut errors = 0;
        self.assembler(h.pid).push(
            payload,
            h.pusi,
            |s| sections.push(s.to_vec()),
            |_| errors += 1,
        );
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
            return true;
        }
        let Ok(programs) = psi::parse_pat(&section) else {
            return false;
        };
        if programs.is_empty() || programs.iter().any(|e| e.pmt_pid == PID_NULL) {
            return false;
        }
        for (pid, _) in std::mem::take(&mut self.pmts) {
            self.clear_program(pid);
            self.role[pid as usize] = Role::Unknown;
        }
        for e in &programs {
            if self.role[e.pmt_pid as usize] == Role::Unknown {
                self.role[e.pmt_pid as usize] = Role::Pmt;
            }
        }
        self.programs = programs;
        self.pat = Some(section);
        self.timing = None;
        self.pcr_pid = None;
        true
    }

    fn clear_program(&mut self, pmt_pid: u16) {
        if let Some(at) = self.es_of.iter().position(|(p, _)| *p == pmt_pid) {
            for pid in self.es_of.swap_remove(at).1 {
                if matches!(
                    self.role[pid as usize],
                    Role::Timing | Role::Program | Role::Other
                ) {
                    self.role[pid as usize] = Role::Unknown;
                }
            }
        }
    }

    fn on_pmt(&mut self, pid: u16, section: Vec<u8>) -> bool {
        let Some(index) = self.programs.iter().position(|e| e.pmt_pid == pid) else {
            return true; // not announced by the current PAT (yet)
        };
        let slot = self.pmts.iter().position(|(p, _)| *p == pid);
        if slot.is_some_and(|at| self.pmts[at].1 == section) {
            return true;
        }
        let Ok(pmt) = psi::parse_pmt(&section) else {
            return false;
        };
        if pmt.program != self.programs[index].program {
            return false;
        }
        self.clear_program(pid);
        let first = index == 0;
        let mut es = Vec::with_capacity(pmt.streams.len() + 1);
        let mut timing = None;
        if first {
            let video = pmt.streams.iter().find_map(|s| {
                VideoCodec::from_stream_type(s.stream_type).map(|c| (s.pid, TimingKind::Video(c)))
            });
            let audio = || {
                pmt.streams
                    .iter()
                    .find(|s| is_audio(s.stream_type, &s.descriptor_tags))
                    .map(|s| (s.pid, TimingKind::Audio))
            };
            timing = video.or_else(audio);
        }
        let program_pids = pmt
            .streams
            .iter()
            .map(|s| s.pid)
            .chain(first.then_some(pmt.pcr_pid));
        for es_pid in program_pids {
            if es_pid == PID_NULL || matches!(self.role[es_pid as usize], Role::Pat | Role::Pmt) {
                continue;
            }
            self.role[es_pid as usize] = match (first, timing) {
                (true, Some((t, _))) if t == es_pid => Role::Timing,
                (true, _) => Role::Program,
                (false, _) => Role::Other,
            };
            es.push(es_pid);
        }
        self.es_of.push((pid, es));
        if first {
            if self.timing != timing {
                self.scan = None;
                self.sets.clear();
            }
            self.timing = timing;
            self.pcr_pid = (pmt.pcr_pid != PID_NULL).then_some(pmt.pcr_pid);
        }
        match slot {
            Some(at) => self.pmts[at].1 = section,
            None => {
                self.pmts.push((pid, section));
                // Keep PAT order so injected tables read naturally.
                let order = |p: &u16| self.programs.iter().position(|e| e.pmt_pid == *p);
                self.pmts.sort_by_key(|(p, _)| order(p));
            }
        }
        true
    }
}

/// Whether a PMT entry is an audio stream we can time by.
fn is_audio(stream_type: u8, descriptor_tags: &[u8]) -> bool {
    match stream_type {
        0x03 | 0x04 | 0x0F | 0x11 | 0x1C | 0x81 | 0x87 => true,
        // Private data carrying AC-3, E-AC-3, AAC or DTS (DVB descriptors).
        0x06 => descriptor_tags
            .iter()
            .any(|t| matches!(t, 0x6A | 0x7A | 0x7B | 0x7C)),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests;
