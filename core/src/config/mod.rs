//! The configuration file: one TOML file declares the store and many streams.
//!
//! Loaded with figment (the file, then `HLSVAULT_*` environment overrides,
//! `__` separating nested keys: `HLSVAULT_STORAGE__ROOT=/srv/archive`).
//! Every problem found is reported, each with the file, the key and the
//! reason; one bad stream does not hide the problems of the next.
//!
//! [`schema`] is the file as written (serde, parsing only); [`load`] reads
//! it and [`validate`] turns it into the types below, which say what
//! validation proved: a [`Source`] is one of its kinds with what that kind
//! needs, a [`Store`] is a directory or an S3 bucket with its settings.
//! Lower layers own their settings types (`S3Settings`, `PluginSettings`,
//! `Pace`, `Endpoint`, `Urls`); the config converts into them.

mod load;
mod schema;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use hlsvault_capture::{Endpoint, Pace};
use hlsvault_hls::Urls;
use hlsvault_plugin::PluginSettings;
use hlsvault_store::S3Settings;
pub use hlsvault_store::Secret;
pub use load::load;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the archive goes.
    pub storage: Storage,
    /// The streams to archive, in file order.
    pub streams: Vec<StreamConfig>,
    /// The archive sent out again, each a delay behind (`[[playouts]]`).
    pub playouts: Vec<PlayoutConfig>,
    /// How often each stream's figures are logged while running.
    pub stats_interval: Duration,
    /// Playback over HTTP (`hlsvault serve`, and `run` when present).
    pub serve: Option<ServeConfig>,
    /// The `[plugins.NAME]` tables, by name.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// Where compiled plugins are kept between runs (`plugin_cache`;
    /// default `$XDG_CACHE_HOME/hlsvault/plugins` or
    /// `~/.cache/hlsvault/plugins`; with neither, and never in a shared
    /// temporary directory: none, plugins compile at every start).
    pub plugin_cache: Option<PathBuf>,
    /// What the archiver keeps between runs (`state_dir`; default
    /// `/var/lib/hlsvault` for root, else `$XDG_STATE_HOME/hlsvault` or
    /// `~/.local/state/hlsvault`): the spool, the plugin cache's key.
    pub state_dir: PathBuf,
    /// Several machines, one archive (`[cluster]`); None: this process
    /// records every stream.
    pub cluster: Option<hlsvault_cluster::ClusterSettings>,
}

impl Config {
    /// Where compiled plugins are cached, with the key that signs them kept
    /// in the state directory.
    pub fn plugin_cache_location(&self) -> Option<hlsvault_plugin::CacheLocation> {
        self.plugin_cache
            .clone()
            .map(|dir| hlsvault_plugin::CacheLocation {
                dir,
                key: self.state_dir.join("plugin-cache.key"),
            })
    }
}

/// One `[[playouts]]` table: a stream's archive sent out again as it
/// grows, `delay` behind its live edge (a timeshifted channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayoutConfig {
    /// Its name, in figures and logs.
    pub name: String,
    /// The stream (of `[[streams]]`) it plays.
    pub stream: String,
    /// Where it sends.
    pub to: hlsvault_send::Destination,
    /// How far behind the live edge.
    pub delay: Duration,
    /// Null packets put back to the PCR-derived rate.
    pub cbr: bool,
}

/// The `[storage]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// The backend that holds the archive.
    pub store: Store,
    /// Every object waits on disk (in `state_dir`) until it is stored, so a
    /// killed run loses none and the next one stores them first. Off
    /// (diskless), objects wait in memory, bounded by `queue_memory`, and
    /// what does not fit while the store is down is refused (counted).
    pub spool: bool,
    /// Uploads in flight at once, across all streams.
    pub upload_concurrency: usize,
    /// Bytes each stream's upload queue holds in memory (default 64 MiB).
    pub queue_memory: usize,
    /// How `hours.log` hands out each hour's playlist.
    pub urls: Urls,
    /// Validity of presigned URLs (at most 7 days: SigV4).
    pub url_expiry: Duration,
    /// Whole hours older than this are deleted (both backends).
    pub retention: Option<Duration>,
    /// The oldest unheld hours of any stream are deleted while the
    /// archive holds more.
    pub retention_size: Option<u64>,
}

/// The backend that holds the archive.
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    /// A local directory; object keys are relative paths under `root`.
    Fs {
        /// The directory.
        root: PathBuf,
    },
    /// An S3-compatible bucket (AWS, MinIO, Garage), path-style.
    S3(S3Settings),
}

/// The `[serve]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Bearer tokens the playback endpoints require (none: open): the
    /// file's and those of `HLSVAULT_SERVE_TOKENS`, comma-separated.
    pub tokens: Vec<Secret>,
    /// Origins browsers may play from (`"*"`: any).
    pub cors_origins: Vec<String>,
    /// What clients may hold of the server.
    pub limits: HttpLimits,
    /// Longest clip one export may ask for.
    pub export_max: Duration,
}

/// Longest clip an export may ask for, unless `[serve] export_max` says.
pub const DEFAULT_EXPORT_MAX: Duration = Duration::from_secs(24 * 3600);

