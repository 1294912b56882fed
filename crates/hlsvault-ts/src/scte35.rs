//! SCTE-35 splice information (ANSI/SCTE 35): the `splice_info_section`
//! an encoder or ad inserter sends on a PID its PMT declares as stream
//! type 0x86, read into the markers an archive keeps.
//!
//! Read: `splice_null`, `splice_insert` (out and in, at a time or
//! immediate, with a break duration), `time_signal`, and the segmentation
//! descriptors that give a `time_signal` its meaning. Other commands
//! (`splice_schedule`, `bandwidth_reservation`, `private_command`) and
//! other descriptors are named, not read. An encrypted section is refused:
//! its command cannot be read without the key.
//!
//! The section is bytes from the network: every field is bounds-checked,
//! and one that points past the section, or a CRC that does not match, is
//! an error, never a panic.
//!
//! ```
//! use hlsvault_ts::scte35::{parse, SpliceCommand};
//! // SCTE 35 (2019) 14.2: splice_insert, out of network, at PTS
//! // 0x7369C02E, a 60.293567 s break.
//! let section = [
//!     0xfc, 0x30, 0x2f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xf0, 0x14, 0x05,
//!     0x48, 0x00, 0x00, 0x8f, 0x7f, 0xef, 0xfe, 0x73, 0x69, 0xc0, 0x2e, 0xfe, 0x00, 0x52,
//!     0xcc, 0xf5, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x08, 0x43, 0x55, 0x45, 0x49,
//!     0x00, 0x00, 0x01, 0x35, 0x62, 0xdb, 0xa3, 0x0a,
//! ];
//! let info = parse(&section).unwrap();
//! let SpliceCommand::Insert(insert) = &info.command else { panic!() };
//! assert!(insert.out_of_network);
//! assert_eq!(insert.event_id, 0x4800_008f);
//! assert_eq!(info.splice_pts(), Some(0x7369_c02e));
//! assert_eq!(insert.break_duration.unwrap().ticks, 0x52_ccf5);
//! ```

use crate::psi::crc32_mpeg2;

/// The table id of a `splice_info_section`.
pub const TABLE_SPLICE_INFO: u8 = 0xFC;
/// The stream type a PMT gives a SCTE-35 PID.
pub const STREAM_TYPE_SCTE35: u8 = 0x86;
/// The longest section SCTE-35 allows, after its 3-byte header.
pub const MAX_SECTION: usize = 4093;
/// `segmentation_descriptor`'s tag.
const TAG_SEGMENTATION: u8 = 0x02;
/// The identifier every SCTE-35 descriptor carries ("CUEI").
const CUEI: u32 = 0x4355_4549;
/// PTS values wrap at 2^33.
const PTS_WRAP: u64 = 1 << 33;

/// Why a section was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scte35Error {
    /// Not table id 0xFC.
    NotSpliceInfo(u8),
    /// A field points past the section.
    Truncated,
    /// The CRC does not match.
    Crc,
    /// Encrypted: the command cannot be read.
    Encrypted,
}

impl std::fmt::Display for Scte35Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scte35Error::NotSpliceInfo(t) => {
                write!(f, "not a splice_info_section (table id {t:#04x})")
            }
            Scte35Error::Truncated => f.write_str("truncated: a field points past the section"),
            Scte35Error::Crc => f.write_str("CRC mismatch"),
            Scte35Error::Encrypted => f.write_str("encrypted: the command cannot be read"),
        }
    }
}

impl std::error::Error for Scte35Error {}

/// One `splice_info_section`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceInfo {
    /// Added to every PTS in the section (modulo 2^33).
    pub pts_adjustment: u64,
    /// The authorization tier (0xFFF: none).
    pub tier: u16,
    pub command: SpliceCommand,
    /// Its segmentation descriptors, in order (others are skipped).
    pub segmentations: Vec<Segmentation>,
}

/// What the section asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpliceCommand {
    /// `splice_null`: a heartbeat.
    Null,
    /// `splice_insert`: a break starts (out of network) or ends.
    Insert(SpliceInsert),
    /// `time_signal`: a point in time, given its meaning by the section's
    /// segmentation descriptors. `None`: now.
    TimeSignal { pts: Option<u64> },
    /// Another command, by its type (4 `splice_schedule`, 7
    /// `bandwidth_reservation`, 0xFF `private_command`).
    Other(u8),
}

