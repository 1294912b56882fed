//! What an archive holds over time: its [`Run`]s of contiguous media,
//! joined into recorded ranges with the [`Gap`]s between them and why
//! each gap is there.

use std::time::{Duration, SystemTime};

use crate::{Entry, GapCause, Mark};

/// Entries closer than this follow on from each other: the wall-clock
/// times of a playlist are rounded to the millisecond, and a new anchor
/// after a restart lands within a frame or two of where it should.
pub const CONTIGUOUS: Duration = Duration::from_millis(250);

/// Contiguous media: entries that each start where the one before ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Its first entry's start.
    pub start: SystemTime,
    /// Its last entry's end.
    pub end: SystemTime,
    /// Why media before it is missing, as its first entry says (`None`
    /// when it is not marked: the first entry of an hour that goes on
    /// from the hour before).
    pub cause: Option<GapCause>,
}

impl Run {
    /// The runs of entries in time order (an hour playlist's).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use hlsvault_hls::{Entry, GapCause, Run};
    ///
    /// let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600 + s);
    /// let entry = |s: u64, gap: Option<GapCause>| Entry {
    ///     sequence: s,
    ///     uri: format!("{s}.ts"),
    ///     duration: 6 * 90_000,
    ///     start: at(s),
    ///     discontinuity: gap.is_some(),
    ///     gap,
    ///     tags: Vec::new(),
    /// };
    /// let entries = [entry(0, None), entry(6, None), entry(30, Some(GapCause::Stall))];
    /// let runs = Run::of_entries(&entries);
    /// assert_eq!(runs.len(), 2);
    /// assert_eq!((runs[0].start, runs[0].end), (at(0), at(12)));
    /// assert_eq!(runs[1].cause, Some(GapCause::Stall));
    /// ```
    pub fn of_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for e in entries {
            let (start, end) = (e.start, e.end());
            match runs.last_mut() {
                Some(run) if follows(run.end, start) => run.end = run.end.max(end),
                _ => runs.push(Run {
                    start,
                    end,
                    cause: e.gap.or(e.discontinuity.then_some(GapCause::Discontinuity)),
                }),
            }
        }
        runs
    }
}

/// What an hour holds, as the ranges and retention need it: its runs,
/// its markers and its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourIndex {
    /// Its runs of contiguous media, in time order.
    pub runs: Vec<Run>,
    /// Its SCTE-35 markers, in the order they came.
    pub marks: Vec<Mark>,
    /// The bytes its objects hold, where known (retention by size).
    pub bytes: Option<u64>,
}

impl HourIndex {
    /// The index of an hour playlist's entries.
    pub fn of_entries<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let entries: Vec<&Entry> = entries.into_iter().collect();
        HourIndex {
            runs: Run::of_entries(entries.iter().copied()),
            marks: entries
                .iter()
                .flat_map(|e| e.tags.iter().filter_map(|t| Mark::of_tag(t, e.start)))
                .collect(),
            bytes: None,
        }
    }
}

/// Whether media starting at `start` follows on from media ending at `end`.
fn follows(end: SystemTime, start: SystemTime) -> bool {
    start <= end + CONTIGUOUS
}

/// A recorded stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Where it starts.
    pub start: SystemTime,
    /// Where it ends.
    pub end: SystemTime,
}

/// Time between two recorded ranges, and why nothing is recorded there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The end of the range before.
    pub start: SystemTime,
    /// The start of the range after.
    pub end: SystemTime,
    /// Why, as far as the archive knows.
    pub cause: GapCause,
}

/// The recorded ranges within a time range, and the gaps between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges {
    /// Contiguous recorded ranges, oldest first, clipped to the range asked.
    pub recorded: Vec<Span>,
    /// The gaps between them, oldest first.
    pub gaps: Vec<Gap>,
    /// The SCTE-35 markers within the range, in time order.
    pub marks: Vec<Mark>,
}

impl Ranges {
    /// The ranges of hours in time order within `[start, end)`, with their
    /// markers.
    pub fn of_hours(
        hours: impl IntoIterator<Item = HourIndex>,
        start: SystemTime,
        end: SystemTime,
    ) -> Self {
        let (mut runs, mut marks) = (Vec::new(), Vec::new());
        for hour in hours {
            runs.extend(hour.runs);
            marks.extend(
                hour.marks
                    .into_iter()
                    .filter(|m| (start..end).contains(&m.at)),
            );
        }
        marks.sort_by_key(|m| m.at);
        Ranges {
            marks,
            ..Ranges::build(runs, start, end)
        }
    }

