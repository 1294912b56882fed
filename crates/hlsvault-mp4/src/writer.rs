//! A clip's file as it is made, one segment at a time: `ftyp` and `moov`
//! describing the first chunks, those chunks in `mdat`, then a movie
//! fragment for each later batch.
//!
//! Why this layout: the file's first bytes leave after its first
//! segments, memory holds a segment or two whatever the clip's length, and
//! a browser plays while the rest downloads. A progressive file (every
//! sample in `moov`) would need a pass over the whole clip before its
//! first byte: for the 8-minute, 1 GB benchmark clip, 1.98 s to the first
//! byte against 0.05 s (measured, `scripts/bench-export`), and its tables
//! grow with the clip (22 MB for two hours). A file of fragments only
//! (`moov` empty) is not trimmed by its edit list in ffmpeg 5.1: the GOP
//! before the start shows at negative times, and a 4 s clip probes as
//! 5.16 s (measured). With the first chunks in `moov`, the edit list
//! applies where it matters, at the start; the end needs no trimming (the
//! clip stops with its last picture shown). The price: the length is not
//! known before the end.

use std::time::SystemTime;

use crate::boxes::{self, TrackRun};
use crate::{Chunk, Index, Left, Mp4Error, Remuxer};

/// Writes a clip's MP4 as its segments come.
pub struct Writer {
    remuxer: Remuxer,
    /// `moov` is out: what follows are fragments.
    started: bool,
    sequence: u32,
    /// Where each track's own media time starts (see [`Index::first_decode`]).
    bases: Vec<u64>,
}

impl Writer {
    /// A clip that shows `[start, end)` (see [`Remuxer::new`]).
    pub fn new(start: SystemTime, end: SystemTime) -> Self {
        Writer {
            remuxer: Remuxer::new(start, end),
            started: false,
            sequence: 0,
            bases: Vec::new(),
        }
    }

    /// The streams the clip leaves out (known after the first segment).
    pub fn left(&self) -> &[Left] {
        self.remuxer.left()
    }

    /// Takes the next segment (see [`Remuxer::segment`]); returns the
    /// pieces of the file that follow, in order (the samples' bytes as
    /// they were made: nothing is copied into one buffer).
    pub fn segment(
        &mut self,
        ts: &[u8],
        start: SystemTime,
        discontinuity: bool,
    ) -> Result<Vec<Vec<u8>>, Mp4Error> {
        let chunks = self.remuxer.segment(ts, start, discontinuity)?;
        self.write(chunks)
    }

    /// The end of the file.
    pub fn finish(&mut self) -> Result<Vec<Vec<u8>>, Mp4Error> {
        let chunks = self.remuxer.finish()?;
        let out = self.write(chunks)?;
        if !self.started {
            // Nothing came out of the clip's segments.
            return Err(Mp4Error::NothingCarried);
        }
        Ok(out)
    }

    fn write(&mut self, chunks: Vec<Chunk>) -> Result<Vec<Vec<u8>>, Mp4Error> {
        if chunks.is_empty() {
            return Ok(Vec::new());
        }
        let tracks = self.remuxer.tracks();
        let mut head = Vec::new();
        if !self.started {
            let mut index = Index::default();
            chunks.iter().for_each(|c| index.add(c));
            head = index.header(tracks, self.remuxer.duration_ms(), true)?;
            self.bases = (0..tracks.len()).map(|t| index.first_decode(t)).collect();
            self.started = true;
        } else {
            self.sequence += 1;
            let runs: Vec<TrackRun> = chunks
                .iter()
                .map(|c| TrackRun {
                    id: tracks[c.track].id,
                    decode_time: c
                        .decode_time
                        .saturating_sub(self.bases.get(c.track).copied().unwrap_or(0)),
                    samples: &c.samples,
                    len: c.data.len(),
                })
                .collect();
            boxes::fragment(self.sequence, &runs, &mut head)?;
        }
        let mut pieces = vec![head];
        pieces.extend(chunks.into_iter().map(|c| c.data));
        Ok(pieces)
    }
}
