//! The `[plugins.NAME]` tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{duration, Problems};

/// What a plugin's failure (trap, timeout, invalid result) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Use the built-in behaviour for that call.
    #[default]
    FailOpen,
    /// Drop what the hook would have produced (a filter: the batch).
    FailClosed,
}

/// One `[plugins.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The table's name; streams list it in `plugins`.
    #[serde(skip)]
    pub name: String,
    /// The component (`.wasm`).
    pub path: PathBuf,
    /// What a failure does.
    #[serde(default)]
    pub on_error: OnError,
    /// Deadline of every call.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Memory limit of each instance, in bytes.
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

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    super::opt_size(d).map(|s| s.unwrap_or_default())
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

/// Reads the `[plugins]` table, recording problems.
pub(super) fn read(
    table: &figment::value::Dict,
    problems: &mut Problems,
) -> BTreeMap<String, PluginConfig> {
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
        let Some(mut p) = problems.parse::<PluginConfig>(&prefix, value) else {
            continue;
        };
        p.name = name.clone();
        if !(Duration::from_micros(100)..=Duration::from_secs(1)).contains(&p.timeout) {
            problems.add(
                format!("{prefix}.timeout"),
                "must be between 100us and 1s (a call runs on the archive's path)",
            );
        }
        if !(1 << 20..=1 << 30).contains(&p.memory) {
            problems.add(format!("{prefix}.memory"), "must be between 1MiB and 1GiB");
        }
        out.insert(name.clone(), p);
    }
    out
}
