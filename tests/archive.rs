//! End-to-end: real streams made by ffmpeg, wrapped into pcap captures that
//! cross an hour boundary, archived by the `hlsvault` binary, and checked
//! with ffprobe and ffmpeg.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use hlsvault_testkit::archive::{
    bytes_under, check_timeline, hour_playlists, probe, Entry, Playlist, Probed, PTS_WRAP_SECS,
};
use hlsvault_testkit::{
    capture, make_ts, output_shown, write_pcap, PacketFormat, StreamSpec, Video, Wrap,
};

/// Ten seconds before 10:00 UTC: every capture crosses an hour.
fn start() -> SystemTime {
    humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap()
}

fn dst(n: u8) -> SocketAddrV4 {
    SocketAddrV4::new([239, 10, 0, n].into(), 5000)
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn archive(&self) -> PathBuf {
        self.path("archive")
    }

    /// Makes a TS file with ffmpeg.
    fn ts(&self, name: &str, spec: &StreamSpec) -> PathBuf {
        let p = self.path(name);
        make_ts(&p, spec).unwrap();
        p
    }

    /// Writes a config with one `[[streams]]` per (name, group, extra keys).
    fn config(&self, pcap: &Path, streams: &[(&str, SocketAddrV4, &str)]) -> PathBuf {
        let mut text = format!(
            "[storage]\nbackend = \"fs\"\nroot = \"{}\"\n",
            self.archive().display()
        );
        for (name, d, extra) in streams {
            text.push_str(&format!(
                "\n[[streams]]\nname = \"{name}\"\n{extra}\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\n",
                pcap.display(),
                d.ip(),
                d.port()
            ));
        }
        let p = self.path("hlsvault.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn hlsvault(&self, args: &[&str]) -> Output {
        output_shown(
            Command::new(env!("CARGO_BIN_EXE_hlsvault"))
                .args(args)
                .env("HLSVAULT_LOG", "info"),
        )
    }

    /// A capture of `seconds` of H.264 + AAC to `dst(1)` from `at`, whose
    /// datagrams `lose` (by index, ~55 a second) the network lost.
    fn lossy_capture(
        &self,
        seconds: f64,
        at: SystemTime,
        lose: Vec<std::ops::Range<u64>>,
    ) -> PathBuf {
        let spec = StreamSpec {
            seconds,
            ..Default::default()
        };
        let mut w = Wrap::new(self.ts("lossy.ts", &spec), dst(1));
        w.lose = lose;
        let pcap = self.path("lossy.pcap");
        write_pcap(&pcap, at, &[w], false).unwrap();
        pcap
    }

    /// A capture of `seconds` of H.264 + AAC to `dst(1)`, starting at `at`.
    fn capture(&self, name: &str, seconds: f64, at: SystemTime) -> PathBuf {
        capture(self.dir.path(), name, seconds, at).unwrap()
    }

    fn run(&self, config: &Path) -> String {
        let out = self.hlsvault(&["run", "--config", config.to_str().unwrap()]);
        assert!(out.status.success(), "hlsvault run failed");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Adds `keys` (TOML lines) to the config's `[storage]`.
    fn storage_keys(&self, config: &Path, keys: &str) {
        let text = std::fs::read_to_string(config).unwrap().replacen(
            "backend = \"fs\"\n",
            &format!("backend = \"fs\"\n{keys}\n"),
            1,
        );
        std::fs::write(config, text).unwrap();
    }

    /// Hour playlists of a stream, in hour order.
    fn hours(&self, stream: &str) -> Vec<(PathBuf, Playlist)> {
        hour_playlists(&self.archive().join(stream))
    }
}

/// Hour playlists: closed, PDT on the first entry and after discontinuities,
/// target duration covers rounded EXTINF. Returns all entries in order.
fn check_hours(hours: &[(PathBuf, Playlist)]) -> Vec<Entry> {
    let mut all = Vec::new();
    for (path, p) in hours {
        assert!(p.ended, "{path:?} ends with #EXT-X-ENDLIST");
        let first = &p.entries[0];
        assert!(first.pdt.is_some(), "{path:?}: first entry has a PDT");
        for e in &p.entries {
            assert!(
                !e.discontinuity || e.pdt.is_some(),
                "PDT after discontinuity"
            );
            assert!(
                (e.extinf.round() as u64) <= p.target,
                "{path:?}: target {} < {}",
                p.target,
                e.extinf
            );
        }
        all.extend(p.entries.iter().cloned());
    }
    all
}

/// Media sequence numbers run on from one hour to the next.
fn check_sequence_across_hours(hours: &[(PathBuf, Playlist)]) {
    for w in hours.windows(2) {
        let (a, b) = (&w[0].1, &w[1].1);
        assert_eq!(
            b.media_sequence,
            a.media_sequence + a.entries.len() as u64,
            "{:?}",
            w[1].0
        );
    }
}

/// Entries cut at the target: the next entry follows in the same hour
/// without a break (the others end at an hour, a break or the end).
fn cut_at_target(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .windows(2)
        .filter(|w| !w[1].discontinuity && hour_of(&w[0]) == hour_of(&w[1]))
        .map(|w| &w[0])
        .collect()
}

fn hour_of(e: &Entry) -> String {
    humantime::format_rfc3339(e.pdt.unwrap()).to_string()[..13].to_string()
}

#[test]
fn h264_2s_gop_crosses_the_hour_with_exact_timing() {
    let c = Case::new();
    let ts = c.ts("a.ts", &StreamSpec::default());
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], true).unwrap();
    let config = c.config(&pcap, &[("ch1", dst(1), "")]);
    let summary = c.run(&config);
    assert!(summary.contains("ch1: "), "{summary}");
    assert!(
        summary.contains(" 0 CC errors, 0 discontinuities"),
        "{summary}"
    );
    assert!(
        summary.contains("not TS)"),
        "noise on the port is counted: {summary}"
    );

    let hours = c.hours("ch1");
    assert_eq!(hours.len(), 2, "two hours");
    assert!(hours[0].0.ends_with("ch1/2026/11/21/09/index.m3u8"));
    assert!(hours[1].0.ends_with("ch1/2026/11/21/10/index.m3u8"));
    // The last segment of 09 starts before 10:00, the first of 10 at or after it,
    // and it is the first keyframe after 10:00 (2 s GOP).
    let last09 = hours[0].1.entries.last().unwrap();
    let first10 = &hours[1].1.entries[0];
    assert_eq!(hour_of(last09), "2026-11-21T09");
    assert_eq!(hour_of(first10), "2026-11-21T10");
    let into_hour = first10
        .pdt
        .unwrap()
        .duration_since(humantime::parse_rfc3339("2026-11-21T10:00:00Z").unwrap())
        .unwrap();
    assert!(
        into_hour.as_secs_f64() < 2.0,
        "cut at the first keyframe after the hour: {into_hour:?}"
    );

    let entries = check_hours(&hours);
    check_sequence_across_hours(&hours);
    assert!(
        entries.iter().all(|e| !e.discontinuity),
        "a clean stream has no discontinuity"
    );
    check_timeline(&entries, "video", 0.04);
    let total: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!((total - 20.0).abs() < 0.05, "all 20 s archived: {total}");

    // The live window lists the last segments, relative to the stream folder.
    let live = Playlist::read(&c.archive().join("ch1/live.m3u8"));
    assert!(
        live.entries.len() <= 5
            && live
                .entries
                .last()
                .unwrap()
                .uri
                .starts_with("2026/11/21/10/")
    );
    assert!(c.archive().join("ch1").join(&live.entries[0].uri).is_file());
    let log = std::fs::read_to_string(c.archive().join("ch1/hours.log")).unwrap();
    assert_eq!(
        log,
        "2026-11-21T09 2026/11/21/09/index.m3u8\n2026-11-21T10 2026/11/21/10/index.m3u8\n"
    );
}

