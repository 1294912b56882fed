//! Loading plugins and running their calls safely: each plugin is compiled
//! once (and cached on disk, so a restart does not recompile) and
//! pre-instantiated once; each stream gets its own instance, whose calls
//! run under an epoch deadline and whose memory is bounded. A failed call
//! (trap, timeout, invalid result) is logged and counted, the instance is
//! rebuilt from its `InstancePre` (a trapped store cannot be re-entered),
//! and a plugin that keeps failing is suspended with backoff.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap};

use super::exports::Exports;
use super::host::{self, HostState};
use super::{describe, one_line, Hook, PluginError};
use crate::cache::CompiledCache;
use crate::settings::{OnError, PluginSettings};
use crate::CacheLocation;

/// How often the epoch moves: the resolution of call deadlines.
const TICK: Duration = Duration::from_millis(1);
/// Deadline of an instantiation (the guest's start-up code runs then).
const INSTANTIATE_TIMEOUT: Duration = Duration::from_secs(1);
/// Failures in a row that suspend a plugin (for one stream).
const SUSPEND_AFTER: u32 = 5;
/// First and longest suspension.
const SUSPEND_FIRST: Duration = Duration::from_secs(1);
const SUSPEND_MAX: Duration = Duration::from_secs(60);

/// The engine, its linker and the compiled-code cache; one per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<CompiledCache>,
}

/// What a plugin did, over all its streams.
#[derive(Debug, Default)]
pub struct PluginFigures {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed (trap, timeout, invalid result).
    pub failures: AtomicU64,
    /// Of those, calls stopped at their deadline.
    pub timeouts: AtomicU64,
    /// Calls not made because the plugin was suspended.
    pub skipped: AtomicU64,
    /// Time spent in calls, in nanoseconds.
    pub nanos: AtomicU64,
}

/// A copy of a plugin's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub skipped: u64,
    pub nanos: u64,
}

impl PluginFigures {
    /// The figures now.
    pub fn snapshot(&self) -> PluginSnapshot {
        PluginSnapshot {
            calls: self.calls.load(Relaxed),
            failures: self.failures.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            nanos: self.nanos.load(Relaxed),
        }
    }
}

/// The one-line summary of a plugin.
impl std::fmt::Display for PluginSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_call = self.nanos as f64 / self.calls.max(1) as f64 / 1000.0;
        write!(
            f,
            "{} calls ({per_call:.2} us each), {} failed ({} past their deadline), {} skipped while suspended",
            self.calls, self.failures, self.timeouts, self.skipped
        )
    }
}

/// A compiled, pre-instantiated plugin.
pub struct Loaded {
    /// Its settings.
    pub settings: PluginSettings,
    /// The version of the contract it was built against.
    pub version: &'static str,
    /// The hooks it implements.
    pub hooks: Vec<Hook>,
    exports: Exports,
    pre: InstancePre<HostState>,
    /// Its figures, shared by its instances.
    pub figures: Arc<PluginFigures>,
    /// The plugin's config values, for its instances.
    values: Arc<std::collections::BTreeMap<String, String>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.settings.name)
            .field("hooks", &self.hooks)
            .finish()
    }
}

