//! Which elementary streams of a segment become MP4 tracks, read from its
//! PAT and PMT (every archived segment opens with them).

use hlsvault_ts::audio::AudioCodec;
use hlsvault_ts::keyframe::VideoCodec;
use hlsvault_ts::program::describe;
use hlsvault_ts::psi::{parse_pat, parse_pmt, Pmt, SectionAssembler, TABLE_PAT, TABLE_PMT};
use hlsvault_ts::{packets, payload, Header, PID_PAT};

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackCodec {
    Video(VideoCodec),
    Audio(AudioCodec),
}

/// An elementary stream that becomes a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    pub pid: u16,
    pub codec: TrackCodec,
}

/// An elementary stream MP4 cannot carry (or we do not), in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub pid: u16,
    pub what: &'static str,
}

/// The streams of a segment: those that become tracks, in PMT order, and
/// those left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streams {
    pub carried: Vec<Carried>,
    pub left: Vec<Left>,
}

/// The codec a PMT entry's track would have, if MP4 can carry it.
fn codec_of(stream_type: u8, tags: &[u8]) -> Option<TrackCodec> {
    use TrackCodec::{Audio, Video};
    Some(match stream_type {
        0x1B => Video(VideoCodec::H264),
        0x24 => Video(VideoCodec::Hevc),
        0x0F => Audio(AudioCodec::Aac),
        0x03 | 0x04 => Audio(AudioCodec::MpegAudio),
        0x81 => Audio(AudioCodec::Ac3),
        0x87 => Audio(AudioCodec::Eac3),
        0x06 if tags.contains(&0x6A) => Audio(AudioCodec::Ac3),
        0x06 if tags.contains(&0x7A) => Audio(AudioCodec::Eac3),
        0x06 if tags.contains(&0x7C) => Audio(AudioCodec::Aac),
        _ => return None,
    })
}

/// The first program's PMT in `ts`, if the segment has one.
pub fn first_pmt(ts: &[u8]) -> Option<Pmt> {
    let mut pat = SectionAssembler::default();
    let mut pmt = SectionAssembler::default();
    let mut pmt_pid = None;
    let mut found = None;
    for p in packets(ts) {
        let h = Header::parse(p);
        let Some(body) = payload(p).filter(|_| h.has_payload) else {
            continue;
        };
        if h.pid == PID_PAT && pmt_pid.is_none() {
            pat.push(
                body,
                h.pusi,
                |s| {
                    if s[0] == TABLE_PAT {
                        pmt_pid = parse_pat(s)
                            .ok()
                            .and_then(|e| e.iter().find(|e| e.program != 0).map(|e| e.pmt_pid));
                    }
                },
                |_| {},
            );
        } else if Some(h.pid) == pmt_pid {
            pmt.push(
                body,
                h.pusi,
                |s| {
                    if s[0] == TABLE_PMT && found.is_none() {
                        found = parse_pmt(s).ok();
                    }
                },
                |_| {},
            );
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

impl Streams {
    /// Sorts a PMT's streams: the first H.264 or HEVC video and every
    /// audio stream MP4 carries become tracks; the rest is left.
    pub fn of(pmt: &Pmt) -> Self {
        let mut out = Streams::default();
        for es in &pmt.streams {
            let codec = codec_of(es.stream_type, &es.descriptor_tags);
            let second_video = matches!(codec, Some(TrackCodec::Video(_)))
                && out
                    .carried
                    .iter()
                    .any(|c| matches!(c.codec, TrackCodec::Video(_)));
            match codec {
                Some(codec) if !second_video => out.carried.push(Carried { pid: es.pid, codec }),
                _ => out.left.push(Left {
                    pid: es.pid,
                    what: describe(es.stream_type, &es.descriptor_tags),
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_ts::psi::EsInfo;

    #[test]
    fn video_and_audio_are_carried_and_the_rest_is_left_with_its_name() {
        let es = |stream_type, pid, tags: &[u8]| EsInfo {
            stream_type,
            pid,
            descriptor_tags: tags.to_vec(),
        };
        let pmt = Pmt {
            program: 1,
            pcr_pid: 0x100,
            streams: vec![
                es(0x1B, 0x100, &[]),
                es(0x0F, 0x101, &[]),
                es(0x06, 0x102, &[0x6A]),
                es(0x06, 0x103, &[0x56]),
                es(0x86, 0x104, &[]),
                es(0x1B, 0x105, &[]),
                es(0x02, 0x106, &[]),
            ],
        };
        let s = Streams::of(&pmt);
        let carried: Vec<u16> = s.carried.iter().map(|c| c.pid).collect();
        assert_eq!(carried, [0x100, 0x101, 0x102]);
        assert_eq!(s.carried[2].codec, TrackCodec::Audio(AudioCodec::Ac3));
        let left: Vec<(u16, &str)> = s.left.iter().map(|l| (l.pid, l.what)).collect();
        assert_eq!(
            left,
            [
                (0x103, "teletext"),
                (0x104, "SCTE-35 splice info"),
                (0x105, "H.264 video"),
                (0x106, "MPEG-2 video"),
            ]
        );
    }
}