#[test]
fn h264_10s_gop_waits_for_keyframes() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 40.0,
            gop: 250,
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    c.run(&c.config(&pcap, &[("ch1", dst(1), "segment_duration = \"6s\"")]));
    let entries = check_hours(&c.hours("ch1"));
    for e in &entries[..entries.len() - 1] {
        assert!(
            (e.extinf - 10.0).abs() < 0.001,
            "10 s GOP gives 10 s segments: {}",
            e.extinf
        );
    }
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn hevc_without_random_access_indicator_cuts_at_irap() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            video: Video::Hevc,
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    let mut w = Wrap::new(&ts, dst(1));
    w.clear_rai = true;
    write_pcap(&pcap, start(), &[w], false).unwrap();
    c.run(&c.config(&pcap, &[("hevc", dst(1), "")]));
    let entries = check_hours(&c.hours("hevc"));
    assert!(entries.len() >= 3);
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn h264_without_random_access_indicator_cuts_at_idr() {
    let c = Case::new();
    let ts = c.ts("a.ts", &StreamSpec::default());
    let pcap = c.path("a.pcap");
    let mut w = Wrap::new(&ts, dst(1));
    w.clear_rai = true;
    write_pcap(&pcap, start(), &[w], false).unwrap();
    c.run(&c.config(&pcap, &[("ch1", dst(1), "")]));
    let entries = check_hours(&c.hours("ch1"));
    assert_eq!(entries.len(), 4);
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn loss_ends_the_segment_and_marks_a_discontinuity() {
    let c = Case::new();
    // About 4 s and 14 s in.
    let pcap = c.lossy_capture(30.0, start(), vec![220..225, 770..771]);
    let summary = c.run(&c.config(&pcap, &[("ch1", dst(1), "")]));
    assert!(!summary.contains(" 0 CC errors"), "{summary}");
    assert!(summary.contains("2 discontinuities"), "{summary}");
    let entries = check_hours(&c.hours("ch1"));
    let marked: Vec<_> = entries.iter().filter(|e| e.discontinuity).collect();
    assert_eq!(marked.len(), 2, "{entries:#?}");
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn rtp_with_csrcs_across_the_pts_wrap() {
    let c = Case::new();
    // Start 8 s before the 33-bit wrap.
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            ts_offset: Some(PTS_WRAP_SECS - 8.0),
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    let mut w = Wrap::new(&ts, dst(1));
    w.rtp = Some(2);
    write_pcap(&pcap, start(), &[w], false).unwrap();
    let summary = c.run(&c.config(&pcap, &[("ch1", dst(1), "")]));
    assert!(
        summary.contains(" 0 CC errors, 0 discontinuities"),
        "{summary}"
    );
    let entries = check_hours(&c.hours("ch1"));
    let first = probe(&entries[0].path, "video").first_pts;
    let last = probe(&entries.last().unwrap().path, "video").first_pts;
    // ffprobe shows PTS just before the wrap as negative.
    let first = first.rem_euclid(PTS_WRAP_SECS);
    assert!(
        first > PTS_WRAP_SECS - 10.0 && last < 20.0,
        "the archive crosses the wrap: {first} .. {last}"
    );
    assert!(entries.iter().all(|e| !e.discontinuity));
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn audio_only_stream_is_timed_by_audio() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            video: Video::None,
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    c.run(&c.config(&pcap, &[("radio", dst(1), "")]));
    let entries = check_hours(&c.hours("radio"));
    assert!(entries.len() >= 3);
    // AAC frames are 1024 samples at 48 kHz; ffmpeg packs several per PES,
    // so a cut lands on the first PES at or after 6 s.
    for e in cut_at_target(&entries) {
        assert!((6.0..6.5).contains(&e.extinf), "{}", e.extinf);
    }
    let probed: Vec<Probed> = entries.iter().map(|e| probe(&e.path, "audio")).collect();
    for i in 0..entries.len() - 1 {
        let expected = probed[i + 1].first_pts - probed[i].first_pts;
        assert!(
            (entries[i].extinf - expected).abs() < 0.001,
            "{} vs {expected}",
            entries[i].extinf
        );
    }
}

#[test]
fn many_streams_from_one_pass_and_a_broken_one_does_not_stop_them() {
    let c = Case::new();
    let a = c.ts("a.ts", &StreamSpec::default());
    let b = c.ts(
        "b.ts",
        &StreamSpec {
            seconds: 16.0,
            gop: 25,
            ..Default::default()
        },
    );
    let pcap = c.path("two.pcap");
    write_pcap(
        &pcap,
        start(),
        &[Wrap::new(&a, dst(1)), Wrap::new(&b, dst(2))],
        true,
    )
    .unwrap();
    let config = c.config(
        &pcap,
        &[
            ("ch1", dst(1), ""),
            ("ch2", dst(2), "segment_duration = \"4s\""),
            ("silent", dst(9), ""),
        ],
    );
    // A stream that finds nothing in the file fails the run, saying why;
    // the others are archived all the same.
    let out = c.hlsvault(&["run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("silent: 0 segments"), "{summary}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stream silent archived nothing: no datagrams to 239.10.0.9:5000"),
        "{stderr}"
    );
    let e1 = check_hours(&c.hours("ch1"));
    let e2 = check_hours(&c.hours("ch2"));
    check_timeline(&e1, "video", 0.04);
    check_timeline(&e2, "video", 0.04);
    let full = cut_at_target(&e2);
    assert!(!full.is_empty() && full.iter().all(|e| (e.extinf - 4.0).abs() < 0.001));
    // Datagrams of one stream never reach the other's archive.
    let bytes = |es: &[Entry]| {
        es.iter()
            .map(|e| std::fs::metadata(&e.path).unwrap().len())
            .sum::<u64>()
    };
    assert!(bytes(&e1) > bytes(&e2));
}

#[test]
fn a_restart_continues_the_hours_without_overwriting() {
    let c = Case::new();
    let ts = c.ts("a.ts", &StreamSpec::default());
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    let config = c.config(&pcap, &[("ch1", dst(1), "")]);
    c.run(&config);
    let before = c.hours("ch1");
    // Replay the same hour (same capture times) into the same archive.
    c.run(&config);
    let hours = c.hours("ch1");
    let after = check_hours(&hours);
    for ((_, old), (_, new)) in before.iter().zip(&hours) {
        assert_eq!(new.entries.len(), 2 * old.entries.len());
        for (o, n) in old.entries.iter().zip(&new.entries) {
            assert_eq!(o.uri, n.uri, "earlier entries kept");
            assert!(n.path.is_file());
        }
    }
    let uris: std::collections::HashSet<_> = after.iter().map(|e| &e.uri).collect();
    assert_eq!(uris.len(), after.len(), "no segment name reused");
    // The first entry the second run added to each hour is a discontinuity.
    for (_, p) in &hours {
        let n = p.entries.len() / 2;
        assert!(p.entries[n].discontinuity, "{:?}", p.entries);
        assert!(p.entries[..n].iter().all(|e| !e.discontinuity));
    }
}

#[test]
fn retention_deletes_whole_hours_past_it() {
    let c = Case::new();
    let old = c.capture("old", 14.0, start());
    c.run(&c.config(&old, &[("ch1", dst(1), "")]));
    assert_eq!(c.hours("ch1").len(), 2, "09:00 and 10:00 on 11-21");

    // Two days later, with one day of retention: the hours of 11-21 go,
    // whole; the new one stays.
    let later = humantime::parse_rfc3339("2026-11-23T12:00:00Z").unwrap();
    let new = c.capture("new", 14.0, later);
    let config = c.config(&new, &[("ch1", dst(1), "")]);
    c.storage_keys(&config, "retention = \"1d\"");
    c.run(&config);
    assert!(
        !c.archive().join("ch1/2026/11/21").exists(),
        "the old day's folders are gone"
    );
    let hours = c.hours("ch1");
    assert_eq!(hours.len(), 1);
    assert!(
        hours[0].0.ends_with("ch1/2026/11/23/12/index.m3u8"),
        "{:?}",
        hours[0].0
    );
    let log = std::fs::read_to_string(c.archive().join("ch1/hours.log")).unwrap();
    assert_eq!(log, "2026-11-23T12 2026/11/23/12/index.m3u8\n");
}

#[test]
fn a_hold_keeps_its_hours_from_retention_until_it_is_removed() {
    let c = Case::new();
    let old = c.capture("old", 14.0, start());
    c.run(&c.config(&old, &[("ch1", dst(1), "")]));
    let day = c.archive().join("ch1/2026/11/21");
    assert!(day.join("09").is_dir() && day.join("10").is_dir());
    // Two days later, with one day of retention; a hold on 09:59 only.
    let later = |at: &str, name: &str| {
        let pcap = c.capture(name, 4.0, humantime::parse_rfc3339(at).unwrap());
        let config = c.config(&pcap, &[("ch1", dst(1), "")]);
        c.storage_keys(&config, "retention = \"1d\"");
        config
    };
    let config = later("2026-11-23T12:00:00Z", "later");
    let hold = |args: &[&str]| {
        let config = ["--config", config.to_str().unwrap()];
        let out = c.hlsvault(&[&["hold"], args, &config[..]].concat());
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, held) = hold(&[
        "add",
        "--stream",
        "ch1",
        "--start",
        "2026-11-21T09:59:00Z",
        "--duration",
        "1min",
        "--reason",
        "case 42",
    ]);
    assert_eq!(code, Some(0));
    assert!(held.starts_with("held: ch1"), "{held}");
    let (_, list) = hold(&["list"]);
    let row = "ch1             1  2026-11-21T09:59:00Z  2026-11-21T10:00:00Z  case 42";
    assert!(list.lines().any(|l| l == row), "{list}");
    assert_eq!(
        hold(&["list", "--stream", "ch9"]).0,
        Some(2),
        "no such stream"
    );
    c.run(&config);
    assert!(day.join("09").is_dir(), "held");
    assert!(!day.join("10").exists(), "not held: deleted");
    let log = std::fs::read_to_string(c.archive().join("ch1/hours.log")).unwrap();
    assert!(log.starts_with("2026-11-21T09 "), "{log}");

    // Removed, the hour goes at the next sweep.
    assert_eq!(hold(&["remove", "--stream", "ch1", "1"]).0, Some(0));
    assert_eq!(hold(&["remove", "--stream", "ch1", "1"]).0, Some(1), "gone");
    c.run(&later("2026-11-23T13:00:00Z", "next"));
    assert!(!day.exists(), "the old day is gone");
}

#[test]
fn over_its_size_a_stream_loses_its_oldest_unheld_hours_and_says_what_each_freed() {
    let c = Case::new();
    let day = c.archive().join("ch1/2026/11/21");
    // 09:59:50-10:00:04 and 11:59:50-12:00:04: four hours, two of them
    // long (10 s) and two short (4 s).
    let at = |t: &str| humantime::parse_rfc3339(t).unwrap();
    for (name, t) in [("a", "2026-11-21T09:59:50Z"), ("b", "2026-11-21T11:59:50Z")] {
        c.run(&c.config(&c.capture(name, 14.0, at(t)), &[("ch1", dst(1), "")]));
    }
    let size = |h: &str| bytes_under(&day.join(h));
    let (s09, s10, s11, s12) = (size("09"), size("10"), size("11"), size("12"));
    // 13:59:50-14:00:04 will be as big as 11-12 (the same capture): with
    // 09 held, fitting in s09 + s11 + s12 (and less than a short hour
    // more) leaves 09, 13 and 14, and 10, 11, 12 must go, oldest first.
    let cap = s09 + s11 + s12 + s12 / 2;
    let config = c.config(
        &c.capture("c", 14.0, at("2026-11-21T13:59:50Z")),
        &[("ch1", dst(1), &format!("retention_size = \"{cap}B\""))],
    );
    let config_arg = config.to_str().unwrap();
    let held = c.hlsvault(&[
        "hold",
        "add",
        "--stream",
        "ch1",
        "--start",
        "2026-11-21T09:59:55Z",
        "--duration",
        "1s",
        "--reason",
        "case 7",
        "--config",
        config_arg,
    ]);
    assert!(held.status.success());
    let out = c.hlsvault(&["run", "--config", config_arg]);
    assert!(out.status.success());
    let left: Vec<String> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 2)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(left, ["09", "13", "14"]);
    assert!(bytes_under(&day.join("09")) + size("13") + size("14") <= cap);
    // Each deletion is logged with its hour and what it freed.
    let log = String::from_utf8_lossy(&out.stderr);
    for (hour, freed) in [("10", s10), ("11", s11), ("12", s12)] {
        let line = log
            .lines()
            .find(|l| {
                l.contains("retention: deleted the hour")
                    && l.contains(&format!("hour=2026-11-21T{hour}"))
            })
            .unwrap_or_else(|| panic!("no deletion of {hour} logged:\n{log}"));
        assert!(line.contains(&format!("bytes={freed}")), "{line}");
    }
    // The day index sizes the hours it lists as the folders hold them.
    let index = std::fs::read_to_string(day.join("ranges.txt")).unwrap();
    assert!(
        index.contains(&format!("2026-11-21T13 size {}\n", size("13"))),
        "{index}"
    );
}

/// `hlsvault ranges --json` of `stream`, parsed.
fn ranges_json(c: &Case, config: &Path, stream: &str) -> serde_json::Value {
    let out = c.hlsvault(&[
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        stream,
        "--json",
    ]);
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn time_of(v: &serde_json::Value) -> SystemTime {
    humantime::parse_rfc3339(v.as_str().unwrap()).unwrap()
}

#[test]
fn ranges_find_every_gap_with_its_cause_from_the_day_index_or_the_playlists() {
    let c = Case::new();
    // A short loss at ~8 s (a continuity error), then ~15 s lost at ~25 s
    // (silence: a stall).
    let first = humantime::parse_rfc3339("2026-11-21T09:59:40Z").unwrap();
    let pcap = c.lossy_capture(60.0, first, vec![440..445, 1375..2200]);
    let config = c.config(&pcap, &[("ch1", dst(1), "max_gap = \"2s\"")]);
    c.run(&config);
    // The recorder is down until 10:02, then records 20 s more.
    let later = c.capture(
        "b",
        20.0,
        humantime::parse_rfc3339("2026-11-21T10:02:00Z").unwrap(),
    );
    let config = c.config(&later, &[("ch1", dst(1), "max_gap = \"2s\"")]);
    c.run(&config);

    let report = ranges_json(&c, &config, "ch1");
    let gaps = report["gaps"].as_array().unwrap();
    let recorded = report["recorded"].as_array().unwrap();
    let causes: Vec<&str> = gaps.iter().map(|g| g["cause"].as_str().unwrap()).collect();
    assert_eq!(causes, ["discontinuity", "stall", "restart"], "{report:#}");
    assert_eq!(recorded.len(), 4, "{report:#}");
    // Each gap lies between the ranges around it, and lasts what was lost
    // (and what waited for the next keyframe, at most a 2 s GOP).
    let secs = |v: &serde_json::Value| v["seconds"].as_f64().unwrap();
    for (i, g) in gaps.iter().enumerate() {
        assert_eq!(g["start"], recorded[i]["end"]);
        assert_eq!(g["end"], recorded[i + 1]["start"]);
    }
    assert!((0.05..3.0).contains(&secs(&gaps[0])), "{:#}", gaps[0]);
    assert!((14.5..17.5).contains(&secs(&gaps[1])), "{:#}", gaps[1]);
    // The second run's first picture: its first PCR plus the decoder delay.
    let restart = time_of(&gaps[2]["end"]);
    let second_run = humantime::parse_rfc3339("2026-11-21T10:02:00Z").unwrap();
    let late = restart.duration_since(second_run).unwrap();
    assert!(late < std::time::Duration::from_secs(1), "{late:?}");
    // The recorded time is what the hour playlists list.
    let listed: f64 = check_hours(&c.hours("ch1")).iter().map(|e| e.extinf).sum();
    let total: f64 = recorded.iter().map(secs).sum();
    assert!(
        (total - listed).abs() < 0.01,
        "{total} recorded, {listed} listed"
    );

    // The closed hour 09 came from its day's index; without the index it
    // is read from its playlist, to the same answer; reindex writes the
    // index again as it was.
    let index = c.archive().join("ch1/2026/11/21/ranges.txt");
    let written = std::fs::read_to_string(&index).unwrap();
    assert!(written.starts_with("2026-11-21T09 run "), "{written}");
    std::fs::remove_file(&index).unwrap();
    let again = ranges_json(&c, &config, "ch1");
    assert_eq!(again["recorded"], report["recorded"]);
    assert_eq!(again["gaps"], report["gaps"]);
    let out = c.hlsvault(&["reindex", "--config", config.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&index).unwrap(), written);

    // A table for people; a range with nothing in it says so.
    let out = c.hlsvault(&[
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--start",
        "2026-11-21T09:59:50Z",
        "--end",
        "2026-11-21T10:03:00Z",
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.lines().any(|l| l.ends_with("gap: restart")),
        "{table}"
    );
    assert!(table.starts_with("START "), "{table}");
    assert!(table.lines().any(|l| l.ends_with("recorded")), "{table}");
    let out = c.hlsvault(&[
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--start",
        "2026-11-22T00:00:00Z",
        "--end",
        "2026-11-22T01:00:00Z",
    ]);
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("nothing of ch1 is recorded"));
}

#[test]
fn public_urls_name_each_hour_under_the_base() {
    let c = Case::new();
    let pcap = c.capture("a", 14.0, start());
    let config = c.config(&pcap, &[("ch1", dst(1), "")]);
    c.storage_keys(
        &config,
        "urls = \"public\"\npublic_base_url = \"https://cdn.example.net/tv/\"",
    );
    c.run(&config);
    let log = std::fs::read_to_string(c.archive().join("ch1/hours.log")).unwrap();
    assert_eq!(
        log,
        "2026-11-21T09 https://cdn.example.net/tv/ch1/2026/11/21/09/index.m3u8\n\
         2026-11-21T10 https://cdn.example.net/tv/ch1/2026/11/21/10/index.m3u8\n"
    );
    // The canonical playlists stay relative.
    let hour = std::fs::read_to_string(c.archive().join("ch1/2026/11/21/10/index.m3u8")).unwrap();
    assert!(!hour.contains("https://"), "{hour}");
}

#[test]
fn check_lists_every_problem_and_run_refuses_bad_config() {
    let c = Case::new();
    let pcap = c.path("x.pcap");
    std::fs::write(&pcap, b"this is not a capture file").unwrap();
    let config = c.config(
        &pcap,
        &[
            ("ch1", dst(1), "live_window = 0"),
            ("ch1", dst(2), "segment_duration = \"6 parsecs\""),
        ],
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port = 5000\n", "port = 70000\n");
    std::fs::write(&config, text).unwrap();
    for cmd in ["check", "run"] {
        let out = c.hlsvault(&[cmd, "--config", config.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("streams[0] (\"ch1\").source.port: port 70000 is out of range"),
            "{err}"
        );
        assert!(
            err.contains("streams[1] (\"ch1\").segment_duration"),
            "{err}"
        );
        assert!(err.contains("6 parsecs"), "{err}");
        assert!(
            err.contains(&config.display().to_string()),
            "the file is named: {err}"
        );
    }
    // With the values fixed, the capture itself is the problem.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port = 70000\n", "port = 5000\n")
        .replace("6 parsecs", "6s")
        .replace("live_window = 0", "")
        .replacen("name = \"ch1\"", "name = \"ch2\"", 1);
    std::fs::write(&config, text).unwrap();
    let out = c.hlsvault(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("source.path: cannot open capture"), "{err}");
}

#[test]
fn truncated_capture_archives_what_it_holds() {
    let c = Case::new();
    let ts = c.ts("a.ts", &StreamSpec::default());
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let summary = c.run(&c.config(&pcap, &[("ch1", dst(1), "")]));
    assert!(summary.contains("1 truncated"), "{summary}");
    let entries = check_hours(&c.hours("ch1"));
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn reference_and_demo_configs_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for config in ["config/hlsvault.toml", "examples/demo.toml"] {
        let out = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["check", "--config", config])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{config}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn environment_overrides_the_file() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 4.0,
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    let config = c.config(&pcap, &[("ch1", dst(1), "")]);
    let elsewhere = c.path("elsewhere");
    let out = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("HLSVAULT_STORAGE__ROOT", &elsewhere)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.join("ch1/live.m3u8").is_file());
    assert!(!c.archive().exists());
}

#[test]
fn a_failing_store_is_counted_reported_and_fails_the_run() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 8.0,
            ..Default::default()
        },
    );
    let pcap = c.path("a.pcap");
    write_pcap(&pcap, start(), &[Wrap::new(&ts, dst(1))], false).unwrap();
    let config = c.config(&pcap, &[("ch1", dst(1), "")]);
    // A file where the archive's root directory should be: every write fails.
    std::fs::write(c.archive(), b"in the way").unwrap();
    let out = c.hlsvault(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "lost segments fail the run");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("segments NOT stored"), "{summary}");
    assert!(summary.contains("ch1: 0 segments"), "{summary}");
    // Reading the archive back already fails: the stream refuses to guess
    // (it could overwrite an hour) and says why.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("cannot open the stream's archive"), "{log}");
    assert!(log.contains("Not a directory"), "{log}");
}

