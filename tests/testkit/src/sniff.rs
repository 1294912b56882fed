//! Live capture of UDP datagrams with libpcap (nanosecond stamps), for
//! checking what a sender puts on the wire: its timing, TTL and TOS.

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// One UDP datagram as captured.
pub struct Sniffed<'a> {
    /// Capture time, ns since the epoch.
    pub at: i128,
    pub ttl: u8,
    pub tos: u8,
    pub dst: SocketAddrV4,
    pub payload: &'a [u8],
}

/// A capture open on `interface` for IPv4 UDP to `port`.
pub struct Sniffer(pcap::Capture<pcap::Active>);

impl Sniffer {
    /// Opens it (before the sender starts, so nothing is missed).
    pub fn open(interface: &str, port: u16) -> Result<Self> {
        let mut cap = pcap::Capture::from_device(interface)?
            .immediate_mode(true)
            .precision(pcap::Precision::Nano)
            .buffer_size(512 << 20)
            .snaplen(2048)
            .open()
            .with_context(|| format!("capturing on {interface}"))?;
        cap.filter(&format!("ip and udp dst port {port}"), true)?;
        // A timeout does not make libpcap return on Linux: poll.
        Ok(Sniffer(cap.setnonblock()?))
    }

    /// Hands each datagram to `each` until none came for `quiet` after
    /// the first, or `longest` has passed.
    pub fn run(mut self, quiet: Duration, longest: Duration, mut each: impl FnMut(Sniffed)) {
        let began = Instant::now();
        let mut last = None::<Instant>;
        while began.elapsed() < longest && last.is_none_or(|l| l.elapsed() < quiet) {
            let Ok(frame) = self.0.next_packet() else {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            };
            last = Some(Instant::now());
            let Some(ip) = frame.data.get(14..) else {
                continue;
            };
            let header = usize::from(ip[0] & 0x0F) * 4;
            let Some(udp) = ip.get(header..header + 8) else {
                continue;
            };
            let dst = SocketAddrV4::new(
                [ip[16], ip[17], ip[18], ip[19]].into(),
                u16::from_be_bytes([udp[2], udp[3]]),
            );
            each(Sniffed {
                at: i128::from(frame.header.ts.tv_sec) * 1_000_000_000
                    + i128::from(frame.header.ts.tv_usec),
                ttl: ip[8],
                tos: ip[1],
                dst,
                payload: &ip[header + 8..],
            });
        }
    }
}
