//! The configuration file: one TOML file declares the store and many streams.
//!
//! Loaded with figment (the file, then `HLSVAULT_*` environment overrides,
//! `__` separating nested keys: `HLSVAULT_STORAGE__ROOT=/srv/archive`).
//! Every problem found is reported, each with the file, the key and the
//! reason; one bad stream does not hide the problems of the next.

mod plugins;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::{Deserialize, Deserializer};

pub use hlsvault_capture::Pace;
use hlsvault_plugin::PluginSettings;
use hlsvault_store::S3Settings;
pub use hlsvault_store::Secret;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the archive goes.
    pub storage: StorageConfig,
    /// The streams to archive, in file order.
    pub streams: Vec<StreamConfig>,
    /// How often each stream's figures are logged while running.
    pub stats_interval: Duration,
    /// Playback over HTTP (`hlsvault serve`, and `run` when present).
    pub serve: Option<ServeConfig>,
    /// The `[plugins.NAME]` tables, by name.
    pub plugins: BTreeMap<String, PluginSettings>,
    /// Where compiled plugins are kept between runs (`plugin_cache`;
    /// default `$XDG_CACHE_HOME/hlsvault/plugins` or
    /// `~/.cache/hlsvault/plugins`).
    pub plugin_cache: PathBuf,
}

fn default_plugin_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("hlsvault").join("plugins")
}

/// The `[serve]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// Bearer tokens the playback endpoints require (none: open); also
    /// from `HLSVAULT_SERVE_TOKENS`, comma-separated.
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// Origins browsers may play from (`"*"`: any).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

impl ServeConfig {
    /// The tokens from the file and the environment.
    pub fn tokens(&self) -> Vec<Secret> {
        let mut all = self.tokens.clone();
        if let Ok(v) = std::env::var("HLSVAULT_SERVE_TOKENS") {
            all.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(Secret::new),
            );
        }
        all
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Default of `stats_interval`.
const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);

/// The object store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Which backend holds the archive.
    #[serde(default)]
    pub backend: Backend,
    /// Root directory of the `fs` backend.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// S3 endpoint URL, e.g. `http://127.0.0.1:3900` (`s3`).
    pub endpoint: Option<String>,
    /// Bucket (`s3`).
    pub bucket: Option<String>,
    /// Region to sign for (`s3`); Garage's default is "garage".
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix inside the bucket (`s3`), without slashes at the ends.
    pub prefix: Option<String>,
    /// Access key (`s3`); else `AWS_ACCESS_KEY_ID`.
    pub access_key: Option<Secret>,
    /// Secret key (`s3`); else `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<Secret>,
    /// Create the bucket when it is missing (`s3`).
    #[serde(default)]
    pub create_bucket: bool,
    /// Where finished objects wait, in order, while the store is down
    /// (and across a restart). Without it they wait in memory, bounded by
    /// `queue_memory`, and what does not fit is refused (counted).
    pub spool_dir: Option<PathBuf>,
    /// Uploads in flight at once, across all streams.
    #[serde(default = "default_concurrency")]
    pub upload_concurrency: usize,
    /// Bytes each stream's upload queue holds in memory, e.g. "64MiB".
    #[serde(default, deserialize_with = "opt_size")]
    pub queue_memory: Option<u64>,
    /// How `hours.log` hands out each hour's playlist.
    #[serde(default)]
    pub urls: UrlMode,
    /// Validity of presigned URLs (at most 7 days: SigV4).
    #[serde(default = "default_expiry", deserialize_with = "duration")]
    pub url_expiry: Duration,
    /// Base URL that serves the store's keys (`urls = "public"`).
    pub public_base_url: Option<String>,
    /// Whole hours older than this are deleted (both backends).
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention: Option<Duration>,
}

/// How playlists are handed out (see [`crate::urls`]).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UrlMode {
    /// Paths relative to the stream's folder.
    #[default]
    Relative,
    /// Absolute URLs under `public_base_url`.
    Public,
    /// Presigned URLs of signed copies (`index.signed.m3u8`).
    Presigned,
}

fn default_expiry() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_concurrency() -> usize {
    4
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Fs,
            root: default_root(),
            endpoint: None,
            bucket: None,
            region: default_region(),
            prefix: None,
            access_key: None,
            secret_key: None,
            create_bucket: false,
            spool_dir: None,
            upload_concurrency: default_concurrency(),
            queue_memory: None,
            urls: UrlMode::Relative,
            url_expiry: default_expiry(),
            public_base_url: None,
            retention: None,
        }
    }
}

