//! Which program of a multiplex a stream archives and times, and which
//! PIDs it keeps.
//!
//! A PAT may list programs whose PMT never comes; they never block the
//! others. By default the first program in PAT order whose PMT has arrived
//! and that has video is chosen, else the first with audio; `program = N`
//! chooses by program number.

use super::keyframe::VideoCodec;
use super::psi::Pmt;

/// Which program drives timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgramChoice {
    /// The first program (PAT order) with a PMT and video, else with audio.
    #[default]
    Auto,
    /// The program with this `program_number`.
    Number(u16),
}

/// What a stream keeps of its multiplex.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// The program that is timed (and kept).
    pub program: ProgramChoice,
    /// Keep every program (the PAT as sent), not only the chosen one.
    pub whole_multiplex: bool,
    /// Keep null packets (PID 8191) for a bit-exact copy.
    pub keep_nulls: bool,
}

/// The table a fixed SI PID carries (the CAT, and DVB's NIT, SDT/BAT,
/// EIT, RST, TDT/TOT), kept with the chosen program.
pub fn si_table(pid: u16) -> Option<&'static str> {
    Some(match pid {
        0x01 => "CAT",
        0x10 => "NIT",
        0x11 => "SDT/BAT",
        0x12 => "EIT",
        0x13 => "RST",
        0x14 => "TDT/TOT",
        _ => return None,
    })
}

/// Whether `pid` carries one of the SI tables of [`si_table`].
pub fn is_si(pid: u16) -> bool {
    si_table(pid).is_some()
}

/// How a program's timing PID finds random access points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimingKind {
    /// Video of this codec: pictures verified in the bitstream.
    Video(VideoCodec),
    /// Audio: every unit is a random access point.
    Audio,
}

/// The PID that times a program: its first video stream, else its first
/// audio stream.
pub fn timing_of(pmt: &Pmt) -> Option<(u16, TimingKind)> {
    let video = pmt.streams.iter().find_map(|s| {
        VideoCodec::from_stream_type(s.stream_type).map(|c| (s.pid, TimingKind::Video(c)))
    });
    video.or_else(|| first_audio(pmt).map(|pid| (pid, TimingKind::Audio)))
}

/// The PID of a program's first audio stream.
pub fn first_audio(pmt: &Pmt) -> Option<u16> {
    pmt.streams
        .iter()
        .find(|s| is_audio(s.stream_type, &s.descriptor_tags))
        .map(|s| s.pid)
}

/// Chooses among the programs whose PMT has arrived (in PAT order): the
/// index of the chosen one in `pmts`.
pub fn choose(choice: ProgramChoice, pmts: &[&Pmt]) -> Option<usize> {
    match choice {
        ProgramChoice::Number(n) => pmts.iter().position(|p| p.program == n),
        ProgramChoice::Auto => {
            let with = |video: bool| {
                pmts.iter().position(|p| {
                    matches!(timing_of(p), Some((_, TimingKind::Video(_)))) == video
                        && timing_of(p).is_some()
                })
            };
            with(true).or_else(|| with(false))
        }
    }
}

/// Whether a PMT entry is an audio stream we can time by.
pub fn is_audio(stream_type: u8, descriptor_tags: &[u8]) -> bool {
    match stream_type {
        0x03 | 0x04 | 0x0F | 0x11 | 0x1C | 0x81 | 0x87 => true,
        // Private data carrying AC-3, E-AC-3, AAC or DTS (DVB descriptors).
        0x06 => descriptor_tags
            .iter()
            .any(|t| matches!(t, 0x6A | 0x7A | 0x7B | 0x7C)),
        _ => false,
    }
}

/// What a PID is, in words, for the summary and `/streams`.
pub fn describe(stream_type: u8, descriptor_tags: &[u8]) -> &'static str {
    let has = |t: u8| descriptor_tags.contains(&t);
    match stream_type {
        0x01 => "MPEG-1 video",
        0x02 => "MPEG-2 video",
        0x1B => "H.264 video",
        0x24 => "HEVC video",
        0x03 | 0x04 => "MPEG audio",
        0x0F => "AAC audio",
        0x11 => "AAC (LATM) audio",
        0x81 => "AC-3 audio",
        0x87 => "E-AC-3 audio",
        0x86 => "SCTE-35 splice info",
        0x05 => "private sections",
        0x06 if has(0x56) => "teletext",
        0x06 if has(0x59) => "DVB subtitles",
        0x06 if has(0x6A) => "AC-3 audio",
        0x06 if has(0x7A) => "E-AC-3 audio",
        0x06 if has(0x7C) => "AAC audio",
        0x06 if has(0x7B) => "DTS audio",
        0x06 => "private PES data",
        0x0B..=0x0D => "DSM-CC data",
        0x15 => "ID3 metadata",
        _ => "other data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psi::EsInfo;

    fn pmt(program: u16, types: &[u8]) -> Pmt {
        Pmt {
            program,
            pcr_pid: 0x100,
            streams: types
                .iter()
                .enumerate()
                .map(|(i, &t)| EsInfo {
                    stream_type: t,
                    pid: 0x100 + i as u16,
                    descriptor_tags: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn auto_prefers_the_first_program_with_video_then_with_audio() {
        let radio = pmt(1, &[0x0F]);
        let tv = pmt(2, &[0x1B, 0x0F]);
        let data = pmt(3, &[0x05]);
        assert_eq!(choose(ProgramChoice::Auto, &[&radio, &tv]), Some(1));
        assert_eq!(choose(ProgramChoice::Auto, &[&data, &radio]), Some(1));
        assert_eq!(choose(ProgramChoice::Auto, &[&data]), None);
        assert_eq!(choose(ProgramChoice::Number(1), &[&tv, &radio]), Some(1));
        assert_eq!(choose(ProgramChoice::Number(9), &[&tv, &radio]), None);
    }

    #[test]
    fn pids_are_described_by_type_and_descriptor() {
        assert_eq!(describe(0x06, &[0x0A, 0x56]), "teletext");
        assert_eq!(describe(0x06, &[0x59]), "DVB subtitles");
        assert_eq!(describe(0x86, &[]), "SCTE-35 splice info");
        assert!(is_si(0x12) && is_si(0x14) && !is_si(0x20));
    }
}
