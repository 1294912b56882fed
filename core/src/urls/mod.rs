//! Playback URLs. Canonical playlists always list segments relatively, so
//! the archive stays portable and can be signed again; what players are
//! handed comes from here: `{stream}/hours.log` names each hour's playlist
//! as a relative path, a public URL, or a presigned URL of a signed copy
//! (`index.signed.m3u8`) whose segment URIs are presigned too.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{StorageConfig, UrlMode};
use hlsvault_hls::{Layout, Playlist};
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};

/// How an hour's playlist is handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urls {
    /// Paths relative to the stream's folder.
    Relative,
    /// Absolute URLs under a base that serves the store's keys.
    Public {
        /// The base, without a trailing slash.
        base: String,
    },
    /// Presigned URLs, valid this long.
    Presigned {
        /// Validity (at most 7 days for SigV4).
        expiry: Duration,
    },
}

impl Urls {
    /// The mode the storage config asks for.
    pub fn from_config(s: &StorageConfig) -> Self {
        match s.urls {
            UrlMode::Relative => Urls::Relative,
            UrlMode::Public => Urls::Public {
                base: s
                    .public_base_url
                    .clone()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string(),
            },
            UrlMode::Presigned => Urls::Presigned {
                expiry: s.url_expiry,
            },
        }
    }

    /// Writes what the hour's playlist needs beside it (a signed copy) and
    /// returns the URL `hours.log` gives for the hour.
    pub async fn publish_hour(
        &self,
        store: &dyn ObjectStore,
        layout: &Layout,
        hour: u64,
        playlist: &Playlist,
        kind: ObjectKind,
    ) -> Result<String, StoreError> {
        let index = layout.hour_playlist_key(hour);
        match self {
            Urls::Relative => Ok(format!("{}/index.m3u8", Layout::hour_path(hour))),
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
}

/// `{stream}/hours.log`: one line per hour, `LABEL URL`, in hour order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoursLog {
    lines: BTreeMap<String, String>,
}

impl HoursLog {
    /// Reads the text back (lines that are not `LABEL URL` are dropped).
    pub fn parse(text: &str) -> Self {
        HoursLog {
            lines: text
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(label, url)| (label.to_string(), url.to_string()))
                .collect(),
        }
    }

    /// Sets an hour's URL; says whether it changed.
    pub fn set(&mut self, hour: u64, url: String) -> bool {
        self.lines.insert(Layout::hour_label(hour), url.clone()) != Some(url)
    }

    /// Whether the hour is listed.
    pub fn has(&self, hour: u64) -> bool {
        self.lines.contains_key(&Layout::hour_label(hour))
    }

    /// The hours listed, oldest first.
    pub fn hours(&self) -> Vec<u64> {
        self.lines
            .keys()
            .filter_map(|label| humantime::parse_rfc3339(&format!("{label}:00:00Z")).ok())
            .map(hlsvault_ts::segment::hour_of)
            .collect()
    }

    /// Takes an hour off the list.
    pub fn remove(&mut self, hour: u64) {
        self.lines.remove(&Layout::hour_label(hour));
    }

    /// The text.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|(l, u)| format!("{l} {u}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_log_keeps_one_line_per_hour_in_order() {
        let mut log = HoursLog::parse("2026-11-21T10 10/index.m3u8\ngarbage\n");
        let nine = 1_795_251_600 / 3600; // 2026-11-21T09
        assert!(log.set(nine, "https://x/9?sig=1".into()));
        assert!(!log.set(nine, "https://x/9?sig=1".into()));
        assert!(log.set(nine, "https://x/9?sig=2".into()));
        assert_eq!(
            log.render(),
            "2026-11-21T09 https://x/9?sig=2\n2026-11-21T10 10/index.m3u8\n"
        );
        assert!(log.has(nine));
        assert_eq!(log.hours(), [nine, nine + 1]);
        log.remove(nine);
        assert_eq!(log.hours(), [nine + 1]);
    }
}