impl StorageConfig {
    /// Bytes each stream's upload queue holds in memory (default 64 MiB).
    pub fn queue_bytes(&self) -> usize {
        self.queue_memory.unwrap_or(64 << 20) as usize
    }

    /// The S3 credentials: the keys in the file, else the standard
    /// environment variables.
    pub fn credentials(&self) -> Option<(Secret, Secret)> {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        let access = self
            .access_key
            .clone()
            .or_else(|| env("AWS_ACCESS_KEY_ID"))?;
        let secret = self
            .secret_key
            .clone()
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))?;
        Some((access, secret))
    }

    /// What the S3 backend needs, when the backend is S3 and validation
    /// found endpoint, bucket and credentials.
    pub fn s3(&self) -> Option<S3Settings> {
        let (access_key, secret_key) = self.credentials()?;
        Some(S3Settings {
            endpoint: self.endpoint.clone()?,
            bucket: self.bucket.clone()?,
            region: self.region.clone(),
            prefix: self.prefix.clone(),
            access_key,
            secret_key,
        })
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_root() -> PathBuf {
    PathBuf::from("archive")
}

/// Storage backends.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// A local directory; object keys are relative paths.
    #[default]
    Fs,
    /// An S3-compatible bucket (AWS, MinIO, Garage), path-style.
    S3,
}

/// One stream to archive.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Name, used as the stream's folder in the archive.
    pub name: String,
    /// Target segment duration: cut at the first keyframe at or after it.
    #[serde(default = "default_segment", deserialize_with = "duration")]
    pub segment_duration: Duration,
    /// Hard cap: cut without a keyframe past this. Default: 5 × target,
    /// and at least 30 s (a 10 s GOP with 1 s targets cuts at keyframes).
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_segment_duration: Option<Duration>,
    /// Which pictures may start a segment.
    #[serde(default)]
    pub keyframes: Keyframes,
    /// The program to time and keep: a `program_number`, or "all" (the
    /// whole multiplex, timed by the automatic choice). Default: the first
    /// program with a PMT and video, else with audio.
    #[serde(default, deserialize_with = "opt_program")]
    pub program: Option<ProgramKey>,
    /// Null packets (PID 8191): dropped (the default) or kept bit-exact.
    #[serde(default)]
    pub null_packets: NullPackets,
    /// Segments listed in `live.m3u8`.
    #[serde(default = "default_window")]
    pub live_window: usize,
    /// Silence between datagrams longer than this is a gap in the timeline.
    #[serde(default = "default_gap", deserialize_with = "duration")]
    pub max_gap: Duration,
    /// A live stream silent this long ends its segment and is "stalled".
    #[serde(default = "default_stall", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    /// Where the datagrams come from.
    pub source: SourceConfig,
    /// The plugins this stream runs, by `[plugins.NAME]`, in order.
    #[serde(default)]
    pub plugins: Vec<String>,
}

impl StreamConfig {
    /// The hard cap, with its default applied.
    pub fn max_segment(&self) -> Duration {
        self.max_segment_duration
            .unwrap_or((self.segment_duration * 5).max(MIN_DEFAULT_CAP))
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

fn opt_program<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ProgramKey>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) if t == "all" => Ok(Some(ProgramKey::All)),
        Raw::Number(n) if (1..=65535).contains(&n) => Ok(Some(ProgramKey::Number(n as u16))),
        Raw::Number(n) => Err(serde::de::Error::custom(format!(
            "program {n} is out of range 1..=65535 (a program_number from the PAT)"
        ))),
        Raw::Text(t) => Err(serde::de::Error::custom(format!(
            "\"{t}\" is not a program: write a program_number (e.g. 101) or \"all\""
        ))),
    }
}

/// The default hard cap is never below this: GOPs of broadcast encoders
/// reach 10 s, and a cut inside one makes a segment that does not decode.
const MIN_DEFAULT_CAP: Duration = Duration::from_secs(30);

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

fn default_segment() -> Duration {
    Duration::from_secs(6)
}
fn default_window() -> usize {
    5
}
fn default_gap() -> Duration {
    Duration::from_secs(1)
}
fn default_stall() -> Duration {
    Duration::from_secs(5)
}

/// Keys a `[defaults]` table may set for every stream.
const DEFAULTABLE: &[&str] = &[
    "segment_duration",
    "max_segment_duration",
    "keyframes",
    "program",
    "null_packets",
    "live_window",
    "max_gap",
    "stall_timeout",
    "plugins",
];

