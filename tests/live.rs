//! Live capture end to end: real packets sent in real time by `ffmpeg -re`
//! and `tcpreplay`, on loopback or through a veth pair into a network
//! namespace the test creates, received by the `hlsvault` binary with
//! `kind = "udp"` and `kind = "pcap"`, stopped with SIGTERM, and checked
//! with ffprobe and ffmpeg. Every sender is bounded by its file and a
//! timeout.

use std::net::{SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use hlsvault_testkit::archive::{check_timeline, hour_playlists, Entry};
use hlsvault_testkit::daemon::Daemon;
use hlsvault_testkit::net::NetPlan;
use hlsvault_testkit::{http_get, make_ts, run, write_pcap, StreamSpec, Wrap};

/// Sends a TS file in real time with `ffmpeg -re`, as an encoder would
/// (7 packets a datagram); returns when the file has been sent.
fn send_realtime(mut cmd: Command, ts: &Path, url: &str) {
    cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(ts)
        .args(["-c", "copy", "-f", "mpegts", "-flush_packets", "0", url]);
    run(&mut cmd).unwrap();
}

fn timed(program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["60", program]);
    c
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every entry of a stream's hour playlists, in order.
fn entries(archive: &Path, stream: &str) -> Vec<Entry> {
    let hours = hour_playlists(&archive.join(stream));
    for (path, p) in &hours {
        assert!(!p.ended, "{path:?}: a stopped live hour stays open");
    }
    hours.into_iter().flat_map(|(_, p)| p.entries).collect()
}

/// The sequence number in a segment name (`MMSS.mmm-SEQ.ts`).
fn sequence(e: &Entry) -> u64 {
    let name = e.uri.rsplit('/').next().unwrap();
    name.trim_end_matches(".ts")
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn media_seconds(entries: &[Entry]) -> f64 {
    entries.iter().map(|e| e.extinf).sum()
}

fn clip(dir: &Path, name: &str, seconds: f64) -> PathBuf {
    let p = dir.join(name);
    make_ts(
        &p,
        &StreamSpec {
            seconds,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    p
}

#[test]
fn udp_stall_sigterm_and_a_restart_that_continues_the_hour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first, second) = (clip(d, "first.ts", 8.0), clip(d, "second.ts", 6.0));
    let port = free_port();
    let archive = d.join("archive");
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            r#"stats_interval = "1s"
[storage]
root = "{}"
[[streams]]
name = "ch1"
segment_duration = "2s"
stall_timeout = "1s"
[streams.source]
kind = "udp"
interface = "lo"
group = "127.0.0.1"
port = {port}
"#,
            archive.display()
        ),
    )
    .unwrap();
    let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");

    // Run 1: a clip, silence (a stall), another clip, silence, SIGTERM.
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "run1");
    daemon.wait_for("receiving", 1);
    send_realtime(timed("ffmpeg"), &first, &url);
    daemon.wait_for("stream stalled", 1);
    send_realtime(timed("ffmpeg"), &second, &url);
    daemon.wait_for("stream stalled", 2);
    daemon.wait_for("Mbit/s", 1);
    let summary = daemon.stop();
    assert!(summary.contains("; 2 stalls"), "{summary}");
    assert!(summary.contains(" 0 socket drops"), "{summary}");

    let run1 = entries(&archive, "ch1");
    check_timeline(&run1, "video", 0.04);
    let breaks: Vec<usize> = (0..run1.len()).filter(|&i| run1[i].discontinuity).collect();
    assert_eq!(
        breaks.len(),
        1,
        "one discontinuity, after the stall: {run1:#?}"
    );
    assert!(run1[breaks[0]].pdt.is_some());
    // The first clip's segments, all stored before the second clip came.
    let clip1 = media_seconds(&run1[..breaks[0]]);
    assert!((7.0..=8.05).contains(&clip1), "first clip: {clip1} s");
    let total = media_seconds(&run1);
    assert!((12.5..=14.05).contains(&total), "both clips: {total} s");
    assert!(archive.join("ch1/live.m3u8").is_file());

    // Run 2 continues the same hour: every entry kept, the sequence runs
    // on, the gap is a discontinuity.
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "run2");
    daemon.wait_for("receiving", 1);
    send_realtime(timed("ffmpeg"), &second, &url);
    daemon.wait_for("stream stalled", 1);
    daemon.stop();
    let run2 = entries(&archive, "ch1");
    assert!(run2.len() > run1.len());
    for (a, b) in run1.iter().zip(&run2) {
        assert_eq!(
            (&a.uri, a.extinf),
            (&b.uri, b.extinf),
            "earlier entries kept"
        );
    }
    let resumed = &run2[run1.len()];
    assert!(
        resumed.discontinuity && resumed.pdt.is_some(),
        "{resumed:?}"
    );
    let seqs: Vec<u64> = run2.iter().map(sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    check_timeline(&run2[run1.len()..], "video", 0.04);
}

