//! What a request asks for, parsed from text a client controls: a time
//! range of the archive (`start`, and `end` or `duration`) and a byte range
//! of an object (the `Range` header). Neither panics on any input; both are
//! fuzzed (`fuzz/fuzz_targets/serve_query.rs`).

use std::time::{Duration, SystemTime};

use hlsvault_ts::clock::last_writable;

/// Longest range served at once.
pub const MAX_RANGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The query of a time range: `start`, and `end` or `duration`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct RangeQuery {
    /// RFC 3339.
    pub start: Option<String>,
    /// RFC 3339.
    pub end: Option<String>,
    /// A humantime duration (`90s`, `1h 30m`).
    pub duration: Option<String>,
}

impl RangeQuery {
    /// The range `[start, end)` asked for, or what is wrong with the query,
    /// in words for the client.
    ///
    /// ```
    /// use hlsvault::serve::RangeQuery;
    /// let q = RangeQuery {
    ///     start: Some("2026-11-21T09:00:00Z".into()),
    ///     duration: Some("90s".into()),
    ///     ..Default::default()
    /// };
    /// let (start, end) = q.time_range().unwrap();
    /// assert_eq!(end.duration_since(start).unwrap().as_secs(), 90);
    /// ```
    pub fn time_range(&self) -> Result<(SystemTime, SystemTime), String> {
        let start = time(
            "start",
            self.start
                .as_deref()
                .ok_or("start= is required (RFC 3339)")?,
        )?;
        let too_long = || {
            format!(
                "the range is longer than {}",
                humantime::format_duration(MAX_RANGE)
            )
        };
        let end = match (&self.end, &self.duration) {
            (Some(e), None) => time("end", e)?,
            (None, Some(d)) => {
                let d = humantime::parse_duration(d)
                    .map_err(|e| format!("duration={d} is not a duration ({e})"))?;
                if d > MAX_RANGE {
                    return Err(too_long());
                }
                start
                    .checked_add(d)
                    .filter(|end| *end <= last_writable())
                    .ok_or("the range ends after the year 9999")?
            }
            _ => return Err("give end= (RFC 3339) or duration= (e.g. 1h), not both".into()),
        };
        if end <= start {
            return Err("the range ends before it starts".into());
        }
        if end.duration_since(start).unwrap_or_default() > MAX_RANGE {
            return Err(too_long());
        }
        Ok((start, end))
    }
}

/// A time a client wrote for `key`.
fn time(key: &str, v: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(v).map_err(|e| format!("{key}={v} is not an RFC 3339 time ({e})"))
}

/// The bounds of a catalogue query: `start` and `end`, each optional.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BoundsQuery {
    /// RFC 3339; the archive's beginning if absent.
    pub start: Option<String>,
    /// RFC 3339; `now` if absent.
    pub end: Option<String>,
}

impl BoundsQuery {
    /// The range `[start, end)` asked for, or what is wrong with it.
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use hlsvault::serve::BoundsQuery;
    /// let q = BoundsQuery { start: Some("2026-11-21T09:00:00Z".into()), end: None };
    /// let now = SystemTime::now();
    /// assert_eq!(q.bounds(now).unwrap().1, now);
    /// ```
    pub fn bounds(&self, now: SystemTime) -> Result<(SystemTime, SystemTime), String> {
        let start = match &self.start {
            Some(v) => time("start", v)?,
            None => SystemTime::UNIX_EPOCH,
        };
        let end = match &self.end {
            Some(v) => time("end", v)?,
            None => now,
        };
        if end <= start {
            return Err("the range ends before it starts".into());
        }
        Ok((start, end))
    }
}

/// What a `Range` header asks of an object of some length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No range, or one this server does not take (several ranges, other
    /// units): the whole object.
    Whole,
    /// Bytes `first..=last`, within the object.
    Part { first: u64, last: u64 },
    /// A range outside the object (416).
    Unsatisfiable,
}

impl ByteRange {
    /// Parses a `Range` header value (one range, RFC 9110) for an object of
    /// `len` bytes.
    ///
    /// ```
    /// use hlsvault::serve::ByteRange;
    /// assert_eq!(ByteRange::parse("bytes=10-", 100), ByteRange::Part { first: 10, last: 99 });
    /// assert_eq!(ByteRange::parse("bytes=-10", 100), ByteRange::Part { first: 90, last: 99 });
    /// assert_eq!(ByteRange::parse("bytes=100-", 100), ByteRange::Unsatisfiable);
    /// assert_eq!(ByteRange::parse("items=1-2", 100), ByteRange::Whole);
    /// ```
    pub fn parse(header: &str, len: u64) -> ByteRange {
        let Some((a, b)) = header
            .strip_prefix("bytes=")
            .and_then(|spec| spec.split_once('-'))
        else {
            return ByteRange::Whole;
        };
        let end = len.saturating_sub(1);
        let (first, last) = match (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()) {
            (Some(a), Some(b)) => (a, b.min(end)),
            (Some(a), None) if b.trim().is_empty() => (a, end),
            (None, Some(n)) if a.trim().is_empty() => (len.saturating_sub(n), end),
            _ => return ByteRange::Whole,
        };
        if len == 0 || first > last || first >= len {
            return ByteRange::Unsatisfiable;
        }
        ByteRange::Part { first, last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: &str, end: Option<&str>, duration: Option<&str>) -> Result<(), String> {
        RangeQuery {
            start: Some(start.into()),
            end: end.map(Into::into),
            duration: duration.map(Into::into),
        }
        .time_range()
        .map(drop)
    }

    #[test]
    fn ranges_past_what_a_clock_holds_are_refused_not_a_panic() {
        assert_eq!(range("2026-11-21T09:00:00Z", None, Some("1h")), Ok(()));
        assert_eq!(
            range("2026-11-21T09:00:00Z", None, Some("500000000000y")).unwrap_err(),
            "the range is longer than 7days"
        );
        assert_eq!(
            range("9999-12-31T23:30:00Z", None, Some("1h")).unwrap_err(),
            "the range ends after the year 9999"
        );
        assert!(range("2026-11-21T09:00:00Z", Some("2026-11-21T08:00:00Z"), None).is_err());
    }

    #[test]
    fn byte_ranges_are_clamped_to_the_object() {
        assert_eq!(
            ByteRange::parse("bytes=0-999", 100),
            ByteRange::Part { first: 0, last: 99 }
        );
        assert_eq!(
            ByteRange::parse("bytes=-1000", 100),
            ByteRange::Part { first: 0, last: 99 }
        );
        assert_eq!(ByteRange::parse("bytes=5-4", 100), ByteRange::Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=0-", 0), ByteRange::Unsatisfiable);
        assert_eq!(ByteRange::parse("bytes=1-2,4-5", 100), ByteRange::Whole);
    }
}

/// The status page's query: `day=YYYY-MM-DD` for the timeline (the last
/// 24 h if absent).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub day: Option<String>,
}

impl PageQuery {
    /// The timeline's window, or what is wrong with `day`.
    pub fn window(&self, now: SystemTime) -> Result<super::timeline::Window, String> {
        match &self.day {
            None => Ok(super::timeline::Window::last_day(now)),
            Some(day) => super::timeline::Window::day(day)
                .ok_or_else(|| format!("day: \"{day}\" is not a date (YYYY-MM-DD)")),
        }
    }
}
