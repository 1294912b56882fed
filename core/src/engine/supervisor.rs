//! A run's streams and readers, and how a change of the config file or of
//! a plugin file reaches them: streams are started, stopped and restarted
//! one by one, while the others, and the readers they share, go on
//! without a gap.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::Arc;

use tracing::Instrument;

use super::analysis::analyse;
use super::archive::ArchiveSettings;
use super::check::source_findings;
use super::growing::Finished;
use super::node::{Node, Pinned};
use super::playouts::Playouts;
use super::plugins::plugin_problem;
use super::publish::{ArchiveTask, Publish};
use super::reader::SourceReport;
use super::reader::{self, Control, Input, Progress, ReaderKey, Route};
use super::sizes::Sizes;
use super::watch::{absolute, Wake};
use crate::config::{Config, ConfigErrors, StreamConfig};
use crate::figures::{Figures, StreamFigures, StreamStats};
use hlsvault_plugin::{self as plugin, Slot};
use hlsvault_store::{ObjectStore, QueueLimits, UploadQueue};

/// Batches queued per stream before the reader waits (files) or drops and
/// counts (live sources): about 4 MiB.
const QUEUE_BATCHES: usize = 16;
/// Finished segments queued per stream before the analysis waits.
const QUEUE_SEGMENTS: usize = 4;

/// What every stream of a run shares.
pub struct Shared {
    /// The tokio runtime the archive tasks run on.
    pub io: tokio::runtime::Handle,
    /// Where the archives go (each stream through its upload queue).
    pub store: Arc<dyn ObjectStore>,
    /// What the upload queues share.
    pub limits: QueueLimits,
    /// Set by SIGINT/SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// Reading progress of the capture files.
    pub progress: Arc<Progress>,
    /// What the server and the figures log see.
    pub figures: Arc<Figures>,
    /// Told when a reader ends.
    pub wake: Sender<Wake>,
    /// This node, in a cluster; and where the streams and their pins go
    /// for the placement to read.
    pub cluster: Option<(Arc<Node>, tokio::sync::watch::Sender<Vec<Pinned>>)>,
}

/// One running stream (its current incarnation).
struct Running {
    cfg: StreamConfig,
    stats: Arc<StreamStats>,
    route: usize,
    /// The reader feeding it.
    reader: usize,
    /// Set before a restart: the hour stays open for the next incarnation.
    keep_open: Arc<AtomicBool>,
    /// Its archive task (which waits for any earlier incarnation's first).
    task: ArchiveTask,
}

/// One running reader.
struct Reader {
    id: usize,
    key: ReaderKey,
    control: Sender<Control>,
    /// Streams it feeds; at 0 it ends by itself.
    routes: usize,
    thread: std::thread::JoinHandle<SourceReport>,
}

/// Starts, stops and restarts streams.
pub struct Supervisor {
    shared: Shared,
    /// The config in force.
    config: Config,
    plugin_runtime: Option<Arc<plugin::Runtime>>,
    plugins: BTreeMap<String, Arc<Slot>>,
    streams: BTreeMap<String, Running>,
    /// Incarnations stopped or replaced during the run, for the report.
    retired: Vec<(String, Arc<StreamStats>)>,
    /// Archive tasks of retired incarnations, by stream, until a new
    /// incarnation takes them over (waits for them) or the run ends.
    finishing: BTreeMap<String, ArchiveTask>,
    readers: Vec<Reader>,
    reports: Vec<SourceReport>,
    analysis: Vec<std::thread::JoinHandle<()>>,
    next_id: usize,
    playouts: Playouts,
    /// The archive's sizes, for retention by size.
    sizes: Arc<Sizes>,
    /// In a cluster, the streams it places on this node (the only ones
    /// that run here).
    placed: Option<BTreeSet<String>>,
}

/// How a run ended: every incarnation's figures and every reader's.
pub struct Outcome {
    /// Current streams in config order, then those retired on the way.
    pub streams: Vec<(String, Arc<StreamStats>)>,
    pub sources: Vec<SourceReport>,
    pub plugins: Vec<(String, Arc<plugin::PluginFigures>)>,
}

