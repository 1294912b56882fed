//! The clip's timeline: archived segments in, the samples of each track
//! out, a chunk per track per segment.
//!
//! Time inside the clip is wall time. The first segment's first frame
//! (its keyframe) is at the wall time the archive recorded for it; each
//! contiguous run of segments goes on by its PTS, and a run after a
//! discontinuity starts at its own recorded wall time, so that a gap in
//! the archive stays a gap of the same length: the last sample before it
//! lasts until the run after it (the picture holds, the sound pauses). A
//! run never starts before the end of what came before it, whatever the
//! recorded times say.
//!
//! Media time is that timeline from the asked start, plus a few ticks.
//! The pictures decoded before the start (the GOP from its keyframe on)
//! are kept, but take a tick each: there are `n` of them, media time `n`
//! is the start, and the edit list begins there, so players decode them
//! and show none shown before the start. Audio starts with the first
//! frame at or after the start (less than a frame late). The media thus
//! runs at most `n` ticks (under 3 ms for a 10 s GOP at 50 fps) ahead of
//! the presentation, which players that honour only part of an edit list
//! (ffmpeg with movie fragments counts durations from media time 0) need
//! to get durations right.
//!
//! A segment's chunks are handed out when the next segment is read: the
//! last sample of a track lasts until the first of the next chunk, which
//! only the next segment says.

use std::time::{Duration, SystemTime};

use hlsvault_ts::pes_units::PesUnits;
use hlsvault_ts::{packets, Packet};

use crate::boxes::{Sample, TrackHeader};
use crate::entry;
use crate::samples::{AudioSamples, Run, VideoSamples};
use crate::tracks::{first_pmt, Left, Streams, TrackCodec};
use crate::Mp4Error;

/// The 90 kHz clock of PTS and DTS.
const CLOCK: i64 = 90_000;
/// How far a segment's stamps may put it from its recorded wall time and
/// still go on from the segment before (90 kHz ticks: 2 s).
const DRIFT: i64 = 2 * CLOCK;
const WRAP: i64 = 1 << 33;

/// `a - b` for two 33-bit time stamps, across a wrap.
fn diff(a: u64, b: u64) -> i64 {
    let d = (a as i64 - b as i64).rem_euclid(WRAP);
    if d >= WRAP / 2 {
        d - WRAP
    } else {
        d
    }
}

/// `d` in 90 kHz ticks.
fn ticks(d: Duration) -> i64 {
    (d.as_nanos() * 9 / 100_000).min(i64::MAX as u128) as i64
}

/// How a track makes its samples.
enum Maker {
    Video(VideoSamples),
    Audio(AudioSamples),
}

struct Track {
    id: u32,
    codec: TrackCodec,
    /// Its media clock: 90 kHz for video, the sample rate for audio.
    timescale: u32,
    maker: Maker,
    /// This segment's samples.
    run: Run,
    /// The last fragment's samples, waiting for the duration of their
    /// last one.
    pending: Pending,
    /// End of its last sample on the clip's timeline (90 kHz).
    end: Option<i64>,
    /// Audio: the decoding time that follows the last frame. A frame
    /// stamped within half a frame of it takes it, so that frames follow
    /// each other exactly whatever the rounding of their stamps.
    next_audio: Option<u64>,
    /// Media time of the clip's start: the pictures decoded before it.
    preroll: u64,
    /// Pictures decoded before the start so far.
    squeezed: u64,
}

#[derive(Default)]
struct Pending {
    chunk: Chunk,
    /// The last sample's decoding time, and how long a sample lasts when
    /// nothing follows.
    last: u64,
    nominal: u32,
    /// When its last picture shown before the clip's end is shown (media
    /// time).
    shown_end: i64,
}

/// The samples of one track in one segment, in media time.
#[derive(Debug, Default, Clone)]
pub struct Chunk {
    /// The track's index in [`Remuxer::tracks`].
    pub track: usize,
    /// The first sample's decoding time, in the track's timescale.
    pub decode_time: u64,
    pub samples: Vec<Sample>,
    pub data: Vec<u8>,
}

