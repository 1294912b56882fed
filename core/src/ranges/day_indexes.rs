//! The day indexes: the recorder notes each hour in its day's index as
//! the hour closes, retention deletes the indexes of the days it emptied,
//! and `hlsvault reindex` writes them all again from the hour playlists.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{day_index, listed_hours, runs_of_playlist, FETCH_CONCURRENCY};
use hlsvault_hls::{DayIndex, Hour, HourIndex, Layout, Playlist};
use hlsvault_store::{ObjectKind, ObjectStore, StoreError};

/// The day index a recorder keeps up to date as its hours close: the
/// current day's is kept in memory (its writes go through the upload
/// queue, so reading it back could miss one still queued).
pub struct DayIndexes {
    store: std::sync::Arc<dyn ObjectStore>,
    layout: Layout,
    day: Option<(String, DayIndex)>,
}

impl DayIndexes {
    /// The stream's day indexes, none read yet.
    pub fn new(store: std::sync::Arc<dyn ObjectStore>, layout: Layout) -> Self {
        DayIndexes {
            store,
            layout,
            day: None,
        }
    }

    /// Notes a closed hour's runs in its day's index.
    pub async fn note(&mut self, hour: Hour, playlist: &Playlist) -> Result<(), StoreError> {
        let key = self.layout.day_index_key(hour);
        let (_, index) = match &mut self.day {
            Some(day) if day.0 == key => day,
            day => day.insert((key.clone(), day_index(self.store.as_ref(), &key).await?)),
        };
        index.set(hour, HourIndex::of_entries(playlist.entries()));
        let text = Bytes::from(index.render());
        self.store.put(&key, text, ObjectKind::Index).await
    }

    /// Deletes the indexes of days that retention emptied: `deleted` are
    /// the hours it deleted, `kept` the hours left.
    pub async fn forget(&mut self, deleted: &[Hour], kept: &[Hour]) -> Result<(), StoreError> {
        let key = |h: &Hour| self.layout.day_index_key(*h);
        let mut emptied: Vec<String> = deleted
            .iter()
            .map(key)
            .filter(|k| !kept.iter().any(|h| key(h) == *k))
            .collect();
        emptied.dedup();
        for k in emptied {
            if self.day.as_ref().is_some_and(|d| d.0 == k) {
                self.day = None;
            }
            self.store.delete(&k).await?;
        }
        Ok(())
    }
}

/// Writes every day index of the stream again from its hour playlists
/// (the closed hours: an open one may still grow). Returns the days
/// written.
pub async fn reindex(store: &dyn ObjectStore, layout: &Layout) -> Result<usize, StoreError> {
    let hours = listed_hours(store, layout).await?;
    let mut days: BTreeMap<String, DayIndex> = BTreeMap::new();
    let mut read = futures_util::stream::iter(hours)
        .map(|h| async move { Ok::<_, StoreError>((h, runs_of_playlist(store, layout, h).await?)) })
        .buffered(FETCH_CONCURRENCY);
    while let Some(hour) = read.next().await {
        let (hour, told) = hour?;
        if told.closed {
            days.entry(layout.day_index_key(hour))
                .or_default()
                .set(hour, told.index);
        }
    }
    for (key, index) in &days {
        store
            .put(key, Bytes::from(index.render()), ObjectKind::Index)
            .await?;
    }
    Ok(days.len())
}
