//! Live capture with libpcap on one interface, for every stream on it.

use std::os::fd::AsRawFd;

use super::{
    deliver, link_of, netif, wait_readable, CaptureError, End, Endpoint, Event, Flow, Reporting,
    Source, SourceCounters,
};

/// The capture keeps this much of each frame: a TS datagram is at most
/// about 1,400 bytes, and a small snap length keeps the kernel ring slots
/// small (a 64 KiB snap length loses packets in bursts).
const SNAPLEN: i32 = 2048;
/// Frames read between two looks at the clock.
const CLOCK_EVERY: u32 = 64;

/// Captures the datagrams of several endpoints on one interface: one
/// libpcap handle, one BPF filter, one multicast membership per group.
pub struct PcapLiveSource {
    interface: String,
    endpoints: Vec<Endpoint>,
    buffer: usize,
}

impl PcapLiveSource {
    /// A capture on `interface` (a name or an address) of `endpoints`, with
    /// a kernel buffer of `buffer` bytes.
    pub fn new(interface: String, endpoints: Vec<Endpoint>, buffer: usize) -> Self {
        PcapLiveSource {
            interface,
            endpoints,
            buffer,
        }
    }

    /// Finds the interface and opens a capture on it, to learn whether it
    /// exists, is up, and may be captured on; reads nothing.
    pub fn probe(&self) -> Result<(), CaptureError> {
        let iface = netif::find(&self.interface)?;
        self.open(&iface).map(drop)
    }

    /// The BPF program that keeps the endpoints' datagrams only.
    fn filter(&self) -> String {
        let terms: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| {
                let src = e
                    .source
                    .map(|s| format!(" and src host {s}"))
                    .unwrap_or_default();
                format!("(dst host {} and dst port {}{src})", e.group, e.port)
            })
            .collect();
        format!("udp and ({})", terms.join(" or "))
    }

    fn open(&self, iface: &netif::Interface) -> Result<pcap::Capture<pcap::Active>, CaptureError> {
        let fail = |e: pcap::Error| {
            let reason = e.to_string();
            if reason.contains("not permitted") || reason.contains("ermission") {
                CaptureError::Privilege {
                    interface: iface.name.clone(),
                    reason,
                }
            } else {
                CaptureError::Open {
                    path: iface.name.clone(),
                    reason,
                }
            }
        };
        let mut cap = pcap::Capture::from_device(iface.name.as_str())
            .map_err(fail)?
            .immediate_mode(true)
            .buffer_size(self.buffer.min(i32::MAX as usize) as i32)
            .snaplen(SNAPLEN)
            .promisc(false)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(fail)?;
        if !self.endpoints.is_empty() {
            cap.filter(&self.filter(), true).map_err(fail)?;
        }
        // `timeout` does not make libpcap return on Linux: poll the fd.
        cap.setnonblock().map_err(fail)
    }
}

impl Source for PcapLiveSource {
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(End, SourceCounters), CaptureError> {
        let iface = netif::find(&self.interface)?;
        let mut cap = self.open(&iface)?;
        let link = link_of(&cap, &iface.name)?;
        // Joining makes switches (IGMP snooping) and the kernel forward the
        // groups to this interface; the sockets themselves receive nothing.
        let mut memberships = Vec::new();
        for e in &self.endpoints {
            let socket = netif::membership_socket()
                .and_then(|s| netif::join(&s, e.group, e.source, &iface).map(|()| s))
                .map_err(|reason| CaptureError::Socket {
                    what: format!("{} on {} (multicast join)", e.dst(), iface.name),
                    reason,
                })?;
            memberships.push(socket);
        }
        tracing::info!(interface = %iface.name, filter = %self.filter(), "capturing");
        let mut n = SourceCounters::default();
        let mut reporting = Reporting::new();
        let mut fd = libc::pollfd {
            fd: cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            wait_readable(std::slice::from_mut(&mut fd)).map_err(|e| CaptureError::Read {
                interface: iface.name.clone(),
                reason: e.to_string(),
            })?;
            if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(CaptureError::Read {
                    interface: iface.name.clone(),
                    reason: "the interface went away".into(),
                });
            }
            let mut read = 0u32;
            loop {
                match cap.next_packet() {
                    Ok(p) => {
                        if deliver(link, p.header, p.data, &mut n, sink) == Flow::Stop {
                            return Ok((End::Stopped, n));
                        }
                    }
                    Err(pcap::Error::TimeoutExpired) => break,
                    Err(e) => {
                        return Err(CaptureError::Read {
                            interface: iface.name.clone(),
                            reason: e.to_string(),
                        })
                    }
                }
                read += 1;
                if read.is_multiple_of(CLOCK_EVERY) && reporting.tick_due() {
                    break;
                }
            }
            let refresh = |n: &mut SourceCounters, _: &mut dyn FnMut(Event<'_>) -> Flow| {
                if let Ok(s) = cap.stats() {
                    n.kernel_drops = s.dropped as u64;
                    n.interface_drops = s.if_dropped as u64;
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

    #[test]
    fn one_filter_for_every_endpoint() {
        let src = PcapLiveSource::new(
            "lo".into(),
            vec![
                Endpoint {
                    group: "239.1.1.1".parse().unwrap(),
                    port: 5000,
                    source: None,
                },
                Endpoint {
                    group: "239.1.1.2".parse().unwrap(),
                    port: 5002,
                    source: Some("10.0.0.9".parse().unwrap()),
                },
            ],
            1 << 20,
        );
        assert_eq!(
            src.filter(),
            "udp and ((dst host 239.1.1.1 and dst port 5000) or (dst host 239.1.1.2 and dst port 5002 and src host 10.0.0.9))"
        );
    }
}
