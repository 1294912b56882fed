//! `{stream}/{YYYY}/{MM}/{DD}/ranges.txt`: the runs and markers of a
//! day's closed hours, so that the ranges of a month are read from 30
//! small objects rather than 720 playlists. One line per run or marker:
//!
//! ```text
//! HOUR run START END CAUSE
//! HOUR mark AT KIND SECONDS ID
//! HOUR size BYTES
//! ```
//!
//! with times in RFC 3339 (milliseconds) and `-` for no cause, length or
//! id. `size` is what the hour's objects hold, as the recorder wrote
//! them (retention by size adds them up). The hour playlists stay the truth: an hour the index does not list
//! is read from its playlist, and `hlsvault reindex` writes the index
//! again from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hlsvault_ts::clock::writable;
use hlsvault_ts::Hour;

use crate::{GapCause, HourIndex, Mark, MarkKind, Run};

/// The runs and markers of a day's hours.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_hls::{DayIndex, GapCause, Hour, HourIndex, Run};
///
/// let nine = Hour::parse("2026-11-21T09").unwrap();
/// let run = Run {
///     start: nine.start(),
///     end: nine.start() + Duration::from_secs(600),
///     cause: Some(GapCause::Restart),
/// };
/// let mut day = DayIndex::default();
/// day.set(nine, HourIndex { runs: vec![run], marks: Vec::new(), bytes: Some(7_520_000) });
/// let text = day.render();
/// assert_eq!(
///     text,
///     "2026-11-21T09 run 2026-11-21T09:00:00.000Z 2026-11-21T09:10:00.000Z restart\n\
///      2026-11-21T09 size 7520000\n"
/// );
/// let read = DayIndex::parse(&text);
/// assert_eq!(read.hour(nine).unwrap().runs, [run]);
/// assert_eq!(read.hour(nine).unwrap().bytes, Some(7_520_000));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayIndex {
    hours: BTreeMap<Hour, HourIndex>,
}

impl DayIndex {
    /// Reads the text back. A line that cannot be read drops its hour
    /// (which is then read from its playlist).
    pub fn parse(text: &str) -> Self {
        let mut hours: BTreeMap<Hour, HourIndex> = BTreeMap::new();
        let mut broken = Vec::new();
        for line in text.lines() {
            let mut words = line.split(' ');
            let Some(hour) = words.next().and_then(Hour::parse) else {
                continue;
            };
            let index = hours.entry(hour).or_default();
            let read = match words.next() {
                Some("run") => parse_run(words).map(|r| index.runs.push(r)),
                Some("mark") => parse_mark(words).map(|m| index.marks.push(m)),
                Some("size") => parse_size(words).map(|b| index.bytes = Some(b)),
                _ => None,
            };
            if read.is_none() {
                broken.push(hour);
            }
        }
        for hour in broken {
            hours.remove(&hour);
        }
        DayIndex { hours }
    }

    /// Sets what an hour holds.
    pub fn set(&mut self, hour: Hour, index: HourIndex) {
        self.hours.insert(hour, index);
    }

    /// What an hour holds, if the index lists it.
    pub fn hour(&self, hour: Hour) -> Option<&HourIndex> {
        self.hours.get(&hour)
    }

    /// The text.
    pub fn render(&self) -> String {
        let time = |t| humantime::format_rfc3339_millis(writable(t));
        let mut s = String::new();
        for (hour, index) in &self.hours {
            let label = hour.label();
            for run in &index.runs {
                let cause = run.cause.map_or("-", GapCause::as_str);
                let _ = writeln!(
                    s,
                    "{label} run {} {} {cause}",
                    time(run.start),
                    time(run.end)
                );
            }
            for mark in &index.marks {
                let seconds = mark.duration.map_or("-".to_string(), |d| {
                    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
                });
                let id = mark.id.as_deref().filter(|id| is_word(id)).unwrap_or("-");
                let kind = mark.kind.as_str();
                let _ = writeln!(s, "{label} mark {} {kind} {seconds} {id}", time(mark.at));
            }
            if let Some(bytes) = index.bytes {
                let _ = writeln!(s, "{label} size {bytes}");
            }
        }
        s
    }
}

/// Whether `text` can stand as one word of a line.
fn is_word(text: &str) -> bool {
    !text.is_empty() && text != "-" && !text.contains(char::is_whitespace)
}

/// `BYTES` of a size.
fn parse_size<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<u64> {
    let bytes = words.next()?.parse().ok()?;
    words.next().is_none().then_some(bytes)
}

/// `START END CAUSE` of a run.
fn parse_run<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<Run> {
    let start = humantime::parse_rfc3339(words.next()?).ok()?;
    let end = humantime::parse_rfc3339(words.next()?).ok()?;
    let cause = match words.next()? {
        "-" => None,
        name => Some(GapCause::parse(name)?),
    };
    (words.next().is_none() && start <= end).then_some(Run { start, end, cause })
}

/// `AT KIND SECONDS ID` of a marker.
fn parse_mark<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<Mark> {
    let at = humantime::parse_rfc3339(words.next()?).ok()?;
    let kind = MarkKind::parse(words.next()?)?;
    let duration = match words.next()? {
        "-" => None,
        secs => Some(crate::marks::seconds(secs)?),
    };
    let id = match words.next()? {
        "-" => None,
        id => Some(id.to_string()),
    };
    words.next().is_none().then_some(Mark {
        at,
        kind,
        duration,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_damaged_line_drops_its_hour_only() {
        let text = "2026-11-21T09 run 2026-11-21T09:00:00.000Z 2026-11-21T09:10:00.000Z -\n\
                    2026-11-21T09 run 2026-11-21T09:20:00.000Z 2026-11-21T09:3\n\
                    2026-11-21T10 run 2026-11-21T10:00:00.000Z 2026-11-21T10:59:59.000Z stall\n\
                    2026-11-21T10 mark 2026-11-21T10:10:00.000Z out 30.000 7-1795255800000\n\
                    garbage\n";
        let day = DayIndex::parse(text);
        let nine = Hour::parse("2026-11-21T09").unwrap();
        assert_eq!(day.hour(nine), None);
        let ten = day.hour(nine.next()).unwrap();
        assert_eq!(ten.runs.len(), 1);
        assert_eq!(ten.runs[0].cause, Some(GapCause::Stall));
        assert_eq!(ten.marks[0].kind, MarkKind::Out);
        assert_eq!(ten.marks[0].duration, Some(Duration::from_secs(30)));
        assert_eq!(DayIndex::parse(&day.render()), day);
    }
}
