//! Program-specific information: PAT and PMT sections, reassembled from
//! packets, checked with CRC-32/MPEG-2, and packetized again for injection.

use super::PACKET_SIZE;

/// Table id of a program association section.
pub const TABLE_PAT: u8 = 0x00;
/// Table id of a program map section.
pub const TABLE_PMT: u8 = 0x02;
/// Largest section allowed by ISO/IEC 13818-1 for PAT/PMT.
const MAX_SECTION: usize = 1024;

/// Why a section was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsiError {
    /// The section length field is larger than the standard allows.
    Oversized,
    /// The CRC does not match.
    Crc,
    /// A field points outside the section.
    Malformed,
}

impl std::fmt::Display for PsiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PsiError::Oversized => "section longer than 1024 bytes",
            PsiError::Crc => "CRC mismatch",
            PsiError::Malformed => "field outside the section",
        })
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, no final xor).
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = (i as u32) << 24;
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
            }
            *slot = c;
        }
        t
    });
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize]
    })
}

/// Reassembles sections of one PID from packet payloads.
#[derive(Debug)]
pub struct SectionAssembler {
    buf: Vec<u8>,
    active: bool,
    /// The longest section body accepted (after the 3-byte header).
    max: usize,
}

impl Default for SectionAssembler {
    /// One for PAT and PMT sections (1024 bytes at most).
    fn default() -> Self {
        Self::with_max(MAX_SECTION)
    }
}

impl SectionAssembler {
    /// One for sections of up to `max` bytes after their header (4093 for
    /// SCTE-35's).
    pub fn with_max(max: usize) -> Self {
        SectionAssembler {
            buf: Vec::new(),
            active: false,
            max,
        }
    }

    /// Feeds one packet payload; calls `on_section` for each complete section
    /// (CRC checked) and `on_error` for each refused one.
    pub fn push(
        &mut self,
        payload: &[u8],
        pusi: bool,
        mut on_section: impl FnMut(&[u8]),
        mut on_error: impl FnMut(PsiError),
    ) {
        let mut data = payload;
        if pusi {
            let Some((&pointer, rest)) = data.split_first() else {
                return;
            };
            let pointer = pointer as usize;
            if pointer > rest.len() {
                self.reset();
                on_error(PsiError::Malformed);
                return;
            }
            if self.active {
                self.buf.extend_from_slice(&rest[..pointer]);
                self.drain(&mut on_section, &mut on_error);
            }
            self.buf.clear();
            self.active = true;
            data = &rest[pointer..];
        } else if !self.active {
            return;
        }
        self.buf.extend_from_slice(data);
        self.drain(&mut on_section, &mut on_error);
    }

    /// Forgets a partial section (after a continuity error).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    fn drain(&mut self, on_section: &mut impl FnMut(&[u8]), on_error: &mut impl FnMut(PsiError)) {
        loop {
            if self.buf.first().is_none_or(|&t| t == 0xFF) {
                // Stuffing: the rest of the packet carries no section.
                self.reset();
                return;
            }
            if self.buf.len() < 3 {
                return;
            }
            let len = 3 + (((self.buf[1] as usize) & 0x0F) << 8 | self.buf[2] as usize);
            // Shortest: 5 bytes of header extension, no body, 4 of CRC.
            let fault = if len > self.max + 3 {
                Some(PsiError::Oversized)
            } else if len < 3 + 5 + 4 {
                Some(PsiError::Malformed)
            } else {
                None
            };
            if let Some(fault) = fault {
                self.reset();
                on_error(fault);
                return;
            }
            if self.buf.len() < len {
                return;
            }
            if crc32_mpeg2(&self.buf[..len]) == 0 {
                on_section(&self.buf[..len]);
            } else {
                on_error(PsiError::Crc);
            }
            self.buf.drain(..len);
        }
    }
}

/// One program listed in a PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatEntry {
    /// Program number (never 0: the network PID entry is skipped).
    pub program: u16,
    /// PID carrying this program's PMT.
    pub pmt_pid: u16,
}

/// Parses a PAT section (CRC already checked) into its programs, in order.
pub fn parse_pat(section: &[u8]) -> Result<Vec<PatEntry>, PsiError> {
    if section[0] != TABLE_PAT || section.len() < 12 {
        return Err(PsiError::Malformed);
    }
    let body = &section[8..section.len() - 4];
    Ok(body
        .chunks_exact(4)
        .map(|c| PatEntry {
            program: u16::from_be_bytes([c[0], c[1]]),
            pmt_pid: u16::from_be_bytes([c[2], c[3]]) & 0x1FFF,
        })
        .filter(|e| e.program != 0)
        .collect())
}

