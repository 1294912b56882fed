//! The S3 backend against a real Garage server started on loopback: what
//! lands in the bucket, with which headers, whether it plays, and what
//! `hlsvault check` says when the store is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use hlsvault_testkit::archive::{bytes_under, check_timeline, hour_playlists};
use hlsvault_testkit::encoders::{ad_break, upper_hex};
use hlsvault_testkit::garage::Garage;
use hlsvault_testkit::kill_loop::{archive_after_kills, kill_loop, report_losses, spooled_objects};
use hlsvault_testkit::{
    decode_errors, output_shown, probe_duration, write_pcap, KillOnDrop, Wrap, DST,
};
use minio::s3::types::S3Api;

fn bucket_exists(g: &Garage, bucket: &str) -> bool {
    hlsvault_testkit::garage::runtime().block_on(async {
        g.client()
            .bucket_exists(bucket)
            .unwrap()
            .build()
            .send()
            .await
            .unwrap()
            .exists()
    })
}

fn presign(g: &Garage, key: &str) -> String {
    hlsvault_testkit::garage::runtime().block_on(async {
        g.client()
            .get_presigned_object_url(&g.bucket, key, http::Method::GET)
            .unwrap()
            .expiry_seconds(Some(600))
            .build()
            .send()
            .await
            .unwrap()
            .url
    })
}

/// The response headers of a GET, lower-cased.
fn headers(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

fn storage(g: &Garage, bucket: &str, secret: &str, extra: &str) -> String {
    format!(
        "[storage]\nbackend = \"s3\"\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nregion = \"{}\"\nprefix = \"tv\"\naccess_key = \"{}\"\nsecret_key = \"{secret}\"\n{extra}\n",
        g.endpoint, g.region, g.access_key
    )
}

fn write_config(dir: &Path, name: &str, storage: &str, pcap: &Path) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "{storage}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.10.0.1\"\nport = 5000\n",
            pcap.display()
        ),
    )
    .unwrap();
    p
}

fn hlsvault(args: &[&str]) -> Output {
    output_shown(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(args)
            .env("HLSVAULT_LOG", "info")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY"),
    )
}

/// A capture of 16 s of H.264 + AAC that crosses 10:00 UTC.
fn capture(dir: &Path) -> PathBuf {
    let start = humantime::parse_rfc3339("2026-11-21T09:59:52Z").unwrap();
    hlsvault_testkit::capture(dir, "a", 16.0, start).unwrap()
}

/// A Garage with the bucket "archive", a temporary directory, and the
/// 16 s capture in it.
fn garage_and_capture() -> (Garage, tempfile::TempDir, PathBuf) {
    let g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcap = capture(dir.path());
    (g, dir, pcap)
}

