//! Replay: archived ranges sent out again as UDP and RTP, paced by their
//! PCR, received by real sockets (and, through a veth pair into a network
//! namespace, by libpcap and by hlsvault's own capture), and checked
//! packet by packet: the bytes, continuity counters, splices, RTP
//! headers, TTL, the pace against the PCR, and the archive a round trip
//! makes.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hlsvault_testkit::pcr_timing::{quantile, Arrivals};
use hlsvault_testkit::receive::{bytes, receiver, LONGEST, QUIET};
use hlsvault_testkit::{
    archive_across_the_hour, archive_capture, continuity, make_ts, output_shown, StreamSpec,
};
use hlsvault_ts::rtp::{classify, Payload};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hlsvault")
}

/// The test that measures the pace against the PCR runs alone: on two
/// cores, the other tests of this file beside it would measure their
/// load, not the pacer. It takes this for writing, the others for reading.
static PACE_MEASURED: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Held by every test but the one that measures the pace.
fn beside_others() -> std::sync::RwLockReadGuard<'static, ()> {
    PACE_MEASURED.read().unwrap_or_else(|e| e.into_inner())
}

/// The archive of [`archive_across_the_hour`]: the config's path.
fn archived(d: &Path) -> String {
    archive_across_the_hour(bin(), d).0
}

fn replay(config: &str, args: &[&str]) -> std::process::Output {
    output_shown(
        Command::new(bin())
            .args(["replay", "--config", config, "--stream", "ch1"])
            .args(args),
    )
}

/// The same range as `hlsvault export` writes it (TS).
fn exported(config: &str, d: &Path, range: &[&str]) -> Vec<u8> {
    let clip = d.join("clip.ts");
    let out = output_shown(
        Command::new(bin())
            .args(["export", "--config", config, "--stream", "ch1", "-o"])
            .arg(&clip)
            .args(range),
    );
    assert!(out.status.success());
    std::fs::read(clip).unwrap()
}

const RANGE: [&str; 4] = [
    "--start",
    "2026-11-21T09:59:51Z",
    "--end",
    "2026-11-21T10:00:09Z",
];

#[test]
fn a_range_across_the_hour_and_a_discontinuity_arrives_as_the_spliced_clip() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = archived(d);
    let (port, received) = receiver();
    let to = format!("udp://127.0.0.1:{port}");
    let out = replay(&config, &[&RANGE[..], &["--to", &to]].concat());
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("1 splices, 0 skipped"), "{summary}");
    let got = received.join().unwrap();
    assert!(got
        .iter()
        .all(|(_, d)| d.len() <= 7 * 188 && d.len() % 188 == 0));
    let ts = bytes(got.clone());
    // The very bytes of the TS export: whole segments from the keyframe
    // before the start, counters that go on, the break marked once.
    assert_eq!(ts, exported(&config, d, &RANGE), "not the spliced clip");
    assert_eq!(continuity(&ts), (0, 1));
    // Paced, not dumped: the PCR spans about 20 s, so does the arrival
    // (a line-rate send would take milliseconds).
    let span = got.last().unwrap().0 - got[0].0;
    assert!(span > Duration::from_secs(15), "sent in {span:?}");
}

