//! A clip as one TS stream: its segments whole, from the keyframe at or
//! before the start to the end of the segment that holds the end, spliced
//! (see [`hlsvault_ts::splice`]) so that a receiver sees continuity
//! counters that go on, and a new time base at each discontinuity. The
//! bytes are rewritten in place, so the stream is exactly [`Clip::size`]
//! long, known before the first byte.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::{fetch, Clip, ExportError};
use hlsvault_store::ObjectStore;
use hlsvault_ts::splice::Splicer;

/// The clip's TS, a segment per item.
pub fn stream(
    store: Arc<dyn ObjectStore>,
    clip: &Clip,
) -> impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static {
    let mut splicer = Splicer::new();
    fetch::segments(store, clip.parts.clone()).map(move |fetched| {
        let (part, bytes) = fetched?;
        let mut ts = BytesMut::from(bytes);
        splicer.segment(part.discontinuity);
        splicer.rewrite(&mut ts);
        Ok(ts.freeze())
    })
}