impl Runtime {
    /// A runtime whose compiled plugins are cached in `cache` (if any, and
    /// if it is safe: see the cache's checks; else plugins are compiled
    /// each time, with a warning). Starts the thread that moves the epoch.
    pub fn new(cache: Option<CacheLocation>) -> Result<Self, PluginError> {
        let cache = cache.and_then(|location| {
            CompiledCache::open(location)
                .inspect_err(|e| tracing::warn!(error = %e, "the plugin cache is not used; plugins are compiled at every start"))
                .ok()
        });
        let engine = super::engine();
        let linker = host::linker(&engine).map_err(|e| PluginError::Host { source: e.into() })?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|source| PluginError::EpochThread { source })?;
        Ok(Runtime {
            engine,
            linker,
            cache,
        })
    }

    /// The engine plugins are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles (or takes from the cache) and pre-instantiates the plugin
    /// `config` names.
    pub fn load(&self, config: &PluginSettings) -> Result<Arc<Loaded>, PluginError> {
        self.load_counted(config, Arc::default())
    }

    /// The plugin `config` names (its file or its table changed), built
    /// to take over from `old`: its figures carry on.
    pub fn reload(
        &self,
        config: &PluginSettings,
        old: &Loaded,
    ) -> Result<Arc<Loaded>, PluginError> {
        self.load_counted(config, old.figures.clone())
    }

    fn load_counted(
        &self,
        config: &PluginSettings,
        figures: Arc<PluginFigures>,
    ) -> Result<Arc<Loaded>, PluginError> {
        let shown = config.path.display().to_string();
        let bytes = std::fs::read(&config.path).map_err(|source| PluginError::Read {
            path: shown.clone(),
            source,
        })?;
        let component = self.compile(&bytes).map_err(|e| PluginError::Load {
            path: shown.clone(),
            source: e.into(),
        })?;
        let inspection = describe(&self.engine, &component, &shown)?;
        let exports =
            Exports::find(&component, inspection.version, &inspection.hooks).map_err(|e| {
                PluginError::Link {
                    path: shown.clone(),
                    source: e.into(),
                }
            })?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Link {
                path: shown.clone(),
                source: e.into(),
            })?;
        Ok(Arc::new(Loaded {
            settings: config.clone(),
            version: inspection.version,
            hooks: inspection.hooks,
            exports,
            pre,
            figures,
            values: Arc::new(config.values.clone()),
        }))
    }

    /// The component of `bytes`: from the cache when this engine compiled
    /// it before, else compiled now (and cached). Fails with the reason.
    fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, bytes);
        };
        let name = self.cache_key(bytes);
        if let Some(c) = cache.load(&self.engine, &name) {
            return Ok(c);
        }
        let compiled = self.engine.precompile_component(bytes)?;
        cache.store(&name, &compiled);
        // SAFETY: `compiled` comes from this engine's precompile just above.
        unsafe { Component::deserialize(&self.engine, &compiled) }
    }

    fn cache_key(&self, bytes: &[u8]) -> String {
        use sha2::Digest;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let digest = sha2::Sha256::digest(bytes);
        format!("{}-{:016x}", hex::encode(&digest[..16]), h.finish())
    }
}

/// A plugin as the streams see it: its current build, replaced when its
/// file or its config table changes.
#[derive(Debug)]
pub struct Slot {
    current: std::sync::Mutex<(Arc<Loaded>, u64)>,
}

impl Slot {
    /// A slot holding `loaded`.
    pub fn new(loaded: Arc<Loaded>) -> Arc<Self> {
        Arc::new(Slot {
            current: std::sync::Mutex::new((loaded, 0)),
        })
    }

    /// The current build and its generation.
    pub fn current(&self) -> (Arc<Loaded>, u64) {
        let c = self.current.lock().expect("slot lock");
        (c.0.clone(), c.1)
    }

    /// Puts a new build in; instances take it at their next segment boundary.
    pub fn replace(&self, loaded: Arc<Loaded>) {
        let mut c = self.current.lock().expect("slot lock");
        *c = (loaded, c.1 + 1);
    }
}

/// An instance's hook functions.
pub(super) type Bound = Exports<wasmtime::component::Func>;

/// One plugin's instance for one stream.
pub struct Instance {
    slot: Arc<Slot>,
    generation: u64,
    loaded: Arc<Loaded>,
    stream: Arc<str>,
    /// None while it cannot be instantiated: calls then fail (and retry).
    live: Option<(Store<HostState>, Bound)>,
    in_row: u32,
    suspended_until: Option<Instant>,
    suspension: Duration,
}

/// Why a call gave nothing usable.
pub(super) enum Failure {
    /// The plugin is suspended; no call was made.
    Suspended,
    /// The call failed (already logged and counted).
    Failed,
}

impl Instance {
    /// An instance of the slot's plugin for `stream`, made at its first
    /// call: a stream's analysis and archive side each hold one, and only
    /// the side whose hooks the build implements ever makes it. An
    /// instance that cannot be made (its start traps, or needs more memory
    /// than allowed) is not an error here: its calls fail under the
    /// plugin's policy, and it is tried again.
    pub fn new(slot: Arc<Slot>, stream: &str) -> Self {
        let (loaded, generation) = slot.current();
        Instance {
            slot,
            generation,
            loaded,
            stream: Arc::from(stream),
            live: None,
            in_row: 0,
            suspended_until: None,
            suspension: SUSPEND_FIRST,
        }
    }

    /// Takes the plugin's new build, if its file changed since this
    /// instance was made (and says so). Called at segment boundaries only.
    pub fn refresh(&mut self) -> bool {
        let (loaded, generation) = self.slot.current();
        if generation == self.generation {
            return false;
        }
        self.loaded = loaded;
        self.generation = generation;
        self.in_row = 0;
        self.suspended_until = None;
        self.suspension = SUSPEND_FIRST;
        // The new build is instantiated at its first call; the side that
        // was calling the old one says so.
        if self.live.take().is_some() {
            tracing::info!(plugin = %self.name(), stream = %self.stream, "the plugin's new build swapped in at a segment boundary");
        }
        true
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.loaded.settings.name
    }

    /// Its failure policy.
    pub fn on_error(&self) -> OnError {
        self.loaded.settings.on_error
    }

