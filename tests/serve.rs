//! Playback over HTTP: an archive made from a capture that crosses an
//! hour, served by `hlsvault serve`, fetched with curl and played with
//! ffprobe/ffmpeg.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use hlsvault_testkit::{capture, decode_errors, output_shown, probe_duration, KillOnDrop};

/// (status, headers, body) of a GET, with extra curl arguments.
fn get(url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let out = Command::new("curl")
        .args(["-s", "-D", head.to_str().unwrap()])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let headers = std::fs::read_to_string(&head)
        .unwrap_or_default()
        .to_lowercase();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, headers, out.stdout)
}

/// Archives 20 s of H.264 + AAC that cross 10:00 UTC into `d/archive`
/// and serves it with `serve_keys` in `[serve]`; returns the base URL.
fn archived_and_served(d: &std::path::Path, serve_keys: &str) -> (String, KillOnDrop) {
    let start = humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap();
    let pcap = capture(d, "a", 20.0, start).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = d.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[serve]\nlisten = \"127.0.0.1:{port}\"\n{serve_keys}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.10.0.1\"\nport = 5000\n",
            d.join("archive").display(),
            pcap.display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_hlsvault");
    assert!(
        output_shown(Command::new(bin).args(["run", "--config", config.to_str().unwrap()]))
            .status
            .success()
    );
    let server = KillOnDrop(
        Command::new(bin)
            .args(["serve", "--config", config.to_str().unwrap()])
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/healthz"), &[]).0 != 200 {
        assert!(Instant::now() < until, "the server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    (base, server)
}

#[test]
fn a_range_across_the_hour_plays_and_segments_serve_byte_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let archive = d.join("archive");
    let (base, _server) = archived_and_served(d, "");

    // Ten seconds across 10:00 UTC.
    let url = format!("{base}/streams/ch1/archive.m3u8?start=2026-11-21T09:59:55Z&duration=10s");
    let (status, headers, body) = get(&url, &[]);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        headers.contains("content-type: application/vnd.apple.mpegurl"),
        "{headers}"
    );
    assert!(
        text.contains("#EXT-X-PROGRAM-DATE-TIME:") && text.ends_with("#EXT-X-ENDLIST\n"),
        "{text}"
    );
    let uris: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        uris.iter().any(|u| u.starts_with("2026/11/21/09/")),
        "{text}"
    );
    assert!(
        uris.iter().any(|u| u.starts_with("2026/11/21/10/")),
        "{text}"
    );
    assert!(
        !text.contains("#EXT-X-DISCONTINUITY"),
        "a clean stream is contiguous: {text}"
    );
    let listed: f64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!(listed >= 10.0, "the range is covered: {listed} s");

    // It plays end to end.
    assert_eq!(decode_errors(&url).unwrap().trim(), "");
    let secs = probe_duration(&url).unwrap();
    assert!(
        (secs - listed).abs() < 0.1,
        "plays {secs} s of {listed} s listed"
    );

    // Segments: whole, or the byte range asked for.
    let seg_url = format!("{base}/streams/ch1/{}", uris[0]);
    let file = std::fs::read(archive.join("ch1").join(uris[0])).unwrap();
    let (status, headers, whole) = get(&seg_url, &[]);
    assert_eq!((status, whole.len()), (200, file.len()));
    assert!(
        headers.contains("content-type: video/mp2t") && headers.contains("accept-ranges: bytes"),
        "{headers}"
    );
    let (status, headers, part) = get(&seg_url, &["-r", "188-375"]);
    assert_eq!(status, 206);
    assert_eq!(part, file[188..376]);
    assert!(
        headers.contains(&format!("content-range: bytes 188-375/{}", file.len())),
        "{headers}"
    );
    assert_eq!(
        get(&seg_url, &["-r", &format!("{}-", file.len() + 10)]).0,
        416
    );

    // The live window and an hour.
    let (status, headers, _) = get(&format!("{base}/streams/ch1/live.m3u8"), &[]);
    assert!(
        status == 200 && headers.contains("cache-control: no-cache"),
        "{headers}"
    );
    let (status, headers, _) = get(&format!("{base}/streams/ch1/2026/11/21/09/index.m3u8"), &[]);
    assert!(
        status == 200 && headers.contains("max-age=31536000"),
        "a closed hour keeps: {headers}"
    );

    // What the store says of each stream: this capture has ended.
    let (status, headers, body) = get(&format!("{base}/streams"), &[]);
    assert!(
        status == 200 && headers.contains("application/json"),
        "{headers}"
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["name"], "ch1");
    assert_eq!(v[0]["state"], "stopped");
    assert!(
        v[0]["last_segment_end"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-21T10:00:"),
        "{v}"
    );
    assert_eq!(get(&format!("{base}/readyz"), &[]).0, 200);

    // Bad requests say what is wrong.
    let (status, _, body) = get(
        &format!(
            "{base}/streams/ch1/archive.m3u8?start=2026-11-21T10:00:00Z&end=2026-11-21T09:00:00Z"
        ),
        &[],
    );
    assert_eq!(status, 400);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "the range ends before it starts\n"
    );
    let (status, _, body) = get(
        &format!("{base}/streams/ch1/archive.m3u8?start=2026-01-01T00:00:00Z&duration=1h"),
        &[],
    );
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).starts_with("nothing of ch1 is archived between"));
    assert_eq!(
        get(
            &format!("{base}/streams/ch1/archive.m3u8?start=yesterday&duration=1h"),
            &[]
        )
        .0,
        400
    );
    assert_eq!(get(&format!("{base}/streams/nope/live.m3u8"), &[]).0, 404);
    assert_eq!(
        get(&format!("{base}/streams/ch1/../../etc/passwd.m3u8"), &[]).0 / 100,
        4
    );
}

