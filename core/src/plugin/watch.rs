//! Hot reload: the plugin files are watched (notify); a changed file is
//! compiled again in the background and put in its slot, and every
//! instance takes it at its stream's next segment boundary. A file that no
//! longer loads leaves the old build running, with a clear log line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::runtime::{Runtime, Slot};

/// How long a file must stay quiet before it is loaded (writers finish).
const SETTLE: Duration = Duration::from_millis(300);

/// Watches the files of `slots` (by plugin name) until the returned
/// watcher is dropped. Errors setting up a watch are logged: the plugins
/// then simply do not reload.
pub fn watch(
    runtime: Arc<Runtime>,
    slots: Vec<(String, Arc<Slot>)>,
) -> Option<notify::RecommendedWatcher> {
    // Editors and deployments replace files by rename: watch the folders.
    let by_file: HashMap<PathBuf, (String, Arc<Slot>)> = slots
        .into_iter()
        .map(|(name, slot)| (absolute(&slot.current().0.config.path), (name, slot)))
        .collect();
    let (tx, rx) = channel::<PathBuf>();
    let mut watcher = match notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
        // New content only: reading a plugin (as a reload does) is an
        // access event, and must not trigger another reload.
        use notify::event::{EventKind, ModifyKind};
        let Ok(e) = e else { return };
        let new_content = matches!(
            e.kind,
            EventKind::Create(_)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any)
        );
        if new_content {
            for p in e.paths {
                let _ = tx.send(p);
            }
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the plugin files; they will not reload");
            return None;
        }
    };
    let folders: std::collections::BTreeSet<PathBuf> = by_file
        .keys()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    for dir in &folders {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch a plugin folder; its plugins will not reload");
        }
    }
    let spawned = std::thread::Builder::new()
        .name("plugin-reload".into())
        .spawn(move || {
            // File -> when it last changed, until it settles.
            let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
            loop {
                match rx.recv_timeout(SETTLE / 3) {
                    Ok(p) => {
                        if by_file.contains_key(&p) {
                            pending.insert(p, Instant::now());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let settled: Vec<PathBuf> = pending
                    .iter()
                    .filter(|(_, t)| t.elapsed() >= SETTLE)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in settled {
                    pending.remove(&p);
                    let (name, slot) = &by_file[&p];
                    let (old, _) = slot.current();
                    match runtime.reload(&old) {
                        Ok(new) => {
                            tracing::info!(plugin = %name, path = %p.display(), "plugin file changed: compiled again; streams take it at their next segment boundary");
                            slot.replace(new);
                        }
                        Err(e) => {
                            tracing::error!(plugin = %name, error = %e, "plugin file changed but cannot be loaded; the running build stays");
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the plugin reload thread; plugins will not reload");
    }
    Some(watcher)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
