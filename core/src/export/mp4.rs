//! A clip as one MP4 (see [`hlsvault_mp4`]): a first pass over its
//! segments builds the sample tables; then the file streams, `moov` first
//! and the media segment by segment, at the length the first pass
//! announced.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::{fetch, Clip, ExportError};
use hlsvault_mp4::{Chunk, Index, Remuxer};
use hlsvault_store::ObjectStore;

/// What the first pass learnt of a clip's MP4.
#[derive(Debug, Clone)]
pub struct Mp4Clip {
    /// `ftyp`, `moov` and the `mdat` header.
    header: Bytes,
    /// The file's length.
    pub len: u64,
    /// The streams the file leaves out, in words (`teletext (PID 0x0104)`).
    pub left: Vec<String>,
}

/// Where the clip's presentation ends: where asked, or where the archive
/// ends before that.
fn recorded_end(clip: &Clip) -> SystemTime {
    let last = clip.parts.last().map(|p| p.start + p.duration);
    last.map_or(clip.end, |l| l.min(clip.end))
}

/// Runs `clip`'s segments through a remuxer, handing out its chunks.
async fn remux(
    store: Arc<dyn ObjectStore>,
    clip: &Clip,
    mut chunk: impl FnMut(Chunk),
) -> Result<Remuxer, ExportError> {
    let mut remuxer = Remuxer::new(clip.start, recorded_end(clip));
    let mut segments = std::pin::pin!(fetch::segments(store, clip.parts.clone()));
    while let Some(fetched) = segments.next().await {
        let (part, ts) = fetched?;
        remuxer
            .segment(&ts, part.start, part.discontinuity)?
            .into_iter()
            .for_each(&mut chunk);
    }
    remuxer.finish()?.into_iter().for_each(chunk);
    Ok(remuxer)
}

/// The first pass: the sample tables, hence the header and the length.
pub async fn prepare(store: Arc<dyn ObjectStore>, clip: &Clip) -> Result<Mp4Clip, ExportError> {
    let mut index = Index::default();
    let remuxer = remux(store, clip, |c| index.add(&c)).await?;
    let header = index.header(remuxer.tracks(), remuxer.duration_ms())?;
    Ok(Mp4Clip {
        len: header.len() as u64 + index.media_len(),
        header: Bytes::from(header),
        left: remuxer
            .left()
            .iter()
            .map(|l| format!("{} (PID 0x{:04X})", l.what, l.pid))
            .collect(),
    })
}

/// The file: its header, then the media of each segment as the second
/// pass makes it. A second pass that does not make what the first found
/// (a segment changed between the two) ends the stream with an error.
pub fn stream(
    store: Arc<dyn ObjectStore>,
    clip: &Clip,
    mp4: &Mp4Clip,
) -> impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static {
    let header = futures_util::stream::once(std::future::ready(Ok(mp4.header.clone())));
    let mut remuxer = Remuxer::new(clip.start, recorded_end(clip));
    let media_len = mp4.len - mp4.header.len() as u64;
    let mut sent = 0u64;
    let mut ended = false;
    let parts = fetch::segments(store, clip.parts.clone()).map(Some);
    let media = parts
        .chain(futures_util::stream::once(std::future::ready(None)))
        .filter_map(move |fetched| {
            let out = (|| {
                let chunks = match fetched {
                    Some(fetched) => {
                        let (part, ts) = fetched?;
                        remuxer.segment(&ts, part.start, part.discontinuity)?
                    }
                    None => {
                        ended = true;
                        remuxer.finish()?
                    }
                };
                let body: Vec<u8> = chunks.into_iter().flat_map(|c| c.data).collect();
                sent += body.len() as u64;
                if sent > media_len || (ended && sent != media_len) {
                    return Err(ExportError::Changed);
                }
                Ok(Bytes::from(body))
            })();
            std::future::ready(match out {
                Ok(b) if b.is_empty() => None,
                other => Some(other),
            })
        });
    header.chain(media)
}
