//! A clip's segments read from the store in order, a few ahead of the
//! one being used, each let go once used: memory holds a few segments
//! whatever the clip's length.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::Part;
use hlsvault_store::{ObjectStore, StoreError};

/// Segments fetched ahead of the one being used.
const AHEAD: usize = 2;

/// The bytes of each of `parts`. A segment that is gone, or changed size,
/// since the clip was planned is an error: what was announced of the clip
/// (its length) would be wrong.
pub fn segments(
    store: Arc<dyn ObjectStore>,
    parts: Vec<Part>,
) -> impl Stream<Item = Result<(Part, Bytes), StoreError>> + Send + 'static {
    futures_util::stream::iter(parts)
        .map(move |part| {
            let store = store.clone();
            async move {
                let fetched = store.get(&part.key).await;
                (part, fetched)
            }
        })
        .buffered(AHEAD)
        .map(|(part, fetched)| {
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
            Ok((part, bytes))
        })
}
