//! Stills: the keyframe of the archive nearest a moment, or the first of
//! the newest segment, as a one-picture MP4 (see
//! [`hlsvault_mp4::preview`]). No decoding: the picture is the encoder's.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{plan, ExportError};
use hlsvault_hls::{Kind, Layout, Playlist};
use hlsvault_store::ObjectStore;

/// The still of `stream` at `at`, or of its newest segment.
pub async fn preview(
    store: &dyn ObjectStore,
    stream: &str,
    at: Option<SystemTime>,
) -> Result<Bytes, ExportError> {
    let (key, into) = match at {
        Some(at) => {
            let clip = plan(
                store,
                stream,
                at,
                at + Duration::from_millis(1),
                Duration::MAX,
            )
            .await?;
            let part = &clip.parts[0];
            (
                part.key.clone(),
                at.duration_since(part.start).unwrap_or_default(),
            )
        }
        None => (newest(store, stream).await?, Duration::ZERO),
    };
    let ts = store.get(&key).await?.ok_or(ExportError::Gone(key))?;
    Ok(Bytes::from(hlsvault_mp4::preview::picture(&ts, into)?))
}

/// The key of the newest segment in `stream`'s live window.
async fn newest(store: &dyn ObjectStore, stream: &str) -> Result<String, ExportError> {
    let layout = Layout::new(stream);
    let text = store.get(&layout.live_key()).await?;
    let newest = text.and_then(|text| {
        let live =
            Playlist::parse(Kind::Window(usize::MAX), &String::from_utf8_lossy(&text)).ok()?;
        live.entries().last().map(|e| format!("{stream}/{}", e.uri))
    });
    newest.ok_or_else(|| {
        let now = SystemTime::now();
        ExportError::Nothing {
            stream: stream.to_string(),
            start: now,
            end: now,
            nearest: " (no live window yet)".to_string(),
        }
    })
}
