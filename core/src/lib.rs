//! hlsvault: archive live MPEG-TS over UDP into hourly HLS in object storage.
//!
//! The modules follow the data flow of one stream:
//! [`config`] → [`capture`] → [`ts`] → [`segment`] → [`playlist`] →
//! [`storage`] → [`urls`], wired and supervised by [`engine`]; [`serve`]
//! plays it back, [`plugin`] loads WebAssembly hooks.

pub mod capture;
pub mod config;
pub mod engine;
pub mod playlist;
pub mod plugin;
pub mod probe;
pub mod segment;
pub mod serve;
pub mod storage;
pub mod ts;
pub mod urls;