#[test]
fn pcap_and_udp_in_a_namespace_started_before_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (clip(d, "a.ts", 10.0), clip(d, "b.ts", 10.0));
    let group_a = SocketAddrV4::new([239, 77, 0, 1].into(), 5000);
    let group_b = SocketAddrV4::new([239, 77, 0, 2].into(), 5002);
    // b arrives in RTP, with three pairs of datagrams swapped in transit.
    let mut rtp = Wrap::new(&b, group_b);
    rtp.rtp = Some(0);
    rtp.swap = vec![100, 300, 500];
    let pcap = d.join("send.pcap");
    write_pcap(
        &pcap,
        SystemTime::now(),
        &[Wrap::new(&a, group_a), rtp],
        false,
    )
    .unwrap();

    let plan = NetPlan::new();
    let archive = d.join("archive");
    let stream = |name: &str, kind: &str, g: SocketAddrV4, extra: &str| {
        format!(
            "[[streams]]\nname = \"{name}\"\nsegment_duration = \"2s\"\nstall_timeout = \"1s\"\n[streams.source]\nkind = \"{kind}\"\ninterface = \"{}\"\ngroup = \"{}\"\nport = {}\nbuffer_size = \"4MiB\"\n{extra}",
            plan.host_if,
            g.ip(),
            g.port()
        )
    };
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n{}{}{}{}{}",
            archive.display(),
            stream("a-pcap", "pcap", group_a, ""),
            stream("b-pcap", "pcap", group_b, ""),
            stream("a-udp", "udp", group_a, ""),
            // Source-specific multicast: the sender (10.0.0.1 in the
            // capture) and a sender that does not exist.
            stream("a-ssm", "udp", group_a, "source_addr = \"10.0.0.1\"\n"),
            stream(
                "a-ssm-other",
                "udp",
                group_a,
                "source_addr = \"10.0.0.99\"\n"
            ),
        ),
    )
    .unwrap();

    // The interface does not exist yet: hlsvault waits for it.
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "run");
    daemon.wait_for("live source failed; retrying", 2);
    let net = plan.create().unwrap();
    daemon.wait_for("capturing", 1);
    daemon.wait_for("receiving", 1);
    let mut replay = net.command("timeout");
    replay
        .args(["60", "tcpreplay", "-q", "-i", &net.plan.ns_if])
        .arg(&pcap);
    run(&mut replay).unwrap();
    daemon.wait_for("stream stalled", 4);
    let daemon_log = daemon.log();
    let summary = daemon.stop();
    drop(net);

    let line = |name: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no summary for {name}: {summary}"))
            .to_string()
    };
    for name in ["a-pcap", "b-pcap", "a-udp", "a-ssm"] {
        let l = line(name);
        assert!(
            l.contains(" 0 CC errors, 1 discontinuities;"),
            "the stall: {l}"
        );
        assert!(l.contains("; 1 stalls"), "{l}");
        assert!(
            !l.contains("drops"),
            "no kernel, interface or socket drops: {l}"
        );
        let e = entries(&archive, name);
        assert!(!e.iter().any(|e| e.discontinuity), "{name}: {e:#?}");
        check_timeline(&e, "video", 0.04);
        let secs = media_seconds(&e);
        assert!((9.0..=10.05).contains(&secs), "{name}: {secs} s");
    }
    let b = line("b-pcap");
    assert!(b.contains("; 3 RTP datagrams put back in order"), "{b}");
    assert!(!b.contains("lost"), "{b}");
    // The same datagrams through libpcap and through a socket: the same archive.
    let extinf =
        |name: &str| -> Vec<f64> { entries(&archive, name).iter().map(|e| e.extinf).collect() };
    assert_eq!(extinf("a-pcap"), extinf("a-udp"));
    assert_eq!(extinf("a-pcap"), extinf("a-ssm"));
    assert!(line("a-ssm-other").starts_with("a-ssm-other: 0 segments"));
    assert!(daemon_log.contains("no datagrams received yet"));
}

