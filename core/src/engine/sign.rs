//! `hlsvault sign`: publishes an hour of the archive again, as the archive
//! does (`HourPublisher`, the stream's URL signer plugins included), to
//! renew URLs that expire.

use std::sync::Mutex;

use anyhow::Context;

use super::hours::{signed_by, HourPublisher};
use super::plugins::load_stream_plugins;
use super::store::open_store;
use crate::config::Config;
use hlsvault_hls::{Hour, Kind, Layout, Playlist};
use hlsvault_store::ObjectKind;

/// Publishes `stream`'s hour `label` (`YYYY-MM-DDTHH`, UTC) again: the
/// URL the config hands out for it (presigned: a fresh
/// `index.signed.m3u8` with presigned segment URLs, valid for
/// `url_expiry`), through the stream's URL signer plugins; its line in
/// `hours.log` is updated. Returns the URL.
pub fn sign(config: &Config, stream: &str, label: &str) -> anyhow::Result<String> {
    let cfg = config
        .streams
        .iter()
        .find(|s| s.name == stream)
        .with_context(|| format!("no stream named \"{stream}\" in the config"))?;
    let hour = Hour::parse(label)
        .with_context(|| format!("\"{label}\" is not an hour: write it as YYYY-MM-DDTHH (UTC)"))?;
    let store = open_store(config)?;
    let plugins = Mutex::new(load_stream_plugins(config, cfg)?);
    let layout = Layout::new(stream);
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
        let mut publisher =
            HourPublisher::open(store.clone(), layout, config.storage.urls.clone()).await?;
        let sign = signed_by(&plugins, &key, config.storage.url_expiry);
        publisher
            .publish(hour, &playlist, kind, sign)
            .await?
            .context("the stream's URL signer plugin gave no URL (it failed closed)")
    })
}
