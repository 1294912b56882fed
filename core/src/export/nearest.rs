//! What is recorded nearest to a range that holds nothing: what a user
//! asking for an empty range needs to ask again.

use std::time::SystemTime;

use hlsvault_hls::{Entry, Hour, HoursLog, Kind, Layout, Playlist};
use hlsvault_store::{ObjectStore, StoreError};

/// Hour playlists read on each side of the range at most.
const HOURS_READ: usize = 2;

/// Says where recording last ended before `start` and next began after
/// `end` (`"; recorded until T, and from T"`), from the hours the stream's
/// `hours.log` lists; empty if nothing is recorded at all.
pub async fn nearest_recorded(
    store: &dyn ObjectStore,
    layout: &Layout,
    start: SystemTime,
    end: SystemTime,
) -> Result<String, StoreError> {
    let Some(log) = store.get(&layout.hours_log_key()).await? else {
        return Ok(String::new());
    };
    let hours = HoursLog::parse(&String::from_utf8_lossy(&log)).hours();
    let entries = |hour: Hour| async move {
        let text = store.get(&layout.hour_playlist_key(hour)).await?;
        let playlist =
            text.and_then(|t| Playlist::parse(Kind::Event, &String::from_utf8_lossy(&t)).ok());
        Ok::<Vec<Entry>, StoreError>(
            playlist.map_or_else(Vec::new, |p| p.entries().cloned().collect()),
        )
    };
    let mut before = None;
    for &hour in hours
        .iter()
        .rev()
        .filter(|h| **h <= Hour::of(start))
        .take(HOURS_READ)
    {
        before = entries(hour)
            .await?
            .iter()
            .rev()
            .map(Entry::end)
            .find(|e| *e <= start);
        if before.is_some() {
            break;
        }
    }
    let mut after = None;
    for &hour in hours
        .iter()
        .filter(|h| **h >= Hour::of(end))
        .take(HOURS_READ)
    {
        after = entries(hour)
            .await?
            .iter()
            .map(|e| e.start)
            .find(|s| *s >= end);
        if after.is_some() {
            break;
        }
    }
    let at = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    Ok(match (before, after) {
        (Some(b), Some(a)) => format!("; recorded until {}, and from {}", at(b), at(a)),
        (Some(b), None) => format!("; recorded until {}", at(b)),
        (None, Some(a)) => format!("; recorded from {}", at(a)),
        (None, None) => String::new(),
    })
}
