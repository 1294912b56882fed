//! SCTE-35 markers as playlist tags: `#EXT-X-DATERANGE` with the section
//! in `SCTE35-OUT`, `SCTE35-IN` or `SCTE35-CMD` (RFC 8216bis 4.4.5.1), or
//! the older `#EXT-X-CUE-OUT` / `#EXT-X-CUE-IN` of ad stacks that predate
//! it.
//!
//! A break's in-point repeats its out-point's `ID` and `START-DATE` and
//! adds the `DURATION` it turned out to have: that is how a player pairs
//! them. [`Markers`] remembers the open breaks to do so.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use hlsvault_hls::{MarkerStyle, Markers};
//! use hlsvault_ts::scte35::Cue;
//! let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
//! let mut markers = Markers::new(MarkerStyle::DateRange);
//! let out = markers.tag(Cue::Out { event_id: 7, planned: Some(30 * 90_000) }, at, &[0xFC, 0x30]);
//! assert_eq!(
//!     out.unwrap(),
//!     "#EXT-X-DATERANGE:ID=\"7-1795251600000\",START-DATE=\"2026-11-21T09:00:00.000Z\",\
//!      PLANNED-DURATION=30.000,SCTE35-OUT=0xFC30"
//! );
//! let back = markers.tag(Cue::In { event_id: 7 }, at + Duration::from_millis(29_970), &[0xFC, 0x31]);
//! assert_eq!(
//!     back.unwrap(),
//!     "#EXT-X-DATERANGE:ID=\"7-1795251600000\",START-DATE=\"2026-11-21T09:00:00.000Z\",\
//!      DURATION=29.970,SCTE35-IN=0xFC31"
//! );
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hlsvault_ts::clock::writable;
use hlsvault_ts::scte35::Cue;

/// Which tags markers become (`scte35_tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MarkerStyle {
    /// `#EXT-X-DATERANGE` with the SCTE-35 section.
    #[default]
    DateRange,
    /// `#EXT-X-CUE-OUT:<seconds>` and `#EXT-X-CUE-IN`.
    Cue,
    /// None: markers are counted, not written.
    None,
}

/// Breaks kept open at most (an encoder that never sends its in-points
/// must not grow this without bound).
const MAX_OPEN: usize = 64;

/// Turns markers into tags, pairing each break's in with its out.
#[derive(Debug, Clone)]
pub struct Markers {
    style: MarkerStyle,
    /// Open breaks: event id to the out-point's time.
    open: HashMap<u32, SystemTime>,
}

impl Markers {
    pub fn new(style: MarkerStyle) -> Self {
        Markers {
            style,
            open: HashMap::new(),
        }
    }

