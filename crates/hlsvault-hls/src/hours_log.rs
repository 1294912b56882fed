//! `{stream}/hours.log`: the index of a stream's hours, one line per hour,
//! `LABEL URL`, in hour order. The URL is how the hour's playlist is handed
//! out (a relative path, a public URL or a presigned one).

use std::collections::BTreeMap;
use std::time::Duration;

use hlsvault_ts::Hour;

/// How `hours.log` hands out each hour's playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urls {
    /// Paths relative to the stream's folder.
    Relative,
    /// Absolute URLs under a base that serves the store's keys.
    Public {
        /// The base, without a trailing slash.
        base: String,
    },
    /// Presigned URLs of a signed copy (`index.signed.m3u8`) whose segment
    /// URIs are presigned too, valid this long.
    Presigned {
        /// Validity (at most 7 days for SigV4).
        expiry: Duration,
    },
}

/// The lines of `hours.log`, by hour.
///
/// ```
/// use hlsvault_hls::HoursLog;
/// use hlsvault_ts::Hour;
///
/// let mut log = HoursLog::parse("2026-11-21T10 2026/11/21/10/index.m3u8\n");
/// let nine = Hour::parse("2026-11-21T09").unwrap();
/// assert!(log.set(nine, "2026/11/21/09/index.m3u8".into()));
/// assert_eq!(log.hours(), [nine, nine.next()]);
/// assert!(log.render().starts_with("2026-11-21T09 "));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoursLog {
    lines: BTreeMap<Hour, String>,
}

impl HoursLog {
    /// Reads the text back (lines that are not `LABEL URL` are dropped).
    pub fn parse(text: &str) -> Self {
        HoursLog {
            lines: text
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter_map(|(label, url)| Some((Hour::parse(label)?, url.to_string())))
                .collect(),
        }
    }

    /// Sets an hour's URL; says whether it changed.
    pub fn set(&mut self, hour: Hour, url: String) -> bool {
        self.lines.insert(hour, url.clone()) != Some(url)
    }

    /// Whether the hour is listed.
    pub fn has(&self, hour: Hour) -> bool {
        self.lines.contains_key(&hour)
    }

    /// The hours listed, oldest first.
    pub fn hours(&self) -> Vec<Hour> {
        self.lines.keys().copied().collect()
    }

    /// Takes an hour off the list.
    pub fn remove(&mut self, hour: Hour) {
        self.lines.remove(&hour);
    }

    /// The text.
    pub fn render(&self) -> String {
        self.lines
            .iter()
            .map(|(h, u)| format!("{} {u}\n", h.label()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_log_keeps_one_line_per_hour_in_order() {
        let mut log = HoursLog::parse("2026-11-21T10 10/index.m3u8\ngarbage\n");
        let nine = Hour::parse("2026-11-21T09").unwrap();
        assert!(log.set(nine, "https://x/9?sig=1".into()));
        assert!(!log.set(nine, "https://x/9?sig=1".into()));
        assert!(log.set(nine, "https://x/9?sig=2".into()));
        assert_eq!(
            log.render(),
            "2026-11-21T09 https://x/9?sig=2\n2026-11-21T10 10/index.m3u8\n"
        );
        assert!(log.has(nine));
        assert_eq!(log.hours(), [nine, nine.next()]);
        log.remove(nine);
        assert_eq!(log.hours(), [nine.next()]);
    }
}
