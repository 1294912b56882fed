//! The `[plugins.NAME]` tables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hlsvault_plugin::{OnError, PluginSettings};
use serde::{Deserialize, Deserializer};

use super::{duration, Problems};

/// One `[plugins.NAME]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginTable {
    path: PathBuf,
    #[serde(default)]
    on_error: OnError,
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    timeout: Duration,
    #[serde(default = "default_memory", deserialize_with = "size")]
    memory: u64,
    /// The plugin's own values (strings, numbers or booleans, handed over
    /// as strings).
    #[serde(default, deserialize_with = "values")]
    config: BTreeMap<String, String>,
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
) -> BTreeMap<String, PluginSettings> {
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
        let p = PluginSettings {
            name: name.clone(),
            path: t.path,
            on_error: t.on_error,
            timeout: t.timeout,
            memory: t.memory,
            values: t.config,
        };
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