/// Packets per PID in a TS file, and the PIDs of its first three packets.
fn pid_census(path: &Path) -> (std::collections::BTreeMap<u16, u64>, Vec<u16>) {
    let data = std::fs::read(path).unwrap();
    let pids: Vec<u16> = data
        .chunks(188)
        .map(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF)
        .collect();
    let mut counts = std::collections::BTreeMap::new();
    for &pid in &pids {
        *counts.entry(pid).or_default() += 1;
    }
    (counts, pids.into_iter().take(3).collect())
}

#[test]
fn a_multiplex_keeps_the_chosen_program_or_all_of_them() {
    let c = Case::new();
    let ts = c.path("mp.ts");
    // Program 1: H.264 25 fps (2 s GOP) + AAC; program 2: H.264 30 fps;
    // program 3: a radio service (AAC only).
    hlsvault_testkit::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=20",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=20",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=30:duration=20",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=660:sample_rate=48000:duration=20",
            ])
            .args(["-map", "0:v", "-map", "1:a", "-map", "2:v", "-map", "3:a"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "50",
                "-c:a",
                "aac",
            ])
            .args([
                "-program",
                "title=A:st=0:st=1",
                "-program",
                "title=B:st=2",
                "-program",
                "title=C:st=3",
                "-f",
                "mpegts",
            ])
            .arg(&ts),
    )
    .unwrap();
    let pcap = c.path("mp.pcap");
    let wraps: Vec<Wrap> = (1..=4).map(|n| Wrap::new(&ts, dst(n))).collect();
    write_pcap(&pcap, start(), &wraps, false).unwrap();
    let summary = c.run(&c.config(
        &pcap,
        &[
            ("all", dst(1), "program = \"all\""),
            ("first", dst(2), ""),
            ("second", dst(3), "program = 2"),
            ("radio", dst(4), "program = 3"),
        ],
    ));
    let (input, _) = pid_census(&ts);
    let archived = |stream: &str, head: &[u16], programs: &[&str]| {
        let entries = check_hours(&c.hours(stream));
        let mut counts = std::collections::BTreeMap::<u16, u64>::new();
        for e in &entries {
            let (pids, first) = pid_census(&e.path);
            // PAT, then the kept PMTs, in PAT order.
            assert_eq!(first, head, "{stream}: {}", e.uri);
            for (pid, n) in pids {
                *counts.entry(pid).or_default() += n;
            }
            let out = Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "program=program_id,nb_streams",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&e.path)
                .output()
                .unwrap();
            // Programs with streams: the SDT (kept as SI) still names the
            // services that are not kept, which ffprobe lists empty.
            let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once(','))
                .filter(|(_, n)| n.trim_end_matches(',') != "0")
                .map(|(id, _)| id.to_string())
                .collect();
            assert_eq!(listed, programs, "{stream}: {}", e.uri);
        }
        (entries, counts)
    };
    // The whole multiplex, timed by program 1 (the first with video).
    let (entries, all) = archived("all", &[0, 0x1000, 0x1001], &["1", "2", "3"]);
    // Program 2's video is archived whole but for what precedes the first
    // cut and the unit in flight at the end.
    let (sent, kept) = (input[&0x102], all[&0x102]);
    assert!(
        kept + 60 > sent && kept <= sent,
        "program 2 video: {kept} of {sent} packets"
    );
    // Program 1's video (2 s GOP) drives the cuts.
    for e in cut_at_target(&entries) {
        assert!((e.extinf - 6.0).abs() < 0.001, "{}", e.extinf);
    }
    // (Program 2 starts mid-GOP in these segments: that is what "all" is.)
    // By default, program 1 alone (and the SDT): its PAT lists it alone, and
    // the PMTs and streams of programs 2 and 3 are dropped and counted.
    let (entries, first) = archived("first", &[0, 0x1000, 0x100], &["1"]);
    assert_eq!(
        first.keys().copied().collect::<Vec<_>>(),
        vec![0, 0x11, 0x100, 0x101, 0x1000]
    );
    check_timeline(&entries, "video", 0.04);
    let line = summary.lines().find(|l| l.starts_with("first: ")).unwrap();
    let dropped: u64 = [0x102, 0x1001, 0x103, 0x1002]
        .iter()
        .map(|p| input[p])
        .sum();
    assert!(
        line.contains(&format!("; {dropped} packets of other programs")),
        "{line}"
    );
    let pids = summary
        .lines()
        .find(|l| l.starts_with("first PIDs: "))
        .unwrap();
    assert!(
        pids.contains(&format!(
            "258 (H.264 video of program 2): {} packets dropped",
            input[&0x102]
        )),
        "{pids}"
    );
    assert!(pids.contains("256 (H.264 video of program 1):"), "{pids}");
    // `program = 2`: program 2 alone, timed by its own video (30 fps).
    let (entries, second) = archived("second", &[0, 0x1001, 0x102], &["2"]);
    assert_eq!(
        second.keys().copied().collect::<Vec<_>>(),
        vec![0, 0x11, 0x102, 0x1001]
    );
    check_timeline(&entries, "video", 1.0 / 30.0);
    // `program = 3`: the radio service, timed by its audio.
    let (entries, radio) = archived("radio", &[0, 0x1002, 0x103], &["3"]);
    assert_eq!(
        radio.keys().copied().collect::<Vec<_>>(),
        vec![0, 0x11, 0x103, 0x1002]
    );
    let full = cut_at_target(&entries);
    assert!(full.len() >= 2);
    for e in full {
        assert!((6.0..6.2).contains(&e.extinf), "{}", e.extinf);
    }
}

