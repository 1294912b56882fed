//! Clips: a time range of the archive as one TS or MP4 file, from
//! `hlsvault export` and from `GET /streams/NAME/export.{ts,mp4}`, checked
//! with ffmpeg and ffprobe: decoding, durations, the first picture, and
//! for TS continuity and discontinuity marks packet by packet.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hlsvault_hls::{Entry, Hour, Kind, Layout, Playlist};
use hlsvault_testkit::{
    archive_across_the_hour, archive_capture, continuity, decode_errors, http_get as get, make_ts,
    output_shown, play_in_browser, probe_duration, started_server, KillOnDrop, Player, StreamSpec,
};

/// See [`archive_across_the_hour`].
fn archived(d: &Path) -> (String, String) {
    archive_across_the_hour(bin(), d)
}

/// Archives `ts` as stream `ch1` (see [`archive_capture`]).
fn archived_from(d: &Path, ts: &Path, lose: Option<f64>) -> (String, String) {
    archive_capture(bin(), d, ts, lose, "")
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hlsvault")
}

fn export(config: &str, args: &[&str]) -> std::process::Output {
    output_shown(
        Command::new(bin())
            .args(["export", "--config", config, "--stream", "ch1"])
            .args(args),
    )
}

#[test]
fn a_clip_across_the_hour_and_a_discontinuity_plays_with_counters_that_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, base) = archived(d);
    let range = "start=2026-11-21T09:59:51Z&end=2026-11-21T10:00:09Z";

    // The discontinuity is in the range: the archive's range playlist says
    // so, and so must the clip.
    let server = started_server(bin(), &["serve", "--config", &config], &base);
    let (_, _, playlist) = get(&format!("{base}/streams/ch1/archive.m3u8?{range}"), &[]);
    let playlist = String::from_utf8(playlist).unwrap();
    let breaks = playlist.matches("#EXT-X-DISCONTINUITY\n").count();
    assert_eq!(breaks, 1, "{playlist}");
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();

    // From the command line: a mid-GOP start and end, across 10:00.
    let clip = d.join("clip.ts");
    let out = export(
        &config,
        &[
            "--start",
            "2026-11-21T09:59:51Z",
            "--end",
            "2026-11-21T10:00:09Z",
            "-o",
            clip.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "quiet off a terminal"
    );
    let bytes = std::fs::read(&clip).unwrap();
    assert_eq!(&bytes[..3], &[0x47, 0x40, 0x00], "PAT first");
    assert_eq!(decode_errors(clip.to_str().unwrap()).unwrap().trim(), "");
    let (cc_errors, marked) = continuity(&bytes);
    assert_eq!(cc_errors, 0, "a receiver sees no continuity error");
    assert_eq!(marked, breaks, "one new time base per discontinuity");
    // Whole segments from the keyframe at or before the start: the media
    // covers the range, as the range playlist lists it.
    let secs = probe_duration(clip.to_str().unwrap()).unwrap();
    assert!(secs >= 16.0, "{secs} s");
    assert!(listed >= 18.0 - 2.0, "{listed} s listed");

    // Over HTTP: the same bytes, their length known before the body, and a
    // file name that says what it is.
    let (status, headers, body) = get(&format!("{base}/streams/ch1/export.ts?{range}"), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        headers.contains(&format!("content-length: {}", bytes.len())),
        "{headers}"
    );
    assert!(headers.contains("content-type: video/mp2t"), "{headers}");
    assert!(
        headers.contains("filename=\"ch1_20261121t095951z-20261121t100009z.ts\""),
        "{headers}"
    );
    assert!(
        body == bytes,
        "HTTP and the command line give the same clip"
    );

    // Asked wrong: nothing there (with what is recorded nearest), too long.
    let (status, _, body) = get(
        &format!("{base}/streams/ch1/export.ts?start=2026-11-21T12:00:00Z&duration=1m"),
        &[],
    );
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("recorded until 2026-11-21T10:00:"), "{body}");
    let (status, _, body) = get(
        &format!("{base}/streams/ch1/export.ts?start=2026-11-21T09:00:00Z&duration=4h"),
        &[],
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("export_max"));
    let empty = d.join("empty.ts");
    let out = export(
        &config,
        &[
            "--start",
            "2026-11-21T08:00:00Z",
            "--duration",
            "1m",
            "-o",
            empty.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("recorded from 2026-11-21T09:59:"), "{said}");
    assert!(
        !empty.exists() && !d.join("empty.ts.part").exists(),
        "no half file"
    );

    drop(server);
}