    /// The tag for a marker at `at` (the splice's time on the wall
    /// clock), from `section` (the `splice_info_section` as sent); None
    /// if the style writes none.
    pub fn tag(&mut self, cue: Cue, at: SystemTime, section: &[u8]) -> Option<String> {
        let at = writable(at);
        let (id_start, end) = match cue {
            Cue::Out { event_id, .. } => {
                if self.open.len() >= MAX_OPEN {
                    // The oldest break never came back in: forget it.
                    let oldest = self.open.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k);
                    oldest.map(|k| self.open.remove(&k));
                }
                self.open.insert(event_id, at);
                (at, None)
            }
            Cue::In { event_id } => match self.open.remove(&event_id) {
                Some(out) => (out, Some(at)),
                // The out was before the archive began: the in stands alone.
                None => (at, None),
            },
            Cue::Signal { .. } => (at, None),
        };
        match self.style {
            MarkerStyle::None => None,
            MarkerStyle::Cue => match cue {
                Cue::Out { planned, .. } => Some(match planned {
                    Some(ticks) => format!("#EXT-X-CUE-OUT:{}", seconds(ticks_duration(ticks))),
                    None => "#EXT-X-CUE-OUT".to_string(),
                }),
                Cue::In { .. } => Some("#EXT-X-CUE-IN".to_string()),
                Cue::Signal { .. } => None,
            },
            MarkerStyle::DateRange => {
                let event_id = match cue {
                    Cue::Out { event_id, .. } | Cue::In { event_id } | Cue::Signal { event_id } => {
                        event_id
                    }
                };
                let ms = id_start
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                let mut tag = format!(
                    "#EXT-X-DATERANGE:ID=\"{event_id}-{ms}\",START-DATE=\"{}\"",
                    humantime::format_rfc3339_millis(id_start)
                );
                let (attribute, extra) = match cue {
                    Cue::Out { planned, .. } => (
                        "SCTE35-OUT",
                        planned
                            .map(|t| format!(",PLANNED-DURATION={}", seconds(ticks_duration(t)))),
                    ),
                    Cue::In { .. } => (
                        "SCTE35-IN",
                        end.map(|end| {
                            let length = end.duration_since(id_start).unwrap_or_default();
                            format!(",DURATION={}", seconds(length))
                        }),
                    ),
                    Cue::Signal { .. } => ("SCTE35-CMD", None),
                };
                tag.push_str(&extra.unwrap_or_default());
                let _ = write!(tag, ",{attribute}=0x");
                for b in section {
                    let _ = write!(tag, "{b:02X}");
                }
                Some(tag)
            }
        }
    }
}

fn ticks_duration(ticks: u64) -> Duration {
    Duration::from_nanos(ticks.saturating_mul(100_000) / 9)
}

/// Seconds to the millisecond, as DATERANGE's decimal-floating-point.
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600 + secs)
    }

    #[test]
    fn cue_style_writes_cue_out_with_its_planned_length_and_cue_in() {
        let mut m = Markers::new(MarkerStyle::Cue);
        let out = Cue::Out {
            event_id: 1,
            planned: Some(60 * 90_000),
        };
        assert_eq!(m.tag(out, at(0), &[]).unwrap(), "#EXT-X-CUE-OUT:60.000");
        assert_eq!(
            m.tag(Cue::In { event_id: 1 }, at(60), &[]).unwrap(),
            "#EXT-X-CUE-IN"
        );
        assert_eq!(m.tag(Cue::Signal { event_id: 2 }, at(61), &[]), None);
    }

    #[test]
    fn an_in_without_its_out_stands_alone_and_a_signal_is_a_cmd() {
        let mut m = Markers::new(MarkerStyle::DateRange);
        let back = m.tag(Cue::In { event_id: 3 }, at(5), &[0xAB]).unwrap();
        assert_eq!(
            back,
            "#EXT-X-DATERANGE:ID=\"3-1795251605000\",START-DATE=\"2026-11-21T09:00:05.000Z\",SCTE35-IN=0xAB"
        );
        let signal = m.tag(Cue::Signal { event_id: 4 }, at(6), &[0x01]).unwrap();
        assert!(signal.ends_with(",SCTE35-CMD=0x01"), "{signal}");
        assert_eq!(
            Markers::new(MarkerStyle::None).tag(Cue::Signal { event_id: 4 }, at(6), &[]),
            None
        );
    }

    #[test]
    fn breaks_that_never_end_are_forgotten_past_the_limit() {
        let mut m = Markers::new(MarkerStyle::DateRange);
        for id in 0..MAX_OPEN as u32 + 10 {
            let out = Cue::Out {
                event_id: id,
                planned: None,
            };
            m.tag(out, at(u64::from(id)), &[]);
        }
        assert_eq!(m.open.len(), MAX_OPEN);
        // The oldest went first: its in no longer finds it.
        let back = m.tag(Cue::In { event_id: 0 }, at(100), &[]).unwrap();
        assert!(!back.contains("DURATION"), "{back}");
        let paired = m.tag(Cue::In { event_id: 70 }, at(100), &[]).unwrap();
        assert!(paired.contains(",DURATION=30.000,"), "{paired}");
    }
}
