//! Archived MPEG-TS segments remuxed into one MP4, without re-encoding:
//! H.264 and HEVC video, AAC, MPEG audio, AC-3 and E-AC-3. The sample
//! logic (PES to samples, time stamps to a wall-time timeline, the edit
//! lists that make a clip frame-accurate) is ours; the boxes are written
//! with [`mp4_atom`].
//!
//! The file is made as the segments come ([`Writer`]: the first chunks
//! described in `moov`, movie fragments after; its module says why).

pub mod boxes;
pub mod entry;
mod index;
pub mod nal;
pub mod preview;
mod remux;
pub mod samples;
pub mod tracks;
mod writer;

pub use index::Index;
pub use remux::{Chunk, Remuxer};
pub use tracks::Left;
pub use writer::Writer;

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
