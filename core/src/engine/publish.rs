//! A stream's archive task: the segments its analysis finishes go to its
//! [`StreamArchive`] through its upload queue, which a restarted stream
//! hands on to its next incarnation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::archive::{ArchiveSettings, StreamArchive};
use super::growing::{left_by_earlier_runs, recover, Finished};
use super::node::Node;
use super::plugins::plugins_of;
use crate::config::StreamConfig;
use crate::figures::StreamStats;
use hlsvault_hls::GapCause;
use hlsvault_store::{ObjectStore, QueueLimits, StoreError, UploadQueue};

/// A stream's archive task, as the supervisor holds it: it ends with the
/// stream's uploads when the stream restarts (for the next incarnation).
pub(super) type ArchiveTask = tokio::task::JoinHandle<Option<Uploads>>;

/// A stream's upload queue and the task that drains it. A restarted
/// stream hands them on to its next incarnation, so what waits for the
/// store (in memory or spooled) is neither dropped nor read back.
pub(super) struct Uploads {
    queue: Arc<UploadQueue>,
    task: tokio::task::JoinHandle<()>,
    /// The figures of the incarnation it serves.
    stats: Arc<StreamStats>,
}

impl Uploads {
    fn start(queue: UploadQueue, stats: Arc<StreamStats>) -> Self {
        let queue = Arc::new(queue);
        let task = tokio::spawn({
            let q = queue.clone();
            async move { q.run().await }
        });
        Uploads { queue, task, stats }
    }

    /// No more objects come: waits until every one is stored (or, while
    /// the store is down, spooled for the next run).
    pub(super) async fn finish(self) {
        self.queue.close();
        if self.task.await.is_err() {
            tracing::error!("the upload task panicked");
            self.stats.fail();
        }
    }
}

/// One incarnation of a stream's archive task: what it writes, where, and
/// the flags that leave the hour open at its end.
pub(super) struct Publish {
    /// Where the archive goes (through the stream's upload queue).
    pub store: Arc<dyn ObjectStore>,
    /// What the upload queues share.
    pub limits: QueueLimits,
    /// How the archive is kept.
    pub settings: ArchiveSettings,
    /// The stream.
    pub cfg: StreamConfig,
    /// Its figures.
    pub stats: Arc<StreamStats>,
    /// The run's stop flag (a signal).
    pub stop: Arc<AtomicBool>,
    /// The stream's own (a restart), which also hands the uploads on.
    pub restart: Arc<AtomicBool>,
    /// This node, in a cluster: the stream's segments follow its duty
    /// here, straight to the store (no upload queue: what the store does
    /// not take, the standby holds).
    pub cluster: Option<Arc<Node>>,
}