#[test]
fn a_capture_archived_into_garage_plays_with_the_right_headers() {
    let (g, dir, pcap) = garage_and_capture();
    let config = write_config(
        dir.path(),
        "s3.toml",
        &storage(&g, "archive", &g.secret_key, ""),
        &pcap,
    );
    let out = hlsvault(&["run", "--config", config.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(&g.secret_key),
        "the secret never appears in logs"
    );

    let keys = g.list("tv/");
    for k in [
        "tv/ch1/hours.log",
        "tv/ch1/live.m3u8",
        "tv/ch1/2026/11/21/09/index.m3u8",
        "tv/ch1/2026/11/21/10/index.m3u8",
    ] {
        assert!(keys.contains(&k.to_string()), "{k} in {keys:#?}");
    }
    let segments: Vec<&String> = keys.iter().filter(|k| k.ends_with(".ts")).collect();
    assert!(segments.len() >= 4, "{keys:#?}");

    // Every playlist entry is an object in the bucket, and the archive
    // holds up to the same checks as on disk: each segment decodes on its
    // own from a keyframe, EXTINF matches the PTS.
    let copy = dir.path().join("copy");
    g.mirror("tv/", &copy);
    let hours = hour_playlists(&copy.join("tv/ch1"));
    assert_eq!(hours.len(), 2);
    let entries: Vec<_> = hours.iter().flat_map(|(_, p)| p.entries.clone()).collect();
    assert_eq!(
        entries.len(),
        segments.len(),
        "every stored segment is listed"
    );
    for (path, p) in &hours {
        assert!(p.ended, "{path:?} is closed");
    }
    check_timeline(&entries, "video", 0.04);

    // Headers as a player or a CDN needs them.
    let seg = headers(&presign(&g, segments[0]));
    assert!(seg.starts_with("http/1.1 200"), "{seg}");
    assert!(seg.contains("content-type: video/mp2t"), "{seg}");
    assert!(
        seg.contains("cache-control: public, max-age=31536000, immutable"),
        "{seg}"
    );
    let closed = headers(&presign(&g, "tv/ch1/2026/11/21/09/index.m3u8"));
    assert!(
        closed.contains("content-type: application/vnd.apple.mpegurl"),
        "{closed}"
    );
    assert!(
        closed.contains("cache-control: public, max-age=31536000"),
        "{closed}"
    );
    let live = headers(&presign(&g, "tv/ch1/live.m3u8"));
    assert!(live.contains("cache-control: no-cache"), "{live}");

    // A segment plays straight from the bucket over HTTP.
    let errors = decode_errors(&presign(&g, segments[1])).unwrap();
    assert!(errors.trim().is_empty(), "{errors}");

    // Running again over the same hours continues them from the bucket:
    // every earlier entry is kept.
    let before: Vec<String> = entries.iter().map(|e| e.uri.clone()).collect();
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    let again = dir.path().join("again");
    g.mirror("tv/ch1/2026", &again);
    let after: Vec<String> = hour_playlists(&again.join("tv/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries.into_iter().map(|e| e.uri))
        .collect();
    assert!(after.len() >= 2 * before.len(), "{after:?}");
    for uri in &before {
        assert!(after.contains(uri), "{uri} kept");
    }

    // Two days later, with one day of retention, the hours of 11-21 are
    // deleted whole, by their prefix.
    let ts = dir.path().join("a.ts");
    let later = dir.path().join("later.pcap");
    let at = humantime::parse_rfc3339("2026-11-23T12:00:00Z").unwrap();
    write_pcap(&later, at, &[Wrap::new(&ts, DST)], false).unwrap();
    let kept = storage(&g, "archive", &g.secret_key, "retention = \"1d\"");
    let config = write_config(dir.path(), "retention.toml", &kept, &later);
    // A hold on 09:59 keeps that hour alone, from the bucket.
    let config_arg = ["--config", config.to_str().unwrap()];
    let hold = [
        "hold",
        "add",
        "--stream",
        "ch1",
        "--start",
        "2026-11-21T09:59:00Z",
    ];
    let why = ["--duration", "1min", "--reason", "case 42"];
    assert!(hlsvault(&[&hold[..], &why, &config_arg].concat())
        .status
        .success());
    assert!(hlsvault(&[&["run"][..], &config_arg].concat())
        .status
        .success());
    assert!(!g.list("tv/ch1/2026/11/21/09/").is_empty(), "held");
    assert_eq!(g.list("tv/ch1/2026/11/21/10/"), Vec::<String>::new());
    assert!(!g.list("tv/ch1/2026/11/23/12/").is_empty());
    // The ranges show what is left (the held 09:59 and the new run, after
    // a restart) and the hold.
    let out = hlsvault(&[&["ranges", "--stream", "ch1", "--json"][..], &config_arg].concat());
    let ranges: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        ranges["recorded"].as_array().unwrap().len(),
        2,
        "{ranges:#}"
    );
    assert_eq!(ranges["gaps"][0]["cause"], "restart", "{ranges:#}");
    assert_eq!(ranges["holds"][0]["reason"], "case 42", "{ranges:#}");
    assert_eq!(ranges["holds"][0]["start"], "2026-11-21T09:59:00.000Z");
    // Lifted, the held hour goes at the next sweep (an hour on).
    let remove = ["hold", "remove", "--stream", "ch1", "1"];
    assert!(hlsvault(&[&remove[..], &config_arg].concat())
        .status
        .success());
    let next = dir.path().join("next.pcap");
    let at = humantime::parse_rfc3339("2026-11-23T13:00:00Z").unwrap();
    write_pcap(&next, at, &[Wrap::new(&ts, DST)], false).unwrap();
    let config = write_config(dir.path(), "retention.toml", &kept, &next);
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    assert_eq!(g.list("tv/ch1/2026/11/21/"), Vec::<String>::new());
}

#[test]
fn over_the_total_size_the_oldest_hours_leave_the_bucket_first() {
    let (g, dir, pcap) = garage_and_capture();
    let plain = storage(&g, "archive", &g.secret_key, "");
    let config = write_config(dir.path(), "plain.toml", &plain, &pcap);
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    let sized = |name: &str, hour: &str| {
        let to = dir.path().join(name);
        g.mirror(&format!("tv/ch1/2026/11/21/{hour}/"), &to);
        bytes_under(&to.join(format!("tv/ch1/2026/11/21/{hour}")))
    };
    let (s09, s10) = (sized("before", "09"), sized("before", "10"));
    // Two hours later the same capture makes 11 (as 09) and 12 (as 10):
    // with the whole archive capped at s09 + s10 and less than an hour
    // more, 09 and 10 must go.
    let cap = s09 + s10 + s09.min(s10) / 2;
    let later = dir.path().join("later.pcap");
    let at = humantime::parse_rfc3339("2026-11-21T11:59:52Z").unwrap();
    write_pcap(
        &later,
        at,
        &[Wrap::new(dir.path().join("a.ts"), DST)],
        false,
    )
    .unwrap();
    let capped = storage(
        &g,
        "archive",
        &g.secret_key,
        &format!("retention_size = \"{cap}B\""),
    );
    let config = write_config(dir.path(), "capped.toml", &capped, &later);
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    assert_eq!(g.list("tv/ch1/2026/11/21/09/"), Vec::<String>::new());
    assert_eq!(g.list("tv/ch1/2026/11/21/10/"), Vec::<String>::new());
    let (s11, s12) = (sized("after", "11"), sized("after", "12"));
    assert!(s11 + s12 <= cap);
    // The day index sizes the hours as the bucket holds them.
    let index = g.object("tv/ch1/2026/11/21/ranges.txt");
    let index = String::from_utf8_lossy(&index);
    assert!(
        index.contains(&format!("2026-11-21T11 size {s11}\n")),
        "{index}"
    );
    let hours: Vec<String> = hours_log(&g).into_iter().map(|(h, _)| h).collect();
    assert_eq!(hours, ["2026-11-21T11", "2026-11-21T12"]);
}

#[test]
fn a_scte35_break_is_kept_in_the_bucket_as_date_ranges_and_listed_by_the_ranges() {
    let g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("break.ts");
    let (out, back) = ad_break(&ts).unwrap();
    let pcap = dir.path().join("break.pcap");
    let at = humantime::parse_rfc3339("2026-11-21T09:59:50Z").unwrap();
    write_pcap(&pcap, at, &[Wrap::new(&ts, DST)], false).unwrap();
    let config = write_config(
        dir.path(),
        "break.toml",
        &storage(&g, "archive", &g.secret_key, ""),
        &pcap,
    );
    let config_arg = ["--config", config.to_str().unwrap()];
    assert!(hlsvault(&[&["run"][..], &config_arg].concat())
        .status
        .success());
    // The out in the closed 09:00, the in in 10:00, as the bucket holds them.
    g.mirror("tv/ch1/2026/11/21/", dir.path());
    let entries: Vec<_> = hour_playlists(&dir.path().join("tv/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    let video_at = |secs: u64| entries[0].pdt.unwrap() + std::time::Duration::from_secs(secs);
    let ranges: Vec<_> = entries.iter().flat_map(|e| e.dateranges.iter()).collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    let start = humantime::format_rfc3339_millis(video_at(5)).to_string();
    assert_eq!(ranges[0]["START-DATE"], start);
    assert_eq!(ranges[0]["SCTE35-OUT"], format!("0x{}", upper_hex(&out)));
    assert_eq!(ranges[1]["SCTE35-IN"], format!("0x{}", upper_hex(&back)));
    assert_eq!(ranges[1]["DURATION"], "6.000");
    // The ranges list both: the out from the day index in the bucket,
    // the in from the newest hour's playlist.
    let listed = hlsvault(&[&["ranges", "--stream", "ch1", "--json"][..], &config_arg].concat());
    let report: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let index = g.object("tv/ch1/2026/11/21/ranges.txt");
    assert!(
        String::from_utf8_lossy(&index).contains(" mark "),
        "the out is indexed"
    );
    let markers: Vec<(&str, &str)> = report["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["kind"].as_str().unwrap(), m["at"].as_str().unwrap()))
        .collect();
    let back_at = humantime::format_rfc3339_millis(video_at(11)).to_string();
    assert_eq!(
        markers,
        [("out", start.as_str()), ("in", back_at.as_str())],
        "{report:#}"
    );
}

#[test]
fn check_says_what_is_wrong_with_the_store() {
    let g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A capture that archives (check tries capture files too).
    let pcap = hlsvault_testkit::capture(dir.path(), "a", 2.0, SystemTime::now()).unwrap();
    let check = |name: &str, storage: String| {
        let config = write_config(dir.path(), name, &storage, &pcap);
        let out = hlsvault(&["check", "--config", config.to_str().unwrap()]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, _) = check("good.toml", storage(&g, "archive", &g.secret_key, ""));
    assert_eq!(code, Some(0));

    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let (code, err) = check("secret.toml", storage(&g, "archive", wrong, ""));
    assert_eq!(code, Some(2));
    assert!(err.contains("storage.access_key: "), "{err}");
    assert!(!err.contains(wrong), "the secret is never shown: {err}");

    let (code, err) = check("bucket.toml", storage(&g, "nope", &g.secret_key, ""));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("storage.bucket: bucket \"nope\" does not exist at http://127.0.0.1:"),
        "{err}"
    );

    assert!(!bucket_exists(&g, "made-by-check"));
    let (code, _) = check(
        "create.toml",
        storage(&g, "made-by-check", &g.secret_key, "create_bucket = true"),
    );
    assert_eq!(code, Some(0));
    assert!(bucket_exists(&g, "made-by-check"));

    let mut down = storage(&g, "archive", &g.secret_key, "");
    down = down.replace(&g.endpoint, "http://127.0.0.1:9");
    let (code, err) = check("down.toml", down);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("storage.endpoint: cannot reach http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn a_store_outage_of_30_seconds_loses_nothing() {
    let mut g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = humantime::parse_rfc3339("2026-11-21T09:59:52Z").unwrap();
    let pcap = hlsvault_testkit::capture(dir.path(), "long", 44.0, start).unwrap();
    let state = dir.path().join("state");
    let storage = format!(
        "state_dir = \"{}\"\n{}",
        state.display(),
        storage(&g, "archive", &g.secret_key, "")
    );
    let config = write_config(dir.path(), "outage.toml", &storage, &pcap)
        .to_str()
        .unwrap()
        .to_string();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port = 5000\n", "port = 5000\npace = \"realtime\"\n");
    std::fs::write(&config, text).unwrap();

    // The capture plays in real time: 44 s. The store goes away after 6 s
    // and comes back 32 s later.
    let child = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["run", "--config", &config])
        .env("HLSVAULT_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6));
    let before = g.list("tv/").iter().filter(|k| k.ends_with(".ts")).count();
    g.stop();
    std::thread::sleep(std::time::Duration::from_secs(32));
    let waiting = spooled_objects(&state, "ch1");
    g.resume().unwrap();
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "stdout:\n{summary}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    assert!(before >= 1, "segments were stored before the outage");
    assert!(
        waiting >= 4,
        "segments waited in the spool during the outage: {waiting}"
    );
    assert!(summary.contains("store retries"), "{summary}");
    assert!(
        summary.contains("objects spooled while the store was down"),
        "{summary}"
    );

    // Everything arrived, in order, and the spool is empty.
    assert_eq!(spooled_objects(&state, "ch1"), 0);
    let copy = dir.path().join("copy");
    g.mirror("tv/", &copy);
    let entries: Vec<_> = hour_playlists(&copy.join("tv/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    let stored: Vec<(String, Option<SystemTime>)> = g
        .listed_with_times("tv/ch1/2026")
        .into_iter()
        .filter(|(k, _)| k.ends_with(".ts"))
        .collect();
    assert_eq!(
        entries.len(),
        stored.len(),
        "every stored segment listed, every listed one stored"
    );
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!(media > 42.0, "the whole capture: {media} s");
    assert!(
        !entries.iter().any(|e| e.discontinuity),
        "an outage of the store is no break in the stream"
    );
    check_timeline(&entries, "video", 0.04);
    // Stored in sequence order: modification times never go backwards.
    let mut by_sequence = stored.clone();
    by_sequence.sort_by_key(|(k, _)| {
        k.rsplit('-')
            .next()
            .unwrap()
            .trim_end_matches(".ts")
            .parse::<u64>()
            .unwrap()
    });
    // (Compared as times: their texts drop ".000" on whole seconds.)
    let times: Vec<SystemTime> = by_sequence
        .iter()
        .map(|(_, t)| t.expect("a modification time"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{by_sequence:#?}");
}

/// HTTP status of a GET.
fn status(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fetch(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-f", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `hours.log` as stored: (label, URL) lines.
fn hours_log(g: &Garage) -> Vec<(String, String)> {
    let text = g.object("tv/ch1/hours.log");
    String::from_utf8_lossy(&text)
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.to_string(), b.to_string())
        })
        .collect()
}

#[test]
fn presigned_hours_play_end_to_end_and_can_be_signed_again() {
    let (g, dir, pcap) = garage_and_capture();
    let s = storage(
        &g,
        "archive",
        &g.secret_key,
        "urls = \"presigned\"\nurl_expiry = \"1h\"",
    );
    let config = write_config(dir.path(), "signed.toml", &s, &pcap);
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());

    // The canonical playlists stay relative; hours.log hands out presigned
    // URLs of signed copies.
    let hours = hours_log(&g);
    assert_eq!(
        hours.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["2026-11-21T09", "2026-11-21T10"]
    );
    let keys = g.list("tv/ch1/2026/11/21/09/");
    assert!(
        keys.contains(&"tv/ch1/2026/11/21/09/index.signed.m3u8".to_string()),
        "{keys:?}"
    );
    let (_, url) = &hours[1];
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("index.signed.m3u8"),
        "{url}"
    );
    let signed = fetch(url);
    let segment_urls: Vec<&str> = signed.lines().filter(|l| l.starts_with("http")).collect();
    assert!(segment_urls.len() >= 2, "{signed}");
    assert!(signed.ends_with("#EXT-X-ENDLIST\n"), "{signed}");
    let seg = headers(segment_urls[0]);
    assert!(
        seg.starts_with("http/1.1 200") && seg.contains("content-type: video/mp2t"),
        "{seg}"
    );

    // A player gets the whole hour from that one URL.
    let errors = decode_errors(url).unwrap();
    assert!(errors.trim().is_empty(), "{errors}");
    let secs = probe_duration(url).unwrap();
    let listed: f64 = signed
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!(
        listed > 7.0 && (secs - listed).abs() < 0.1,
        "plays {secs} s of the {listed} s listed"
    );

    // A tampered signature is refused.
    let tampered = {
        let i = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let flip = if &url[i..i + 1] == "0" { "1" } else { "0" };
        format!("{}{flip}{}", &url[..i], &url[i + 1..])
    };
    assert_eq!(status(&tampered), "403");

    // Signing again renews the URL (here for a few seconds, which then run out).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let short = s.replace("url_expiry = \"1h\"", "url_expiry = \"3s\"");
    let short_config = write_config(dir.path(), "short.toml", &short, &pcap);
    let out = hlsvault(&[
        "sign",
        "--config",
        short_config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--hour",
        "2026-11-21T09",
    ]);
    assert!(out.status.success());
    let renewed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_ne!(&renewed, &hours[0].1);
    assert_eq!(hours_log(&g)[0].1, renewed, "hours.log names the new URL");
    assert_eq!(status(&renewed), "200");
    std::thread::sleep(std::time::Duration::from_secs(4));
    let expired = status(&renewed);
    assert!(
        expired.starts_with('4'),
        "an expired URL is refused: {expired}"
    );
}

#[test]
fn sigkill_mid_hour_then_a_restart_continues_the_hour() {
    let (g, dir, pcap) = garage_and_capture();
    let config = write_config(
        dir.path(),
        "kill.toml",
        &storage(&g, "archive", &g.secret_key, ""),
        &pcap,
    );
    let realtime = dir.path().join("realtime.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port = 5000\n", "port = 5000\npace = \"realtime\"\n");
    std::fs::write(&realtime, text).unwrap();

    // 13 s into the capture (10:00:05 in capture time) the process dies
    // without a chance to flush.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["run", "--config", realtime.to_str().unwrap()])
        .env("HLSVAULT_LOG", "warn")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(13));
    child.kill().unwrap();
    child.wait().unwrap();
    let mirrored = |name: &str| {
        let copy = dir.path().join(name);
        g.mirror("tv/", &copy);
        hour_playlists(&copy.join("tv/ch1"))
    };
    let killed = mirrored("killed");
    let before: Vec<_> = killed.iter().flat_map(|(_, p)| p.entries.clone()).collect();
    assert!(!before.is_empty());
    for e in &before {
        assert!(
            e.path.is_file(),
            "a playlist lists only stored segments: {}",
            e.uri
        );
    }
    assert!(!killed.last().unwrap().1.ended, "the hour was left open");

    // The restart continues both hours from the bucket.
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    let after: Vec<_> = mirrored("after")
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    for e in &before {
        assert!(after.iter().any(|a| a.uri == e.uri), "{} kept", e.uri);
    }
    assert!(after.len() > before.len());
    assert!(
        after.iter().any(|e| e.discontinuity),
        "the restart is marked"
    );
    for e in &after {
        assert!(e.path.is_file(), "{}", e.uri);
    }
}

#[test]
fn a_store_that_is_down_at_start_is_waited_for() {
    let (mut g, dir, pcap) = garage_and_capture();
    let config = write_config(
        dir.path(),
        "late.toml",
        &storage(&g, "archive", &g.secret_key, ""),
        &pcap,
    );
    g.stop();
    let child = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("HLSVAULT_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    g.resume().unwrap();
    let out = child.wait_with_output().unwrap();
    let (summary, log) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("stdout:\n{summary}\nstderr:\n{log}");
    assert!(out.status.success());
    assert!(log.contains("waiting for the store"), "{log}");
    let copy = dir.path().join("copy");
    g.mirror("tv/", &copy);
    let entries: Vec<_> = hour_playlists(&copy.join("tv/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!(media > 15.0, "the whole capture: {media} s");
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn a_range_served_from_the_bucket_plays_with_fresh_signatures() {
    let (g, dir, pcap) = garage_and_capture();
    let port = hlsvault_testkit::free_tcp_port();
    let s = storage(
        &g,
        "archive",
        &g.secret_key,
        &format!("url_expiry = \"1h\"\n[serve]\nlisten = \"127.0.0.1:{port}\""),
    );
    let config = write_config(dir.path(), "serve.toml", &s, &pcap);
    assert!(hlsvault(&["run", "--config", config.to_str().unwrap()])
        .status
        .success());
    let base = format!("http://127.0.0.1:{port}");
    let _server = hlsvault_testkit::started_server(
        env!("CARGO_BIN_EXE_hlsvault"),
        &["serve", "--config", config.to_str().unwrap()],
        &base,
    );
    // What is recorded, over HTTP and from the command line: one range
    // across 10:00 (the closed hour 09 from its day's index in the
    // bucket, the newest from its playlist).
    let ranges_url =
        format!("{base}/streams/ch1/ranges?start=2026-11-21T09:00:00Z&end=2026-11-21T11:00:00Z");
    let ranges: serde_json::Value = serde_json::from_str(&fetch(&ranges_url)).unwrap();
    let recorded = ranges["recorded"].as_array().unwrap();
    assert_eq!(recorded.len(), 1, "{ranges:#}");
    assert!(ranges["gaps"].as_array().unwrap().is_empty(), "{ranges:#}");
    assert!(recorded[0]["start"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-21T09:59:5"));
    assert!(
        recorded[0]["seconds"].as_f64().unwrap() >= 12.0,
        "{ranges:#}"
    );
    let cli = hlsvault(&[
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--json",
        "--start",
        "2026-11-21T09:00:00Z",
        "--end",
        "2026-11-21T11:00:00Z",
    ]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&cli.stdout).unwrap(),
        ranges
    );
    let index = g.object("tv/ch1/2026/11/21/ranges.txt");
    assert!(
        index.starts_with(b"2026-11-21T09 run 2026-11-21T09:59:5"),
        "{index:?}"
    );

    let url = format!("{base}/streams/ch1/archive.m3u8?start=2026-11-21T09:59:50Z&duration=20s");
    let text = fetch(&url);
    // The segments are URLs signed just now, straight to the bucket.
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let date = format!("X-Amz-Date={}{}{}T", &now[0..4], &now[5..7], &now[8..10]);
    let segments: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(segments.len() >= 4, "{text}");
    for s in &segments {
        assert!(
            s.starts_with(&g.endpoint) && s.contains("X-Amz-Expires=3600") && s.contains(&date),
            "{s}"
        );
    }
    assert_eq!(status(segments[0]), "200");
    // A segment path of an hour playlist redirects to such a URL.
    let hour = fetch(&format!("{base}/streams/ch1/2026/11/21/10/index.m3u8"));
    let first = hour.lines().find(|l| !l.starts_with('#')).unwrap();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("{base}/streams/ch1/2026/11/21/10/{first}"))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, location) = answer.split_once(' ').unwrap();
    assert_eq!(code, "307", "{answer}");
    assert!(
        location.contains("X-Amz-Signature=") && location.contains(&date),
        "{location}"
    );
    assert_eq!(status(location), "200");
    // And the range plays end to end.
    let errors = decode_errors(&url).unwrap();
    assert!(errors.trim().is_empty(), "{errors}");

    // A clip from the bucket, over HTTP and from the command line: the
    // same bytes, and they decode.
    let clip_of = |file: &str, start: &str, duration: &str| {
        let ext = file.rsplit('.').next().unwrap();
        let url = format!("{base}/streams/ch1/export.{ext}?start={start}&duration={duration}");
        let (code, head, body) = hlsvault_testkit::http_get(&url, &[]);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        // TS says its length first; MP4 is streamed as it is made.
        let length = format!("content-length: {}", body.len());
        assert!(head.contains(&length) || ext == "mp4", "{head}");
        let clip = dir.path().join(file);
        let out = hlsvault(&[
            "export",
            "--config",
            config.to_str().unwrap(),
            "--stream",
            "ch1",
            "--start",
            start,
            "--duration",
            duration,
            "-o",
            clip.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        assert!(
            std::fs::read(&clip).unwrap() == body,
            "HTTP and CLI give the same clip"
        );
        let clip = clip.to_str().unwrap().to_string();
        assert_eq!(decode_errors(&clip).unwrap().trim(), "");
        clip
    };
    // TS: whole segments, from the keyframe before.
    let clip = clip_of("clip.ts", "2026-11-21T09:59:52Z", "12s");
    assert!(probe_duration(&clip).unwrap() >= 12.0);
    // The same range replayed from the bucket: the clip's bytes, paced.
    let (port, received) = hlsvault_testkit::receive::receiver();
    let out = hlsvault(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--start",
        "2026-11-21T09:59:52Z",
        "--duration",
        "12s",
        "--to",
        &format!("udp://127.0.0.1:{port}"),
    ]);
    assert!(out.status.success());
    let sent = hlsvault_testkit::receive::bytes(received.join().unwrap());
    assert!(
        sent == std::fs::read(&clip).unwrap(),
        "the replay is the clip"
    );
    // MP4: exactly as long as asked (inside the archive, which starts at
    // the first keyframe after 09:59:52).
    let clip = clip_of("clip.mp4", "2026-11-21T09:59:54Z", "10s");
    let secs = probe_duration(&clip).unwrap();
    assert!((secs - 10.0).abs() <= 0.04, "{secs} s");
}

/// Waits until `log` holds `pattern`, or panics with the log.
fn wait_in_log(log: &Path, pattern: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while std::time::Instant::now() < until {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(pattern)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "no {pattern:?} in the log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn a_restart_while_the_store_is_down_loses_nothing_without_a_spool() {
    let mut g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = d.join("clip.ts");
    hlsvault_testkit::make_ts(
        &clip,
        &hlsvault_testkit::StreamSpec {
            seconds: 20.0,
            ..Default::default()
        },
    )
    .unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Diskless: what waits for the store waits in memory only.
    let storage = storage(&g, "archive", &g.secret_key, "spool = false");
    let config = d.join("restart.toml");
    let write = |segment: u32| {
        std::fs::write(
            &config,
            format!("{storage}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"{segment}s\"\nstall_timeout = \"1s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {port}\n"),
        )
        .unwrap()
    };
    write(2);
    let log = d.join("run.log");
    let mut run = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .stdout(std::fs::File::create(d.join("run.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_in_log(&log, "receiving");
    let mut send = hlsvault_testkit::live_sender(&clip, port, 60);
    let sender = std::thread::spawn(move || hlsvault_testkit::run(&mut send).unwrap());

    // The store goes away; while it is away the stream restarts (its
    // segment duration changes); then the store comes back.
    std::thread::sleep(std::time::Duration::from_secs(5));
    g.stop();
    std::thread::sleep(std::time::Duration::from_secs(3));
    write(3);
    wait_in_log(&log, "config reloaded");
    std::thread::sleep(std::time::Duration::from_secs(4));
    g.resume().unwrap();
    sender.join().unwrap();
    wait_in_log(&log, "stream stalled");
    // SAFETY: signals our own child.
    unsafe { libc::kill(run.0.id() as i32, libc::SIGTERM) };
    let status = run.0.wait().unwrap();
    let summary = std::fs::read_to_string(d.join("run.out")).unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    eprintln!("stdout:\n{summary}\nstderr:\n{stderr}");
    // Exit 0: nothing refused, nothing lost, in either incarnation.
    assert!(status.success(), "{status}");
    assert!(stderr.contains("restarted=[\"ch1\"]"), "{stderr}");
    assert!(!stderr.contains("objects lost"), "{stderr}");

    let copy = d.join("copy");
    g.mirror("tv/", &copy);
    let entries: Vec<_> = hour_playlists(&copy.join("tv/ch1"))
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    let stored = g
        .list("tv/ch1/")
        .into_iter()
        .filter(|k| k.ends_with(".ts"))
        .count();
    assert_eq!(
        entries.len(),
        stored,
        "every stored segment listed, every listed one stored"
    );
    let breaks = entries.iter().filter(|e| e.discontinuity).count();
    assert_eq!(breaks, 1, "one break, at the restart: {entries:#?}");
    // Its cause is in the playlist in the bucket, and the ranges give it
    // to the gap, if the restart lost enough time to make one.
    let texts: String = hour_playlists(&copy.join("tv/ch1"))
        .iter()
        .map(|(path, _)| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(
        texts.contains("#EXT-X-DISCONTINUITY\n#HLSVAULT-GAP:restart\n"),
        "{texts}"
    );
    let out = hlsvault(&[
        "ranges",
        "--config",
        config.to_str().unwrap(),
        "--stream",
        "ch1",
        "--json",
    ]);
    let ranges: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gaps = ranges["gaps"].as_array().unwrap();
    assert!(
        gaps.len() <= 1 && gaps.iter().all(|g| g["cause"] == "restart"),
        "{ranges:#}"
    );
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!(
        (17.9..=20.05).contains(&media),
        "the whole clip but the restart: {media} s"
    );
    check_timeline(&entries, "video", 0.04);
}

#[test]
fn a_run_killed_every_7_seconds_for_2_minutes_keeps_a_clean_archive_in_the_bucket() {
    let g = Garage::start("archive").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let every = std::time::Duration::from_secs(7);
    let run = kill_loop(
        env!("CARGO_BIN_EXE_hlsvault").as_ref(),
        d,
        &storage(&g, "archive", &g.secret_key, ""),
        every,
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    let copy = d.join("copy");
    g.mirror("tv/", &copy);
    let (entries, gaps) = archive_after_kills(&copy.join("tv/ch1"));
    assert_eq!(spooled_objects(&run.state, "ch1"), 0, "the spool drained");
    let stored = g
        .list("tv/ch1/2")
        .into_iter()
        .filter(|k| k.ends_with(".ts"))
        .count();
    assert_eq!(stored, entries.len(), "no segment stored but unlisted");
    report_losses("garage", &run, &entries, &gaps, every);
}
