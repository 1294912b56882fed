//! Network interfaces: finding one by name or address, and joining
//! multicast groups on it.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr};

use socket2::{Domain, Protocol, Socket, Type};

/// An interface as the kernel lists it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`eth1`).
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Its first IPv4 address, if it has one.
    pub addr: Option<Ipv4Addr>,
    /// Administratively up and running.
    pub up: bool,
}

/// Why an interface cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterfaceError {
    /// No interface has this name or address.
    #[error("no network interface is named or has the address \"{0}\" (see `ip addr`)")]
    Missing(String),
    /// It exists but is down.
    #[error("network interface {0} is down")]
    Down(String),
}

/// Finds an interface by name (`eth1`) or by one of its IPv4 addresses, and
/// requires it to be up.
pub fn find(spec: &str) -> Result<Interface, InterfaceError> {
    let by_addr: Option<Ipv4Addr> = spec.parse().ok();
    let found = list()
        .into_iter()
        .find(|i| i.name == spec || (by_addr.is_some() && i.addr == by_addr))
        .ok_or_else(|| InterfaceError::Missing(spec.to_string()))?;
    if found.up {
        Ok(found)
    } else {
        Err(InterfaceError::Down(found.name))
    }
}

/// Every interface with its first IPv4 address.
fn list() -> Vec<Interface> {
    let mut out: Vec<Interface> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; every node
    // and its strings stay valid until freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut node = head;
        while !node.is_null() {
            let ifa = &*node;
            node = ifa.ifa_next;
            let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
            let up = ifa.ifa_flags & (libc::IFF_UP | libc::IFF_RUNNING) as u32
                == (libc::IFF_UP | libc::IFF_RUNNING) as u32;
            let addr = (!ifa.ifa_addr.is_null()
                && (*ifa.ifa_addr).sa_family as i32 == libc::AF_INET)
                .then(|| {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
                });
            match out.iter_mut().find(|i| i.name == name) {
                Some(i) => {
                    i.addr = i.addr.or(addr);
                    i.up |= up;
                }
                None => out.push(Interface {
                    index: libc::if_nametoindex(ifa.ifa_name),
                    name,
                    addr,
                    up,
                }),
            }
        }
        libc::freeifaddrs(head);
    }
    out
}

/// Joins `group` on `iface` with `socket` (IGMP), from any sender or, with
/// `source`, from that sender only (source-specific multicast). A unicast
/// `group` needs no join.
pub fn join(
    socket: &Socket,
    group: IpAddr,
    source: Option<IpAddr>,
    iface: &Interface,
) -> std::io::Result<()> {
    let IpAddr::V4(group) = group else {
        return Err(std::io::Error::other("only IPv4 groups are supported"));
    };
    if !group.is_multicast() {
        return Ok(());
    }
    let local = iface.addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
    match source {
        Some(IpAddr::V4(src)) => socket.join_ssm_v4(&src, &group, &local),
        Some(IpAddr::V6(_)) => Err(std::io::Error::other("only IPv4 sources are supported")),
        None => socket.join_multicast_v4_n(
            &group,
            &socket2::InterfaceIndexOrAddress::Index(iface.index),
        ),
    }
}

/// A socket that only holds multicast memberships for a capture: it is not
/// bound to a port, so it never queues the datagrams itself.
pub fn membership_socket() -> std::io::Result<Socket> {
    Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loopback_by_name_and_address() {
        let lo = find("lo").unwrap();
        assert_eq!(lo.addr, Some(Ipv4Addr::LOCALHOST));
        assert!(lo.index > 0);
        assert_eq!(find("127.0.0.1").unwrap().name, "lo");
        assert_eq!(
            find("no-such-if0"),
            Err(InterfaceError::Missing("no-such-if0".into()))
        );
    }
}
