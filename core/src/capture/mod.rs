//! Where datagrams come from: the [`Source`] trait and its implementations,
//! link-layer decoding, and RTP stripping.
//!
//! A source delivers every UDP datagram it sees, with its capture time and
//! destination; the engine demultiplexes them to streams by destination.

mod link;
mod pcap_file;
pub mod rtp;

use std::net::SocketAddr;
use std::time::SystemTime;

pub use link::{udp_payload, LinkType, Skip};
pub use pcap_file::PcapFileSource;

/// One UDP datagram as captured.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Capture time (UTC).
    pub at: SystemTime,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// What the source saw besides the datagrams it delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Records read.
    pub records: u64,
    /// Bytes of records read, as stored in the file.
    pub bytes: u64,
    /// Records that were not UDP over IP.
    pub not_udp: u64,
    /// Records cut short by the capture's snap length or corrupted.
    pub truncated: u64,
    /// IP fragments (a TS datagram never needs fragmenting; they are not reassembled).
    pub fragments: u64,
}

/// An error that ends a source.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The capture could not be opened.
    #[error("cannot open capture {path}: {reason}")]
    Open {
        /// The capture's path or interface.
        path: String,
        /// Why.
        reason: String,
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

/// A source of datagrams.
pub trait Source: Send {
    /// Delivers datagrams to `sink` until the source ends or the sink stops
    /// it. `progress` is called now and then with the counters so far.
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Datagram<'_>) -> Flow,
        progress: &mut dyn FnMut(&SourceCounters),
    ) -> Result<SourceCounters, CaptureError>;
}
