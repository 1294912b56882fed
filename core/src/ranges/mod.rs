//! What a stream's archive holds over any stretch of time, read from the
//! store: `hours.log` says which hours exist; the day indexes give the
//! runs of closed hours; an hour they lack, and the newest hour (which
//! may still grow), is read from its playlist. A month of one stream is
//! about 30 small objects.
//!
//! The recorder notes each hour in its day's index as the hour closes
//! ([`DayIndexes`]); `hlsvault reindex` writes them again from the hour
//! playlists, which stay the truth. [`Report`] is what `GET
//! /streams/{name}/ranges` and `hlsvault ranges` answer.

mod day_indexes;
mod report;

pub use day_indexes::{hour_bytes, hour_sizes, reindex, DayIndexes, HourBytes};
pub use report::{time, Catalogue, Report, Stretch};

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use hlsvault_hls::{DayIndex, Gap, Hour, HourIndex, HoursLog, Kind, Layout, Playlist, Ranges};
use hlsvault_store::{ObjectStore, StoreError, READS_AT_ONCE};

/// The hours `hours.log` lists (none if it is missing).
async fn listed_hours(store: &dyn ObjectStore, layout: &Layout) -> Result<Vec<Hour>, StoreError> {
    Ok(match store.get(&layout.hours_log_key()).await? {
        Some(text) => HoursLog::parse(&String::from_utf8_lossy(&text)).hours(),
        None => Vec::new(),
    })
}

/// An hour as its playlist tells it.
#[derive(Default)]
struct HourRuns {
    index: HourIndex,
    /// The playlist is ended (`#EXT-X-ENDLIST`): the hour is closed.
    closed: bool,
}

/// What an hour holds, from its playlist (nothing if it is missing or
/// unreadable).
async fn runs_of_playlist(
    store: &dyn ObjectStore,
    layout: &Layout,
    hour: Hour,
) -> Result<HourRuns, StoreError> {
    let Some(text) = store.get(&layout.hour_playlist_key(hour)).await? else {
        return Ok(HourRuns::default());
    };
    match Playlist::parse(Kind::Event, &String::from_utf8_lossy(&text)) {
        Ok(p) => Ok(HourRuns {
            index: HourIndex::of_entries(p.entries()),
            closed: p.is_ended(),
        }),
        Err(e) => {
            tracing::warn!(hour = %hour, error = %e, "an hour's playlist cannot be read; left out of the ranges");
            Ok(HourRuns::default())
        }
    }
}

/// A day index (empty if it is missing).
async fn day_index(store: &dyn ObjectStore, key: &str) -> Result<DayIndex, StoreError> {
    Ok(match store.get(key).await? {
        Some(text) => DayIndex::parse(&String::from_utf8_lossy(&text)),
        None => DayIndex::default(),
    })
}

/// The recorded ranges of the stream within `[start, end)`, and the gaps
/// between them.
pub async fn read(
    store: &dyn ObjectStore,
    layout: &Layout,
    start: SystemTime,
    end: SystemTime,
) -> Result<Ranges, StoreError> {
    let listed = listed_hours(store, layout).await?;
    read_listed(store, layout, listed, start, end).await
}

/// What the store says of a stream's archive at a glance (`serve` shows
/// it, with or without a recorder in the same process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glance {
    /// Hours `hours.log` lists.
    pub hours: usize,
    /// The newest gap between recorded ranges of the last `window`.
    pub last_gap: Option<Gap>,
}

/// The stream's [`Glance`] at `now`, looking back `window` for gaps.
pub async fn glance(
    store: &dyn ObjectStore,
    layout: &Layout,
    now: SystemTime,
    window: Duration,
) -> Result<Glance, StoreError> {
    let listed = listed_hours(store, layout).await?;
    let hours = listed.len();
    let since = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let ranges = read_listed(store, layout, listed, since, now).await?;
    Ok(Glance {
        hours,
        last_gap: ranges.gaps.last().copied(),
    })
}

