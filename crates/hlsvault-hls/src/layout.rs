//! Where a stream's objects live in the store:
//!
//! ```text
//! {stream}/{YYYY}/{MM}/{DD}/{HH}/{segment}.ts
//! {stream}/{YYYY}/{MM}/{DD}/{HH}/index.m3u8
//! {stream}/{YYYY}/{MM}/{DD}/ranges.txt
//! {stream}/live.m3u8
//! {stream}/hours.log
//! {stream}/holds.txt
//! ```

use std::time::SystemTime;

use hlsvault_ts::Hour;

/// Object keys of one stream.
///
/// ```
/// use hlsvault_hls::{Hour, Layout};
///
/// let ch1 = Layout::new("ch1");
/// let hour = Hour::parse("2026-11-21T09").unwrap();
/// assert_eq!(ch1.hour_playlist_key(hour), "ch1/2026/11/21/09/index.m3u8");
/// assert_eq!(ch1.live_key(), "ch1/live.m3u8");
/// assert_eq!(Layout::live_uri(hour, "a.ts"), "2026/11/21/09/a.ts");
/// ```
#[derive(Debug, Clone)]
pub struct Layout {
    stream: String,
}

impl Layout {
    /// The layout of the stream named `stream`.
    pub fn new(stream: &str) -> Self {
        Layout {
            stream: stream.to_string(),
        }
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The default name of a segment: `MMSS.mmm-SEQUENCE.ts`, unique across
    /// restarts (the sequence never repeats) and sorted by time in its hour.
    pub fn segment_name(sequence: u64, start: SystemTime) -> String {
        let s = humantime::format_rfc3339_millis(start).to_string();
        format!("{}{}{}-{sequence}.ts", &s[14..16], &s[17..19], &s[19..23])
    }

    /// The folder of an hour: every key in it starts with this and `/`.
    pub fn hour_folder(&self, hour: Hour) -> String {
        format!("{}/{}", self.stream, hour.path())
    }

    /// Key of a segment in an hour.
    pub fn segment_key(&self, hour: Hour, name: &str) -> String {
        format!("{}/{name}", self.hour_folder(hour))
    }

    /// Key of an hour's playlist.
    pub fn hour_playlist_key(&self, hour: Hour) -> String {
        format!("{}/index.m3u8", self.hour_folder(hour))
    }

    /// Key of the index of the day an hour is in (outside every hour's
    /// folder: deleting an hour leaves it).
    ///
    /// ```
    /// use hlsvault_hls::{Hour, Layout};
    /// let nine = Hour::parse("2026-11-21T09").unwrap();
    /// assert_eq!(Layout::new("ch1").day_index_key(nine), "ch1/2026/11/21/ranges.txt");
    /// ```
    pub fn day_index_key(&self, hour: Hour) -> String {
        let path = hour.path();
        let day = path.rsplit_once('/').map_or(path.as_str(), |(day, _)| day);
        format!("{}/{day}/ranges.txt", self.stream)
    }

    /// Key of an hour's signed copy (presigned segment URIs).
    pub fn signed_playlist_key(&self, hour: Hour) -> String {
        format!("{}/index.signed.m3u8", self.hour_folder(hour))
    }

    /// Key of the live window.
    pub fn live_key(&self) -> String {
        format!("{}/live.m3u8", self.stream)
    }

    /// Key of the list of hours.
    pub fn hours_log_key(&self) -> String {
        format!("{}/hours.log", self.stream)
    }

    /// Key of the stream's holds.
    pub fn holds_key(&self) -> String {
        format!("{}/holds.txt", self.stream)
    }

    /// URI of a segment as listed in `live.m3u8`.
    pub fn live_uri(hour: Hour, name: &str) -> String {
        format!("{}/{name}", hour.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_utc_hour() {
        let l = Layout::new("ch1");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_255_197_700);
        let hour = Hour::of(t);
        assert_eq!(l.hour_playlist_key(hour), "ch1/2026/11/21/09/index.m3u8");
        assert_eq!(Layout::segment_name(42, t), "5957.700-42.ts");
        assert_eq!(l.segment_key(hour, "a.ts"), "ch1/2026/11/21/09/a.ts");
        assert_eq!(Layout::live_uri(hour.next(), "b.ts"), "2026/11/21/10/b.ts");
        assert_eq!(
            l.signed_playlist_key(hour),
            "ch1/2026/11/21/09/index.signed.m3u8"
        );
    }
}