impl Supervisor {
    /// Starts every stream of `config`, with the plugins already loaded.
    pub fn start(
        shared: Shared,
        config: Config,
        plugin_runtime: Option<Arc<plugin::Runtime>>,
        plugins: BTreeMap<String, Arc<Slot>>,
        placed: Option<BTreeSet<String>>,
    ) -> anyhow::Result<Self> {
        let playouts = Playouts::new(
            shared.io.clone(),
            shared.store.clone(),
            shared.figures.clone(),
            config.stats_interval,
        );
        let mut s = Supervisor {
            playouts,
            shared,
            plugin_runtime,
            plugins,
            streams: BTreeMap::new(),
            retired: Vec::new(),
            finishing: BTreeMap::new(),
            readers: Vec::new(),
            reports: Vec::new(),
            analysis: Vec::new(),
            next_id: 0,
            sizes: Arc::new(Sizes::new(config.storage.retention_size)),
            config: config.clone(),
            placed,
        };
        let here = s.here(&config.streams);
        s.launch(here)?;
        s.playouts.apply(&config.playouts);
        Ok(s)
    }

    /// The files whose change reaches [`Self::reload`] or
    /// [`Self::plugin_file_changed`]: the config and every plugin.
    pub fn watched(&self, config: &Path) -> Vec<PathBuf> {
        let mut files = vec![absolute(config)];
        files.extend(self.config.plugins.values().map(|p| absolute(&p.path)));
        files
    }

    /// Collects readers that have ended (`ended` said so, or their thread
    /// is done); false once none is left (every capture file read, or
    /// stopped by a signal).
    pub fn reap(&mut self, ended: &[usize]) -> bool {
        let (done, running): (Vec<Reader>, Vec<Reader>) = std::mem::take(&mut self.readers)
            .into_iter()
            .partition(|r| ended.contains(&r.id) || r.thread.is_finished());
        self.readers = running;
        for r in done {
            self.join_reader(r);
        }
        // Analysis threads of streams stopped by a reload have ended.
        self.analysis.retain(|t| !t.is_finished());
        !self.readers.is_empty()
    }

    fn join_reader(&mut self, r: Reader) {
        let name = r.key.describe();
        let report = r.thread.join().unwrap_or_else(|_| {
            tracing::error!(source = %name, "capture reader panicked");
            SourceReport {
                source: name,
                counters: Default::default(),
                ignored: 0,
                destinations: Vec::new(),
            }
        });
        self.reports.push(report);
    }

    /// The config that runs now (the last one applied).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Waits for every reader, stream and archive to end.
    pub fn finish(mut self) -> Outcome {
        self.playouts.finish();
        for r in std::mem::take(&mut self.readers) {
            self.join_reader(r);
        }
        for t in self.analysis.drain(..) {
            let _ = t.join();
        }
        let mut streams = Vec::new();
        let mut tasks = Vec::new();
        for s in &self.config.streams {
            if let Some(r) = self.streams.remove(&s.name) {
                streams.push((s.name.clone(), r.stats));
                tasks.push(r.task);
            }
        }
        streams.extend(self.retired);
        tasks.extend(self.finishing.into_values());
        self.shared.io.block_on(async {
            for t in tasks {
                // A restarted stream nobody took over hands its uploads here.
                if let Ok(Some(uploads)) = t.await {
                    uploads.finish().await;
                }
            }
        });
        Outcome {
            streams,
            sources: self.reports,
            plugins: plugin_figures(&self.plugins),
        }
    }

