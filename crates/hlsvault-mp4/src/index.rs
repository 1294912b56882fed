//! The sample tables of the media that follows `moov`: every sample's
//! size, duration, composition offset and sync flag, and where each chunk
//! lies in `mdat`, held run-length coded where the format allows.

use mp4_atom::{
    Co64, Ctts, CttsEntry, Stbl, Stco, Stsc, StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry,
};

use crate::boxes::{self, TrackHeader};
use crate::remux::Chunk;
use crate::Mp4Error;

/// One track's tables.
#[derive(Debug, Default)]
struct Table {
    stts: Vec<SttsEntry>,
    ctts: Vec<CttsEntry>,
    stss: Vec<u32>,
    sizes: Vec<u32>,
    stsc: Vec<StscEntry>,
    chunks: u32,
    /// The sum of its sample durations.
    duration: u64,
    first_decode: Option<u64>,
    /// Where its chunks start in `mdat`.
    offsets: Vec<u64>,
}

/// The layout of the media after `moov`, chunk by chunk.
#[derive(Debug, Default)]
pub struct Index {
    tracks: Vec<Table>,
    /// Bytes of media so far.
    media: u64,
}

impl Index {
    /// Records `chunk`, which comes next in `mdat`.
    pub fn add(&mut self, chunk: &Chunk) {
        if self.tracks.len() <= chunk.track {
            self.tracks.resize_with(chunk.track + 1, Table::default);
        }
        let t = &mut self.tracks[chunk.track];
        t.first_decode.get_or_insert(chunk.decode_time);
        t.chunks += 1;
        t.offsets.push(self.media);
        let count = chunk.samples.len() as u32;
        if t.stsc.last().is_none_or(|e| e.samples_per_chunk != count) {
            t.stsc.push(StscEntry {
                first_chunk: t.chunks,
                samples_per_chunk: count,
                sample_description_index: 1,
            });
        }
        for s in &chunk.samples {
            t.sizes.push(s.size);
            t.duration += u64::from(s.duration);
            if s.key {
                t.stss.push(t.sizes.len() as u32);
            }
            match t.stts.last_mut() {
                Some(e) if e.sample_delta == s.duration => e.sample_count += 1,
                _ => t.stts.push(SttsEntry {
                    sample_count: 1,
                    sample_delta: s.duration,
                }),
            }
            let offset = i64::from(s.composition_offset);
            match t.ctts.last_mut() {
                Some(e) if e.sample_offset == offset => e.sample_count += 1,
                _ => t.ctts.push(CttsEntry {
                    sample_count: 1,
                    sample_offset: offset,
                }),
            }
            self.media += u64::from(s.size);
        }
    }

    /// Where `track`'s own media time starts on the clip's: its first
    /// sample here (0 without any). Fragments count from it too.
    pub fn first_decode(&self, track: usize) -> u64 {
        self.tracks
            .get(track)
            .and_then(|t| t.first_decode)
            .unwrap_or(0)
    }

    /// Bytes of media: `mdat`'s body.
    pub fn media_len(&self) -> u64 {
        self.media
    }

    /// `ftyp`, `moov` and the `mdat` header: everything before the media
    /// (and the fragments, if `fragmented`).
    pub fn header(
        &self,
        tracks: &[TrackHeader],
        duration_ms: u64,
        fragmented: bool,
    ) -> Result<Vec<u8>, Mp4Error> {
        // A large file needs 64-bit chunk offsets and mdat size.
        let large = self.media > u64::from(u32::MAX) - (64 << 20);
        let mdat_header = if large { 16 } else { 8 };
        let encode = |base: u64| {
            boxes::header(tracks, duration_ms, fragmented, |i| {
                let empty = Table::default();
                let t = self.tracks.get(i).unwrap_or(&empty);
                let offsets = t.offsets.iter().map(|o| o + base);
                let (stco, co64) = if large {
                    (
                        None,
                        Some(Co64 {
                            entries: offsets.collect(),
                        }),
                    )
                } else {
                    let entries = offsets.map(|o| o as u32).collect();
                    (Some(Stco { entries }), None)
                };
                let all_sync = t.stss.len() == t.sizes.len();
                let has_offsets = t.ctts.iter().any(|e| e.sample_offset != 0);
                let stbl = Stbl {
                    stts: Stts {
                        entries: t.stts.clone(),
                    },
                    ctts: has_offsets.then(|| Ctts {
                        entries: t.ctts.clone(),
                    }),
                    stss: (!all_sync).then(|| Stss {
                        entries: t.stss.clone(),
                    }),
                    stsc: Stsc {
                        entries: t.stsc.clone(),
                    },
                    stsz: Stsz {
                        samples: StszSamples::Different {
                            sizes: t.sizes.clone(),
                        },
                    },
                    stco,
                    co64,
                    ..Default::default()
                };
                (stbl, t.duration, t.first_decode.unwrap_or(0))
            })
        };
        // The offsets do not change the header's size: it is made once to
        // learn where the media starts, then with the offsets.
        let size = encode(0)?.len() as u64 + mdat_header;
        let mut out = encode(size)?;
        let total = self.media + mdat_header;
        if large {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(b"mdat");
            out.extend_from_slice(&total.to_be_bytes());
        } else {
            out.extend_from_slice(&(total as u32).to_be_bytes());
            out.extend_from_slice(b"mdat");
        }
        Ok(out)
    }
}