#[test]
fn ip_fragments_through_the_veth_are_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = clip(d, "a.ts", 10.0);
    let group = SocketAddrV4::new([239, 77, 0, 3].into(), 5004);
    // 21 packets a datagram over a 1500-byte MTU: three fragments each.
    let mut wrap = Wrap::new(&a, group);
    wrap.per_datagram = 21;
    wrap.mtu = Some(1500);
    let pcap = d.join("send.pcap");
    let sent = write_pcap(&pcap, SystemTime::now(), &[wrap], false).unwrap();
    let plan = NetPlan::new();
    let net = plan.create().unwrap();
    let archive = d.join("archive");
    let stream = |name: &str, kind: &str| {
        format!(
            "[[streams]]\nname = \"{name}\"\nsegment_duration = \"2s\"\nstall_timeout = \"1s\"\n[streams.source]\nkind = \"{kind}\"\ninterface = \"{}\"\ngroup = \"{}\"\nport = {}\n",
            net.plan.host_if,
            group.ip(),
            group.port()
        )
    };
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n{}{}",
            archive.display(),
            // libpcap sees the fragments: hlsvault reassembles them; the
            // socket gets what the kernel reassembled.
            stream("frag-pcap", "pcap"),
            stream("frag-udp", "udp"),
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "run");
    daemon.wait_for("capturing", 1);
    // `hlsvault probe` listens too, for 5 s of the 10.
    let probe = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
        .args(["probe", "--interface", &net.plan.host_if, "--group"])
        .arg(group.ip().to_string())
        .args(["--port", &group.port().to_string(), "--seconds", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut replay = net.command("timeout");
    replay
        .args(["60", "tcpreplay", "-q", "-i", &net.plan.ns_if])
        .arg(&pcap);
    run(&mut replay).unwrap();
    let probed = probe.wait_with_output().unwrap();
    let listing = String::from_utf8_lossy(&probed.stdout);
    assert!(
        probed.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&probed.stderr)
    );
    assert!(
        listing.contains(&format!("\n{group}: plain TS, ")),
        "{listing}"
    );
    assert!(listing.contains("PID  256  H.264 video"), "{listing}");
    assert!(listing.contains(" reassembled, 0 incomplete)"), "{listing}");
    assert!(
        listing.contains(&format!(
            "kind = \"pcap\"\ninterface = \"{}\"",
            net.plan.host_if
        )),
        "{listing}"
    );
    daemon.wait_for("stream stalled", 2);
    let summary = daemon.stop();
    drop(net);
    let source = summary
        .lines()
        .find(|l| l.starts_with("pcap on "))
        .unwrap_or_else(|| panic!("no pcap source line: {summary}"));
    assert!(
        source.contains(&format!(
            "({} datagrams reassembled, 0 incomplete)",
            sent[0]
        )),
        "{source}"
    );
    for name in ["frag-pcap", "frag-udp"] {
        let e = entries(&archive, name);
        check_timeline(&e, "video", 0.04);
        let secs = media_seconds(&e);
        assert!((9.0..=10.05).contains(&secs), "{name}: {secs} s");
    }
    assert_eq!(
        entries(&archive, "frag-pcap")
            .iter()
            .map(|e| e.extinf)
            .collect::<Vec<_>>(),
        entries(&archive, "frag-udp")
            .iter()
            .map(|e| e.extinf)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_live_stream_that_cuts_nothing_says_why_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 12 s of a stream whose PMT never comes.
    let ts = clip(d, "a.ts", 12.0);
    let data: Vec<u8> = std::fs::read(&ts)
        .unwrap()
        .chunks(188)
        .filter(|p| u16::from_be_bytes([p[1], p[2]]) & 0x1FFF != 0x1000)
        .flatten()
        .copied()
        .collect();
    let port = free_port();
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n[[streams]]\nname = \"nopmt\"\nsegment_duration = \"1s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {port}\n",
            d.join("archive").display()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "run");
    daemon.wait_for("archiving", 1);
    // Sent in real time: 7 packets a datagram, at most 12 s (bounded by the
    // file).
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let chunks: Vec<&[u8]> = data.chunks(7 * 188).collect();
    let pace = Duration::from_secs(12) / chunks.len() as u32;
    let t0 = Instant::now();
    for (i, chunk) in chunks.iter().enumerate() {
        socket.send_to(chunk, ("127.0.0.1", port)).unwrap();
        if let Some(wait) = (t0 + pace * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    daemon.wait_for("receiving, but no segment yet", 1);
    let log = daemon.log();
    let summary = daemon.stop();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("receiving, but no segment yet"))
        .collect();
    assert_eq!(warned.len(), 1, "once: {log}");
    assert!(
        warned[0].contains("no PMT: the PAT lists program 1 (PMT PID 4096)"),
        "{}",
        warned[0]
    );
    assert!(summary.contains("nopmt: 0 segments"), "{summary}");
}

#[test]
fn check_names_missing_and_down_interfaces_and_missing_privilege() {
    // World-readable, for the unprivileged run below.
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    let config = |iface: &str| {
        let p = dir.path().join(format!("{iface}.toml"));
        std::fs::write(
            &p,
            format!("[[streams]]\nname = \"ch1\"\n[streams.source]\nkind = \"pcap\"\ninterface = \"{iface}\"\ngroup = \"239.1.2.3\"\nport = 5000\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        p
    };
    let check = |cmd: &mut Command, iface: &str| {
        let out = cmd
            .args(["check", "--config", config(iface).to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    let bin = env!("CARGO_BIN_EXE_hlsvault");

    let err = check(&mut Command::new(bin), "hv-nosuch0");
    assert!(
        err.contains("streams[0] (\"ch1\").source.interface: no network interface is named or has the address \"hv-nosuch0\""),
        "{err}"
    );

    // A new veth pair is down until set up.
    let dummy = format!("hvd{:x}", std::process::id() % 0xFFFF);
    let peer = format!("{dummy}p");
    run(Command::new("ip").args(["link", "add", &dummy, "type", "veth", "peer", "name", &peer]))
        .unwrap();
    let err = check(&mut Command::new(bin), &dummy);
    let _ = Command::new("ip").args(["link", "del", &dummy]).status();
    assert!(
        err.contains(&format!(
            "source.interface: network interface {dummy} is down"
        )),
        "{err}"
    );

    let mut unprivileged = Command::new("setpriv");
    unprivileged.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        bin,
    ]);
    let err = check(&mut unprivileged, "lo");
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains("setcap cap_net_raw") && err.contains("kind = \"udp\""),
        "{err}"
    );
}

/// One `[[streams]]` table on loopback.
fn loopback_stream(name: &str, kind: &str, port: u16, segment: u32) -> String {
    format!(
        r#"
[[streams]]
name = "{name}"
segment_duration = "{segment}s"
stall_timeout = "1s"
[streams.source]
kind = "{kind}"
interface = "lo"
group = "127.0.0.1"
port = {port}
"#
    )
}

#[test]
fn config_reload_touches_only_the_streams_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clip = clip(d, "clip.ts", 20.0);
    let archive = d.join("archive");
    let config = d.join("reload.toml");
    // a, c on one udp reader and b, d, e on one pcap reader: a and b go on
    // untouched, c restarts (its segment duration changes), d is removed
    // and e added, while the readers keep running.
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let head = format!(
        "stats_interval = \"1s\"\n[storage]\nroot = \"{}\"\n[serve]\nlisten = \"{listen}\"\n",
        archive.display()
    );
    // The streams the server knows, by /streams and by /metrics.
    let served = || {
        let (status, _, body) = http_get(&format!("http://{listen}/streams"), &[]);
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let names: Vec<String> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        let (_, _, metrics) = http_get(&format!("http://{listen}/metrics"), &[]);
        let metrics = String::from_utf8(metrics).unwrap();
        for n in &names {
            assert!(
                metrics.contains(&format!("stream=\"{n}\"")),
                "{n} in /metrics"
            );
        }
        names
    };
    let v1 = [
        loopback_stream("a", "udp", ports[0], 2),
        loopback_stream("b", "pcap", ports[1], 2),
        loopback_stream("c", "udp", ports[2], 2),
        loopback_stream("d", "pcap", ports[3], 2),
    ];
    let v2 = [
        loopback_stream("a", "udp", ports[0], 2),
        loopback_stream("b", "pcap", ports[1], 2),
        loopback_stream("c", "udp", ports[2], 3),
        loopback_stream("e", "pcap", ports[4], 2),
    ];
    std::fs::write(&config, format!("{head}{}", v1.concat())).unwrap();
    let mut daemon = Daemon::start(env!("CARGO_BIN_EXE_hlsvault"), &config, d, "reload");
    daemon.wait_for("receiving", 1);
    daemon.wait_for("capturing", 1);
    assert_eq!(served(), ["a", "b", "c", "d"]);

    // One ffmpeg sends the clip in real time to all five ports.
    let mut send = timed("ffmpeg");
    send.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&clip);
    for port in &ports {
        send.args([
            "-map",
            "0",
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-flush_packets",
            "0",
        ])
        .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"));
    }
    let started = Instant::now();
    let sender = std::thread::spawn(move || run(&mut send).unwrap());

    // A broken edit (written in place) changes nothing.
    std::thread::sleep(Duration::from_secs(4));
    let broken = format!("{head}{}", v1.concat())
        .replace("segment_duration = \"2s\"", "segment_duration = \"two\"");
    std::fs::write(&config, broken).unwrap();
    daemon.wait_for("config change not applied", 1);
    // The real edit, by rename as editors and deployments do.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    let next = d.join("reload.toml.new");
    std::fs::write(&next, format!("{head}{}", v2.concat())).unwrap();
    std::fs::rename(&next, &config).unwrap();
    daemon.wait_for("config reloaded", 1);
    assert_eq!(served(), ["a", "b", "c", "e"]);
    sender.join().unwrap();
    daemon.wait_for("stream stalled", 4);
    let log = daemon.log();
    let summary = daemon.stop();

    let refused = log
        .lines()
        .find(|l| l.contains("config change not applied"))
        .unwrap();
    assert!(
        refused.contains("reload.toml") && refused.contains("streams[0] (\"a\").segment_duration"),
        "the refusal names the file and the key: {refused}"
    );
    assert_eq!(log.matches("config reloaded").count(), 1, "{log}");
    assert!(log.contains("capture filter changed"), "{log}");
    assert!(log.contains("receiving sockets changed"), "{log}");

    // a and b: one unbroken timeline over the whole clip.
    for name in ["a", "b"] {
        let got = entries(&archive, name);
        check_timeline(&got, "video", 0.04);
        assert!(
            got.iter().all(|e| !e.discontinuity),
            "{name} went on without a break: {got:#?}"
        );
        let media = media_seconds(&got);
        assert!((19.9..=20.05).contains(&media), "{name}: {media} s");
    }
    // c: restarted once, the hour continued after a discontinuity, with
    // the new segment duration from then on.
    let c = entries(&archive, "c");
    check_timeline(&c, "video", 0.04);
    let breaks: Vec<usize> = (0..c.len()).filter(|&i| c[i].discontinuity).collect();
    assert_eq!(breaks.len(), 1, "one break, at the restart: {c:#?}");
    let seqs: Vec<u64> = c.iter().map(sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let after: Vec<f64> = c[breaks[0]..c.len() - 1].iter().map(|e| e.extinf).collect();
    assert!(
        !after.is_empty() && after.iter().all(|&x| (x - 4.0).abs() < 0.05),
        "3 s target, cut at the next 2 s keyframe: {after:?}"
    );
    let media = media_seconds(&c);
    assert!((17.9..=20.05).contains(&media), "c: {media} s");
    // d: removed, its hour and live window ended.
    let d_hours = hour_playlists(&archive.join("d"));
    assert!(d_hours.iter().all(|(_, p)| p.ended), "d's hour ended");
    let d_media: f64 = d_hours
        .iter()
        .flat_map(|(_, p)| &p.entries)
        .map(|e| e.extinf)
        .sum();
    assert!(
        (4.0..=12.0).contains(&d_media),
        "d stopped mid-clip: {d_media} s"
    );
    assert!(std::fs::read_to_string(archive.join("d/live.m3u8"))
        .unwrap()
        .contains("#EXT-X-ENDLIST"));
    // e: added mid-clip, whole from its first keyframe on.
    let e = entries(&archive, "e");
    check_timeline(&e, "video", 0.04);
    assert!(e.iter().all(|x| !x.discontinuity), "{e:#?}");
    let media = media_seconds(&e);
    assert!(
        (6.0..=14.0).contains(&media),
        "e joined mid-clip: {media} s"
    );
    // The summary lists every stream, the replaced and removed ones too.
    for name in ["a", "b", "c", "d", "e"] {
        assert!(
            summary.contains(&format!("\n{name}: ")) || summary.starts_with(&format!("{name}: ")),
            "{summary}"
        );
    }
}
