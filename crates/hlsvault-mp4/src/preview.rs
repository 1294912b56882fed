//! A still of a segment: a one-sample MP4 of the keyframe shown nearest a
//! moment, made by the same remuxer as clips (no decoding), for a
//! `<video>` to show as a poster.

use std::time::{Duration, SystemTime};

use crate::boxes::{Sample, TrackHeader};
use crate::{Chunk, Index, Mp4Error, Remuxer};

/// The MP4 of the keyframe in `ts` (one archived segment) shown nearest
/// `at` after the segment's first picture.
pub fn picture(ts: &[u8], at: Duration) -> Result<Vec<u8>, Mp4Error> {
    // The segment alone, on a timeline of its own.
    let origin = SystemTime::UNIX_EPOCH;
    let mut remuxer = Remuxer::new(origin, origin + Duration::from_secs(24 * 3600));
    let mut chunks = remuxer.segment(ts, origin, false)?;
    chunks.extend(remuxer.finish()?);
    let (track, video) = remuxer
        .tracks()
        .iter()
        .enumerate()
        .find(|(_, t)| t.picture.is_some())
        .ok_or(Mp4Error::NoPicture)?;
    let wanted = (at.as_nanos() * 9 / 100_000) as i64 + video.media_start;
    let mut best: Option<(u64, Sample, &[u8])> = None;
    for c in chunks.iter().filter(|c| c.track == track) {
        let (mut decode, mut offset) = (c.decode_time, 0usize);
        for s in &c.samples {
            let bytes = &c.data[offset..offset + s.size as usize];
            let shown = decode as i64 + i64::from(s.composition_offset);
            let distance = shown.abs_diff(wanted);
            if s.key && best.as_ref().is_none_or(|(d, ..)| distance < *d) {
                best = Some((distance, *s, bytes));
            }
            decode += u64::from(s.duration);
            offset += s.size as usize;
        }
    }
    let (_, sample, data) = best.ok_or(Mp4Error::NoPicture)?;
    let sample = Sample {
        composition_offset: 0,
        ..sample
    };
    let mut index = Index::default();
    index.add(&Chunk {
        track: 0,
        decode_time: 0,
        samples: vec![sample],
        data: Vec::new(),
    });
    let header = TrackHeader {
        id: 1,
        media_start: 0,
        ..video.clone()
    };
    let duration_ms = (u64::from(sample.duration) / 90).max(1);
    let mut out = index.header(&[header], duration_ms, false)?;
    out.extend_from_slice(data);
    Ok(out)
}