#[test]
fn rtp_sequence_gaps_are_counted_and_break_the_timeline() {
    let c = Case::new();
    let ts = c.ts("a.ts", &StreamSpec::default());
    let pcap = c.path("a.pcap");
    let mut w = Wrap::new(&ts, dst(1));
    w.rtp = Some(0);
    w.lose.push(300..303);
    write_pcap(&pcap, start(), &[w], false).unwrap();
    let summary = c.run(&c.config(&pcap, &[("ch1", dst(1), "")]));
    assert!(summary.contains("; 3 datagrams lost (RTP)"), "{summary}");
    // Held behind the loss is not out of order.
    assert!(!summary.contains("put back in order"), "{summary}");
    assert!(summary.contains(" 1 discontinuities"), "{summary}");
    let entries = check_hours(&c.hours("ch1"));
    assert_eq!(entries.iter().filter(|e| e.discontinuity).count(), 1);
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn null_packets_are_dropped_by_default_and_kept_when_asked() {
    let c = Case::new();
    // A CBR multiplex padded with null packets.
    let ts = c.ts(
        "cbr.ts",
        &StreamSpec {
            seconds: 10.0,
            muxrate: Some(2_000_000),
            ..Default::default()
        },
    );
    let pcap = c.path("cbr.pcap");
    let wraps = [Wrap::new(&ts, dst(1)), Wrap::new(&ts, dst(2))];
    write_pcap(&pcap, start(), &wraps, false).unwrap();
    let summary = c.run(&c.config(
        &pcap,
        &[
            ("dropped", dst(1), ""),
            ("kept", dst(2), "null_packets = \"keep\""),
        ],
    ));
    let nulls = |stream: &str| -> (usize, usize) {
        let entries = check_hours(&c.hours(stream));
        check_timeline(&entries, "video", 0.04);
        entries
            .iter()
            .map(|e| std::fs::read(&e.path).unwrap())
            .fold((0, 0), |(n, bytes), d| {
                (n + hlsvault_testkit::count_pid(&d, 0x1FFF), bytes + d.len())
            })
    };
    let (kept_nulls, kept_bytes) = nulls("kept");
    let (dropped_nulls, dropped_bytes) = nulls("dropped");
    assert_eq!(dropped_nulls, 0);
    assert!(kept_nulls > 1000, "{kept_nulls}");
    assert_eq!(kept_bytes - dropped_bytes, kept_nulls * 188);
    let line = summary
        .lines()
        .find(|l| l.starts_with("dropped: "))
        .unwrap();
    let (input, _) = pid_census(&ts);
    assert!(
        line.contains(&format!(
            "; {} null packets dropped ({} bytes not stored)",
            input[&0x1FFF],
            input[&0x1FFF] * 188
        )),
        "{line}"
    );
}

#[test]
fn packets_of_204_and_192_bytes_are_stored_as_188() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 10.0,
            ..Default::default()
        },
    );
    let pcap = c.path("sizes.pcap");
    let mut parity = Wrap::new(&ts, dst(1));
    parity.packets = PacketFormat::ReedSolomon;
    let mut m2ts = Wrap::new(&ts, dst(2));
    m2ts.packets = PacketFormat::M2ts;
    let mut rtp_parity = Wrap::new(&ts, dst(3));
    rtp_parity.packets = PacketFormat::ReedSolomon;
    rtp_parity.rtp = Some(0);
    let plain = Wrap::new(&ts, dst(4));
    write_pcap(&pcap, start(), &[parity, m2ts, rtp_parity, plain], false).unwrap();
    let summary = c.run(&c.config(
        &pcap,
        &[
            ("parity", dst(1), ""),
            ("m2ts", dst(2), ""),
            ("rtp-parity", dst(3), ""),
            ("plain", dst(4), ""),
        ],
    ));
    let (input, _) = pid_census(&ts);
    let packets: u64 = input.values().sum();
    let stored = |stream: &str| -> Vec<Vec<u8>> {
        let entries = check_hours(&c.hours(stream));
        check_timeline(&entries, "video", 0.04);
        entries
            .iter()
            .map(|e| std::fs::read(&e.path).unwrap())
            .collect()
    };
    let plain = stored("plain");
    for stream in ["parity", "m2ts", "rtp-parity"] {
        let line = summary
            .lines()
            .find(|l| l.starts_with(&format!("{stream}: ")))
            .unwrap();
        assert!(
            line.contains(&format!(
                "; {packets} 204-byte or 192-byte packets stored as 188"
            )),
            "{line}"
        );
        assert!(!line.contains("without TS sync"), "{line}");
        // The same segments, byte for byte, as the stream sent in 188.
        assert_eq!(stored(stream), plain, "{stream}");
    }
}

