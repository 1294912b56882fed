//! Publishing an hour: how its playlist is handed out, and its line in
//! `{stream}/hours.log`. `run` (as each hour's playlist is written) and
//! `sign` (signing an hour again) both go through [`HourPublisher`].
//!
//! Canonical playlists always list segments relatively, so the archive
//! stays portable and can be signed again; `hours.log` names each hour's
//! playlist as a relative path, a public URL, or a presigned URL of a
//! signed copy (`index.signed.m3u8`) whose segment URIs are presigned too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use hlsvault_hls::{Hour, HoursLog, Layout, Playlist, Urls};
use hlsvault_plugin::StreamPlugins;
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};

/// Writes what the hour's playlist needs beside it (a signed copy) and
/// returns the URL `hours.log` gives for the hour.
async fn hand_out(
    urls: &Urls,
    store: &dyn ObjectStore,
    layout: &Layout,
    hour: Hour,
    playlist: &Playlist,
    kind: ObjectKind,
) -> Result<String, StoreError> {
    let index = layout.hour_playlist_key(hour);
    match urls {
        Urls::Relative => Ok(format!("{}/index.m3u8", hour.path())),
        Urls::Public { base } => Ok(format!("{base}/{index}")),
        Urls::Presigned { expiry } => {
            let folder = index.rsplit_once('/').map_or("", |(f, _)| f).to_string();
            let mut signed = playlist.clone();
            for e in signed.entries_mut() {
                e.uri = store
                    .presign_get(&format!("{folder}/{}", e.uri), *expiry)
                    .await?;
            }
            let key = layout.signed_playlist_key(hour);
            store.put(&key, Bytes::from(signed.render()), kind).await?;
            store.presign_get(&key, *expiry).await
        }
    }
}
/// How an hour's URL goes through the stream's URL signer plugins: as the
/// URL of `key`, valid for `expiry` from now. A signer that fails closed
/// gives none (the hours.log line keeps the URL it had); without a signer
/// the URL stays as it is.
pub fn signed_by<'a>(
    plugins: &'a Mutex<StreamPlugins>,
    key: &'a str,
    expiry: Duration,
) -> impl FnOnce(&str) -> Option<String> + 'a {
    let expires_at = (SystemTime::now() + expiry)
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    move |url| {
        let mut plugins = plugins.lock().expect("plugins lock");
        plugins.sign(key, url, expires_at)
    }
}

/// A stream's hours as the store lists them in `hours.log`, and how each
/// is handed out.
pub struct HourPublisher {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    urls: Urls,
    log: HoursLog,
}

impl HourPublisher {
    /// Reads the stream's `hours.log` back (none yet: empty).
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        layout: Layout,
        urls: Urls,
    ) -> Result<Self, StoreError> {
        let log = match store.get(&layout.hours_log_key()).await? {
            Some(b) => HoursLog::parse(&String::from_utf8_lossy(&b)),
            None => HoursLog::default(),
        };
        Ok(HourPublisher {
            store,
            layout,
            urls,
            log,
        })
    }

    /// Publishes the hour whose playlist (already stored) is `playlist`:
    /// writes what its URL needs, and its `hours.log` line when that
    /// changed. `sign` may rewrite the URL (a URL signer plugin); when it
    /// gives none, the line keeps the URL it had. Returns the URL.
    pub async fn publish(
        &mut self,
        hour: Hour,
        playlist: &Playlist,
        kind: ObjectKind,
        sign: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let url = hand_out(
            &self.urls,
            self.store.as_ref(),
            &self.layout,
            hour,
            playlist,
            kind,
        )
        .await?;
        let Some(url) = sign(&url) else {
            return Ok(None);
        };
        if self.log.set(hour, url.clone()) {
            self.write().await?;
        }
        Ok(Some(url))
    }

    /// The hours listed, oldest first.
    pub fn hours(&self) -> Vec<Hour> {
        self.log.hours()
    }

    /// Takes hours off the list (retention deleted them).
    pub async fn forget(&mut self, hours: &[Hour]) -> Result<(), StoreError> {
        hours.iter().for_each(|h| self.log.remove(*h));
        self.write().await
    }

    async fn write(&self) -> Result<(), StoreError> {
        let text = Bytes::from(self.log.render());
        self.store
            .put(&self.layout.hours_log_key(), text, ObjectKind::Index)
            .await
    }
}