/// Where a stream's datagrams come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The kind of source (default: `pcap`, live on an interface).
    #[serde(default)]
    pub kind: SourceKind,
    /// Capture file (`pcap-file`).
    pub path: Option<PathBuf>,
    /// Network interface, by name or address (`pcap`, `udp`).
    pub interface: Option<String>,
    /// Source-specific multicast: only datagrams from this sender (`pcap`, `udp`).
    pub source_addr: Option<IpAddr>,
    /// Kernel capture or socket receive buffer (`pcap`, `udp`), e.g. "64MiB".
    #[serde(default, deserialize_with = "opt_size")]
    pub buffer_size: Option<u64>,
    /// Destination address of the stream's datagrams.
    pub group: IpAddr,
    /// Destination UDP port of the stream's datagrams.
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// Replay pace (`pcap-file`).
    pub pace: Option<Pace>,
}

impl SourceConfig {
    /// The replay pace, with its default.
    pub fn pace(&self) -> Pace {
        self.pace.unwrap_or_default()
    }

    /// The destination address and port of the stream's datagrams.
    pub fn dst(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.group, self.port)
    }

    /// The kernel buffer size, with its default (32 MiB).
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer_size.unwrap_or(32 << 20)
    }
}

/// Source kinds.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Replay a capture file (pcap or pcapng).
    PcapFile,
    /// Capture live with libpcap on an interface (root or CAP_NET_RAW).
    #[default]
    Pcap,
    /// Receive on a plain UDP socket (no privilege needed).
    Udp,
}

impl SourceKind {
    /// Whether the source is the live network (as opposed to a file).
    pub fn is_live(self) -> bool {
        self != SourceKind::PcapFile
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "\"{text}\" is not a duration ({e}); write e.g. \"6s\", \"500ms\", \"1h\""
        ))
    })
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<bytesize::ByteSize>()
        .map(|b| Some(b.as_u64()))
        .map_err(|e| {
            serde::de::Error::custom(format!(
                "\"{text}\" is not a size ({e}); write e.g. \"64MiB\""
            ))
        })
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| serde::de::Error::custom(format!("port {n} is out of range 1..=65535")))
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

/// The file's top level, before each part is checked on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    #[serde(default)]
    storage: Option<Value>,
    #[serde(default)]
    defaults: Option<Dict>,
    #[serde(default)]
    streams: Vec<Value>,
    #[serde(default, deserialize_with = "opt_duration")]
    stats_interval: Option<Duration>,
    #[serde(default)]
    serve: Option<Value>,
    #[serde(default)]
    plugins: Option<Dict>,
    #[serde(default)]
    plugin_cache: Option<PathBuf>,
}

/// Collects problems while the configuration is read.
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// Records every error of a figment extraction under `prefix`.
    fn figment(&mut self, prefix: &str, err: figment::Error) {
        for e in err {
            let mut key = prefix.to_string();
            for part in e.path.iter().filter(|p| *p != "default") {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(part);
            }
            if key.is_empty() {
                key.push_str("(top level)");
            }
            let source = e
                .metadata
                .as_ref()
                .filter(|m| m.name.contains("environment"))
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            self.add(key, format!("{}{source}", e.kind));
        }
    }

    /// Deserializes `value` as `T`, recording problems under `prefix`.
    fn parse<T: for<'de> Deserialize<'de>>(&mut self, prefix: &str, value: &Value) -> Option<T> {
        value
            .deserialize::<T>()
            .map_err(|e| self.figment(prefix, e))
            .ok()
    }
}

