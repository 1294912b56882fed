//! Live capture with libpcap on one interface, for every stream on it.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::targets::TargetSockets;
use crate::{
    deliver, link_of, netif, set_socket_option, wait_readable, CaptureError, End, Event, Flow,
    Reassembler, Reporting, Source, SourceCounters, Target, Targets,
};

/// The capture keeps this much of each frame: a TS datagram is at most
/// about 1,400 bytes, and a small snap length keeps the kernel ring slots
/// small (a 64 KiB snap length loses packets in bursts).
const SNAPLEN: i32 = 2048;
/// Frames read between two looks at the clock.
const CLOCK_EVERY: u32 = 64;

/// Captures the datagrams of several targets on one interface: one
/// libpcap handle, one BPF filter, one multicast membership per target.
/// When the targets change, the filter is replaced and memberships joined
/// or left on the open handle.
pub struct PcapLiveSource {
    interface: String,
    targets: Arc<Targets>,
}

impl PcapLiveSource {
    /// A capture on `interface` (a name or an address) of `targets`. The
    /// kernel buffer is the largest any target asks for when it opens.
    pub fn new(interface: String, targets: Arc<Targets>) -> Self {
        PcapLiveSource { interface, targets }
    }

    /// Finds the interface and opens a capture on it, to learn whether it
    /// exists, is up, and may be captured on; reads nothing.
    pub fn probe(&self) -> Result<(), CaptureError> {
        let iface = netif::find(&self.interface)?;
        self.open(&iface).map(drop)
    }

    /// The BPF program that keeps the targets' datagrams only.
    fn filter(targets: &[Target]) -> String {
        let terms: Vec<String> = targets
            .iter()
            .map(|t| {
                let e = t.endpoint;
                let src = e
                    .source
                    .map(|s| format!(" and src host {s}"))
                    .unwrap_or_default();
                // Fragments after the first carry no port: they are
                // reassembled with the first one.
                format!(
                    "(dst host {} and (dst port {} or ip[6:2] & 0x1fff != 0){src})",
                    e.group, e.port
                )
            })
            .collect();
        format!("udp and ({})", terms.join(" or "))
    }

    fn open(&self, iface: &netif::Interface) -> Result<pcap::Capture<pcap::Active>, CaptureError> {
        let fail = |source: pcap::Error| {
            let said = source.to_string();
            if said.contains("not permitted") || said.contains("ermission") {
                CaptureError::Privilege {
                    interface: iface.name.clone(),
                    source,
                }
            } else {
                CaptureError::Open {
                    path: iface.name.clone(),
                    source,
                }
            }
        };
        let targets = self.targets.get();
        let buffer = targets.iter().map(|t| t.buffer).max().unwrap_or(0);
        let mut cap = pcap::Capture::from_device(iface.name.as_str())
            .map_err(fail)?
            .immediate_mode(true)
            .buffer_size(buffer.min(i32::MAX as usize) as i32)
            .snaplen(SNAPLEN)
            .promisc(false)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(fail)?;
        if !targets.is_empty() {
            cap.filter(&Self::filter(&targets), true).map_err(fail)?;
        }
        // `timeout` does not make libpcap return on Linux: poll the fd.
        cap.setnonblock().map_err(fail)
    }
}