#[test]
fn a_capture_that_archives_nothing_fails_and_says_why() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 4.0,
            ..Default::default()
        },
    );
    // The same stream without its PMT (PID 0x1000).
    let data = std::fs::read(&ts).unwrap();
    let no_pmt: Vec<u8> = data
        .chunks(188)
        .filter(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF != 0x1000)
        .flatten()
        .copied()
        .collect();
    let no_pmt_ts = c.path("no-pmt.ts");
    std::fs::write(&no_pmt_ts, no_pmt).unwrap();
    let pcap = c.path("a.pcap");
    let wraps = [Wrap::new(&ts, dst(1)), Wrap::new(&no_pmt_ts, dst(2))];
    write_pcap(&pcap, start(), &wraps, false).unwrap();
    let config = c.config(
        &pcap,
        &[
            ("good", dst(1), ""),
            ("no-pmt", dst(2), ""),
            ("wrong-group", dst(9), ""),
        ],
    );
    // `check` says so before anything runs.
    let out = c.hlsvault(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("streams[1] (\"no-pmt\").source: would archive nothing: no PMT"),
        "{said}"
    );
    assert!(
        said.contains("streams[2] (\"wrong-group\").source: would archive nothing: no datagrams to 239.10.0.9:5000"),
        "{said}"
    );
    assert!(!said.contains("\"good\""), "{said}");
    let out = c.hlsvault(&["run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success(), "an empty archive is an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = |stream: &str| {
        stderr
            .lines()
            .find(|l| l.starts_with(&format!("hlsvault: stream {stream} archived nothing: ")))
            .unwrap_or_else(|| panic!("nothing said of {stream}: {stderr}"))
            .to_string()
    };
    assert!(!stderr.contains("stream good archived nothing"), "{stderr}");
    let line = said("no-pmt");
    assert!(
        line.contains("no PMT: the PAT lists program 1 (PMT PID 4096) and none"),
        "{line}"
    );
    let line = said("wrong-group");
    assert!(line.contains("no datagrams to 239.10.0.9:5000"), "{line}");
    assert!(
        line.contains("it carries UDP to 239.10.0.1:5000 ("),
        "{line}"
    );
    assert!(line.contains("239.10.0.2:5000 ("), "{line}");
    // The good stream is archived all the same.
    check_timeline(&check_hours(&c.hours("good")), "video", 0.04);
}

#[test]
fn fragments_vlan_tags_and_pcapng_are_read() {
    let c = Case::new();
    let ts = c.ts(
        "a.ts",
        &StreamSpec {
            seconds: 10.0,
            ..Default::default()
        },
    );
    // 21 packets a datagram over a 1500-byte MTU: three fragments each.
    let mut fragmented = Wrap::new(&ts, dst(1));
    fragmented.per_datagram = 21;
    fragmented.mtu = Some(1500);
    let mut tagged = Wrap::new(&ts, dst(2));
    tagged.vlan = Some(100);
    let mut both = fragmented.clone();
    both.dst = dst(3);
    both.vlan = Some(200);
    let plain = Wrap::new(&ts, dst(4));
    let pcap = c.path("link.pcap");
    let sent = write_pcap(&pcap, start(), &[fragmented, tagged, both, plain], false).unwrap();
    let pcapng = c.path("link.pcapng");
    hlsvault_testkit::to_pcapng(&pcap, &pcapng).unwrap();
    let streams = [
        ("fragmented", dst(1), ""),
        ("tagged", dst(2), ""),
        ("both", dst(3), ""),
        ("plain", dst(4), ""),
    ];
    for file in [&pcap, &pcapng] {
        let _ = std::fs::remove_dir_all(c.archive());
        let summary = c.run(&c.config(file, &streams));
        let reassembled = sent[0] + sent[2];
        assert!(
            summary.contains(&format!(
                "IP fragments ({reassembled} datagrams reassembled, 0 incomplete)"
            )),
            "{summary}"
        );
        let stored = |stream: &str| -> Vec<Vec<u8>> {
            let entries = check_hours(&c.hours(stream));
            check_timeline(&entries, "video", 0.04);
            entries
                .iter()
                .map(|e| std::fs::read(&e.path).unwrap())
                .collect()
        };
        let plain = stored("plain");
        for (name, ..) in &streams[..3] {
            assert_eq!(stored(name), plain, "{name} from {file:?}");
        }
    }
}

#[test]
fn every_reason_an_archive_stays_empty_is_told() {
    use hlsvault_testkit::encoders::{add_ancillary_pids, hide_parameter_sets, Nal};
    use hlsvault_testkit::{udp_frame, PcapWriter};
    let c = Case::new();
    let spec = StreamSpec {
        seconds: 6.0,
        ..Default::default()
    };
    // Only PSI and teletext: the PMT declares video and audio that never come.
    let ttx = c.ts("ttx.ts", &spec);
    add_ancillary_pids(&ttx, 0x1000).unwrap();
    let data: Vec<u8> = std::fs::read(&ttx)
        .unwrap()
        .chunks(188)
        .filter(|p| !matches!(u16::from_be_bytes([p[1], p[2]]) & 0x1FFF, 0x100 | 0x101))
        .flatten()
        .copied()
        .collect();
    std::fs::write(&ttx, data).unwrap();
    // Video whose parameter sets never come: no picture decodes.
    let no_sets = c.ts("nosets.ts", &spec);
    assert!(hide_parameter_sets(&no_sets, 0x100, Nal::H264, false).unwrap() > 0);
    let streams = c.path("streams.pcap");
    let wraps = [Wrap::new(&ttx, dst(1)), Wrap::new(&no_sets, dst(2))];
    write_pcap(&streams, start(), &wraps, false).unwrap();
    // A capture of TCP only, and one whose snap length cut every record.
    // And one of fragmented datagrams whose last fragment never came.
    let (tcp, cut, frag) = (c.path("tcp.pcap"), c.path("cut.pcap"), c.path("frag.pcap"));
    let mut w_tcp = PcapWriter::create(&tcp).unwrap();
    let mut w_cut = PcapWriter::create(&cut).unwrap();
    let mut w_frag = PcapWriter::create(&frag).unwrap();
    for i in 0..100u64 {
        let at = start() + std::time::Duration::from_millis(i);
        let big = udp_frame(dst(1), &[0x47; 21 * 188]);
        let fragments = hlsvault_testkit::ipv4_fragments(&big, 1500, i as u16);
        for f in &fragments[..fragments.len() - 1] {
            w_frag.write(at, f);
        }
        let mut frame = udp_frame(dst(1), &[0x47; 1316]);
        w_cut.write_cut(at, &frame, 96);
        frame[23] = 6; // IP protocol: TCP
        w_tcp.write(at, &frame);
    }
    w_tcp.finish().unwrap();
    w_cut.finish().unwrap();
    w_frag.finish().unwrap();
    let stream = |name: &str, file: &Path, d: SocketAddrV4| {
        format!(
            "\n[[streams]]\nname = \"{name}\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = {}\n",
            file.display(),
            d.ip(),
            d.port()
        )
    };
    let good = c.capture("good", 4.0, start());
    let config = c.path("empty.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n{}{}{}{}{}{}",
            c.archive().display(),
            stream("ttx", &streams, dst(1)),
            stream("nosets", &streams, dst(2)),
            stream("tcp", &tcp, dst(1)),
            stream("cut", &cut, dst(1)),
            stream("frag", &frag, dst(1)),
            // A program number the PAT does not list.
            stream("typo", &good, dst(1))
                .replace("[streams.source]", "program = 7\n[streams.source]"),
        ),
    )
    .unwrap();
    let out = c.hlsvault(&["run", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = |stream: &str, what: &str| {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("hlsvault: stream {stream} archived nothing: ")))
            .unwrap_or_else(|| panic!("nothing said of {stream}: {stderr}"));
        assert!(line.contains(what), "{stream}: {line}");
    };
    said(
        "ttx",
        "the PMT declares PID 256 for its timing but it carries nothing; the stream carries only 17 (SDT/BAT), 18 (EIT), 20 (TDT/TOT), 512 (teletext), 513 (DVB subtitles), 514 (SCTE-35 splice info), 4096 (PMT)",
    );
    said("nosets", "no decodable keyframe on PID 256 in ");
    said("tcp", "100 records are not UDP over IP");
    said(
        "cut",
        "100 records were cut short by the capture's snap length",
    );
    said(
        "frag",
        "100 datagrams arrived as IP fragments that never all came",
    );
    said(
        "typo",
        "program = 7, but the PAT lists program 1 (PMT PID 4096)",
    );
}

