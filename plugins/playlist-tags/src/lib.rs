//! `playlist-tags`: adds configured tags to playlists. Config `header`:
//! header tags, one per line; `entry`: tags before every segment's entry,
//! one per line, with the placeholders `{stream}`, `{sequence}`, `{start}`
//! (RFC 3339), `{duration}` (seconds) and `{kind}` (hour or live); `live`
//! set to `false` leaves the live window alone. For example a channel tag
//! in the header and an `#EXT-X-DATERANGE` per segment.

use plugin_support::{fill, Utc};

wit_bindgen::generate!({ path: "../../wit/0.1.0", world: "playlist-policy" });

use exports::hlsvault::plugin::policy::Guest;
use hlsvault::plugin::host::{self, Level};
use hlsvault::plugin::types::{PlaylistKind, SegmentInfo};

/// The tags of `lines` (one per line, blank lines skipped) for `segment`.
pub fn entry_tags(
    lines: &str,
    segment: &SegmentInfo,
    kind: PlaylistKind,
) -> Result<Vec<String>, String> {
    let start = Utc::from_ms(segment.start_ms).rfc3339();
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            fill(l, |field| match field {
                "stream" => Some(segment.stream_name.clone()),
                "sequence" => Some(segment.sequence.to_string()),
                "start" => Some(start.clone()),
                "duration" => Some(format!("{:.3}", f64::from(segment.duration_ms) / 1000.0)),
                "kind" => Some(kind_name(kind).to_string()),
                _ => None,
            })
        })
        .collect()
}

fn kind_name(kind: PlaylistKind) -> &'static str {
    match kind {
        PlaylistKind::Hour => "hour",
        PlaylistKind::Live => "live",
    }
}

fn wanted(kind: PlaylistKind) -> bool {
    kind == PlaylistKind::Hour || host::config("live").as_deref() != Some("false")
}

struct Tags;

impl Guest for Tags {
    fn header_tags(_stream_name: String, kind: PlaylistKind) -> Vec<String> {
        match wanted(kind) {
            true => host::config("header")
                .unwrap_or_default()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            false => Vec::new(),
        }
    }

    fn entry_tags(segment: SegmentInfo, kind: PlaylistKind) -> Vec<String> {
        if !wanted(kind) {
            return Vec::new();
        }
        entry_tags(&host::config("entry").unwrap_or_default(), &segment, kind).unwrap_or_else(|e| {
            host::log(Level::Error, &format!("entry: {e}"));
            Vec::new()
        })
    }
}

export!(Tags);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_tags_fill_per_segment() {
        let s = SegmentInfo {
            stream_name: "ch1".into(),
            sequence: 7,
            start_ms: 1_795_560_600_000,
            duration_ms: 6000,
            discontinuity: false,
            default_name: "x.ts".into(),
        };
        let lines = "#EXT-X-DATERANGE:ID=\"{stream}-{sequence}\",START-DATE=\"{start}\",DURATION={duration}\n\n#X-KIND:{kind}";
        assert_eq!(
            entry_tags(lines, &s, PlaylistKind::Hour).unwrap(),
            vec![
                "#EXT-X-DATERANGE:ID=\"ch1-7\",START-DATE=\"2026-11-24T22:50:00.000Z\",DURATION=6.000".to_string(),
                "#X-KIND:hour".to_string()
            ]
        );
    }
}
