//! Reading an archive back: playlists parsed independently of hlsvault's
//! own parser, and segments checked with ffprobe and ffmpeg.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::{decode_errors, probe_packets};

/// The 33-bit PTS wrap, in seconds.
pub const PTS_WRAP_SECS: f64 = (1u64 << 33) as f64 / 90_000.0;

/// The hour playlists under a stream's folder, in hour order.
pub fn hour_playlists(stream_dir: &Path) -> Vec<(PathBuf, Playlist)> {
    let mut found = Vec::new();
    let mut stack = vec![stream_dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() == "index.m3u8" {
                found.push(p);
            }
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|p| (p.clone(), Playlist::read(&p)))
        .collect()
}

/// A media playlist as the tests read it (independently of hlsvault's own parser).
#[derive(Debug)]
pub struct Playlist {
    /// `#EXT-X-TARGETDURATION`.
    pub target: u64,
    /// `#EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// Has `#EXT-X-ENDLIST`.
    pub ended: bool,
    /// The segments, in order.
    pub entries: Vec<Entry>,
}

/// One segment entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The URI as written.
    pub uri: String,
    /// `#EXTINF` seconds.
    pub extinf: f64,
    /// `#EXT-X-PROGRAM-DATE-TIME`, if given.
    pub pdt: Option<SystemTime>,
    /// Preceded by `#EXT-X-DISCONTINUITY`.
    pub discontinuity: bool,
    /// The attributes of each `#EXT-X-DATERANGE` before it (quoted
    /// values unquoted).
    pub dateranges: Vec<BTreeMap<String, String>>,
    /// Every line between the previous entry's URI (or the playlist's
    /// start) and its own, in order, but `#EXTINF`.
    pub tags: Vec<String>,
    /// The segment file, resolved against the playlist's folder.
    pub path: PathBuf,
}

impl Playlist {
    /// Reads a playlist file.
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap();
        let mut p = Playlist {
            target: 0,
            media_sequence: 0,
            ended: false,
            entries: vec![],
        };
        let (mut extinf, mut pdt, mut disc) = (None, None, false);
        let (mut dateranges, mut tags) = (Vec::new(), Vec::new());
        assert!(text.starts_with("#EXTM3U\n"));
        for line in text.lines() {
            if line.starts_with('#') && !line.starts_with("#EXTINF:") {
                tags.push(line.to_string());
            }
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                p.media_sequence = v.parse().unwrap();
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                assert_eq!(
                    v.len(),
                    "2026-11-21T09:59:50.123Z".len(),
                    "PDT with milliseconds: {v}"
                );
                pdt = Some(humantime::parse_rfc3339(v).unwrap());
            } else if line == "#EXT-X-DISCONTINUITY" {
                disc = true;
            } else if let Some(v) = line.strip_prefix("#EXT-X-DATERANGE:") {
                dateranges.push(attributes(v));
            } else if line == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if !line.starts_with('#') && !line.is_empty() {
                p.entries.push(Entry {
                    uri: line.to_string(),
                    extinf: extinf.take().expect("EXTINF before URI"),
                    pdt: pdt.take(),
                    discontinuity: std::mem::take(&mut disc),
                    dateranges: std::mem::take(&mut dateranges),
                    tags: std::mem::take(&mut tags),
                    path: path.parent().unwrap().join(line),
                });
            }
        }
        p
    }
}

/// An attribute list (RFC 8216 4.2): `KEY=VALUE` pairs split at commas
/// outside quoted strings; quoted values are given without their quotes.
pub fn attributes(list: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (mut pair, mut quoted) = (String::new(), false);
    for c in list.chars().chain([',']) {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                let (k, v) = pair.split_once('=').expect("KEY=VALUE");
                out.insert(k.to_string(), v.to_string());
                pair.clear();
            }
            c => pair.push(c),
        }
    }
    out
}

/// What ffprobe says about one archived segment.
pub struct Probed {
    /// PTS of the first video (or audio) packet in file order.
    pub first_pts: f64,
    /// The largest PTS of the timing stream.
    pub max_pts: f64,
    /// The first packet of the timing stream is a keyframe.
    pub first_is_key: bool,
}

/// Probes one segment: `timing` is "video" or "audio".
pub fn probe(path: &Path, timing: &str) -> Probed {
    let packets = probe_packets(path.to_str().unwrap()).unwrap();
    let timed: Vec<_> = packets
        .iter()
        .filter(|p| p.codec_type == timing && p.pts_time.is_some())
        .collect();
    assert!(!timed.is_empty(), "{path:?} has {timing} packets");
    let first = timed[0].pts_time.unwrap();
    // Unwrap PTS that crossed the 33-bit wrap inside the file.
    let unwrap = |t: f64| {
        if t < first - PTS_WRAP_SECS / 2.0 {
            t + PTS_WRAP_SECS
        } else {
            t
        }
    };
    Probed {
        first_pts: first,
        max_pts: timed
            .iter()
            .map(|p| unwrap(p.pts_time.unwrap()))
            .fold(f64::MIN, f64::max),
        first_is_key: timed[0].key,
    }
}

/// Every entry: decodes on its own without errors, starts with a keyframe,
/// and its EXTINF is the PTS distance to the next entry's first frame
/// (to the millisecond), or to the end of its last frame at a break.
pub fn check_timeline(entries: &[Entry], timing: &str, frame: f64) {
    let probed: Vec<Probed> = entries.iter().map(|e| probe(&e.path, timing)).collect();
    for (i, e) in entries.iter().enumerate() {
        let errors = decode_errors(e.path.to_str().unwrap()).unwrap();
        assert!(
            errors.trim().is_empty(),
            "{} does not decode cleanly: {errors}",
            e.uri
        );
        assert!(probed[i].first_is_key, "{} starts with a keyframe", e.uri);
        let contiguous = entries.get(i + 1).filter(|n| !n.discontinuity);
        let expected = match contiguous {
            Some(_) => (probed[i + 1].first_pts - probed[i].first_pts).rem_euclid(PTS_WRAP_SECS),
            None => probed[i].max_pts - probed[i].first_pts + frame,
        };
        assert!(
            (e.extinf - expected).abs() < 0.001,
            "{}: EXTINF {} but PTS says {expected}",
            e.uri,
            e.extinf
        );
    }
}

/// What the files directly in `dir` hold, in bytes.
pub fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}