#[test]
fn a_looped_range_wraps_twice_with_rtp_numbered_across_the_splices() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = archived(d);
    let (port, received) = receiver();
    let range = ["--start", "2026-11-21T09:59:52Z", "--duration", "3s"];
    let to = format!("rtp://127.0.0.1:{port}");
    let out = replay(
        &config,
        &[&range[..], &["--loop", "3", "--to", &to]].concat(),
    );
    assert!(out.status.success());
    let got = received.join().unwrap();
    let mut ts = Vec::new();
    let mut headers = Vec::new();
    for (_, d) in &got {
        let Payload::Rtp { ts: payload, seq } = classify(d) else {
            panic!("not RTP: {:02x?}", &d[..12]);
        };
        assert_eq!(d[1], 33, "payload type MP2T, no marker");
        let stamp = u32::from_be_bytes(d[4..8].try_into().unwrap());
        let ssrc = u32::from_be_bytes(d[8..12].try_into().unwrap());
        headers.push((seq, stamp, ssrc));
        ts.extend_from_slice(payload);
    }
    assert!(
        headers.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)),
        "sequence numbers go on"
    );
    assert!(
        headers
            .windows(2)
            .all(|w| w[1].1.wrapping_sub(w[0].1) < 90_000),
        "90 kHz time goes on"
    );
    assert!(headers.iter().all(|h| h.2 == headers[0].2), "one SSRC");
    let once = exported(&config, d, &range);
    assert_eq!(ts.len(), 3 * once.len());
    // Two wraps, each a clean splice.
    assert_eq!(continuity(&ts), (0, 2));
    assert_eq!(ts[..once.len()], once[..]);
}

#[test]
fn four_times_as_fast_restamps_the_clocks_and_still_decodes() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = archived(d);
    let (port, received) = receiver();
    let to = format!("udp://127.0.0.1:{port}");
    let out = replay(
        &config,
        &[&RANGE[..], &["--rate", "4", "--to", &to]].concat(),
    );
    assert!(out.status.success());
    let fast: Vec<u8> = received
        .join()
        .unwrap()
        .into_iter()
        .flat_map(|(_, d)| d)
        .collect();
    let original = exported(&config, d, &RANGE);
    assert_eq!(fast.len(), original.len());
    assert_eq!(continuity(&fast), (0, 1));
    let file = d.join("fast.ts");
    std::fs::write(&file, &fast).unwrap();
    // The decoders find nothing wrong. (ffmpeg's null muxer does: frames
    // that last 40 ms every 10 ms overlap on its clock, which is what
    // playing four times as fast is.)
    let said = hlsvault_testkit::decode_errors(file.to_str().unwrap()).unwrap();
    let decoders: Vec<&str> = said
        .lines()
        .filter(|l| {
            !l.starts_with("[null @") && !l.trim_start().starts_with("Last message repeated")
        })
        .collect();
    assert!(decoders.is_empty(), "{said}");
    // Up to the discontinuity, every PCR is a quarter as far from the
    // first (to rounding).
    let first_run = |ts: &[u8]| -> Vec<u64> {
        let mut pcrs = Vec::new();
        for p in hlsvault_ts::packets(ts) {
            let h = hlsvault_ts::Header::parse(p);
            if h.has_af && p[4] >= 7 && p[5] & 0x10 != 0 {
                if p[5] & 0x80 != 0 {
                    break;
                }
                pcrs.push(hlsvault_ts::clock::read_pcr(hlsvault_ts::clock::pcr_field(
                    p,
                )));
            }
        }
        pcrs
    };
    let (slow, quick) = (first_run(&original), first_run(&fast));
    assert_eq!(slow.len(), quick.len());
    assert!(slow.len() > 100);
    for (s, q) in slow.iter().zip(&quick) {
        let (s, q) = ((s - slow[0]) as i64, (q - quick[0]) as i64);
        assert!((s - 4 * q).abs() <= 8, "{s} vs 4 x {q}");
    }
}

