//! The `[[playouts]]` of a run: each a stream's archive sent out again a
//! fixed delay behind its live edge, started, stopped and restarted by
//! config reload one by one, beside the streams and untouched by them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::PlayoutConfig;
use crate::figures::{Figures, PlayoutFigures};
use crate::replay::{Replay, ReplayError, ReplayFigures, Span};
use hlsvault_send::SenderSettings;
use hlsvault_store::ObjectStore;

/// A playout that failed waits this long before it starts again.
const RESTART_AFTER: Duration = Duration::from_secs(5);

/// One running playout.
struct Playing {
    config: PlayoutConfig,
    figures: Arc<ReplayFigures>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// The playouts that run now.
pub struct Playouts {
    io: tokio::runtime::Handle,
    store: Arc<dyn ObjectStore>,
    figures: Arc<Figures>,
    stats_interval: Duration,
    running: BTreeMap<String, Playing>,
    /// Config order, for the figures.
    order: Vec<String>,
}

impl Playouts {
    /// None running yet.
    pub fn new(
        io: tokio::runtime::Handle,
        store: Arc<dyn ObjectStore>,
        figures: Arc<Figures>,
        stats_interval: Duration,
    ) -> Self {
        Playouts {
            io,
            store,
            figures,
            stats_interval,
            running: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Makes `wanted` run: new playouts start, removed ones stop, changed
    /// ones restart; the others go on untouched.
    pub fn apply(&mut self, wanted: &[PlayoutConfig]) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, p)| !wanted.iter().any(|w| w.name == **name && w == &p.config))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(p) = self.running.remove(&name) {
                let _ = p.stop.send(true);
                tracing::info!(playout = %name, "playout stopped");
            }
        }
        for w in wanted {
            if !self.running.contains_key(&w.name) {
                let playing = self.start(w.clone());
                self.running.insert(w.name.clone(), playing);
            }
        }
        self.order = wanted.iter().map(|w| w.name.clone()).collect();
        self.figures.set_playouts(
            self.order
                .iter()
                .filter_map(|n| self.running.get(n))
                .map(|p| PlayoutFigures {
                    config: p.config.clone(),
                    figures: p.figures.clone(),
                })
                .collect(),
        );
    }

    fn start(&self, config: PlayoutConfig) -> Playing {
        let figures = Arc::new(ReplayFigures::default());
        let (stop, stopped) = watch::channel(false);
        let replay = Replay {
            stream: config.stream.clone(),
            span: Span::Follow {
                delay: config.delay,
            },
            passes: None,
            rate: 1.0,
            cbr: config.cbr,
            sender: SenderSettings {
                ssrc: Replay::ssrc(&config.stream, &config.to),
                destination: config.to.clone(),
                queue: 0,
            },
            stats_interval: self.stats_interval,
        };
        tracing::info!(playout = %config.name, stream = %config.stream, to = %config.to, delay = %humantime::format_duration(config.delay), "playout started");
        let task = self.io.spawn(play(
            config.name.clone(),
            replay,
            self.store.clone(),
            figures.clone(),
            stopped,
        ));
        Playing {
            config,
            figures,
            stop,
            task,
        }
    }

    /// Stops every playout (each at a datagram boundary) and waits for
    /// them.
    pub fn finish(&mut self) {
        let tasks: Vec<_> = std::mem::take(&mut self.running)
            .into_values()
            .map(|p| {
                let _ = p.stop.send(true);
                p.task
            })
            .collect();
        self.figures.set_playouts(Vec::new());
        self.io.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
    }
}

/// Runs a playout until told to stop; a failure is logged and the
/// playout starts again after [`RESTART_AFTER`].
async fn play(
    name: String,
    replay: Replay,
    store: Arc<dyn ObjectStore>,
    figures: Arc<ReplayFigures>,
    stopped: watch::Receiver<bool>,
) {
    loop {
        let mut until = stopped.clone();
        let stop = async move {
            let _ = until.wait_for(|s| *s).await;
        };
        match replay.run(store.clone(), figures.clone(), stop).await {
            Ok(_) => return,
            Err(e) => {
                let explained = match &e {
                    ReplayError::Socket(_) => "the destination cannot be sent to",
                    _ => "the playout failed",
                };
                tracing::error!(playout = %name, error = %e, "{explained}; it starts again in {}", humantime::format_duration(RESTART_AFTER));
            }
        }
        let mut until = stopped.clone();
        if tokio::time::timeout(RESTART_AFTER, until.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return;
        }
    }
}
