//! A playlist for any time range: the hours it spans are read by their
//! keys (never by scanning the archive), and their entries that overlap
//! the range are joined, with `#EXT-X-DISCONTINUITY` wherever the media is
//! not contiguous.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use hlsvault_hls::{Entry, Hour, Kind, Layout, Playlist, CONTIGUOUS};
use hlsvault_store::{ObjectStore, StoreError, READS_AT_ONCE};

/// The entries of `stream` that overlap `[start, end)`, as a closed
/// playlist whose URIs are relative to the stream's folder (`VOD` once
/// the range is past, `EVENT` while it reaches beyond now); None when
/// the range holds nothing.
pub async fn range_playlist(
    store: &dyn ObjectStore,
    layout: &Layout,
    start: SystemTime,
    end: SystemTime,
) -> Result<Option<Playlist>, StoreError> {
    let kind = match end <= SystemTime::now() {
        true => Kind::Vod,
        false => Kind::Event,
    };
    let mut out = Playlist::new(kind, 1);
    let mut last: Option<Entry> = None;
    let last_hour = Hour::of(end - Duration::from_nanos(1)).index();
    // An entry that starts in the hour before may reach into the range.
    // The hours are fetched concurrently (a store's latency is paid about
    // once, not once per hour) and joined in order.
    let first_hour = Hour::of(start).before(1).index();
    let mut hours = futures_util::stream::iter((first_hour..=last_hour).map(Hour::from_index))
        .map(|hour| async move {
            let text = store.get(&layout.hour_playlist_key(hour)).await?;
            Ok::<_, StoreError>((hour, text))
        })
        .buffered(READS_AT_ONCE);
    while let Some(fetched) = hours.next().await {
        let (hour, Some(text)) = fetched? else {
            continue;
        };
        let Ok(playlist) = Playlist::parse(Kind::Event, &String::from_utf8_lossy(&text)) else {
            tracing::warn!(
                hour = %hour,
                "an hour's playlist cannot be read; left out of the range"
            );
            continue;
        };
        for e in playlist.entries() {
            if e.end() <= start || e.start >= end {
                continue;
            }
            let contiguous = last.as_ref().is_some_and(|p| {
                let gap = match e.start.duration_since(p.end()) {
                    Ok(d) => d,
                    Err(e) => e.duration(),
                };
                gap <= CONTIGUOUS
            });
            let entry = Entry {
                uri: format!("{}/{}", hour.path(), e.uri),
                discontinuity: last.is_some() && (e.discontinuity || !contiguous),
                ..e.clone()
            };
            last = Some(entry.clone());
            out.push(entry);
        }
    }
    if last.is_none() {
        return Ok(None);
    }
    out.end();
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_store::{FsStore, ObjectKind};

    const NINE: u64 = 1_795_251_600 / 3600; // 2026-11-21T09

    fn at(hour: u64, secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(hour * 3600 + secs)
    }

    /// Stores an hour of 6 s entries starting at the given seconds.
    async fn hour(store: &FsStore, layout: &Layout, h: u64, starts: &[u64], first_seq: u64) {
        let mut p = Playlist::new(Kind::Event, 6);
        for (i, s) in starts.iter().enumerate() {
            p.push(Entry {
                sequence: first_seq + i as u64,
                uri: format!("{s}.ts"),
                duration: 6 * 90_000,
                start: at(h, *s),
                discontinuity: false,
                gap: None,
                tags: Vec::new(),
            });
        }
        p.end();
        let text = bytes::Bytes::from(p.render());
        store
            .put(
                &layout.hour_playlist_key(Hour::from_index(h)),
                text,
                ObjectKind::ClosedPlaylist,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn joins_hours_and_marks_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        let layout = Layout::new("ch1");
        // 09:59:48 and 09:59:54 run into 10:00:00; then a gap to 10:00:30.
        hour(&store, &layout, NINE, &[3588, 3594], 10).await;
        hour(&store, &layout, NINE + 1, &[0, 30], 12).await;
        let p = range_playlist(&store, &layout, at(NINE, 3590), at(NINE + 1, 31))
            .await
            .unwrap()
            .unwrap();
        let got: Vec<(String, bool)> = p
            .entries()
            .map(|e| (e.uri.clone(), e.discontinuity))
            .collect();
        assert_eq!(
            got,
            [
                ("2026/11/21/09/3588.ts".to_string(), false),
                ("2026/11/21/09/3594.ts".to_string(), false),
                ("2026/11/21/10/0.ts".to_string(), false),
                ("2026/11/21/10/30.ts".to_string(), true),
            ]
        );
        assert!(p.is_ended());
        assert!(
            p.render().contains("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            "a past range"
        );
        // A range that reaches beyond now may still grow.
        let open = range_playlist(
            &store,
            &layout,
            at(NINE, 3590),
            SystemTime::now() + Duration::from_secs(60),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(open.render().contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        // Nothing there: no playlist.
        let none = range_playlist(&store, &layout, at(NINE + 5, 0), at(NINE + 6, 0))
            .await
            .unwrap();
        assert!(none.is_none());
    }
}