/// Turns a clip's segments, in order, into the chunks of its MP4 tracks
/// (see [`crate::Writer`] for the file).
pub struct Remuxer {
    start: SystemTime,
    end: SystemTime,
    /// The wall time of the first segment's first frame: 0 on the
    /// clip's timeline.
    origin: Option<SystemTime>,
    tracks: Vec<Track>,
    left: Vec<Left>,
    /// Where the clip's presentation starts on the timeline (90 kHz).
    start_at: i64,
    /// A PTS and where it lies on the timeline.
    anchor: Option<(u64, i64)>,
    /// The tracks' headers, once the first segment made them.
    headers: Vec<TrackHeader>,
    /// A discontinuity came in a segment without samples: the next
    /// segment starts a new run.
    broken: bool,
}

impl Remuxer {
    /// A clip that shows `[start, end)`. Its segments must cover it: the
    /// first begins at or before `start`.
    pub fn new(start: SystemTime, end: SystemTime) -> Self {
        Remuxer {
            start,
            end,
            origin: None,
            tracks: Vec::new(),
            left: Vec::new(),
            start_at: 0,
            anchor: None,
            headers: Vec::new(),
            broken: false,
        }
    }

    /// The streams the clip leaves out (known after the first segment).
    pub fn left(&self) -> &[Left] {
        &self.left
    }

    /// The tracks (known after the first segment).
    pub fn tracks(&self) -> &[TrackHeader] {
        &self.headers
    }

