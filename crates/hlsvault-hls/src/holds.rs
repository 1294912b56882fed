//! `{stream}/holds.txt`: the ranges of a stream that retention must not
//! delete (a legal hold), one per line: `ID START END REASON`, times in
//! RFC 3339. One object per stream in the store, so that every process
//! sees the same holds and they outlive restarts.

use std::fmt::Write as _;
use std::time::SystemTime;

use hlsvault_ts::clock::writable;
use hlsvault_ts::Hour;

/// One hold: `[start, end)` is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Unique in the stream, never reused while the hold is listed.
    pub id: u32,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Why (one line).
    pub reason: String,
}

/// A stream's holds.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_hls::{Holds, Hour};
/// let nine = Hour::parse("2026-11-21T09").unwrap();
/// let mut holds = Holds::default();
/// let id = holds.add(nine.start() + Duration::from_secs(600), nine.start() + Duration::from_secs(4000), "case 42");
/// let text = holds.render();
/// assert_eq!(text, "1 2026-11-21T09:10:00Z 2026-11-21T10:06:40Z case 42\n");
/// let back = Holds::parse(&text).unwrap();
/// assert!(back.covers(nine) && back.covers(nine.next()) && !back.covers(nine.next().next()));
/// assert_eq!(back.list()[0].id, id);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds(Vec<Hold>);

/// A holds object that cannot be read: retention must not guess.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct HoldsError {
    pub line: usize,
    pub reason: &'static str,
}

impl Holds {
    /// Reads the text back.
    pub fn parse(text: &str) -> Result<Self, HoldsError> {
        let mut holds = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let err = |reason| HoldsError {
                line: n + 1,
                reason,
            };
            let mut fields = line.splitn(4, ' ');
            let mut next = |what| fields.next().ok_or(err(what));
            let id = next("no id")?.parse().map_err(|_| err("bad id"))?;
            let start =
                humantime::parse_rfc3339(next("no start")?).map_err(|_| err("bad start"))?;
            let end = humantime::parse_rfc3339(next("no end")?).map_err(|_| err("bad end"))?;
            let reason = fields.next().unwrap_or_default().to_string();
            holds.push(Hold {
                id,
                start,
                end,
                reason,
            });
        }
        Ok(Holds(holds))
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for h in &self.0 {
            let _ = writeln!(
                s,
                "{} {} {} {}",
                h.id,
                humantime::format_rfc3339(h.start),
                humantime::format_rfc3339(h.end),
                h.reason
            );
        }
        s
    }

    /// Holds `[start, end)` (whole seconds, inside what the archive can
    /// name) for `reason` (kept on one line); returns its id.
    pub fn add(&mut self, start: SystemTime, end: SystemTime, reason: &str) -> u32 {
        let id = self.0.iter().map(|h| h.id).max().unwrap_or(0) + 1;
        let second = |t: SystemTime| {
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            writable(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        };
        let reason: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.0.push(Hold {
            id,
            start: second(start),
            end: second(end),
            reason: reason.trim().to_string(),
        });
        id
    }

    /// Takes the hold `id` off; None if there is none.
    pub fn remove(&mut self, id: u32) -> Option<Hold> {
        let at = self.0.iter().position(|h| h.id == id)?;
        Some(self.0.remove(at))
    }

    /// The holds, in the order added.
    pub fn list(&self) -> &[Hold] {
        &self.0
    }

    /// The hold that keeps `hour`, if any: one whose range overlaps it.
    pub fn keeping(&self, hour: Hour) -> Option<&Hold> {
        let (from, to) = (hour.start(), hour.next().start());
        self.0.iter().find(|h| h.start < to && from < h.end)
    }

    /// Whether a hold keeps `hour`.
    pub fn covers(&self, hour: Hour) -> bool {
        self.keeping(hour).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_hold_ending_on_the_hour_keeps_only_the_hours_before() {
        let nine = Hour::parse("2026-11-21T09").unwrap();
        let mut holds = Holds::default();
        holds.add(nine.start(), nine.next().start(), "one hour");
        assert!(holds.covers(nine));
        assert!(!holds.covers(nine.next()));
        assert!(!holds.covers(Hour::from_index(nine.index() - 1)));
    }

    #[test]
    fn ids_are_not_reused_while_listed_and_reasons_stay_on_one_line() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        let mut holds = Holds::default();
        let a = holds.add(t, t + Duration::from_secs(60), "first\nline two");
        let b = holds.add(t, t + Duration::from_secs(60), "second");
        assert_eq!((a, b), (1, 2));
        assert_eq!(holds.remove(a).unwrap().reason, "first line two");
        assert_eq!(holds.add(t, t, "third"), 3);
        assert_eq!(holds.remove(9), None);
        let back = Holds::parse(&holds.render()).unwrap();
        assert_eq!(back, holds);
    }

    #[test]
    fn a_corrupt_holds_object_is_an_error_naming_the_line() {
        let e = Holds::parse("1 2026-11-21T09:00:00Z 2026-11-21T10:00:00Z ok\n2 yesterday\n")
            .unwrap_err();
        assert_eq!((e.line, e.reason), (2, "bad start"));
    }
}
