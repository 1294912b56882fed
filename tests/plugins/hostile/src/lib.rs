//! Misbehaves as its config value `mode` says:
//! - `loop`: the filter never returns;
//! - `bomb`: the filter allocates until memory runs out;
//! - `trap`: the filter panics (a trap);
//! - `dotdot`: the namer answers `../../escape.ts`;
//! - `multiline`: the policy answers a tag with line breaks that would
//!   smuggle an entry into the playlist.
//! Otherwise every hook answers the built-in way.

wit_bindgen::generate!({
    inline: r#"
        package test:hostile;
        world hostile {
            include hlsvault:plugin/packet-filter@0.2.0;
            include hlsvault:plugin/segment-namer@0.2.0;
            include hlsvault:plugin/playlist-policy@0.2.0;
        }
    "#,
    path: "../../../wit",
    world: "test:hostile/hostile",
    generate_all,
});

use exports::hlsvault::plugin::{filter, namer, policy};
use hlsvault::plugin::host;
use hlsvault::plugin::types::{MarkerInfo, PlaylistKind, SegmentInfo, StreamInfo};

fn mode() -> String {
    host::config("mode").unwrap_or_default()
}

struct Hostile;

impl filter::Guest for Hostile {
    fn filter(_info: StreamInfo, packets: Vec<u8>) -> filter::Verdict {
        match mode().as_str() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = std::hint::black_box(n.wrapping_add(packets.len() as u64));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile plugin traps on purpose"),
            _ => filter::Verdict::KeepAll,
        }
    }
}

impl namer::Guest for Hostile {
    fn name(segment: SegmentInfo) -> String {
        match mode().as_str() {
            "dotdot" => "../../escape.ts".to_string(),
            "same" => "same.ts".to_string(),
            _ => segment.default_name,
        }
    }
}

impl policy::Guest for Hostile {
    fn header_tags(_stream_name: String, _kind: PlaylistKind) -> Vec<String> {
        Vec::new()
    }

    fn entry_tags(
        _segment: SegmentInfo,
        _markers: Vec<MarkerInfo>,
        _kind: PlaylistKind,
    ) -> Vec<String> {
        match mode().as_str() {
            "multiline" => vec!["#EXT-X-FOO\n#EXTINF:1,\nevil.ts".to_string()],
            "key" => vec!["#EXT-X-KEY:METHOD=AES-128,URI=\"https://evil.example/key\"".to_string()],
            _ => Vec::new(),
        }
    }
}

export!(Hostile);
