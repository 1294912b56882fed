//! `{stream}/{YYYY}/{MM}/{DD}/ranges.txt`: the runs of a day's closed
//! hours, so that the ranges of a month are read from 30 small objects
//! rather than 720 playlists. One line per run:
//!
//! ```text
//! HOUR run START END CAUSE
//! ```
//!
//! with times in RFC 3339 (milliseconds) and `-` for no cause. The hour
//! playlists stay the truth: an hour the index does not list is read from
//! its playlist, and `hlsvault reindex` writes the index again from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hlsvault_ts::clock::writable;
use hlsvault_ts::Hour;

use crate::{GapCause, Run};

/// The runs of a day's hours.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_hls::{DayIndex, GapCause, Hour, Run};
///
/// let nine = Hour::parse("2026-11-21T09").unwrap();
/// let run = Run {
///     start: nine.start(),
///     end: nine.start() + Duration::from_secs(600),
///     cause: Some(GapCause::Restart),
/// };
/// let mut day = DayIndex::default();
/// day.set(nine, vec![run]);
/// let text = day.render();
/// assert_eq!(
///     text,
///     "2026-11-21T09 run 2026-11-21T09:00:00.000Z 2026-11-21T09:10:00.000Z restart\n"
/// );
/// assert_eq!(DayIndex::parse(&text).runs(nine), Some(&[run][..]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayIndex {
    hours: BTreeMap<Hour, Vec<Run>>,
}

impl DayIndex {
    /// Reads the text back. A line that cannot be read drops its hour
    /// (which is then read from its playlist).
    pub fn parse(text: &str) -> Self {
        let mut hours: BTreeMap<Hour, Vec<Run>> = BTreeMap::new();
        let mut broken = Vec::new();
        for line in text.lines() {
            let mut words = line.split(' ');
            let Some(hour) = words.next().and_then(Hour::parse) else {
                continue;
            };
            match parse_run(words) {
                Some(run) => hours.entry(hour).or_default().push(run),
                None => broken.push(hour),
            }
        }
        for hour in broken {
            hours.remove(&hour);
        }
        DayIndex { hours }
    }

    /// Sets an hour's runs.
    pub fn set(&mut self, hour: Hour, runs: Vec<Run>) {
        self.hours.insert(hour, runs);
    }

    /// An hour's runs, if the index lists it.
    pub fn runs(&self, hour: Hour) -> Option<&[Run]> {
        self.hours.get(&hour).map(Vec::as_slice)
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (hour, runs) in &self.hours {
            for run in runs {
                let _ = writeln!(
                    s,
                    "{} run {} {} {}",
                    hour.label(),
                    humantime::format_rfc3339_millis(writable(run.start)),
                    humantime::format_rfc3339_millis(writable(run.end)),
                    run.cause.map_or("-", GapCause::as_str)
                );
            }
        }
        s
    }
}

/// `run START END CAUSE`.
fn parse_run<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<Run> {
    if words.next()? != "run" {
        return None;
    }
    let start = humantime::parse_rfc3339(words.next()?).ok()?;
    let end = humantime::parse_rfc3339(words.next()?).ok()?;
    let cause = match words.next()? {
        "-" => None,
        name => Some(GapCause::parse(name)?),
    };
    (words.next().is_none() && start <= end).then_some(Run { start, end, cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_line_drops_its_hour_only() {
        let text = "2026-11-21T09 run 2026-11-21T09:00:00.000Z 2026-11-21T09:10:00.000Z -\n\
                    2026-11-21T09 run 2026-11-21T09:20:00.000Z 2026-11-21T09:3\n\
                    2026-11-21T10 run 2026-11-21T10:00:00.000Z 2026-11-21T10:59:59.000Z stall\n\
                    garbage\n";
        let day = DayIndex::parse(text);
        let nine = Hour::parse("2026-11-21T09").unwrap();
        assert_eq!(day.runs(nine), None);
        let ten = day.runs(nine.next()).unwrap();
        assert_eq!(ten.len(), 1);
        assert_eq!(ten[0].cause, Some(GapCause::Stall));
    }
}
