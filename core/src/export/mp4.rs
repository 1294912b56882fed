//! A clip as one MP4 (see [`hlsvault_mp4::Writer`]), made as its segments
//! come: the first bytes leave after the first segments, whatever the
//! clip's length.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::{fetch, Body, Clip, ClipFile, ExportError, Part};
use hlsvault_mp4::Writer;
use hlsvault_store::{ObjectStore, StoreError};

/// Where the clip's presentation ends: where asked, or where the archive
/// ends before that.
fn recorded_end(clip: &Clip) -> SystemTime {
    let last = clip.parts.last().map(|p| p.start + p.duration);
    last.map_or(clip.end, |l| l.min(clip.end))
}

type Segments = BoxStream<'static, Result<(Part, Bytes), StoreError>>;

/// Pieces of the file, in order.
type Pieces = Vec<Vec<u8>>;

/// The file's next pieces: what the next segments make, or the end.
async fn next(writer: &mut Writer, segments: &mut Segments) -> Option<Result<Pieces, ExportError>> {
    loop {
        let made = match segments.next().await? {
            Ok((part, ts)) => writer.segment(&ts, part.start, part.discontinuity),
            Err(e) => return Some(Err(e.into())),
        };
        match made {
            Ok(pieces) if pieces.is_empty() => continue,
            other => return Some(other.map_err(ExportError::from)),
        }
    }
}

/// `clip` as an MP4. Its first segments are read here, so that what
/// cannot be made (MPEG-2 video, no program) fails the request, not the
/// download.
pub async fn file(store: Arc<dyn ObjectStore>, clip: &Clip) -> Result<ClipFile, ExportError> {
    let mut writer = Writer::new(clip.start, recorded_end(clip));
    let mut segments: Segments = fetch::segments(store, clip.parts.clone()).boxed();
    let (first, ended) = match next(&mut writer, &mut segments).await {
        Some(made) => (made?, false),
        None => (writer.finish()?, true),
    };
    let left = writer
        .left()
        .iter()
        .map(|l| format!("{} (PID 0x{:04X})", l.what, l.pid))
        .collect();
    let rest = futures_util::stream::unfold(
        (writer, segments, ended),
        |(mut writer, mut segments, ended)| async move {
            if ended {
                return None;
            }
            match next(&mut writer, &mut segments).await {
                Some(made) => {
                    let failed = made.is_err();
                    Some((made, (writer, segments, failed)))
                }
                None => Some((
                    writer.finish().map_err(ExportError::from),
                    (writer, segments, true),
                )),
            }
        },
    );
    let body: Body = futures_util::stream::once(std::future::ready(Ok(first)))
        .chain(rest)
        .flat_map(|made| {
            let pieces: Vec<Result<Bytes, ExportError>> = match made {
                Ok(pieces) => pieces.into_iter().map(|p| Ok(Bytes::from(p))).collect(),
                Err(e) => vec![Err(e)],
            };
            futures_util::stream::iter(pieces)
        })
        .boxed();
    Ok(ClipFile {
        len: None,
        left,
        body,
    })
}
