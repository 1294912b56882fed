//! Playback and operations over HTTP: an archive made from a capture that
//! crosses an hour, served by `hlsvault serve`, fetched with curl and
//! played with ffprobe/ffmpeg and with hls.js in Chromium; the metrics,
//! stream figures and status page of a running archiver.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use hlsvault_testkit::{
    capture, decode_errors, free_tcp_port, http_get as get, output_shown, play_in_browser,
    probe_duration, started_server, KillOnDrop, Player,
};

/// Writes `d/serve.toml`: one stream `ch1` from `pcap` into `d/archive`,
/// served on a free port with `top` keys before `[storage]`, `serve_keys`
/// in `[serve]` and `source_keys` in its source. Returns the config path
/// and the base URL.
fn config(
    d: &Path,
    pcap: &Path,
    top: &str,
    serve_keys: &str,
    source_keys: &str,
) -> (String, String) {
    let port = free_tcp_port();
    let config = d.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "{top}\n[storage]\nroot = \"{}\"\n[serve]\nlisten = \"127.0.0.1:{port}\"\n{serve_keys}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.10.0.1\"\nport = 5000\n{source_keys}\n",
            d.join("archive").display(),
            pcap.display()
        ),
    )
    .unwrap();
    (
        config.to_str().unwrap().to_string(),
        format!("http://127.0.0.1:{port}"),
    )
}

/// Starts `hlsvault ARGS` and waits for its server at `base` to answer.
fn started(args: &[&str], base: &str) -> KillOnDrop {
    started_server(env!("CARGO_BIN_EXE_hlsvault"), args, base)
}

/// Archives 20 s of H.264 + AAC that cross 10:00 UTC into `d/archive`
/// and serves it with `serve_keys` in `[serve]`; returns the base URL.
fn archived_and_served(d: &Path, serve_keys: &str) -> (String, KillOnDrop) {
    let start = humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap();
    let pcap = capture(d, "a", 20.0, start).unwrap();
    let (config, base) = config(d, &pcap, "", serve_keys, "");
    let bin = env!("CARGO_BIN_EXE_hlsvault");
    assert!(
        output_shown(Command::new(bin).args(["run", "--config", &config]))
            .status
            .success()
    );
    let server = started(&["serve", "--config", &config], &base);
    (base, server)
}

/// Every sample of `base`/metrics, parsed by the Prometheus project's own
/// text parser (prometheus_client, Python).
fn metrics(base: &str) -> Vec<serde_json::Value> {
    let (status, headers, body) = get(&format!("{base}/metrics"), &[]);
    assert!(
        status == 200 && headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/tools/parse_metrics.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid Prometheus text:\n{}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of sample `name` with `labels` (all of them).
fn sample(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
        })
        .and_then(|s| s["value"].as_f64())
}

