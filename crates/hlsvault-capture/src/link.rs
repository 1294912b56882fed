//! Link, network and transport headers: from a captured frame to the UDP
//! payload and its destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::fragments::Fragment;

/// Link layers we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II, with optional 802.1Q / 802.1ad tags.
    Ethernet,
    /// Linux cooked capture v1 (`any` device).
    LinuxSll,
    /// Linux cooked capture v2.
    LinuxSll2,
    /// Raw IPv4 or IPv6.
    Raw,
    /// BSD loopback: a 4-byte address family in host order.
    Null,
}

impl LinkType {
    /// Maps a pcap DLT number to a link type we decode.
    pub fn from_dlt(dlt: i32) -> Option<Self> {
        match dlt {
            1 => Some(Self::Ethernet),
            113 => Some(Self::LinuxSll),
            276 => Some(Self::LinuxSll2),
            12 | 14 | 101 | 228 | 229 => Some(Self::Raw),
            0 | 108 => Some(Self::Null),
            _ => None,
        }
    }
}

/// Why a frame yields no UDP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not UDP over IPv4/IPv6.
    NotUdp,
    /// Headers or payload cut short.
    Truncated,
    /// An IP fragment.
    Fragment,
}

/// Decodes a captured frame down to its UDP payload and destination.
pub fn udp_payload(link: LinkType, frame: &[u8]) -> Result<(SocketAddr, &[u8]), Skip> {
    let (ethertype, ip) = ip_packet(link, frame)?;
    let version = ip.first().ok_or(Skip::Truncated)? >> 4;
    match (ethertype, version) {
        (Some(0x0800) | None, 4) => ipv4(ip),
        (Some(0x86DD) | None, 6) => ipv6(ip),
        _ => Err(Skip::NotUdp),
    }
}

/// The IPv4 fragment of a UDP datagram that a frame carries (for frames
/// that [`udp_payload`] calls [`Skip::Fragment`]).
pub fn ipv4_fragment(link: LinkType, frame: &[u8]) -> Option<Fragment<'_>> {
    let (ethertype, ip) = ip_packet(link, frame).ok()?;
    if !matches!(ethertype, Some(0x0800) | None) || ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = (ip[0] & 0x0F) as usize * 4;
    let total = be16(ip, 2).ok()? as usize;
    if ip[9] != 17 || ihl < 20 || total < ihl || total > ip.len() {
        return None;
    }
    let flags = be16(ip, 6).ok()?;
    Some(Fragment {
        src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        id: be16(ip, 4).ok()?,
        offset: (flags & 0x1FFF) as usize * 8,
        more: flags & 0x2000 != 0,
        data: &ip[ihl..total],
    })
}

/// The UDP payload and destination of a datagram rebuilt from fragments
/// (`ip_payload` starts with the UDP header).
pub fn reassembled_udp(dst: Ipv4Addr, ip_payload: &[u8]) -> Result<(SocketAddr, &[u8]), Skip> {
    udp(IpAddr::V4(dst), ip_payload)
}

/// The link layer's ethertype (if it has one) and the IP packet.
fn ip_packet(link: LinkType, frame: &[u8]) -> Result<(Option<u16>, &[u8]), Skip> {
    Ok(match link {
        LinkType::Ethernet => {
            let mut at = 12;
            let mut et = be16(frame, at)?;
            while et == 0x8100 || et == 0x88A8 {
                at += 4;
                et = be16(frame, at)?;
            }
            (Some(et), frame.get(at + 2..).ok_or(Skip::Truncated)?)
        }
        LinkType::LinuxSll => (
            Some(be16(frame, 14)?),
            frame.get(16..).ok_or(Skip::Truncated)?,
        ),
        LinkType::LinuxSll2 => (
            Some(be16(frame, 0)?),
            frame.get(20..).ok_or(Skip::Truncated)?,
        ),
        LinkType::Raw => (None, frame),
        LinkType::Null => (None, frame.get(4..).ok_or(Skip::Truncated)?),
    })
}

fn be16(b: &[u8], at: usize) -> Result<u16, Skip> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(Skip::Truncated)
}

fn ipv4(ip: &[u8]) -> Result<(SocketAddr, &[u8]), Skip> {
    if ip.len() < 20 {
        return Err(Skip::Truncated);
    }
    let ihl = (ip[0] & 0x0F) as usize * 4;
    let total = be16(ip, 2)? as usize;
    if ip[9] != 17 {
        return Err(Skip::NotUdp);
    }
    if ihl < 20 || total < ihl || total > ip.len() {
        return Err(Skip::Truncated);
    }
    if be16(ip, 6)? & 0x3FFF != 0 {
        return Err(Skip::Fragment);
    }
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    udp(IpAddr::V4(dst), &ip[ihl..total])
}

fn ipv6(ip: &[u8]) -> Result<(SocketAddr, &[u8]), Skip> {
    if ip.len() < 40 {
        return Err(Skip::Truncated);
    }
    let payload_len = be16(ip, 4)? as usize;
    let next = ip[6];
    if next == 44 {
        return Err(Skip::Fragment);
    }
    if next != 17 {
        return Err(Skip::NotUdp);
    }
    let end = 40 + payload_len;
    if end > ip.len() {
        return Err(Skip::Truncated);
    }
    let dst: [u8; 16] = ip[24..40].try_into().map_err(|_| Skip::Truncated)?;
    udp(IpAddr::V6(Ipv6Addr::from(dst)), &ip[40..end])
}

fn udp(dst: IpAddr, seg: &[u8]) -> Result<(SocketAddr, &[u8]), Skip> {
    let len = be16(seg, 4)? as usize;
    if len < 8 || len > seg.len() {
        return Err(Skip::Truncated);
    }
    Ok((SocketAddr::new(dst, be16(seg, 2)?), &seg[8..len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(vlan: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = hlsvault_testkit::udp_frame("239.10.0.1:5000".parse().unwrap(), payload);
        if vlan {
            f.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        }
        f
    }

    #[test]
    fn ethernet_with_and_without_vlan() {
        for vlan in [false, true] {
            let f = frame(vlan, b"hello");
            let (dst, p) = udp_payload(LinkType::Ethernet, &f).unwrap();
            assert_eq!(dst, "239.10.0.1:5000".parse().unwrap());
            assert_eq!(p, b"hello");
        }
    }

    #[test]
    fn truncated_fragmented_and_other_protocols() {
        let f = frame(false, &[0x47; 188]);
        assert_eq!(
            udp_payload(LinkType::Ethernet, &f[..100]),
            Err(Skip::Truncated)
        );
        let mut frag = f.clone();
        frag[20] = 0x20; // more fragments
        assert_eq!(udp_payload(LinkType::Ethernet, &frag), Err(Skip::Fragment));
        let mut tcp = f.clone();
        tcp[23] = 6;
        assert_eq!(udp_payload(LinkType::Ethernet, &tcp), Err(Skip::NotUdp));
        let mut arp = f;
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(udp_payload(LinkType::Ethernet, &arp), Err(Skip::NotUdp));
        assert_eq!(udp_payload(LinkType::Raw, &[]), Err(Skip::Truncated));
    }

    #[test]
    fn raw_ip_and_cooked() {
        let f = frame(false, b"x");
        let (dst, _) = udp_payload(LinkType::Raw, &f[14..]).unwrap();
        assert_eq!(dst.port(), 5000);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&f[14..]);
        assert_eq!(udp_payload(LinkType::LinuxSll, &sll).unwrap().1, b"x");
    }
}
