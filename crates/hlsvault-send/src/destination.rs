//! Where a playout sends: `udp://GROUP:PORT` (or `rtp://`) with the
//! options a multicast sender needs, as one URL a user writes on the
//! command line or in the config.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A destination and how to send to it.
///
/// ```
/// use hlsvault_send::Destination;
/// let d: Destination = "udp://239.1.1.1:5000?ttl=8&interface=eth1&tos=184&rtp".parse().unwrap();
/// assert_eq!(d.addr.to_string(), "239.1.1.1:5000");
/// assert_eq!((d.ttl, d.tos, d.rtp), (Some(8), Some(184), true));
/// assert_eq!(d.interface.as_deref(), Some("eth1"));
/// let e = "udp://239.1.1.1:5000?ttl=300".parse::<Destination>().unwrap_err();
/// assert_eq!(e.to_string(), "ttl=300: a TTL is 1 to 255");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Destination {
    /// The group (or unicast address) and port.
    pub addr: SocketAddr,
    /// Hops the datagrams may take (IP TTL); the system's default (1 for
    /// multicast) when not set.
    pub ttl: Option<u32>,
    /// The interface to send from, by name or address.
    pub interface: Option<String>,
    /// The local address to send from.
    pub source: Option<IpAddr>,
    /// The IP type of service byte (DSCP and ECN; 184 is DSCP EF).
    pub tos: Option<u8>,
    /// Each datagram in an RTP header (RFC 2250, payload type 33).
    pub rtp: bool,
}

/// A destination that cannot be read, naming the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {reason}")]
pub struct DestinationError {
    /// The part of the URL (`ttl=300`, the address).
    pub part: String,
    pub reason: &'static str,
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let wrong = |part: &str, reason| DestinationError {
            part: part.to_string(),
            reason,
        };
        let (rtp, rest) = if let Some(rest) = url.strip_prefix("udp://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("rtp://") {
            (true, rest)
        } else {
            return Err(wrong(
                url,
                "a destination is udp://GROUP:PORT or rtp://GROUP:PORT",
            ));
        };
        let (address, options) = rest.split_once('?').unwrap_or((rest, ""));
        let addr: SocketAddr = address.parse().map_err(|_| {
            wrong(
                address,
                "not an address and port (239.1.1.1:5000, [ff05::1]:5000)",
            )
        })?;
        if addr.port() == 0 {
            return Err(wrong(address, "port 0 cannot be sent to"));
        }
        let mut d = Destination {
            addr,
            ttl: None,
            interface: None,
            source: None,
            tos: None,
            rtp,
        };
        for option in options.split('&').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            match key {
                "ttl" => {
                    d.ttl = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|t| (1..=255).contains(t))
                            .ok_or_else(|| wrong(option, "a TTL is 1 to 255"))?,
                    )
                }
                "interface" if !value.is_empty() => d.interface = Some(value.to_string()),
                "interface" => {
                    return Err(wrong(option, "name an interface (eth1) or its address"))
                }
                "source" => {
                    let source: IpAddr = value
                        .parse()
                        .map_err(|_| wrong(option, "not an IP address"))?;
                    if source.is_ipv4() != addr.is_ipv4() {
                        return Err(wrong(option, "not of the destination's IP version"));
                    }
                    d.source = Some(source);
                }
                "tos" => {
                    d.tos = Some(
                        value
                            .parse()
                            .map_err(|_| wrong(option, "a TOS byte is 0 to 255"))?,
                    )
                }
                "rtp" if matches!(value, "" | "1" | "true") => d.rtp = true,
                "rtp" if matches!(value, "0" | "false") => d.rtp = false,
                "rtp" => return Err(wrong(option, "rtp is on (rtp, rtp=1) or off (rtp=0)")),
                _ => {
                    return Err(wrong(
                        option,
                        "unknown option (ttl, interface, source, tos, rtp)",
                    ))
                }
            }
        }
        Ok(d)
    }
}

impl TryFrom<String> for Destination {
    type Error = DestinationError;

    fn try_from(url: String) -> Result<Self, Self::Error> {
        url.parse()
    }
}

impl fmt::Display for Destination {
    /// The URL it was read from, options in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.rtp { "rtp" } else { "udp" },
            self.addr
        )?;
        let mut options = Vec::new();
        if let Some(ttl) = self.ttl {
            options.push(format!("ttl={ttl}"));
        }
        if let Some(i) = &self.interface {
            options.push(format!("interface={i}"));
        }
        if let Some(s) = self.source {
            options.push(format!("source={s}"));
        }
        if let Some(t) = self.tos {
            options.push(format!("tos={t}"));
        }
        if !options.is_empty() {
            write!(f, "?{}", options.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_option_and_writes_them_back() {
        let d: Destination = "udp://[ff05::1]:5000?source=::1&ttl=4&rtp=1"
            .parse()
            .unwrap();
        assert_eq!(d.to_string(), "rtp://[ff05::1]:5000?ttl=4&source=::1");
        assert_eq!(d.to_string().parse::<Destination>().unwrap(), d);
        let plain: Destination = "udp://127.0.0.1:1234".parse().unwrap();
        assert_eq!(plain.to_string(), "udp://127.0.0.1:1234");
        assert!(!plain.rtp);
    }

    #[test]
    fn each_mistake_names_its_part() {
        let said = |url: &str| url.parse::<Destination>().unwrap_err().to_string();
        assert_eq!(
            said("http://239.1.1.1:5000"),
            "http://239.1.1.1:5000: a destination is udp://GROUP:PORT or rtp://GROUP:PORT"
        );
        assert!(said("udp://239.1.1.1").starts_with("239.1.1.1: not an address and port"));
        assert_eq!(
            said("udp://239.1.1.1:0"),
            "239.1.1.1:0: port 0 cannot be sent to"
        );
        assert_eq!(
            said("udp://239.1.1.1:5000?ttl=0"),
            "ttl=0: a TTL is 1 to 255"
        );
        assert_eq!(
            said("udp://239.1.1.1:5000?tos=x"),
            "tos=x: a TOS byte is 0 to 255"
        );
        assert_eq!(
            said("udp://239.1.1.1:5000?source=::1"),
            "source=::1: not of the destination's IP version"
        );
        assert_eq!(
            said("udp://239.1.1.1:5000?iface=eth0"),
            "iface=eth0: unknown option (ttl, interface, source, tos, rtp)"
        );
        assert_eq!(
            said("udp://239.1.1.1:5000?interface="),
            "interface=: name an interface (eth1) or its address"
        );
    }
}
