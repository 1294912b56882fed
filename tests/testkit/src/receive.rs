//! A UDP receiver on loopback for tests of what hlsvault sends: every
//! datagram with when it arrived, in a thread of its own, bounded in time.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A receiver quiet this long after its first datagram has all there is.
pub const QUIET: Duration = Duration::from_secs(3);
/// No receiver listens longer than this.
pub const LONGEST: Duration = Duration::from_secs(120);

/// Datagrams as they arrived.
pub type Received = Vec<(Instant, Vec<u8>)>;

/// The bytes received, in the order they arrived.
pub fn bytes(received: Received) -> Vec<u8> {
    received.into_iter().flat_map(|(_, d)| d).collect()
}

/// Receives on a loopback socket in a thread of its own: what arrived,
/// with when, once it has been quiet for [`QUIET`].
pub fn receiver() -> (u16, std::thread::JoinHandle<Received>) {
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
