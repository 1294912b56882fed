//! Where hlsvault's datagrams come from: the [`Source`] trait and its
//! implementations (a capture file, libpcap on an interface, UDP sockets),
//! link-layer decoding and IPv4 reassembly. RTP is the TS core's
//! (`hlsvault_ts::rtp`).
//!
//! A source delivers every UDP datagram it sees, with its capture time and
//! destination; the engine demultiplexes them to streams by destination.
//! This is the one crate with `unsafe`: socket options and interface
//! lookups through `libc`.

mod fragments;
mod link;
pub mod netif;
mod pcap_file;
mod pcap_live;
mod targets;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

pub use fragments::Reassembler;
pub use link::{udp_payload, LinkType, Skip};
pub use netif::{Interface, InterfaceError};
pub use pcap_file::{Pace, PcapFileSource};
pub use pcap_live::PcapLiveSource;
pub use targets::{Target, Targets};
pub use udp::UdpSource;

/// One UDP datagram as captured.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Capture time (UTC).
    pub at: SystemTime,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: &'a [u8],
    /// The id of the [`Target`] it was received for, when the source
    /// knows (a socket per target); otherwise the destination decides.
    pub endpoint: Option<usize>,
}

/// What the source saw besides the datagrams it delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Records (frames or datagrams) read.
    pub records: u64,
    /// Bytes read (for files: as stored in the file).
    pub bytes: u64,
    /// Packets the kernel dropped before the capture saw them (pcap's
    /// `ps_drop`: buffer full).
    pub kernel_drops: u64,
    /// Packets the interface dropped (pcap's `ps_ifdrop`).
    pub interface_drops: u64,
    /// Datagrams the kernel dropped because the socket buffer was full
    /// (`SO_RXQ_OVFL`).
    pub socket_drops: u64,
    /// Records that were not UDP over IP.
    pub not_udp: u64,
    /// Records cut short by the capture's snap length or corrupted.
    pub truncated: u64,
    /// IP fragments (IPv4 fragments of UDP are reassembled).
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub reassembled: u64,
    /// Datagrams whose fragments never all came (in time), and IPv6
    /// fragments (not reassembled).
    pub fragments_incomplete: u64,
}

impl SourceCounters {
    /// Adds the counters of another run of the same source.
    pub fn add(&mut self, o: &SourceCounters) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.kernel_drops += o.kernel_drops;
        self.interface_drops += o.interface_drops;
        self.socket_drops += o.socket_drops;
        self.not_udp += o.not_udp;
        self.truncated += o.truncated;
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.fragments_incomplete += o.fragments_incomplete;
    }
}

/// What went wrong below a capture: libpcap's error, or the system's.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error that ends a source. Each keeps its cause (`source()`); the
/// message says it too, for logs that show one line.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The capture could not be opened.
    #[error("cannot open capture {path}: {source}")]
    Open {
        /// The capture's path or interface.
        path: String,
        /// What libpcap said.
        source: pcap::Error,
    },
    /// The interface is missing or down (live sources retry).
    #[error(transparent)]
    Interface(#[from] InterfaceError),
    /// The process may not capture on the interface.
    #[error("no permission to capture on {interface} ({source}): run as root, grant the binary `setcap cap_net_raw,cap_net_admin=eip`, or use kind = \"udp\", which needs no privilege")]
    Privilege {
        /// The interface.
        interface: String,
        /// What libpcap said.
        source: pcap::Error,
    },
    /// A socket could not be set up.
    #[error("cannot receive {what}: {source}")]
    Socket {
        /// The group and port, and the interface.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading the live capture failed.
    #[error("capture on {interface} failed: {source}")]
    Read {
        /// The interface.
        interface: String,
        /// Why.
        source: Cause,
    },
    /// The capture's filter could not be replaced (streams changed).
    #[error("capture on {interface} failed: cannot set the filter {filter}: {source}")]
    Filter {
        /// The interface.
        interface: String,
        /// The filter.
        filter: String,
        /// Why.
        source: Cause,
    },
    /// The capture's link layer is not one we decode.
    #[error("capture {path} has link type {linktype}, which hlsvault does not decode (Ethernet, Linux cooked, raw IP and BSD loopback are supported)")]
    LinkType {
        /// The capture's path.
        path: String,
        /// The link type's name.
        linktype: String,
    },
}

/// Tells a source whether to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Deliver more.
    Continue,
    /// Stop now.
    Stop,
}

