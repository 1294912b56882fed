//! From the file as written to the validated types: every problem is
//! recorded with its key, and a part becomes its validated type only when
//! it has none.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use figment::value::Dict;

use super::load::Problems;
use super::schema::{
    Backend, ClusterTable, PlayoutTable, PluginTable, ServeTable, SourceKind, SourceTable,
    StorageTable, StreamTable, UrlMode, MAX_EXPIRY,
};
use super::{HttpLimits, PlayoutConfig, ServeConfig, Source, Storage, Store, StreamConfig};
use hlsvault_capture::Endpoint;
use hlsvault_hls::Urls;
use hlsvault_plugin::PluginSettings;
use hlsvault_store::{S3Settings, Secret};

/// The default hard cap is never below this: GOPs of broadcast encoders
/// reach 10 s, and a cut inside one makes a segment that does not decode.
const MIN_DEFAULT_CAP: Duration = Duration::from_secs(30);

/// Bytes each stream's upload queue holds in memory by default.
const DEFAULT_QUEUE_MEMORY: u64 = 64 << 20;

/// The kernel buffer of a live source by default.
const DEFAULT_BUFFER: u64 = 32 << 20;

/// The `[[playouts]]` tables, validated against the streams they play:
/// each names a declared stream, is at least two of its segments behind
/// (a segment is stored when it ends), and sends where no other does.
pub(super) fn playouts(
    raw: &[figment::value::Value],
    streams: &[StreamTable],
    p: &mut Problems,
) -> Vec<PlayoutConfig> {
    let mut out: Vec<PlayoutConfig> = Vec::new();
    for (i, value) in raw.iter().enumerate() {
        let name = value
            .find_ref("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let prefix = format!("playouts[{i}] (\"{name}\")");
        let Some(t) = p.parse::<PlayoutTable>(&prefix, value) else {
            continue;
        };
        let before = p.count();
        match streams.iter().find(|s| s.name == t.stream) {
            None => p.add(
                format!("{prefix}.stream"),
                format!("no [[streams]] table is named \"{}\"", t.stream),
            ),
            Some(s) if t.delay < s.segment_duration * 2 => p.add(
                format!("{prefix}.delay"),
                format!(
                    "must be at least two of the stream's segments ({}): a segment is stored when it ends",
                    humantime::format_duration(s.segment_duration * 2)
                ),
            ),
            Some(_) => {}
        }
        if out.iter().any(|o| o.name == t.name) {
            p.add(
                format!("{prefix}.name"),
                format!("duplicate playout name \"{}\"", t.name),
            );
        }
        if let Some(o) = out.iter().find(|o| o.to.addr == t.to.addr) {
            p.add(
                format!("{prefix}.to"),
                format!("playout \"{}\" already sends to {}", o.name, t.to.addr),
            );
        }
        if p.count() == before {
            out.push(PlayoutConfig {
                name: t.name,
                stream: t.stream,
                to: t.to,
                delay: t.delay,
                cbr: t.cbr,
            });
        }
    }
    out
}

/// The `[storage]` table, validated.
pub(super) fn storage(s: &StorageTable, p: &mut Problems) -> Option<Storage> {
    let before = p.count();
    if !(1..=64).contains(&s.upload_concurrency) {
        p.add("storage.upload_concurrency", "must be between 1 and 64");
    }
    if s.spool_dir.is_some() {
        p.add(
            "storage.spool_dir",
            "replaced by state_dir (top level; the spool is in STATE_DIR/spool) and storage.spool = true|false",
        );
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
    if s.retention_size == Some(0) {
        p.add("storage.retention_size", "must be more than 0 bytes");
    }
    if s.url_expiry < Duration::from_secs(1) || s.url_expiry > MAX_EXPIRY {
        p.add(
            "storage.url_expiry",
            "must be between 1s and 7d (the SigV4 limit)",
        );
    }
    if let Some(base) = &s.public_base_url {
        if !is_http(base) {
            p.add(
                "storage.public_base_url",
                format!("\"{base}\" is not an http:// or https:// URL"),
            );
        }
    }
    let store = match s.backend {
        Backend::Fs => fs_store(s, p),
        Backend::S3 => s3_store(s, p),
    };
    let urls = match s.urls {
        UrlMode::Relative => Urls::Relative,
        UrlMode::Public => Urls::Public {
            base: s.public_base_url.as_deref()?.trim_end_matches('/').into(),
        },
        UrlMode::Presigned => Urls::Presigned {
            expiry: s.url_expiry,
        },
    };
    (p.count() == before).then_some(Storage {
        store: store?,
        spool: s.spool,
        upload_concurrency: s.upload_concurrency,
        queue_memory: s.queue_memory.unwrap_or(DEFAULT_QUEUE_MEMORY) as usize,
        urls,
        url_expiry: s.url_expiry,
        retention: s.retention,
        retention_size: s.retention_size,
    })
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn fs_store(s: &StorageTable, p: &mut Problems) -> Option<Store> {
    let set = [
        ("endpoint", s.endpoint.is_some()),
        ("bucket", s.bucket.is_some()),
        ("prefix", s.prefix.is_some()),
        ("access_key", s.access_key.is_some()),
        ("secret_key", s.secret_key.is_some()),
    ];
    for (key, _) in set.iter().filter(|(_, set)| *set) {
        p.add(
            format!("storage.{key}"),
            "does not apply to backend = \"fs\"",
        );
    }
    Some(Store::Fs {
        root: s.root.clone(),
    })
}

fn s3_store(s: &StorageTable, p: &mut Problems) -> Option<Store> {
    match s.endpoint.as_deref() {
        None => p.add("storage.endpoint", "required for backend = \"s3\""),
        Some(e) if !is_http(e) => p.add(
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
            p.add(
                "storage.prefix",
                format!(
                    "\"{prefix}\" is not a relative key path without '..', empty or hidden parts"
                ),
            );
        }
    }
    if s.region.is_empty() {
        p.add("storage.region", "must not be empty");
    }
    let credentials = credentials(s);
    if credentials.is_none() {
        p.add(
            "storage.access_key",
            "no credentials: set access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        );
    }
    let (access_key, secret_key) = credentials?;
    Some(Store::S3(S3Settings {
        endpoint: s.endpoint.clone()?,
        bucket: s.bucket.clone()?,
        region: s.region.clone(),
        prefix: s.prefix.clone(),
        access_key,
        secret_key,
        create_bucket: s.create_bucket,
    }))
}

/// The S3 credentials: the keys in the file, else the standard
/// environment variables.
fn credentials(s: &StorageTable) -> Option<(Secret, Secret)> {
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    };
    let access = s.access_key.clone().or_else(|| env("AWS_ACCESS_KEY_ID"))?;
    let secret = s
        .secret_key
        .clone()
        .or_else(|| env("AWS_SECRET_ACCESS_KEY"))?;
    Some((access, secret))
}

/// The shortest lease etcd keeps through an election of its leader.
const MIN_LEASE: Duration = Duration::from_secs(2);

/// A node's name as keys and logs carry it.
fn node_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// The `[cluster]` table (None: a single process, or `declared` but
/// unreadable), and the streams' pins (`nodes`), which need it.
pub(super) fn cluster(
    table: Option<ClusterTable>,
    declared: bool,
    streams: &[StreamTable],
    p: &mut Problems,
) -> Option<hlsvault_cluster::ClusterSettings> {
    let name_rule = "letters, digits, '-', '_' and '.', at most 64";
    for (i, s) in streams.iter().enumerate() {
        let key = format!("streams[{i}] (\"{}\").nodes", s.name);
        if !s.nodes.is_empty() && !declared {
            p.add(
                &key,
                "pins the stream to nodes of a cluster, but there is no [cluster] table",
            );
        }
        if let Some(bad) = s.nodes.iter().find(|n| !node_name_ok(n)) {
            p.add(&key, format!("{bad:?} is not a node name ({name_rule})"));
        }
        if table.as_ref().is_some_and(|t| t.redundancy == 2) && s.nodes.len() == 1 {
            p.add(
                &key,
                "redundancy 2 needs at least two nodes to place an owner and a standby on",
            );
        }
    }
    let t = table?;
    if t.etcd.is_empty() {
        p.add(
            "cluster.etcd",
            "needs at least one endpoint, e.g. [\"http://127.0.0.1:2379\"]",
        );
    }
    for e in &t.etcd {
        // Plain HTTP only: the client is built without TLS.
        let hostport = e.strip_prefix("http://").unwrap_or(e);
        let host_and_port = hostport.rsplit_once(':').is_some_and(|(h, port)| {
            !h.is_empty() && !h.contains('/') && port.parse::<u16>().is_ok()
        });
        if hostport.parse::<SocketAddr>().is_err() && !host_and_port {
            p.add(
                "cluster.etcd",
                format!("{e:?} is not an endpoint (http://HOST:PORT; TLS is not built in)"),
            );
        }
    }
    if !(1..=2).contains(&t.redundancy) {
        p.add(
            "cluster.redundancy",
            "must be 1 (an owner) or 2 (an owner and a standby)",
        );
    }
    if t.lease < MIN_LEASE {
        p.add(
            "cluster.lease",
            "must be at least 2s: a shorter lease does not survive an election of etcd's leader",
        );
    }
    let node = match t.node {
        Some(n) => n,
        None => match host_name() {
            Some(h) => h,
            None => {
                p.add(
                    "cluster.node",
                    "is not set, and the host has no name to take",
                );
                String::new()
            }
        },
    };
    if !node.is_empty() && !node_name_ok(&node) {
        p.add(
            "cluster.node",
            format!("{node:?} is not a node name ({name_rule})"),
        );
    }
    Some(hlsvault_cluster::ClusterSettings {
        etcd: t.etcd,
        node,
        redundancy: t.redundancy,
        lease: t.lease,
    })
}

/// The host's name, the default node name.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// More connections than this would exhaust any process's descriptors.
const MAX_CONNECTIONS: usize = 65_536;

/// The `[serve]` table, with the tokens of `HLSVAULT_SERVE_TOKENS`.
pub(super) fn serve(s: ServeTable, p: &mut Problems) -> ServeConfig {
    if !(1..=MAX_CONNECTIONS).contains(&s.max_connections) {
        p.add(
            "serve.max_connections",
            format!("must be between 1 and {MAX_CONNECTIONS}"),
        );
    }
    for (key, value) in [
        ("serve.header_timeout", s.header_timeout),
        ("serve.request_timeout", s.request_timeout),
        ("serve.export_max", s.export_max),
    ] {
        if value.is_zero() {
            p.add(key, "must be more than 0s");
        }
    }
    let mut tokens = s.tokens;
    if let Ok(v) = std::env::var("HLSVAULT_SERVE_TOKENS") {
        tokens.extend(
            v.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Secret::new),
        );
    }
    ServeConfig {
        listen: s.listen,
        tokens,
        cors_origins: s.cors_origins,
        limits: HttpLimits {
            max_connections: s.max_connections,
            header_timeout: s.header_timeout,
            request_timeout: s.request_timeout,
        },
        export_max: s.export_max,
    }
}

/// A `[[streams]]` table, validated.
pub(super) fn stream(s: &StreamTable, prefix: &str, p: &mut Problems) -> Option<StreamConfig> {
    let before = p.count();
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
    let max_segment = s
        .max_segment_duration
        .unwrap_or(s.segment_duration.saturating_mul(5).max(MIN_DEFAULT_CAP));
    if max_segment < s.segment_duration {
        p.add(
            format!("{prefix}.max_segment_duration"),
            "must not be shorter than segment_duration",
        );
    }
    if s.live_window == 0 {
        p.add(format!("{prefix}.live_window"), "must be at least 1");
    }
    if s.retention_size == Some(0) {
        p.add(
            format!("{prefix}.retention_size"),
            "must be more than 0 bytes",
        );
    }
    if s.max_gap < Duration::from_millis(100) {
        p.add(format!("{prefix}.max_gap"), "must be at least 100ms");
    }
    if s.stall_timeout < Duration::from_millis(100) {
        p.add(format!("{prefix}.stall_timeout"), "must be at least 100ms");
    }
    let source = source(&s.source, prefix, p);
    (p.count() == before).then_some(StreamConfig {
        name: s.name.clone(),
        segment_duration: s.segment_duration,
        max_segment,
        keyframes: s.keyframes,
        program: s.program,
        null_packets: s.null_packets,
        cut_at_splice: s.cut_at_splice,
        aligned_cuts: s.aligned_cuts,
        scte35_tags: s.scte35_tags,
        live_window: s.live_window,
        retention_size: s.retention_size,
        max_gap: s.max_gap,
        stall_timeout: s.stall_timeout,
        source: source?,
        plugins: s.plugins.clone(),
        nodes: s.nodes.clone(),
    })
}

/// A stream's `source` table, validated.
fn source(src: &SourceTable, prefix: &str, p: &mut Problems) -> Option<Source> {
    let key = |k: &str| format!("{prefix}.source.{k}");
    let kind = src.kind.name();
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
    let endpoint = Endpoint {
        group: src.group,
        port: src.port,
        source: src.source_addr,
    };
    let buffer_bytes = src.buffer_size.unwrap_or(DEFAULT_BUFFER);
    Some(match src.kind {
        SourceKind::PcapFile => Source::PcapFile {
            path: src.path.clone()?,
            pace: src.pace.unwrap_or_default(),
            dst: SocketAddr::new(src.group, src.port),
        },
        SourceKind::Pcap => Source::Pcap {
            interface: src.interface.clone()?,
            endpoint,
            buffer_bytes,
        },
        SourceKind::Udp => Source::Udp {
            interface: src.interface.clone(),
            endpoint,
            buffer_bytes,
        },
    })
}

/// What a live source receives, as two streams must not share it: UDP
/// sockets tell senders apart (source-specific joins); one libpcap
/// capture demultiplexes by destination only.
pub(super) fn reception(src: &SourceTable) -> Option<impl Eq + std::hash::Hash> {
    let sender = (src.kind == SourceKind::Udp)
        .then_some(src.source_addr)
        .flatten();
    src.kind
        .is_live()
        .then(|| (src.kind, src.interface.clone(), src.group, src.port, sender))
}

/// The `[plugins]` table, validated.
pub(super) fn plugins(table: &Dict, problems: &mut Problems) -> BTreeMap<String, PluginSettings> {
    let mut out = BTreeMap::new();
    for (name, value) in table {
        let prefix = format!("plugins.{name}");
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !name_ok {
            problems.add(&prefix, "a plugin's name is made of A-Z a-z 0-9 - _");
            continue;
        }
        let Some(t) = problems.parse::<PluginTable>(&prefix, value) else {
            continue;
        };
        if !(Duration::from_micros(100)..=Duration::from_secs(1)).contains(&t.timeout) {
            problems.add(
                format!("{prefix}.timeout"),
                "must be between 100us and 1s (a call runs on the archive's path)",
            );
        }
        if !(1 << 20..=1 << 30).contains(&t.memory) {
            problems.add(format!("{prefix}.memory"), "must be between 1MiB and 1GiB");
        }
        out.insert(
            name.clone(),
            PluginSettings {
                name: name.clone(),
                path: t.path,
                on_error: t.on_error,
                timeout: t.timeout,
                memory: t.memory,
                values: t.config,
            },
        );
    }
    out
}