#[test]
fn a_range_across_the_hour_plays_and_segments_serve_byte_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let archive = d.join("archive");
    let (base, _server) = archived_and_served(d, "cors_origins = [\"*\"]");

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

    // It plays end to end, in ffmpeg and in a browser (from another origin).
    assert_eq!(decode_errors(&url).unwrap().trim(), "");
    let secs = probe_duration(&url).unwrap();
    assert!(
        (secs - listed).abs() < 0.1,
        "plays {secs} s of {listed} s listed"
    );
    let seen = play_in_browser(&url, Player::HlsJs);
    assert_eq!(seen["fatal"], serde_json::Value::Null, "{seen}");
    assert_eq!(seen["ended"], true, "{seen}");
    let duration = seen["duration"].as_f64().unwrap();
    assert!((duration - listed).abs() < 0.5, "{seen}");
    assert!(
        seen["currentTime"].as_f64().unwrap() >= duration - 0.1,
        "{seen}"
    );
    assert_eq!(
        seen["fragments"].as_u64(),
        Some(uris.len() as u64),
        "{seen}"
    );
    // 25 frames per second, every one decoded.
    assert!(
        seen["frames"].as_f64().unwrap() >= listed * 25.0 - 2.0,
        "{seen}"
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
    let last_end_text = v[0]["last_segment_end"].as_str().unwrap();
    assert!(last_end_text.starts_with("2026-11-21T10:00:"), "{v}");
    assert_eq!(v[0]["recorded_hours"], 2, "{v}");
    assert_eq!(get(&format!("{base}/readyz"), &[]).0, 200);
    // The same from /metrics, though no recorder runs in this process.
    let m = metrics(&base);
    let ch1 = [("stream", "ch1")];
    assert_eq!(
        sample(&m, "hlsvault_archive_recorded_hours", &ch1),
        Some(2.0)
    );
    let newest = sample(
        &m,
        "hlsvault_archive_newest_segment_end_timestamp_seconds",
        &ch1,
    );
    let last_end = humantime::parse_rfc3339(last_end_text).unwrap();
    let unix = last_end
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((newest.unwrap() - unix).abs() < 0.001, "{newest:?} {unix}");
    let age = sample(&m, "hlsvault_archive_newest_segment_age_seconds", &ch1).unwrap();
    assert!(age > 86_400.0, "a capture of 2026-11-21: {age}");
    assert_eq!(sample(&m, "hlsvault_store_readable", &[]), Some(1.0));
    // What is recorded: one range across 10:00, no gap.
    let (status, _, body) = get(&format!("{base}/streams/ch1/ranges"), &[]);
    assert_eq!(status, 200);
    let ranges: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(ranges["recorded"].as_array().unwrap().len(), 1, "{ranges}");
    assert_eq!(ranges["recorded"][0]["end"].as_str(), Some(last_end_text));
    let bad =
        format!("{base}/streams/ch1/ranges?start=2026-11-21T10:00:00Z&end=2026-11-21T09:00:00Z");
    assert_eq!(get(&bad, &[]).0, 400);
    assert_eq!(get(&format!("{base}/streams/nope/ranges"), &[]).0, 404);

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
    // Operators see every refusal: the two above and these twelve.
    let refused = 2.0 + statuses.len() as f64;
    assert_eq!(
        sample(&metrics(&base), "hlsvault_http_auth_failures_total", &[]),
        Some(refused)
    );
}

