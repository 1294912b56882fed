//! Durability across crashes: a live run killed with SIGKILL over and over
//! keeps an archive whose playlists parse, list every segment once and
//! only stored ones, leaves nothing in its spool, and loses at most about
//! a segment per kill. (On Garage: `tests/s3.rs`.)

use std::time::Duration;

use hlsvault_testkit::kill_loop::{archive_after_kills, kill_loop, report_losses, spooled_objects};

#[test]
fn a_run_killed_every_7_seconds_for_2_minutes_keeps_a_clean_archive() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let every = Duration::from_secs(7);
    let run = kill_loop(
        env!("CARGO_BIN_EXE_hlsvault").as_ref(),
        d,
        &format!("[storage]\nroot = \"{}\"", d.join("archive").display()),
        every,
        Duration::from_secs(120),
    )
    .unwrap();
    let (entries, gaps) = archive_after_kills(&d.join("archive/ch1"));
    assert_eq!(spooled_objects(&run.state, "ch1"), 0, "the spool drained");
    report_losses("fs", &run, &entries, &gaps, every);
}

/// The UTC hour an hour playlist's folder names (`.../YYYY/MM/DD/HH/index.m3u8`).
fn folder_hour(playlist: &std::path::Path) -> std::time::SystemTime {
    let parts: Vec<&str> = playlist
        .parent()
        .unwrap()
        .iter()
        .rev()
        .take(4)
        .map(|p| p.to_str().unwrap())
        .collect();
    humantime::parse_rfc3339(&format!(
        "{}-{}-{}T{}:00:00Z",
        parts[3], parts[2], parts[1], parts[0]
    ))
    .unwrap()
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn sixty_hours_without_a_break_file_every_segment_in_its_hour() {
    use hlsvault_testkit::archive::{hour_playlists, PTS_WRAP_SECS};
    const HOURS: u64 = 60;
    // 36,000 segments: on tmpfs, what is measured is the timeline, not
    // the disk's syncs.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let d = dir.path();
    // 60 h of tiny H.264 at 1 fps, a keyframe every 6 s, from an hour
    // before a PTS wrap: it wraps three times (PTS and PCR), and runs from
    // 21:30 on 29 November across three midnights, the month end, and the
    // 57-hour point where a multiply-first clock overflowed.
    let ts = d.join("60h.ts");
    hlsvault_testkit::run(
        std::process::Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(format!("color=c=black:s=64x64:r=1:d={}", HOURS * 3600))
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "6",
                "-keyint_min",
                "6",
            ])
            .args(["-sc_threshold", "0", "-output_ts_offset"])
            .arg(format!("{}", PTS_WRAP_SECS - 3600.0))
            .args(["-f", "mpegts"])
            .arg(&ts),
    )
    .unwrap();
    let start = humantime::parse_rfc3339("2026-11-29T21:30:00Z").unwrap();
    let pcap = d.join("60h.pcap");
    hlsvault_testkit::write_pcap(
        &pcap,
        start,
        &[hlsvault_testkit::Wrap::new(&ts, hlsvault_testkit::DST)],
        false,
    )
    .unwrap();
    std::fs::remove_file(&ts).unwrap();
    // At 1 fps, a datagram of 7 packets comes every 2 s or so: not a gap.
    let config = d.join("soak.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[storage]\nroot = \"{}\"\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"6s\"\nmax_gap = \"10s\"\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.10.0.1\"\nport = 5000\n",
            d.join("state").display(),
            d.join("archive").display(),
            pcap.display()
        ),
    )
    .unwrap();

    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env("HLSVAULT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut rss = Vec::new();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        rss.extend(rss_kib(run.id()));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());

    let hours = hour_playlists(&d.join("archive/ch1"));
    assert_eq!(hours.len() as u64, HOURS + 1, "a partial hour at each end");
    let mut entries = Vec::new();
    for (path, playlist) in &hours {
        let hour = folder_hour(path);
        for e in &playlist.entries {
            let pdt = e.pdt.unwrap();
            assert!(
                pdt >= hour && pdt < hour + Duration::from_secs(3600),
                "{}: {} is filed in {}",
                e.uri,
                humantime::format_rfc3339(pdt),
                path.display()
            );
            assert!(!e.discontinuity, "no break in a clean timeline: {}", e.uri);
        }
        assert!(playlist.ended, "the capture ended: {}", path.display());
        entries.extend(playlist.entries.iter().cloned());
    }
    for w in entries.windows(2) {
        let end = w[0].pdt.unwrap() + Duration::from_secs_f64(w[0].extinf);
        let next = w[1].pdt.unwrap();
        let drift = match next.duration_since(end) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => e.duration().as_secs_f64(),
        };
        assert!(
            drift < 0.002,
            "{} follows {} with a gap of {drift} s",
            w[1].uri,
            w[0].uri
        );
    }
    let media: f64 = entries.iter().map(|e| e.extinf).sum();
    assert!(
        (media - (HOURS * 3600) as f64).abs() < 7.0,
        "all 60 h archived: {media} s"
    );
    let last = entries.last().unwrap();
    assert_eq!(
        humantime::format_rfc3339(last.pdt.unwrap()).to_string()[..13],
        *"2026-12-02T09",
        "60 h after the start, not wrapped back"
    );
    // Segments decode around each PTS wrap, at the 57-hour point and at
    // both ends.
    let at = |secs: f64| (secs / 6.0) as usize;
    for i in [
        0,
        at(3600.0),
        at(3600.0 + PTS_WRAP_SECS),
        at(3600.0 + 2.0 * PTS_WRAP_SECS),
        at(57.0 * 3600.0),
        entries.len() - 1,
    ] {
        let e = &entries[i.min(entries.len() - 1)];
        let errors = hlsvault_testkit::decode_errors(e.path.to_str().unwrap()).unwrap();
        assert!(errors.trim().is_empty(), "{}: {errors}", e.uri);
    }
    // Memory stays flat over the 60 h.
    let half = rss.len() / 2;
    let (first, second) = (
        rss[..half].iter().max().copied().unwrap_or(0),
        rss[half..].iter().max().copied().unwrap_or(0),
    );
    let every_tenth: Vec<u64> = rss
        .iter()
        .step_by(rss.len().div_ceil(10).max(1))
        .copied()
        .collect();
    eprintln!(
        "60 h: {} segments, {} hours; RSS (KiB) through the run: {every_tenth:?}; max {first} in the first half, {second} in the second",
        entries.len(),
        hours.len()
    );
    assert!(rss.len() >= 4, "sampled while it ran: {rss:?}");
    assert!(
        second <= first + 4096,
        "RSS grows: {first} KiB then {second} KiB"
    );
}