/// [`read`], given the hours `hours.log` lists.
async fn read_listed(
    store: &dyn ObjectStore,
    layout: &Layout,
    listed: Vec<Hour>,
    start: SystemTime,
    end: SystemTime,
) -> Result<Ranges, StoreError> {
    let newest = listed.last().copied();
    // An entry that starts in the hour before may reach into the range.
    let (first, last) = (
        Hour::of(start).before(1),
        Hour::of(end - Duration::from_nanos(1)),
    );
    let hours: Vec<Hour> = listed
        .into_iter()
        .filter(|h| (first..=last).contains(h))
        .collect();
    let day_keys: Vec<String> = {
        let mut keys: Vec<String> = hours
            .iter()
            .filter(|h| Some(**h) != newest)
            .map(|h| layout.day_index_key(*h))
            .collect();
        keys.dedup();
        keys
    };
    let days: BTreeMap<String, DayIndex> = futures_util::stream::iter(day_keys)
        .map(|key| async move { Ok::<_, StoreError>((key.clone(), day_index(store, &key).await?)) })
        .buffered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let indexed = |h: Hour| {
        (Some(h) != newest)
            .then(|| days.get(&layout.day_index_key(h))?.hour(h))
            .flatten()
    };
    let unindexed: Vec<Hour> = hours
        .iter()
        .copied()
        .filter(|h| indexed(*h).is_none())
        .collect();
    let mut read: BTreeMap<Hour, HourRuns> = futures_util::stream::iter(unindexed)
        .map(|h| async move { Ok::<_, StoreError>((h, runs_of_playlist(store, layout, h).await?)) })
        .buffered(READS_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let told = hours.iter().map(|h| match indexed(*h) {
        Some(index) => index.clone(),
        None => read.remove(h).map(|r| r.index).unwrap_or_default(),
    });
    Ok(Ranges::of_hours(told, start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hlsvault_hls::{Entry, GapCause};
    use hlsvault_store::{MemoryStore, ObjectKind};

    const NINE: u64 = 1_795_251_600 / 3600; // 2026-11-21T09

    fn at(hour: u64, secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(hour * 3600 + secs)
    }

    /// Stores hour `h` with 6 s entries at `starts` (a discontinuity with
    /// `gap` before the entry at `marked`), closed but the newest (11),
    /// and lists it in `hours.log`.
    async fn hour(store: &MemoryStore, h: u64, starts: &[u64], marked: Option<(u64, GapCause)>) {
        let layout = Layout::new("ch1");
        let mut p = Playlist::new(Kind::Event, 6);
        for &s in starts {
            let gap = marked.filter(|m| m.0 == s).map(|m| m.1);
            p.push(Entry {
                sequence: h * 1000 + s,
                uri: format!("{s}.ts"),
                duration: 6 * 90_000,
                start: at(h, s),
                discontinuity: gap.is_some(),
                gap,
                tags: Vec::new(),
            });
        }
        if h < NINE + 2 {
            p.end();
        }
        let hour = Hour::from_index(h);
        let key = layout.hour_playlist_key(hour);
        let text = Bytes::from(p.render());
        store
            .put(&key, text, ObjectKind::OpenPlaylist)
            .await
            .unwrap();
        let mut log = match store.get(&layout.hours_log_key()).await.unwrap() {
            Some(t) => HoursLog::parse(&String::from_utf8_lossy(&t)),
            None => HoursLog::default(),
        };
        log.set(hour, format!("{}/index.m3u8", hour.path()));
        let text = Bytes::from(log.render());
        let key = layout.hours_log_key();
        store.put(&key, text, ObjectKind::Index).await.unwrap();
    }

    #[tokio::test]
    async fn closed_hours_come_from_the_day_index_and_agree_with_their_playlists() {
        let store = MemoryStore::default();
        let layout = Layout::new("ch1");
        // 09:59:48 runs on into 10:00; a stall at 10:00:06; the newest hour
        // (11) after the recorder was down.
        hour(&store, NINE, &[3588, 3594], None).await;
        hour(&store, NINE + 1, &[0, 30], Some((30, GapCause::Stall))).await;
        hour(&store, NINE + 2, &[60], Some((60, GapCause::Restart))).await;
        let (start, end) = (at(NINE, 0), at(NINE + 3, 0));
        let from_playlists = read(&store, &layout, start, end).await.unwrap();
        let causes: Vec<_> = from_playlists.gaps.iter().map(|g| g.cause).collect();
        assert_eq!(causes, [GapCause::Stall, GapCause::Restart]);
        assert_eq!(from_playlists.recorded[0].start, at(NINE, 3588));
        assert_eq!(from_playlists.recorded[0].end, at(NINE + 1, 6));

        // Indexed, the same answer; the index is what is read for closed
        // hours (an index that says otherwise wins), never for the newest.
        assert_eq!(reindex(&store, &layout).await.unwrap(), 1);
        assert_eq!(
            read(&store, &layout, start, end).await.unwrap(),
            from_playlists
        );
        let key = layout.day_index_key(Hour::from_index(NINE));
        let text = String::from_utf8(store.get(&key).await.unwrap().unwrap().to_vec()).unwrap();
        assert!(!text.contains("2026-11-21T11"), "{text}");
        let doctored = text.replace(" stall\n", " store_outage\n");
        store
            .put(&key, Bytes::from(doctored), ObjectKind::Index)
            .await
            .unwrap();
        let gaps = read(&store, &layout, start, end).await.unwrap().gaps;
        assert_eq!(gaps[0].cause, GapCause::StoreOutage);
        assert_eq!(gaps[1].cause, GapCause::Restart);
    }
}
