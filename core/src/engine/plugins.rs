//! The config's plugins, compiled and pre-instantiated once, and a
//! stream's own instances of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, Problem, StreamConfig};
use hlsvault_plugin::{PluginError, Runtime, Slot, StreamPlugins};

/// A plugin that cannot be used is a problem at its `path`.
pub(super) fn plugin_problem(name: &str, reason: String) -> Problem {
    Problem {
        key: format!("plugins.{name}.path"),
        reason,
    }
}

/// Compiles and pre-instantiates every plugin the config declares.
pub(super) fn load_plugins(
    config: &Config,
    runtime: &Runtime,
) -> (BTreeMap<String, Arc<Slot>>, Vec<Problem>) {
    let mut loaded = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, p) in &config.plugins {
        match runtime.load(p) {
            Ok(l) => {
                loaded.insert(name.clone(), Slot::new(l));
            }
            Err(e) => problems.push(plugin_problem(name, e.to_string())),
        }
    }
    (loaded, problems)
}

/// Stream `cfg`'s plugins on their own (for `sign`): compiled, and one
/// set of instances.
pub(super) fn load_stream_plugins(
    config: &Config,
    cfg: &StreamConfig,
) -> Result<StreamPlugins, PluginError> {
    let mut slots = Vec::new();
    if !cfg.plugins.is_empty() {
        let runtime = Runtime::new(config.plugin_cache_location())?;
        for name in &cfg.plugins {
            slots.push(Slot::new(runtime.load(&config.plugins[name])?));
        }
    }
    Ok(plugins_of(&slots, cfg))
}

/// One side's instances of stream `cfg`'s plugins (`slots`).
pub(super) fn plugins_of(slots: &[Arc<Slot>], cfg: &StreamConfig) -> StreamPlugins {
    StreamPlugins::new(
        slots,
        &cfg.name,
        cfg.source.dst().ip().to_string(),
        cfg.source.dst().port(),
    )
}