/// Loads and validates a configuration file (then `HLSVAULT_*` overrides).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |key: &str, reason: String| ConfigErrors {
        file: path.to_path_buf(),
        problems: vec![Problem {
            key: key.into(),
            reason,
        }],
    };
    // figment ignores a missing file; we do not.
    std::fs::metadata(path).map_err(|e| fail("(file)", format!("cannot read: {e}")))?;
    // Every top-level key is a table, so only nested keys (with `__`) are
    // overrides; HLSVAULT_LOG and friends belong to the command line.
    let env = Env::prefixed("HLSVAULT_")
        .filter(|k| k.as_str().contains("__"))
        .split("__");
    let figment = Figment::from(Toml::file_exact(path)).merge(env);
    let mut problems = Problems(Vec::new());
    let top: TopLevel = match figment.extract() {
        Ok(top) => top,
        Err(e) => {
            problems.figment("", e);
            return Err(ConfigErrors {
                file: path.to_path_buf(),
                problems: problems.0,
            });
        }
    };

    let storage = match &top.storage {
        Some(v) => problems
            .parse::<StorageConfig>("storage", v)
            .inspect(|s| validate_storage(s, &mut problems)),
        None => Some(StorageConfig::default()),
    };

    let defaults = top.defaults.unwrap_or_default();
    for key in defaults
        .keys()
        .filter(|k| !DEFAULTABLE.contains(&k.as_str()))
    {
        problems.add(
            format!("defaults.{key}"),
            format!(
                "not a stream default; allowed here: {}",
                DEFAULTABLE.join(", ")
            ),
        );
    }
    if top.streams.is_empty() {
        problems.add(
            "streams",
            "no [[streams]] declared: there is nothing to archive",
        );
    }

    let mut streams = Vec::new();
    let mut names = HashSet::new();
    for (i, raw) in top.streams.iter().enumerate() {
        let name = raw.find_ref("name").and_then(|v| v.as_str()).unwrap_or("?");
        let prefix = format!("streams[{i}] (\"{name}\")");
        let Some(dict) = raw.as_dict() else {
            problems.add(prefix, "must be a table");
            continue;
        };
        let mut merged = defaults.clone();
        merged.extend(dict.clone());
        let Some(s) = problems.parse::<StreamConfig>(&prefix, &Value::from(merged)) else {
            continue;
        };
        validate_stream(&s, &prefix, &mut problems);
        if !names.insert(s.name.clone()) {
            problems.add(
                format!("{prefix}.name"),
                format!("duplicate stream name \"{}\"", s.name),
            );
        }
        streams.push(s);
    }

    let mut endpoints = HashSet::new();
    for (i, s) in streams.iter().enumerate() {
        let src = &s.source;
        // UDP sockets tell senders apart (source-specific joins); one
        // libpcap capture demultiplexes by destination only.
        let sender = (src.kind == SourceKind::Udp)
            .then_some(src.source_addr)
            .flatten();
        let endpoint = (src.kind, src.interface.clone(), src.group, src.port, sender);
        if src.kind.is_live() && !endpoints.insert(endpoint) {
            problems.add(
                format!("streams[{i}] (\"{}\").source", s.name),
                format!(
                    "another stream already receives {}:{} on this interface",
                    src.group, src.port
                ),
            );
        }
    }
    let plugins = plugins::read(&top.plugins.unwrap_or_default(), &mut problems);
    for (i, s) in streams.iter().enumerate() {
        for name in s.plugins.iter().filter(|n| !plugins.contains_key(*n)) {
            problems.add(
                format!("streams[{i}] (\"{}\").plugins", s.name),
                format!("no [plugins.{name}] table declares \"{name}\""),
            );
        }
    }
    let serve = top
        .serve
        .as_ref()
        .and_then(|v| problems.parse::<ServeConfig>("serve", v));
    let stats_interval = top.stats_interval.unwrap_or(DEFAULT_STATS_INTERVAL);
    if stats_interval < Duration::from_secs(1) {
        problems.add("stats_interval", "must be at least 1s");
    }

    match storage {
        Some(storage) if problems.0.is_empty() => Ok(Config {
            storage,
            streams,
            stats_interval,
            serve,
            plugins,
            plugin_cache: top.plugin_cache.unwrap_or_else(default_plugin_cache),
        }),
        _ => Err(ConfigErrors {
            file: path.to_path_buf(),
            problems: problems.0,
        }),
    }
}

