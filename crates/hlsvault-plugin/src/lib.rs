//! hlsvault's WebAssembly plugins: components that implement one or more worlds of the
//! contract in `wit/plugin.wit` (`hlsvault:plugin@0.2.0`; plugins built
//! against `wit/0.1.0/plugin.wit` are served too). This part loads a
//! component and says which hooks it implements, of which version, and
//! what it imports, refusing anything the host does not offer (it gets
//! `host`, and WASI 0.2 linked to an empty context; no files, network or
//! environment).

use std::fmt;
use std::path::Path;

use wasmtime::component::Component;
use wasmtime::Engine;

mod cache;
mod exports;
mod hooks;
pub mod host;
mod runtime;
mod settings;
mod validate;

pub use cache::{make_private, CacheError};
pub use hooks::{FilterOutcome, Named, StreamPlugins};
pub use runtime::{Instance, Loaded, PluginFigures, PluginSnapshot, Runtime, Slot};
pub use settings::{CacheLocation, OnError, PluginSettings};

/// The contract's package, as it prefixes import and export names.
const PACKAGE: &str = "hlsvault:plugin/";
/// The contract's current version.
pub const VERSION: &str = "0.2.0";
/// Every version the host serves, oldest first. A plugin keeps the version
/// it was built against: 0.2.0 added the markers `policy.entry-tags` is
/// told.
pub const VERSIONS: [&str; 2] = ["0.1.0", VERSION];

/// A hook a plugin can implement: one world of the contract each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `packet-filter`: keeps, drops or rewrites batches of TS packets.
    PacketFilter,
    /// `segment-namer`: names segment objects.
    SegmentNamer,
    /// `playlist-policy`: adds playlist tags.
    PlaylistPolicy,
    /// `url-signer`: turns object keys into playback URLs.
    UrlSigner,
}

impl Hook {
    const ALL: [Hook; 4] = [
        Hook::PacketFilter,
        Hook::SegmentNamer,
        Hook::PlaylistPolicy,
        Hook::UrlSigner,
    ];

    /// The interface the hook's world exports.
    pub(crate) fn interface(self) -> &'static str {
        match self {
            Hook::PacketFilter => "filter",
            Hook::SegmentNamer => "namer",
            Hook::PlaylistPolicy => "policy",
            Hook::UrlSigner => "signer",
        }
    }

    /// The world's name in the contract.
    pub fn world(self) -> &'static str {
        match self {
            Hook::PacketFilter => "packet-filter",
            Hook::SegmentNamer => "segment-namer",
            Hook::PlaylistPolicy => "playlist-policy",
            Hook::UrlSigner => "url-signer",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.world())
    }
}

/// What a plugin is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The version of the contract it was built against (one of
    /// [`VERSIONS`]).
    pub version: &'static str,
    /// The hooks it implements (at least one).
    pub hooks: Vec<Hook>,
    /// Everything it imports, by name.
    pub imports: Vec<String>,
    /// Everything it exports, by name.
    pub exports: Vec<String>,
}

/// The error beneath a plugin failure (wasmtime's, the system's).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a plugin cannot be used. Each keeps its cause (`source()`); the
/// message says it too, on one line.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The bytes do not compile as a component.
    #[error("{path}: not a WebAssembly component ({})", chain_line(.source.as_ref()))]
    Load { path: String, source: Cause },
    /// The component cannot be linked to what the host offers.
    #[error("{path}: cannot link: {}", chain_line(.source.as_ref()))]
    Link { path: String, source: Cause },
    /// The host itself cannot run plugins.
    #[error("cannot run plugins: {}", chain_line(.source.as_ref()))]
    Host { source: Cause },
    /// The thread that enforces call deadlines cannot start.
    #[error("cannot run plugins: cannot start the epoch thread: {source}")]
    EpochThread { source: std::io::Error },
    /// It imports what the host does not offer.
    #[error("{path}: imports {import}, which hlsvault does not offer (plugins get hlsvault:plugin/host and an empty WASI 0.2)")]
    Import { path: String, import: String },
    /// It implements no hook of a contract version the host serves.
    #[error(
        "{path}: implements no hook of hlsvault:plugin {} (exports: {exports})",
        served()
    )]
    NoHook { path: String, exports: String },
    /// Its hooks are of different versions of the contract.
    #[error("{path}: mixes versions of hlsvault:plugin ({exports}); build it against one")]
    MixedVersions { path: String, exports: String },
}

/// The engine every plugin is compiled for.
pub fn engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // Failures are logged in one line; guest backtraces would only cost.
    config.wasm_backtrace_max_frames(None);
    // Calls get a deadline by epoch (a ticker thread moves it).
    config.epoch_interruption(true);
    Engine::new(&config).expect("the engine's config is valid")
}

