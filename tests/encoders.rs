//! Real encoder behaviours, made at test time with every encoder and muxer
//! Debian has (ffmpeg's libx264, libx265 and mpeg2video; GStreamer's
//! x264enc, x265enc and mpeg2enc through mpegtsmux) plus byte edits where no
//! encoder does the thing. Each archived segment must decode alone without
//! an error, start with a picture a decoder can start from, and carry an
//! `EXTINF` that agrees with its PTS to the millisecond.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;

use hlsvault_testkit::archive::{check_timeline, hour_playlists, Entry};
use hlsvault_testkit::encoders::{
    ad_break, add_ancillary_pids, ffmpeg, gstreamer, hide_parameter_sets, phantom_programs,
    rai_on_every_pes, upper_hex, video_outage, x264_with, Nal, FFMPEG_VIDEO_PID, SCTE35_PID,
    SUBTITLE_PID, TELETEXT_PID,
};
use hlsvault_testkit::{decode_errors, output_shown, probe_packets, write_pcap, Wrap};

/// One frame at 25 fps, the rate of every corpus stream.
const FRAME: f64 = 0.04;

fn dst(n: u8) -> SocketAddrV4 {
    SocketAddrV4::new([239, 20, 0, n].into(), 5000)
}

/// Wraps each stream into one capture (stream `i` to `dst(i + 1)`), archives
/// them as streams `s1`, `s2`, ... with the given extra stream keys, and
/// returns the run's summary (stdout). The run must succeed.
fn archive(dir: &Path, streams: &[(&Path, &str)]) -> String {
    let start = humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap();
    let wraps: Vec<Wrap> = streams
        .iter()
        .enumerate()
        .map(|(i, (ts, _))| Wrap::new(*ts, dst(i as u8 + 1)))
        .collect();
    let pcap = dir.join("capture.pcap");
    write_pcap(&pcap, start, &wraps, false).unwrap();
    let mut config = format!(
        "[storage]\nbackend = \"fs\"\nroot = \"{}\"\n",
        dir.join("archive").display()
    );
    for (i, (_, keys)) in streams.iter().enumerate() {
        config.push_str(&format!(
            "\n[[streams]]\nname = \"s{}\"\n{keys}\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"{}\"\nport = 5000\n",
            i + 1,
            pcap.display(),
            dst(i as u8 + 1).ip()
        ));
    }
    let file = dir.join("hlsvault.toml");
    std::fs::write(&file, config).unwrap();
    let out = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["run", "--config", file.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info"),
    );
    assert!(out.status.success(), "hlsvault run failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Every entry of a stream, in order, judged: decodes alone without error,
/// starts with a keyframe (ffprobe), EXTINF = PTS to 1 ms.
fn judged(dir: &Path, stream: &str) -> Vec<Entry> {
    let entries: Vec<Entry> = hour_playlists(&dir.join("archive").join(stream))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    assert!(!entries.is_empty(), "{stream} archived nothing");
    check_timeline(&entries, "video", FRAME);
    entries
}

/// Every entry of a stream's hour playlists, in order.
fn stream_entries(dir: &Path, stream: &str) -> Vec<Entry> {
    hour_playlists(&dir.join("archive").join(stream))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect()
}

/// For streams timed by video and audio in turn: every segment decodes
/// alone, its video (if any) starts at a keyframe, and its EXTINF is the
/// PTS distance from the unit that opens it to the one that opens the next
/// (the last one ends with the stream). Returns which segments hold video.
fn check_opened_timeline(entries: &[Entry]) -> Vec<bool> {
    let mut video = Vec::new();
    let mut opens = Vec::new();
    for e in entries {
        let errors = decode_errors(e.path.to_str().unwrap()).unwrap();
        assert!(errors.trim().is_empty(), "{}: {errors}", e.uri);
        let packets = probe_packets(e.path.to_str().unwrap()).unwrap();
        let first_video = packets.iter().find(|p| p.codec_type == "video");
        assert!(
            first_video.is_none_or(|p| p.key),
            "{}: video starts at a keyframe",
            e.uri
        );
        video.push(first_video.is_some());
        opens.push(opening_pts(&e.path));
    }
    for (i, e) in entries[..entries.len() - 1].iter().enumerate() {
        let expected = opens[i + 1] - opens[i];
        assert!(
            (e.extinf - expected).abs() < 0.001,
            "{}: EXTINF {} vs PTS {expected}",
            e.uri,
            e.extinf
        );
    }
    video
}

/// The bytes after each start code in the first video PES of a segment:
/// NAL unit headers (H.264: type `& 0x1F`; HEVC: `>> 1 & 0x3F`) or MPEG-2
/// start code values.
fn first_unit_nal_headers(segment: &Path) -> Vec<u8> {
    let data = std::fs::read(segment).unwrap();
    let mut es = Vec::new();
    for p in data.chunks(188) {
        let pid = u16::from_be_bytes([p[1], p[2]]) & 0x1FFF;
        let at = if p[3] & 0x20 != 0 {
            5 + p[4] as usize
        } else {
            4
        };
        if at >= 188 || !(0x100..0x200).contains(&pid) && pid != 0x41 {
            continue;
        }
        let payload = &p[at..];
        let starts_video = p[1] & 0x40 != 0 && payload.get(3).is_some_and(|s| s & 0xF0 == 0xE0);
        if starts_video && !es.is_empty() {
            break;
        }
        if starts_video || !es.is_empty() {
            es.extend_from_slice(payload);
        }
    }
    // After the PES header.
    es.get(9 + *es.get(8).unwrap_or(&0) as usize..)
        .unwrap_or_default()
        .windows(4)
        .filter(|w| w[..3] == [0, 0, 1])
        .map(|w| w[3])
        .collect()
}

/// PTS (seconds) of the unit that opens a segment: its first PES in file
/// order after PAT and PMT (the cutter routes the cutting unit first).
fn opening_pts(segment: &Path) -> f64 {
    let data = std::fs::read(segment).unwrap();
    for p in hlsvault_ts::packets(&data) {
        let start = hlsvault_ts::Header::parse(p).pusi;
        let pes = hlsvault_ts::payload(p).and_then(hlsvault_ts::pes::parse_header);
        if let (true, Some(pts)) = (start, pes.and_then(|h| h.pts)) {
            return pts as f64 / 90_000.0;
        }
    }
    panic!("{segment:?} holds no PES")
}

fn segment_starts(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| first_unit_nal_headers(&e.path))
        .collect()
}

/// `seconds` of H.264 (libx264) with a keyframe every `gop` frames, no
/// scene cuts, and AAC, muxed by ffmpeg.
fn x264(t: &Path, seconds: f64, gop: u32) {
    x264_with(t, seconds, gop, &[]).unwrap();
}

/// `seconds` of H.264 with periodic intra refresh (x264: no keyframe after
/// the first, a recovery point every 2 s, no B-frames), and AAC.
fn x264_intra_refresh(t: &Path, seconds: f64) {
    let video = ["-c:v", "libx264", "-preset", "veryfast", "-bf", "0"];
    ffmpeg(
        t,
        seconds,
        &[&video[..], &["-x264-params", "intra-refresh=1:keyint=50"]].concat(),
    )
    .unwrap();
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn ts(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[test]
fn x264_open_gop_is_cut_at_i_pictures_with_a_recovery_point() {
    let d = tmp();
    let t = ts(d.path(), "open.ts");
    // No IDR after the first frame: open GOPs, recovery-point SEI on each I.
    ffmpeg(
        &t,
        20.0,
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-x264-params",
            "open-gop=1:keyint=50:min-keyint=50:scenecut=0:b-pyramid=none",
        ],
    )
    .unwrap();
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 9, "{} entries", entries.len());
    for (i, nals) in segment_starts(&entries).iter().enumerate().skip(1) {
        let picture = nals.iter().map(|h| h & 0x1F).find(|t| matches!(t, 1 | 5));
        assert_eq!(
            picture,
            Some(1),
            "segment {i} starts at a non-IDR I: {nals:x?}"
        );
        assert!(
            nals.iter().any(|h| h & 0x1F == 6),
            "with its recovery-point SEI"
        );
    }
}

#[test]
fn x264_intra_refresh_cuts_at_recovery_points_only_when_asked() {
    let d = tmp();
    let t = ts(d.path(), "refresh.ts");
    x264_intra_refresh(&t, 20.0);
    archive(
        d.path(),
        &[
            (&t, "segment_duration = \"2s\""),
            (&t, "segment_duration = \"2s\"\nkeyframes = \"recovery\""),
        ],
    );
    // Strict: only the first picture is an IDR, and 20 s stay under the
    // default hard cap: one segment, never a cut inside the refresh.
    let strict = judged(d.path(), "s1");
    assert_eq!(strict.len(), 1, "{strict:#?}");
    let recovery = judged(d.path(), "s2");
    assert!(recovery.len() >= 9, "{} entries", recovery.len());
    for (i, nals) in segment_starts(&recovery).iter().enumerate().skip(1) {
        let picture = nals.iter().map(|h| h & 0x1F).find(|t| matches!(t, 1 | 5));
        assert_eq!(
            picture,
            Some(1),
            "segment {i}: a P picture with a recovery point"
        );
    }
}

#[test]
fn x265_open_gop_is_cut_at_cra() {
    let d = tmp();
    let t = ts(d.path(), "cra.ts");
    ffmpeg(
        &t,
        20.0,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:open-gop=1:scenecut=0:bframes=2:log-level=error",
        ],
    )
    .unwrap();
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 9);
    for (i, nals) in segment_starts(&entries).iter().enumerate().skip(1) {
        let picture = nals.iter().map(|h| (h >> 1) & 0x3F).find(|t| *t < 32);
        assert_eq!(picture, Some(21), "segment {i} starts at a CRA: {nals:x?}");
    }
}

