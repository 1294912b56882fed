//! Test support for hlsvault: real streams made by ffmpeg, wrapped into pcap
//! captures the way a network tap would record them, and ffprobe read-outs.

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

pub mod archive;
pub mod cluster;
pub mod daemon;
pub mod encoders;
pub mod etcd;
pub mod garage;
pub mod kill_loop;
pub mod net;
pub mod pcr_timing;
pub mod proxy;
pub mod receive;
pub mod sniff;

/// Video codec of a generated stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    /// H.264 (libx264).
    H264,
    /// HEVC (libx265).
    Hevc,
    /// No video: an audio-only stream.
    None,
}

/// A stream for ffmpeg to make.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Seconds of media.
    pub seconds: f64,
    /// Video codec.
    pub video: Video,
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval in frames.
    pub gop: u32,
    /// `-output_ts_offset` in seconds (to start near the PTS wrap).
    pub ts_offset: Option<f64>,
    /// A constant multiplex rate in bits/s (`-muxrate`): padded with null
    /// packets (PID 8191).
    pub muxrate: Option<u32>,
}

impl Default for StreamSpec {
    fn default() -> Self {
        StreamSpec {
            seconds: 20.0,
            video: Video::H264,
            fps: 25,
            gop: 50,
            ts_offset: None,
            muxrate: None,
        }
    }
}

/// Makes an MPEG-TS file with ffmpeg (test pattern video, sine audio).
pub fn make_ts(out: &Path, spec: &StreamSpec) -> Result<()> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    let secs = format!("{}", spec.seconds);
    if spec.video != Video::None {
        cmd.args(["-f", "lavfi", "-i"]).arg(format!(
            "testsrc2=size=320x240:rate={}:duration={secs}",
            spec.fps
        ));
    }
    cmd.args(["-f", "lavfi", "-i"]).arg(format!(
        "sine=frequency=440:sample_rate=48000:duration={secs}"
    ));
    let gop = spec.gop.to_string();
    match spec.video {
        Video::H264 => {
            cmd.args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-bf",
                "2",
            ]);
            cmd.args([
                "-g",
                &gop,
                "-keyint_min",
                &gop,
                "-sc_threshold",
                "0",
                "-b:v",
                "400k",
            ]);
        }
        Video::Hevc => {
            cmd.args([
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ]);
            cmd.args([
                "-x265-params",
                &format!("keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"),
            ]);
        }
        Video::None => {}
    }
    cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    if let Some(off) = spec.ts_offset {
        cmd.args(["-output_ts_offset", &off.to_string()]);
    }
    if let Some(rate) = spec.muxrate {
        cmd.args(["-muxrate", &rate.to_string()]);
    }
    cmd.args(["-f", "mpegts"]).arg(out);
    run(&mut cmd)
}

