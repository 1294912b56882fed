//! The status page's timeline: one SVG row per stream across a day (or
//! the last 24 h), drawn here from what the ranges API answers: recorded
//! stretches, the gaps between them (coloured by cause), SCTE-35 markers
//! and holds. Each recorded stretch links to its range playlist, which
//! the page plays in hls.js; every shape carries its times (`data-start`,
//! `data-end`) as the ranges API writes them.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::ranges::{time, Catalogue};

/// The row's size in pixels: 40 a hour.
pub const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 40.0;
/// The band the recorded stretches and gaps fill (top, height); the
/// hours are labelled above it.
const BAND: (f64, f64) = (14.0, 18.0);

/// Colours, named for the test that reads them back from a screenshot.
pub const RECORDED: &str = "#2e9e5b";
pub const GAP: &str = "#d64541";
const MARK: &str = "#1d2530";
const HOLD: &str = "#7c4dff";

/// A day to show: `[start, start + 24 h)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: SystemTime,
    pub end: SystemTime,
}

impl Window {
    /// The 24 h before `now`, at the next whole hour.
    pub fn last_day(now: SystemTime) -> Self {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(secs.div_ceil(3600) * 3600);
        Window::from_end(end)
    }

    /// The UTC day `YYYY-MM-DD`.
    pub fn day(day: &str) -> Option<Self> {
        let start = humantime::parse_rfc3339(&format!("{day}T00:00:00Z")).ok()?;
        Some(Window {
            start,
            end: start + Duration::from_secs(86_400),
        })
    }

    fn from_end(end: SystemTime) -> Self {
        Window {
            start: end - Duration::from_secs(86_400),
            end,
        }
    }

    /// Its day's label, `YYYY-MM-DD` (of its start).
    pub fn label(&self) -> String {
        time(self.start)[..10].to_string()
    }

    /// The day before and the day after.
    pub fn neighbours(&self) -> (String, String) {
        let day = Duration::from_secs(86_400);
        let before = Window::from_end(self.start);
        let after = Window {
            start: self.start + day,
            end: self.end + day,
        };
        (before.label(), after.label())
    }

    /// Where `t` falls on the row, clamped to it.
    fn x(&self, t: SystemTime) -> f64 {
        let span = self.end.duration_since(self.start).unwrap_or_default();
        let into = t.duration_since(self.start).unwrap_or_default().min(span);
        WIDTH * into.as_secs_f64() / span.as_secs_f64().max(1.0)
    }
}