    /// Applies the config file at `path` again: streams that were added
    /// start, streams that were removed stop (their hour ends), streams
    /// whose settings or plugin list changed restart (their hour goes on,
    /// marked with a discontinuity); the others are not touched. Changed
    /// `[plugins.NAME]` tables are swapped in at each stream's next
    /// segment boundary. A config with any problem is not applied at all.
    pub fn reload(&mut self, path: &Path) {
        let new = match crate::config::load(path) {
            Ok(c) => c,
            Err(e) => return refuse(&e),
        };
        let fixed = [
            ("storage", new.storage != self.config.storage),
            ("serve", new.serve != self.config.serve),
            (
                "stats_interval",
                new.stats_interval != self.config.stats_interval,
            ),
            ("plugin_cache", new.plugin_cache != self.config.plugin_cache),
            ("state_dir", new.state_dir != self.config.state_dir),
        ];
        for (key, _) in fixed.iter().filter(|(_, changed)| *changed) {
            tracing::warn!(file = %path.display(), key, "changed, but a running hlsvault cannot take it: it applies at the next start");
        }
        let mut problems = Vec::new();
        // Changed plugin tables are built first: a config whose plugins do
        // not load changes nothing.
        let mut built = BTreeMap::new();
        for (name, p) in &new.plugins {
            if self.config.plugins.get(name) == Some(p) {
                continue;
            }
            let loaded = self.plugin_runtime().and_then(|r| {
                match self.plugins.get(name) {
                    Some(slot) => r.reload(p, &slot.current().0),
                    None => r.load(p),
                }
                .map_err(|e| e.to_string())
            });
            match loaded {
                Ok(l) => {
                    built.insert(name.clone(), l);
                }
                Err(reason) => problems.push(plugin_problem(name, reason)),
            }
        }
        let changed = new
            .streams
            .iter()
            .enumerate()
            .filter(|(_, s)| self.streams.get(&s.name).is_none_or(|r| r.cfg != **s));
        // A missing interface is waited for, as at the start.
        problems.extend(
            source_findings(changed)
                .into_iter()
                .filter(|(_, transient)| !transient)
                .map(|(p, _)| p),
        );
        if !problems.is_empty() {
            return refuse(&ConfigErrors {
                file: path.to_path_buf(),
                problems,
            });
        }

        for (name, loaded) in built {
            match self.plugins.get(&name) {
                Some(slot) => {
                    slot.replace(loaded);
                    tracing::info!(plugin = %name, "plugin table changed: streams take it at their next segment boundary");
                }
                None => {
                    self.plugins.insert(name, Slot::new(loaded));
                }
            }
        }
        self.plugins.retain(|n, _| new.plugins.contains_key(n));

        self.playouts.apply(&new.playouts);
        if let Some((_, pins)) = &self.shared.cluster {
            pins.send_replace(pinned(&new.streams));
        }
        self.config = Config {
            streams: new.streams,
            playouts: new.playouts,
            plugins: new.plugins,
            ..self.config.clone()
        };
        let (added, removed, restarted) = self.apply();
        tracing::info!(
            file = %path.display(),
            added = ?added,
            removed = ?removed,
            restarted = ?restarted,
            "config reloaded; the other streams go on untouched"
        );
    }

    /// The cluster places `here` on this node now: the streams placed
    /// away stop, those placed here start.
    pub fn place(&mut self, here: BTreeSet<String>) {
        self.placed = Some(here);
        let (added, removed, _) = self.apply();
        tracing::info!(started = ?added, stopped = ?removed, "the cluster moved streams");
    }

    /// Which of `streams` run here: all, or in a cluster those it places
    /// here.
    fn here(&self, streams: &[StreamConfig]) -> Vec<StreamConfig> {
        streams
            .iter()
            .filter(|s| self.placed.as_ref().is_none_or(|p| p.contains(&s.name)))
            .cloned()
            .collect()
    }

    /// Makes the running streams those of the config that run here:
    /// streams no longer wanted stop (their hour ends), changed ones
    /// restart (their hour goes on), new ones start. Returns the names of
    /// those added, removed and restarted.
    fn apply(&mut self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let wanted = self.here(&self.config.streams);
        let removed: Vec<String> = self
            .streams
            .keys()
            .filter(|n| !wanted.iter().any(|s| &s.name == *n))
            .cloned()
            .collect();
        for name in &removed {
            self.retire(name, false);
        }
        let (mut start, mut restarted) = (Vec::new(), Vec::new());
        for s in wanted {
            match self.streams.get(&s.name) {
                None => start.push(s),
                Some(r) if r.cfg != s => {
                    self.retire(&s.name, true);
                    restarted.push(s.name.clone());
                    start.push(s);
                }
                Some(_) => {}
            }
        }
        let added: Vec<String> = start
            .iter()
            .map(|s| s.name.clone())
            .filter(|n| !restarted.contains(n))
            .collect();
        if let Err(e) = self.launch(start) {
            tracing::error!(error = %e, "cannot start the added streams");
        }
        (added, removed, restarted)
    }

