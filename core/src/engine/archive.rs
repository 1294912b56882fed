//! Writes one stream's segments and playlists to the store, in order: a
//! playlist is written only after every segment it lists is stored.

use std::sync::Arc;

use bytes::Bytes;

use super::stats::StreamStats;
use crate::playlist::{Entry, Kind, Layout, Playlist};
use crate::segment::Segment;
use crate::storage::{ObjectKind, ObjectStore, StoreError};

/// The open hour: its number and playlist.
struct OpenHour {
    hour: u64,
    playlist: Playlist,
}

/// One stream's archive in the store.
pub struct StreamArchive {
    store: Arc<dyn ObjectStore>,
    layout: Layout,
    target_secs: u64,
    stats: Arc<StreamStats>,
    hour: Option<OpenHour>,
    live: Playlist,
    hours_log: String,
    next_sequence: u64,
    /// The next entry follows a restart or a lost segment: mark it.
    gap: bool,
}

impl StreamArchive {
    /// Opens the stream's archive, continuing from what the store holds: the
    /// live window and the media sequence carry on after a restart.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        stream: &str,
        target_secs: u64,
        window: usize,
        stats: Arc<StreamStats>,
    ) -> Result<Self, StoreError> {
        let layout = Layout::new(stream);
        let mut live = Playlist::new(Kind::Window(window), target_secs);
        if let Some(text) = store.get(&layout.live_key()).await? {
            match Playlist::parse(Kind::Window(window), &String::from_utf8_lossy(&text)) {
                Ok(p) => live = p,
                Err(e) => {
                    tracing::warn!(key = layout.live_key(), error = %e, "cannot read the live playlist back; starting a new window")
                }
            }
        }
        let hours_log = match store.get(&layout.hours_log_key()).await? {
            Some(b) => String::from_utf8_lossy(&b).into_owned(),
            None => String::new(),
        };
        let next_sequence = live.last().map_or(0, |e| e.sequence + 1);
        Ok(StreamArchive {
            store,
            layout,
            target_secs,
            stats,
            hour: None,
            gap: live.last().is_some(),
            live,
            hours_log,
            next_sequence,
        })
    }

    /// Stores a segment and updates the hour's playlist and the live window.
    pub async fn add(&mut self, seg: Segment) -> Result<(), StoreError> {
        let hour = seg.hour();
        if self.hour.as_ref().is_none_or(|h| h.hour != hour) {
            let opened = match self.close_hour().await {
                Ok(()) => self.open_hour(hour).await,
                Err(e) => Err(e),
            };
            if let Err(e) = opened {
                self.stats.lost_segment();
                self.gap = true;
                return Err(e);
            }
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let name = Layout::segment_name(sequence, seg.start);
        let key = self.layout.segment_key(hour, &name);
        let (bytes, duration, start, discontinuity) =
            (seg.data.len(), seg.duration, seg.start, seg.discontinuity);
        if let Err(e) = self
            .put(&key, Bytes::from(seg.data), ObjectKind::Segment)
            .await
        {
            // The playlists never list a segment that is not stored.
            self.gap = true;
            return Err(e);
        }
        self.stats.segment(bytes, duration);
        let entry = Entry {
            sequence,
            uri: name.clone(),
            duration,
            start,
            discontinuity: discontinuity || std::mem::take(&mut self.gap),
        };
        let open = self.hour.as_mut().expect("an hour is open");
        open.playlist.push(entry.clone());
        self.live.push(Entry {
            uri: Layout::live_uri(hour, &name),
            ..entry
        });
        self.write_hour(false).await?;
        self.write_live().await
    }

    /// Flushes the playlists. With `end`, the hour and the live window get
    /// `#EXT-X-ENDLIST` (the source has ended); without it they stay open
    /// for a restart to continue.
    pub async fn finish(&mut self, end: bool) -> Result<(), StoreError> {
        if end {
            self.close_hour().await?;
            self.live.end();
        } else {
            self.write_hour(false).await?;
        }
        self.write_live().await
    }

    /// Stores an object; a failure is counted (as a lost segment for segments).
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        let result = self.store.put(key, body, kind).await;
        if result.is_err() {
            self.stats.store_error(kind == ObjectKind::Segment);
        }
        result
    }

    /// Reads an object; a failure is counted.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let result = self.store.get(key).await;
        if result.is_err() {
            self.stats.store_error(false);
        }
        result
    }

    async fn open_hour(&mut self, hour: u64) -> Result<(), StoreError> {
        let key = self.layout.hour_playlist_key(hour);
        let playlist = match self.get(&key).await? {
            Some(text) => match Playlist::parse(Kind::Event, &String::from_utf8_lossy(&text)) {
                Ok(mut p) => {
                    tracing::info!(%key, entries = p.entries().count(), "continuing the hour's playlist from the store");
                    p.reopen();
                    self.gap = true;
                    if let Some(last) = p.last() {
                        self.next_sequence = self.next_sequence.max(last.sequence + 1);
                    }
                    p
                }
                Err(e) => {
                    // Never overwrite what we cannot read: keep it aside.
                    let aside = format!(
                        "{key}.unreadable-{}",
                        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                    );
                    tracing::error!(%key, error = %e, %aside, "hour playlist in the store is unreadable; moving it aside");
                    self.put(&aside, text, ObjectKind::Index).await?;
                    Playlist::new(Kind::Event, self.target_secs)
                }
            },
            None => {
                let line = format!(
                    "{} {}/index.m3u8\n",
                    Layout::hour_label(hour),
                    Layout::hour_path(hour)
                );
                self.hours_log.push_str(&line);
                self.put(
                    &self.layout.hours_log_key(),
                    Bytes::from(self.hours_log.clone()),
                    ObjectKind::Index,
                )
                .await?;
                Playlist::new(Kind::Event, self.target_secs)
            }
        };
        self.hour = Some(OpenHour { hour, playlist });
        Ok(())
    }

    async fn close_hour(&mut self) -> Result<(), StoreError> {
        if self.hour.is_some() {
            self.write_hour(true).await?;
            self.hour = None;
        }
        Ok(())
    }

    async fn write_hour(&mut self, end: bool) -> Result<(), StoreError> {
        let Some(open) = &mut self.hour else {
            return Ok(());
        };
        if end {
            open.playlist.end();
        }
        let kind = if end {
            ObjectKind::ClosedPlaylist
        } else {
            ObjectKind::OpenPlaylist
        };
        let key = self.layout.hour_playlist_key(open.hour);
        let text = Bytes::from(open.playlist.render());
        self.put(&key, text, kind).await
    }

    async fn write_live(&mut self) -> Result<(), StoreError> {
        let text = Bytes::from(self.live.render());
        self.put(&self.layout.live_key(), text, ObjectKind::OpenPlaylist)
            .await
    }
}
