//! The socket a destination is sent through, with its options set and
//! its route checked before the first datagram: a wrong option fails here,
//! naming it, not in the middle of a playout.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

use crate::Destination;

/// Room for bursts (a late sender catching up) in the kernel.
const SEND_BUFFER: usize = 4 << 20;

/// Why a destination cannot be sent to; `option` is what the user wrote
/// that does not work (`interface=eth9`, `to udp://…`).
#[derive(Debug, thiserror::Error)]
#[error("{option}: {reason}")]
pub struct SocketError {
    pub option: String,
    pub reason: String,
}

/// A UDP socket that sends to `dest` (connected to it), from the interface,
/// source address, TTL and TOS it asks for.
pub fn open(dest: &Destination) -> Result<UdpSocket, SocketError> {
    let failed = |option: String| {
        move |e: std::io::Error| SocketError {
            option,
            reason: e.to_string(),
        }
    };
    let to = || format!("to {dest}");
    let v4 = dest.addr.is_ipv4();
    let domain = if v4 { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(failed(to()))?;
    let multicast = dest.addr.ip().is_multicast();
    if let Some(spec) = &dest.interface {
        let option = format!("interface={spec}");
        let iface = hlsvault_capture::netif::find(spec).map_err(|e| SocketError {
            option: option.clone(),
            reason: e.to_string(),
        })?;
        // Bound to the device, every datagram leaves by it, multicast or
        // not (root or CAP_NET_RAW).
        socket
            .bind_device(Some(iface.name.as_bytes()))
            .map_err(failed(option.clone()))?;
        match (multicast, v4, iface.addr) {
            (true, true, Some(addr)) => socket.set_multicast_if_v4(&addr),
            (true, false, _) => socket.set_multicast_if_v6(iface.index),
            _ => Ok(()),
        }
        .map_err(failed(option))?;
    }
    let local = dest.source.unwrap_or(match v4 {
        true => IpAddr::from([0u8; 4]),
        false => IpAddr::from([0u16; 8]),
    });
    socket
        .bind(&SocketAddr::new(local, 0).into())
        .map_err(failed(match dest.source {
            Some(s) => format!("source={s}"),
            None => to(),
        }))?;
    if let Some(ttl) = dest.ttl {
        let option = format!("ttl={ttl}");
        match (multicast, v4) {
            (true, true) => socket.set_multicast_ttl_v4(ttl),
            (false, true) => socket.set_ttl_v4(ttl),
            (true, false) => socket.set_multicast_hops_v6(ttl),
            (false, false) => socket.set_unicast_hops_v6(ttl),
        }
        .map_err(failed(option))?;
    }
    if let Some(tos) = dest.tos {
        let option = format!("tos={tos}");
        match v4 {
            true => socket.set_tos_v4(tos.into()),
            false => socket.set_tclass_v6(tos.into()),
        }
        .map_err(failed(option))?;
    }
    // A smaller buffer only means less room for bursts.
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    // Connecting looks the route up now: a group with no route out fails
    // here, not at the first send.
    socket.connect(&dest.addr.into()).map_err(|e| SocketError {
        option: to(),
        reason: match e.raw_os_error() {
            Some(libc::ENETUNREACH) => {
                format!("{e} (no route to it: say interface=, or add a route)")
            }
            _ => e.to_string(),
        },
    })?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_loopback_with_its_options() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest: Destination = format!(
            "udp://{}?ttl=3&tos=184&source=127.0.0.1",
            receiver.local_addr().unwrap()
        )
        .parse()
        .unwrap();
        let socket = open(&dest).unwrap();
        let s2 = socket2::SockRef::from(&socket);
        assert_eq!(s2.ttl_v4().unwrap(), 3);
        assert_eq!(s2.tos_v4().unwrap(), 184);
        socket.send(b"hello").unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.ip(), socket.local_addr().unwrap().ip());
    }

    #[test]
    fn an_option_that_cannot_work_is_named() {
        let dest: Destination = "udp://239.1.1.1:5000?interface=hv-no-such0"
            .parse()
            .unwrap();
        let e = open(&dest).unwrap_err();
        assert_eq!(e.option, "interface=hv-no-such0");
        assert!(e.reason.contains("no network interface"), "{e}");
        // An address this host does not have.
        let dest: Destination = "udp://127.0.0.1:5000?source=192.0.2.7".parse().unwrap();
        assert_eq!(open(&dest).unwrap_err().option, "source=192.0.2.7");
    }
}