#[test]
fn mpeg2_open_gop_is_cut_at_i_pictures() {
    let d = tmp();
    let t = ts(d.path(), "mpeg2.ts");
    // 12-frame open GOPs with B-pictures (ffmpeg does not close them).
    ffmpeg(
        &t,
        20.0,
        &["-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-b:v", "1M"],
    )
    .unwrap();
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 7);
    for e in &entries[..entries.len() - 1] {
        assert!(
            (e.extinf - 2.4).abs() < 0.001,
            "whole GOPs of 0.48 s: {}",
            e.extinf
        );
    }
}

#[test]
fn gstreamer_encoders_through_mpegtsmux() {
    let d = tmp();
    let h264 = ts(d.path(), "x264enc.ts");
    let hevc = ts(d.path(), "x265enc.ts");
    let mpeg2 = ts(d.path(), "mpeg2enc.ts");
    gstreamer(
        &h264,
        20.0,
        "x264enc key-int-max=50 bframes=2 speed-preset=ultrafast ! h264parse",
    )
    .unwrap();
    gstreamer(
        &hevc,
        20.0,
        "x265enc key-int-max=50 speed-preset=ultrafast ! h265parse",
    )
    .unwrap();
    gstreamer(&mpeg2, 20.0, "mpeg2enc format=3 ! mpegvideoparse").unwrap();
    let keys = "segment_duration = \"2s\"";
    archive(d.path(), &[(&h264, keys), (&hevc, keys), (&mpeg2, keys)]);
    for s in ["s1", "s2", "s3"] {
        let entries = judged(d.path(), s);
        assert!(entries.len() >= 7, "{s}: {} entries", entries.len());
    }
}

