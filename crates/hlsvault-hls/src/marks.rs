//! SCTE-35 markers read back from an hour playlist's tags (what
//! [`crate::Markers`] wrote), for the ranges: when, which kind, and the
//! break's length where the tag says it.

use std::time::{Duration, SystemTime};

/// What a marker marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A break starts (`SCTE35-OUT`, `#EXT-X-CUE-OUT`).
    Out,
    /// A break ends (`SCTE35-IN`, `#EXT-X-CUE-IN`).
    In,
    /// Another signal (`SCTE35-CMD`).
    Signal,
}

impl MarkKind {
    /// Its name in the index and the ranges API.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::Out => "out",
            MarkKind::In => "in",
            MarkKind::Signal => "signal",
        }
    }

    /// Reads a name back.
    pub fn parse(name: &str) -> Option<Self> {
        [MarkKind::Out, MarkKind::In, MarkKind::Signal]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// A marker in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// When its splice happens.
    pub at: SystemTime,
    /// Out, in or another signal.
    pub kind: MarkKind,
    /// The break's length: planned at an out, as it turned out at an in.
    pub duration: Option<Duration>,
    /// The `DATERANGE` `ID` (an out and its in share it); none for cues.
    pub id: Option<String>,
}

impl Mark {
    /// The marker a tag before an entry starting at `entry_start` is, if
    /// it is one.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use hlsvault_hls::{Mark, MarkKind};
    /// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
    /// let tag = "#EXT-X-DATERANGE:ID=\"7-1795251600000\",START-DATE=\"2026-11-21T09:00:00.000Z\",\
    ///            DURATION=29.970,SCTE35-IN=0xFC31";
    /// let back = Mark::of_tag(tag, t).unwrap();
    /// assert_eq!(back.kind, MarkKind::In);
    /// // An in-point happens where its break ends.
    /// assert_eq!(back.at, t + Duration::from_millis(29_970));
    /// let cue = Mark::of_tag("#EXT-X-CUE-OUT:30.000", t).unwrap();
    /// assert_eq!((cue.kind, cue.duration), (MarkKind::Out, Some(Duration::from_secs(30))));
    /// ```
    pub fn of_tag(tag: &str, entry_start: SystemTime) -> Option<Mark> {
        if let Some(attributes) = tag.strip_prefix("#EXT-X-DATERANGE:") {
            return Self::of_daterange(attributes);
        }
        if let Some(rest) = tag.strip_prefix("#EXT-X-CUE-OUT") {
            let duration = rest.strip_prefix(':').and_then(seconds);
            return Some(Mark {
                at: entry_start,
                kind: MarkKind::Out,
                duration,
                id: None,
            });
        }
        (tag == "#EXT-X-CUE-IN").then_some(Mark {
            at: entry_start,
            kind: MarkKind::In,
            duration: None,
            id: None,
        })
    }

    fn of_daterange(attributes: &str) -> Option<Mark> {
        let mut start = None;
        let mut id = None;
        let (mut planned, mut duration, mut kind) = (None, None, None);
        for (name, value) in split_attributes(attributes) {
            match name {
                "ID" => id = Some(value.to_string()),
                "START-DATE" => start = humantime::parse_rfc3339_weak(value).ok(),
                "PLANNED-DURATION" => planned = seconds(value),
                "DURATION" => duration = seconds(value),
                "SCTE35-OUT" => kind = Some(MarkKind::Out),
                "SCTE35-IN" => kind = Some(MarkKind::In),
                "SCTE35-CMD" => kind = Some(MarkKind::Signal),
                _ => {}
            }
        }
        let (start, kind) = (start?, kind?);
        // An in-point repeats its out's START-DATE: it happens at the end.
        let at = match (kind, duration) {
            (MarkKind::In, Some(d)) => start.checked_add(d)?,
            _ => start,
        };
        Some(Mark {
            at,
            kind,
            duration: duration.or(planned),
            id,
        })
    }
}

/// `NAME=VALUE` pairs of an attribute list, quotes taken off (a quoted
/// value may hold commas).
fn split_attributes(list: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some((name, after)) = rest.split_once('=') {
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((v, next)) => (v, next),
                None => (quoted, ""),
            },
            None => after.split_once(',').map_or((after, ""), |(v, n)| (v, n)),
        };
        out.push((name.trim(), value));
        rest = next.trim_start_matches(',');
    }
    out
}

/// Decimal seconds, as playlists write them (`29.970`), read exactly: no
/// float rounding turns them into 29.969 when written again.
pub(crate) fn seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    Some(Duration::new(whole.parse().ok()?, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MarkerStyle, Markers};
    use hlsvault_ts::scte35::Cue;

    #[test]
    fn what_markers_write_reads_back() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        let mut markers = Markers::new(MarkerStyle::DateRange);
        let out = Cue::Out {
            event_id: 9,
            planned: Some(60 * 90_000),
        };
        let tag = markers.tag(out, t, &[0xFC, 0x30]).unwrap();
        let mark = Mark::of_tag(&tag, t + Duration::from_secs(1)).unwrap();
        assert_eq!(mark.at, t, "the splice time, not the entry's");
        assert_eq!(mark.kind, MarkKind::Out);
        assert_eq!(mark.duration, Some(Duration::from_secs(60)));
        assert_eq!(mark.id.as_deref(), Some("9-1795251600000"));
        let signal = markers.tag(Cue::Signal { event_id: 1 }, t, &[1]).unwrap();
        assert_eq!(Mark::of_tag(&signal, t).unwrap().kind, MarkKind::Signal);
        assert_eq!(Mark::of_tag("#EXT-X-PROGRAM-DATE-TIME:x", t), None);
        assert_eq!(Mark::of_tag("#EXT-X-DATERANGE:ID=\"a,b\"", t), None);
        assert_eq!(seconds("29.970"), Some(Duration::from_millis(29_970)));
        assert_eq!(seconds("7"), Some(Duration::from_secs(7)));
        assert_eq!(seconds("-1.5"), None);
        assert_eq!(seconds("1e3"), None);
    }
}