#[test]
fn with_aligned_cuts_a_recorder_that_joined_late_archives_the_same_segments() {
    let c = Case::new();
    let spec = StreamSpec {
        seconds: 30.0,
        gop: 25,
        ..Default::default()
    };
    let ts = c.ts("joined.ts", &spec);
    // Four recorders of one stream: two from its start, two that joined
    // about 7 s in (the datagrams before never reached them).
    let late = |to: SocketAddrV4| {
        let mut w = Wrap::new(ts.clone(), to);
        w.lose.push(0..400);
        w
    };
    let pcap = c.path("joined.pcap");
    let at = humantime::parse_rfc3339("2026-11-21T10:20:00Z").unwrap();
    let wraps = [
        Wrap::new(ts.clone(), dst(1)),
        late(dst(2)),
        Wrap::new(ts.clone(), dst(3)),
        late(dst(4)),
    ];
    write_pcap(&pcap, at, &wraps, false).unwrap();
    let aligned = "segment_duration = \"3s\"\naligned_cuts = true";
    let by_length = "segment_duration = \"3s\"";
    let config = c.config(
        &pcap,
        &[
            ("early", dst(1), aligned),
            ("late", dst(2), aligned),
            ("early-by-length", dst(3), by_length),
            ("late-by-length", dst(4), by_length),
        ],
    );
    c.run(&config);
    // (program date time, EXTINF) of each segment.
    let cuts = |stream: &str| -> Vec<(SystemTime, String)> {
        let entries: Vec<_> = hour_playlists(&c.archive().join(stream))
            .into_iter()
            .flat_map(|(_, p)| p.entries)
            .collect();
        check_timeline(&entries, "video", 0.04);
        entries
            .iter()
            .map(|e| (e.pdt.unwrap(), format!("{:.3}", e.extinf)))
            .collect()
    };
    let (early, late) = (cuts("early"), cuts("late"));
    assert!(late.len() >= 5, "{late:?}");
    // The late recorder's first segment is the rest of a slot; from its
    // second on, it cut where the early one did.
    let from = early
        .iter()
        .position(|s| *s == late[1])
        .expect("a common cut");
    assert_eq!(&early[from..], &late[1..]);
    // Cut by length from their own first keyframe, the two disagree.
    let (early, late) = (cuts("early-by-length"), cuts("late-by-length"));
    let from = early.iter().position(|s| s.0 == late[1].0);
    assert!(
        from.is_none_or(|from| early[from..] != late[1..]),
        "{early:?} {late:?}"
    );
}
