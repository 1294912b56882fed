//! hlsvault's way out: TS sent to a UDP or RTP destination at the pace
//! its PCRs set, for replaying an archive as multicast.
//!
//! A [`Destination`] (`udp://239.1.1.1:5000?ttl=8&interface=eth1`) opens
//! a socket with its options checked ([`socket::open`]); a [`Sender`]
//! owns it and queues each [`Batch`] of datagrams, timed by
//! [`hlsvault_ts::pace::Pacer`], to a pacing thread that the process's
//! senders share (one per core at most), which sends each when it is due,
//! counting in [`SendFigures`] how late it left.
//!
//! ```no_run
//! use hlsvault_send::{Batch, Sender, SenderSettings};
//! # fn f(ts: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::start(&SenderSettings {
//!     destination: "udp://239.1.1.1:5000?ttl=4".parse()?,
//!     ssrc: 1,
//!     queue: 8,
//! })?;
//! let mut pacer = hlsvault_ts::pace::Pacer::new(7);
//! let datagrams = pacer.push(ts.into(), false);
//! sender.send(Batch { datagrams, due_at: None })?;
//! sender.finish()?;
//! # Ok(()) }
//! ```

mod destination;
mod figures;
mod lane;
mod pacing;
mod sender;
pub mod socket;

pub use destination::{Destination, DestinationError};
pub use figures::{SendFigures, SendSnapshot, LATE};
pub use lane::{ANCHOR_TOLERANCE, CATCH_UP, MAX_LATE};
pub use pacing::TOGETHER;
pub use sender::{feeding_priority, Batch, Sender, SenderSettings, Stopped, Stopper};
pub use socket::SocketError;