    /// A plugin file changed: compiled again and swapped in at each of its
    /// streams' next segment boundary. A file that no longer loads leaves
    /// the running build.
    pub fn plugin_file_changed(&mut self, path: &Path) {
        let Some(runtime) = self.plugin_runtime.clone() else {
            return;
        };
        for (name, slot) in &self.plugins {
            let (old, _) = slot.current();
            if absolute(&old.settings.path) != path {
                continue;
            }
            match runtime.reload(&old.settings, &old) {
                Ok(new) => {
                    tracing::info!(plugin = %name, path = %path.display(), "plugin file changed: compiled again; streams take it at their next segment boundary");
                    slot.replace(new);
                }
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "plugin file changed but cannot be loaded; the running build stays");
                }
            }
        }
    }

    fn plugin_runtime(&mut self) -> Result<Arc<plugin::Runtime>, String> {
        if let Some(r) = &self.plugin_runtime {
            return Ok(r.clone());
        }
        let r = Arc::new(
            plugin::Runtime::new(self.config.plugin_cache_location()).map_err(|e| e.to_string())?,
        );
        self.plugin_runtime = Some(r.clone());
        Ok(r)
    }

    /// Stops feeding stream `name`: its analysis flushes, and its archive
    /// ends the hour unless `restart` (the next incarnation continues it,
    /// and takes its uploads over). Its archive task is kept for a next
    /// incarnation to wait on.
    fn retire(&mut self, name: &str, restart: bool) {
        let Some(r) = self.streams.remove(name) else {
            return;
        };
        r.keep_open.store(restart, Ordering::Relaxed);
        if let Some(reader) = self.readers.iter_mut().find(|x| x.id == r.reader) {
            // A reader that ended already has dropped the route.
            let _ = reader.control.send(Control::Remove(r.route));
            reader.routes = reader.routes.saturating_sub(1);
        }
        if !restart {
            tracing::info!(stream = %name, "the stream no longer runs here (removed from the config, or placed on other nodes): stopping it");
        }
        self.retired.push((name.to_string(), r.stats));
        self.finishing.insert(name.to_string(), r.task);
    }

    /// Starts `streams`; one with an earlier incarnation still finishing
    /// first waits for it to end writing (the hour and the uploads are the
    /// new one's to continue).
    fn launch(&mut self, streams: Vec<StreamConfig>) -> anyhow::Result<()> {
        let mut fresh: Vec<(ReaderKey, Vec<(String, Route)>)> = Vec::new();
        for s in streams {
            let earlier = self.finishing.remove(&s.name);
            let (route, running) = self.spawn_stream(&s, earlier)?;
            let key = ReaderKey::of(&s);
            // Live readers take streams while running; a capture file is
            // read from its start for the streams added later.
            let live = self
                .readers
                .iter_mut()
                .find(|r| r.key == key && r.routes > 0 && key.is_live());
            match live {
                Some(reader) => {
                    reader.routes += 1;
                    let reader_id = reader.id;
                    if let Err(e) = reader.control.send(Control::Add(route)) {
                        tracing::error!(stream = %s.name, "the capture reader ended before the stream could join it");
                        drop(e);
                    }
                    self.streams.insert(
                        s.name.clone(),
                        Running {
                            reader: reader_id,
                            ..running
                        },
                    );
                }
                None => {
                    self.streams.insert(s.name.clone(), running);
                    match fresh.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, routes)) => routes.push((s.name.clone(), route)),
                        None => fresh.push((key, vec![(s.name.clone(), route)])),
                    }
                }
            }
        }
        for (key, routes) in fresh {
            let id = self.next();
            for (name, _) in &routes {
                if let Some(r) = self.streams.get_mut(name) {
                    r.reader = id;
                }
            }
            let (tx, rx) = channel();
            let n = routes.len();
            let routes: Vec<Route> = routes.into_iter().map(|(_, r)| r).collect();
            let (progress, stop, wake, k) = (
                self.shared.progress.clone(),
                self.shared.stop.clone(),
                self.shared.wake.clone(),
                key.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("reader-{id}"))
                .spawn(move || {
                    let report = reader::read(k, routes, rx, &progress, &stop);
                    let _ = wake.send(Wake::ReaderEnded(id));
                    report
                })?;
            self.readers.push(Reader {
                id,
                key,
                control: tx,
                routes: n,
                thread,
            });
        }
        self.publish_figures();
        Ok(())
    }

    /// Starts one stream's analysis thread and archive task; returns the
    /// route its reader feeds.
    fn spawn_stream(
        &mut self,
        s: &StreamConfig,
        after: Option<ArchiveTask>,
    ) -> anyhow::Result<(Route, Running)> {
        let stats = Arc::new(StreamStats::default());
        let (input_tx, input_rx) = sync_channel::<Input>(QUEUE_BATCHES);
        let (seg_tx, seg_rx) = tokio::sync::mpsc::channel::<Finished>(QUEUE_SEGMENTS);
        let slots = stream_plugins(s, &self.plugins);
        let (cfg, st) = (s.clone(), stats.clone());
        let cluster = self.shared.cluster.as_ref().map(|(node, _)| node.clone());
        // A cluster's standby holds segments in memory; a killed node's
        // growing files are not its to recover (the standby took over).
        let growing = match cluster {
            Some(_) => None,
            None => UploadQueue::growing_dir(&self.shared.limits, &s.name),
        };
        self.analysis.push(
            std::thread::Builder::new()
                .name(format!("stream-{}", s.name))
                .spawn(move || analyse(cfg, input_rx, seg_tx, st, slots, growing))?,
        );
        let keep_open = Arc::new(AtomicBool::new(false));
        let settings = ArchiveSettings {
            target_secs: s.segment_duration.as_secs_f64().round() as u64,
            window: s.live_window,
            urls: self.config.storage.urls.clone(),
            retention: self.config.storage.retention,
            retention_size: s.retention_size,
            sizes: self.sizes.clone(),
            url_expiry: self.config.storage.url_expiry,
            plugins: stream_plugins(s, &self.plugins),
            markers: s.scte35_tags.into(),
        };
        let span = tracing::info_span!("stream", name = %s.name);
        let shared = &self.shared;
        let publish = Publish {
            store: shared.store.clone(),
            limits: shared.limits.clone(),
            settings,
            cfg: s.clone(),
            stats: stats.clone(),
            stop: shared.stop.clone(),
            restart: keep_open.clone(),
            cluster,
        };
        let task = shared.io.spawn(publish.run(seg_rx, after).instrument(span));
        let id = self.next();
        let route = Route {
            id,
            endpoint: s.source.endpoint(),
            buffer: s.source.receive_buffer().unwrap_or_default(),
            stall_timeout: s.stall_timeout,
            tx: input_tx,
            stats: stats.clone(),
            stream: s.name.clone(),
        };
        let running = Running {
            cfg: s.clone(),
            stats,
            route: id,
            reader: usize::MAX,
            keep_open,
            task,
        };
        Ok((route, running))
    }

    fn next(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    /// Tells the server and the figures logger what runs now.
    fn publish_figures(&self) {
        let streams = self
            .config
            .streams
            .iter()
            .filter_map(|s| {
                self.streams.get(&s.name).map(|r| StreamFigures {
                    name: s.name.clone(),
                    stall_timeout: s.stall_timeout,
                    stats: r.stats.clone(),
                })
            })
            .collect();
        let configured = self
            .config
            .streams
            .iter()
            .map(|s| (s.name.clone(), s.stall_timeout))
            .collect();
        self.shared
            .figures
            .set(configured, streams, plugin_figures(&self.plugins));
    }
}

