//! Video outages: when a program's video stops (or its PMT declares video
//! that never comes) while its audio goes on, the audio times the stream
//! until a video keyframe is back.

use crate::clock::PTS_HZ;

/// What an audio unit is to the cutter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AudioRole {
    /// Video times the stream: the unit is just routed.
    Ignored,
    /// Video has been silent for `silence` ticks (or never came, when
    /// `absent`): from this unit on, audio times the stream.
    Takes {
        /// The PMT declares video that never came.
        absent: bool,
        /// Ticks of audio since the last video frame (or the first audio).
        silence: i64,
    },
    /// Audio times the stream.
    Times,
}

/// Follows the video and audio timelines of one program.
#[derive(Debug)]
pub(super) struct VideoWatch {
    /// Audio without video for this long takes over (90 kHz ticks).
    wait: i64,
    audio_times: bool,
    /// Extended PTS of the newest video frame.
    last_video: Option<i64>,
    /// Extended PTS of the first audio unit since video was last seen (or
    /// since the timeline broke).
    audio_since: Option<i64>,
    /// Extended PTS of the newest audio unit.
    last_audio: Option<i64>,
}

impl VideoWatch {
    /// A watch that lets audio take over after `wait` ticks without video.
    pub(super) fn new(wait: i64) -> Self {
        VideoWatch {
            wait,
            audio_times: false,
            last_video: None,
            audio_since: None,
            last_audio: None,
        }
    }

    /// Whether audio times the stream now.
    pub(super) fn audio_times(&self) -> bool {
        self.audio_times
    }

    /// A video frame at `ext` while video times the stream.
    pub(super) fn video(&mut self, ext: i64) {
        self.last_video = Some(ext);
        self.audio_since = None;
    }

    /// An audio unit at `ext`.
    pub(super) fn audio(&mut self, ext: i64) -> AudioRole {
        self.last_audio = Some(ext);
        if self.audio_times {
            return AudioRole::Times;
        }
        let since = match self.last_video {
            Some(v) => v,
            None => *self.audio_since.get_or_insert(ext),
        };
        let silence = ext - since;
        if silence < self.wait {
            return AudioRole::Ignored;
        }
        self.audio_times = true;
        AudioRole::Takes {
            absent: self.last_video.is_none(),
            silence,
        }
    }

    /// A video keyframe at `ext` while audio times the stream: video times
    /// it again. Returns whether the media runs on without a jump (the
    /// keyframe is presented within a second of the newest audio).
    pub(super) fn video_returns(&mut self, ext: i64) -> bool {
        self.audio_times = false;
        self.video(ext);
        self.last_audio
            .is_some_and(|a| (ext - a).abs() <= PTS_HZ as i64)
    }

    /// The timeline broke: PTS before and after are not comparable.
    pub(super) fn forget(&mut self) {
        self.last_video = None;
        self.audio_since = None;
        self.last_audio = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = PTS_HZ as i64;

    #[test]
    fn audio_takes_over_after_the_wait_and_video_takes_back() {
        let mut w = VideoWatch::new(2 * S);
        w.video(10 * S);
        assert_eq!(w.audio(11 * S), AudioRole::Ignored);
        assert_eq!(
            w.audio(12 * S),
            AudioRole::Takes {
                absent: false,
                silence: 2 * S
            }
        );
        assert_eq!(w.audio(13 * S), AudioRole::Times);
        assert!(w.video_returns(13 * S + S / 2), "contiguous");
        assert!(!w.audio_times());
        assert_eq!(w.audio(14 * S), AudioRole::Ignored);
    }

    #[test]
    fn video_that_never_comes_is_waited_for_once() {
        let mut w = VideoWatch::new(2 * S);
        assert_eq!(w.audio(100 * S), AudioRole::Ignored);
        assert_eq!(
            w.audio(102 * S),
            AudioRole::Takes {
                absent: true,
                silence: 2 * S
            }
        );
        // Video back an hour of PTS later: not contiguous.
        assert!(!w.video_returns(3700 * S));
    }
}