    /// The clip's length on screen, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let start = self.origin.map_or(self.start, |o| self.start.max(o));
        self.end
            .duration_since(start)
            .map_or(0, |d| d.as_millis() as u64)
    }

    /// Takes the next segment, whose first frame is shown at `start`
    /// (wall time), and returns the chunks it completes (a track's chunk
    /// waits for the track's next samples: they say how long its last one
    /// lasts).
    pub fn segment(
        &mut self,
        ts: &[u8],
        start: SystemTime,
        discontinuity: bool,
    ) -> Result<Vec<Chunk>, Mp4Error> {
        let streams = first_pmt(ts).as_ref().map(Streams::of);
        if self.tracks.is_empty() {
            let streams = streams.clone().ok_or(Mp4Error::NoProgram)?;
            self.set_up(&streams)?;
        }
        self.read(ts, streams.as_ref());
        let discontinuity = std::mem::take(&mut self.broken) || discontinuity;
        if !self.tracks.iter().any(|t| !t.run.samples.is_empty()) {
            self.broken = discontinuity;
            return Ok(Vec::new());
        }
        // The first segment with samples sets the clip's timeline.
        let first = self.headers.is_empty();
        let origin = *self.origin.get_or_insert(start);
        let wall = start.duration_since(origin).map_or(0, ticks);
        let new_run = self.place(wall, first || discontinuity);
        if first {
            self.make_headers()?;
        }
        Ok(self.hold(new_run))
    }

    /// The last segment's chunks.
    pub fn finish(&mut self) -> Result<Vec<Chunk>, Mp4Error> {
        if self.headers.is_empty() {
            return Err(Mp4Error::NothingCarried);
        }
        Ok(self.complete_pending())
    }

    /// The tracks, from the first segment's streams.
    fn set_up(&mut self, streams: &Streams) -> Result<(), Mp4Error> {
        self.left = streams.left.clone();
        let has_video = streams
            .carried
            .iter()
            .any(|c| matches!(c.codec, TrackCodec::Video(_)));
        let other_video = streams.left.iter().find(|l| l.what.ends_with(" video"));
        if let (false, Some(v)) = (has_video, other_video) {
            return Err(Mp4Error::Unsupported(v.what));
        }
        for c in &streams.carried {
            let (timescale, maker) = match c.codec {
                TrackCodec::Video(v) => (CLOCK as u32, Maker::Video(VideoSamples::new(v))),
                // The rate is set from the first frame.
                TrackCodec::Audio(a) => (0, Maker::Audio(AudioSamples::new(a))),
            };
            self.tracks.push(Track {
                id: self.tracks.len() as u32 + 1,
                codec: c.codec,
                timescale,
                maker,
                run: Run::default(),
                pending: Pending::default(),
                end: None,
                next_audio: None,
                preroll: 0,
                squeezed: 0,
            });
        }
        if self.tracks.is_empty() {
            return Err(Mp4Error::NothingCarried);
        }
        Ok(())
    }

    /// Reads the samples of every track in `ts`. A track is found again
    /// in a later segment as the same codec at the same rank.
    fn read(&mut self, ts: &[u8], streams: Option<&Streams>) {
        let Some(streams) = streams else { return };
        let mut pids = Vec::new();
        for (i, t) in self.tracks.iter().enumerate() {
            let rank = self.tracks[..i]
                .iter()
                .filter(|o| o.codec == t.codec)
                .count();
            let pid = streams
                .carried
                .iter()
                .filter(|c| c.codec == t.codec)
                .nth(rank)
                .map(|c| c.pid);
            pids.push(pid);
        }
        let wanted: Vec<u16> = pids.iter().flatten().copied().collect();
        let mut units = PesUnits::new(&wanted);
        for t in &mut self.tracks {
            // Room for the segment's bytes once, not as they grow.
            let share = if matches!(t.codec, TrackCodec::Video(_)) {
                1
            } else {
                8
            };
            t.run.data.reserve(ts.len() / share);
        }
        let mut firsts = vec![true; self.tracks.len()];
        let mut take = |unit: hlsvault_ts::pes_units::Unit, tracks: &mut [Track]| {
            let Some(i) = pids.iter().position(|p| *p == Some(unit.pid)) else {
                return;
            };
            let t = &mut tracks[i];
            match &mut t.maker {
                Maker::Video(v) => v.push(&unit, std::mem::take(&mut firsts[i]), &mut t.run),
                Maker::Audio(a) => a.push(&unit, &mut t.run),
            }
        };
        for p in packets(ts) {
            let p: &Packet = p;
            if let Some(unit) = units.push(p) {
                take(unit, &mut self.tracks);
            }
        }
        for unit in units.finish() {
            take(unit, &mut self.tracks);
        }
    }

    /// Places this segment's samples on the timeline: a new run starts
    /// at its recorded wall time `wall` (never before what came before).
    ///
    /// A segment whose stamps do not go on from the last one's (they are
    /// more than [`DRIFT`] away from where the recorded wall time puts
    /// it: an encoder restart the archive did not mark) starts a new run
    /// too. Says whether it started a new run.
    fn place(&mut self, wall: i64, new_run: bool) -> bool {
        let first_pts = |t: &Track| t.run.samples.first().map(|s| s.pts);
        let video_first = self
            .tracks
            .iter()
            .find(|t| matches!(t.codec, TrackCodec::Video(_)))
            .and_then(first_pts);
        let Some(pts) = video_first.or_else(|| self.tracks.iter().find_map(first_pts)) else {
            return new_run;
        };
        let follows = self
            .anchor
            .is_some_and(|(a, at)| (at + diff(pts, a) - wall).abs() <= DRIFT);
        let new_run = new_run || !follows;
        if new_run {
            let lead = self
                .tracks
                .iter()
                .flat_map(|t| t.run.samples.iter())
                .map(|s| diff(s.dts, pts))
                .min()
                .unwrap_or(0);
            let floor = self.tracks.iter().filter_map(|t| t.end).max();
            let at = floor.map_or(wall, |f| wall.max(f - lead));
            self.anchor = Some((pts, at));
        } else if let Some((a, at)) = self.anchor {
            // Follow the stamps forward, so a wrap of the 33-bit clock in
            // a long run is one more step.
            self.anchor = Some((pts, at + diff(pts, a)));
        }
        new_run
    }

    /// Where `pts` lies on the clip's timeline.
    fn timeline(&self, pts: u64) -> i64 {
        let (a, at) = self.anchor.unwrap_or((pts, 0));
        at + diff(pts, a)
    }

    fn end_on_timeline(&self) -> i64 {
        let origin = self.origin.unwrap_or(self.end);
        self.end.duration_since(origin).map_or(0, ticks)
    }

    /// The tracks' headers, from the first segment's samples.
    fn make_headers(&mut self) -> Result<(), Mp4Error> {
        let origin = self.origin.unwrap_or(self.start);
        self.start_at = self.start.duration_since(origin).map_or(0, ticks);
        for i in 0..self.tracks.len() {
            let t = &self.tracks[i];
            if matches!(t.codec, TrackCodec::Video(_)) {
                let before = t.run.samples.iter();
                let before = before.filter(|s| self.timeline(s.dts) < self.start_at);
                self.tracks[i].preroll = before.count() as u64;
            }
        }
        let mut headers = Vec::new();
        let mut kept = Vec::new();
        for mut t in std::mem::take(&mut self.tracks) {
            let made = match &t.maker {
                Maker::Video(v) => entry::video(v.codec(), &v.sets)
                    .map(|e| (e.codec, Some((e.width, e.height)), CLOCK as u32)),
                Maker::Audio(a) => a.format.filter(|f| f.rate > 0).and_then(|format| {
                    entry::audio(a.codec(), format, &a.first_frame).map(|e| (e, None, format.rate))
                }),
            };
            let Some((codec_entry, picture, timescale)) = made else {
                // No parameter sets or no whole frame in the first
                // segment: the track cannot be described.
                tracing::warn!(
                    track = t.id,
                    "a track of the clip cannot be described from its first segment; left out"
                );
                continue;
            };
            t.timescale = timescale;
            t.id = kept.len() as u32 + 1;
            headers.push(TrackHeader {
                id: t.id,
                timescale,
                entry: codec_entry,
                picture,
                media_start: t.preroll as i64,
            });
            kept.push(t);
        }
        self.tracks = kept;
        if self.tracks.is_empty() {
            return Err(Mp4Error::NothingCarried);
        }
        self.headers = headers;
        Ok(())
    }

    /// Puts each track's new samples, in media time, in its pending
    /// chunk, and returns the chunks they complete: a track's last sample
    /// lasts until its next one (across a gap too: the gap is its), so a
    /// chunk waits for the track's next samples, or the end.
    fn hold(&mut self, new_run: bool) -> Vec<Chunk> {
        let end = self.end_on_timeline();
        let start = self.start_at;
        let timed: Vec<Vec<(i64, i64)>> = self
            .tracks
            .iter()
            .map(|t| {
                t.run
                    .samples
                    .iter()
                    .map(|s| (self.timeline(s.dts), self.timeline(s.pts)))
                    .collect()
            })
            .collect();
        let mut out = Vec::new();
        for (i, (t, times)) in self.tracks.iter_mut().zip(timed).enumerate() {
            let run = std::mem::take(&mut t.run);
            let video = matches!(t.codec, TrackCodec::Video(_));
            let mut p = Pending::default();
            p.chunk.track = i;
            let held = !t.pending.chunk.samples.is_empty();
            let mut last = held.then_some(t.pending.last);
            // The last sample shown before the end, in decoding order:
            // what follows it is not needed. (A picture shown after the
            // end but decoded before it is kept: earlier ones may refer
            // to it; the edit list hides it.)
            let shown_before_end = times.iter().rposition(|(_, pts)| *pts < end);
            let mut at = 0usize;
            // The bytes of the samples kept: all of them, mostly.
            let mut kept = Vec::new();
            for (k, (s, (dts, pts))) in run.samples.iter().zip(times).enumerate() {
                let bytes = at..at + s.len as usize;
                at += s.len as usize;
                let (dts, pts) = (dts - start, pts - start);
                let past = if video {
                    shown_before_end.is_none_or(|last| k > last)
                } else {
                    pts >= end - start || pts < 0
                };
                if past {
                    continue;
                }
                let preroll = t.preroll as i64;
                let (mut decode, shown) = if dts < 0 {
                    // Decoded before the start: a tick each; shown at the
                    // start or after it, or else (hidden) as decoded.
                    let decode = t.squeezed.min(t.preroll.saturating_sub(1));
                    t.squeezed += 1;
                    let shown = if pts < 0 {
                        decode as i64
                    } else {
                        preroll + scale(pts, t.timescale)
                    };
                    (decode, shown)
                } else {
                    let decode = preroll + scale(dts, t.timescale);
                    (decode as u64, preroll + scale(pts, t.timescale))
                };
                if !video {
                    let follows = !(new_run && p.chunk.samples.is_empty());
                    if let Some(e) = t.next_audio.filter(|_| follows) {
                        if decode.abs_diff(e) <= u64::from(s.audio_samples / 2) {
                            decode = e;
                        }
                    }
                    t.next_audio = Some(decode + u64::from(s.audio_samples));
                }
                if let Some(l) = last {
                    decode = decode.max(l + 1);
                }
                if let Some(previous) = p.chunk.samples.last_mut() {
                    previous.duration = (decode - p.last) as u32;
                } else {
                    p.chunk.decode_time = decode;
                }
                p.last = decode;
                last = Some(decode);
                let offset = (shown - decode as i64).clamp(0, i64::from(i32::MAX));
                p.chunk.samples.push(Sample {
                    duration: 0,
                    size: s.len,
                    key: s.key,
                    composition_offset: offset as i32,
                });
                if pts < end - start {
                    p.shown_end = p.shown_end.max(shown);
                }
                kept.push(bytes);
                t.end = Some(pts.max(dts) + start);
            }
            if p.chunk.samples.is_empty() {
                continue;
            }
            p.chunk.data = if kept.len() == run.samples.len() {
                run.data
            } else {
                kept.into_iter()
                    .flat_map(|r| &run.data[r])
                    .copied()
                    .collect()
            };
            p.nominal = match run.samples.last() {
                Some(s) if s.audio_samples > 0 => s.audio_samples,
                // Video: as long as the sample before it.
                _ => p
                    .chunk
                    .samples
                    .iter()
                    .rev()
                    .nth(1)
                    .map_or(3600, |s| s.duration.max(1)),
            };
            if let Some(end) = &mut t.end {
                *end += unscale(i64::from(p.nominal), t.timescale);
            }
            let first = p.chunk.decode_time;
            let mut done = std::mem::replace(&mut t.pending, p);
            if held {
                if let Some(l) = done.chunk.samples.last_mut() {
                    l.duration = (first - done.last).min(u64::from(u32::MAX)) as u32;
                }
                out.push(done.chunk);
            }
        }
        out
    }

    /// Every pending chunk, its last sample lasting a nominal sample's
    /// time, or until the last picture shown ends (its media then ends
    /// with its presentation).
    fn complete_pending(&mut self) -> Vec<Chunk> {
        let mut out = Vec::new();
        for t in &mut self.tracks {
            let mut p = std::mem::take(&mut t.pending);
            if let Some(last) = p.chunk.samples.last_mut() {
                let nominal = i64::from(p.nominal);
                let until_shown = p.shown_end + nominal - p.last as i64;
                last.duration = until_shown.clamp(nominal, i64::from(u32::MAX)) as u32;
                out.push(p.chunk);
            }
        }
        out
    }
}

/// 90 kHz ticks in a track's timescale, rounded.
fn scale(ticks: i64, timescale: u32) -> i64 {
    let ts = i64::from(timescale);
    (ticks * ts + CLOCK / 2).div_euclid(CLOCK)
}

/// A track's ticks in 90 kHz ticks.
fn unscale(ticks: i64, timescale: u32) -> i64 {
    ticks * CLOCK / i64::from(timescale.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_differ_across_the_33_bit_wrap() {
        assert_eq!(diff(5, (1 << 33) - 5), 10);
        assert_eq!(diff((1 << 33) - 5, 5), -10);
        assert_eq!(diff(90_000, 0), 90_000);
        assert_eq!(scale(1920, 48_000), 1024);
        assert_eq!(ticks(Duration::from_secs(2)), 180_000);
    }
}
