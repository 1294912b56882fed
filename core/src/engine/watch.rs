//! What wakes a run's loop: the config file and the plugin files changing
//! (notify; each changed file is reported once it has settled), and a
//! capture reader ending.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

/// How long a file must stay quiet before it is reported (writers finish).
const SETTLE: Duration = Duration::from_millis(300);

/// Something for the run's loop to look at.
pub enum Wake {
    /// A file changed (reported by notify; not yet settled).
    Changed(PathBuf),
    /// The reader with this id has ended.
    ReaderEnded(usize),
    /// The cluster places these streams on this node now.
    Placed(BTreeSet<String>),
}

/// What woke a run's loop.
#[derive(Debug, Default)]
pub struct Woken {
    /// Readers that ended.
    pub ended: Vec<usize>,
    /// Watched files that changed and have settled.
    pub changed: Vec<PathBuf>,
    /// The streams the cluster places here now, if that changed.
    pub placed: Option<BTreeSet<String>>,
}

/// Files being watched, and the readers' ends.
pub struct FileWatch {
    /// None when the platform refuses to watch (logged): nothing reloads.
    watcher: Option<notify::RecommendedWatcher>,
    wake: Sender<Wake>,
    events: Receiver<Wake>,
    files: BTreeSet<PathBuf>,
    folders: BTreeSet<PathBuf>,
    /// File -> when it last changed, until it settles.
    pending: HashMap<PathBuf, Instant>,
}

impl FileWatch {
    /// A watcher of no file yet.
    pub fn new() -> Self {
        let (wake, events) = channel::<Wake>();
        let tx = wake.clone();
        let watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            // New content only: reading a file (as a reload does) is an
            // access event, and must not trigger another reload.
            use notify::event::{EventKind, ModifyKind};
            let Ok(e) = e else { return };
            let new_content = matches!(
                e.kind,
                EventKind::Create(_)
                    | EventKind::Modify(
                        ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                    )
            );
            if new_content {
                for p in e.paths {
                    let _ = tx.send(Wake::Changed(p));
                }
            }
        });
        let watcher = watcher
            .map_err(|e| tracing::error!(error = %e, "cannot watch files; the config and plugins will not reload"))
            .ok();
        FileWatch {
            watcher,
            wake,
            events,
            files: BTreeSet::new(),
            folders: BTreeSet::new(),
            pending: HashMap::new(),
        }
    }

    /// Where a reader says it has ended.
    pub fn waker(&self) -> Sender<Wake> {
        self.wake.clone()
    }

    /// Watches exactly `files` from now on. Editors and deployments replace
    /// files by rename, so their folders are watched.
    pub fn set(&mut self, files: impl IntoIterator<Item = PathBuf>) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        self.files = files.into_iter().map(|f| absolute(&f)).collect();
        let folders: BTreeSet<PathBuf> = self
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.folders.difference(&folders) {
            let _ = watcher.unwatch(gone);
        }
        for dir in folders.difference(&self.folders) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot watch a folder; its files will not reload");
            }
        }
        self.folders = folders;
    }

    /// Waits up to `wait`, or until a reader ends or the placement
    /// changes. Returns what woke it: the watched files among them once
    /// they have stayed quiet for [`SETTLE`].
    pub fn next(&mut self, wait: Duration) -> Woken {
        let until = Instant::now() + wait;
        let mut woken = Woken::default();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left.min(SETTLE / 3)) {
                Ok(Wake::Changed(p)) if self.files.contains(&p) => {
                    self.pending.insert(p, Instant::now());
                }
                Ok(Wake::ReaderEnded(id)) => woken.ended.push(id),
                Ok(Wake::Placed(here)) => woken.placed = Some(here),
                Ok(Wake::Changed(_)) | Err(RecvTimeoutError::Timeout) => {}
                // Never: this watch holds a sender itself.
                Err(RecvTimeoutError::Disconnected) => {}
            }
            let settled: Vec<PathBuf> = self
                .pending
                .iter()
                .filter(|(_, t)| t.elapsed() >= SETTLE)
                .map(|(p, _)| p.clone())
                .collect();
            let placed = woken.placed.is_some();
            if !settled.is_empty() || !woken.ended.is_empty() || placed || Instant::now() >= until {
                for p in &settled {
                    self.pending.remove(p);
                }
                woken.changed = settled;
                return woken;
            }
        }
    }
}

/// The path made absolute (as notify reports it), not resolving links.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
