//! The file as written: serde structs for parsing only, with the defaults
//! of keys left out. [`super::validate`] turns them into the validated
//! types.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Dict, Value};
use serde::{Deserialize, Deserializer};

use super::{HttpLimits, Keyframes, NullPackets, ProgramKey, Scte35Tags};
use hlsvault_capture::Pace;
use hlsvault_plugin::OnError;
use hlsvault_store::Secret;

/// The file's top level, before each part is checked on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopLevel {
    #[serde(default)]
    pub storage: Option<Value>,
    #[serde(default)]
    pub defaults: Option<Dict>,
    #[serde(default)]
    pub streams: Vec<Value>,
    #[serde(default)]
    pub playouts: Vec<Value>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub stats_interval: Option<Duration>,
    #[serde(default)]
    pub serve: Option<Value>,
    #[serde(default)]
    pub plugins: Option<Dict>,
    #[serde(default)]
    pub plugin_cache: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub cluster: Option<Value>,
}

/// The `[cluster]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClusterTable {
    pub etcd: Vec<String>,
    pub node: Option<String>,
    #[serde(default = "one")]
    pub redundancy: u8,
    #[serde(default = "default_lease", deserialize_with = "duration")]
    pub lease: Duration,
}

fn one() -> u8 {
    1
}

fn default_lease() -> Duration {
    Duration::from_secs(4)
}

/// Keys a `[defaults]` table may set for every stream.
pub(super) const DEFAULTABLE: &[&str] = &[
    "segment_duration",
    "max_segment_duration",
    "keyframes",
    "program",
    "null_packets",
    "cut_at_splice",
    "aligned_cuts",
    "scte35_tags",
    "live_window",
    "retention_size",
    "max_gap",
    "stall_timeout",
    "plugins",
];

/// The `[storage]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StorageTable {
    #[serde(default)]
    pub backend: Backend,
    #[serde(default = "default_root")]
    pub root: PathBuf,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub prefix: Option<String>,
    /// Else `AWS_ACCESS_KEY_ID`.
    pub access_key: Option<Secret>,
    /// Else `AWS_SECRET_ACCESS_KEY`.
    pub secret_key: Option<Secret>,
    #[serde(default)]
    pub create_bucket: bool,
    #[serde(default = "yes")]
    pub spool: bool,
    /// Replaced by `state_dir` and `spool`: named in a problem.
    pub spool_dir: Option<PathBuf>,
    #[serde(default = "default_concurrency")]
    pub upload_concurrency: usize,
    #[serde(default, deserialize_with = "opt_size")]
    pub queue_memory: Option<u64>,
    #[serde(default)]
    pub urls: UrlMode,
    #[serde(default = "default_expiry", deserialize_with = "duration")]
    pub url_expiry: Duration,
    pub public_base_url: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention: Option<Duration>,
    #[serde(default, deserialize_with = "opt_size")]
    pub retention_size: Option<u64>,
}

impl Default for StorageTable {
    fn default() -> Self {
        StorageTable {
            backend: Backend::Fs,
            root: default_root(),
            endpoint: None,
            bucket: None,
            region: default_region(),
            prefix: None,
            access_key: None,
            secret_key: None,
            create_bucket: false,
            spool: true,
            spool_dir: None,
            upload_concurrency: default_concurrency(),
            queue_memory: None,
            urls: UrlMode::Relative,
            url_expiry: default_expiry(),
            public_base_url: None,
            retention: None,
            retention_size: None,
        }
    }
}

/// `backend`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Backend {
    #[default]
    Fs,
    S3,
}

/// `urls`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub(super) enum UrlMode {
    #[default]
    Relative,
    Public,
    Presigned,
}

/// The longest validity SigV4 allows a presigned URL, and the default.
pub(super) const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

fn default_expiry() -> Duration {
    MAX_EXPIRY
}

fn default_concurrency() -> usize {
    4
}