fn validate_storage(s: &StorageConfig, p: &mut Problems) {
    if !(1..=64).contains(&s.upload_concurrency) {
        p.add("storage.upload_concurrency", "must be between 1 and 64");
    }
    if s.queue_memory.is_some_and(|m| m < 1 << 20) {
        p.add("storage.queue_memory", "must be at least 1MiB");
    }
    match s.urls {
        UrlMode::Presigned if s.backend != Backend::S3 => {
            p.add("storage.urls", "\"presigned\" needs backend = \"s3\"")
        }
        UrlMode::Public if s.public_base_url.is_none() => p.add(
            "storage.public_base_url",
            "required for urls = \"public\" (the URL that serves the store's keys)",
        ),
        _ => {}
    }
    if s.retention.is_some_and(|r| r < Duration::from_secs(3600)) {
        p.add(
            "storage.retention",
            "must be at least 1h (hours are deleted whole)",
        );
    }
    if s.url_expiry < Duration::from_secs(1) || s.url_expiry > default_expiry() {
        p.add(
            "storage.url_expiry",
            "must be between 1s and 7d (the SigV4 limit)",
        );
    }
    if let Some(base) = &s.public_base_url {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            p.add(
                "storage.public_base_url",
                format!("\"{base}\" is not an http:// or https:// URL"),
            );
        }
    }
    let s3_only = ["endpoint", "bucket", "prefix", "access_key", "secret_key"];
    match s.backend {
        Backend::Fs => {
            let set = [
                s.endpoint.is_some(),
                s.bucket.is_some(),
                s.prefix.is_some(),
                s.access_key.is_some(),
                s.secret_key.is_some(),
            ];
            for (key, _) in s3_only.iter().zip(set).filter(|(_, set)| *set) {
                p.add(
                    format!("storage.{key}"),
                    "does not apply to backend = \"fs\"",
                );
            }
        }
        Backend::S3 => {
            match s.endpoint.as_deref() {
                None => p.add("storage.endpoint", "required for backend = \"s3\""),
                Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => p.add(
                    "storage.endpoint",
                    format!("\"{e}\" is not an http:// or https:// URL"),
                ),
                Some(_) => {}
            }
            match s.bucket.as_deref() {
                None => p.add("storage.bucket", "required for backend = \"s3\""),
                Some(b)
                    if !(3..=63).contains(&b.len())
                        || !b.bytes().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'
                        }) =>
                {
                    p.add(
                        "storage.bucket",
                        format!("\"{b}\" is not a bucket name (3-63 of a-z 0-9 - .)"),
                    )
                }
                Some(_) => {}
            }
            if let Some(prefix) = &s.prefix {
                if hlsvault_store::validate_key(prefix).is_err() {
                    p.add("storage.prefix", format!("\"{prefix}\" is not a relative key path without '..', empty or hidden parts"));
                }
            }
            if s.region.is_empty() {
                p.add("storage.region", "must not be empty");
            }
            if s.credentials().is_none() {
                p.add(
                    "storage.access_key",
                    "no credentials: set access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                );
            }
        }
    }
}