/// What clients may hold of the playback server (`[serve]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Time a handler may take (it waits on the store) before it answers 503.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// One stream to archive.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Name, used as the stream's folder in the archive.
    pub name: String,
    /// Target segment duration: cut at the first keyframe at or after it.
    pub segment_duration: Duration,
    /// Hard cap: cut without a keyframe past this (default: 5 × target,
    /// and at least 30 s, as a 10 s GOP with 1 s targets cuts at
    /// keyframes).
    pub max_segment: Duration,
    /// Which pictures may start a segment.
    pub keyframes: Keyframes,
    /// The program to time and keep: a `program_number`, or "all" (the
    /// whole multiplex, timed by the automatic choice). Default: the first
    /// program with a PMT and video, else with audio.
    pub program: Option<ProgramKey>,
    /// Null packets (PID 8191): dropped (the default) or kept bit-exact.
    pub null_packets: NullPackets,
    /// A SCTE-35 splice point starts a segment at its keyframe, so that a
    /// break's edges fall on segment boundaries (default true).
    pub cut_at_splice: bool,
    /// Cuts fall at the first keyframe at or after each multiple of the
    /// segment duration on the stream's PTS timeline (`aligned_cuts`), so
    /// that independent recorders of one stream cut the same segments
    /// (always, under `[cluster]`).
    pub aligned_cuts: bool,
    /// The tags SCTE-35 markers become in the playlists.
    pub scte35_tags: Scte35Tags,
    /// Segments listed in `live.m3u8`.
    pub live_window: usize,
    /// The stream's oldest unheld hours are deleted while it holds more.
    pub retention_size: Option<u64>,
    /// Silence between datagrams longer than this is a gap in the timeline.
    pub max_gap: Duration,
    /// A live stream silent this long ends its segment and is "stalled".
    pub stall_timeout: Duration,
    /// Where the datagrams come from.
    pub source: Source,
    /// The plugins this stream runs, by `[plugins.NAME]`, in order.
    pub plugins: Vec<String>,
    /// The cluster's nodes that may record it (`nodes`; empty: any).
    pub nodes: Vec<String>,
}

impl StreamConfig {
    /// What the stream keeps of its multiplex, for the TS layer.
    pub fn selection(&self) -> hlsvault_ts::program::Selection {
        use hlsvault_ts::program::{ProgramChoice, Selection};
        Selection {
            program: match self.program {
                Some(ProgramKey::Number(n)) => ProgramChoice::Number(n),
                _ => ProgramChoice::Auto,
            },
            whole_multiplex: self.program == Some(ProgramKey::All),
            keep_nulls: self.null_packets == NullPackets::Keep,
        }
    }
}

/// Where a stream's datagrams come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Replay a capture file (pcap or pcapng).
    PcapFile {
        /// The file.
        path: PathBuf,
        /// How fast.
        pace: Pace,
        /// The destination of the stream's datagrams in it.
        dst: SocketAddr,
    },
    /// Capture live with libpcap on an interface (root or CAP_NET_RAW).
    Pcap {
        /// The interface, by name or address.
        interface: String,
        /// What it receives.
        endpoint: Endpoint,
        /// The kernel's capture buffer.
        buffer_bytes: u64,
    },
    /// Receive on plain UDP sockets (no privilege needed).
    Udp {
        /// The interface to join on, by name or address (else as routed).
        interface: Option<String>,
        /// What it receives.
        endpoint: Endpoint,
        /// The socket's receive buffer.
        buffer_bytes: u64,
    },
}

impl Source {
    /// The destination address and port of the stream's datagrams.
    pub fn dst(&self) -> SocketAddr {
        self.endpoint().dst()
    }

    /// What it receives (a file: its destination, from any sender).
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Source::PcapFile { dst, .. } => Endpoint {
                group: dst.ip(),
                port: dst.port(),
                source: None,
            },
            Source::Pcap { endpoint, .. } | Source::Udp { endpoint, .. } => *endpoint,
        }
    }

    /// The kernel buffer of a live source.
    pub fn receive_buffer(&self) -> Option<u64> {
        match self {
            Source::PcapFile { .. } => None,
            Source::Pcap { buffer_bytes, .. } | Source::Udp { buffer_bytes, .. } => {
                Some(*buffer_bytes)
            }
        }
    }

    /// Whether the source is the live network (as opposed to a file).
    pub fn is_live(&self) -> bool {
        !matches!(self, Source::PcapFile { .. })
    }

    /// The capture file, for a file source.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Source::PcapFile { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// The `program` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKey {
    /// This `program_number`, alone.
    Number(u16),
    /// Every program of the multiplex.
    All,
}

/// The `null_packets` key.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NullPackets {
    /// Not stored (they can be a third of a CBR feed).
    #[default]
    Drop,
    /// Stored: the archive is the stream bit for bit.
    Keep,
}

/// The `scte35_tags` key.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Scte35Tags {
    /// `#EXT-X-DATERANGE` with `SCTE35-OUT`/`-IN`/`-CMD`.
    #[default]
    Daterange,
    /// `#EXT-X-CUE-OUT` and `#EXT-X-CUE-IN`, for older ad stacks.
    Cue,
    /// None (markers are still counted).
    None,
}

impl From<Scte35Tags> for hlsvault_hls::MarkerStyle {
    fn from(tags: Scte35Tags) -> Self {
        match tags {
            Scte35Tags::Daterange => hlsvault_hls::MarkerStyle::DateRange,
            Scte35Tags::Cue => hlsvault_hls::MarkerStyle::Cue,
            Scte35Tags::None => hlsvault_hls::MarkerStyle::None,
        }
    }
}

/// Which pictures may start a segment.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Keyframes {
    /// Pictures a decoder starts from whole: H.264 IDR or I with a
    /// recovery point of 0, HEVC IRAP, MPEG-2 I.
    #[default]
    Strict,
    /// Also recovery points with a count (periodic intra refresh): the
    /// segment decodes whole from its start after that many frames.
    Recovery,
}

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, as a path: `streams[1] ("ch2").source.port`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything wrong with a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The file that was read.
    pub file: PathBuf,
    /// The problems, in file order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {n} problem{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {}: {}: {}", self.file.display(), p.key, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