/// A `splice_insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceInsert {
    pub event_id: u32,
    /// Cancels the event `event_id`: nothing else is set.
    pub cancel: bool,
    /// Out of the network (a break starts); false: back in.
    pub out_of_network: bool,
    /// At the next opportunity rather than at a time.
    pub immediate: bool,
    /// When, unadjusted (the program's time, or the first component's
    /// for a component splice); None: immediate or unspecified.
    pub pts: Option<u64>,
    pub break_duration: Option<BreakDuration>,
    pub unique_program_id: u16,
    pub avail_num: u8,
    pub avails_expected: u8,
}

/// A break's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakDuration {
    /// The splicer returns to the network by itself at its end.
    pub auto_return: bool,
    /// 90 kHz ticks.
    pub ticks: u64,
}

/// A `segmentation_descriptor`: what a point is (a programme start, an
/// ad opportunity's end...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub event_id: u32,
    /// Cancels the event `event_id`: nothing else is set.
    pub cancel: bool,
    /// 90 kHz ticks.
    pub duration: Option<u64>,
    pub upid_type: u8,
    pub upid: Vec<u8>,
    /// `segmentation_type_id` (0x34 provider placement opportunity start,
    /// 0x35 its end, 0x10 programme start...).
    pub type_id: u8,
    pub segment_num: u8,
    pub segments_expected: u8,
}

/// A marker read from a stream: the section as sent (for the playlist's
/// `SCTE35-*` attributes), what it says and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub section: Vec<u8>,
    pub info: SpliceInfo,
    pub cue: Cue,
}

impl Marker {
    /// Reads a whole section; None if it is no marker (see
    /// [`SpliceInfo::cue`]).
    pub fn read(section: Vec<u8>) -> Result<Option<Marker>, Scte35Error> {
        let info = parse(&section)?;
        Ok(info.cue().map(|cue| Marker { section, info, cue }))
    }
}

/// What a section means for a playlist: a break's start (out), its end
/// (in), or another signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    /// Out of the network: a break (an ad, a placement opportunity)
    /// starts; its planned length in 90 kHz ticks where given.
    Out { event_id: u32, planned: Option<u64> },
    /// Back in: the break `event_id` ends.
    In { event_id: u32 },
    /// A point with another meaning (a programme's start, a chapter), or
    /// none given.
    Signal { event_id: u32 },
}

/// Segmentation types that start a break (ads, placement opportunities,
/// overlays, unscheduled events, network breaks); the type after each
/// ends it.
const BREAK_STARTS: &[u8] = &[
    0x22, 0x30, 0x32, 0x34, 0x36, 0x38, 0x3A, 0x3C, 0x3E, 0x40, 0x44, 0x46, 0x50,
];

impl SpliceInfo {
    /// What it means, or None for what is no marker (a `splice_null`
    /// heartbeat, a cancellation, an unread command).
    pub fn cue(&self) -> Option<Cue> {
        match &self.command {
            SpliceCommand::Insert(insert) if !insert.cancel => Some(if insert.out_of_network {
                Cue::Out {
                    event_id: insert.event_id,
                    planned: insert.break_duration.map(|d| d.ticks),
                }
            } else {
                Cue::In {
                    event_id: insert.event_id,
                }
            }),
            SpliceCommand::TimeSignal { .. } => {
                let seg = self.segmentation()?;
                let event_id = seg.event_id;
                Some(if BREAK_STARTS.contains(&seg.type_id) {
                    Cue::Out {
                        event_id,
                        planned: seg.duration,
                    }
                } else if seg.type_id > 0 && BREAK_STARTS.contains(&(seg.type_id - 1)) {
                    Cue::In { event_id }
                } else {
                    Cue::Signal { event_id }
                })
            }
            _ => None,
        }
    }

    /// What a `time_signal` marks: its first segmentation descriptor that
    /// cancels nothing.
    pub fn segmentation(&self) -> Option<&Segmentation> {
        match self.command {
            SpliceCommand::TimeSignal { .. } => self.segmentations.iter().find(|s| !s.cancel),
            _ => None,
        }
    }

    /// The splice's PTS with the section's adjustment (modulo 2^33), if
    /// the command gives one.
    pub fn splice_pts(&self) -> Option<u64> {
        let pts = match &self.command {
            SpliceCommand::Insert(insert) => insert.pts,
            SpliceCommand::TimeSignal { pts } => *pts,
            SpliceCommand::Null | SpliceCommand::Other(_) => None,
        }?;
        Some((pts + self.pts_adjustment) % PTS_WRAP)
    }
}

