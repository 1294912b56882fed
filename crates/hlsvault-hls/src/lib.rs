//! HLS media playlists: the hourly archive playlist and the live window,
//! rendered per RFC 8216 and read back when a restart continues an hour;
//! the archive's [`Layout`] in the store, its index of hours
//! ([`HoursLog`]), and what it holds over time ([`Ranges`], indexed by
//! day in a [`DayIndex`]). Hours are [`Hour`]s. Pure code: no I/O.

#![forbid(unsafe_code)]

mod day_index;
mod gap;
mod holds;
mod hours_log;
mod layout;
mod markers;
mod marks;
mod ranges;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::SystemTime;

pub use day_index::DayIndex;
pub use gap::GapCause;
pub use hlsvault_ts::Hour;
pub use holds::{Hold, Holds, HoldsError};
pub use hours_log::{HoursLog, Urls};
pub use layout::Layout;
pub use markers::{MarkerStyle, Markers};
pub use marks::{Mark, MarkKind};
pub use ranges::{Gap, HourIndex, Ranges, Run, Span, CONTIGUOUS};

use hlsvault_ts::clock::{format_seconds, parse_seconds, ticks_to_duration, writable, PTS_HZ};

/// One segment as listed in a playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Media sequence number.
    pub sequence: u64,
    /// URI, relative to the playlist.
    pub uri: String,
    /// Duration in 90 kHz ticks.
    pub duration: u64,
    /// Program date time of the first frame.
    pub start: SystemTime,
    /// `#EXT-X-DISCONTINUITY` precedes it.
    pub discontinuity: bool,
    /// Why media before it is missing, when the recorder knew (written
    /// with the discontinuity only).
    pub gap: Option<GapCause>,
    /// Extra tags just before its `#EXTINF` (playlist policy plugins).
    pub tags: Vec<String>,
}

impl Entry {
    /// When the entry's media ends on the wall clock.
    pub fn end(&self) -> SystemTime {
        let duration = ticks_to_duration(self.duration.min(i64::MAX as u64) as i64);
        writable(self.start.checked_add(duration).unwrap_or(self.start))
    }
}

/// Which playlist this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An hour of the archive: entries are only appended (`EVENT`).
    Event,
    /// The live window: the last `n` entries.
    Window(usize),
    /// A closed past range: it never changes (`VOD`).
    Vod,
}

/// A media playlist.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_hls::{Entry, Kind, Playlist};
///
/// let mut hour = Playlist::new(Kind::Event, 6);
/// hour.push(Entry {
///     sequence: 0,
///     uri: "0000.000-0.ts".into(),
///     duration: 6 * 90_000,
///     start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600),
///     discontinuity: false,
///     gap: None,
///     tags: Vec::new(),
/// });
/// hour.end();
/// let text = hour.render();
/// assert!(text.contains("#EXTINF:6.000000,\n0000.000-0.ts\n"));
/// assert!(text.ends_with("#EXT-X-ENDLIST\n"));
/// // A restart reads it back and continues it.
/// assert_eq!(Playlist::parse(Kind::Event, &text).unwrap(), hour);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Playlist {
    kind: Kind,
    target: u64,
    entries: VecDeque<Entry>,
    discontinuity_sequence: u64,
    ended: bool,
    /// Extra header tags (playlist policy plugins).
    header: Vec<String>,
}

/// Tags the playlist writes itself (the rest are kept as extra tags).
const OWN_TAGS: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION:",
    "#EXT-X-PLAYLIST-TYPE:",
    "#EXTINF:",
];

