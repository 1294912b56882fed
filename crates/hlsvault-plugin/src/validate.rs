//! What the host accepts from a plugin. Anything else is a failed call.

/// Longest segment name.
pub const NAME_MAX: usize = 200;
/// Longest tag line.
pub const TAG_MAX: usize = 1024;
/// Most tags per call.
pub const TAGS_MAX: usize = 32;
/// Longest URL.
pub const URL_MAX: usize = 4096;

/// A segment's object name inside its hour folder.
pub fn segment_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!(
            "a segment name of {} bytes (1 to {NAME_MAX})",
            name.len()
        ));
    }
    if name.starts_with('/') {
        return Err(format!("{name:?} is an absolute path"));
    }
    // The store's rule for keys (hidden parts are refused there too): a
    // name the store would refuse is never handed to it.
    if name.split('/').any(|p| p.is_empty() || p.starts_with('.')) {
        return Err(format!(
            "{name:?} has a hidden, empty, \".\" or \"..\" part"
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!("{name:?} has a control character or a backslash"));
    }
    if !name.ends_with(".ts") {
        return Err(format!("{name:?} does not end in .ts"));
    }
    Ok(())
}

/// The tags of RFC 8216 (and its second edition) that change how media is
/// fetched, decoded or timed, or how the playlist is read: the host writes
/// those it needs, and a plugin may not add them. `#EXT-X-DATERANGE` is
/// the spec's too, but only describes the timeline: it is allowed.
const RESERVED: &[&str] = &[
    "#EXTM3U",
    "#EXTINF",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-BYTERANGE",
    "#EXT-X-KEY",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-GAP",
    "#EXT-X-BITRATE",
    "#EXT-X-PART",
    "#EXT-X-PART-INF",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-SKIP",
    "#EXT-X-PRELOAD-HINT",
    "#EXT-X-RENDITION-REPORT",
    "#EXT-X-MEDIA",
    "#EXT-X-STREAM-INF",
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-SESSION-DATA",
    "#EXT-X-SESSION-KEY",
    "#EXT-X-CONTENT-STEERING",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXT-X-DEFINE",
    "#EXT-X-ALLOW-CACHE",
];

/// Playlist tags: single lines that start with `#`, bounded. Allowed:
/// `#EXT-X-DATERANGE`, `#EXT-X-CUE-*`, `#EXT-X-SCTE35`, vendor tags outside
/// the spec's reserved set, and comments; refused: every tag that changes
/// how media is fetched or timed ([`RESERVED`]).
pub fn tags(tags: &[String]) -> Result<(), String> {
    if tags.len() > TAGS_MAX {
        return Err(format!("{} tags (at most {TAGS_MAX})", tags.len()));
    }
    for t in tags {
        if !t.starts_with('#') {
            return Err(format!("{t:?} does not start with #"));
        }
        if t.len() > TAG_MAX {
            return Err(format!("a tag of {} bytes (at most {TAG_MAX})", t.len()));
        }
        if t.chars().any(|c| c.is_control()) {
            return Err(format!("{t:?} is not a single line"));
        }
        // A tag's name ends at its ':' (`#EXT-X-KEYS-OF-MINE` is not a key).
        let name = t.split(':').next().unwrap_or_default();
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "{name} changes how the media is fetched or timed: the host writes it, a plugin may not"
            ));
        }
    }
    Ok(())
}