/// What a source hands to its sink.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A datagram.
    Datagram(Datagram<'a>),
    /// Time passed (sent about every [`TICK`], busy or quiet, by live and
    /// paced sources), so the sink can flush what it holds, notice silence
    /// and ask the source to stop.
    Tick,
    /// The counters so far (sent now and then).
    Progress(&'a SourceCounters),
    /// The kernel dropped datagrams for the socket of one target: `total`
    /// so far (`SO_RXQ_OVFL`).
    SocketDrops {
        /// The id of the target whose socket overflowed.
        endpoint: usize,
        /// Drops since the socket opened.
        total: u64,
    },
}

/// How often a live or paced source reports [`Event::Tick`].
pub const TICK: Duration = Duration::from_millis(50);

/// Once data is waiting, a live source lets this much more arrive before
/// it reads: one wake-up and a few reads then serve hundreds of datagrams
/// instead of one each. At 1 Gbit/s that is 500 KB, far below the kernel
/// buffers.
const COALESCE: Duration = Duration::from_millis(4);

/// How often a live source reports its counters.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// When a live source owes its sink a [`Event::Tick`] or its counters.
struct Reporting {
    tick: Instant,
    stats: Instant,
}

impl Reporting {
    fn new() -> Self {
        Reporting {
            tick: Instant::now(),
            stats: Instant::now(),
        }
    }

    /// A tick is due.
    fn tick_due(&self) -> bool {
        self.tick.elapsed() >= TICK
    }

    /// The counters are due (and failed targets are tried again).
    fn stats_due(&self) -> bool {
        self.stats.elapsed() >= STATS_EVERY
    }

    /// Sends what is due: a tick every [`TICK`]; every [`STATS_EVERY`] the
    /// counters, once `refresh` has brought them up to date (and sent what
    /// else it has).
    fn send_due(
        &mut self,
        n: &mut SourceCounters,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
        refresh: impl FnOnce(&mut SourceCounters, &mut dyn FnMut(Event<'_>) -> Flow),
    ) -> Flow {
        if self.tick_due() {
            self.tick = Instant::now();
            if sink(Event::Tick) == Flow::Stop {
                return Flow::Stop;
            }
        }
        if !self.stats_due() {
            return Flow::Continue;
        }
        self.stats = Instant::now();
        refresh(n, sink);
        sink(Event::Progress(n))
    }
}

/// Waits up to [`TICK`] for one of `fds` to be readable, then
/// [`COALESCE`]s. Returns false when nothing became readable.
fn wait_readable(fds: &mut [libc::pollfd]) -> std::io::Result<bool> {
    // SAFETY: `fds` is a valid array of its length.
    let ready = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            TICK.as_millis() as i32,
        )
    };
    if ready < 0 {
        let e = std::io::Error::last_os_error();
        return match e.kind() {
            std::io::ErrorKind::Interrupted => Ok(false),
            _ => Err(e),
        };
    }
    if ready > 0 {
        std::thread::sleep(COALESCE);
    }
    Ok(ready > 0)
}

/// Sets the `SOL_SOCKET` option `name` of socket `fd` to `value` (a plain
/// C value of the type the option takes).
fn set_socket_option<T>(fd: libc::c_int, name: libc::c_int, value: &T) -> std::io::Result<()> {
    // SAFETY: `value` is a valid T for the length given; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    match r {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// One stream a live source receives: a destination, and optionally the
/// only sender to accept (source-specific multicast).
///
/// ```
/// let e = hlsvault_capture::Endpoint {
///     group: "239.1.1.1".parse().unwrap(),
///     port: 5000,
///     source: Some("10.0.0.7".parse().unwrap()),
/// };
/// assert_eq!(e.dst().to_string(), "239.1.1.1:5000");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Destination group (or unicast address).
    pub group: IpAddr,
    /// Destination port.
    pub port: u16,
    /// The sender, for source-specific multicast.
    pub source: Option<IpAddr>,
}

impl Endpoint {
    /// The destination as a socket address.
    pub fn dst(&self) -> SocketAddr {
        SocketAddr::new(self.group, self.port)
    }
}

/// How a source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It ran out (the end of a file).
    Exhausted,
    /// The sink asked it to stop.
    Stopped,
}

