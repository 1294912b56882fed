//! A segment read for a playout: tried again on a store error, with
//! backoff, because a playout cannot wait for the user to ask again.

use std::time::Duration;

use bytes::Bytes;
use hlsvault_store::ObjectStore;

use super::figures::ReplayFigures;

/// Waits before each try after the first.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(750),
    Duration::from_secs(2),
];

/// The segment `key` (read into `buffer` where the store can), or why it
/// cannot be had after the retries (a segment the store does not have is
/// not tried again: it is gone).
pub async fn segment(
    store: &dyn ObjectStore,
    key: &str,
    figures: &ReplayFigures,
    buffer: Vec<u8>,
) -> Result<Bytes, String> {
    let mut waits = BACKOFF.iter();
    let mut buffer = Some(buffer);
    loop {
        let read = store.get_reusing(key, buffer.take().unwrap_or_default());
        let reason = match read.await {
            Ok(Some(bytes)) => return Ok(bytes),
            Ok(None) => return Err("not in the store (retention?)".into()),
            Err(e) => e.to_string(),
        };
        let Some(&wait) = waits.next() else {
            return Err(reason);
        };
        figures
            .retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(%key, %reason, "reading a segment to replay failed; trying again in {}", humantime::format_duration(wait));
        tokio::time::sleep(wait).await;
    }
}
