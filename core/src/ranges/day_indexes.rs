//! The day indexes: the recorder notes each hour in its day's index as
//! the hour closes, retention deletes the indexes of the days it emptied,
//! and `hlsvault reindex` writes them all again from the hour playlists.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{day_index, listed_hours, runs_of_playlist};
use hlsvault_hls::{DayIndex, Hour, HourIndex, Layout, Playlist};
use hlsvault_store::{ObjectKind, ObjectStore, StoreError, READS_AT_ONCE};

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

    /// Notes a closed hour's runs, markers and size (`bytes`, where
    /// known) in its day's index.
    pub async fn note(
        &mut self,
        hour: Hour,
        playlist: &Playlist,
        bytes: Option<u64>,
    ) -> Result<(), StoreError> {
        let key = self.layout.day_index_key(hour);
        let (_, index) = match &mut self.day {
            Some(day) if day.0 == key => day,
            day => day.insert((key.clone(), day_index(self.store.as_ref(), &key).await?)),
        };
        let index_of_hour = HourIndex {
            bytes,
            ..HourIndex::of_entries(playlist.entries())
        };
        index.set(hour, index_of_hour);
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
/// (the closed hours: an open one may still grow), each hour's size
/// from a listing of its folder. Returns the days written.
pub async fn reindex(store: &dyn ObjectStore, layout: &Layout) -> Result<usize, StoreError> {
    let hours = listed_hours(store, layout).await?;
    let mut days: BTreeMap<String, DayIndex> = BTreeMap::new();
    let mut read = futures_util::stream::iter(hours)
        .map(|h| async move {
            let told = runs_of_playlist(store, layout, h).await?;
            let bytes = hour_bytes(store, layout, h).await?.total();
            Ok::<_, StoreError>((h, told, bytes))
        })
        .buffered(READS_AT_ONCE);
    while let Some(hour) = read.next().await {
        let (hour, told, bytes) = hour?;
        if told.closed {
            let index = HourIndex {
                bytes: Some(bytes),
                ..told.index
            };
            days.entry(layout.day_index_key(hour))
                .or_default()
                .set(hour, index);
        }
    }
    for (key, index) in &days {
        store
            .put(key, Bytes::from(index.render()), ObjectKind::Index)
            .await?;
    }
    Ok(days.len())
}

/// The sizes of `hours` (retention by size): from their days' indexes,
/// and by listing the folder of an hour an index does not size (an hour
/// still open, or indexed before sizes were).
pub async fn hour_sizes(
    store: &dyn ObjectStore,
    layout: &Layout,
    hours: &[Hour],
) -> Result<BTreeMap<Hour, u64>, StoreError> {
    let mut days: BTreeMap<String, DayIndex> = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    for &hour in hours {
        let key = layout.day_index_key(hour);
        let index = match days.entry(key) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let read = day_index(store, v.key()).await?;
                v.insert(read)
            }
        };
        let bytes = match index.hour(hour).and_then(|i| i.bytes) {
            Some(b) => b,
            None => hour_bytes(store, layout, hour).await?.total(),
        };
        sizes.insert(hour, bytes);
    }
    Ok(sizes)
}

/// What an hour's segments (`.ts`) and playlist hold, by listing its
/// folder: its size as the recorder counts it.
pub async fn hour_bytes(
    store: &dyn ObjectStore,
    layout: &Layout,
    hour: Hour,
) -> Result<HourBytes, StoreError> {
    let playlist = layout.hour_playlist_key(hour);
    let listed = store
        .list(&format!("{}/", layout.hour_folder(hour)))
        .await?;
    let mut bytes = HourBytes::default();
    for object in listed {
        if object.key == playlist {
            bytes.playlist += object.size;
        } else if object.key.ends_with(".ts") {
            bytes.segments += object.size;
        }
    }
    Ok(bytes)
}

/// An hour's size, by its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourBytes {
    pub segments: u64,
    pub playlist: u64,
}

impl HourBytes {
    /// Both.
    pub fn total(self) -> u64 {
        self.segments + self.playlist
    }
}