/// Reads a whole `splice_info_section` (from its table id to its CRC).
pub fn parse(section: &[u8]) -> Result<SpliceInfo, Scte35Error> {
    let mut r = Fields(section);
    let table = r.u8()?;
    if table != TABLE_SPLICE_INFO {
        return Err(Scte35Error::NotSpliceInfo(table));
    }
    let length = usize::from(r.u16()? & 0x0FFF);
    let section = section.get(..3 + length).ok_or(Scte35Error::Truncated)?;
    if length < 4 {
        return Err(Scte35Error::Truncated);
    }
    if crc32_mpeg2(section) != 0 {
        return Err(Scte35Error::Crc);
    }
    // Without its CRC, from protocol_version on.
    let mut r = Fields(&section[3..section.len() - 4]);
    let _protocol_version = r.u8()?;
    let first = r.u8()?;
    if first & 0x80 != 0 {
        return Err(Scte35Error::Encrypted);
    }
    let pts_adjustment = (u64::from(first) & 1) << 32 | u64::from(r.u32()?);
    let _cw_index = r.u8()?;
    let tier_and_length = r.u24()?;
    let tier = (tier_and_length >> 12) as u16;
    let command_length = (tier_and_length & 0xFFF) as usize;
    let kind = r.u8()?;
    let command = match kind {
        0x00 => SpliceCommand::Null,
        0x05 => SpliceCommand::Insert(splice_insert(&mut r)?),
        0x06 => SpliceCommand::TimeSignal {
            pts: splice_time(&mut r)?,
        },
        other => {
            // Unread: skipped by its length (0xFFF, the legacy "unknown",
            // leaves nothing to find the descriptors by).
            if command_length == 0xFFF {
                return Ok(SpliceInfo {
                    pts_adjustment,
                    tier,
                    command: SpliceCommand::Other(other),
                    segmentations: Vec::new(),
                });
            }
            r.take(command_length)?;
            SpliceCommand::Other(other)
        }
    };
    let descriptors = usize::from(r.u16()?);
    let mut d = Fields(r.take(descriptors)?);
    let mut segmentations = Vec::new();
    while !d.0.is_empty() {
        let tag = d.u8()?;
        let length = usize::from(d.u8()?);
        let mut body = Fields(d.take(length)?);
        if tag == TAG_SEGMENTATION && body.u32()? == CUEI {
            segmentations.push(segmentation(&mut body)?);
        }
    }
    Ok(SpliceInfo {
        pts_adjustment,
        tier,
        command,
        segmentations,
    })
}

fn splice_insert(r: &mut Fields) -> Result<SpliceInsert, Scte35Error> {
    let event_id = r.u32()?;
    let cancel = r.u8()? & 0x80 != 0;
    let mut insert = SpliceInsert {
        event_id,
        cancel,
        out_of_network: false,
        immediate: false,
        pts: None,
        break_duration: None,
        unique_program_id: 0,
        avail_num: 0,
        avails_expected: 0,
    };
    if cancel {
        return Ok(insert);
    }
    let flags = r.u8()?;
    insert.out_of_network = flags & 0x80 != 0;
    let program_splice = flags & 0x40 != 0;
    let has_duration = flags & 0x20 != 0;
    insert.immediate = flags & 0x10 != 0;
    if program_splice && !insert.immediate {
        insert.pts = splice_time(r)?;
    }
    if !program_splice {
        let components = r.u8()?;
        for _ in 0..components {
            let _tag = r.u8()?;
            if !insert.immediate {
                let pts = splice_time(r)?;
                insert.pts = insert.pts.or(pts);
            }
        }
    }
    if has_duration {
        let field = r.u40()?;
        insert.break_duration = Some(BreakDuration {
            auto_return: field >> 39 != 0,
            ticks: field & (PTS_WRAP - 1),
        });
    }
    insert.unique_program_id = r.u16()?;
    insert.avail_num = r.u8()?;
    insert.avails_expected = r.u8()?;
    Ok(insert)
}

/// `splice_time()`: a PTS if `time_specified_flag` is set.
fn splice_time(r: &mut Fields) -> Result<Option<u64>, Scte35Error> {
    let first = r.u8()?;
    if first & 0x80 == 0 {
        return Ok(None);
    }
    Ok(Some((u64::from(first) & 1) << 32 | u64::from(r.u32()?)))
}