/// Puts `filter` on the open capture `cap` of link type `link`.
///
/// libpcap's own `setfilter` first puts a drop-everything program on the
/// socket and drains it, so that no packet of the old filter shows up
/// later: what arrives meanwhile is lost, uncounted (at 1 Gbit/s, a few
/// datagrams of the streams that stay). On Ethernet, where the compiled
/// program runs in the kernel as it is, the program is swapped in with one
/// `SO_ATTACH_FILTER` instead, which the kernel does atomically; datagrams
/// of a removed stream still in the ring are then ignored (and counted)
/// by the reader.
fn replace_filter(
    cap: &mut pcap::Capture<pcap::Active>,
    link: crate::LinkType,
    filter: &str,
) -> Result<(), crate::Cause> {
    if link != crate::LinkType::Ethernet {
        return Ok(cap.filter(filter, true)?);
    }
    let program = cap.compile(filter, true)?;
    let insns = program.get_instructions();
    let fprog = libc::sock_fprog {
        len: insns.len() as libc::c_ushort,
        // BpfInstruction is a transparent bpf_insn, laid out as the
        // kernel's sock_filter; the kernel copies the program.
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    Ok(set_socket_option(
        cap.as_raw_fd(),
        libc::SO_ATTACH_FILTER,
        &fprog,
    )?)
}

/// Joins `t`'s group on `iface` with a socket of its own: switches (IGMP
/// snooping) and the kernel then forward the group to this interface; the
/// socket itself receives nothing.
fn membership(t: &Target, iface: &netif::Interface) -> Result<socket2::Socket, CaptureError> {
    let e = t.endpoint;
    netif::membership_socket()
        .and_then(|s| netif::join(&s, e.group, e.source, iface).map(|()| s))
        .map_err(|source| CaptureError::Socket {
            what: format!("{} on {} (multicast join)", e.dst(), iface.name),
            source,
        })
}

impl Source for PcapLiveSource {
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(End, SourceCounters), CaptureError> {
        let iface = netif::find(&self.interface)?;
        let mut cap = self.open(&iface)?;
        let link = link_of(&cap, &iface.name)?;
        let join = |t: &Target| membership(t, &iface);
        let mut memberships = TargetSockets::open_all(self.targets.clone(), join)?;
        tracing::info!(interface = %iface.name, filter = %Self::filter(memberships.wanted()), "capturing");
        let mut n = SourceCounters::default();
        let mut fragments = Reassembler::default();
        let mut reporting = Reporting::new();
        let mut fd = libc::pollfd {
            fd: cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            wait_readable(std::slice::from_mut(&mut fd)).map_err(|e| CaptureError::Read {
                interface: iface.name.clone(),
                source: e.into(),
            })?;
            if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                return Err(CaptureError::Read {
                    interface: iface.name.clone(),
                    source: "the interface went away".into(),
                });
            }
            let mut read = 0u32;
            loop {
                match cap.next_packet() {
                    Ok(p) => {
                        let (header, data) = (p.header, p.data);
                        if deliver(link, header, data, &mut n, &mut fragments, sink) == Flow::Stop {
                            return Ok((End::Stopped, fragments.finished(n)));
                        }
                    }
                    Err(pcap::Error::TimeoutExpired) => break,
                    Err(e) => {
                        return Err(CaptureError::Read {
                            interface: iface.name.clone(),
                            source: e.into(),
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
            let retry = reporting.stats_due();
            if reporting.send_due(&mut n, sink, refresh) == Flow::Stop {
                return Ok((End::Stopped, fragments.finished(n)));
            }
            // The reader changed the targets (a reload): the open handle
            // takes the new filter, so the other streams lose nothing.
            if memberships.sync(retry, join) && !memberships.wanted().is_empty() {
                let filter = Self::filter(memberships.wanted());
                replace_filter(&mut cap, link, &filter).map_err(|source| CaptureError::Filter {
                    interface: iface.name.clone(),
                    filter: filter.clone(),
                    source,
                })?;
                tracing::info!(interface = %iface.name, %filter, "capture filter changed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the privilege to capture (the test suite runs as root).
    #[test]
    fn follows_target_changes_without_a_gap() {
        crate::targets::tests::retarget_while_receiving(|targets| {
            Box::new(PcapLiveSource::new("lo".into(), targets))
        });
    }

    #[test]
    fn one_filter_for_every_endpoint() {
        let target = |id, group: &str, port, source: Option<&str>| Target {
            id,
            endpoint: crate::Endpoint {
                group: group.parse().unwrap(),
                port,
                source: source.map(|s| s.parse().unwrap()),
            },
            buffer: 1 << 20,
        };
        let targets = [
            target(0, "239.1.1.1", 5000, None),
            target(1, "239.1.1.2", 5002, Some("10.0.0.9")),
        ];
        assert_eq!(
            PcapLiveSource::filter(&targets),
            "udp and ((dst host 239.1.1.1 and (dst port 5000 or ip[6:2] & 0x1fff != 0)) or \
             (dst host 239.1.1.2 and (dst port 5002 or ip[6:2] & 0x1fff != 0) and src host 10.0.0.9))"
        );
    }
}