#[test]
fn tokens_guard_playback_and_travel_with_the_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _server) = archived_and_served(
        dir.path(),
        "tokens = [\"t0k3n/x\"]\ncors_origins = [\"https://player.example\"]",
    );
    let url = format!("{base}/streams/ch1/archive.m3u8?start=2026-11-21T09:59:55Z&duration=10s");
    assert_eq!(
        get(&format!("{base}/healthz"), &[]).0,
        200,
        "liveness stays open"
    );
    assert_eq!(get(&url, &[]).0, 401);
    assert_eq!(get(&url, &["-H", "Authorization: Bearer wrong"]).0, 401);
    assert_eq!(get(&url, &["-H", "Authorization: Bearer t0k3n/x"]).0, 200);
    let with_token = format!("{url}&token=t0k3n%2Fx");
    let (status, _, body) = get(&with_token, &[]);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for uri in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(uri.ends_with("?token=t0k3n%2Fx"), "{uri}");
    }
    // A player given only the URL plays it all.
    assert_eq!(decode_errors(&with_token).unwrap().trim(), "");
    // A browser on the allowed origin may ask (preflight) and read.
    let preflight = [
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://player.example",
        "-H",
        "Access-Control-Request-Method: GET",
        "-H",
        "Access-Control-Request-Headers: authorization,range",
    ];
    let (status, headers, _) = get(&url, &preflight);
    assert_eq!(status, 200, "{headers}");
    assert!(
        headers.contains("access-control-allow-origin: https://player.example"),
        "{headers}"
    );
    let (_, headers, _) = get(
        &url,
        &[
            "-H",
            "Origin: https://elsewhere.example",
            "-H",
            "Authorization: Bearer t0k3n/x",
        ],
    );
    assert!(
        !headers.contains("access-control-allow-origin"),
        "{headers}"
    );
    // Many failures from one client are refused harder.
    let statuses: Vec<u16> = (0..12).map(|_| get(&url, &[]).0).collect();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}
