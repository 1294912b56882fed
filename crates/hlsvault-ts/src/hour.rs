//! The UTC hour: the unit the archive is folded in. Segments never span
//! two hours, each hour has its folder and playlist, and `hours.log`, the
//! command line and retention name hours by it.

use std::fmt;
use std::time::{Duration, SystemTime};

/// One UTC hour (UTC has no leap hours: an hour is 3600 s of Unix time).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_ts::Hour;
///
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_255_197); // 2026-11-21T09:59:57Z
/// let hour = Hour::of(t);
/// assert_eq!(hour.label(), "2026-11-21T09");
/// assert_eq!(hour.path(), "2026/11/21/09");
/// assert_eq!(Hour::parse("2026-11-21T09"), Some(hour));
/// assert_eq!(hour.next().label(), "2026-11-21T10");
/// assert!(hour.start() <= t && t < hour.next().start());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(u64);

/// Seconds in an hour.
const SECS: u64 = 3600;

/// The last hour RFC 3339 can write: 9999-12-31T23.
const LAST: u64 = 70_389_527;

impl Hour {
    /// The hour a wall-clock time falls in (times before 1970: the first;
    /// after the year 9999: the last).
    pub fn of(t: SystemTime) -> Self {
        Hour::from_index(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / SECS),
        )
    }

    /// The hour `n` hours after 1970-01-01T00 (at most 9999-12-31T23).
    pub fn from_index(n: u64) -> Self {
        Hour(n.min(LAST))
    }

    /// Hours since 1970-01-01T00.
    pub fn index(self) -> u64 {
        self.0
    }

    /// Reads `YYYY-MM-DDTHH` (as [`Hour::label`] writes it).
    pub fn parse(label: &str) -> Option<Self> {
        if label.len() != 13 {
            return None;
        }
        humantime::parse_rfc3339(&format!("{label}:00:00Z"))
            .ok()
            .map(Hour::of)
    }

    /// When it begins.
    pub fn start(self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.0 * SECS)
    }

    /// The hour after it (the last hour has none: itself).
    pub fn next(self) -> Self {
        Hour::from_index(self.0 + 1)
    }

    /// The hour `n` hours before it (the first hour at most).
    pub fn before(self, n: u64) -> Self {
        Hour(self.0.saturating_sub(n))
    }

    /// `YYYY-MM-DDTHH`, as `hours.log` and the command line write it.
    pub fn label(self) -> String {
        self.stamp()[..13].to_string()
    }

    /// `YYYY/MM/DD/HH`, its folder under the stream's.
    pub fn path(self) -> String {
        let s = self.stamp();
        format!("{}/{}/{}/{}", &s[0..4], &s[5..7], &s[8..10], &s[11..13])
    }

    fn stamp(self) -> String {
        humantime::format_rfc3339_seconds(self.start()).to_string()
    }
}

impl fmt::Display for Hour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_that_are_not_an_hour_are_refused() {
        for bad in [
            "2026-11-21",
            "2026-11-21T9",
            "2026-11-21T24",
            "2026-11-21T09:00",
            "x",
        ] {
            assert_eq!(Hour::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn hours_before_1970_and_after_9999_are_written_as_the_first_and_last() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(7200);
        assert_eq!(Hour::of(before).label(), "1970-01-01T00");
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u32::MAX as u64 * 3600);
        assert_eq!(Hour::of(far).label(), "9999-12-31T23");
        assert_eq!(Hour::from_index(u64::MAX).next().path(), "9999/12/31/23");
    }

    #[test]
    fn an_hour_holds_its_last_nanosecond_and_not_the_next_one() {
        let h = Hour::parse("2026-11-21T09").unwrap();
        let end = h.next().start();
        assert_eq!(Hour::of(end - Duration::from_nanos(1)), h);
        assert_eq!(Hour::of(end), h.next());
        assert_eq!(h.next().before(1), h);
    }
}
