//! Plain UDP sockets: no privilege needed. One thread polls the sockets of
//! every stream on an interface and reads them in batches (`recvmmsg`).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

use super::{
    netif, wait_readable, CaptureError, Datagram, End, Endpoint, Event, Flow, Reporting, Source,
    SourceCounters,
};

/// Datagrams read per `recvmmsg` call.
const BATCH: usize = 64;
/// Room for one datagram: jumbo frames fit; anything longer is counted as
/// truncated.
const SLOT: usize = 9216;
/// Control message room per datagram (a timestamp and a drop counter).
const CONTROL_WORDS: usize = 16;

/// Receives several endpoints with one socket each.
pub struct UdpSource {
    interface: Option<String>,
    endpoints: Vec<Endpoint>,
    buffer: usize,
}

/// One open socket and what it has reported.
struct Receiver {
    socket: Socket,
    dst: SocketAddr,
    /// Its index in the endpoints.
    endpoint: usize,
    drops: u64,
}

impl UdpSource {
    /// Sockets for `endpoints`, joined on `interface` (a name or an address;
    /// the routing table's choice when absent), each with a receive buffer
    /// of `buffer` bytes.
    pub fn new(interface: Option<String>, endpoints: Vec<Endpoint>, buffer: usize) -> Self {
        UdpSource {
            interface,
            endpoints,
            buffer,
        }
    }

    fn open(&self, e: &Endpoint, iface: Option<&netif::Interface>) -> Result<Socket, CaptureError> {
        let what = || match iface {
            Some(i) => format!("{} on {}", e.dst(), i.name),
            None => e.dst().to_string(),
        };
        let fail = |reason: std::io::Error| CaptureError::Socket {
            what: what(),
            reason,
        };
        let socket = Socket::new(
            Domain::for_address(e.dst()),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(fail)?;
        socket.set_reuse_address(true).map_err(fail)?;
        socket.set_reuse_port(true).map_err(fail)?;
        set_receive_buffer(&socket, self.buffer);
        let got = socket.recv_buffer_size().unwrap_or(0);
        if got < self.buffer {
            tracing::warn!(
                socket = %what(),
                asked = self.buffer,
                got,
                "the kernel capped the socket buffer (raise net.core.rmem_max, or run with CAP_NET_ADMIN)"
            );
        }
        if e.group.is_multicast() {
            // Only the groups this socket joined, not every group any
            // socket on the host joined on this port.
            socket.set_multicast_all_v4(false).map_err(fail)?;
            if let Some(i) = iface {
                socket.bind_device(Some(i.name.as_bytes())).map_err(fail)?;
            }
        }
        // Binding to the group (not the wildcard) keeps other groups that
        // share the port out of this socket.
        socket.bind(&e.dst().into()).map_err(fail)?;
        if e.group.is_multicast() {
            let any = netif::Interface {
                name: "default".into(),
                index: 0,
                addr: None,
                up: true,
            };
            netif::join(&socket, e.group, e.source, iface.unwrap_or(&any)).map_err(fail)?;
        }
        for (option, what) in [
            (libc::SO_TIMESTAMPNS, "SO_TIMESTAMPNS"),
            (libc::SO_RXQ_OVFL, "SO_RXQ_OVFL"),
        ] {
            if let Err(e) = set_flag(&socket, option) {
                tracing::warn!(option = what, error = %e, "socket option not available");
            }
        }
        socket.set_nonblocking(true).map_err(fail)?;
        Ok(socket)
    }
}

/// Sets SO_RCVBUF, forcing past `rmem_max` when privileged.
fn set_receive_buffer(socket: &Socket, bytes: usize) {
    let v = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    // SAFETY: a valid socket and an int option.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        let _ = socket.set_recv_buffer_size(v as usize);
    }
}

fn set_flag(socket: &Socket, option: libc::c_int) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and an int option.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Buffers for one `recvmmsg` call. The headers point into the buffers, so
/// the whole is boxed and never moved.
struct MessageBatch {
    data: Vec<u8>,
    control: Vec<[u64; CONTROL_WORDS]>,
    iov: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

impl MessageBatch {
    fn new() -> Box<Self> {
        let mut b = Box::new(MessageBatch {
            data: vec![0; BATCH * SLOT],
            control: vec![[0; CONTROL_WORDS]; BATCH],
            iov: Vec::with_capacity(BATCH),
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            headers: vec![unsafe { std::mem::zeroed() }; BATCH],
        });
        for i in 0..BATCH {
            let base = b.data[i * SLOT..].as_mut_ptr();
            b.iov.push(libc::iovec {
                iov_base: base.cast(),
                iov_len: SLOT,
            });
        }
        for i in 0..BATCH {
            let iov = &mut b.iov[i] as *mut libc::iovec;
            let control = b.control[i].as_mut_ptr();
            let h = &mut b.headers[i].msg_hdr;
            h.msg_iov = iov;
            h.msg_iovlen = 1;
            h.msg_control = control.cast();
        }
        b
    }