#[test]
fn a_running_archiver_shows_its_figures_as_metrics_json_and_a_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Replayed in real time from a moment ago: the stream is "receiving".
    let pcap = capture(d, "a", 30.0, SystemTime::now() - Duration::from_secs(2)).unwrap();
    let (config, base) = config(
        d,
        &pcap,
        // With a packet filter plugin, whose figures show too. Deadlines
        // are not the point here: a debug build sharing two cores with
        // Chromium can take a call past the default 10 ms.
        &format!(
            "stats_interval = \"1s\"\n[plugins.nulls]\npath = \"{}\"\ntimeout = \"500ms\"\nconfig = {{ pids = 8191 }}\n[defaults]\nplugins = [\"nulls\"]",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/dist/drop-pids.wasm")
        ),
        "",
        "pace = \"realtime\"",
    );
    let _run = started(&["run", "--config", &config], &base);

    let stream = [("stream", "ch1")];
    let segments = |m: &[serde_json::Value]| {
        sample(m, "hlsvault_stream_segments_total", &stream).unwrap_or(0.0)
    };
    let until = Instant::now() + Duration::from_secs(25);
    let first = loop {
        let m = metrics(&base);
        if segments(&m) >= 2.0 {
            break m;
        }
        assert!(Instant::now() < until, "no segments within 25 s");
        std::thread::sleep(Duration::from_millis(500));
    };
    let later = loop {
        std::thread::sleep(Duration::from_millis(500));
        let m = metrics(&base);
        if segments(&m) > segments(&first) {
            break m;
        }
        assert!(
            Instant::now() < until + Duration::from_secs(10),
            "the counters do not move"
        );
    };
    let value = |m: &[serde_json::Value], name: &str| sample(m, name, &stream).unwrap();
    for name in [
        "hlsvault_stream_datagrams_total",
        "hlsvault_stream_received_bytes_total",
        "hlsvault_stream_segment_bytes_total",
        "hlsvault_stream_media_seconds_total",
    ] {
        assert!(value(&later, name) > value(&first, name), "{name} moves");
    }
    for name in [
        "hlsvault_stream_cc_errors_total",
        "hlsvault_stream_kernel_drops_total",
        "hlsvault_stream_socket_drops_total",
        "hlsvault_stream_discontinuities_total",
        "hlsvault_stream_spool_depth",
        "hlsvault_stream_lost_segments_total",
    ] {
        assert_eq!(value(&later, name), 0.0, "{name}");
    }
    // About 1 Mbit/s of H.264 + AAC.
    let bps = value(&later, "hlsvault_stream_bitrate_bits_per_second");
    assert!((1e5..1e7).contains(&bps), "bit rate {bps}");
    assert!(value(&later, "hlsvault_stream_last_segment_age_seconds") < 10.0);
    // Every stored segment is in the latency histogram, in its +Inf bucket.
    let count = value(&later, "hlsvault_stream_publish_latency_seconds_count");
    assert!(count >= segments(&first), "{count}");
    assert_eq!(
        sample(
            &later,
            "hlsvault_stream_publish_latency_seconds_bucket",
            &[("stream", "ch1"), ("le", "+Inf")]
        ),
        Some(count)
    );
    assert!(sample(&later, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    let calls = |m: &[serde_json::Value]| {
        sample(m, "hlsvault_plugin_calls_total", &[("plugin", "nulls")]).unwrap()
    };
    assert!(calls(&later) > calls(&first), "plugin calls are counted");
    assert_eq!(
        sample(
            &later,
            "hlsvault_plugin_failures_total",
            &[("plugin", "nulls")]
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &later,
            "hlsvault_plugin_seconds_total",
            &[("plugin", "nulls")]
        )
        .unwrap()
            > 0.0
    );

    // The same figures per stream, as JSON.
    let (_, _, body) = get(&format!("{base}/streams"), &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["state"], "receiving", "{v}");
    assert!(v[0]["figures"]["datagrams"].as_u64().unwrap() > 0, "{v}");
    assert!(v[0]["bitrate_bps"].as_f64().unwrap() > 1e5, "{v}");
    // What each PID is, and whether it is kept.
    let pids = v[0]["pids"].as_array().unwrap();
    let video = pids.iter().find(|p| p["pid"] == 256).unwrap();
    assert_eq!(video["what"], "H.264 video", "{v}");
    assert_eq!(video["program"], 1, "{v}");
    assert_eq!(video["kept"], true, "{v}");
    assert!(video["packets"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(get(&format!("{base}/readyz"), &[]).0, 200);

    // The status page: a drawn sparkline, no script, links that play.
    let (status, headers, body) = get(&format!("{base}/"), &[]);
    let html = String::from_utf8(body).unwrap();
    assert!(status == 200 && headers.contains("text/html"), "{headers}");
    assert!(
        html.contains(r#"<td class="receiving">receiving</td>"#),
        "{html}"
    );
    let points = html
        .split(r#"points=""#)
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or_default();
    assert!(points.split(' ').count() >= 2, "a line of samples: {html}");
    // The one script it loads is hls.js, from this server (for the
    // timeline's player).
    assert_eq!(html.matches("<script src=").count(), 1, "{html}");
    let (status, headers, _) = get(&format!("{base}/assets/hls.min.js"), &[]);
    assert!(
        status == 200 && headers.contains("text/javascript"),
        "{headers}"
    );
    let (row, rest) = html.split_once(r#"<tr class="strip">"#).unwrap();
    let strip = rest.split("</tr>").next().unwrap();
    let attributes = |html: &str, name: &str| -> Vec<String> {
        html.split(&format!(r#"{name}=""#))
            .skip(1)
            .map(|l| l.split('"').next().unwrap().replace("&amp;", "&"))
            .collect()
    };
    let links = attributes(row, "href");
    assert_eq!(links.len(), 3, "{html}");
    for link in links {
        let (status, _, body) = get(&format!("{base}/{link}"), &[]);
        assert_eq!(status, 200, "{link}: {}", String::from_utf8_lossy(&body));
        assert!(body.starts_with(b"#EXTM3U"), "{link}");
    }
    // The newest picture is a one-frame MP4 that decodes.
    let newest = attributes(row, "src");
    assert_eq!(newest, ["streams/ch1/preview.mp4"], "{html}");
    let (status, headers, body) = get(&format!("{base}/{}", newest[0]), &[]);
    assert!(status == 200 && headers.contains("video/mp4"), "{headers}");
    let still = dir.path().join("still.mp4");
    std::fs::write(&still, &body).unwrap();
    assert_eq!(decode_errors(still.to_str().unwrap()).unwrap().trim(), "");
    // The strip: six pictures across the last hour, each opening its ten
    // minutes (before this short recording: nothing there yet).
    assert_eq!(attributes(strip, "src").len(), 6, "{html}");
    assert_eq!(attributes(strip, "href").len(), 6, "{html}");
}

/// Sends `request` on a new connection and returns the whole answer (the
/// server closes after it, or after `Connection: close`).
fn raw_exchange(base: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn slow_clients_do_not_keep_a_player_from_its_playlist() {
    use std::io::{ErrorKind, Read, Write};
    let d = tempfile::tempdir().unwrap();
    let (base, _server) = archived_and_served(d.path(), "header_timeout = \"3s\"");
    let addr = base.trim_start_matches("http://").to_string();

    // 500 slowloris clients: each sends half a request head and stalls.
    let slow: Vec<std::net::TcpStream> = (0..500)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /streams/ch1/live.m3u8 HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();

    let asked = Instant::now();
    let answer = raw_exchange(
        &base,
        b"GET /streams/ch1/archive.m3u8?start=2026-11-21T09:59:50Z&duration=10s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let took = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("#EXTINF:"), "{answer}");
    eprintln!("playlist answered in {took:?} beside 500 slow clients");

    // They were all still connected while it answered ...
    for c in &slow {
        c.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let e = (&*c).read(&mut byte).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "still waiting");
    }
    // ... and the header timeout closes each of them.
    for mut c in slow {
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        let closed = c.read_to_end(&mut rest);
        assert!(
            closed.is_ok() || closed.is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
            "closed by the server, not by our read timeout"
        );
    }
}

#[test]
fn oversized_or_too_many_headers_are_refused_with_431() {
    let d = tempfile::tempdir().unwrap();
    let (base, _server) = archived_and_served(d.path(), "");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert!(raw_exchange(&base, big.as_bytes()).starts_with("HTTP/1.1 431"));
    let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(raw_exchange(&base, many.as_bytes()).starts_with("HTTP/1.1 431"));
    // Within the limits the same request is answered.
    let fine = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Small: v\r\nConnection: close\r\n\r\n";
    assert!(raw_exchange(&base, fine.as_bytes()).starts_with("HTTP/1.1 200"));
}

#[test]
fn connections_beyond_the_cap_are_closed_and_counted() {
    use std::io::Read;
    let d = tempfile::tempdir().unwrap();
    let (base, _server) = archived_and_served(d.path(), "max_connections = 3");
    let addr = base.trim_start_matches("http://").to_string();
    let held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // Accepted, then closed at once: the read ends without an answer.
    let mut fourth = std::net::TcpStream::connect(&addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    let closed = fourth.read_to_end(&mut answer);
    assert!(
        closed.is_ok() || closed.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
    );
    assert!(answer.is_empty());
    drop(held);
    // Room again once they are gone; the refusal was counted.
    let until = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (status, _, body) = get(&format!("{base}/metrics"), &[]);
        if status == 200 {
            break String::from_utf8(body).unwrap();
        }
        assert!(Instant::now() < until, "the held connections were released");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        metrics.contains("hlsvault_http_connections_refused_total 1"),
        "{metrics}"
    );
}

/// The colour of the pixel at `(x, y)` of a PNG, read by ffmpeg.
fn pixel(png: &Path, x: i64, y: i64) -> [u8; 3] {
    let out = output_shown(Command::new("ffmpeg").args([
        "-v",
        "error",
        "-i",
        png.to_str().unwrap(),
        "-vf",
        &format!("crop=1:1:{x}:{y}"),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]));
    out.stdout[..3].try_into().unwrap()
}

#[test]
fn the_timeline_draws_what_the_ranges_say_and_a_click_plays_the_stretch() {
    let d = tempfile::tempdir().unwrap();
    let at = |t: &str| humantime::parse_rfc3339(t).unwrap();
    // Two runs of five minutes, two hours apart: on the day's 960 pixels
    // two recorded stretches of about 3 px and a restart gap of 80 px.
    let first = capture(d.path(), "a", 300.0, at("2026-11-21T09:00:00Z")).unwrap();
    let (config, base) = config(d.path(), &first, "", "", "");
    let run = || {
        let bin = env!("CARGO_BIN_EXE_hlsvault");
        let out = output_shown(Command::new(bin).args(["run", "--config", &config]));
        assert!(out.status.success());
    };
    run();
    let second = capture(d.path(), "b", 300.0, at("2026-11-21T11:00:00Z")).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(first.to_str().unwrap(), second.to_str().unwrap());
    std::fs::write(&config, text).unwrap();
    run();
    let _server = started(&["serve", "--config", &config], &base);
    let day = "start=2026-11-21T00:00:00Z&end=2026-11-22T00:00:00Z";
    let (_, _, body) = get(&format!("{base}/streams/ch1/ranges?{day}"), &[]);
    let api: serde_json::Value = serde_json::from_slice(&body).unwrap();

    let shot = d.path().join("page.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/timeline.mjs");
    let out = output_shown(
        Command::new("node")
            .arg(script)
            .arg(format!("{base}/?day=2026-11-21"))
            .arg(&shot),
    );
    assert!(out.status.success(), "the browser run failed");
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shapes = seen["shapes"].as_array().unwrap();
    let of = |kind: &str| -> Vec<(String, String, serde_json::Value)> {
        shapes
            .iter()
            .filter(|s| s["kind"] == kind)
            .map(|s| {
                (
                    s["start"].to_string(),
                    s["end"].to_string(),
                    s["cause"].clone(),
                )
            })
            .collect()
    };
    let listed = |key: &str| -> Vec<(String, String, serde_json::Value)> {
        api[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let cause = s.get("cause").cloned().unwrap_or(serde_json::Value::Null);
                (s["start"].to_string(), s["end"].to_string(), cause)
            })
            .collect()
    };
    assert_eq!(of("recorded"), listed("recorded"));
    assert_eq!(of("gap"), listed("gaps"));
    assert_eq!((of("recorded").len(), of("gap").len()), (2, 1), "{api:#}");
    assert_eq!(of("gap")[0].2, "restart");
    let midnight = at("2026-11-21T00:00:00Z");
    for s in shapes {
        let secs = |k: &str| {
            at(s[k].as_str().unwrap())
                .duration_since(midnight)
                .unwrap()
                .as_secs_f64()
        };
        let scale = s["rowWidth"].as_f64().unwrap() / 86_400.0;
        let x = secs("start") * scale;
        let width = ((secs("end") - secs("start")) * scale).max(1.0);
        assert!((s["x"].as_f64().unwrap() - x).abs() < 0.5, "{s} at {x}");
        assert!(
            (s["width"].as_f64().unwrap() - width).abs() < 0.5,
            "{s} {width} wide"
        );
        // In the screenshot too: the middle of each shape is its colour.
        let want = match s["kind"].as_str() {
            Some("recorded") => [0x2e, 0x9e, 0x5b],
            _ => [0xd6, 0x45, 0x41],
        };
        let got = pixel(&shot, s["cx"].as_i64().unwrap(), s["cy"].as_i64().unwrap());
        let near = got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 12);
        assert!(near, "{s}: {got:?} where {want:?} was drawn");
    }
    // A click on the first stretch plays its range in hls.js on the page.
    let played = &seen["played"];
    assert_eq!(played["hlsJs"], true, "{played}");
    assert_eq!(played["error"], serde_json::Value::Null, "{played}");
    assert!(
        played["ended"] == true || played["currentTime"].as_f64().unwrap() > 1.0,
        "{played}"
    );
    let first_start = api["recorded"][0]["start"].as_str().unwrap();
    let playing = played["playing"].as_str().unwrap();
    assert!(
        playing.contains(&format!("start={first_start}")),
        "{playing}"
    );
}