/// A playlist text that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl Playlist {
    /// An empty playlist whose target duration is at least `target_secs`.
    pub fn new(kind: Kind, target_secs: u64) -> Self {
        Playlist {
            kind,
            target: target_secs.max(1),
            entries: VecDeque::new(),
            discontinuity_sequence: 0,
            ended: false,
            header: Vec::new(),
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The entries, to rewrite (their URIs, for a signed copy).
    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    /// The newest entry.
    pub fn last(&self) -> Option<&Entry> {
        self.entries.back()
    }

    /// Whether `#EXT-X-ENDLIST` closes it.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Appends an entry; a window drops its oldest entries past its size.
    pub fn push(&mut self, entry: Entry) {
        self.ended = false;
        self.entries.push_back(entry);
        if let Kind::Window(n) = self.kind {
            while self.entries.len() > n {
                if let Some(gone) = self.entries.pop_front() {
                    // RFC 8216 6.2.2: count the discontinuities that left.
                    if self.entries.front().is_some_and(|e| e.discontinuity) {
                        self.discontinuity_sequence += 1;
                    }
                    drop(gone);
                }
            }
        }
    }

    /// Closes the playlist with `#EXT-X-ENDLIST`.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Reopens a closed playlist (a restart continues its hour).
    pub fn reopen(&mut self) {
        self.ended = false;
    }

    /// Sets the extra header tags (each a validated single `#` line).
    pub fn set_header_tags(&mut self, tags: Vec<String>) {
        self.header = tags;
    }

    /// The HLS text.
    pub fn render(&self) -> String {
        let rounded = self
            .entries
            .iter()
            .map(|e| e.duration.saturating_add(PTS_HZ / 2) / PTS_HZ);
        let target = rounded.max().unwrap_or(0).max(self.target);
        let first = self.entries.front().map_or(0, |e| e.sequence);
        let mut s = String::with_capacity(128 + self.entries.len() * 96);
        s.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first}");
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                s,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        match self.kind {
            Kind::Event => s.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            Kind::Vod => s.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n"),
            Kind::Window(_) => {}
        }
        for t in &self.header {
            let _ = writeln!(s, "{t}");
        }
        for e in &self.entries {
            if e.discontinuity {
                s.push_str("#EXT-X-DISCONTINUITY\n");
                if let Some(gap) = e.gap {
                    let _ = writeln!(s, "{}{gap}", gap::GAP_COMMENT);
                }
            }
            let _ = writeln!(
                s,
                "#EXT-X-PROGRAM-DATE-TIME:{}",
                humantime::format_rfc3339_millis(writable(e.start))
            );
            for t in &e.tags {
                let _ = writeln!(s, "{t}");
            }
            let _ = writeln!(s, "#EXTINF:{},\n{}", format_seconds(e.duration), e.uri);
        }
        if self.ended {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }

    /// Reads a playlist back (ours, or any media playlist with the same tags).
    pub fn parse(kind: Kind, text: &str) -> Result<Self, ParseError> {
        let mut p = Playlist::new(kind, 1);
        let mut seq = 0u64;
        let mut pending_disc = false;
        let mut pending_gap: Option<GapCause> = None;
        let mut pending_pdt: Option<SystemTime> = None;
        let mut pending_dur: Option<u64> = None;
        let mut pending_tags: Vec<String> = Vec::new();
        let err = |line: usize, reason: &str| ParseError {
            line: line + 1,
            reason: reason.to_string(),
        };
        let mut lines = text.lines().enumerate().peekable();
        match lines.next() {
            Some((_, l)) if l.trim_end() == "#EXTM3U" => {}
            _ => return Err(err(0, "does not start with #EXTM3U")),
        }
        for (n, line) in lines {
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target = v.parse().map_err(|_| err(n, "bad target duration"))?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                seq = v.parse().map_err(|_| err(n, "bad media sequence"))?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                p.discontinuity_sequence = v
                    .parse()
                    .map_err(|_| err(n, "bad discontinuity sequence"))?;
            } else if line == "#EXT-X-DISCONTINUITY" {
                pending_disc = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pending_pdt = Some(
                    humantime::parse_rfc3339_weak(v)
                        .map_err(|_| err(n, "bad program date time"))?,
                );
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                let secs = v.split(',').next().unwrap_or_default();
                pending_dur =
                    Some(parse_seconds(secs).ok_or_else(|| err(n, "bad EXTINF duration"))?);
            } else if let Some(v) = line.strip_prefix(gap::GAP_COMMENT) {
                pending_gap = GapCause::parse(v);
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if line.starts_with('#') && !OWN_TAGS.iter().any(|t| line.starts_with(t)) {
                // Another tag: before the first entry's own tags it belongs
                // to the header, else to the next entry.
                match pending_pdt.is_none() && !pending_disc && p.entries.is_empty() {
                    true => p.header.push(line.to_string()),
                    false => pending_tags.push(line.to_string()),
                }
            } else if !line.is_empty() && !line.starts_with('#') {
                let duration = pending_dur
                    .take()
                    .ok_or_else(|| err(n, "URI without #EXTINF"))?;
                let start = match (pending_pdt.take(), p.entries.back()) {
                    (Some(t), _) => t,
                    (None, Some(prev)) => prev.end(),
                    (None, None) => {
                        return Err(err(n, "first entry has no #EXT-X-PROGRAM-DATE-TIME"))
                    }
                };
                p.entries.push_back(Entry {
                    sequence: seq,
                    uri: line.to_string(),
                    duration,
                    start,
                    discontinuity: std::mem::take(&mut pending_disc),
                    gap: pending_gap.take(),
                    tags: std::mem::take(&mut pending_tags),
                });
                seq = seq.saturating_add(1);
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(sequence: u64, secs: u64, discontinuity: bool) -> Entry {
        Entry {
            sequence,
            uri: format!("{sequence}.ts"),
            duration: secs * 90_000 + 540,
            start: SystemTime::UNIX_EPOCH
                + Duration::from_millis(1_795_255_197_700 + (sequence % 10) * 6006),
            discontinuity,
            gap: discontinuity.then_some(GapCause::Stall),
            tags: Vec::new(),
        }
    }

    #[test]
    fn event_playlist_renders_and_parses_back() {
        let mut p = Playlist::new(Kind::Event, 6);
        p.push(entry(10, 6, false));
        p.push(entry(11, 10, true));
        p.end();
        let text = p.render();
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T09:59:57.700Z\n#EXTINF:6.006000,\n10.ts\n\
             #EXT-X-DISCONTINUITY\n#HLSVAULT-GAP:stall\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:03.706Z\n#EXTINF:10.006000,\n11.ts\n\
             #EXT-X-ENDLIST\n"
        );
        let back = Playlist::parse(Kind::Event, &text).unwrap();
        assert_eq!(back, Playlist { target: 10, ..p });
    }

    #[test]
    fn window_slides_and_counts_discontinuities() {
        let mut p = Playlist::new(Kind::Window(2), 6);
        for i in 0..5 {
            p.push(entry(i, 6, i == 2));
        }
        let text = p.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
        assert!(!text.contains("PLAYLIST-TYPE"));
        let back = Playlist::parse(Kind::Window(2), &text).unwrap();
        assert_eq!(
            back.entries().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn target_duration_covers_rounded_extinf() {
        let mut p = Playlist::new(Kind::Event, 6);
        p.push(Entry {
            duration: 6 * 90_000 + 45_000,
            ..entry(0, 0, false)
        }); // 6.5 s rounds to 7
        assert!(p.render().contains("#EXT-X-TARGETDURATION:7\n"));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = Playlist::parse(Kind::Event, "#EXTM3U\n#EXTINF:abc,\nx.ts\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Playlist::parse(Kind::Event, "garbage").is_err());
        let e = Playlist::parse(
            Kind::Event,
            "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:00Z\nx.ts\n",
        )
        .unwrap_err();
        assert_eq!(e.reason, "URI without #EXTINF");
    }

    #[test]
    fn a_stored_playlist_with_absurd_numbers_reads_and_renders_without_panic() {
        let text = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n\
            #EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:00:00Z\n\
            #EXTINF:99999999999999999999,\na.ts\n#EXTINF:99999999999999999999,\nb.ts\n";
        let p = Playlist::parse(Kind::Event, text).unwrap();
        let ends: Vec<SystemTime> = p.entries().map(Entry::end).collect();
        assert!(ends
            .iter()
            .all(|e| *e <= hlsvault_ts::clock::last_writable()));
        let again = p.render();
        // The second entry follows the first, at the last writable time.
        assert!(
            again.contains("#EXT-X-PROGRAM-DATE-TIME:9999-12-31T23:59:59.999Z\n#EXTINF:"),
            "{again}"
        );
        assert!(
            again.contains("#EXT-X-TARGETDURATION:204963823041217"),
            "{again}"
        );
    }
}