/// Decodes one captured frame and hands its datagram to `sink` (after
/// reassembly, for fragments), counting what is not a usable datagram.
fn deliver(
    link: LinkType,
    header: &pcap::PacketHeader,
    frame: &[u8],
    n: &mut SourceCounters,
    fragments: &mut Reassembler,
    sink: &mut dyn FnMut(Event<'_>) -> Flow,
) -> Flow {
    n.records += 1;
    n.bytes += frame.len() as u64;
    if header.caplen < header.len {
        n.truncated += 1;
        return Flow::Continue;
    }
    // Captures are opened with nanosecond precision: libpcap then puts
    // nanoseconds in tv_usec.
    let ts = header.ts;
    let at = SystemTime::UNIX_EPOCH
        + Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_usec.clamp(0, 999_999_999) as u32,
        );
    let decoded = decode(link, at, frame, fragments);
    if decoded.fragment {
        n.fragments += 1;
    }
    match decoded.datagram {
        Ok(Some((dst, payload))) => {
            return sink(Event::Datagram(Datagram {
                at,
                dst,
                payload,
                endpoint: None,
            }))
        }
        Ok(None) => {}
        Err(Skip::NotUdp) => n.not_udp += 1,
        Err(Skip::Truncated | Skip::Fragment) => n.truncated += 1,
    }
    Flow::Continue
}

/// What a captured frame gives.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// Its UDP datagram (destination and payload), rebuilt when it came in
    /// fragments; `None` while a fragmented one is not whole (or cannot
    /// be rebuilt: counted by the reassembler).
    pub datagram: Result<Option<(SocketAddr, &'a [u8])>, Skip>,
    /// The frame was an IP fragment.
    pub fragment: bool,
}

/// Decodes a frame captured `at` on a `link` down to its UDP datagram,
/// reassembling IPv4 fragments in `fragments`. Any bytes are safe.
///
/// ```
/// use std::time::SystemTime;
/// use hlsvault_capture::{decode, LinkType, Reassembler, Skip};
/// let mut fragments = Reassembler::default();
/// let d = decode(LinkType::Ethernet, SystemTime::now(), &[0u8; 10], &mut fragments);
/// assert!(matches!(d.datagram, Err(Skip::Truncated)));
/// ```
pub fn decode<'a>(
    link: LinkType,
    at: SystemTime,
    frame: &'a [u8],
    fragments: &'a mut Reassembler,
) -> Decoded<'a> {
    let datagram = match udp_payload(link, frame) {
        Err(Skip::Fragment) => {
            let Some(f) = link::ipv4_fragment(link, frame) else {
                fragments.unsupported();
                return Decoded {
                    datagram: Ok(None),
                    fragment: true,
                };
            };
            let dst = f.dst;
            let datagram = match fragments.push(at, f) {
                Some(ip) => link::reassembled_udp(dst, ip).map(Some),
                None => Ok(None),
            };
            return Decoded {
                datagram,
                fragment: true,
            };
        }
        d => d.map(Some),
    };
    Decoded {
        datagram,
        fragment: false,
    }
}

/// The link layer of an open capture, if we decode it.
fn link_of<T: pcap::Activated + ?Sized>(
    cap: &pcap::Capture<T>,
    path: &str,
) -> Result<LinkType, CaptureError> {
    let dlt = cap.get_datalink();
    LinkType::from_dlt(dlt.0).ok_or_else(|| CaptureError::LinkType {
        path: path.to_string(),
        linktype: dlt.get_name().unwrap_or_else(|_| format!("DLT {}", dlt.0)),
    })
}

/// A source of datagrams.
pub trait Source: Send {
    /// Delivers events to `sink` until the source ends or the sink returns
    /// [`Flow::Stop`]; returns how it ended and its final counters.
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(End, SourceCounters), CaptureError>;
}
