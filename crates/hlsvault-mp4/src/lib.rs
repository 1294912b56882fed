//! Archived MPEG-TS segments remuxed into one MP4, without re-encoding:
//! H.264 and HEVC video, AAC, MPEG audio, AC-3 and E-AC-3. The sample
//! logic (PES to samples, time stamps to a wall-time timeline, the edit
//! lists that make a clip frame-accurate) is ours; the boxes are written
//! with [`mp4_atom`].
//!
//! The file is progressive, `moov` first, made in two passes over the
//! segments: the first builds the sample tables ([`Index`]), the second
//! sends the media. Fragmented MP4 would send its first bytes after one
//! segment instead of after a pass over all of them, but players do not
//! trim a fragmented file by its edit list: ffmpeg 5.1 shows the GOP's
//! frames before the asked start at negative times, and a 4 s clip
//! probes as 5.16 s (measured). A progressive file is trimmed everywhere
//! (ffmpeg, browsers, editors), its length is known before the first
//! byte, and a browser plays it while it downloads since `moov` comes
//! first. The price is the first pass: `BENCHMARKS.md` has its time.

pub mod boxes;
pub mod entry;
mod index;
pub mod nal;
pub mod preview;
mod remux;
pub mod samples;
pub mod tracks;

pub use index::Index;
pub use remux::{Chunk, Remuxer};
pub use tracks::Left;

/// Why a clip cannot be made into an MP4.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// The first segment has no PAT and PMT to say what it carries.
    #[error("the clip's first segment has no program table")]
    NoProgram,
    /// The video is of a kind MP4 export does not carry.
    #[error("MP4 export carries H.264 and HEVC video, not {0}; export the range as TS instead")]
    Unsupported(&'static str),
    /// A preview of a segment without a picture (audio only, or none
    /// whole).
    #[error("the segment has no picture to show")]
    NoPicture,
    /// No stream of the clip can become a track.
    #[error(
        "no stream of the clip can be carried in MP4 (H.264, HEVC, AAC, MPEG audio, AC-3, E-AC-3)"
    )]
    NothingCarried,
    /// A box could not be written.
    #[error("cannot write an MP4 box: {0}")]
    Box(#[from] mp4_atom::Error),
}
