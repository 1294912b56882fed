//! A clip as one TS stream: its segments whole, from the keyframe at or
//! before the start to the end of the segment that holds the end, spliced
//! (see [`hlsvault_ts::splice`]) so that a receiver sees continuity
//! counters that go on, and a new time base at each discontinuity. The
//! bytes are rewritten in place, so the stream is exactly [`Clip::size`]
//! long, known before the first byte. Segments are fetched a few ahead and
//! let go once sent: memory holds a few segments whatever the length.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::Clip;
use hlsvault_store::{ObjectStore, StoreError};
use hlsvault_ts::splice::Splicer;

/// Segments fetched ahead of the one being sent.
const AHEAD: usize = 2;

/// The clip's TS, a segment per item. A segment that is gone, or changed
/// size, since the clip was planned ends the stream with an error (its
/// announced length would be wrong).
pub fn stream(
    store: Arc<dyn ObjectStore>,
    clip: &Clip,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static {
    let parts = clip.parts.clone();
    let mut splicer = Splicer::new();
    futures_util::stream::iter(parts)
        .map(move |part| {
            let store = store.clone();
            async move {
                let fetched = store.get(&part.key).await;
                (part, fetched)
            }
        })
        .buffered(AHEAD)
        .map(move |(part, fetched)| {
            let changed = |reason: &str| StoreError::Backend {
                op: "export",
                key: part.key.clone(),
                reason: reason.to_string(),
                source: None,
            };
            let bytes = fetched?.ok_or_else(|| changed("the segment is gone (retention?)"))?;
            if bytes.len() as u64 != part.size {
                return Err(changed("the segment changed size since the clip began"));
            }
            let mut ts = BytesMut::from(bytes);
            splicer.segment(part.discontinuity);
            splicer.rewrite(&mut ts);
            Ok(ts.freeze())
        })
}
