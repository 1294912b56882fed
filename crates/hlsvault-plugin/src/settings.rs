//! What a plugin is and how it may behave: the settings the host needs to
//! load and call it (the config file's `[plugins.NAME]` converts into them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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

/// Where compiled plugins are kept between runs, and the file of the key
/// that signs them (kept apart, in the state directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLocation {
    /// The folder of compiled artifacts (made 0700).
    pub dir: std::path::PathBuf,
    /// The HMAC key (made 0600, its folder 0700).
    pub key: std::path::PathBuf,
}

/// One plugin, as the host loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// Its name; streams list it in `plugins`.
    pub name: String,
    /// The component (`.wasm`).
    pub path: PathBuf,
    /// What a failure does.
    pub on_error: OnError,
    /// Deadline of every call.
    pub timeout: Duration,
    /// Memory limit of each instance, in bytes.
    pub memory: u64,
    /// The plugin's own values, handed over as strings.
    pub values: BTreeMap<String, String>,
}