/// `ffprobe` of `file`: `entries` as CSV lines without their section name.
fn probe(file: &Path, args: &[&str]) -> Vec<String> {
    let out = output_shown(
        Command::new("ffprobe")
            .args(["-v", "error", "-of", "csv=p=0"])
            .args(args)
            .arg(file),
    );
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The MD5 of each decoded picture of `file`, in presentation order.
fn picture_hashes(file: &Path) -> Vec<String> {
    let out = output_shown(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(file)
            .args(["-map", "0:v", "-f", "framemd5", "-"]),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// What ffmpeg's framemd5 says of `file` read with `args`: each frame's
/// stream, time in seconds (as stamped in the file) and MD5.
fn framemd5(file: &Path, args: &[&str]) -> Vec<(usize, f64, String)> {
    let out = output_shown(
        Command::new("ffmpeg")
            .args(["-v", "error", "-copyts", "-i"])
            .arg(file)
            .args(args)
            .args(["-f", "framemd5", "-"]),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut time_bases = Vec::new();
    let mut frames = Vec::new();
    for l in text.lines() {
        if let Some(tb) = l.strip_prefix("#tb ") {
            let (_, ratio) = tb.split_once(": ").unwrap();
            let (n, d) = ratio.split_once('/').unwrap();
            time_bases.push(n.trim().parse::<f64>().unwrap() / d.trim().parse::<f64>().unwrap());
        } else if !l.starts_with('#') {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            let stream: usize = f[0].parse().unwrap();
            let pts = f[1].parse::<f64>().unwrap() * time_bases[stream];
            frames.push((stream, pts, f[5].to_string()));
        }
    }
    frames
}

/// What GStreamer's own MP4 reader (qtdemux, with `parser` on the video)
/// makes of `file`: it must read it to the end without an error or a
/// warning; returns the pictures it hands on and the last one's time.
fn gstreamer_reads(file: &Path, parser: &str) -> (usize, f64) {
    let location = format!("location={}", file.display());
    let out = output_shown(Command::new("gst-launch-1.0").args([
        "-v",
        "filesrc",
        &location,
        "!",
        "qtdemux",
        "name=d",
        "d.video_0",
        "!",
        parser,
        "!",
        "fakesink",
        "silent=false",
    ]));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !text.contains("ERROR") && !text.contains("WARNING"),
        "GStreamer on {}:\n{text}",
        file.display()
    );
    let times: Vec<f64> = text
        .lines()
        .filter(|l| l.contains("chain"))
        .filter_map(|l| {
            let t = l.split("pts: ").nth(1)?.split([',', ' ']).next()?;
            let mut hms = t.split(':').map(|v| v.parse::<f64>().ok());
            Some(hms.next()?? * 3600.0 + hms.next()?? * 60.0 + hms.next()??)
        })
        .collect();
    (times.len(), times.last().copied().unwrap_or(f64::NAN))
}

/// Each decoded picture (stream 0) and each audio frame as coded
/// (stream 1: AAC without its ADTS header) of `file`, as stamped in it.
/// (Decoded audio would be stamped by counting samples from a first
/// frame the decoder may shorten.)
fn pictures_and_sound(file: &Path) -> Vec<(usize, f64, String)> {
    let mut frames = framemd5(file, &["-map", "0:v"]);
    let sound = framemd5(
        file,
        &["-map", "0:a", "-c", "copy", "-bsf:a", "aac_adtstoasc"],
    );
    frames.extend(sound.into_iter().map(|(_, t, h)| (1, t, h)));
    frames
}

/// How far apart sound and picture are in `mp4` compared with `ts` (the
/// same media), around the picture shown at `near` in the MP4: the
/// offset between that picture and the audio frame half a second after
/// it, in both files.
fn sync_error(mp4: &[(usize, f64, String)], ts: &[(usize, f64, String)], near: f64) -> f64 {
    let first = |stream: usize, from: f64| {
        mp4.iter()
            .filter(|(s, t, _)| *s == stream && *t >= from)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
    };
    let in_ts = |stream: usize, hash: &str| {
        ts.iter()
            .find(|(s, _, h)| *s == stream && h == hash)
            .map(|(_, t, _)| *t)
            .unwrap_or_else(|| panic!("{hash} (stream {stream}) not in the TS"))
    };
    let (_, v_mp4, v_hash) = first(0, near);
    let (_, a_mp4, a_hash) = first(1, v_mp4 + 0.5);
    let (v_ts, a_ts) = (in_ts(0, v_hash), in_ts(1, a_hash));
    ((a_mp4 - v_mp4) - (a_ts - v_ts)).abs()
}

#[test]
fn an_mp4_clip_shows_exactly_the_asked_range_across_the_hour_and_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, base) = archived(d);
    let (start, end) = ("2026-11-21T09:59:51Z", "2026-11-21T10:00:09Z");
    let clip = d.join("clip.mp4");
    let out = export(
        &config,
        &["--start", start, "--end", end, "-o", clip.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "quiet off a terminal"
    );
    assert_eq!(decode_errors(clip.to_str().unwrap()).unwrap().trim(), "");

    // 18 s asked, 18 s shown, to the frame (1/25 s), by both tracks, from
    // 0 (audio from its first frame at or after the start): the GOP before
    // the start is decoded, not shown.
    let frame = 1.0 / 25.0;
    let duration = probe(&clip, &["-show_entries", "format=duration"]);
    let duration: f64 = duration[0].parse().unwrap();
    assert!((duration - 18.0).abs() <= frame, "{duration} s");
    let streams = probe(
        &clip,
        &["-show_entries", "stream=codec_name,start_time,duration"],
    );
    assert_eq!(streams.len(), 2, "{streams:?}");
    for s in &streams {
        let f: Vec<&str> = s.split(',').collect();
        let (start, secs): (f64, f64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        assert!((0.0..1024.0 / 48_000.0).contains(&start), "{s}");
        assert!((start + secs - 18.0).abs() <= frame, "{s}");
    }
    assert!(streams[0].starts_with("h264,") && streams[1].starts_with("aac,"));
    let shown = probe(
        &clip,
        &["-select_streams", "v", "-show_entries", "frame=pts_time"],
    );
    let times: Vec<f64> = shown.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        times[0].abs() < 1e-6,
        "the first picture at 0: {}",
        times[0]
    );
    // GStreamer's reader agrees on the pictures and where they end.
    let (pictures, last) = gstreamer_reads(&clip, "h264parse");
    assert!(pictures >= times.len(), "{pictures} pictures");
    assert!((last + frame - 18.0).abs() <= frame, "the last at {last}");
    // The archive lost about a second at 17 s into the source (10:00:02):
    // the pictures stop (checked against the archive below), and the
    // clip's timeline goes on.
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let last = times.last().unwrap();
    assert!(
        (last + frame - 18.0).abs() <= frame,
        "the last picture at {last}"
    );

    // The first picture is the one the archive shows at 09:59:51: in the TS
    // export (which starts at the keyframe before), as many frames after
    // its first as there are between that segment's start and 09:59:51.
    let server = started_server(bin(), &["serve", "--config", &config], &base);
    let (_, _, playlist) = get(
        &format!("{base}/streams/ch1/archive.m3u8?start={start}&end={end}"),
        &[],
    );
    let playlist = String::from_utf8(playlist).unwrap();
    // The gap is as long as the archive's: from the end of the segment
    // before to the start of the one after (the last picture before it
    // lasts a frame more).
    let listed = Playlist::parse(Kind::Event, &playlist).unwrap();
    let entries: Vec<&Entry> = listed.entries().collect();
    let after = entries.iter().position(|e| e.discontinuity).unwrap();
    let archived_gap = entries[after]
        .start
        .duration_since(entries[after - 1].end())
        .unwrap()
        .as_secs_f64();
    assert!(archived_gap > 0.4, "{archived_gap} s");
    assert!(
        (gap - frame - archived_gap).abs() <= frame,
        "a gap of {gap} s in the clip, {archived_gap} s in the archive"
    );
    let first = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .unwrap();
    let first = humantime::parse_rfc3339(first).unwrap();
    let into = humantime::parse_rfc3339(start)
        .unwrap()
        .duration_since(first)
        .unwrap();
    let ts = d.join("clip.ts");
    let out = export(
        &config,
        &["--start", start, "--end", end, "-o", ts.to_str().unwrap()],
    );
    assert!(out.status.success());
    let at = (into.as_secs_f64() / frame).round() as usize;
    let mp4_pictures = picture_hashes(&clip);
    assert_eq!(mp4_pictures.len(), times.len());
    let ts_pictures = picture_hashes(&ts);
    assert_eq!(
        mp4_pictures[0],
        ts_pictures[at],
        "the picture {at} frames after the keyframe at {}",
        humantime::format_rfc3339_millis(first)
    );

    // Over HTTP: the same bytes, streamed as they are made (the length is
    // not known before the end), a file name that says what it is; HEAD
    // says as much without the body.
    let url = format!("{base}/streams/ch1/export.mp4?start={start}&end={end}");
    let (status, headers, body) = get(&url, &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let bytes = std::fs::read(&clip).unwrap();
    assert!(
        body == bytes,
        "HTTP and the command line give the same file"
    );
    assert!(headers.contains("transfer-encoding: chunked"), "{headers}");
    assert!(headers.contains("content-type: video/mp4"), "{headers}");
    assert!(
        headers.contains("filename=\"ch1_20261121t095951z-20261121t100009z.mp4\""),
        "{headers}"
    );
    assert!(
        !headers
            .lines()
            .any(|l| l.starts_with("x-hlsvault-dropped:")),
        "{headers}"
    );
    let (status, head, body) = get(&url, &["-I"]);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: video/mp4"), "{head}");
    // (curl -I prints the headers where a body would go.)
    assert!(!body.windows(4).any(|w| w == b"ftyp"), "no body");

    // Sound and picture stay together to within an audio frame (1024
    // samples), as they were in the archive: at the start, and after the
    // gap, where the clip's timeline starts again from the wall clock.
    let (mp4_frames, ts_frames) = (pictures_and_sound(&clip), pictures_and_sound(&ts));
    let audio_frame = 1024.0 / 48_000.0;
    let after_gap = times
        .windows(2)
        .find(|w| w[1] - w[0] >= 0.4)
        .map(|w| w[1])
        .unwrap();
    for near in [0.0, after_gap] {
        let off = sync_error(&mp4_frames, &ts_frames, near);
        assert!(off <= audio_frame, "{off} s out of sync at {near} s");
    }

    // Stills: the keyframe nearest a moment, and the newest segment's,
    // each one picture that decodes, the encoder's own (no re-encoding).
    let keyframe = ((into.as_secs_f64() / 2.0).round() as usize).min(1) * 50;
    let still = d.join("still.mp4");
    let (status, headers, body) = get(&format!("{base}/streams/ch1/preview.mp4?at={start}"), &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains("content-type: video/mp4"), "{headers}");
    std::fs::write(&still, &body).unwrap();
    assert_eq!(decode_errors(still.to_str().unwrap()).unwrap().trim(), "");
    let pictures = picture_hashes(&still);
    assert_eq!(pictures.len(), 1);
    assert_eq!(
        pictures[0],
        ts_pictures[keyframe],
        "{} s in",
        into.as_secs_f64()
    );
    let (status, _, body) = get(&format!("{base}/streams/ch1/preview.mp4"), &[]);
    assert_eq!(status, 200);
    std::fs::write(&still, &body).unwrap();
    assert_eq!(picture_hashes(&still).len(), 1);
    let (status, _, _) = get(&format!("{base}/streams/ch1/preview.mp4?at=yesterday"), &[]);
    assert_eq!(status, 400);

    // A browser plays it as a file, to the end, from the asked start: the
    // first picture it shows is at 0, and it lasts the 18 s asked.
    let seen = play_in_browser(&url, Player::Video);
    assert_eq!(seen["fatal"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["ended"], true, "{seen}");
    let duration = seen["duration"].as_f64().unwrap();
    assert!((duration - 18.0).abs() <= frame, "{seen}");
    assert!(
        seen["currentTime"].as_f64().unwrap() >= duration - frame,
        "{seen}"
    );
    assert!(seen["firstFrame"].as_f64().unwrap() < frame, "{seen}");
    // It decoded the pictures (the player may drop a few).
    let decoded = seen["frames"].as_f64().unwrap();
    assert!(decoded >= times.len() as f64 * 0.9, "{seen}");
    drop(server);
}

#[test]
fn mp4_clips_carry_what_broadcast_encoders_send_and_say_what_they_leave_out() {
    use hlsvault_testkit::encoders::{add_ancillary_pids, ffmpeg_muxed, gstreamer};
    let h264 = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        "-bf",
        "2",
    ];
    let hevc = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "keyint=50:log-level=error",
    ];
    let dvb = ["-mpegts_flags", "system_b"];
    type Make = Box<dyn Fn(&Path) -> anyhow::Result<()>>;
    let bf3 = [&h264[..6], &["-bf", "3"]].concat();
    let cases: Vec<(&str, Make, [&str; 2])> = vec![
        (
            "B-frames (x264 -bf 3)",
            Box::new(move |p| ffmpeg_muxed(p, 10.0, &bf3, &["-c:a", "aac"])),
            ["h264", "aac"],
        ),
        (
            "AC-3 (ATSC stream type)",
            Box::new(move |p| ffmpeg_muxed(p, 10.0, &h264, &["-c:a", "ac3"])),
            ["h264", "ac3"],
        ),
        (
            "E-AC-3 (DVB descriptor)",
            Box::new(move |p| {
                ffmpeg_muxed(p, 10.0, &h264, &[&["-c:a", "eac3"][..], &dvb].concat())
            }),
            ["h264", "eac3"],
        ),
        (
            "HEVC with MP2",
            Box::new(move |p| ffmpeg_muxed(p, 10.0, &hevc, &["-c:a", "mp2"])),
            // ffprobe names MPEG audio in MP4 "mp3" whatever its layer
            // (ffmpeg's own MP4 of MP2 too); the decoder finds layer II.
            ["hevc", "mp3"],
        ),
        (
            "MP3",
            Box::new(move |p| ffmpeg_muxed(p, 10.0, &h264, &["-c:a", "libmp3lame"])),
            ["h264", "mp3"],
        ),
        (
            "GStreamer's muxer",
            Box::new(|p| gstreamer(p, 10.0, "x264enc key-int-max=50 bframes=2 ! h264parse")),
            ["h264", "aac"],
        ),
    ];
    let (start, duration) = ("2026-11-21T09:59:48.3Z", "5s");
    // Each stream archived on its own, and that range of it as an MP4.
    let mp4_of = |make: &dyn Fn(&Path) -> anyhow::Result<()>| {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("in.ts");
        make(&ts).unwrap();
        let (config, base) = archived_from(dir.path(), &ts, None);
        let clip = dir.path().join("clip.mp4");
        let args = ["--start", start, "--duration", duration, "-o"];
        let out = export(&config, &[&args[..], &[clip.to_str().unwrap()]].concat());
        (dir, config, base, clip, out)
    };
    for (what, make, codecs) in cases {
        let (_dir, _, _, clip, out) = mp4_of(&make);
        assert!(out.status.success(), "{what}");
        assert_eq!(
            decode_errors(clip.to_str().unwrap()).unwrap().trim(),
            "",
            "{what}"
        );
        let streams = probe(&clip, &["-show_entries", "stream=codec_name,duration"]);
        let names: Vec<&str> = streams
            .iter()
            .map(|s| s.split(',').next().unwrap())
            .collect();
        assert_eq!(names, codecs, "{what}");
        for s in &streams {
            let secs: f64 = s.split(',').nth(1).unwrap().parse().unwrap();
            // Within a frame of video, or of audio (1152 samples of MP3
            // at 48 kHz are 24 ms; AC-3's 1536 are 32 ms).
            assert!((secs - 5.0).abs() <= 0.04, "{what}: {s}");
        }
        let shown = probe(
            &clip,
            &["-select_streams", "v", "-show_entries", "frame=pts_time"],
        );
        let first: f64 = shown[0].parse().unwrap();
        assert!(first.abs() < 1e-6, "{what}: the first picture at {first}");
        // An ISO BMFF reader that is not ffmpeg's reads it to the end.
        let parser = if codecs[0] == "hevc" {
            "h265parse"
        } else {
            "h264parse"
        };
        let (pictures, last) = gstreamer_reads(&clip, parser);
        assert!(pictures >= shown.len(), "{what}: {pictures} pictures");
        assert!(
            (last + 0.04 - 5.0).abs() <= 0.04,
            "{what}: the last at {last}"
        );
    }

    // Teletext, DVB subtitles and SCTE-35 have no place in MP4: the file
    // leaves them out and says so, on the command line and over HTTP.
    let (_dir, config, base, clip, out) = mp4_of(&|ts| {
        make_ts(
            ts,
            &StreamSpec {
                seconds: 10.0,
                ..StreamSpec::default()
            },
        )?;
        add_ancillary_pids(ts, 0x1000).map(drop)
    });
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    for left in [
        "teletext (PID 0x",
        "DVB subtitles (PID 0x",
        "SCTE-35 splice info (PID 0x",
    ] {
        assert!(said.contains(left), "{said}");
    }
    assert_eq!(decode_errors(clip.to_str().unwrap()).unwrap().trim(), "");
    let server = started_server(bin(), &["serve", "--config", &config], &base);
    let url = format!("{base}/streams/ch1/export.mp4?start={start}&duration={duration}");
    let (status, headers, body) = get(&url, &[]);
    assert_eq!(status, 200);
    assert!(body == std::fs::read(&clip).unwrap());
    let dropped = headers
        .lines()
        .find_map(|l| l.strip_prefix("x-hlsvault-dropped: "))
        .unwrap_or_else(|| panic!("{headers}"));
    assert!(
        dropped.contains("teletext") && dropped.contains("scte-35"),
        "{dropped}"
    );
    drop(server);

    // MPEG-2 video cannot be an MP4 here: a clear refusal that says to
    // export TS (exit 2, 422), and TS export still works.
    let (_dir, config, base, clip, out) = mp4_of(&|ts| {
        ffmpeg_muxed(
            ts,
            10.0,
            &["-c:v", "mpeg2video", "-g", "12"],
            &["-c:a", "mp2"],
        )
    });
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("MPEG-2 video") && said.contains("as TS"),
        "{said}"
    );
    assert!(!clip.exists());
    let server = started_server(bin(), &["serve", "--config", &config], &base);
    let (status, _, body) = get(
        &format!("{base}/streams/ch1/export.mp4?start={start}&duration={duration}"),
        &[],
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let (status, _, _) = get(
        &format!("{base}/streams/ch1/export.ts?start={start}&duration={duration}"),
        &[],
    );
    assert_eq!(status, 200);
    drop(server);
}

/// Two hours of archive for stream `long`, made of `ch1`'s segments over
/// and over (hard links), listed in hour playlists that go on in time from
/// 2026-11-21T12:00:00Z: a long range without encoding hours of video.
fn two_hours_of(archive: &Path) -> u64 {
    let mut source = Vec::new();
    for hour in ["09", "10"] {
        let folder = archive.join(format!("ch1/2026/11/21/{hour}"));
        let text = std::fs::read_to_string(folder.join("index.m3u8")).unwrap();
        let p = Playlist::parse(Kind::Event, &text).unwrap();
        source.extend(p.entries().map(|e| (folder.join(&e.uri), e.duration)));
    }
    let layout = Layout::new("long");
    let mut at = humantime::parse_rfc3339("2026-11-21T12:00:00Z").unwrap();
    let (mut sequence, mut bytes) = (0, 0);
    let first = Hour::of(at).index();
    for hour in (first..first + 2).map(Hour::from_index) {
        let mut playlist = Playlist::new(Kind::Event, 4);
        while Hour::of(at) == hour {
            let (file, ticks) = &source[sequence as usize % source.len()];
            let uri = format!("{sequence}.ts");
            let key = layout.segment_key(hour, &uri);
            std::fs::create_dir_all(archive.join(&key).parent().unwrap()).unwrap();
            std::fs::hard_link(file, archive.join(&key)).unwrap();
            bytes += std::fs::metadata(file).unwrap().len();
            playlist.push(Entry {
                sequence,
                uri,
                duration: *ticks,
                start: at,
                discontinuity: false,
                gap: None,
                tags: Vec::new(),
            });
            at += Duration::from_nanos(ticks * 100_000 / 9);
            sequence += 1;
        }
        playlist.end();
        std::fs::write(
            archive.join(layout.hour_playlist_key(hour)),
            playlist.render(),
        )
        .unwrap();
    }
    bytes
}

#[test]
fn a_two_hour_clip_streams_in_bounded_memory_and_stops_when_its_client_goes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (config, base) = archived(d);
    let total = two_hours_of(&d.join("archive"));
    // The server knows `long` too (its source is never read).
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("name = \"ch1\"", "name = \"long\"")
            + &text[text.find("[[streams]]").unwrap()..],
    )
    .unwrap();
    let server = started_server(bin(), &["serve", "--config", &config], &base);
    let pid = server.0.id();
    let path = "/streams/long/export.ts?start=2026-11-21T12:00:00Z&duration=2h";
    let url = format!("{base}{path}");

    // The whole two hours, as fast as curl takes them, while the server's
    // RSS is sampled.
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .unwrap()
    };
    let before = rss();
    let mut curl = KillOnDrop(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{size_download}", &url])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut most = before;
    while curl.0.try_wait().unwrap().is_none() {
        most = most.max(rss());
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut got = String::new();
    std::io::Read::read_to_string(curl.0.stdout.as_mut().unwrap(), &mut got).unwrap();
    assert_eq!(got.trim().parse::<u64>().unwrap(), total, "every byte");
    eprintln!("two hours, {total} bytes: server RSS {before} KiB before, {most} KiB at most");
    assert!(most - before < 64 * 1024, "{before} KiB, then {most} KiB");

    // The same two hours as one MP4: its sample tables, built by a first
    // pass, are a few bytes a sample, and the media streams as TS does.
    let mp4 = d.join("long.mp4");
    let mut curl = KillOnDrop(
        Command::new("curl")
            .args(["-s", "-o", mp4.to_str().unwrap()])
            .arg(url.replace("export.ts", "export.mp4"))
            .spawn()
            .unwrap(),
    );
    let mut most_mp4 = before;
    while curl.0.try_wait().unwrap().is_none() {
        most_mp4 = most_mp4.max(rss());
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("two hours as MP4: server RSS {before} KiB before, {most_mp4} KiB at most");
    assert!(
        most_mp4 - before < 64 * 1024,
        "{before} KiB, then {most_mp4} KiB"
    );
    let secs = probe_duration(mp4.to_str().unwrap()).unwrap();
    assert!((secs - 7200.0).abs() <= 0.04, "{secs} s");
    let mp4_bytes = std::fs::metadata(&mp4).unwrap().len();
    std::fs::remove_file(&mp4).unwrap();

    // A client that goes away mid-clip stops the work: the clip is counted
    // aborted at once, and nothing more is sent (TS, then MP4).
    let metric = |name: &str| metric(&base, name);
    let outcome = |o: &str| metric(&format!("hlsvault_exports_total{{outcome=\"{o}\"}}"));
    assert_eq!(outcome("completed"), 2.0, "the whole clips before");
    let mut before_abort = (total + mp4_bytes) as f64;
    for (aborted, path) in [path.to_string(), path.replace("export.ts", "export.mp4")]
        .iter()
        .enumerate()
    {
        let client = slow_client(&base, path);
        let until = Instant::now() + Duration::from_secs(20);
        while metric("hlsvault_exports") < 1.0 {
            assert!(Instant::now() < until, "the clip never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(client);
        let until = Instant::now() + Duration::from_secs(10);
        while metric("hlsvault_exports") > 0.0 {
            assert!(
                Instant::now() < until,
                "the clip goes on without its client"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(outcome("aborted"), aborted as f64 + 1.0, "{path}");
        let sent = metric("hlsvault_export_bytes_total");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            metric("hlsvault_export_bytes_total"),
            sent,
            "nothing sent after"
        );
        assert!(
            sent - before_abort < total as f64 / 10.0,
            "{} of {total}",
            sent - before_abort
        );
        before_abort = sent;
    }
    drop(server);
}

/// A client that asks for `path` and reads only the first few kilobytes,
/// through a receive buffer made small before it connects (so that the
/// server cannot push the whole answer into the kernel's buffers), until
/// it is dropped.
fn slow_client(base: &str, path: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let addr: std::net::SocketAddrV4 = base.trim_start_matches("http://").parse().unwrap();
    // SAFETY: plain socket calls on a socket this function owns, with
    // arguments of the sizes the calls expect; the descriptor is handed
    // to the TcpStream, which closes it.
    let mut s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let small: libc::c_int = 4096;
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(set, 0);
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            (&to as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0);
        std::net::TcpStream::from_raw_fd(fd)
    };
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut first = [0; 8192];
    s.read_exact(&mut first).unwrap();
    s
}

/// The value of the sample `name` (with its labels, as exposed) in
/// `/metrics`.
fn metric(base: &str, name: &str) -> f64 {
    let (_, _, text) = get(&format!("{base}/metrics"), &[]);
    String::from_utf8(text)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(f64::NAN)
}
