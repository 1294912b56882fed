//! Reading the file: figment (the file, then `HLSVAULT_*` overrides), each
//! part parsed and validated on its own, every problem collected.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::value::Value;
use figment::Figment;
use serde::Deserialize;

use super::schema::{ClusterTable, ServeTable, StorageTable, StreamTable, TopLevel, DEFAULTABLE};
use super::{validate, Config, ConfigErrors, Problem};

/// Default of `stats_interval`.
const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);

/// Collects problems while the configuration is read.
pub(super) struct Problems(Vec<Problem>);

impl Problems {
    pub fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// How many problems so far.
    pub fn count(&self) -> usize {
        self.0.len()
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
    pub fn parse<T: for<'de> Deserialize<'de>>(
        &mut self,
        prefix: &str,
        value: &Value,
    ) -> Option<T> {
        value
            .deserialize::<T>()
            .map_err(|e| self.figment(prefix, e))
            .ok()
    }
}

/// Loads and validates a configuration file (then `HLSVAULT_*` overrides).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let errors = |problems| ConfigErrors {
        file: path.to_path_buf(),
        problems,
    };
    // figment ignores a missing file; we do not.
    std::fs::metadata(path).map_err(|e| {
        errors(vec![Problem {
            key: "(file)".into(),
            reason: format!("cannot read: {e}"),
        }])
    })?;
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
            return Err(errors(problems.0));
        }
    };

    let storage = match &top.storage {
        Some(v) => problems.parse::<StorageTable>("storage", v),
        None => Some(StorageTable::default()),
    }
    .and_then(|s| validate::storage(&s, &mut problems));

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

    let mut tables = Vec::new();
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
        let Some(s) = problems.parse::<StreamTable>(&prefix, &Value::from(merged)) else {
            continue;
        };
        streams.extend(validate::stream(&s, &prefix, &mut problems));
        if !names.insert(s.name.clone()) {
            problems.add(
                format!("{prefix}.name"),
                format!("duplicate stream name \"{}\"", s.name),
            );
        }
        tables.push(s);
    }

    let mut receptions = HashSet::new();
    for (i, s) in tables.iter().enumerate() {
        let src = &s.source;
        if validate::reception(src).is_some_and(|r| !receptions.insert(r)) {
            problems.add(
                format!("streams[{i}] (\"{}\").source", s.name),
                format!(
                    "another stream already receives {}:{} on this interface",
                    src.group, src.port
                ),
            );
        }
    }
    let playouts = validate::playouts(&top.playouts, &tables, &mut problems);
    let plugins = validate::plugins(&top.plugins.unwrap_or_default(), &mut problems);
    for (i, s) in tables.iter().enumerate() {
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
        .and_then(|v| problems.parse::<ServeTable>("serve", v))
        .map(|s| validate::serve(s, &mut problems));
    let cluster_table = top
        .cluster
        .as_ref()
        .and_then(|v| problems.parse::<ClusterTable>("cluster", v));
    let declared = top.cluster.is_some();
    let cluster = validate::cluster(cluster_table, declared, &tables, &mut problems);
    if cluster.is_some() {
        // A cluster's recorders of a stream must cut the same segments.
        streams.iter_mut().for_each(|s| s.aligned_cuts = true);
    }
    let stats_interval = top.stats_interval.unwrap_or(DEFAULT_STATS_INTERVAL);
    if stats_interval < Duration::from_secs(1) {
        problems.add("stats_interval", "must be at least 1s");
    }

    match storage {
        Some(storage) if problems.0.is_empty() => Ok(Config {
            storage,
            streams,
            playouts,
            stats_interval,
            serve,
            plugins,
            plugin_cache: top.plugin_cache.or_else(default_plugin_cache),
            state_dir: top.state_dir.unwrap_or_else(default_state_dir),
            cluster,
        }),
        _ => Err(errors(problems.0)),
    }
}

/// `/var/lib/hlsvault` for root (a service), else the XDG state home.
fn default_state_dir() -> PathBuf {
    // /proc/self belongs to the process's effective user.
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return PathBuf::from("/var/lib/hlsvault");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("hlsvault")
}

fn default_plugin_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("hlsvault").join("plugins"))
}