/// A PAT section (CRC already checked) with only the programs `keep`
/// accepts (by `program_number`; 0 is the network PID entry), its length
/// and CRC made anew. The header (transport stream id, version) is kept.
pub fn rewrite_pat(section: &[u8], keep: impl Fn(u16) -> bool) -> Vec<u8> {
    let mut out = section[..8].to_vec();
    for entry in section[8..section.len() - 4].chunks_exact(4) {
        if keep(u16::from_be_bytes([entry[0], entry[1]])) {
            out.extend_from_slice(entry);
        }
    }
    let len = out.len() - 3 + 4;
    out[1] = (out[1] & 0xF0) | (len >> 8) as u8 & 0x0F;
    out[2] = len as u8;
    let crc = crc32_mpeg2(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An elementary stream listed in a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsInfo {
    /// Stream type as coded in the PMT.
    pub stream_type: u8,
    /// PID of the elementary stream.
    pub pid: u16,
    /// Tags of the ES descriptors (to recognise audio carried as type 0x06).
    pub descriptor_tags: Vec<u8>,
}

/// A parsed PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    /// Program number.
    pub program: u16,
    /// PID carrying the program clock reference.
    pub pcr_pid: u16,
    /// Elementary streams, in PMT order.
    pub streams: Vec<EsInfo>,
}

/// Parses a PMT section (CRC already checked).
pub fn parse_pmt(section: &[u8]) -> Result<Pmt, PsiError> {
    if section[0] != TABLE_PMT || section.len() < 16 {
        return Err(PsiError::Malformed);
    }
    let end = section.len() - 4;
    let program = u16::from_be_bytes([section[3], section[4]]);
    let pcr_pid = u16::from_be_bytes([section[8], section[9]]) & 0x1FFF;
    let info_len = (u16::from_be_bytes([section[10], section[11]]) & 0x0FFF) as usize;
    let mut at = 12 + info_len;
    let mut streams = Vec::new();
    while at + 5 <= end {
        let stream_type = section[at];
        let pid = u16::from_be_bytes([section[at + 1], section[at + 2]]) & 0x1FFF;
        let es_len = (u16::from_be_bytes([section[at + 3], section[at + 4]]) & 0x0FFF) as usize;
        let desc_end = at + 5 + es_len;
        if desc_end > end {
            return Err(PsiError::Malformed);
        }
        let mut descriptor_tags = Vec::new();
        let mut d = at + 5;
        while d + 2 <= desc_end {
            descriptor_tags.push(section[d]);
            d += 2 + section[d + 1] as usize;
        }
        streams.push(EsInfo {
            stream_type,
            pid,
            descriptor_tags,
        });
        at = desc_end;
    }
    if at != end {
        return Err(PsiError::Malformed);
    }
    Ok(Pmt {
        program,
        pcr_pid,
        streams,
    })
}

/// Packetizes one section onto `pid`, appending whole TS packets to `out`.
///
/// Continuity counters are chosen so that the last packet carries `last_cc`:
/// the stream's own next packet on that PID then follows without a break.
pub fn packetize(pid: u16, section: &[u8], last_cc: u8, out: &mut Vec<u8>) {
    let first_payload = PACKET_SIZE - 5;
    let n = if section.len() <= first_payload {
        1
    } else {
        1 + (section.len() - first_payload).div_ceil(PACKET_SIZE - 4)
    };
    let mut cc = last_cc.wrapping_sub(n as u8 - 1) & 0x0F;
    let mut rest = section;
    for i in 0..n {
        let start = out.len();
        out.extend_from_slice(&[
            0x47,
            (if i == 0 { 0x40 } else { 0 }) | (pid >> 8) as u8,
            pid as u8,
            0x10 | cc,
        ]);
        if i == 0 {
            out.push(0); // pointer_field
        }
        let take = rest.len().min(start + PACKET_SIZE - out.len());
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        out.resize(start + PACKET_SIZE, 0xFF);
        cc = (cc + 1) & 0x0F;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a section with a correct CRC from a table id, id extension and body.
    pub fn section(table: u8, ext: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table, 0xB0 | (len >> 8) as u8, len as u8];
        s.extend_from_slice(&ext.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0, 0]);
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    pub fn pat(programs: &[(u16, u16)]) -> Vec<u8> {
        let body: Vec<u8> = programs
            .iter()
            .flat_map(|&(p, pid)| {
                let mut v = p.to_be_bytes().to_vec();
                v.extend_from_slice(&(0xE000 | pid).to_be_bytes());
                v
            })
            .collect();
        section(TABLE_PAT, 1, &body)
    }

    pub fn pmt(program: u16, pcr_pid: u16, streams: &[(u8, u16)]) -> Vec<u8> {
        let mut body = (0xE000 | pcr_pid).to_be_bytes().to_vec();
        body.extend_from_slice(&[0xF0, 0]);
        for &(st, pid) in streams {
            body.push(st);
            body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
            body.extend_from_slice(&[0xF0, 0]);
        }
        section(TABLE_PMT, program, &body)
    }

    #[test]
    fn crc_matches_known_vector() {
        // CRC-32/MPEG-2 check value for "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn pat_round_trips_through_packets() {
        let s = pat(&[(0, 0x10), (1, 0x100), (2, 0x200)]);
        let mut pkts = Vec::new();
        packetize(0, &s, 7, &mut pkts);
        assert_eq!(pkts.len(), 188);
        assert_eq!(pkts[3] & 0x0F, 7);
        let mut asm = SectionAssembler::default();
        let mut got = Vec::new();
        asm.push(
            &pkts[4..],
            true,
            |s| got.push(s.to_vec()),
            |e| panic!("{e}"),
        );
        assert_eq!(got, vec![s.clone()]);
        let entries = parse_pat(&got[0]).unwrap();
        assert_eq!(
            entries,
            vec![
                PatEntry {
                    program: 1,
                    pmt_pid: 0x100
                },
                PatEntry {
                    program: 2,
                    pmt_pid: 0x200
                }
            ]
        );
    }

    #[test]
    fn rewritten_pat_lists_only_the_kept_programs() {
        let s = pat(&[(0, 0x10), (1, 0x100), (2, 0x200), (3, 0x300)]);
        let r = rewrite_pat(&s, |p| p == 0 || p == 2);
        assert_eq!(crc32_mpeg2(&r), 0, "CRC made anew");
        assert_eq!(r[3..8], s[3..8], "transport stream id and version kept");
        assert_eq!(
            parse_pat(&r).unwrap(),
            vec![PatEntry {
                program: 2,
                pmt_pid: 0x200
            }]
        );
        assert_eq!(r.len(), s.len() - 8);
    }

    #[test]
    fn long_section_spans_packets_and_reassembles() {
        let streams: Vec<(u8, u16)> = (0..60).map(|i| (0x06, 0x300 + i)).collect();
        let s = pmt(1, 0x101, &streams);
        assert!(s.len() > 188);
        let mut pkts = Vec::new();
        packetize(0x100, &s, 3, &mut pkts);
        assert_eq!(pkts.len(), 2 * 188);
        assert_eq!(pkts[3] & 0x0F, 2);
        assert_eq!(pkts[188 + 3] & 0x0F, 3);
        let mut asm = SectionAssembler::default();
        let mut got = Vec::new();
        for (i, p) in pkts.chunks(188).enumerate() {
            asm.push(&p[4..], i == 0, |s| got.push(s.to_vec()), |e| panic!("{e}"));
        }
        let pmt = parse_pmt(&got[0]).unwrap();
        assert_eq!(pmt.pcr_pid, 0x101);
        assert_eq!(pmt.streams.len(), 60);
    }

    #[test]
    fn corrupt_crc_and_absurd_length_are_refused() {
        let mut s = pat(&[(1, 0x100)]);
        s[9] ^= 0xFF;
        let mut pkts = Vec::new();
        packetize(0, &s, 0, &mut pkts);
        let mut errors = Vec::new();
        let mut asm = SectionAssembler::default();
        asm.push(&pkts[4..], true, |_| panic!("accepted"), |e| errors.push(e));
        assert_eq!(errors, vec![PsiError::Crc]);

        let mut payload = vec![0u8, TABLE_PAT, 0xBF, 0xFF];
        payload.resize(184, 0);
        asm.push(&payload, true, |_| panic!("accepted"), |e| errors.push(e));
        assert_eq!(errors[1], PsiError::Oversized);
    }

    #[test]
    fn pmt_with_descriptor_overrun_is_malformed() {
        let mut body = 0xE101u16.to_be_bytes().to_vec();
        body.extend_from_slice(&[0xF0, 0, 0x1B, 0xE1, 0x00, 0xF0, 0x40]);
        let s = section(TABLE_PMT, 1, &body);
        assert_eq!(parse_pmt(&s), Err(PsiError::Malformed));
    }
}
