//! `segment-namer`: names segments from a template (config `template`),
//! with the placeholders `{stream}`, `{sequence}`, `{duration_ms}` and the
//! UTC fields of the segment's start `{YYYY}` `{MM}` `{DD}` `{hh}` `{mm}`
//! `{ss}` `{ms}`; `{name:N}` pads a number to N digits. The default
//! template is `{stream}-{YYYY}{MM}{DD}T{hh}{mm}{ss}Z-{sequence:6}.ts`.

use plugin_support::{fill, Utc};

wit_bindgen::generate!({ path: "../../wit", world: "segment-namer" });

use exports::hlsvault::plugin::namer::Guest;
use hlsvault::plugin::types::SegmentInfo;

/// The template without config.
pub const DEFAULT_TEMPLATE: &str = "{stream}-{YYYY}{MM}{DD}T{hh}{mm}{ss}Z-{sequence:6}.ts";

/// The name of `segment` under `template`.
pub fn name(template: &str, segment: &SegmentInfo) -> Result<String, String> {
    let start = Utc::from_ms(segment.start_ms);
    fill(template, |field| match field {
        "stream" => Some(segment.stream_name.clone()),
        "sequence" => Some(segment.sequence.to_string()),
        "duration_ms" => Some(segment.duration_ms.to_string()),
        other => start.field(other),
    })
}

struct Namer;

impl Guest for Namer {
    fn name(segment: SegmentInfo) -> String {
        let template = hlsvault::plugin::host::config("template")
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
        // A template that cannot be filled gives an empty name: the host
        // refuses it and applies the plugin's on_error policy.
        name(&template, &segment).unwrap_or_else(|e| {
            hlsvault::plugin::host::log(hlsvault::plugin::host::Level::Error, &e);
            String::new()
        })
    }
}

export!(Namer);

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> SegmentInfo {
        SegmentInfo {
            stream_name: "ch1".into(),
            sequence: 42,
            start_ms: 1_795_560_600_123,
            duration_ms: 6006,
            discontinuity: false,
            default_name: "5000.123-42.ts".into(),
        }
    }

    #[test]
    fn the_default_template_names_by_stream_time_and_sequence() {
        assert_eq!(
            name(DEFAULT_TEMPLATE, &segment()).unwrap(),
            "ch1-20261124T225000Z-000042.ts"
        );
        assert_eq!(
            name("{hh}{mm}/{ss}.{ms}-{sequence}-{duration_ms}.ts", &segment()).unwrap(),
            "2250/00.123-42-6006.ts"
        );
        assert!(name("{nope}.ts", &segment()).is_err());
    }
}
