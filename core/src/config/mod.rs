//! The configuration file: one TOML file declares the store and many streams.
//!
//! Loaded with figment (the file, then `HLSVAULT_*` environment overrides,
//! `__` separating nested keys: `HLSVAULT_STORAGE__ROOT=/srv/archive`).
//! Every problem found is reported, each with the file, the key and the
//! reason; one bad stream does not hide the problems of the next.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::{Deserialize, Deserializer};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the archive goes.
    pub storage: StorageConfig,
    /// The streams to archive, in file order.
    pub streams: Vec<StreamConfig>,
}

/// The object store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Which backend holds the archive.
    #[serde(default)]
    pub backend: Backend,
    /// Root directory of the `fs` backend.
    #[serde(default = "default_root")]
    pub root: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Fs,
            root: default_root(),
        }
    }
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
}

/// One stream to archive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Name, used as the stream's folder in the archive.
    pub name: String,
    /// Target segment duration: cut at the first keyframe at or after it.
    #[serde(default = "default_segment", deserialize_with = "duration")]
    pub segment_duration: Duration,
    /// Hard cap: cut without a keyframe past this. Default: 5 × target.
    #[serde(default, deserialize_with = "opt_duration")]
    pub max_segment_duration: Option<Duration>,
    /// Segments listed in `live.m3u8`.
    #[serde(default = "default_window")]
    pub live_window: usize,
    /// Silence between datagrams longer than this is a gap in the timeline.
    #[serde(default = "default_gap", deserialize_with = "duration")]
    pub max_gap: Duration,
    /// Where the datagrams come from.
    pub source: SourceConfig,
}

impl StreamConfig {
    /// The hard cap, with its default applied.
    pub fn max_segment(&self) -> Duration {
        self.max_segment_duration
            .unwrap_or(self.segment_duration * 5)
    }
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

/// Keys a `[defaults]` table may set for every stream.
const DEFAULTABLE: &[&str] = &[
    "segment_duration",
    "max_segment_duration",
    "live_window",
    "max_gap",
];

/// Where a stream's datagrams come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The kind of source.
    pub kind: SourceKind,
    /// Capture file (`pcap-file`).
    pub path: Option<PathBuf>,
    /// Destination address of the stream's datagrams.
    pub group: IpAddr,
    /// Destination UDP port of the stream's datagrams.
    #[serde(deserialize_with = "port")]
    pub port: u16,
    /// Replay pace (`pcap-file`).
    #[serde(default)]
    pub pace: Pace,
}

/// Source kinds.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// Replay a capture file (pcap or pcapng).
    PcapFile,
}

/// How fast a capture file is replayed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Pace {
    /// As fast as the pipeline goes.
    #[default]
    Fast,
    /// At the pace recorded in the file.
    Realtime,
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
        Some(v) => problems.parse::<StorageConfig>("storage", v),
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

    match storage {
        Some(storage) if problems.0.is_empty() => Ok(Config { storage, streams }),
        _ => Err(ConfigErrors {
            file: path.to_path_buf(),
            problems: problems.0,
        }),
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
    match s.source.kind {
        SourceKind::PcapFile => match &s.source.path {
            None => p.add(
                format!("{prefix}.source.path"),
                "required for kind = \"pcap-file\"",
            ),
            Some(path) if !path.is_file() => p.add(
                format!("{prefix}.source.path"),
                format!("{} is not a readable file", path.display()),
            ),
            Some(_) => {}
        },
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
        assert_eq!(c.streams[0].max_segment(), Duration::from_secs(20));
        assert_eq!(c.storage.backend, Backend::Fs);
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