/// The SVG row of stream `name` for what `c` holds in `w`.
pub fn row(name: &str, c: &Catalogue, w: &Window) -> String {
    let mut svg = format!(
        r##"<svg class="timeline" data-stream="{name}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><rect width="{WIDTH}" height="{HEIGHT}" fill="#f4f6f8"/>"##
    );
    // A tick each hour; each third one longer and labelled (UTC).
    let first_hour = time(w.start)[11..13].parse::<u32>().unwrap_or(0);
    for h in 0..=24 {
        let x = WIDTH * f64::from(h) / 24.0;
        let top = if h % 3 == 0 { 0.0 } else { 32.0 };
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{HEIGHT}" stroke="#c9d0d8" stroke-width="1"/>"##
        );
        if h % 3 == 0 && h < 24 {
            let label = (first_hour + h) % 24;
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="10" font-size="10" fill="#6b7785">{label:02}:00</text>"##,
                x + 3.0
            );
        }
    }
    let (y, h) = (BAND.0, BAND.1);
    let span = |start: SystemTime, end: SystemTime| {
        let x = w.x(start);
        (x, (w.x(end) - x).max(1.0))
    };
    for r in &c.ranges.recorded {
        let (x, width) = span(r.start, r.end);
        let (start, end) = (time(r.start), time(r.end));
        let _ = write!(
            svg,
            r#"<a class="play" href="streams/{name}/archive.m3u8?start={start}&amp;end={end}"><rect class="recorded" data-start="{start}" data-end="{end}" x="{x:.2}" y="{y}" width="{width:.2}" height="{h}" fill="{RECORDED}"><title>recorded {start} to {end}: click to play</title></rect></a>"#
        );
    }
    for g in &c.ranges.gaps {
        let (x, width) = span(g.start, g.end);
        let (start, end, cause) = (time(g.start), time(g.end), g.cause.as_str());
        let _ = write!(
            svg,
            r#"<rect class="gap" data-start="{start}" data-end="{end}" data-cause="{cause}" x="{x:.2}" y="{y}" width="{width:.2}" height="{h}" fill="{GAP}"><title>gap {start} to {end}: {cause}</title></rect>"#
        );
    }
    for hold in &c.holds {
        let (x, width) = span(hold.start.max(w.start), hold.end.min(w.end));
        let (start, end) = (time(hold.start), time(hold.end));
        let reason = super::page::html_escape(&hold.reason);
        let _ = write!(
            svg,
            r#"<rect class="hold" data-start="{start}" data-end="{end}" x="{x:.2}" y="2" width="{width:.2}" height="{}" fill="none" stroke="{HOLD}" stroke-width="2"><title>held {start} to {end}: {reason}</title></rect>"#,
            HEIGHT - 4.0
        );
    }
    for m in &c.ranges.marks {
        let x = w.x(m.at);
        let at = time(m.at);
        let kind = m.kind.as_str();
        let _ = write!(
            svg,
            r#"<line class="marker" data-at="{at}" data-kind="{kind}" x1="{x:.2}" x2="{x:.2}" y1="2" y2="{}" stroke="{MARK}" stroke-width="2"><title>SCTE-35 {kind} at {at}</title></line>"#,
            HEIGHT - 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_hls::{Gap, GapCause, Hold, Ranges, Span};

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn stretches_fall_where_their_times_are_on_a_day_of_960_pixels() {
        let w = Window::day("2026-11-21").unwrap();
        let c = Catalogue {
            start: w.start,
            end: w.end,
            ranges: Ranges {
                recorded: vec![
                    Span {
                        start: at("2026-11-21T06:00:00Z"),
                        end: at("2026-11-21T12:00:00Z"),
                    },
                    Span {
                        start: at("2026-11-21T13:30:00Z"),
                        end: at("2026-11-21T18:00:00Z"),
                    },
                ],
                gaps: vec![Gap {
                    start: at("2026-11-21T12:00:00Z"),
                    end: at("2026-11-21T13:30:00Z"),
                    cause: GapCause::Stall,
                }],
                marks: Vec::new(),
            },
            holds: vec![Hold {
                id: 1,
                start: at("2026-11-20T23:00:00Z"),
                end: at("2026-11-21T01:00:00Z"),
                reason: "case <7> & co".into(),
            }],
        };
        let svg = row("ch1", &c, &w);
        assert!(svg.contains(r#"href="streams/ch1/archive.m3u8?start=2026-11-21T06:00:00.000Z&amp;end=2026-11-21T12:00:00.000Z""#), "{svg}");
        assert!(svg.contains(r#"x="240.00" y="14" width="240.00""#), "{svg}");
        assert!(
            svg.contains(r#"data-cause="stall" x="480.00" y="14" width="60.00""#),
            "{svg}"
        );
        // A hold from the day before starts at the row's edge; its reason
        // is escaped.
        assert!(svg.contains(r#"class="hold" data-start="2026-11-20T23:00:00.000Z" data-end="2026-11-21T01:00:00.000Z" x="0.00" y="2" width="40.00""#), "{svg}");
        assert!(svg.contains("case &lt;7&gt; &amp; co"), "{svg}");
        assert!(svg.contains(">03:00</text>"), "{svg}");
    }

    #[test]
    fn the_last_day_ends_at_the_next_whole_hour_and_days_have_neighbours() {
        let w = Window::last_day(at("2026-11-21T10:20:00Z"));
        assert_eq!(w.end, at("2026-11-21T11:00:00Z"));
        assert_eq!(w.start, at("2026-11-20T11:00:00Z"));
        let day = Window::day("2026-11-21").unwrap();
        assert_eq!(day.label(), "2026-11-21");
        assert_eq!(
            day.neighbours(),
            ("2026-11-20".to_string(), "2026-11-22".to_string())
        );
        assert_eq!(Window::day("2026-13-01"), None);
    }
}
