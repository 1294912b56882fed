//! MP4 samples out of PES units: a video access unit per PES (Annex B made
//! length-prefixed, parameter sets kept aside for the sample entry), and
//! one sample per audio frame, each timed by the frames before it in its
//! PES.

use hlsvault_ts::audio::{frames, AudioCodec, Format};
use hlsvault_ts::keyframe::VideoCodec;
use hlsvault_ts::pes_units::Unit;

use crate::nal::{kind, push_length_prefixed, units, NalKind};

/// PTS and DTS are 33-bit counters of a 90 kHz clock.
const WRAP: u64 = 1 << 33;

/// One sample; its bytes follow those of the sample before it in
/// [`Run::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Decoding and presentation time stamps (90 kHz, 33 bits).
    pub dts: u64,
    pub pts: u64,
    /// A decoder can start here.
    pub key: bool,
    pub len: u32,
    /// Audio: the samples (per channel) the frame decodes to; 0 for video.
    pub audio_samples: u32,
}

/// The samples of one track in one segment.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub samples: Vec<Sample>,
    pub data: Vec<u8>,
}

/// The parameter sets of a video track, as its sample entry lists them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    pub vps: Vec<Vec<u8>>,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
}

/// Makes the samples of a video track.
#[derive(Debug)]
pub struct VideoSamples {
    codec: VideoCodec,
    /// The first sets seen: the sample entry's. Sets that differ from them
    /// (a new resolution after a discontinuity) stay in the samples, where
    /// decoders take them.
    pub sets: ParameterSets,
    /// Time stamps of the last sample, for a unit without any.
    last: Option<(u64, u64)>,
}

impl VideoSamples {
    pub fn new(codec: VideoCodec) -> Self {
        VideoSamples {
            codec,
            sets: ParameterSets::default(),
            last: None,
        }
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Adds the access unit in `unit` to `run`. `first` marks the
    /// segment's first unit, where the archive cut it to start decoding.
    pub fn push(&mut self, unit: &Unit, first: bool, run: &mut Run) {
        let (dts, pts) = match (unit.pts, unit.dts, self.last) {
            (Some(pts), dts, _) => (dts.unwrap_or(pts), pts),
            // A unit without time stamps comes a frame after the last one;
            // a frame is not known here, so it takes one tick (it is rare,
            // and the timing is the decoder's guess either way).
            (None, _, Some((dts, pts))) => ((dts + 1) % WRAP, (pts + 1) % WRAP),
            (None, _, None) => return,
        };
        let at = run.data.len();
        let mut random_access = false;
        let learn = |list: &mut Vec<Vec<u8>>, nal: &[u8]| {
            if list.is_empty() {
                list.push(nal.to_vec());
            }
            list.iter().any(|s| s == nal)
        };
        for nal in units(&unit.data) {
            let known = match kind(self.codec, nal) {
                NalKind::Dropped => true,
                NalKind::RandomAccess => {
                    random_access = true;
                    false
                }
                NalKind::Vps => learn(&mut self.sets.vps, nal),
                NalKind::Sps => learn(&mut self.sets.sps, nal),
                NalKind::Pps => learn(&mut self.sets.pps, nal),
                NalKind::Other => false,
            };
            if !known {
                push_length_prefixed(&mut run.data, nal);
            }
        }
        if run.data.len() == at {
            return;
        }
        // A sync sample: where the archive starts a segment, or a picture
        // any decoder starts at.
        let key = first || random_access;
        self.last = Some((dts, pts));
        run.samples.push(Sample {
            dts,
            pts,
            key,
            len: (run.data.len() - at) as u32,
            audio_samples: 0,
        });
    }
}

/// Makes the samples of an audio track: a PES holds several frames, and a
/// frame may run on into the next PES.
#[derive(Debug)]
pub struct AudioSamples {
    codec: AudioCodec,
    /// What the first frame said.
    pub format: Option<Format>,
    /// The first frame, whole: AC-3 and E-AC-3 sample entries are made
    /// from its header.
    pub first_frame: Vec<u8>,
    /// The start of a frame that continues in the next PES, and its PTS.
    carry: Vec<u8>,
    carry_pts: Option<u64>,
}

impl AudioSamples {
    pub fn new(codec: AudioCodec) -> Self {
        AudioSamples {
            codec,
            format: None,
            first_frame: Vec::new(),
            carry: Vec::new(),
            carry_pts: None,
        }
    }