#[test]
fn random_access_indicator_on_every_frame_does_not_make_cut_points() {
    let d = tmp();
    let t = ts(d.path(), "rai.ts");
    x264(&t, 20.0, 50);
    let marked = rai_on_every_pes(&t, FFMPEG_VIDEO_PID).unwrap();
    assert!(marked >= 490, "{marked} PES marked");
    archive(d.path(), &[(&t, "segment_duration = \"1s\"")]);
    let entries = judged(d.path(), "s1");
    // 1 s targets, 2 s GOPs: every cut at an IDR, 2 s apart.
    for e in &entries[..entries.len() - 1] {
        assert!((e.extinf - 2.0).abs() < 0.001, "{}: {}", e.uri, e.extinf);
    }
    for (i, nals) in segment_starts(&entries).iter().enumerate() {
        let picture = nals.iter().map(|h| h & 0x1F).find(|t| matches!(t, 1 | 5));
        assert_eq!(picture, Some(5), "segment {i} starts at an IDR");
    }
}

#[test]
fn parameter_sets_sent_once_are_given_to_every_segment() {
    let d = tmp();
    let t = ts(d.path(), "once.ts");
    x264(&t, 20.0, 50);
    let hidden = hide_parameter_sets(&t, FFMPEG_VIDEO_PID, Nal::H264, true).unwrap();
    assert!(hidden >= 18, "{hidden} SPS/PPS hidden");
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    // Without the insertion, every segment but the first fails to decode
    // ("non-existing PPS 0 referenced").
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 9);
    for (i, nals) in segment_starts(&entries).iter().enumerate() {
        let types: Vec<u8> = nals.iter().map(|h| h & 0x1F).collect();
        let at = |t: u8| types.iter().position(|&x| x == t);
        assert!(
            at(9) < at(7) && at(7) < at(8) && at(8) < at(5),
            "segment {i}: AUD, SPS, PPS, IDR: {types:?}"
        );
    }
}