/// A playback URL: absolute (`http(s)://host/...`) or a relative reference,
/// one line, no spaces.
pub fn url(u: &str) -> Result<(), String> {
    if u.is_empty() || u.len() > URL_MAX {
        return Err(format!("a URL of {} bytes (1 to {URL_MAX})", u.len()));
    }
    if u.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{u:?} has whitespace or control characters"));
    }
    if u.contains("://") {
        let uri: http::Uri = u
            .parse()
            .map_err(|e| format!("{u:?} does not parse: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("{u:?} is not an http(s) URL with a host"));
        }
    } else if u.starts_with("//") || u.contains(':') && !u.contains('?') {
        return Err(format!(
            "{u:?} is neither an absolute URL nor a relative path"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_their_hour() {
        assert!(segment_name("ch1-000042.ts").is_ok());
        assert!(segment_name("sub/ch1-000042.ts").is_ok());
        for bad in [
            "../x.ts",
            ".x.ts",
            "sub/.hidden/x.ts",
            "a/../../x.ts",
            "/etc/x.ts",
            "a//b.ts",
            "x\n.ts",
            "a\\b.ts",
            "x.mp4",
            "",
        ] {
            assert!(segment_name(bad).is_err(), "{bad:?}");
        }
        assert!(segment_name(&format!("{}.ts", "a".repeat(NAME_MAX))).is_err());
    }

    #[test]
    fn a_name_the_namer_accepts_is_a_key_the_store_accepts() {
        let key = |name: &str| format!("ch1/2026/11/21/09/{name}");
        for name in [
            "ch1-000042.ts",
            "sub/dir/x.ts",
            "a.b.c.ts",
            ".x.ts",
            "a/.b.ts",
            "a/./b.ts",
            "x\u{7f}.ts",
            "x\u{85}.ts",
            "a//b.ts",
        ] {
            assert_eq!(
                segment_name(name).is_ok(),
                hlsvault_store::validate_key(&key(name)).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn tags_are_single_lines_of_their_own() {
        assert!(tags(&["#EXT-X-DATERANGE:ID=\"a\"".into(), "#X-CHANNEL:1".into()]).is_ok());
        for bad in [
            "EXT-X-X",
            "#A\n#EXTINF:1,\nevil.ts",
            "#EXT-X-ENDLIST",
            "#A\r",
        ] {
            assert!(tags(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(tags(&vec!["#A".to_string(); TAGS_MAX + 1]).is_err());
    }

    #[test]
    fn every_tag_that_changes_fetching_or_timing_is_refused() {
        for tag in [
            "#EXT-X-KEY:METHOD=AES-128,URI=\"https://evil/key\"",
            "#EXT-X-MAP:URI=\"init.mp4\"",
            "#EXT-X-BYTERANGE:1000@0",
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-PROGRAM-DATE-TIME:2000-01-01T00:00:00Z",
            "#EXT-X-GAP",
            "#EXT-X-DISCONTINUITY-SEQUENCE:9",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-START:TIME-OFFSET=-10",
            "#EXT-X-DEFINE:NAME=\"x\"",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            "#ext-x-key:METHOD=NONE",
            "#EXTINF:1,",
        ] {
            assert!(tags(&[tag.to_string()]).is_err(), "{tag}");
        }
        for tag in [
            "#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2026-11-21T09:00:00Z\"",
            "#EXT-X-CUE-OUT:DURATION=30",
            "#EXT-X-CUE-IN",
            "#EXT-X-CUE-OUT-CONT:ElapsedTime=5,Duration=30",
            "#EXT-X-SCTE35:CUE=\"/DAlAAAAAAAAAP/wFAUAAAABf+/+AAAAAH4AKTLgAAEAAAAAAAoAAAAA\"",
            "#EXT-X-ACME-CHANNEL:7",
            "#EXT-X-KEYS-OF-MINE:1",
            "#EXT-OATCLS-SCTE35:/DAlAAAAAAAAAP/w",
            "# a comment",
        ] {
            assert!(tags(&[tag.to_string()]).is_ok(), "{tag}");
        }
    }

    #[test]
    fn urls_parse() {
        assert!(url("https://cdn.example/ch1/2026/11/24/22/index.m3u8?token=abc&exp=1").is_ok());
        assert!(url("2026/11/24/22/index.m3u8?token=a").is_ok());
        for bad in [
            "",
            "https://",
            "ftp://x/y",
            "a b",
            "javascript:alert(1)",
            "//evil/x",
        ] {
            assert!(url(bad).is_err(), "{bad:?}");
        }
    }
}
