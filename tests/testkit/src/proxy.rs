//! Links a test can cut: a TCP proxy between one process and a server
//! (etcd, S3), and a UDP fan-out that hands one sender's datagrams to
//! several receivers, each of which can be cut off on its own. Both live
//! on loopback; cut, a link forwards nothing and refuses nothing, as a
//! partition does (TCP keeps the bytes in its buffers; they flow again
//! once restored, unless the peers gave up meanwhile).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

/// How long a blocked read waits before a link looks at its flags.
const POLL: Duration = Duration::from_millis(50);

/// A TCP proxy on loopback to one server; stopped when dropped.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl TcpProxy {
    /// Proxies `127.0.0.1:PORT` (a new port) to `target`.
    pub fn start(target: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (cut, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let flags = (cut.clone(), stop.clone());
        std::thread::spawn(move || accept(listener, target, flags));
        Ok(TcpProxy { addr, cut, stop })
    }

    /// `http://ADDR`, to hand a client instead of the server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Cuts the link (`true`) or restores it.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Flags = (Arc<AtomicBool>, Arc<AtomicBool>);

/// Accepts clients and links each to `target`. While `target` is down
/// (a server killed), the proxy refuses connections as the server's own
/// port would, until it is back.
fn accept(mut listener: TcpListener, target: SocketAddr, (cut, stop): Flags) {
    let addr = listener.local_addr().expect("a bound listener");
    while !stop.load(Ordering::Relaxed) {
        let Ok((client, _)) = listener.accept() else {
            std::thread::sleep(POLL / 5);
            continue;
        };
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            drop((client, listener));
            while !stop.load(Ordering::Relaxed)
                && TcpStream::connect_timeout(&target, POLL).is_err()
            {
                std::thread::sleep(POLL);
            }
            listener = match TcpListener::bind(addr) {
                Ok(l) if l.set_nonblocking(true).is_ok() => l,
                _ => return,
            };
            continue;
        };
        for (from, to) in [
            (client.try_clone(), server.try_clone()),
            (server.try_clone(), client.try_clone()),
        ] {
            let (Ok(from), Ok(to)) = (from, to) else {
                continue;
            };
            let flags = (cut.clone(), stop.clone());
            std::thread::spawn(move || pump(from, to, flags));
        }
    }
}

/// Copies `from` to `to` while the link is not cut, until either end
/// closes or the proxy stops.
fn pump(mut from: TcpStream, mut to: TcpStream, (cut, stop): Flags) {
    let _ = from.set_nonblocking(false);
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        if cut.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// One sender's datagrams, handed to several receivers on loopback.
pub struct UdpFanout {
    /// Where the sender sends (`127.0.0.1:port`).
    pub port: u16,
    outputs: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
}

impl UdpFanout {
    /// Forwards to each of `ports` on 127.0.0.1, for at most `seconds` and
    /// `max` datagrams.
    pub fn start(ports: &[u16], seconds: u64, max: u64) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(POLL))?;
        let port = socket.local_addr()?.port();
        let outputs: Vec<Arc<AtomicBool>> = ports
            .iter()
            .map(|_| Arc::new(AtomicBool::new(true)))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (to, on, halt) = (ports.to_vec(), outputs.clone(), stop.clone());
        let until = Instant::now() + Duration::from_secs(seconds);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut sent = 0u64;
            while !halt.load(Ordering::Relaxed) && Instant::now() < until && sent < max {
                let Ok(n) = socket.recv(&mut buf) else {
                    continue;
                };
                sent += 1;
                for (port, on) in to.iter().zip(&on) {
                    if on.load(Ordering::Relaxed) {
                        let _ = socket.send_to(&buf[..n], ("127.0.0.1", *port));
                    }
                }
            }
        });
        Ok(UdpFanout {
            port,
            outputs,
            stop,
        })
    }

    /// Cuts receiver `i` off (`true`), or lets it receive again.
    pub fn cut(&self, i: usize, cut: bool) {
        self.outputs[i].store(!cut, Ordering::Relaxed);
    }
}

impl Drop for UdpFanout {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
