//! Watches the config file and the plugin files (notify) and reports each
//! changed file once it has settled.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

/// How long a file must stay quiet before it is reported (writers finish).
const SETTLE: Duration = Duration::from_millis(300);

/// Files being watched.
pub struct FileWatch {
    watcher: notify::RecommendedWatcher,
    events: Receiver<PathBuf>,
    files: BTreeSet<PathBuf>,
    folders: BTreeSet<PathBuf>,
    /// File -> when it last changed, until it settles.
    pending: HashMap<PathBuf, Instant>,
}

impl FileWatch {
    /// A watcher of no file yet; `None` (logged) when the platform refuses.
    pub fn new() -> Option<Self> {
        let (tx, events) = channel::<PathBuf>();
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
                    let _ = tx.send(p);
                }
            }
        });
        match watcher {
            Ok(watcher) => Some(FileWatch {
                watcher,
                events,
                files: BTreeSet::new(),
                folders: BTreeSet::new(),
                pending: HashMap::new(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch files; the config and plugins will not reload");
                None
            }
        }
    }

    /// Watches exactly `files` from now on. Editors and deployments replace
    /// files by rename, so their folders are watched.
    pub fn set(&mut self, files: impl IntoIterator<Item = PathBuf>) {
        self.files = files.into_iter().map(|f| absolute(&f)).collect();
        let folders: BTreeSet<PathBuf> = self
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.folders.difference(&folders) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in folders.difference(&self.folders) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::error!(dir = %dir.display(), error = %e, "cannot watch a folder; its files will not reload");
            }
        }
        self.folders = folders;
    }

    /// Waits up to `wait` and returns the watched files that changed and
    /// have since stayed quiet for [`SETTLE`].
    pub fn changed(&mut self, wait: Duration) -> Vec<PathBuf> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left.min(SETTLE / 3)) {
                Ok(p) if self.files.contains(&p) => {
                    self.pending.insert(p, Instant::now());
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Vec::new(),
            }
            let settled: Vec<PathBuf> = self
                .pending
                .iter()
                .filter(|(_, t)| t.elapsed() >= SETTLE)
                .map(|(p, _)| p.clone())
                .collect();
            if !settled.is_empty() || Instant::now() >= until {
                for p in &settled {
                    self.pending.remove(p);
                }
                return settled;
            }
        }
    }
}

/// The path made absolute (as notify reports it), not resolving links.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
