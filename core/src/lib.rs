//! hlsvault: archive live MPEG-TS over UDP into hourly HLS in object storage.
//!
//! This crate is the top of the workspace: the configuration, the engine
//! that wires the lower crates along the data flow of one stream, the
//! playback server and the command line.
//!
//! [`config`] → capture ([`hlsvault_capture`]) → the TS core
//! ([`hlsvault_ts`]: RTP, analysis, the segment cutter) → playlists and
//! hours ([`hlsvault_hls`]) → storage ([`hlsvault_store`]), wired and
//! supervised by [`engine`], with WebAssembly hooks
//! ([`hlsvault_plugin`]) along the way. The engine writes [`figures`];
//! [`serve`] reads them and plays the archive back, with [`export`]
//! (ranges and clips, read back by time) and [`ranges`] (what is
//! recorded, and the gaps); [`probe`] tells what a capture carries.

pub mod cluster;
pub mod config;
pub mod engine;
pub mod export;
pub mod figures;
pub mod holds;
pub mod probe;
pub mod ranges;
pub mod replay;
pub mod serve;