    /// Whether it implements `hook`.
    pub fn implements(&self, hook: Hook) -> bool {
        self.loaded.hooks.contains(&hook)
    }

    /// Runs `call` under the deadline, then `check` on its result. A
    /// failure of either is logged, counted and may suspend the plugin.
    pub(super) fn call<R, V>(
        &mut self,
        hook: Hook,
        call: impl FnOnce(&Bound, &mut Store<HostState>) -> wasmtime::Result<R>,
        check: impl FnOnce(R) -> Result<V, String>,
    ) -> Result<V, Failure> {
        let figures = self.loaded.figures.clone();
        if let Some(until) = self.suspended_until {
            if Instant::now() < until {
                figures.skipped.fetch_add(1, Relaxed);
                return Err(Failure::Suspended);
            }
            self.suspended_until = None;
            tracing::info!(plugin = %self.name(), stream = %self.stream, "plugin suspension over; calling it again");
        }
        if self.live.is_none() {
            self.rebuild();
        }
        let started = Instant::now();
        let result = match &mut self.live {
            Some((store, bound)) => {
                store.set_epoch_deadline(ticks(self.loaded.settings.timeout));
                call(bound, store)
            }
            None => Err(wasmtime::Error::msg("it cannot be instantiated")),
        };
        figures.calls.fetch_add(1, Relaxed);
        figures
            .nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        let reason = match result {
            Ok(r) => match check(r) {
                Ok(v) => {
                    self.in_row = 0;
                    self.suspension = SUSPEND_FIRST;
                    return Ok(v);
                }
                Err(why) => format!("returned an invalid result: {why}"),
            },
            Err(e) => {
                let reason = match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => {
                        figures.timeouts.fetch_add(1, Relaxed);
                        format!(
                            "ran past its deadline ({})",
                            humantime::format_duration(self.loaded.settings.timeout)
                        )
                    }
                    Some(trap) => format!("trapped: {trap}"),
                    None => {
                        let cause = e.root_cause().to_string();
                        match cause.contains("growing memory") {
                            true => format!(
                                "went past its memory limit ({})",
                                bytesize::ByteSize(self.loaded.settings.memory)
                                    .display()
                                    .iec()
                            ),
                            false => format!("failed: {}", one_line(&cause)),
                        }
                    }
                };
                // A trapped store cannot be entered again.
                self.rebuild();
                reason
            }
        };
        let n = figures.failures.fetch_add(1, Relaxed) + 1;
        self.in_row += 1;
        let policy = match self.on_error() {
            OnError::FailOpen => "fail-open: built-in behaviour used",
            OnError::FailClosed => "fail-closed: its output dropped",
        };
        if self.in_row == 1 || n.is_power_of_two() {
            tracing::warn!(plugin = %self.name(), stream = %self.stream, hook = %hook, failures = n, "plugin {reason}; {policy}");
        }
        if self.in_row >= SUSPEND_AFTER {
            tracing::error!(plugin = %self.name(), stream = %self.stream, failures_in_a_row = self.in_row, suspended_for = %humantime::format_duration(self.suspension), "plugin keeps failing; suspended ({policy} meanwhile)");
            self.suspended_until = Some(Instant::now() + self.suspension);
            self.suspension = (self.suspension * 2).min(SUSPEND_MAX);
            self.in_row = 0;
        }
        Err(Failure::Failed)
    }

    /// A fresh instance from the plugin's `InstancePre`.
    fn rebuild(&mut self) {
        self.live = match instantiate(&self.loaded, &self.stream) {
            Ok(live) => Some(live),
            Err(e) => {
                tracing::error!(plugin = %self.name(), stream = %self.stream, error = %one_line(&format!("{e:#}")), "cannot instantiate the plugin");
                None
            }
        };
    }
}

/// Epoch ticks of a deadline `timeout` from now.
fn ticks(timeout: Duration) -> u64 {
    timeout.as_nanos().div_ceil(TICK.as_nanos()) as u64 + 1
}

fn instantiate(loaded: &Loaded, stream: &Arc<str>) -> wasmtime::Result<(Store<HostState>, Bound)> {
    let state = HostState::new(
        Arc::from(loaded.settings.name.as_str()),
        stream.clone(),
        loaded.values.clone(),
        loaded.settings.memory as usize,
    );
    let mut store = Store::new(loaded.pre.engine(), state);
    store.limiter(|s| &mut s.limits);
    // Instantiation runs guest code too (start functions): deadline it.
    store.set_epoch_deadline(ticks(INSTANTIATE_TIMEOUT.max(loaded.settings.timeout)));
    let instance = loaded.pre.instantiate(&mut store)?;
    let bound = loaded.exports.bind(&instance, &mut store)?;
    Ok((store, bound))
}