fn default_region() -> String {
    "us-east-1".into()
}

fn yes() -> bool {
    true
}

fn default_root() -> PathBuf {
    PathBuf::from("archive")
}

/// The `[serve]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServeTable {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Also from `HLSVAULT_SERVE_TOKENS`, comma-separated.
    #[serde(default)]
    pub tokens: Vec<Secret>,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_header_timeout", deserialize_with = "duration")]
    pub header_timeout: Duration,
    #[serde(default = "default_request_timeout", deserialize_with = "duration")]
    pub request_timeout: Duration,
    #[serde(default = "default_export_max", deserialize_with = "duration")]
    pub export_max: Duration,
}

fn default_export_max() -> Duration {
    super::DEFAULT_EXPORT_MAX
}

fn default_max_connections() -> usize {
    HttpLimits::default().max_connections
}

fn default_header_timeout() -> Duration {
    HttpLimits::default().header_timeout
}

fn default_request_timeout() -> Duration {
    HttpLimits::default().request_timeout
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// One `[[streams]]` table, merged over `[defaults]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamTable {
    pub name: String,
    #[serde(default = "default_segment", deserialize_with = "duration")]
    pub segment_duration: Duration,
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_segment_duration: Option<Duration>,
    #[serde(default)]
    pub keyframes: Keyframes,
    #[serde(default, deserialize_with = "opt_program")]
    pub program: Option<ProgramKey>,
    #[serde(default)]
    pub null_packets: NullPackets,
    #[serde(default = "default_true")]
    pub cut_at_splice: bool,
    #[serde(default)]
    pub aligned_cuts: bool,
    #[serde(default)]
    pub scte35_tags: Scte35Tags,
    #[serde(default = "default_window")]
    pub live_window: usize,
    #[serde(default, deserialize_with = "opt_size")]
    pub retention_size: Option<u64>,
    #[serde(default = "default_gap", deserialize_with = "duration")]
    pub max_gap: Duration,
    #[serde(default = "default_stall", deserialize_with = "duration")]
    pub stall_timeout: Duration,
    pub source: SourceTable,
    #[serde(default)]
    pub plugins: Vec<String>,
    #[serde(default)]
    pub nodes: Vec<String>,
}

fn default_true() -> bool {
    true
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

/// One `[[playouts]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlayoutTable {
    pub name: String,
    pub stream: String,
    pub to: hlsvault_send::Destination,
    #[serde(deserialize_with = "duration")]
    pub delay: Duration,
    #[serde(default)]
    pub cbr: bool,
}

/// A stream's `source` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceTable {
    #[serde(default)]
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    pub interface: Option<String>,
    pub source_addr: Option<IpAddr>,
    #[serde(default, deserialize_with = "opt_size")]
    pub buffer_size: Option<u64>,
    pub group: IpAddr,
    #[serde(deserialize_with = "port")]
    pub port: u16,
    pub pace: Option<Pace>,
}

/// `kind`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub(super) enum SourceKind {
    PcapFile,
    #[default]
    Pcap,
    Udp,
}

impl SourceKind {
    pub fn is_live(self) -> bool {
        self != SourceKind::PcapFile
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::PcapFile => "pcap-file",
            SourceKind::Pcap => "pcap",
            SourceKind::Udp => "udp",
        }
    }
}

/// One `[plugins.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginTable {
    pub path: PathBuf,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_memory", deserialize_with = "size")]
    pub memory: u64,
    /// The plugin's own values (strings, numbers or booleans, handed over
    /// as strings).
    #[serde(default, deserialize_with = "values")]
    pub config: BTreeMap<String, String>,
}

fn default_timeout() -> Duration {
    Duration::from_millis(10)
}

fn default_memory() -> u64 {
    16 << 20
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

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_size(d).map(|s| s.unwrap_or_default())
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| serde::de::Error::custom(format!("port {n} is out of range 1..=65535")))
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

/// A config value a plugin gets as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Text(s) => s,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}