    /// Joins runs in time order (from any number of hours) within
    /// `[start, end)`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use hlsvault_hls::{GapCause, Ranges, Run};
    ///
    /// let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600 + s);
    /// let run = |a, b, cause| Run { start: at(a), end: at(b), cause };
    /// // An hour that goes on into the next, then a restart.
    /// let runs = [run(0, 3600, None), run(3600, 3700, None), run(3760, 3800, Some(GapCause::Restart))];
    /// let r = Ranges::build(runs, at(60), at(7200));
    /// assert_eq!(r.recorded.len(), 2);
    /// assert_eq!((r.recorded[0].start, r.recorded[0].end), (at(60), at(3700)));
    /// assert_eq!(r.gaps[0].cause, GapCause::Restart);
    /// assert_eq!((r.gaps[0].start, r.gaps[0].end), (at(3700), at(3760)));
    /// ```
    pub fn build(runs: impl IntoIterator<Item = Run>, start: SystemTime, end: SystemTime) -> Self {
        let mut out = Ranges::default();
        for run in runs {
            let (from, to) = (run.start.max(start), run.end.min(end));
            if from >= to {
                continue;
            }
            match out.recorded.last_mut() {
                Some(last) if follows(last.end, from) => last.end = last.end.max(to),
                Some(last) => {
                    out.gaps.push(Gap {
                        start: last.end,
                        end: from,
                        cause: run.cause.unwrap_or(GapCause::NothingRecorded),
                    });
                    out.recorded.push(Span {
                        start: from,
                        end: to,
                    });
                }
                None => out.recorded.push(Span {
                    start: from,
                    end: to,
                }),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_251_600_000 + ms)
    }

    fn entry(ms: u64, secs: u64, discontinuity: bool, gap: Option<GapCause>) -> Entry {
        Entry {
            sequence: ms,
            uri: format!("{ms}.ts"),
            duration: secs * 90_000,
            start: at(ms),
            discontinuity,
            gap,
            tags: Vec::new(),
        }
    }

    #[test]
    fn an_unmarked_discontinuity_without_lost_time_stays_in_its_run() {
        let entries = [
            entry(0, 6, false, None),
            entry(6_000, 6, true, None),
            // Rounding of the wall clock: still contiguous.
            entry(12_100, 6, false, None),
            entry(30_000, 6, true, None),
            entry(40_000, 6, false, None),
        ];
        let runs = Run::of_entries(&entries);
        let got: Vec<_> = runs.iter().map(|r| (r.start, r.end, r.cause)).collect();
        assert_eq!(
            got,
            [
                (at(0), at(18_100), None),
                (at(30_000), at(36_000), Some(GapCause::Discontinuity)),
                (at(40_000), at(46_000), None),
            ]
        );
    }

    #[test]
    fn gaps_carry_the_cause_of_the_run_after_them_and_clip_to_the_range() {
        let runs = [
            Run {
                start: at(0),
                end: at(10_000),
                cause: None,
            },
            Run {
                start: at(20_000),
                end: at(30_000),
                cause: Some(GapCause::Stall),
            },
            // Overlapping the run before (a clock step): joined.
            Run {
                start: at(29_000),
                end: at(35_000),
                cause: Some(GapCause::Restart),
            },
            Run {
                start: at(50_000),
                end: at(60_000),
                cause: None,
            },
        ];
        let r = Ranges::build(runs, at(5_000), at(55_000));
        assert_eq!(
            r.recorded,
            [
                Span {
                    start: at(5_000),
                    end: at(10_000)
                },
                Span {
                    start: at(20_000),
                    end: at(35_000)
                },
                Span {
                    start: at(50_000),
                    end: at(55_000)
                },
            ]
        );
        let causes: Vec<_> = r.gaps.iter().map(|g| (g.start, g.end, g.cause)).collect();
        assert_eq!(
            causes,
            [
                (at(10_000), at(20_000), GapCause::Stall),
                (at(35_000), at(50_000), GapCause::NothingRecorded),
            ]
        );
        assert_eq!(
            Ranges::build(runs, at(36_000), at(49_000)),
            Ranges::default()
        );
    }
}
