//! The host side of the contract: its types, and the `host` interface
//! every plugin imports (log, its config, time, HMAC), for each version of
//! the contract the host serves.
//!
//! The hooks' own types come from the current version's bindings; a 0.1.0
//! plugin's hooks take the same shapes (see `exports`).

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::StoreLimits;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The `packet-filter` world; its `host` and `types` serve the others.
pub mod filter {
    wasmtime::component::bindgen!({ path: "../../wit", world: "packet-filter" });
}

/// The `segment-namer` world.
pub mod namer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "segment-namer",
        with: {
            "hlsvault:plugin/host": super::filter::hlsvault::plugin::host,
            "hlsvault:plugin/types": super::filter::hlsvault::plugin::types,
        },
    });
}

/// The `playlist-policy` world.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "playlist-policy",
        with: {
            "hlsvault:plugin/host": super::filter::hlsvault::plugin::host,
            "hlsvault:plugin/types": super::filter::hlsvault::plugin::types,
        },
    });
}

/// The `url-signer` world.
pub mod signer {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "url-signer",
        with: { "hlsvault:plugin/host": super::filter::hlsvault::plugin::host },
    });
}

/// The first version of the contract (`wit/0.1.0/plugin.wit`): its `host`
/// and `types`, which plugins built against it import.
pub mod v0_1 {
    wasmtime::component::bindgen!({ path: "../../wit/0.1.0", world: "packet-filter" });
}

pub use filter::hlsvault::plugin::host::Level;
pub use filter::hlsvault::plugin::types::{
    MarkerInfo, MarkerKind, PlaylistKind, SegmentInfo, StreamInfo,
};

/// Longest log line a plugin may write (longer ones are cut).
const LOG_LINE_MAX: usize = 1024;
/// Log lines a plugin instance may write per second (more are counted).
const LOG_LINES_PER_SECOND: u32 = 20;

/// What one plugin instance's store holds.
pub struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) stream: Arc<str>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
    log_window: (std::time::Instant, u32),
}

impl HostState {
    /// The state of `plugin`'s instance for `stream`, its memory bounded by
    /// `memory` bytes.
    pub fn new(
        plugin: Arc<str>,
        stream: Arc<str>,
        config: Arc<BTreeMap<String, String>>,
        memory: usize,
    ) -> Self {
        HostState {
            plugin,
            stream,
            config,
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory)
                .instances(16)
                .tables(16)
                .memories(4)
                .trap_on_grow_failure(true)
                .build(),
            // No preopens, env, args or network; stdio discarded.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            log_window: (std::time::Instant::now(), 0),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl filter::hlsvault::plugin::types::Host for HostState {}

impl filter::hlsvault::plugin::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        let (since, n) = &mut self.log_window;
        if since.elapsed() >= std::time::Duration::from_secs(1) {
            *since = std::time::Instant::now();
            *n = 0;
        }
        *n += 1;
        if *n > LOG_LINES_PER_SECOND {
            return;
        }
        let mut message = message;
        if message.len() > LOG_LINE_MAX {
            let mut cut = LOG_LINE_MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let (plugin, stream) = (&*self.plugin, &*self.stream);
        match level {
            Level::Trace => tracing::trace!(plugin = %plugin, stream = %stream, "{message}"),
            Level::Debug => tracing::debug!(plugin = %plugin, stream = %stream, "{message}"),
            Level::Info => tracing::info!(plugin = %plugin, stream = %stream, "{message}"),
            Level::Warn => tracing::warn!(plugin = %plugin, stream = %stream, "{message}"),
            Level::Error => tracing::error!(plugin = %plugin, stream = %stream, "{message}"),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn config_entries(&mut self) -> Vec<(String, String)> {
        self.config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn now_ms(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        m.update(&data);
        m.finalize().into_bytes().to_vec()
    }
}

impl v0_1::hlsvault::plugin::types::Host for HostState {}

/// 0.1.0's `host` is the current one.
impl v0_1::hlsvault::plugin::host::Host for HostState {
    fn log(&mut self, level: v0_1::hlsvault::plugin::host::Level, message: String) {
        use v0_1::hlsvault::plugin::host::Level as Old;
        let level = match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        filter::hlsvault::plugin::host::Host::log(self, level, message)
    }

    fn config(&mut self, key: String) -> Option<String> {
        filter::hlsvault::plugin::host::Host::config(self, key)
    }

    fn config_entries(&mut self) -> Vec<(String, String)> {
        filter::hlsvault::plugin::host::Host::config_entries(self)
    }

    fn now_ms(&mut self) -> u64 {
        filter::hlsvault::plugin::host::Host::now_ms(self)
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> Vec<u8> {
        filter::hlsvault::plugin::host::Host::hmac_sha256(self, key, data)
    }
}

/// A linker with everything a plugin may import: `host` (and `types`) of
/// every version served, and WASI 0.2 against the empty context.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    filter::hlsvault::plugin::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    filter::hlsvault::plugin::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v0_1::hlsvault::plugin::host::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    v0_1::hlsvault::plugin::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}