/// A `segmentation_descriptor` after its identifier.
fn segmentation(r: &mut Fields) -> Result<Segmentation, Scte35Error> {
    let event_id = r.u32()?;
    let cancel = r.u8()? & 0x80 != 0;
    let mut seg = Segmentation {
        event_id,
        cancel,
        duration: None,
        upid_type: 0,
        upid: Vec::new(),
        type_id: 0,
        segment_num: 0,
        segments_expected: 0,
    };
    if cancel {
        return Ok(seg);
    }
    let flags = r.u8()?;
    let program = flags & 0x80 != 0;
    let has_duration = flags & 0x40 != 0;
    if !program {
        let components = r.u8()?;
        // component_tag, 7 reserved bits, a 33-bit pts_offset: 6 bytes.
        r.take(usize::from(components) * 6)?;
    }
    if has_duration {
        seg.duration = Some(r.u40()?);
    }
    seg.upid_type = r.u8()?;
    let upid_length = usize::from(r.u8()?);
    seg.upid = r.take(upid_length)?.to_vec();
    seg.type_id = r.u8()?;
    seg.segment_num = r.u8()?;
    seg.segments_expected = r.u8()?;
    // sub_segment_num and sub_segments_expected (2016 on) are not kept.
    Ok(seg)
}

/// Big-endian fields read from the front of a byte slice; a read past
/// its end is [`Scte35Error::Truncated`].
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Scte35Error> {
        if n > self.0.len() {
            return Err(Scte35Error::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Scte35Error> {
        Ok(self.take(n)?.iter().fold(0, |v, &b| v << 8 | u64::from(b)))
    }

    fn u8(&mut self) -> Result<u8, Scte35Error> {
        Ok(self.uint(1)? as u8)
    }

    fn u16(&mut self) -> Result<u16, Scte35Error> {
        Ok(self.uint(2)? as u16)
    }

    fn u24(&mut self) -> Result<u32, Scte35Error> {
        Ok(self.uint(3)? as u32)
    }

    fn u32(&mut self) -> Result<u32, Scte35Error> {
        Ok(self.uint(4)? as u32)
    }

    fn u40(&mut self) -> Result<u64, Scte35Error> {
        self.uint(5)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A section around `body` (from protocol_version to the descriptors),
    /// with its length and CRC.
    pub(crate) fn section(body: &[u8]) -> Vec<u8> {
        let length = body.len() + 4;
        let mut s = vec![0xFC, 0x30 | (length >> 8) as u8, length as u8];
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    #[test]
    fn a_time_signal_with_a_placement_opportunity_start_is_read() {
        // SCTE 35 (2019) 14.1.
        let info = parse(&hex(
            "fc3034000000000000fffff00506fe72bd0050001e021c435545494800008e7fcf0001a599b00808000000002ca0a18a3402009ac9d17e",
        ))
        .unwrap();
        assert_eq!(
            info.command,
            SpliceCommand::TimeSignal {
                pts: Some(0x0_72bd_0050)
            }
        );
        assert_eq!(info.tier, 0xFFF);
        assert_eq!(
            info.segmentations,
            [Segmentation {
                event_id: 0x4800_008e,
                cancel: false,
                duration: Some(0x00_01a5_99b0),
                upid_type: 0x08,
                upid: hex("000000002ca0a18a"),
                type_id: 0x34,
                segment_num: 2,
                segments_expected: 0,
            }]
        );
    }

    #[test]
    fn breaks_start_and_end_by_splice_insert_or_segmentation_type() {
        let start = parse(&hex(
            "fc3034000000000000fffff00506fe72bd0050001e021c435545494800008e7fcf0001a599b00808000000002ca0a18a3402009ac9d17e",
        ))
        .unwrap();
        assert_eq!(
            start.cue(),
            Some(Cue::Out {
                event_id: 0x4800_008e,
                planned: Some(0x01a5_99b0)
            })
        );
        let mut end = start.clone();
        end.segmentations[0].type_id = 0x35;
        assert_eq!(
            end.cue(),
            Some(Cue::In {
                event_id: 0x4800_008e
            })
        );
        let mut programme = start.clone();
        programme.segmentations[0].type_id = 0x10;
        assert_eq!(
            programme.cue(),
            Some(Cue::Signal {
                event_id: 0x4800_008e
            })
        );
        let insert_out = parse(&hex(
            "fc302000000000000000fff00f05000000017ffffe005265c0000100000000c38e9258",
        ))
        .unwrap();
        assert_eq!(
            insert_out.cue(),
            Some(Cue::Out {
                event_id: 1,
                planned: Some(60 * 90_000)
            })
        );
        let null = SpliceInfo {
            command: SpliceCommand::Null,
            ..insert_out
        };
        assert_eq!(null.cue(), None);
    }

    #[test]
    fn an_immediate_splice_insert_with_a_duration_has_no_time() {
        let info = parse(&hex(
            "fc302000000000000000fff00f05000000017ffffe005265c0000100000000c38e9258",
        ))
        .unwrap();
        let SpliceCommand::Insert(insert) = info.command else {
            panic!("{:?}", info.command)
        };
        assert!(insert.immediate && insert.out_of_network && !insert.cancel);
        assert_eq!(insert.pts, None);
        assert_eq!(
            insert.break_duration,
            Some(BreakDuration {
                auto_return: true,
                ticks: 60 * 90_000
            })
        );
        assert_eq!(insert.unique_program_id, 1);
    }

    /// protocol_version 0, not encrypted, `pts_adjustment`, cw_index 0,
    /// tier 0xFFF, the command's length and type.
    pub(crate) fn header(pts_adjustment: u8, command_length: u8, command: u8) -> Vec<u8> {
        vec![
            0,
            0,
            0,
            0,
            0,
            pts_adjustment,
            0,
            0xFF,
            0xF0,
            command_length,
            command,
        ]
    }

    #[test]
    fn a_splice_insert_back_in_at_a_time_is_read() {
        let pts: u64 = (1 << 33) - 10;
        // pts_adjustment 20: the splice lands 10 ticks after the wrap.
        let mut body = header(20, 15, 0x05);
        body.extend(7u32.to_be_bytes());
        body.push(0x7F); // not cancelled
        body.push(0x4F); // in, program splice, no duration, not immediate
        body.push(0xFE | (pts >> 32) as u8);
        body.extend((pts as u32).to_be_bytes());
        body.extend([0x12, 0x34, 0, 0]); // unique_program_id, avails
        body.extend([0, 0]); // no descriptors
        let info = parse(&section(&body)).unwrap();
        let SpliceCommand::Insert(insert) = &info.command else {
            panic!("{:?}", info.command)
        };
        assert!(!insert.out_of_network && !insert.immediate);
        assert_eq!(insert.event_id, 7);
        assert_eq!(insert.pts, Some(pts));
        assert_eq!(insert.unique_program_id, 0x1234);
        assert_eq!(info.splice_pts(), Some(10));
    }

    #[test]
    fn a_splice_null_and_a_cancel_are_read() {
        let mut null = header(0, 0, 0x00);
        null.extend([0, 0]);
        let null = parse(&section(&null)).unwrap();
        assert_eq!(null.command, SpliceCommand::Null);
        assert_eq!(null.splice_pts(), None);
        let mut cancel = header(0, 5, 0x05);
        cancel.extend([0, 0, 0, 42, 0xFF, 0, 0]);
        let SpliceCommand::Insert(insert) = parse(&section(&cancel)).unwrap().command else {
            panic!()
        };
        assert!(insert.cancel);
        assert_eq!(insert.event_id, 42);
    }

    #[test]
    fn a_bad_crc_a_short_section_and_an_encrypted_one_are_refused() {
        let mut good =
            hex("fc302000000000000000fff00f05000000017ffffe005265c0000100000000c38e9258");
        let last = good.len() - 1;
        good[last] ^= 1;
        assert_eq!(parse(&good), Err(Scte35Error::Crc));
        good[last] ^= 1;
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Fields that run past the section's (correct) length.
        let mut short = header(0, 5, 0x05);
        short.extend([0, 0, 0]);
        assert_eq!(parse(&section(&short)), Err(Scte35Error::Truncated));
        let mut encrypted = header(0, 0, 0x00);
        encrypted.extend([0, 0]);
        encrypted[1] = 0x80;
        assert_eq!(parse(&section(&encrypted)), Err(Scte35Error::Encrypted));
        assert_eq!(
            parse(&[0x00, 0x30, 0x00]),
            Err(Scte35Error::NotSpliceInfo(0))
        );
    }

    #[test]
    fn an_unread_command_is_skipped_by_its_length_to_the_descriptors() {
        // bandwidth_reservation (7, no body), then a segmentation
        // descriptor for event 9, cancelled.
        let mut body = header(0, 0, 0x07);
        body.extend([0, 11, TAG_SEGMENTATION, 9]);
        body.extend(CUEI.to_be_bytes());
        body.extend([0, 0, 0, 9, 0x80]);
        let info = parse(&section(&body)).unwrap();
        assert_eq!(info.command, SpliceCommand::Other(7));
        assert_eq!(info.segmentations.len(), 1);
        assert!(info.segmentations[0].cancel);
        assert_eq!(info.segmentations[0].event_id, 9);
    }
}
