//! The answer to "what is recorded between these times": the recorded
//! ranges, the gaps with their causes, the SCTE-35 markers, and the holds
//! that overlap, as JSON
//! (`GET /streams/{name}/ranges`) or a table (`hlsvault ranges`).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hlsvault_hls::{Gap, Hold, Layout, Ranges, Span};
use hlsvault_store::{ObjectStore, StoreError};
use hlsvault_ts::clock::writable;

/// A stretch of time in a report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Stretch {
    /// RFC 3339, milliseconds.
    pub start: String,
    /// RFC 3339, milliseconds.
    pub end: String,
    /// Its length.
    pub seconds: f64,
    /// For a gap: why nothing is recorded (`discontinuity`, `stall`,
    /// `store_outage`, `restart`, `plugin_dropped`, `nothing_recorded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

impl Stretch {
    /// A gap, with its cause.
    pub fn of_gap(gap: &Gap) -> Self {
        Stretch::new(gap.start, gap.end, Some(gap.cause.as_str()))
    }

    fn new(start: SystemTime, end: SystemTime, cause: Option<&'static str>) -> Self {
        Stretch {
            start: time(start),
            end: time(end),
            seconds: end.duration_since(start).unwrap_or_default().as_secs_f64(),
            cause,
        }
    }
}

/// A SCTE-35 marker in a report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Marker {
    /// When its splice happens, RFC 3339.
    pub at: String,
    /// `out` (a break starts), `in` (it ends) or `signal`.
    pub kind: &'static str,
    /// The break's length: planned at an out, as it turned out at an in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The playlist's `DATERANGE` `ID` (an out and its in share it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A hold in a report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeldRange {
    /// The hold's id (`hlsvault hold remove ID`).
    pub id: u32,
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// Why it is held.
    pub reason: String,
}

/// What a stream's archive holds within a time range.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The stream.
    pub stream: String,
    /// The range asked for, RFC 3339.
    pub start: String,
    /// The range asked for, RFC 3339.
    pub end: String,
    /// Contiguous recorded ranges, oldest first.
    pub recorded: Vec<Stretch>,
    /// The gaps between them, oldest first, each with its cause.
    pub gaps: Vec<Stretch>,
    /// SCTE-35 markers within the range, in time order.
    pub markers: Vec<Marker>,
    /// Holds that overlap the range (retention keeps their hours).
    pub holds: Vec<HeldRange>,
}

/// RFC 3339, milliseconds.
pub fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(writable(t)).to_string()
}

/// What a stream's archive holds within a time range, as read: its
/// ranges and the holds that overlap (what a report and the status
/// page's timeline are made of).
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub start: SystemTime,
    pub end: SystemTime,
    pub ranges: Ranges,
    pub holds: Vec<Hold>,
}

impl Catalogue {
    /// Reads the stream's ranges and holds within `[start, end)`. Holds
    /// that cannot be read leave the list empty (logged), not the answer.
    pub async fn read(
        store: &dyn ObjectStore,
        stream: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Catalogue, StoreError> {
        let layout = Layout::new(stream);
        let (ranges, holds) = futures_util::join!(
            super::read(store, &layout, start, end),
            crate::holds::load(store, &layout)
        );
        let ranges = ranges?;
        let holds = match holds {
            Ok(holds) => holds.list().to_vec(),
            Err(crate::holds::HoldsUnreadable::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(stream, error = %e, "the holds cannot be read; the ranges are answered without them");
                Vec::new()
            }
        };
        let holds = holds
            .into_iter()
            .filter(|h| h.start < end && start < h.end)
            .collect();
        Ok(Catalogue {
            start,
            end,
            ranges,
            holds,
        })
    }
}

impl Report {
    /// Reads the stream's ranges and holds within `[start, end)` (see
    /// [`Catalogue::read`]).
    pub async fn read(
        store: &dyn ObjectStore,
        stream: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Report, StoreError> {
        let catalogue = Catalogue::read(store, stream, start, end).await?;
        Ok(Report::of(stream, &catalogue))
    }

    /// The report of what was read.
    pub fn of(stream: &str, c: &Catalogue) -> Report {
        Report {
            stream: stream.to_string(),
            start: time(c.start),
            end: time(c.end),
            recorded: c
                .ranges
                .recorded
                .iter()
                .map(|Span { start, end }| Stretch::new(*start, *end, None))
                .collect(),
            gaps: c.ranges.gaps.iter().map(Stretch::of_gap).collect(),
            markers: c
                .ranges
                .marks
                .iter()
                .map(|m| Marker {
                    at: time(m.at),
                    kind: m.kind.as_str(),
                    seconds: m.duration.map(|d| d.as_secs_f64()),
                    id: m.id.clone(),
                })
                .collect(),
            holds: c
                .holds
                .iter()
                .map(|h| HeldRange {
                    id: h.id,
                    start: time(h.start),
                    end: time(h.end),
                    reason: h.reason.clone(),
                })
                .collect(),
        }
    }

    /// The report as a table: recorded ranges and gaps in time order, then
    /// the holds.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&Stretch, String)> = self
            .recorded
            .iter()
            .map(|s| (s, "recorded".to_string()))
            .chain(
                self.gaps
                    .iter()
                    .map(|g| (g, format!("gap: {}", g.cause.unwrap_or_default()))),
            )
            .collect();
        rows.sort_by(|a, b| a.0.start.cmp(&b.0.start));
        let mut s = format!("{:<24}  {:<24}  {:>14}  WHAT\n", "START", "END", "LENGTH");
        for (stretch, what) in rows {
            let length = humantime::format_duration(Duration::from_millis(
                (stretch.seconds * 1000.0).round() as u64,
            ));
            let _ = writeln!(
                s,
                "{:<24}  {:<24}  {:>14}  {what}",
                stretch.start,
                stretch.end,
                length.to_string()
            );
        }
        if self.recorded.is_empty() {
            let _ = writeln!(s, "(nothing of {} is recorded in this range)", self.stream);
        }
        for m in &self.markers {
            let length = m.seconds.map(|s| format!(" {s:.3} s")).unwrap_or_default();
            let id =
                m.id.as_deref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default();
            let _ = writeln!(
                s,
                "{:<24}  {:<24}  {:>14}  marker {}{length}{id}",
                m.at, "", "", m.kind
            );
        }
        for h in &self.holds {
            let _ = writeln!(
                s,
                "{:<24}  {:<24}  {:>14}  hold {}: {}",
                h.start, h.end, "", h.id, h.reason
            );
        }
        s
    }
}