#[test]
fn ten_second_gop_with_one_second_targets_is_cut_at_keyframes_only() {
    let d = tmp();
    let t = ts(d.path(), "long.ts");
    x264(&t, 40.0, 250);
    let summary = archive(d.path(), &[(&t, "segment_duration = \"1s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(!entries.iter().any(|e| e.discontinuity));
    for e in &entries[..entries.len() - 1] {
        assert!((e.extinf - 10.0).abs() < 0.001, "{}: {}", e.uri, e.extinf);
    }
    assert!(!summary.contains("cuts without keyframe"), "{summary}");
}

#[test]
fn video_that_stops_for_20_s_while_audio_goes_on_is_timed_by_audio() {
    let d = tmp();
    let t = ts(d.path(), "outage.ts");
    x264(&t, 40.0, 50);
    let removed = video_outage(&t, FFMPEG_VIDEO_PID, 10.0, 30.0).unwrap();
    assert!(removed > 1000, "{removed} video packets removed");
    let summary = archive(d.path(), &[(&t, "segment_duration = \"4s\"")]);
    let line = summary.lines().find(|l| l.starts_with("s1: ")).unwrap();
    assert!(line.contains("; 1 video outages timed by audio"), "{line}");
    let entries = stream_entries(d.path(), "s1");
    let video = check_opened_timeline(&entries);
    assert!(!entries.iter().any(|e| e.discontinuity), "contiguous media");
    // Nothing grows past the target plus the two seconds video is waited for.
    assert!(entries.iter().all(|e| e.extinf <= 6.0 + 0.001));
    let audio_only: Vec<&Entry> = entries
        .iter()
        .zip(&video)
        .filter(|(_, v)| !**v)
        .map(|(e, _)| e)
        .collect();
    assert!(
        audio_only.len() >= 3,
        "{} audio-only segments",
        audio_only.len()
    );
    for e in &audio_only[..audio_only.len() - 1] {
        // At the first audio PES at or after the target (ffmpeg packs
        // about 0.1 s of AAC frames in one PES).
        assert!(
            (4.0..4.2).contains(&e.extinf),
            "at the target: {}",
            e.extinf
        );
    }
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!((39.0..=40.05).contains(&media), "{media} s of media");
}

#[test]
fn a_pmt_that_declares_video_that_never_comes_is_timed_by_its_audio() {
    let d = tmp();
    let t = ts(d.path(), "novideo.ts");
    x264(&t, 20.0, 50);
    // Every picture gone; the PMT still declares H.264 and the PCR runs on.
    video_outage(&t, FFMPEG_VIDEO_PID, -1.0, f64::MAX).unwrap();
    let summary = archive(d.path(), &[(&t, "segment_duration = \"4s\"")]);
    let line = summary.lines().find(|l| l.starts_with("s1: ")).unwrap();
    assert!(line.contains("; 1 video outages timed by audio"), "{line}");
    let entries = stream_entries(d.path(), "s1");
    assert!(entries.len() >= 4);
    let video = check_opened_timeline(&entries);
    assert!(video.iter().all(|v| !v), "no picture anywhere");
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    // Audio waited for video during the first two seconds.
    assert!((17.5..=18.1).contains(&media), "{media} s of media");
}

#[test]
fn probe_lists_the_corpus_and_its_snippets_archive_it() {
    let d = tmp();
    let mpts = ts(d.path(), "mpts.ts");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=12",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=12",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=12",
        ])
        .args([
            "-map", "0:v", "-map", "1:a", "-map", "2:v", "-c:v", "libx264",
        ])
        .args(["-preset", "ultrafast", "-g", "50", "-c:a", "aac"])
        .args(["-program", "title=A:st=0:st=1", "-program", "title=B:st=2"])
        .args(["-f", "mpegts"])
        .arg(&mpts);
    hlsvault_testkit::run(&mut cmd).unwrap();
    let rai = ts(d.path(), "rai.ts");
    x264(&rai, 12.0, 50);
    rai_on_every_pes(&rai, FFMPEG_VIDEO_PID).unwrap();
    let refresh = ts(d.path(), "refresh.ts");
    x264_intra_refresh(&refresh, 12.0);
    let mut in_rtp = Wrap::new(&rai, dst(2));
    in_rtp.rtp = Some(0);
    let mut parity = Wrap::new(&refresh, dst(3));
    parity.packets = hlsvault_testkit::PacketFormat::ReedSolomon;
    let pcap = d.path().join("corpus.pcap");
    let start = humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap();
    write_pcap(
        &pcap,
        start,
        &[Wrap::new(&mpts, dst(1)), in_rtp, parity],
        false,
    )
    .unwrap();
    let out = output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault")).args(["probe", pcap.to_str().unwrap()]),
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let section = |dst: SocketAddrV4| -> String {
        let from = text
            .find(&format!("\n{dst}: "))
            .unwrap_or_else(|| panic!("{dst} not listed: {text}"));
        let rest = &text[from + 1..];
        rest[..rest[1..].find("\n239.").map_or(rest.len(), |i| i + 1)].to_string()
    };
    let m = section(dst(1));
    assert!(m.contains(": plain TS, "), "{m}");
    assert!(
        m.contains("program 1 (timed by default)") && m.contains("program 2"),
        "{m}"
    );
    assert!(m.contains("PID  258  H.264 video"), "{m}");
    assert!(m.contains("GOP 2.00 s"), "{m}");
    assert!(
        m.contains("program = 1            # this multiplex carries programs 1, 2"),
        "{m}"
    );
    let r = section(dst(2));
    assert!(r.contains(": RTP, "), "{r}");
    assert!(r.contains("RAI on 6 keyframes and on "), "{r}");
    let p = section(dst(3));
    assert!(p.contains(", 204-byte packets, "), "{p}");
    assert!(p.contains("keyframes = \"recovery\""), "{p}");
    // Pasted under a [storage] table, the snippets are a config that checks
    // and archives every destination.
    let snippets: String = text
        .split("\n[[streams]]")
        .skip(1)
        .map(|s| format!("\n[[streams]]{}", &s[..s.find("\n\n").unwrap_or(s.len())]))
        .collect();
    let config = d.path().join("probed.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n{snippets}\n",
            d.path().join("archive").display()
        ),
    )
    .unwrap();
    let check = output_shown(Command::new(env!("CARGO_BIN_EXE_hlsvault")).args([
        "check",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(check.status.success(), "{snippets}");
    let run = output_shown(Command::new(env!("CARGO_BIN_EXE_hlsvault")).args([
        "run",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert!(run.status.success());
    for name in ["239-20-0-1-5000", "239-20-0-2-5000", "239-20-0-3-5000"] {
        judged(d.path(), name);
    }
}

#[test]
fn teletext_subtitles_scte35_and_si_are_kept_and_counted_per_pid() {
    let d = tmp();
    let t = ts(d.path(), "broadcast.ts");
    x264(&t, 20.0, 50);
    let added = add_ancillary_pids(&t, 0x1000).unwrap();
    let summary = archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    let mut archived = std::collections::BTreeMap::<u16, u64>::new();
    for e in &entries {
        for p in std::fs::read(&e.path).unwrap().chunks(188) {
            *archived
                .entry(u16::from_be_bytes([p[1], p[2]]) & 0x1FFF)
                .or_default() += 1;
        }
    }
    let pids = summary
        .lines()
        .find(|l| l.starts_with("s1 PIDs: "))
        .unwrap();
    let sent = |pid: u16| added.iter().find(|a| a.0 == pid).unwrap().1;
    for (pid, what) in [
        (TELETEXT_PID, "teletext of program 1"),
        (SUBTITLE_PID, "DVB subtitles of program 1"),
        (SCTE35_PID, "SCTE-35 splice info of program 1"),
        (0x12, "EIT"),
        (0x14, "TDT/TOT"),
    ] {
        let sent = sent(pid);
        assert!(
            pids.contains(&format!("{pid} ({what}): {sent} packets kept")),
            "{pid}: {pids}"
        );
        // All but what came before the first keyframe is in the archive.
        let kept = archived.get(&pid).copied().unwrap_or(0);
        assert!(
            kept <= sent && kept + 3 >= sent,
            "PID {pid}: {kept} of {sent} archived"
        );
    }
}

#[test]
fn a_pat_listing_programs_whose_pmt_never_comes_archives_the_one_that_does() {
    let d = tmp();
    let t = ts(d.path(), "phantoms.ts");
    x264(&t, 12.0, 50);
    // Programs 10, 11, (1, the real one), 12, 13: four PMTs never come.
    phantom_programs(
        &t,
        &[(10, 0x1100), (11, 0x1101), (12, 0x1102), (13, 0x1103)],
    )
    .unwrap();
    let summary = archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!((11.5..=12.05).contains(&media), "{media} s");
    // The archived PAT lists the program that is there.
    let first = std::fs::read(&entries[0].path).unwrap();
    assert_eq!(
        &first[5..8],
        &[0x00, 0xB0, 0x0D],
        "a PAT of one program: {:x?}",
        &first[..20]
    );
    assert!(summary
        .lines()
        .any(|l| l.starts_with("s1 PIDs: ") && l.contains("4096 (PMT of program 1)")));
}

#[test]
fn hevc_parameter_sets_sent_once_are_given_to_every_segment() {
    let d = tmp();
    let t = ts(d.path(), "hevc-once.ts");
    ffmpeg(
        &t,
        12.0,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "keyint=50:min-keyint=50:scenecut=0:log-level=error",
        ],
    )
    .unwrap();
    let hidden = hide_parameter_sets(&t, FFMPEG_VIDEO_PID, Nal::Hevc, true).unwrap();
    assert!(hidden >= 3 * 5, "{hidden} VPS/SPS/PPS hidden");
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 5);
    for (i, nals) in segment_starts(&entries).iter().enumerate() {
        let types: Vec<u8> = nals.iter().map(|h| (h >> 1) & 0x3F).collect();
        assert!(
            [32, 33, 34].iter().all(|t| types.contains(t)),
            "segment {i}: {types:?}"
        );
    }
}

#[test]
fn a_cut_without_keyframe_at_the_hard_cap_is_marked_and_counted() {
    let d = tmp();
    let t = ts(d.path(), "refresh.ts");
    // Intra refresh without a keyframe after the first, past the default
    // hard cap (30 s) in strict mode.
    x264_intra_refresh(&t, 36.0);
    let summary = archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let line = summary.lines().find(|l| l.starts_with("s1: ")).unwrap();
    assert!(line.contains("; 1 cuts without keyframe"), "{line}");
    let entries = stream_entries(d.path(), "s1");
    let forced: Vec<&Entry> = entries.iter().filter(|e| e.discontinuity).collect();
    assert_eq!(forced.len(), 1, "{entries:#?}");
    // The segment before it ran to the cap, from the stream's one keyframe.
    let before = &entries[entries.iter().position(|e| e.discontinuity).unwrap() - 1];
    assert!((30.0..30.1).contains(&before.extinf), "{}", before.extinf);
    assert!(decode_errors(before.path.to_str().unwrap())
        .unwrap()
        .trim()
        .is_empty());
}

#[test]
fn an_mpeg2_sequence_header_sent_once_is_given_to_every_segment() {
    let d = tmp();
    let t = ts(d.path(), "mpeg2-once.ts");
    ffmpeg(
        &t,
        12.0,
        &["-c:v", "mpeg2video", "-g", "12", "-bf", "2", "-b:v", "1M"],
    )
    .unwrap();
    let hidden = hide_parameter_sets(&t, FFMPEG_VIDEO_PID, Nal::Mpeg2, true).unwrap();
    assert!(hidden >= 20, "{hidden} sequence headers hidden");
    archive(d.path(), &[(&t, "segment_duration = \"2s\"")]);
    let entries = judged(d.path(), "s1");
    assert!(entries.len() >= 4);
    for (i, codes) in segment_starts(&entries).iter().enumerate() {
        assert_eq!(
            codes.first(),
            Some(&0xB3),
            "segment {i} opens with a sequence header: {codes:x?}"
        );
    }
}

#[test]
fn scte35_splices_cut_segments_and_become_dateranges_at_their_times() {
    let d = tmp();
    let t = ts(d.path(), "break.ts");
    let (out, back) = ad_break(&t).unwrap();
    let summary = archive(d.path(), &[(&t, "segment_duration = \"4s\"")]);
    // Every segment decodes alone, starts at a keyframe, EXTINF = PTS.
    let entries = judged(d.path(), "s1");
    let video_at = |secs: u64| entries[0].pdt.unwrap() + std::time::Duration::from_secs(secs);
    let marked: Vec<(usize, &std::collections::BTreeMap<String, String>)> = entries
        .iter()
        .enumerate()
        .flat_map(|(i, e)| e.dateranges.iter().map(move |r| (i, r)))
        .collect();
    assert_eq!(marked.len(), 2, "{marked:?}");
    let (i, o) = marked[0];
    // The break's edges are segment boundaries, at the splice times.
    assert_eq!(entries[i].pdt, Some(video_at(5)), "{}", entries[i].uri);
    let start = humantime::format_rfc3339_millis(video_at(5)).to_string();
    assert_eq!(o["START-DATE"], start);
    assert_eq!(o["PLANNED-DURATION"], "6.000");
    assert_eq!(o["SCTE35-OUT"], format!("0x{}", upper_hex(&out)));
    let (j, b) = marked[1];
    assert_eq!(entries[j].pdt, Some(video_at(11)), "{}", entries[j].uri);
    assert_eq!((&b["ID"], &b["START-DATE"]), (&o["ID"], &start));
    assert_eq!(b["DURATION"], "6.000");
    assert_eq!(b["SCTE35-IN"], format!("0x{}", upper_hex(&back)));
    assert!(!summary.contains("bad SCTE-35"), "{summary}");
    // The ranges list both, at the same times: the out from the day's
    // index (09:00 is closed), the in from the newest hour's playlist.
    let config = d.path().join("hlsvault.toml");
    let out = output_shown(Command::new(env!("CARGO_BIN_EXE_hlsvault")).args([
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "s1",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let markers = report["markers"].as_array().unwrap();
    let seen: Vec<(&str, &str, f64, &str)> = markers
        .iter()
        .map(|m| {
            let text = |k: &str| m[k].as_str().unwrap();
            (
                text("kind"),
                text("at"),
                m["seconds"].as_f64().unwrap(),
                text("id"),
            )
        })
        .collect();
    let back_at = humantime::format_rfc3339_millis(video_at(11)).to_string();
    assert_eq!(
        seen,
        [
            ("out", start.as_str(), 6.0, o["ID"].as_str()),
            ("in", back_at.as_str(), 6.0, o["ID"].as_str())
        ],
        "{report:#}"
    );
    // A range playlist with the break plays in hls.js, which reads the
    // break as one date range (the in merged into its out), and in ffmpeg.
    let port = hlsvault_testkit::free_tcp_port();
    let text = std::fs::read_to_string(&config).unwrap();
    let serve = format!("\n[serve]\nlisten = \"127.0.0.1:{port}\"\ncors_origins = [\"*\"]\n");
    std::fs::write(&config, text + &serve).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let _server = hlsvault_testkit::started_server(
        env!("CARGO_BIN_EXE_hlsvault"),
        &["serve", "--config", config.to_str().unwrap()],
        &base,
    );
    let url = format!("{base}/streams/s1/archive.m3u8?start=2026-11-21T09:59:50Z&duration=30s");
    assert_eq!(hlsvault_testkit::decode_errors(&url).unwrap().trim(), "");
    let seen = hlsvault_testkit::play_in_browser(&url, hlsvault_testkit::Player::HlsJs);
    assert_eq!(seen["fatal"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["ended"], true, "{seen}");
    let ranges = seen["dateRanges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1, "{seen}");
    let r = &ranges[0];
    assert_eq!(r["id"].as_str(), Some(o["ID"].as_str()), "{r}");
    assert_eq!(r["valid"], true, "{r}");
    assert_eq!(r["start"].as_str(), Some(start.as_str()), "{r}");
    assert_eq!(r["duration"].as_f64(), Some(6.0), "{r}");
    assert_eq!(r["plannedDuration"].as_f64(), Some(6.0), "{r}");
    let attributes = r["attributes"].to_string();
    assert!(
        attributes.contains("\"SCTE35-OUT\"") && attributes.contains("\"SCTE35-IN\""),
        "{r}"
    );
}