    pub fn codec(&self) -> AudioCodec {
        self.codec
    }

    /// Adds the frames of `unit` to `run`.
    pub fn push(&mut self, unit: &Unit, run: &mut Run) {
        let own_pts = unit.pts;
        let (es, mut pts) = if self.carry.is_empty() || unit.damaged {
            (unit.data.clone(), own_pts)
        } else {
            let mut es = std::mem::take(&mut self.carry);
            es.extend_from_slice(&unit.data);
            (es, self.carry_pts.or(own_pts))
        };
        self.carry.clear();
        let found = frames(self.codec, &es);
        if self.format.is_none() {
            self.format = found.format;
        }
        let Some(rate) = self.format.map(|f| u64::from(f.rate)).filter(|r| *r > 0) else {
            return;
        };
        let Some(mut at) = pts.take() else { return };
        for f in &found.frames {
            let frame = &es[f.offset..f.offset + f.len];
            if self.first_frame.is_empty() {
                self.first_frame = frame.to_vec();
            }
            let body = match self.codec {
                // The ADTS header goes: the sample entry says what it said.
                AudioCodec::Aac => &frame[if frame[1] & 1 == 0 { 9 } else { 7 }..],
                _ => frame,
            };
            run.data.extend_from_slice(body);
            run.samples.push(Sample {
                dts: at,
                pts: at,
                key: true,
                len: body.len() as u32,
                audio_samples: f.samples,
            });
            at = (at + (u64::from(f.samples) * 90_000 + rate / 2) / rate) % WRAP;
        }
        if found.rest < es.len() && es.len() - found.rest < 8192 {
            self.carry = es[found.rest..].to_vec();
            self.carry_pts = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(pts: u64, dts: Option<u64>, data: Vec<u8>) -> Unit {
        Unit {
            pid: 0x100,
            pts: Some(pts),
            dts,
            data,
            random_access: false,
            damaged: false,
        }
    }

    #[test]
    fn parameter_sets_go_to_the_entry_and_delimiters_go_altogether() {
        let sps = [0x67, 0x64, 0x00, 0x0D, 0xAC];
        let es = [
            &[0, 0, 0, 1, 0x09, 0xF0][..],
            &[0, 0, 0, 1],
            &sps,
            &[0, 0, 1, 0x68, 0xEB],
            &[0, 0, 1, 0x65, 0x88, 0x84, 0x21],
        ]
        .concat();
        let mut video = VideoSamples::new(VideoCodec::H264);
        let mut run = Run::default();
        video.push(&unit(3600, Some(0), es), true, &mut run);
        assert_eq!(video.sets.sps, [sps.to_vec()]);
        assert_eq!(video.sets.pps, [vec![0x68, 0xEB]]);
        assert_eq!(run.data, [0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]);
        assert_eq!(
            run.samples,
            [Sample {
                dts: 0,
                pts: 3600,
                key: true,
                len: 8,
                audio_samples: 0,
            }]
        );
        // A different SPS later stays in its sample.
        let other = [&[0, 0, 1, 0x67, 0x4D][..], &[0, 0, 1, 0x41, 0x9A]].concat();
        video.push(&unit(7200, Some(3600), other), false, &mut run);
        assert_eq!(
            &run.data[8..],
            [0, 0, 0, 2, 0x67, 0x4D, 0, 0, 0, 2, 0x41, 0x9A]
        );
        assert!(!run.samples[1].key);
    }

    #[test]
    fn aac_frames_lose_their_adts_header_and_are_timed_one_after_the_other() {
        // AAC LC, 48 kHz, stereo: two 12-byte frames, the second split
        // across two PES.
        let frame = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x9F, 0xFC, 1, 2, 3, 4, 5];
        let mut audio = AudioSamples::new(AudioCodec::Aac);
        let mut run = Run::default();
        audio.push(
            &unit(1000, None, [&frame[..], &frame[..9]].concat()),
            &mut run,
        );
        audio.push(&unit(9000, None, frame[9..].to_vec()), &mut run);
        let times: Vec<u64> = run.samples.iter().map(|s| s.pts).collect();
        assert_eq!(times, [1000, 1000 + 1920]);
        assert_eq!(run.data, [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
        assert_eq!(audio.format.map(|f| f.rate), Some(48_000));
    }
}