#[test]
fn cbr_puts_the_null_packets_the_archive_dropped_back_to_the_multiplex_rate() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A 1.5 Mbit/s CBR multiplex (a third of it null packets), archived
    // without them (the default).
    let ts = d.join("cbr.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 8.0,
            gop: 25,
            muxrate: Some(1_500_000),
            ..StreamSpec::default()
        },
    )
    .unwrap();
    let (config, _) = archive_capture(bin(), d, &ts, None, "null_packets = \"drop\"");
    let range = ["--start", "2026-11-21T09:59:45Z", "--duration", "8s"];
    let (port, received) = receiver();
    let to = format!("udp://127.0.0.1:{port}");
    let out = replay(&config, &[&range[..], &["--cbr", "--to", &to]].concat());
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    let sent = bytes(received.join().unwrap());
    let archived = exported(&config, d, &range);
    let packets = hlsvault_ts::packets(&sent);
    let nulls = packets
        .iter()
        .filter(|p| hlsvault_ts::Header::parse(p).pid == hlsvault_ts::PID_NULL)
        .count();
    assert_eq!(
        sent.len(),
        archived.len() + nulls * 188,
        "the archive and the nulls"
    );
    assert!(
        nulls * 5 > packets.len(),
        "{nulls} nulls of {}; {summary}",
        packets.len()
    );
    assert!(
        summary.contains(&format!("{nulls} nulls put back")),
        "{summary}"
    );
    // Between each two PCRs, as many packets as 1.5 Mbit/s takes (to
    // the packet a fraction is carried by), as in the multiplex.
    let mut track = hlsvault_ts::clock::PcrTrack::default();
    let pcrs: Vec<(usize, u64)> = packets
        .iter()
        .enumerate()
        .filter_map(|(i, p)| track.pcr(p).map(|pcr| (i, pcr)))
        .collect();
    assert!(pcrs.len() > 300);
    for w in pcrs.windows(2) {
        let [(from, a), (to, b)] = [w[0], w[1]];
        let due = (b - a) as f64 * 1_500_000.0 / 27e6 / 1504.0;
        let count = (to - from) as f64;
        assert!(
            (count - due).abs() <= 1.0,
            "{count} packets where {due:.2} are due, at packet {from}"
        );
    }
    // Null packets carry no count to break.
    assert_eq!(continuity(&sent), (0, 0));
}

#[test]
fn a_segment_gone_from_the_store_becomes_a_clean_splice_counted_and_logged() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = archived(d);
    // The second segment of the range (09:59:53) is gone.
    let hour = d.join("archive/ch1/2026/11/21/09");
    let gone = std::fs::read_dir(&hour)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("5953"))
        .expect("a segment at 09:59:53");
    std::fs::remove_file(&gone).unwrap();
    let (port, received) = receiver();
    let to = format!("udp://127.0.0.1:{port}");
    let out = replay(&config, &[&RANGE[..], &["--to", &to]].concat());
    assert!(out.status.success());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("2 splices, 1 skipped"), "{summary}");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("a segment cannot be read; the playout splices past it"));
    let ts: Vec<u8> = received
        .join()
        .unwrap()
        .into_iter()
        .flat_map(|(_, d)| d)
        .collect();
    // The archive's discontinuity and the missing segment: both marked,
    // no continuity error.
    assert_eq!(continuity(&ts), (0, 2));
}

