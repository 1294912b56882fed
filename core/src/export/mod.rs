//! Reading the archive back by time: a playlist for any range
//! ([`range_playlist`]), and clips, any range as one file without
//! re-encoding ([`Clip`], written by [`ts`] or [`mp4`]). `serve` answers
//! HTTP with them, `hlsvault export` writes them to a file.

mod fetch;
mod figures;
mod file;
pub mod mp4;
mod nearest;
mod preview;
mod range;
pub mod ts;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub use figures::{Counted, ExportFigures, ExportSnapshot};
pub use file::{export_clip, Written};
pub use nearest::nearest_recorded;
pub use preview::preview;
pub use range::range_playlist;

use hlsvault_hls::Layout;
use hlsvault_store::{ObjectStore, StoreError};
use hlsvault_ts::clock::ticks_to_duration;

/// A range of a stream, as the segments that hold it.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The stream.
    pub stream: String,
    /// What was asked for.
    pub start: SystemTime,
    pub end: SystemTime,
    /// The segments, in order: the first holds `start` (and begins at the
    /// keyframe at or before it), the last holds `end`.
    pub parts: Vec<Part>,
}

/// One segment of a clip.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its key in the store.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When its first frame is shown.
    pub start: SystemTime,
    /// Its media duration.
    pub duration: Duration,
    /// Its timeline does not go on from the part before.
    pub discontinuity: bool,
}

impl Clip {
    /// Its bytes, as TS.
    pub fn size(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// Media seconds it holds (gaps not counted).
    pub fn media(&self) -> Duration {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// A file name that says what it is: `ch1_20261121T095957Z-20261121T101000Z.EXT`.
    pub fn file_name(&self, extension: &str) -> String {
        let stamp = |t: SystemTime| {
            humantime::format_rfc3339_seconds(t)
                .to_string()
                .replace(['-', ':'], "")
        };
        format!(
            "{}_{}-{}.{extension}",
            self.stream,
            stamp(self.start),
            stamp(self.end)
        )
    }
}

/// The file a clip is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClipFormat {
    /// The segments spliced into one MPEG-TS stream.
    Ts,
    /// An MP4 (H.264 or HEVC video), trimmed to the frame.
    Mp4,
}

impl ClipFormat {
    /// Its file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ClipFormat::Ts => "ts",
            ClipFormat::Mp4 => "mp4",
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ClipFormat::Ts => "video/mp2t",
            ClipFormat::Mp4 => "video/mp4",
        }
    }

    /// The format a file name's extension says (`.ts`, `.mp4`).
    pub fn of_extension(ext: &str) -> Option<Self> {
        match ext {
            "ts" => Some(ClipFormat::Ts),
            "mp4" => Some(ClipFormat::Mp4),
            _ => None,
        }
    }
}

/// A clip's bytes, as they are made.
pub type Body = futures_util::stream::BoxStream<'static, Result<bytes::Bytes, ExportError>>;

/// A clip as a file, ready to stream.
pub struct ClipFile {
    /// Its length, when it is known before the first byte (TS).
    pub len: Option<u64>,
    /// The streams it leaves out, in words (MP4).
    pub left: Vec<String>,
    pub body: Body,
}

impl Clip {
    /// The clip as a `format` file (an MP4's first segments are read
    /// here: what cannot be one fails here).
    pub async fn file(
        &self,
        store: std::sync::Arc<dyn ObjectStore>,
        format: ClipFormat,
    ) -> Result<ClipFile, ExportError> {
        use futures_util::StreamExt;
        Ok(match format {
            ClipFormat::Ts => ClipFile {
                len: Some(self.size()),
                left: Vec::new(),
                body: ts::stream(store, self).boxed(),
            },
            ClipFormat::Mp4 => mp4::file(store, self).await?,
        })
    }
}

/// Why a clip cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Nothing is archived in the range.
    #[error("nothing of {stream} is archived between {} and {}{nearest}", humantime::format_rfc3339_seconds(*.start), humantime::format_rfc3339_seconds(*.end))]
    Nothing {
        stream: String,
        start: SystemTime,
        end: SystemTime,
        /// Says what is recorded nearest to it (or is empty).
        nearest: String,
    },
    /// The range is longer than allowed.
    #[error("a clip of {} asked, more than export_max ({})", humantime::format_duration(*.asked), humantime::format_duration(*.max))]
    TooLong { asked: Duration, max: Duration },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The clip cannot be an MP4.
    #[error(transparent)]
    Mp4(#[from] hlsvault_mp4::Mp4Error),
    /// A segment a playlist lists is not in the store (retention?).
    #[error("the segment {0} is gone from the store")]
    Gone(String),
}

/// The segments of `stream` that hold `[start, end)`, with their sizes.
/// A segment a playlist lists but the store lacks is left out (logged),
/// and the next one marked as a discontinuity.
pub async fn plan(
    store: &dyn ObjectStore,
    stream: &str,
    start: SystemTime,
    end: SystemTime,
    max: Duration,
) -> Result<Clip, ExportError> {
    let asked = end.duration_since(start).unwrap_or_default();
    if asked > max {
        return Err(ExportError::TooLong { asked, max });
    }
    let layout = Layout::new(stream);
    let Some(playlist) = range_playlist(store, &layout, start, end).await? else {
        return Err(ExportError::Nothing {
            stream: stream.to_string(),
            start,
            end,
            nearest: nearest_recorded(store, &layout, start, end).await?,
        });
    };
    // One listing per hour folder gives every segment's size.
    let mut sizes = HashMap::new();
    let folders: Vec<String> = playlist
        .entries()
        .filter_map(|e| e.uri.rsplit_once('/').map(|(folder, _)| folder.to_string()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for folder in folders {
        for o in store.list(&format!("{stream}/{folder}/")).await? {
            sizes.insert(o.key, o.size);
        }
    }
    let mut parts = Vec::new();
    let mut gap = false;
    for e in playlist.entries() {
        let key = format!("{stream}/{}", e.uri);
        let Some(&size) = sizes.get(&key) else {
            tracing::warn!(%key, "a playlist lists a segment the store does not have; the clip goes on without it");
            gap = true;
            continue;
        };
        parts.push(Part {
            key,
            size,
            start: e.start,
            duration: ticks_to_duration(e.duration.min(i64::MAX as u64) as i64),
            discontinuity: std::mem::take(&mut gap) || e.discontinuity,
        });
    }
    if parts.is_empty() {
        return Err(ExportError::Nothing {
            stream: stream.to_string(),
            start,
            end,
            nearest: String::new(),
        });
    }
    Ok(Clip {
        stream: stream.to_string(),
        start,
        end,
        parts,
    })
}