    /// Reads up to [`BATCH`] datagrams from `fd`: how many (0 when nothing
    /// is waiting).
    fn receive(&mut self, fd: libc::c_int) -> std::io::Result<usize> {
        for h in &mut self.headers {
            h.msg_hdr.msg_controllen = CONTROL_WORDS * 8;
            h.msg_hdr.msg_flags = 0;
        }
        // SAFETY: the headers point into buffers owned by self, sized as
        // declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last call: payload, receive time, kernel drop
    /// counter, truncated.
    fn get(&self, i: usize) -> (&[u8], Option<SystemTime>, Option<u32>, bool) {
        let m = &self.headers[i];
        let len = (m.msg_len as usize).min(SLOT);
        let truncated = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let (mut at, mut drops) = (None, None);
        // SAFETY: the control buffer was filled by the kernel up to
        // msg_controllen; the CMSG macros stay inside it.
        unsafe {
            let h = &m.msg_hdr;
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                        let ts = std::ptr::read_unaligned(data as *const libc::timespec);
                        at = Some(
                            SystemTime::UNIX_EPOCH
                                + Duration::new(
                                    ts.tv_sec.max(0) as u64,
                                    ts.tv_nsec.clamp(0, 999_999_999) as u32,
                                ),
                        );
                    }
                    (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                        drops = Some(std::ptr::read_unaligned(data as *const u32));
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        (&self.data[i * SLOT..i * SLOT + len], at, drops, truncated)
    }
}

impl Source for UdpSource {
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(End, SourceCounters), CaptureError> {
        let iface = self.interface.as_deref().map(netif::find).transpose()?;
        let mut receivers = Vec::new();
        for (i, e) in self.endpoints.iter().enumerate() {
            receivers.push(Receiver {
                socket: self.open(e, iface.as_ref())?,
                dst: e.dst(),
                endpoint: i,
                drops: 0,
            });
        }
        tracing::info!(
            interface = iface
                .as_ref()
                .map_or("(routing table)", |i| i.name.as_str()),
            sockets = receivers.len(),
            "receiving"
        );
        let mut fds: Vec<libc::pollfd> = receivers
            .iter()
            .map(|r| libc::pollfd {
                fd: r.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut batch = MessageBatch::new();
        let mut n = SourceCounters::default();
        let mut reporting = Reporting::new();
        loop {
            wait_readable(&mut fds).map_err(|e| CaptureError::Read {
                interface: self.interface.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
            for (fd, r) in fds.iter().zip(&mut receivers) {
                if fd.revents == 0 {
                    continue;
                }
                // Drain what is waiting, a batch at a time, but yield to the
                // other sockets after a few batches.
                for _ in 0..4 {
                    let got = batch.receive(fd.fd).map_err(|e| CaptureError::Read {
                        interface: r.dst.to_string(),
                        reason: e.to_string(),
                    })?;
                    for i in 0..got {
                        let (payload, at, drops, truncated) = batch.get(i);
                        n.records += 1;
                        n.bytes += payload.len() as u64;
                        if let Some(d) = drops {
                            r.drops = d as u64;
                        }
                        if truncated {
                            n.truncated += 1;
                            continue;
                        }
                        let at = at.unwrap_or_else(SystemTime::now);
                        if sink(Event::Datagram(Datagram {
                            at,
                            dst: r.dst,
                            payload,
                            endpoint: Some(r.endpoint),
                        })) == Flow::Stop
                        {
                            return Ok((End::Stopped, n));
                        }
                    }
                    if got < BATCH {
                        break;
                    }
                }
            }
            let refresh = |n: &mut SourceCounters, sink: &mut dyn FnMut(Event<'_>) -> Flow| {
                n.socket_drops = receivers.iter().map(|r| r.drops).sum();
                for r in &receivers {
                    sink(Event::SocketDrops {
                        endpoint: r.endpoint,
                        total: r.drops,
                    });
                }
            };
            if reporting.send_due(&mut n, sink, refresh) == Flow::Stop {
                return Ok((End::Stopped, n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn receives_timestamped_datagrams_on_loopback() {
        let port = {
            let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let endpoint = Endpoint {
            group: "127.0.0.1".parse().unwrap(),
            port,
            source: None,
        };
        let mut src = UdpSource::new(Some("lo".into()), vec![endpoint], 1 << 20);
        let sender = std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            for i in 0..200u32 {
                let mut p = vec![0x47u8; 1316];
                p[1..5].copy_from_slice(&i.to_be_bytes());
                s.send_to(&p, ("127.0.0.1", port)).unwrap();
            }
        });
        let before = SystemTime::now();
        let (mut got, mut ticks) = (Vec::new(), 0);
        let (end, counters) = src
            .run(&mut |e| {
                match e {
                    Event::Datagram(d) => {
                        assert_eq!((d.dst, d.endpoint), (endpoint.dst(), Some(0)));
                        assert!(d.at >= before - Duration::from_secs(1));
                        got.push(u32::from_be_bytes(d.payload[1..5].try_into().unwrap()));
                    }
                    Event::Tick => ticks += 1,
                    _ => {}
                }
                if got.len() == 200 || ticks > 100 {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            })
            .unwrap();
        sender.join().unwrap();
        assert_eq!(end, End::Stopped);
        assert_eq!(got, (0..200).collect::<Vec<_>>());
        assert_eq!(counters.records, 200);
    }
}