impl Publish {
    /// Stores the segments of `rx` in order, through the stream's upload
    /// queue. A stop or a restart leaves the hour open at the end; a
    /// restart also hands the uploads on. An earlier incarnation of the
    /// stream (`after`) finishes writing first, and its uploads go on here.
    pub(super) async fn run(
        self,
        mut rx: tokio::sync::mpsc::Receiver<Finished>,
        after: Option<ArchiveTask>,
    ) -> Option<Uploads> {
        let handed = match after {
            Some(earlier) => earlier.await.ok().flatten(),
            None => None,
        };
        if let Some(node) = self.cluster.clone() {
            super::duty::run(&self, node, &mut rx).await;
            return None;
        }
        let stats = &self.stats;
        // What a killed run left growing is this process's to finish, once.
        let first = handed.is_none();
        let mut uploads = match handed {
            Some(u) => u,
            None => {
                match UploadQueue::open(self.store.clone(), &self.cfg.name, self.limits.clone())
                    .await
                {
                    Ok(q) => Uploads::start(q, stats.clone()),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot open the stream's spool; its segments are lost");
                        lose_all(&mut rx, stats).await;
                        return None;
                    }
                }
            }
        };
        uploads.stats = stats.clone();
        stats.attach_queue(uploads.queue.clone());
        self.archive(uploads.queue.clone(), &mut rx, first).await;
        if self.restart.load(Ordering::Relaxed) {
            return Some(uploads);
        }
        uploads.finish().await;
        None
    }

    async fn archive(
        &self,
        queue: Arc<UploadQueue>,
        rx: &mut tokio::sync::mpsc::Receiver<Finished>,
        recover_leftovers: bool,
    ) {
        let (cfg, stats) = (&self.cfg, &self.stats);
        // A store that cannot be reached yet is waited for: reading the
        // archive back (never guessing) comes before the first segment.
        // Meanwhile the segments queue up behind this task.
        let mut wait = Duration::from_secs(1);
        let mut archive = loop {
            let plugins = plugins_of(&self.settings.plugins, cfg);
            match StreamArchive::open(
                queue.clone(),
                &cfg.name,
                self.settings.clone(),
                stats.clone(),
                plugins,
            )
            .await
            {
                Ok(a) => break a,
                Err(e @ StoreError::Unreachable { .. }) if !self.stop.load(Ordering::Relaxed) => {
                    tracing::warn!(error = %e, retry_in = %humantime::format_duration(wait), "cannot read the stream's archive back yet; waiting for the store");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the stream's archive; its segments are lost");
                    return lose_all(rx, stats).await;
                }
            }
        };
        if recover_leftovers {
            self.recover_leftovers(&mut archive).await;
        }
        // Retention by size asks this stream to delete hours between its
        // segments, and while it receives nothing.
        let mut deletions = archive.deletions();
        loop {
            let asked = async {
                match deletions.as_mut() {
                    Some(d) => d.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                seg = rx.recv() => {
                    let Some(seg) = seg else { break };
                    if let Err(e) = archive.add(seg).await {
                        tracing::error!(error = %e, "store write failed");
                    }
                }
                Some(hours) = asked => archive.delete_by_size(hours).await,
            }
        }
        // Stopped by a signal or restarted, the hour stays open for the
        // next run or incarnation to continue.
        let end = !(self.stop.load(Ordering::Relaxed) || self.restart.load(Ordering::Relaxed));
        if let Err(e) = archive.finish(end).await {
            tracing::error!(error = %e, "cannot write the final playlists");
        }
        // What retention by size asked for meanwhile (a capture file's
        // segments come faster than deletions), and what the last hour,
        // now closed, puts over.
        if let Some(asked) = deletions.as_mut() {
            archive.enforce_sizes();
            while let Ok(hours) = asked.try_recv() {
                archive.delete_by_size(hours).await;
            }
        }
    }
}

impl Publish {
    /// Stores what a killed run left growing, before this run's first
    /// segment (which then follows a gap): cut again, so that each is
    /// whole, and removed once queued.
    async fn recover_leftovers(&self, archive: &mut StreamArchive) {
        let Some(dir) = UploadQueue::growing_dir(&self.limits, &self.cfg.name) else {
            return;
        };
        let program = self.cfg.selection().program;
        let found = tokio::task::spawn_blocking(move || {
            left_by_earlier_runs(&dir)
                .into_iter()
                .map(|left| {
                    let segments = recover(&left, program);
                    (left, segments)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (left, segments) in found {
            match segments {
                Ok(segments) => {
                    let media: u64 = segments.iter().map(|s| s.duration).sum();
                    tracing::info!(
                        path = %left.path.display(),
                        segments = segments.len(),
                        media = %humantime::format_duration(Duration::from_millis(media / 90)),
                        "recovered the segment a killed run left growing"
                    );
                    for seg in segments {
                        if let Err(e) = archive.add(Finished::in_memory(seg)).await {
                            tracing::error!(error = %e, "cannot store a recovered segment");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(path = %left.path.display(), error = %e, "cannot read a segment a killed run left growing; it is lost");
                }
            }
            if let Err(e) = tokio::fs::remove_file(&left.path).await {
                tracing::warn!(path = %left.path.display(), error = %e, "cannot remove a recovered segment's file");
            }
            archive.mark_gap(GapCause::Restart);
        }
    }
}

/// The stream has failed: every segment still coming is counted lost (its
/// file removed, if it grew on disk).
async fn lose_all(rx: &mut tokio::sync::mpsc::Receiver<Finished>, stats: &StreamStats) {
    stats.fail();
    while let Some(seg) = rx.recv().await {
        stats.lost_segment();
        if let Some(path) = seg.file {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}