#[test]
fn nothing_archived_or_a_destination_that_cannot_work_exits_2_saying_why() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = archived(d);
    let out = replay(
        &config,
        &[
            "--start",
            "2026-11-21T12:00:00Z",
            "--duration",
            "1m",
            "--to",
            "udp://127.0.0.1:9",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("nothing of ch1 is archived between 2026-11-21T12:00:00Z and 2026-11-21T12:01:00Z; recorded until 2026-11-21T10:00:1"), "{said}");
    let out = replay(
        &config,
        &[
            &RANGE[..],
            &["--to", "udp://239.1.1.1:5000?interface=hv-none0"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("interface=hv-none0: no network interface"),
        "{said}"
    );
    let out = replay(
        &config,
        &[&RANGE[..], &["--to", "udp://239.1.1.1:5000?ttl=0"]].concat(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ttl=0: a TTL is 1 to 255"));
}

/// What libpcap saw of one datagram.
struct Seen {
    /// Capture time, ns.
    at: i128,
    ttl: u8,
    tos: u8,
    payload: Vec<u8>,
}

/// Captures UDP to `port` on `interface` in a thread, until quiet for
/// [`QUIET`] after the first.
fn sniff(interface: &str, port: u16) -> std::thread::JoinHandle<Vec<Seen>> {
    let sniffer = hlsvault_testkit::sniff::Sniffer::open(interface, port).unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        sniffer.run(QUIET, LONGEST, |s| {
            seen.push(Seen {
                at: s.at,
                ttl: s.ttl,
                tos: s.tos,
                payload: s.payload.to_vec(),
            })
        });
        seen
    })
}

#[test]
fn a_replay_through_a_veth_pair_archives_again_as_the_original_paced_by_its_pcr() {
    let _alone = PACE_MEASURED.write().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 20 Mbit/s CBR, kept whole (null packets too).
    let ts = d.join("in.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 30.0,
            muxrate: Some(20_000_000),
            ..StreamSpec::default()
        },
    )
    .unwrap();
    let keep = "null_packets = \"keep\"";
    let (config, _) = archive_capture(bin(), d, &ts, None, keep);
    let net = hlsvault_testkit::net::NetPlan::new().create().unwrap();
    let plan = &net.plan;
    // No multicast route in the namespace: only interface= gets out.
    hlsvault_testkit::run(Command::new("ip").args(["-n", &plan.ns, "route", "del", "224.0.0.0/4"]))
        .unwrap();
    let range = [
        "--start",
        "2026-11-21T10:00:05Z",
        "--end",
        "2026-11-21T10:00:19Z",
    ];
    let replay_in_ns = |to: &str| {
        let mut cmd = net.command("timeout");
        cmd.args([
            "60",
            bin(),
            "replay",
            "--config",
            &config,
            "--stream",
            "ch1",
        ])
        .args(range)
        .args(["--to", to]);
        output_shown(&mut cmd)
    };
    let group = "239.10.0.9:5000";
    let unrouted = replay_in_ns(&format!("udp://{group}"));
    assert_eq!(unrouted.status.code(), Some(2));
    let said = String::from_utf8_lossy(&unrouted.stderr);
    assert!(
        said.contains(&format!("to udp://{group}: ")) && said.contains("no route"),
        "{said}"
    );

    // hlsvault archives what arrives on the host's end; libpcap records it.
    let archive2 = d.join("roundtrip");
    let config2 = d.join("roundtrip.toml");
    std::fs::write(
        &config2,
        format!(
            "[storage]\nroot = \"{}\"\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\nstall_timeout = \"2s\"\n{keep}\n[streams.source]\nkind = \"pcap\"\ninterface = \"{}\"\ngroup = \"239.10.0.9\"\nport = 5000\n",
            archive2.display(),
            plan.host_if
        ),
    )
    .unwrap();
    let mut daemon = hlsvault_testkit::daemon::Daemon::start(bin(), &config2, d, "roundtrip");
    daemon.wait_for("capturing", 1);
    let sniffer = sniff(&plan.host_if, 5000);
    let to = format!("udp://{group}?interface={}&ttl=7&tos=184", plan.ns_if);
    let out = replay_in_ns(&to);
    assert!(out.status.success());
    let seen = sniffer.join().unwrap();
    daemon.wait_for("stream stalled", 1);
    daemon.stop();
    drop(net);

    // Every datagram with the TTL and TOS asked, none lost or reordered.
    assert!(seen.iter().all(|s| s.ttl == 7 && s.tos == 184));
    let sent: Vec<u8> = seen.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(sent, exported(&config, d, &range));
    assert_eq!(continuity(&sent), (0, 0));
    // Paced by the PCR: p99 within 1 ms of where the PCR puts it.
    let mut arrivals = Arrivals::default();
    for s in &seen {
        arrivals.push(s.at, &s.payload);
    }
    let deviations = arrivals.deviations();
    let p99 = quantile(&deviations, 0.99);
    let max = quantile(&deviations, 1.0);
    eprintln!(
        "PCR jitter at 20 Mbit/s: p99 {p99:.3} ms, max {max:.3} ms over {} PCRs",
        deviations.len()
    );
    assert!(p99 <= 1.0, "PCR jitter p99 {p99} ms");

    // The round trip's archive: the original's segments, to the ms.
    let extinfs = |root: &Path, keep: &dyn Fn(&hlsvault_testkit::archive::Entry) -> bool| {
        hlsvault_testkit::archive::hour_playlists(&root.join("ch1"))
            .into_iter()
            .flat_map(|(_, p)| p.entries)
            .filter(|e| keep(e))
            .map(|e| (e.extinf * 1000.0).round() as i64)
            .collect::<Vec<_>>()
    };
    let [start, end] = [range[1], range[3]].map(|t| humantime::parse_rfc3339(t).unwrap());
    let original = extinfs(&d.join("archive"), &|e| {
        let from = e.pdt.unwrap();
        from < end && from + Duration::from_secs_f64(e.extinf) > start
    });
    let again = extinfs(&archive2, &|_| true);
    assert_eq!(again, original);
    for (_, p) in hlsvault_testkit::archive::hour_playlists(&archive2.join("ch1")) {
        for e in p.entries {
            let seg = e.path.to_str().unwrap();
            assert_eq!(hlsvault_testkit::decode_errors(seg).unwrap(), "", "{seg}");
        }
    }
}

/// The PCRs in a datagram.
fn pcrs(datagram: &[u8]) -> Vec<u64> {
    let ts = match classify(datagram) {
        Payload::Ts(ts) | Payload::Rtp { ts, .. } => ts,
        Payload::NotTs => return Vec::new(),
    };
    hlsvault_ts::packets(ts)
        .iter()
        .filter(|p| hlsvault_ts::Header::parse(p).has_af && p[4] >= 7 && p[5] & 0x10 != 0)
        .map(|p| hlsvault_ts::clock::read_pcr(hlsvault_ts::clock::pcr_field(p)))
        .collect()
}

#[test]
fn following_a_live_archive_keeps_the_delay_within_a_segment() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ts = d.join("live.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 30.0,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    // ffmpeg -re → a relay in this test that notes when each PCR passed →
    // `hlsvault run`; `hlsvault replay --follow` → a receiver here.
    let relay_in = UdpSocket::bind("127.0.0.1:0").unwrap();
    let relay_out = UdpSocket::bind("127.0.0.1:0").unwrap();
    let archive_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"2s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {archive_port}\n",
            d.join("archive").display()
        ),
    )
    .unwrap();
    let mut daemon = hlsvault_testkit::daemon::Daemon::start(bin(), &config, d, "live");
    daemon.wait_for("receiving", 1);
    let relay_port = relay_in.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || {
        let mut passed = std::collections::HashMap::new();
        let mut buf = vec![0u8; 65_536];
        relay_in.set_read_timeout(Some(LONGEST)).unwrap();
        while let Ok(n) = relay_in.recv(&mut buf) {
            relay_out
                .send_to(&buf[..n], ("127.0.0.1", archive_port))
                .unwrap();
            for pcr in pcrs(&buf[..n]) {
                passed.insert(pcr, Instant::now());
            }
            relay_in.set_read_timeout(Some(QUIET)).unwrap();
        }
        passed
    });
    let mut sender = hlsvault_testkit::live_sender(&ts, relay_port, 60)
        .spawn()
        .unwrap();
    // Six seconds behind, once two segments are archived.
    let live = d.join("archive/ch1/live.m3u8");
    let began = Instant::now();
    while std::fs::read_to_string(&live).map_or(0, |l| l.matches("#EXTINF").count()) < 2 {
        assert!(
            began.elapsed() < LONGEST,
            "nothing archived: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (port, received) = receiver();
    let mut follow = Command::new(bin())
        .args([
            "replay",
            "--config",
            config.to_str().unwrap(),
            "--stream",
            "ch1",
        ])
        .args([
            "--follow",
            "--delay",
            "6s",
            "--to",
            &format!("udp://127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(d.join("follow.log")).unwrap())
        .spawn()
        .unwrap();
    assert!(sender.wait().unwrap().success());
    let passed = relay.join().unwrap();
    let got = received.join().unwrap();
    // SAFETY: signals our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGINT) };
    let status = follow.wait().unwrap();
    let log = std::fs::read_to_string(d.join("follow.log")).unwrap();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("the playout waits for the archive"),
        "the live end is a stall: {log}"
    );
    daemon.stop();
    // Each PCR left the replay 6 s after it reached the archiver, to
    // within a segment (2 s). (ffmpeg -re does not send by its PCR: its
    // bursts show as 0.1-0.3 s, and its flush at the end as 1.7 s.)
    let delays: Vec<f64> = got
        .iter()
        .flat_map(|(at, d)| pcrs(d).into_iter().map(move |p| (*at, p)))
        .filter_map(|(at, pcr)| passed.get(&pcr).map(|p| (at - *p).as_secs_f64()))
        .collect();
    assert!(delays.len() > 100, "{} PCRs matched", delays.len());
    let (min, max) = delays
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    eprintln!(
        "follow: delay {min:.3}-{max:.3} s over {} PCRs",
        delays.len()
    );
    assert!(min >= 4.0 && max <= 8.0, "delay {min}-{max} s");
}

/// The value of `metric` (with its labels, as exposed) in `/metrics`.
fn metric(base: &str, metric: &str) -> Option<f64> {
    let (_, _, body) = hlsvault_testkit::http_get(&format!("{base}/metrics"), &[]);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_playout_added_by_reload_follows_the_archive_and_stops_when_removed() {
    let _beside = beside_others();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ts = d.join("live.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 40.0,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    let archive_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = hlsvault_testkit::free_tcp_port();
    let base = format!("http://127.0.0.1:{http}");
    let config = d.join("run.toml");
    let head = format!(
        "[storage]\nroot = \"{}\"\n[serve]\nlisten = \"127.0.0.1:{http}\"\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"2s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {archive_port}\n",
        d.join("archive").display()
    );
    let rewrite = |text: &str| {
        let next = d.join("next.toml");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &config).unwrap();
    };
    rewrite(&head);
    let mut daemon = hlsvault_testkit::daemon::Daemon::start(bin(), &config, d, "run");
    daemon.wait_for("receiving", 1);
    let mut sender = hlsvault_testkit::live_sender(&ts, archive_port, 60)
        .spawn()
        .unwrap();
    let (port, received) = receiver();
    rewrite(&format!(
        "{head}[[playouts]]\nname = \"tv1\"\nstream = \"ch1\"\nto = \"udp://127.0.0.1:{port}\"\ndelay = \"5s\"\n"
    ));
    daemon.wait_for("playout started", 1);
    let sent = "hlsvault_playout_datagrams_total{playout=\"tv1\"}";
    let began = Instant::now();
    while metric(&base, sent).unwrap_or(0.0) < 300.0 {
        assert!(
            began.elapsed() < LONGEST,
            "the playout sends nothing: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, _, page) = hlsvault_testkit::http_get(&format!("{base}/"), &[]);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(&format!(
            "<td>tv1</td><td>ch1</td><td>udp://127.0.0.1:{port}</td><td>5s</td>"
        )),
        "{page}"
    );
    assert!(metric(
        &base,
        "hlsvault_playout_jitter_p99_seconds{playout=\"tv1\"}"
    )
    .is_some());
    // Removed: it stops; the stream goes on untouched.
    rewrite(&head);
    daemon.wait_for("playout stopped", 1);
    let got = received.join().unwrap();
    assert!(sender.wait().unwrap().success());
    let log = daemon.log();
    assert_eq!(log.matches("restarted=[]").count(), 2, "{log}");
    assert!(
        metric(&base, sent).is_none(),
        "a stopped playout leaves /metrics"
    );
    daemon.stop();
    let ts = bytes(got.clone());
    assert!(ts.len() > 300 * 1316 / 2, "{} bytes", ts.len());
    assert_eq!(continuity(&ts).0, 0, "no CC error");
}