/// Every stream's name and pins, for the placement.
pub fn pinned(streams: &[StreamConfig]) -> Vec<Pinned> {
    streams
        .iter()
        .map(|s| (s.name.clone(), s.nodes.clone()))
        .collect()
}

/// Logs why a changed config is not applied; the running one stays.
fn refuse(e: &ConfigErrors) {
    for p in &e.problems {
        tracing::error!(file = %e.file.display(), key = %p.key, reason = %p.reason, "config change not applied (the running config stays)");
    }
}

/// Every plugin's figures, by name (they carry on across reloads).
pub fn plugin_figures(
    plugins: &BTreeMap<String, Arc<Slot>>,
) -> Vec<(String, Arc<plugin::PluginFigures>)> {
    plugins
        .iter()
        .map(|(n, s)| (n.clone(), s.current().0.figures.clone()))
        .collect()
}

/// The plugins of stream `s`, in its order. Its analysis side and its
/// archive side each get all of them: a plugin's build may implement other
/// hooks after a reload, and an instance is only made by the side that
/// calls it.
fn stream_plugins(s: &StreamConfig, plugins: &BTreeMap<String, Arc<Slot>>) -> Vec<Arc<Slot>> {
    s.plugins
        .iter()
        .filter_map(|n| plugins.get(n))
        .cloned()
        .collect()
}
