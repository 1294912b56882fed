//! `hlsvault run`: archives every stream of a config until its sources
//! end or a signal stops them, applying changes to the config and plugin
//! files while it runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::check::why_empty;
use super::figures_log::watch_figures;
use super::node::Node;
use super::plugins::load_plugins;
use super::reader::{Progress, ReaderKey, SourceReport};
use super::store::open_store;
use super::supervisor::{self, Supervisor};
use super::watch::{self, FileWatch};
use crate::config::Config;
use crate::figures::{Figures, Snapshot};
use hlsvault_plugin as plugin;
use hlsvault_store::QueueLimits;

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per stream: its name and figures, in config order.
    pub streams: Vec<(String, Snapshot)>,
    /// Per reader (capture file or interface), what it saw.
    pub sources: Vec<SourceReport>,
    /// Per plugin: its name and figures.
    pub plugins: Vec<(String, plugin::PluginSnapshot)>,
    /// Per stream: what each of its PIDs was, and whether it was kept.
    pub pids: Vec<(String, Vec<hlsvault_ts::PidInfo>)>,
    /// Streams of capture files that archived nothing, and why.
    pub empty: Vec<(String, String)>,
}

impl Report {
    /// Whether every stream ran to the end without losing anything, and
    /// every capture file gave each of its streams something to archive.
    pub fn healthy(&self) -> bool {
        self.streams.iter().all(|(_, s)| s.healthy()) && self.empty.is_empty()
    }
}

/// Archives every stream of `config` until its sources end (capture files)
/// or a SIGINT/SIGTERM stops them (live sources). With `file` (the config's
/// path), changes to it and to the plugin files are applied while running
/// (see `Supervisor::reload`).
pub fn run(config: &Config, file: Option<&Path>) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hlsvault-io")
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    runtime.spawn(stop_on_signal(stop.clone()));
    let store = open_store(config)?;
    let plugin_runtime = match config.plugins.is_empty() {
        true => None,
        false => Some(Arc::new(plugin::Runtime::new(
            config.plugin_cache_location(),
        )?)),
    };
    let plugins = match &plugin_runtime {
        Some(r) => {
            let (loaded, problems) = load_plugins(config, r);
            if let Some(p) = problems.first() {
                anyhow::bail!("{}: {}", p.key, p.reason);
            }
            loaded
        }
        None => BTreeMap::new(),
    };
    let figures = Arc::new(Figures::default());
    if let Some(serve) = &config.serve {
        let listener = runtime.block_on(tokio::net::TcpListener::bind(serve.listen))?;
        let figures = figures.clone();
        let (store, config) = (store.clone(), config.clone());
        runtime.spawn(async move {
            if let Err(e) = crate::serve::serve(listener, store, &config, Some(figures)).await {
                tracing::error!(error = %e, "playback server failed");
            }
        });
    }
    tracing::info!(
        store = store.describe(),
        streams = config.streams.len(),
        "archiving"
    );
    let total = config
        .streams
        .iter()
        .filter_map(|s| match ReaderKey::of(s) {
            ReaderKey::File(p, _) => Some(p),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let progress = Arc::new(Progress::new(total));
    let mut files = FileWatch::new();
    // In a cluster, the streams it places here, once it is joined.
    let (cluster, placed) = match &config.cluster {
        Some(settings) => {
            let (pins, streams) = tokio::sync::watch::channel(supervisor::pinned(&config.streams));
            let (node, here) = runtime
                .block_on(Node::start(settings.clone(), streams, files.waker()))
                .context("cluster")?;
            tracing::info!(node = node.name(), streams = ?here, "joined the cluster");
            figures.set_node(node.figures.clone());
            (Some((node, pins)), Some(here))
        }
        None => (None, None),
    };
    let node = cluster.as_ref().map(|(n, _)| n.clone());
    let shared = supervisor::Shared {
        io: runtime.handle().clone(),
        limits: QueueLimits {
            uploads: Arc::new(tokio::sync::Semaphore::new(
                config.storage.upload_concurrency,
            )),
            memory: config.storage.queue_memory,
            spool_dir: super::state::prepare(config).context("state_dir")?,
        },
        store,
        stop: stop.clone(),
        progress: progress.clone(),
        figures: figures.clone(),
        wake: files.waker(),
        cluster,
    };
    let mut running = Supervisor::start(shared, config.clone(), plugin_runtime, plugins, placed)?;
    if let Some(f) = file {
        files.set(running.watched(f));
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let interval = config.stats_interval;
    let logger = {
        let figures = figures.clone();
        std::thread::Builder::new()
            .name("figures".into())
            .spawn(move || watch_figures(&figures, interval, done_rx))?
    };
    // Until every reader has ended (in a cluster, until a signal): apply
    // the changed files and placements.
    let mut ended = Vec::new();
    let go_on = |running: &mut Supervisor, ended: &[usize]| {
        let reading = running.reap(ended);
        reading || (node.is_some() && !stop.load(Ordering::Relaxed))
    };
    while go_on(&mut running, &ended) {
        let woken = files.next(WATCH_EVERY);
        ended = woken.ended;
        if let Some(here) = woken.placed {
            running.place(here);
        }
        let Some(f) = file else { continue };
        if woken.changed.is_empty() {
            continue;
        }
        for path in woken.changed {
            match path == watch::absolute(f) {
                true => running.reload(f),
                false => running.plugin_file_changed(&path),
            }
        }
        // A reload may have changed which plugin files there are.
        files.set(running.watched(f));
    }
    let running_config = running.config().clone();
    let outcome = running.finish();
    if let Some(node) = &node {
        runtime.block_on(node.leave());
    }
    progress.finish();
    drop(done_tx);
    let _ = logger.join();
    Ok(Report {
        streams: outcome
            .streams
            .iter()
            .map(|(n, st)| (n.clone(), st.snapshot()))
            .collect(),
        pids: outcome
            .streams
            .iter()
            .map(|(n, st)| (n.clone(), st.pids()))
            .collect(),
        empty: outcome
            .streams
            .iter()
            .filter_map(|(name, st)| {
                let cfg = running_config.streams.iter().find(|s| &s.name == name)?;
                let files = !cfg.source.is_live();
                let snap = st.snapshot();
                // Empty because of what the file holds (what plugins or
                // the store did is counted and judged apart).
                let input = st.why_empty().is_some() || snap.datagrams == 0;
                (files && input && snap.segments == 0 && !snap.failed)
                    .then(|| (name.clone(), why_empty(cfg, st, &outcome.sources)))
            })
            .collect(),
        sources: outcome.sources,
        plugins: outcome
            .plugins
            .into_iter()
            .map(|(n, f)| (n, f.snapshot()))
            .collect(),
    })
}

/// How often the run looks at its readers and watched files when nothing
/// wakes it.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Sets `stop` at the first SIGINT or SIGTERM; a second one exits at once.
async fn stop_on_signal(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; SIGTERM will not flush");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!(
        "stopping: flushing open segments and playlists (a second signal exits at once)"
    );
    stop.store(true, Ordering::Relaxed);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::error!("second signal: exiting without flushing");
    std::process::exit(130);
}