/// ffmpeg sending `clip` in real time to `127.0.0.1:port` (7 packets a
/// datagram), bounded by `timeout` to `seconds`.
pub fn live_sender(clip: &Path, port: u16, seconds: u64) -> Command {
    let mut send = Command::new("timeout");
    send.arg(seconds.to_string())
        .args(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(clip)
        .args(["-c", "copy", "-f", "mpegts", "-flush_packets", "0"])
        .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"));
    send
}

/// Runs a command, failing with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Runs a command to completion, showing its output in the test's log
/// (printed when the test fails), and returns it.
pub fn output_shown(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The group and port the tests' single-stream captures are sent to.
pub const DST: SocketAddrV4 = SocketAddrV4::new(std::net::Ipv4Addr::new(239, 10, 0, 1), 5000);

/// Archives 30 s of H.264 + AAC crossing 10:00 UTC (2 s GOPs, 4 s
/// segments) whose network loses datagrams about 17 s in (a
/// discontinuity), made in `d`, with `bin`; returns the config path and
/// the base URL of `[serve]`.
pub fn archive_across_the_hour(bin: &str, d: &Path) -> (String, String) {
    let ts = d.join("in.ts");
    make_ts(
        &ts,
        &StreamSpec {
            seconds: 30.0,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    archive_capture(bin, d, &ts, Some(17.0 / 30.0), "")
}

/// Archives `ts` as stream `ch1` with `bin` (`hlsvault run`, a
/// pcap-file source): captured from 09:59:45 UTC 2026-11-21 on, 4 s
/// segments, losing 40 datagrams at `lose` of the way through (a
/// discontinuity); `stream_keys` are more TOML lines for the stream.
/// Returns the config's path and the base URL of its `[serve]`.
pub fn archive_capture(
    bin: &str,
    d: &Path,
    ts: &Path,
    lose: Option<f64>,
    stream_keys: &str,
) -> (String, String) {
    let pcap = d.join("in.pcap");
    let start = humantime::parse_rfc3339("2026-11-21T09:59:45Z").unwrap();
    let mut wrap = Wrap::new(ts, DST);
    if let Some(share) = lose {
        let datagrams = std::fs::metadata(ts).unwrap().len() / (7 * 188);
        let lost = (datagrams as f64 * share) as u64;
        wrap.lose.push(lost..lost + 40);
    }
    write_pcap(&pcap, start, &[wrap], false).unwrap();
    let port = free_tcp_port();
    let config = d.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[storage]\nroot = \"{}\"\n[serve]\nlisten = \"127.0.0.1:{port}\"\nexport_max = \"3h\"\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"4s\"\n{stream_keys}\n[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.10.0.1\"\nport = 5000\n",
            d.join("state").display(),
            d.join("archive").display(),
            pcap.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_string();
    let run = output_shown(Command::new(bin).args(["run", "--config", &config]));
    assert!(run.status.success());
    (config, format!("http://127.0.0.1:{port}"))
}

/// Counts continuity errors (as a receiver sees them) and the PCR packets
/// that carry the discontinuity indicator.
pub fn continuity(ts: &[u8]) -> (u64, usize) {
    use hlsvault_ts::{packets, Analyzer, Header, PID_NULL};
    let mut analyzer = Analyzer::new();
    let mut marked = 0;
    for p in packets(ts) {
        let h = Header::parse(p);
        if h.pid != PID_NULL && h.has_af && p[4] > 0 && p[5] & 0x90 == 0x90 {
            marked += 1;
        }
        analyzer.inspect(p);
    }
    (analyzer.counters().cc_errors, marked)
}

/// A capture of `seconds` of H.264 + AAC (the default [`StreamSpec`]) sent
/// to [`DST`] from `start`: `dir/NAME.ts` made by ffmpeg, wrapped into
/// `dir/NAME.pcap`, whose path is returned.
pub fn capture(dir: &Path, name: &str, seconds: f64, start: SystemTime) -> Result<PathBuf> {
    let ts = dir.join(format!("{name}.ts"));
    make_ts(
        &ts,
        &StreamSpec {
            seconds,
            ..StreamSpec::default()
        },
    )?;
    let pcap = dir.join(format!("{name}.pcap"));
    write_pcap(&pcap, start, &[Wrap::new(&ts, DST)], false)?;
    Ok(pcap)
}

/// TS packets of PID `pid` in `data` (whole 188-byte packets).
pub fn count_pid(data: &[u8], pid: u16) -> usize {
    data.chunks_exact(188)
        .filter(|p| p[0] == 0x47 && (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == pid)
        .count()
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

/// A TCP port on loopback that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `bin ARGS` (an hlsvault that serves) and waits until its server
/// at `base` answers `/healthz`.
pub fn started_server(bin: &str, args: &[&str], base: &str) -> KillOnDrop {
    let child = KillOnDrop(
        Command::new(bin)
            .args(args)
            .spawn()
            .expect("the server starts"),
    );
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while http_get(&format!("{base}/healthz"), &[]).0 != 200 {
        assert!(
            std::time::Instant::now() < until,
            "the server did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a TS file is sent onto the (recorded) network.
#[derive(Debug, Clone)]
pub struct Wrap {
    /// The TS file.
    pub ts: PathBuf,
    /// Destination group and port.
    pub dst: SocketAddrV4,
    /// Wrap each datagram in RTP (payload type 33) with this many CSRCs.
    pub rtp: Option<u8>,
    /// Datagrams (by index) that the network loses.
    pub lose: Vec<std::ops::Range<u64>>,
    /// Clear the adaptation field random access indicator (streams that
    /// never set it).
    pub clear_rai: bool,
    /// Datagrams (by index) that the network delivers after the next one.
    pub swap: Vec<u64>,
    /// How each 188-byte packet goes on the wire.
    pub packets: PacketFormat,
    /// TS packets per datagram (7 fit a 1500-byte MTU).
    pub per_datagram: usize,
    /// Fragment IP packets larger than this MTU (as a sender does that
    /// sends, say, 21 packets a datagram over Ethernet).
    pub mtu: Option<usize>,
    /// Tag frames with this 802.1Q VLAN id.
    pub vlan: Option<u16>,
}

/// How a sender puts TS packets on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PacketFormat {
    /// 188 bytes.
    #[default]
    Ts,
    /// 204 bytes: 16 bytes of Reed-Solomon parity after each packet (filled
    /// with a pattern; receivers that do not correct skip it).
    ReedSolomon,
    /// 192 bytes: a 4-byte arrival timestamp before each packet (M2TS).
    M2ts,
}

impl Wrap {
    /// Plain TS to `dst`.
    pub fn new(ts: impl Into<PathBuf>, dst: SocketAddrV4) -> Self {
        Wrap {
            ts: ts.into(),
            dst,
            rtp: None,
            lose: vec![],
            clear_rai: false,
            swap: vec![],
            packets: PacketFormat::Ts,
            per_datagram: 7,
            mtu: None,
            vlan: None,
        }
    }
}

/// Yields the datagrams of one wrapped TS file with their send times, paced
/// by the stream's own PCR (as an encoder sends them).
struct Sender {
    wrap: Wrap,
    reader: BufReader<File>,
    index: u64,
    first_pcr: Option<u64>,
    /// The newest PCR, unwrapped.
    last_pcr: u64,
    /// 33-bit wraps of the PCR so far.
    pcr_wraps: u64,
    seq: u16,
    /// A datagram held back to be sent after the next one.
    held: Option<(u64, Vec<u8>)>,
}

impl Sender {
    fn new(wrap: Wrap) -> Result<Self> {
        let reader = BufReader::with_capacity(
            1 << 20,
            File::open(&wrap.ts).with_context(|| format!("{:?}", wrap.ts))?,
        );
        Ok(Sender {
            wrap,
            reader,
            index: 0,
            first_pcr: None,
            last_pcr: 0,
            pcr_wraps: 0,
            seq: 0,
            held: None,
        })
    }

    /// The next datagram: (offset from the start in ns, UDP payload), or
    /// None at the end. Lost datagrams are skipped (their index still
    /// counts); swapped ones come right after the next one.
    fn next(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        if let Some(held) = self.held.take() {
            return Ok(Some(held));
        }
        let index = self.index;
        let Some(first) = self.next_in_order()? else {
            return Ok(None);
        };
        if self.wrap.swap.contains(&index) {
            if let Some(second) = self.next_in_order()? {
                self.held = Some((second.0, first.1));
                return Ok(Some((first.0, second.1)));
            }
        }
        Ok(Some(first))
    }

    fn last_at(&self) -> u64 {
        self.last_pcr.saturating_sub(self.first_pcr.unwrap_or(0)) * 1000 / 27
    }

    fn next_in_order(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        loop {
            let mut ts = vec![0u8; self.wrap.per_datagram * 188];
            let mut n = 0;
            while n < ts.len() {
                match self.reader.read(&mut ts[n..])? {
                    0 => break,
                    k => n += k,
                }
            }
            ts.truncate(n - n % 188);
            if ts.is_empty() {
                return Ok(None);
            }
            for p in ts.as_chunks_mut::<188>().0 {
                if p[3] & 0x20 != 0 && p[4] > 0 {
                    if self.wrap.clear_rai {
                        p[5] &= !0x40;
                    }
                    if p[5] & 0x10 != 0 && p[4] >= 7 {
                        // Unwrapped across the 33-bit wrap (every 26.5 h).
                        const WRAP: u64 = (1 << 33) * 300;
                        let read = hlsvault_ts::clock::read_pcr(hlsvault_ts::clock::pcr_field(p));
                        let mut pcr = read + self.pcr_wraps * WRAP;
                        if pcr + WRAP / 2 < self.last_pcr {
                            self.pcr_wraps += 1;
                            pcr += WRAP;
                        }
                        self.first_pcr.get_or_insert(pcr);
                        self.last_pcr = pcr;
                    }
                }
            }
            let at = self.last_at();
            let index = self.index;
            self.index += 1;
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            if self.wrap.lose.iter().any(|r| r.contains(&index)) {
                continue;
            }
            let ts = match self.wrap.packets {
                PacketFormat::Ts => ts,
                PacketFormat::ReedSolomon => ts
                    .chunks(188)
                    .flat_map(|p| p.iter().copied().chain([0xA5; 16]))
                    .collect(),
                PacketFormat::M2ts => ts
                    .chunks(188)
                    .flat_map(|p| {
                        // copy_permission_indicator 0, then a 30-bit clock.
                        let stamp = (at / 37) as u32 & 0x3FFF_FFFF;
                        stamp.to_be_bytes().into_iter().chain(p.iter().copied())
                    })
                    .collect(),
            };
            let payload = match self.wrap.rtp {
                None => ts,
                Some(csrc) => {
                    let mut p = vec![0x80 | csrc, 33];
                    p.extend_from_slice(&seq.to_be_bytes());
                    p.extend_from_slice(&((at / 11_111) as u32).to_be_bytes());
                    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
                    for c in 0..csrc {
                        p.extend_from_slice(&[0, 0, 0, c]);
                    }
                    p.extend_from_slice(&ts);
                    p
                }
            };
            return Ok(Some((at, payload)));
        }
    }
}

/// An Ethernet/IPv4/UDP frame carrying `payload` to `dst`.
pub fn udp_frame(dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let ip = dst.ip().octets();
    let mut f = vec![
        0x01,
        0x00,
        0x5E,
        ip[1] & 0x7F,
        ip[2],
        ip[3],
        0x02,
        0,
        0,
        0,
        0,
        1,
        0x08,
        0x00,
    ];
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        16,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f.extend_from_slice(&ip);
    // The IP header checksum: a receiving kernel drops a frame without it
    // (a capture does not care).
    set_ip_checksum(&mut f[14..34]);
    let ulen = 8 + payload.len();
    f.extend_from_slice(&[0x9C, 0x40]);
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&[(ulen >> 8) as u8, ulen as u8, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A pcap writer with nanosecond timestamps.
pub struct PcapWriter {
    save: pcap::Savefile,
}

impl PcapWriter {
    /// Creates `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let dead =
            pcap::Capture::dead_with_precision(pcap::Linktype::ETHERNET, pcap::Precision::Nano)?;
        Ok(PcapWriter {
            save: dead.savefile(path)?,
        })
    }

    /// Writes one frame captured at `at`.
    pub fn write(&mut self, at: SystemTime, frame: &[u8]) {
        self.write_cut(at, frame, frame.len());
    }

    /// Writes the first `caplen` bytes of a frame captured at `at`, as a
    /// capture with that snap length does.
    pub fn write_cut(&mut self, at: SystemTime, frame: &[u8], caplen: usize) {
        let d = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970");
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: d.as_secs() as libc::time_t,
                tv_usec: d.subsec_nanos() as libc::suseconds_t,
            },
            caplen: caplen.min(frame.len()) as u32,
            len: frame.len() as u32,
        };
        self.save.write(&pcap::Packet::new(
            &header,
            &frame[..caplen.min(frame.len())],
        ));
    }

    /// Flushes to disk.
    pub fn finish(mut self) -> Result<()> {
        self.save.flush()?;
        Ok(())
    }
}

/// Writes the IPv4 header checksum into `header` (20 bytes).
fn set_ip_checksum(header: &mut [u8]) {
    header[10..12].fill(0);
    let sum = header
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum::<u32>();
    let sum = (sum & 0xFFFF) + (sum >> 16);
    let sum = !((sum & 0xFFFF) + (sum >> 16)) as u16;
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

/// Splits an Ethernet/IPv4 frame from [`udp_frame`] into IP fragments of at
/// most `mtu` bytes, with identification `id` (one frame when it fits).
pub fn ipv4_fragments(frame: &[u8], mtu: usize, id: u16) -> Vec<Vec<u8>> {
    if frame.len() - 14 <= mtu {
        return vec![frame.to_vec()];
    }
    let data = &frame[34..];
    let step = (mtu - 20) / 8 * 8;
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(step).enumerate() {
        let mut f = frame[..34].to_vec();
        let total = 20 + chunk.len();
        f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
        f[18..20].copy_from_slice(&id.to_be_bytes());
        let more = (i + 1) * step < data.len();
        let flags = ((i * step / 8) as u16) | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&flags.to_be_bytes());
        set_ip_checksum(&mut f[14..34]);
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out
}

/// Inserts an 802.1Q tag with VLAN `id` into an Ethernet frame.
pub fn vlan_tagged(frame: &mut Vec<u8>, id: u16) {
    let tci = (id & 0x0FFF).to_be_bytes();
    frame.splice(12..12, [0x81, 0x00, tci[0], tci[1]]);
}

/// Writes a pcap of several TS files sent at once, starting at `start`,
/// interleaved by send time. With `noise`, datagrams to another port and
/// non-TS datagrams to each stream's port are mixed in. Returns how many
/// datagrams each stream sent.
pub fn write_pcap(out: &Path, start: SystemTime, wraps: &[Wrap], noise: bool) -> Result<Vec<u64>> {
    let mut w = PcapWriter::create(out)?;
    let mut senders: Vec<Sender> = wraps
        .iter()
        .cloned()
        .map(Sender::new)
        .collect::<Result<_>>()?;
    let mut heads: Vec<Option<(u64, Vec<u8>)>> = senders
        .iter_mut()
        .map(|s| s.next())
        .collect::<Result<_>>()?;
    let mut sent = vec![0u64; wraps.len()];
    let mut k = 0u64;
    while let Some(i) = (0..heads.len())
        .filter(|&i| heads[i].is_some())
        .min_by_key(|&i| heads[i].as_ref().map(|h| h.0))
    {
        let (at, payload) = heads[i].take().expect("chosen head");
        let when = start + Duration::from_nanos(at);
        let frame = udp_frame(wraps[i].dst, &payload);
        let frames = match wraps[i].mtu {
            Some(mtu) => ipv4_fragments(&frame, mtu, sent[i] as u16),
            None => vec![frame],
        };
        for mut f in frames {
            if let Some(id) = wraps[i].vlan {
                vlan_tagged(&mut f, id);
            }
            w.write(when, &f);
        }
        sent[i] += 1;
        k += 1;
        if noise && k.is_multiple_of(97) {
            let other = SocketAddrV4::new(*wraps[i].dst.ip(), wraps[i].dst.port() + 1);
            w.write(when, &udp_frame(other, &payload));
            w.write(
                when,
                &udp_frame(
                    wraps[i].dst,
                    b"not a transport stream, just noise on the port",
                ),
            );
        }
        heads[i] = senders[i].next()?;
    }
    w.finish()?;
    Ok(sent)
}

/// One packet as ffprobe reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbePacket {
    /// "video" or "audio".
    pub codec_type: String,
    /// PTS in seconds.
    pub pts_time: Option<f64>,
    /// Keyframe flag.
    pub key: bool,
}

/// The packets of a media file (or URL), in file order.
pub fn probe_packets(input: &str) -> Result<Vec<ProbePacket>> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts_time,flags",
            "-of",
            "json",
            input,
        ])
        .output()?;
    if !out.status.success() {
        bail!("ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["packets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| ProbePacket {
                    codec_type: p["codec_type"].as_str().unwrap_or_default().to_string(),
                    pts_time: p["pts_time"].as_str().and_then(|s| s.parse().ok()),
                    key: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The duration ffprobe gives a media file (or URL, such as a playlist), in
/// seconds.
pub fn probe_duration(input: &str) -> Result<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            input,
        ])
        .output()?;
    if !out.status.success() {
        bail!("ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("ffprobe {input} gave no duration: {text}"))
}

/// Decodes a file fully with ffmpeg and returns what it reported as errors.
pub fn decode_errors(input: &str) -> Result<String> {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            input,
            "-f",
            "null",
            "-",
        ])
        .output()?;
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\nffmpeg exited with {}", out.status));
    }
    Ok(text)
}

/// (status, lowercased headers, body) of a GET with curl, with extra curl
/// arguments.
pub fn http_get(url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
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

/// How the browser plays a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Player {
    /// An HLS playlist, with hls.js.
    HlsJs,
    /// A file, as a plain `<video src>`.
    Video,
}

/// Plays `url` in Debian's Chromium (tests/browser/play.mjs) and returns
/// what the page saw: ended, fatal, duration, currentTime, frames, and
/// the media time of the first picture shown (`firstFrame`).
pub fn play_in_browser(url: &str, player: Player) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../browser/play.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(url);
    if player == Player::Video {
        cmd.arg("--plain");
    }
    let out = output_shown(&mut cmd);
    assert!(out.status.success(), "the browser run failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Rewrites a capture (pcap, Ethernet) as pcapng: a section header, one
/// Ethernet interface with nanosecond timestamps, an enhanced packet block
/// per record (as Wireshark and dumpcap write it).
pub fn to_pcapng(pcap_in: &Path, dest: &Path) -> Result<()> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    // Section header: byte-order magic, version 1.0, unknown section length.
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0A0D_0D0A, &shb);
    // Interface: Ethernet, snaplen 0; option if_tsresol = 9 (ns), end.
    let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    let mut cap = pcap::Capture::from_file_with_precision(pcap_in, pcap::Precision::Nano)?;
    while let Ok(p) = cap.next_packet() {
        let ns = p.header.ts.tv_sec as u64 * 1_000_000_000 + p.header.ts.tv_usec as u64;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ns >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ns as u32).to_le_bytes());
        epb.extend_from_slice(&p.header.caplen.to_le_bytes());
        epb.extend_from_slice(&p.header.len.to_le_bytes());
        epb.extend_from_slice(p.data);
        epb.resize(20 + p.data.len().div_ceil(4) * 4, 0);
        block(&mut out, 6, &epb);
    }
    std::fs::write(dest, out)?;
    Ok(())
}