/// The versions served, for messages: `@0.1.0 or @0.2.0`.
fn served() -> String {
    VERSIONS.map(|v| format!("@{v}")).join(" or ")
}

/// Whether the host offers `import`: its own interfaces (of a version it
/// serves) and WASI 0.2.
fn offered(import: &str) -> bool {
    match import.strip_prefix(PACKAGE) {
        Some(rest) => rest.split_once('@').is_some_and(|(interface, version)| {
            ["host", "types"].contains(&interface) && VERSIONS.contains(&version)
        }),
        None => import.starts_with("wasi:") && import.contains("@0.2."),
    }
}

/// Compiles the component at `path` and says what it implements.
pub fn inspect(engine: &Engine, path: &Path) -> Result<Inspection, PluginError> {
    let shown = path.display().to_string();
    let component = Component::from_file(engine, path).map_err(|e| PluginError::Load {
        path: shown.clone(),
        source: e.into(),
    })?;
    describe(engine, &component, &shown)
}

/// An error and its causes, on one line.
fn chain_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    one_line(&text)
}

/// `s` on one line (log lines and config problems are one line each).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The name of the interface `hook` exports at `version` of the contract:
/// `hlsvault:plugin/filter@0.2.0`.
fn export_name(hook: Hook, version: &str) -> String {
    format!("{PACKAGE}{}@{version}", hook.interface())
}

/// The hooks `exports` implement, by each version they are of (a plugin is
/// built against one).
fn hooks_by_version(exports: &[String]) -> Vec<(&'static str, Vec<Hook>)> {
    VERSIONS
        .into_iter()
        .map(|version| {
            let hooks = Hook::ALL
                .into_iter()
                .filter(|h| exports.contains(&export_name(*h, version)))
                .collect::<Vec<_>>();
            (version, hooks)
        })
        .filter(|(_, hooks)| !hooks.is_empty())
        .collect()
}

/// What `component` (from `path`) implements and imports; refuses imports
/// the host does not offer and components without a hook.
fn describe(engine: &Engine, component: &Component, path: &str) -> Result<Inspection, PluginError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if let Some(bad) = imports.iter().find(|i| !offered(i)) {
        return Err(PluginError::Import {
            path: path.to_string(),
            import: bad.clone(),
        });
    }
    let (version, hooks) = match <[_; 1]>::try_from(hooks_by_version(&exports)) {
        Ok([one]) => one,
        Err(found) => {
            let (path, exports) = (path.to_string(), exports.join(", "));
            return Err(match found.is_empty() {
                true => PluginError::NoHook { path, exports },
                false => PluginError::MixedVersions { path, exports },
            });
        }
    };
    Ok(Inspection {
        version,
        hooks,
        imports,
        exports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_offers_its_interfaces_and_wasi_only() {
        assert!(offered("hlsvault:plugin/host@0.1.0"));
        assert!(offered("hlsvault:plugin/types@0.2.0"));
        assert!(offered("wasi:io/streams@0.2.6"));
        assert!(!offered("hlsvault:plugin/host@0.3.0"));
        assert!(!offered("hlsvault:plugin/filter@0.2.0"));
        assert!(!offered("wasi:http/outgoing-handler@0.3.0"));
        assert!(!offered("evil:net/socket"));
    }

    #[test]
    fn hooks_are_found_by_the_version_they_were_built_against() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let old = names(&["hlsvault:plugin/policy@0.1.0", "wasi:cli/run@0.2.0"]);
        assert_eq!(
            hooks_by_version(&old),
            [("0.1.0", vec![Hook::PlaylistPolicy])]
        );
        let new = names(&[
            "hlsvault:plugin/signer@0.2.0",
            "hlsvault:plugin/filter@0.2.0",
        ]);
        assert_eq!(
            hooks_by_version(&new),
            [("0.2.0", vec![Hook::PacketFilter, Hook::UrlSigner])]
        );
        let mixed = names(&[
            "hlsvault:plugin/filter@0.1.0",
            "hlsvault:plugin/namer@0.2.0",
        ]);
        assert_eq!(hooks_by_version(&mixed).len(), 2, "refused as mixed");
        let future = names(&["hlsvault:plugin/filter@0.3.0", "hlsvault:plugin/filter"]);
        assert!(hooks_by_version(&future).is_empty(), "no hook");
    }

    #[test]
    fn a_core_module_is_not_a_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core.wasm");
        // The smallest core module: magic and version.
        std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
        let e = inspect(&engine(), &path).unwrap_err();
        assert!(matches!(e, PluginError::Load { .. }), "{e}");
        assert!(e.to_string().contains("not a WebAssembly component"), "{e}");
    }
}
