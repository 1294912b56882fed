//! `marker-tags`: writes each SCTE-35 marker of a segment as the tags an ad
//! stack reads, before the segment's entry. Built against
//! `hlsvault:plugin@0.2.0`, whose `entry-tags` is told the markers.
//!
//! Config `cue_out`, `cue_in` and `signal`: the tags for each kind of
//! marker, one per line, with the placeholders `{base64}` and `{hex}` (the
//! `splice_info_section`), `{event}`, `{at}` (RFC 3339), `{duration}` (the
//! planned seconds of a cue-out, else empty), `{type}` (a `time_signal`'s
//! segmentation type, `0x34`, else empty), `{stream}` and `{sequence}`.
//! Each defaults to `#EXT-OATCLS-SCTE35:{base64}`, the tag of Adobe's and
//! Elemental's ad insertion; an empty value writes nothing for that kind.
//! `live = false` leaves the live window alone.

use plugin_support::{fill, Utc};

wit_bindgen::generate!({ path: "../../wit", world: "playlist-policy" });

use exports::hlsvault::plugin::policy::Guest;
use hlsvault::plugin::host::{self, Level};
use hlsvault::plugin::types::{MarkerInfo, MarkerKind, PlaylistKind, SegmentInfo};

/// What each kind of marker becomes when its config key is not set.
const DEFAULT_TEMPLATE: &str = "#EXT-OATCLS-SCTE35:{base64}";

/// The tags of `marker` in `segment`, from `template` (one tag per line,
/// blank lines skipped).
pub fn marker_tags(
    template: &str,
    segment: &SegmentInfo,
    marker: &MarkerInfo,
) -> Result<Vec<String>, String> {
    template
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            fill(l, |field| {
                Some(match field {
                    "base64" => base64(&marker.section),
                    "hex" => upper_hex(&marker.section),
                    "event" => marker.event_id.to_string(),
                    "at" => Utc::from_ms(marker.at_ms).rfc3339(),
                    "duration" => marker
                        .planned_duration_ms
                        .map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000))
                        .unwrap_or_default(),
                    "type" => marker
                        .segmentation_type
                        .map(|t| format!("0x{t:02X}"))
                        .unwrap_or_default(),
                    "stream" => segment.stream_name.clone(),
                    "sequence" => segment.sequence.to_string(),
                    _ => return None,
                })
            })
        })
        .collect()
}

/// The config key of a kind of marker.
fn key(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::CueOut => "cue_out",
        MarkerKind::CueIn => "cue_in",
        MarkerKind::Signal => "signal",
    }
}

/// `0x` and the bytes in upper-case hex, as `SCTE35-OUT` writes them.
fn upper_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(match i <= chunk.len() {
                true => ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char,
                false => '=',
            });
        }
    }
    out
}

struct Tags;

impl Guest for Tags {
    fn header_tags(_stream_name: String, _kind: PlaylistKind) -> Vec<String> {
        Vec::new()
    }

    fn entry_tags(
        segment: SegmentInfo,
        markers: Vec<MarkerInfo>,
        kind: PlaylistKind,
    ) -> Vec<String> {
        if kind == PlaylistKind::Live && host::config("live").as_deref() == Some("false") {
            return Vec::new();
        }
        let mut tags = Vec::new();
        for marker in &markers {
            let template = host::config(key(marker.kind));
            let template = template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
            match marker_tags(template, &segment, marker) {
                Ok(more) => tags.extend(more),
                Err(e) => host::log(Level::Error, &format!("{}: {e}", key(marker.kind))),
            }
        }
        tags
    }
}

export!(Tags);

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> SegmentInfo {
        SegmentInfo {
            stream_name: "ch1".into(),
            sequence: 7,
            start_ms: 1_795_560_600_000,
            duration_ms: 6000,
            discontinuity: false,
            default_name: "x.ts".into(),
        }
    }

    #[test]
    fn base64_pads_as_rfc_4648_says() {
        // RFC 4648 section 10's test vectors.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xFC, 0x30, 0xFF]), "/DD/");
    }

    #[test]
    fn a_cue_out_fills_every_placeholder() {
        let out = MarkerInfo {
            kind: MarkerKind::CueOut,
            event_id: 77,
            at_ms: 1_795_560_605_000,
            planned_duration_ms: Some(30_000),
            segmentation_type: Some(0x34),
            section: vec![0xFC, 0x30, 0x11],
        };
        let template = "#EXT-OATCLS-SCTE35:{base64}\n\n#EXT-X-CUE-OUT:{duration}\n#X-AD:EVENT={event},AT={at},TYPE={type},HEX={hex},ON={stream}/{sequence}";
        assert_eq!(
            marker_tags(template, &segment(), &out).unwrap(),
            [
                "#EXT-OATCLS-SCTE35:/DAR",
                "#EXT-X-CUE-OUT:30.000",
                "#X-AD:EVENT=77,AT=2026-11-24T22:50:05.000Z,TYPE=0x34,HEX=0xFC3011,ON=ch1/7",
            ]
        );
    }

    #[test]
    fn what_a_marker_lacks_is_empty_and_an_unknown_placeholder_is_an_error() {
        let back = MarkerInfo {
            kind: MarkerKind::CueIn,
            event_id: 77,
            at_ms: 0,
            planned_duration_ms: None,
            segmentation_type: None,
            section: vec![0xFC],
        };
        assert_eq!(
            marker_tags("#X:{duration}|{type}", &segment(), &back).unwrap(),
            ["#X:|"]
        );
        assert!(marker_tags("#X:{nope}", &segment(), &back).is_err());
        assert_eq!(
            marker_tags(DEFAULT_TEMPLATE, &segment(), &back).unwrap(),
            ["#EXT-OATCLS-SCTE35:/A=="]
        );
    }
}