fn validate_stream(s: &StreamConfig, prefix: &str, p: &mut Problems) {
    let name_ok = !s.name.is_empty()
        && !s.name.starts_with('.')
        && s.name.len() <= 64
        && s.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !name_ok {
        p.add(
            format!("{prefix}.name"),
            "must be 1-64 characters of A-Z a-z 0-9 - _ . (it names the stream's folder) and not start with '.'",
        );
    }
    if s.segment_duration < Duration::from_millis(500)
        || s.segment_duration > Duration::from_secs(60)
    {
        p.add(
            format!("{prefix}.segment_duration"),
            "must be between 500ms and 60s",
        );
    }
    if s.max_segment() < s.segment_duration {
        p.add(
            format!("{prefix}.max_segment_duration"),
            "must not be shorter than segment_duration",
        );
    }
    if s.live_window == 0 {
        p.add(format!("{prefix}.live_window"), "must be at least 1");
    }
    if s.max_gap < Duration::from_millis(100) {
        p.add(format!("{prefix}.max_gap"), "must be at least 100ms");
    }
    if s.stall_timeout < Duration::from_millis(100) {
        p.add(format!("{prefix}.stall_timeout"), "must be at least 100ms");
    }
    let src = &s.source;
    let key = |k: &str| format!("{prefix}.source.{k}");
    let kind = match src.kind {
        SourceKind::PcapFile => "pcap-file",
        SourceKind::Pcap => "pcap",
        SourceKind::Udp => "udp",
    };
    let not_for = |p: &mut Problems, k: &str, set: bool| {
        if set {
            p.add(key(k), format!("does not apply to kind = \"{kind}\""));
        }
    };
    if src.kind.is_live() {
        not_for(p, "path", src.path.is_some());
        not_for(p, "pace", src.pace.is_some());
        match &src.interface {
            None if src.kind == SourceKind::Pcap => {
                p.add(key("interface"), "required for kind = \"pcap\"")
            }
            Some(i) if i.is_empty() => p.add(key("interface"), "must not be empty"),
            _ => {}
        }
        if src.group.is_ipv6() {
            p.add(
                key("group"),
                "live capture of IPv6 is not supported yet (IPv4 groups and addresses are)",
            );
        }
        if src.source_addr.is_some() && !src.group.is_multicast() {
            p.add(
                key("source_addr"),
                "source-specific multicast needs a multicast group",
            );
        }
        if src
            .buffer_size
            .is_some_and(|b| !(64 << 10..=2 << 30).contains(&b))
        {
            p.add(key("buffer_size"), "must be between 64KiB and 2GiB");
        }
    } else {
        not_for(p, "interface", src.interface.is_some());
        not_for(p, "source_addr", src.source_addr.is_some());
        not_for(p, "buffer_size", src.buffer_size.is_some());
        match &src.path {
            None => p.add(key("path"), "required for kind = \"pcap-file\""),
            Some(path) if !path.is_file() => p.add(
                key("path"),
                format!("{} is not a readable file", path.display()),
            ),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, ConfigErrors> {
        let dir = std::env::temp_dir().join(format!("hlsvault-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("c.pcap");
        std::fs::write(&pcap, b"").unwrap();
        let file = dir.join(format!(
            "{:x}.toml",
            text.len() * 31 + text.bytes().map(|b| b as usize).sum::<usize>()
        ));
        std::fs::write(&file, text.replace("PCAP", &pcap.display().to_string())).unwrap();
        load(&file)
    }

    fn keys(e: ConfigErrors) -> Vec<String> {
        e.problems
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.reason))
            .collect()
    }

    const GOOD: &str = r#"
[storage]
backend = "fs"
root = "archive"

[defaults]
segment_duration = "4s"

[[streams]]
name = "ch1"
live_window = 5
[streams.source]
kind = "pcap-file"
path = "PCAP"
group = "239.10.0.1"
port = 5000
pace = "fast"

[[streams]]
name = "ch2"
segment_duration = "6s"
[streams.source]
kind = "pcap-file"
path = "PCAP"
group = "239.10.0.2"
port = 5000
"#;

    #[test]
    fn good_config_with_defaults_table() {
        let c = load_str(GOOD).unwrap();
        assert_eq!(c.streams.len(), 2);
        assert_eq!(c.streams[0].segment_duration, Duration::from_secs(4));
        assert_eq!(c.streams[1].segment_duration, Duration::from_secs(6));
        assert_eq!(c.streams[0].max_segment(), Duration::from_secs(30));
        assert_eq!(c.streams[1].keyframes, Keyframes::Strict);
        assert_eq!(c.streams[1].selection(), Default::default());
        assert_eq!(c.storage.backend, Backend::Fs);
        assert_eq!(c.streams[0].stall_timeout, Duration::from_secs(5));
    }

    #[test]
    fn storage_backends_urls_and_secrets() {
        let s3 = GOOD.replacen(
            "backend = \"fs\"\nroot = \"archive\"",
            "backend = \"s3\"\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"tv-archive\"\nregion = \"garage\"\naccess_key = \"GKid\"\nsecret_key = \"hush\"\nurls = \"presigned\"\nurl_expiry = \"2d\"\nspool_dir = \"/tmp/spool\"",
            1,
        );
        let c = load_str(&s3).unwrap();
        assert_eq!(c.storage.backend, Backend::S3);
        assert_eq!(c.storage.url_expiry, Duration::from_secs(2 * 86400));
        assert!(
            !format!("{:?}", c.storage).contains("hush"),
            "secrets never show"
        );

        let bad = s3
            .replace("endpoint = \"http://127.0.0.1:3900\"\n", "")
            .replace("tv-archive", "TV")
            .replace("2d", "8d");
        assert_eq!(
            keys(load_str(&bad).unwrap_err()),
            vec![
                "storage.url_expiry: must be between 1s and 7d (the SigV4 limit)",
                "storage.endpoint: required for backend = \"s3\"",
                "storage.bucket: \"TV\" is not a bucket name (3-63 of a-z 0-9 - .)",
            ]
        );
        let fs = GOOD.replacen(
            "root = \"archive\"",
            "root = \"archive\"\nurls = \"presigned\"\nbucket = \"b\"",
            1,
        );
        assert_eq!(
            keys(load_str(&fs).unwrap_err()),
            vec![
                "storage.urls: \"presigned\" needs backend = \"s3\"",
                "storage.bucket: does not apply to backend = \"fs\"",
            ]
        );
        let public = GOOD.replacen(
            "root = \"archive\"",
            "root = \"archive\"\nurls = \"public\"",
            1,
        );
        assert_eq!(
            keys(load_str(&public).unwrap_err()),
            vec!["storage.public_base_url: required for urls = \"public\" (the URL that serves the store's keys)"]
        );
    }

    #[test]
    fn plugins_are_declared_once_and_listed_by_streams() {
        let with = GOOD.replacen(
            "[defaults]",
            "[plugins.nulls]\npath = \"drop-pids.wasm\"\non_error = \"fail-closed\"\ntimeout = \"5ms\"\nconfig = { pids = 8191, note = \"x\", on = true }\n\n[defaults]\nplugins = [\"nulls\"]",
            1,
        );
        let c = load_str(&with).unwrap();
        let p = &c.plugins["nulls"];
        assert_eq!(
            (p.name.as_str(), p.on_error, p.timeout, p.memory),
            (
                "nulls",
                hlsvault_plugin::OnError::FailClosed,
                Duration::from_millis(5),
                16 << 20
            )
        );
        assert_eq!(p.values["pids"], "8191");
        assert_eq!(p.values["on"], "true");
        assert_eq!(c.streams[0].plugins, vec!["nulls".to_string()]);

        let bad = with
            .replace(
                "timeout = \"5ms\"",
                "timeout = \"5s\"\nmemory = \"1KiB\"\nfuel = 3",
            )
            .replace("plugins = [\"nulls\"]", "plugins = [\"nope\"]");
        let got = keys(load_str(&bad).unwrap_err());
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("plugins.nulls.fuel: unknown field: found `fuel`"),
            "{got:?}"
        );
        // [defaults] gave both streams the plugin.
        assert_eq!(
            got[1],
            "streams[0] (\"ch1\").plugins: no [plugins.nope] table declares \"nope\""
        );
        let limits = with.replace("timeout = \"5ms\"", "timeout = \"5s\"\nmemory = \"1KiB\"");
        assert_eq!(
            keys(load_str(&limits).unwrap_err()),
            vec![
                "plugins.nulls.timeout: must be between 100us and 1s (a call runs on the archive's path)",
                "plugins.nulls.memory: must be between 1MiB and 1GiB"
            ]
        );
    }

    #[test]
    fn live_sources_and_keys_that_do_not_apply() {
        let live = GOOD
            .replacen(
                "kind = \"pcap-file\"\npath = \"PCAP\"",
                "kind = \"udp\"\ninterface = \"lo\"\nbuffer_size = \"8MiB\"",
                1,
            )
            .replacen("pace = \"fast\"\n", "", 1);
        let c = load_str(&live).unwrap();
        assert_eq!(c.streams[0].source.kind, SourceKind::Udp);
        assert_eq!(c.streams[0].source.buffer_bytes(), 8 << 20);

        // Two live streams cannot receive the same destination on one interface.
        let twice = live.replacen("239.10.0.2", "239.10.0.1", 1).replacen(
            "kind = \"pcap-file\"\npath = \"PCAP\"",
            "kind = \"udp\"\ninterface = \"lo\"",
            1,
        );
        let got = keys(load_str(&twice).unwrap_err());
        assert_eq!(
            got,
            vec!["streams[1] (\"ch2\").source: another stream already receives 239.10.0.1:5000 on this interface"]
        );

        let bad = GOOD.replacen(
            "kind = \"pcap-file\"",
            "kind = \"pcap\"\nbuffer_size = \"lots\"",
            1,
        );
        let got = keys(load_str(&bad).unwrap_err());
        assert!(
            got[0].starts_with("streams[0] (\"ch1\").source.buffer_size: \"lots\" is not a size"),
            "{got:?}"
        );

        let v6 = live.replacen("group = \"239.10.0.1\"", "group = \"ff3e::1\"", 1);
        let got = keys(load_str(&v6).unwrap_err());
        assert_eq!(
            got,
            vec!["streams[0] (\"ch1\").source.group: live capture of IPv6 is not supported yet (IPv4 groups and addresses are)"]
        );

        // Written out, or left to its default: pcap.
        for kind in ["kind = \"pcap\"\n", ""] {
            let bad = GOOD.replacen("kind = \"pcap-file\"\n", kind, 1);
            let got = keys(load_str(&bad).unwrap_err());
            assert_eq!(
                got,
                vec![
                    "streams[0] (\"ch1\").source.path: does not apply to kind = \"pcap\"",
                    "streams[0] (\"ch1\").source.pace: does not apply to kind = \"pcap\"",
                    "streams[0] (\"ch1\").source.interface: required for kind = \"pcap\"",
                ]
            );
        }
        let bad = GOOD.replacen(
            "pace = \"fast\"",
            "pace = \"fast\"\ninterface = \"eth0\"",
            1,
        );
        let got = keys(load_str(&bad).unwrap_err());
        assert_eq!(
            got,
            vec!["streams[0] (\"ch1\").source.interface: does not apply to kind = \"pcap-file\""]
        );
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let bad = GOOD
            .replace("port = 5000\npace", "port = 70000\npace")
            .replace(
                "segment_duration = \"6s\"",
                "segment_duration = \"6 parsecs\"",
            )
            .replace(
                "live_window = 5",
                "live_window = 5\nsegmnt_duration = \"2s\"",
            );
        let got = keys(load_str(&bad).unwrap_err());
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("streams[0] (\"ch1\")"), "{got:?}");
        assert!(got[0].contains("segmnt_duration"), "{got:?}");
        assert!(
            got[1].starts_with("streams[1] (\"ch2\").segment_duration"),
            "{got:?}"
        );
        assert!(got[1].contains("6 parsecs"), "{got:?}");

        let bad = GOOD.replace("port = 5000\npace", "port = 70000\npace");
        let got = keys(load_str(&bad).unwrap_err());
        assert_eq!(
            got,
            vec!["streams[0] (\"ch1\").source.port: port 70000 is out of range 1..=65535"]
        );
    }

    #[test]
    fn program_and_null_packets_keys() {
        use hlsvault_ts::program::ProgramChoice;
        let c = load_str(&GOOD.replace(
            "live_window = 5",
            "live_window = 5\nprogram = 101\nnull_packets = \"keep\"",
        ))
        .unwrap();
        let sel = c.streams[0].selection();
        assert_eq!(sel.program, ProgramChoice::Number(101));
        assert!(!sel.whole_multiplex && sel.keep_nulls);
        let c = load_str(&GOOD.replace("live_window = 5", "live_window = 5\nprogram = \"all\""))
            .unwrap();
        assert!(c.streams[0].selection().whole_multiplex);
        let bad = GOOD.replace("live_window = 5", "live_window = 5\nprogram = \"first\"");
        let got = keys(load_str(&bad).unwrap_err());
        assert!(
            got[0].starts_with("streams[0] (\"ch1\").program: \"first\" is not a program"),
            "{got:?}"
        );
        let bad = GOOD.replace("live_window = 5", "live_window = 5\nprogram = 0");
        let got = keys(load_str(&bad).unwrap_err());
        assert!(got[0].contains("program 0 is out of range"), "{got:?}");
    }

    #[test]
    fn duplicate_names_unknown_top_level_and_missing_file() {
        let got = keys(load_str(&GOOD.replace("\"ch2\"", "\"ch1\"")).unwrap_err());
        assert_eq!(
            got,
            vec!["streams[1] (\"ch1\").name: duplicate stream name \"ch1\""]
        );

        let got = keys(load_str(&format!("{GOOD}\n[storag]\nroot = \"x\"\n")).unwrap_err());
        assert!(
            got[0].starts_with("storag: unknown field: found `storag`"),
            "{got:?}"
        );

        let got = keys(
            load_str(&GOOD.replace(
                "path = \"PCAP\"\ngroup = \"239.10.0.1\"",
                "path = \"/nonexistent.pcap\"\ngroup = \"239.10.0.1\"",
            ))
            .unwrap_err(),
        );
        assert_eq!(
            got,
            vec!["streams[0] (\"ch1\").source.path: /nonexistent.pcap is not a readable file"]
        );

        let err = load(Path::new("/nonexistent/hlsvault.toml")).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/hlsvault.toml: (file): cannot read"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_and_kinds() {
        let got = keys(
            load_str(&GOOD.replace(
                "kind = \"pcap-file\"\npath = \"PCAP\"\ngroup = \"239.10.0.2\"",
                "kind = \"carrier-pigeon\"\npath = \"PCAP\"\ngroup = \"239.10.0.2\"",
            ))
            .unwrap_err(),
        );
        assert!(
            got[0].starts_with(
                "streams[1] (\"ch2\").source.kind: unknown variant: found `carrier-pigeon`"
            ),
            "{got:?}"
        );
        let got = keys(
            load_str(&GOOD.replace("group = \"239.10.0.1\"", "group = \"239.10.0.300\""))
                .unwrap_err(),
        );
        assert!(
            got[0].starts_with("streams[0] (\"ch1\").source.group"),
            "{got:?}"
        );
        let got = keys(load_str(&GOOD.replace("name = \"ch1\"", "name = \"../ch1\"")).unwrap_err());
        assert!(
            got[0].starts_with("streams[0] (\"../ch1\").name: must be"),
            "{got:?}"
        );
        let got = keys(
            load_str(&GOOD.replace(
                "segment_duration = \"4s\"",
                "segment_duration = \"4s\"\nport = 1",
            ))
            .unwrap_err(),
        );
        assert!(
            got[0].starts_with("defaults.port: not a stream default"),
            "{got:?}"
        );
    }
}
