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
    if name
        .split('/')
        .any(|p| p == ".." || p == "." || p.is_empty())
    {
        return Err(format!("{name:?} has an empty, \".\" or \"..\" part"));
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!("{name:?} has a control character or a backslash"));
    }
    if !name.ends_with(".ts") {
        return Err(format!("{name:?} does not end in .ts"));
    }
    Ok(())
}

/// Playlist tags: single lines that start with `#`, bounded.
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
        // The host writes these itself; a plugin must not repeat or undo them.
        if [
            "#EXTM3U",
            "#EXTINF",
            "#EXT-X-ENDLIST",
            "#EXT-X-TARGETDURATION",
            "#EXT-X-MEDIA-SEQUENCE",
            "#EXT-X-VERSION",
        ]
        .iter()
        .any(|own| t.starts_with(own))
        {
            return Err(format!("{t:?} is a tag the host writes itself"));
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
