//! `hlsvault sign`: signs an hour of the archive again.

use anyhow::Context;

use super::hours::{hand_out, HourPublisher};
use super::store::open_store;
use crate::config::Config;
use hlsvault_hls::Urls;
use hlsvault_hls::{Hour, Kind, Layout, Playlist};
use hlsvault_store::ObjectKind;

/// Signs an hour again: writes a fresh `index.signed.m3u8` for `stream`'s
/// hour `label` (`YYYY-MM-DDTHH`, UTC), updates its line in `hours.log`
/// when the config hands out presigned URLs, and returns the playlist's
/// new presigned URL (valid for `url_expiry`).
pub fn sign(config: &Config, stream: &str, label: &str) -> anyhow::Result<String> {
    if !config.streams.iter().any(|s| s.name == stream) {
        anyhow::bail!("no stream named \"{stream}\" in the config");
    }
    let hour = Hour::parse(label)
        .with_context(|| format!("\"{label}\" is not an hour: write it as YYYY-MM-DDTHH (UTC)"))?;
    let store = open_store(config)?;
    let layout = Layout::new(stream);
    let urls = Urls::Presigned {
        expiry: config.storage.url_expiry,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let key = layout.hour_playlist_key(hour);
        let text = store.get(&key).await?.with_context(|| {
            format!("the store holds no playlist for {stream} at {label} ({key})")
        })?;
        let playlist = Playlist::parse(Kind::Event, &String::from_utf8_lossy(&text))
            .with_context(|| format!("{key} cannot be read"))?;
        let kind = match playlist.is_ended() {
            true => ObjectKind::ClosedPlaylist,
            false => ObjectKind::OpenPlaylist,
        };
        // hours.log hands out presigned URLs only when the config says so;
        // otherwise its line stays as it is.
        let url = match matches!(config.storage.urls, Urls::Presigned { .. }) {
            true => HourPublisher::open(store.clone(), layout, urls)
                .await?
                .publish(hour, &playlist, kind, |url| Some(url.to_string()))
                .await?
                .context("no URL")?,
            false => hand_out(&urls, store.as_ref(), &layout, hour, &playlist, kind).await?,
        };
        Ok(url)
    })
}
