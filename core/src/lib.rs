//! hlsvault: archive live MPEG-TS over UDP into hourly HLS in object storage.
//!
//! The modules follow the data flow of one stream:
//! [`config`] → capture ([`hlsvault_capture`]) → the TS core ([`hlsvault_ts`]: analysis, RTP,
//! the segment cutter) → playlists ([`hlsvault_hls`]) → storage ([`hlsvault_store`]) →
//! [`urls`], wired and supervised by [`engine`]; [`serve`] plays it back,
//! [`hlsvault_plugin`] loads WebAssembly hooks, [`probe`] tells what a capture
//! carries.

pub mod config;
pub mod engine;
pub mod figures;
pub mod probe;
pub mod serve;
