//! Plain UDP sockets: no privilege needed. One thread polls the sockets of
//! every stream on an interface and reads them in batches (`recvmmsg`).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

use crate::targets::TargetSockets;
use crate::{
    netif, set_socket_option, wait_readable, CaptureError, Datagram, End, Event, Flow, Reporting,
    Source, SourceCounters, Target, Targets,
};

/// Datagrams read per `recvmmsg` call.
const BATCH: usize = 64;
/// Room for one datagram: jumbo frames fit; anything longer is counted as
/// truncated.
const SLOT: usize = 9216;
/// Control message room per datagram (a timestamp and a drop counter).
const CONTROL_WORDS: usize = 16;

/// Receives several targets with one socket each. When the targets
/// change, sockets are opened or closed; the others stay as they are.
pub struct UdpSource {
    interface: Option<String>,
    targets: Arc<Targets>,
}

impl UdpSource {
    /// Sockets for `targets`, joined on `interface` (a name or an address;
    /// the routing table's choice when absent).
    pub fn new(interface: Option<String>, targets: Arc<Targets>) -> Self {
        UdpSource { interface, targets }
    }

    fn open(t: &Target, iface: Option<&netif::Interface>) -> Result<Socket, CaptureError> {
        let (e, buffer) = (&t.endpoint, t.buffer);
        let what = || match iface {
            Some(i) => format!("{} on {}", e.dst(), i.name),
            None => e.dst().to_string(),
        };
        let fail = |source: std::io::Error| CaptureError::Socket {
            what: what(),
            source,
        };
        let socket = Socket::new(
            Domain::for_address(e.dst()),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(fail)?;
        socket.set_reuse_address(true).map_err(fail)?;
        socket.set_reuse_port(true).map_err(fail)?;
        set_receive_buffer(&socket, buffer);
        let got = socket.recv_buffer_size().unwrap_or(0);
        if got < buffer {
            tracing::warn!(
                socket = %what(),
                asked = buffer,
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
    if set_socket_option(socket.as_raw_fd(), libc::SO_RCVBUFFORCE, &v).is_err() {
        let _ = socket.set_recv_buffer_size(v as usize);
    }
}

fn set_flag(socket: &Socket, option: libc::c_int) -> std::io::Result<()> {
    set_socket_option(socket.as_raw_fd(), option, &(1 as libc::c_int))
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
        let open = |t: &Target| Self::open(t, iface.as_ref());
        let mut sockets = TargetSockets::open_all(self.targets.clone(), open)?;
        tracing::info!(
            interface = iface
                .as_ref()
                .map_or("(routing table)", |i| i.name.as_str()),
            sockets = sockets.sockets().len(),
            "receiving"
        );
        let poll_set = |sockets: &TargetSockets| -> Vec<libc::pollfd> {
            sockets
                .sockets()
                .iter()
                .map(|(_, s)| libc::pollfd {
                    fd: s.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect()
        };
        let mut fds = poll_set(&sockets);
        // Per target id: the kernel's drop counter for its socket.
        let mut drops: HashMap<usize, u64> = HashMap::new();
        let mut batch = MessageBatch::new();
        let mut n = SourceCounters::default();
        let mut reporting = Reporting::new();
        loop {
            wait_readable(&mut fds).map_err(|e| CaptureError::Read {
                interface: self.interface.clone().unwrap_or_default(),
                source: e.into(),
            })?;
            for (fd, (t, _)) in fds.iter().zip(sockets.sockets()) {
                if fd.revents == 0 {
                    continue;
                }
                // Drain what is waiting, a batch at a time, but yield to the
                // other sockets after a few batches.
                for _ in 0..4 {
                    let got = batch.receive(fd.fd).map_err(|e| CaptureError::Read {
                        interface: t.endpoint.dst().to_string(),
                        source: e.into(),
                    })?;
                    for i in 0..got {
                        let (payload, at, dropped, truncated) = batch.get(i);
                        n.records += 1;
                        n.bytes += payload.len() as u64;
                        if let Some(d) = dropped {
                            drops.insert(t.id, d as u64);
                        }
                        if truncated {
                            n.truncated += 1;
                            continue;
                        }
                        let at = at.unwrap_or_else(SystemTime::now);
                        if sink(Event::Datagram(Datagram {
                            at,
                            dst: t.endpoint.dst(),
                            payload,
                            endpoint: Some(t.id),
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
            let retry = reporting.stats_due();
            let refresh = |n: &mut SourceCounters, sink: &mut dyn FnMut(Event<'_>) -> Flow| {
                n.socket_drops = drops.values().sum();
                for (&endpoint, &total) in &drops {
                    sink(Event::SocketDrops { endpoint, total });
                }
            };
            if reporting.send_due(&mut n, sink, refresh) == Flow::Stop {
                return Ok((End::Stopped, n));
            }
            // The reader changed the targets (a reload): open and close
            // only the sockets that changed.
            if sockets.sync(retry, open) {
                drops.retain(|id, _| sockets.wanted().iter().any(|t| t.id == *id));
                fds = poll_set(&sockets);
                tracing::info!(sockets = fds.len(), "receiving sockets changed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_target_changes_without_a_gap() {
        crate::targets::tests::retarget_while_receiving(|targets| {
            Box::new(UdpSource::new(Some("lo".into()), targets))
        });
    }
}
