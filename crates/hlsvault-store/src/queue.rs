//! The upload queue in front of a store: one per stream, so that each
//! stream's objects are stored in the order they were written (a playlist
//! never before the segments it lists), with retries while the store is
//! down. With a spool directory every queued object is on disk before `put`
//! returns, so a killed process loses none of them: a restart drains the
//! spool first, in order. Without one (diskless), objects wait in memory up
//! to a bound. Spool files are written, read and removed on blocking
//! threads, never on the async workers.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};

use crate::{Listed, ObjectKind, ObjectStore, StoreError};

/// First wait after a failed upload; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Limits shared by every stream's queue.
#[derive(Clone)]
pub struct QueueLimits {
    /// Uploads in flight across all streams.
    pub uploads: Arc<Semaphore>,
    /// Bytes a stream's queue holds in memory: without a spool, more are
    /// held back (store slow) or refused (store down); with one, objects
    /// beyond it wait on disk only.
    pub memory: usize,
    /// Where every queued object waits until it is stored (one folder per
    /// stream), if anywhere.
    pub spool_dir: Option<PathBuf>,
}

/// What a queue counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Upload attempts that failed (and were retried).
    pub retries: u64,
    /// Objects queued while the store was down (with a spool, they wait
    /// on disk).
    pub spooled: u64,
    /// Objects refused: memory bound reached without a spool, or the
    /// spool could not be written.
    pub refused: u64,
    /// Objects waiting now.
    pub waiting: u64,
    /// Of those, objects waiting in the spool (on disk).
    pub spool_depth: u64,
    /// How long segments waited in the queue before they were stored.
    pub latency: PublishLatency,
}

/// Upper bounds (seconds) of the publish-latency buckets: from a quick
/// store (tens of ms) to an outage drained from the spool (minutes).
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// A histogram of publish latencies: from a segment's `put` into the
/// queue to the store accepting it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishLatency {
    /// Segments at or under each bound of [`LATENCY_BOUNDS`] (not cumulative).
    pub buckets: [u64; LATENCY_BOUNDS.len()],
    /// Segments stored.
    pub count: u64,
    /// Sum of their latencies, in microseconds.
    pub sum_micros: u64,
}

impl PublishLatency {
    fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BOUNDS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_micros += d.as_micros() as u64;
    }
}

enum Body {
    Memory(Bytes),
    /// In the spool; `cached` keeps the bytes while memory allows, so that
    /// the upload need not read them back.
    Spooled {
        path: PathBuf,
        cached: Option<Bytes>,
    },
}

impl Body {
    /// Bytes held in memory.
    fn in_memory(&self) -> Option<&Bytes> {
        match self {
            Body::Memory(b) => Some(b),
            Body::Spooled { cached, .. } => cached.as_ref(),
        }
    }
}

struct Item {
    key: String,
    kind: ObjectKind,
    body: Body,
    size: usize,
    /// When it was queued (when this run read it, for a spooled one).
    queued: Instant,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    /// Bytes of items held in memory.
    memory: usize,
    /// The front item is being uploaded.
    busy: bool,
    /// The last upload failed and has not succeeded since.
    down: bool,
    closed: bool,
    next_spool: u64,
    counters: QueueCounters,
}

impl State {
    /// Queues `item`, counting where its body waits.
    fn push(&mut self, item: Item) {
        if item.body.in_memory().is_some() {
            self.memory += item.size;
        }
        if matches!(item.body, Body::Spooled { .. }) {
            self.counters.spool_depth += 1;
        }
        self.items.push_back(item);
        self.counters.waiting = self.items.len() as u64;
    }

    /// Lets go of an item that left the queue; returns its spool file,
    /// for the caller to remove off the async workers.
    fn release(&mut self, item: Item) -> Option<PathBuf> {
        if item.body.in_memory().is_some() {
            self.memory -= item.size;
        }
        self.counters.waiting = self.items.len() as u64;
        match item.body {
            Body::Memory(_) => None,
            Body::Spooled { path, .. } => {
                self.counters.spool_depth -= 1;
                Some(path)
            }
        }
    }
}

/// Removes spool files on a blocking thread.
async fn remove_spooled(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let removed = tokio::task::spawn_blocking(move || {
        for p in paths {
            if let Err(e) = std::fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %e, "cannot remove a stored object from the spool");
            }
        }
    });
    let _ = removed.await;
}

/// A stream's upload queue. It is itself an [`ObjectStore`]: `put` queues
/// (failing only when the object must be refused), `get` sees queued
/// objects first.
pub struct UploadQueue {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    /// Signalled when an object leaves the queue.
    room: Notify,
    limits: QueueLimits,
    spool: Option<PathBuf>,
    /// Held while the queue lives: one process per stream's spool.
    _lock: Option<std::fs::File>,
    name: String,
}

impl UploadQueue {
    /// A queue for stream `name` in front of `inner`. Objects a previous
    /// run left in the spool are queued first, in their order. The spool is
    /// locked: a second process archiving the same stream into the same
    /// place is refused.
    pub async fn open(
        inner: Arc<dyn ObjectStore>,
        name: &str,
        limits: QueueLimits,
    ) -> std::io::Result<Self> {
        let spool = limits.spool_dir.as_ref().map(|d| d.join(name));
        let mut state = State::default();
        let mut lock = None;
        if let Some(dir) = spool.clone() {
            let (file, found) = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir)?;
                let lock = std::fs::File::create(dir.join(".lock"))?;
                if let Err(e) = lock.try_lock() {
                    return Err(std::io::Error::other(format!(
                        "the spool {} is in use by another hlsvault process archiving this stream into the same store ({e})",
                        dir.display()
                    )));
                }
                Ok((lock, read_spool(&dir)?))
            })
            .await
            .map_err(std::io::Error::other)??;
            lock = Some(file);
            for (n, item) in found {
                state.next_spool = state.next_spool.max(n + 1);
                state.push(item);
            }
            if !state.items.is_empty() {
                tracing::info!(
                    stream = name,
                    objects = state.items.len(),
                    "draining the spool a previous run left"
                );
            }
        }
        Ok(UploadQueue {
            inner,
            state: Arc::new(Mutex::new(state)),
            wake: Arc::new(Notify::new()),
            room: Notify::new(),
            limits,
            spool,
            _lock: lock,
            name: name.to_string(),
        })
    }

    /// What the queue counted so far.
    pub fn counters(&self) -> QueueCounters {
        self.state.lock().expect("queue lock").counters
    }

    /// Uploads queued objects, in order, until [`UploadQueue::close`] and
    /// the queue is empty (or, after close, the store stays down and
    /// everything waiting is on disk).
    pub async fn run(&self) {
        let mut retry = RETRY_FIRST;
        loop {
            let next = {
                let mut s = self.state.lock().expect("queue lock");
                let front = s.items.front().map(|item| {
                    let body = match &item.body {
                        Body::Memory(b)
                        | Body::Spooled {
                            cached: Some(b), ..
                        } => Ok(b.clone()),
                        Body::Spooled { path, cached: None } => Err((path.clone(), item.size)),
                    };
                    (item.key.clone(), item.kind, body)
                });
                s.busy = front.is_some();
                match front {
                    Some(f) => Some(f),
                    None if s.closed => return,
                    None => None,
                }
            };
            let Some((key, kind, body)) = next else {
                self.wake.notified().await;
                continue;
            };
            let result = {
                let _permit = self.limits.uploads.acquire().await.expect("semaphore open");
                match body {
                    Ok(b) => self.inner.put(&key, b, kind).await,
                    // Read from the spool only now, and by a store that can
                    // copy file to file, not at all.
                    Err((path, size)) => {
                        self.inner
                            .put_from_file(&key, &path, size as u64, kind)
                            .await
                    }
                }
            };
            match result {
                Ok(()) => {
                    retry = RETRY_FIRST;
                    self.finish_front(false).await;
                }
                // Retrying cannot help: the object is given up (counted),
                // and what waits behind it goes on.
                Err(e) if e.is_permanent() => {
                    tracing::error!(stream = %self.name, %key, error = %e, "the store refuses this object for good; it is not stored");
                    self.finish_front(true).await;
                }
                Err(e) => {
                    let (first, closed) = {
                        let mut s = self.state.lock().expect("queue lock");
                        s.busy = false;
                        s.counters.retries += 1;
                        (!std::mem::replace(&mut s.down, true), s.closed)
                    };
                    if first {
                        tracing::warn!(stream = %self.name, error = %e, "store write failed; retrying with backoff, finished objects wait in order{}",
                            if self.spool.is_some() { " in the spool" } else { " in memory" });
                    }
                    if closed {
                        if self.spool.is_some() && self.all_spooled() {
                            tracing::warn!(stream = %self.name, waiting = self.counters().waiting, "store still down at exit; the spool keeps what waits for the next run");
                            return;
                        }
                        if self.spool.is_none() {
                            let lost = self.abandon();
                            tracing::error!(stream = %self.name, objects = lost, "store still down at exit and no spool_dir: objects lost");
                            return;
                        }
                    }
                    // Jitter spreads the retries of many streams.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 1000)
                        as f64
                        / 1000.0;
                    let wait = retry.mul_f64(0.5 + jitter);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.wake.notified() => {}
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// The front item is done: stored, or lost with `lost`.
    async fn finish_front(&self, lost: bool) {
        let file = self.pop_front(lost);
        remove_spooled(file.into_iter().collect()).await;
    }

    /// Takes the front item off the queue; returns its spool file.
    fn pop_front(&self, lost: bool) -> Option<PathBuf> {
        self.room.notify_waiters();
        let mut s = self.state.lock().expect("queue lock");
        s.busy = false;
        let item = s.items.pop_front()?;
        if lost {
            s.counters.refused += 1;
        } else if item.kind == ObjectKind::Segment {
            s.counters.latency.observe(item.queued.elapsed());
        }
        if std::mem::take(&mut s.down) {
            tracing::info!(stream = %self.name, waiting = s.items.len(), "store writes succeed again; draining in order");
        }
        s.release(item)
    }

    /// Gives up on everything waiting (counted); returns how many.
    fn abandon(&self) -> u64 {
        let mut s = self.state.lock().expect("queue lock");
        let n = s.items.len() as u64;
        s.items.clear();
        s.memory = 0;
        s.counters.refused += n;
        s.counters.waiting = 0;
        s.counters.spool_depth = 0;
        n
    }

    fn all_spooled(&self) -> bool {
        let s = self.state.lock().expect("queue lock");
        s.items
            .iter()
            .all(|i| matches!(i.body, Body::Spooled { .. }))
    }

    /// No more objects will come: [`UploadQueue::run`] returns once
    /// everything is stored, or, while the store is down, once everything
    /// waiting is in the spool (or after one more try without a spool).
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.wake.notify_one();
    }

    /// Without a spool, a store that is up but slower than the stream
    /// holds the stream back (nothing is lost); only a store that is down
    /// makes objects be refused.
    async fn room_in_memory(&self, size: usize) {
        loop {
            {
                let s = self.state.lock().expect("queue lock");
                if s.down || s.items.is_empty() || s.memory + size <= self.limits.memory {
                    return;
                }
            }
            tokio::select! {
                _ = self.room.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Writes `body` to the spool (off the async workers) and keeps it in
    /// memory too while there is room. If the spool cannot be written
    /// (disk full), the object waits in memory only, and that is logged.
    async fn spool_body(&self, dir: &Path, key: &str, kind: ObjectKind, body: Bytes) -> Body {
        let n = self.next_spool_number();
        let (dir, owned_key, bytes) = (dir.to_path_buf(), key.to_string(), body.clone());
        let written =
            tokio::task::spawn_blocking(move || write_spooled(&dir, n, &owned_key, kind, &bytes))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r);
        let s = self.state.lock().expect("queue lock");
        let room = s.memory + body.len() <= self.limits.memory;
        match written {
            Ok(path) => Body::Spooled {
                path,
                cached: room.then_some(body),
            },
            Err(e) => {
                tracing::error!(stream = %self.name, %key, error = %e, "cannot write to the spool; the object waits in memory only");
                Body::Memory(body)
            }
        }
    }
}

impl UploadQueue {
    /// Where the stream `name` may write segments as they grow, so that
    /// [`ObjectStore::adopt_file`] queues them without a copy (`None` without a
    /// spool). What a killed run left there is the caller's to recover.
    pub fn growing_dir(limits: &QueueLimits, name: &str) -> Option<PathBuf> {
        Some(limits.spool_dir.as_ref()?.join(name).join("growing"))
    }

    fn next_spool_number(&self) -> u64 {
        let mut s = self.state.lock().expect("queue lock");
        s.next_spool += 1;
        s.next_spool - 1
    }

    /// Queues an object whose body waits in `body`. Only the newest
    /// version of a playlist matters: a waiting older one (not in flight)
    /// is dropped, as everything it listed is still ahead of the new one.
    async fn enqueue(&self, key: &str, kind: ObjectKind, body: Body, size: usize) {
        let stale = {
            let mut s = self.state.lock().expect("queue lock");
            if s.down {
                s.counters.spooled += u64::from(matches!(body, Body::Spooled { .. }));
            }
            let mut stale = Vec::new();
            if kind != ObjectKind::Segment {
                let skip = usize::from(s.busy);
                if let Some(i) = s
                    .items
                    .iter()
                    .skip(skip)
                    .position(|i| i.key == key)
                    .map(|i| i + skip)
                {
                    let old = s.items.remove(i).expect("found");
                    stale.extend(s.release(old));
                }
            }
            s.push(Item {
                key: key.to_string(),
                kind,
                body,
                size,
                queued: Instant::now(),
            });
            stale
        };
        remove_spooled(stale).await;
        self.wake.notify_one();
    }
}

#[async_trait::async_trait]
impl ObjectStore for UploadQueue {
    async fn put(&self, key: &str, body: Bytes, kind: ObjectKind) -> Result<(), StoreError> {
        // A key no store takes is refused now, not queued.
        crate::validate_key(key)?;
        let size = body.len();
        let refuse = |reason: &str| StoreError::Backend {
            op: "queue",
            key: key.to_string(),
            reason: reason.to_string(),
            source: None,
        };
        let body = match &self.spool {
            Some(dir) => self.spool_body(dir, key, kind, body).await,
            None => {
                self.room_in_memory(size).await;
                let mut s = self.state.lock().expect("queue lock");
                if s.down && s.memory + size > self.limits.memory {
                    s.counters.refused += 1;
                    return Err(refuse("the upload queue is full and there is no spool"));
                }
                Body::Memory(body)
            }
        };
        self.enqueue(key, kind, body, size).await;
        Ok(())
    }
    /// Queues the file at `path` (written in [`UploadQueue::growing_dir`])
    /// as the object `key`: it becomes a spooled object where it lies,
    /// without a copy, and never waits in memory. Without a spool it is
    /// read in and queued as [`ObjectStore::put`] would, then removed.
    async fn adopt_file(
        &self,
        key: &str,
        path: PathBuf,
        kind: ObjectKind,
    ) -> Result<(), StoreError> {
        crate::validate_key(key)?;
        let io = |source| StoreError::Io {
            op: "spool",
            key: key.to_string(),
            source,
        };
        let Some(dir) = self.spool.clone() else {
            let size = std::fs::metadata(&path).map_err(io)?.len();
            let body = crate::read_prefix(path.clone(), size).await.map_err(io)?;
            self.put(key, body, kind).await?;
            remove_spooled(vec![path]).await;
            return Ok(());
        };
        let n = self.next_spool_number();
        let owned_key = key.to_string();
        let sealed = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().append(true).open(&path)?;
            let size = file.metadata()?.len();
            Ok::<_, std::io::Error>((seal_spooled(file, &path, &dir, n, &owned_key, kind)?, size))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(io)?;
        let (path, size) = sealed;
        let body = Body::Spooled { path, cached: None };
        self.enqueue(key, kind, body, size as usize).await;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_reusing(key, Vec::new()).await
    }

    async fn get_reusing(&self, key: &str, buffer: Vec<u8>) -> Result<Option<Bytes>, StoreError> {
        let queued = {
            let s = self.state.lock().expect("queue lock");
            s.items
                .iter()
                .rev()
                .find(|i| i.key == key)
                .map(|i| match &i.body {
                    Body::Memory(b)
                    | Body::Spooled {
                        cached: Some(b), ..
                    } => Ok(b.clone()),
                    Body::Spooled { path, cached: None } => Err((path.clone(), i.size)),
                })
        };
        match queued {
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err((path, size))) => crate::read_prefix(path, size as u64)
                .await
                .map(Some)
                .map_err(|source| StoreError::Io {
                    op: "read spool",
                    key: key.to_string(),
                    source,
                }),
            None => self.inner.get_reusing(key, buffer).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn presign_get(&self, key: &str, expiry: Duration) -> Result<String, StoreError> {
        self.inner.presign_get(key, expiry).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Longest header line of a spooled object: the kind, a space and a key.
const MAX_HEADER: u32 = 2048;

/// A spooled object, `{n:016}.obj`, is its body followed by a trailer: a
/// header line (kind and key) and that line's length (4 bytes, big
/// endian). The header is last so that a segment written to disk as it grows
/// becomes a spooled object where it lies, by appending the trailer.
fn trailer(key: &str, kind: ObjectKind) -> Vec<u8> {
    let mut t = format!("{} {key}\n", kind_name(kind)).into_bytes();
    t.extend_from_slice(&(t.len() as u32).to_be_bytes());
    t
}

/// Appends the trailer to a body in `file` (at its end), syncs it, and
/// gives it its spool name (`{n:016}.obj` in `dir`): a crash leaves it
/// whole in the spool, or not there at all.
fn seal_spooled(
    mut file: std::fs::File,
    from: &Path,
    dir: &Path,
    n: u64,
    key: &str,
    kind: ObjectKind,
) -> std::io::Result<PathBuf> {
    file.write_all(&trailer(key, kind))?;
    // Whole on disk before it counts as queued: after a machine crash a
    // spooled object is there entire, or not at all.
    file.sync_data()?;
    let path = dir.join(format!("{n:016}.obj"));
    std::fs::rename(from, &path)?;
    Ok(path)
}

/// Spools `body` as object `n` of `dir` (written under a temporary name).
fn write_spooled(
    dir: &Path,
    n: u64,
    key: &str,
    kind: ObjectKind,
    body: &[u8],
) -> std::io::Result<PathBuf> {
    let temp = dir.join(format!(".{n:016}.tmp"));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(body)?;
    seal_spooled(file, &temp, dir, n, key, kind)
}

/// A spooled object's kind, key and body length, from its trailer; `None`
/// if the file is not one (a torn write, a stray file).
fn read_trailer(path: &Path) -> std::io::Result<Option<(ObjectKind, String, u64)>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len < 4 {
        return Ok(None);
    }
    let mut n = [0; 4];
    file.seek(SeekFrom::Start(len - 4))?;
    file.read_exact(&mut n)?;
    let n = u32::from_be_bytes(n);
    if !(2..=MAX_HEADER).contains(&n) || u64::from(n) + 4 > len {
        return Ok(None);
    }
    let body = len - 4 - u64::from(n);
    let mut line = vec![0; n as usize];
    file.seek(SeekFrom::Start(body))?;
    file.read_exact(&mut line)?;
    if line.pop() != Some(b'\n') {
        return Ok(None);
    }
    let Ok(line) = String::from_utf8(line) else {
        return Ok(None);
    };
    Ok(line
        .split_once(' ')
        .and_then(|(k, key)| Some((kind_from(k)?, key.to_string(), body))))
}

/// The objects in a spool directory, oldest first (only their trailers
/// are read).
fn read_spool(dir: &Path) -> std::io::Result<Vec<(u64, Item)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(n) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".obj"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let Some((kind, key, size)) = read_trailer(&path)? else {
            tracing::warn!(path = %path.display(), "not a spooled object; left alone");
            continue;
        };
        let item = Item {
            key,
            kind,
            size: size as usize,
            body: Body::Spooled { path, cached: None },
            queued: Instant::now(),
        };
        found.push((n, item));
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Segment => "segment",
        ObjectKind::OpenPlaylist => "open-playlist",
        ObjectKind::ClosedPlaylist => "closed-playlist",
        ObjectKind::Index => "index",
    }
}

fn kind_from(name: &str) -> Option<ObjectKind> {
    [
        ObjectKind::Segment,
        ObjectKind::OpenPlaylist,
        ObjectKind::ClosedPlaylist,
        ObjectKind::Index,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// An in-memory store that can be switched off.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        log: Mutex<Vec<(String, Bytes)>>,
        /// Keys it refuses for good.
        refuses: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl ObjectStore for Flaky {
        async fn put(&self, key: &str, body: Bytes, _: ObjectKind) -> Result<(), StoreError> {
            if self.refuses.lock().unwrap().iter().any(|k| k == key) {
                return Err(StoreError::InvalidKey {
                    key: key.into(),
                    reason: "refused by this backend",
                });
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Backend {
                    op: "put",
                    key: key.into(),
                    reason: "down".into(),
                    source: None,
                });
            }
            self.log.lock().unwrap().push((key.to_string(), body));
            Ok(())
        }
        async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
            Ok(self
                .log
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, b)| b.clone()))
        }
        async fn list(&self, _: &str) -> Result<Vec<Listed>, StoreError> {
            let log = self.log.lock().unwrap();
            Ok(log
                .iter()
                .map(|(key, body)| Listed {
                    key: key.clone(),
                    size: body.len() as u64,
                })
                .collect())
        }
        async fn delete(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    fn limits(spool: Option<&Path>, memory: usize) -> QueueLimits {
        QueueLimits {
            uploads: Arc::new(Semaphore::new(2)),
            memory,
            spool_dir: spool.map(Path::to_path_buf),
        }
    }

    /// Objects in a stream's spool folder.
    fn spooled(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "obj")
            })
            .count()
    }

    fn keys(store: &Flaky) -> Vec<String> {
        store
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_spools_in_order_coalesces_playlists_and_drains() {
        let spool = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let q = Arc::new(
            UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20))
                .await
                .unwrap(),
        );
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.run().await }
        });
        for i in 0..3 {
            q.put(
                &format!("s{i}.ts"),
                Bytes::from(vec![i as u8; 100]),
                ObjectKind::Segment,
            )
            .await
            .unwrap();
            q.put(
                "index.m3u8",
                Bytes::from(format!("v{i}")),
                ObjectKind::OpenPlaylist,
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(keys(&store).is_empty());
        let c = q.counters();
        assert!(c.retries >= 2, "{c:?}");
        assert_eq!(c.waiting, 4, "three segments and the newest playlist");
        assert_eq!(spooled(&spool.path().join("ch1")), 4);
        assert_eq!(c.spool_depth, 4, "every waiting object is on disk");
        // The newest playlist is what a reader sees, though not yet stored.
        assert_eq!(q.get("index.m3u8").await.unwrap().unwrap(), "v2");

        store.down.store(false, Ordering::SeqCst);
        q.close();
        worker.await.unwrap();
        // The first segment may have been in flight when the playlists came.
        let got = keys(&store);
        assert_eq!(got, ["s0.ts", "s1.ts", "s2.ts", "index.m3u8"]);
        assert_eq!(store.log.lock().unwrap()[3].1, "v2");
        assert_eq!(spooled(&spool.path().join("ch1")), 0, "spool emptied");
        assert_eq!((q.counters().spool_depth, q.counters().waiting), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_the_store_refuses_is_given_up_and_blocks_nothing_behind_it() {
        let store = Arc::new(Flaky::default());
        store.refuses.lock().unwrap().push("b.ts".into());
        let q = Arc::new(
            UploadQueue::open(store.clone(), "ch1", limits(None, 1 << 20))
                .await
                .unwrap(),
        );
        // No store takes this one: refused at once, never queued.
        assert!(matches!(
            q.put("../x.ts", Bytes::new(), ObjectKind::Segment).await,
            Err(StoreError::InvalidKey { .. })
        ));
        for key in ["a.ts", "b.ts", "c.ts"] {
            q.put(key, Bytes::from_static(b"x"), ObjectKind::Segment)
                .await
                .unwrap();
        }
        q.close();
        q.run().await;
        assert_eq!(keys(&store), ["a.ts", "c.ts"]);
        assert_eq!((q.counters().refused, q.counters().retries), (1, 0));
    }

    #[tokio::test]
    async fn a_grown_file_is_spooled_where_it_lies_and_stored_after_a_restart() {
        let spool = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let limits = || limits(Some(spool.path()), 1 << 20);
        let grown = UploadQueue::growing_dir(&limits(), "ch1").unwrap();
        {
            let q = UploadQueue::open(store.clone(), "ch1", limits())
                .await
                .unwrap();
            std::fs::create_dir_all(&grown).unwrap();
            let file = grown.join("x.ts");
            std::fs::write(&file, b"grown segment").unwrap();
            q.adopt_file("a.ts", file.clone(), ObjectKind::Segment)
                .await
                .unwrap();
            assert!(!file.exists(), "moved, not copied");
            assert_eq!(spooled(&spool.path().join("ch1")), 1);
            assert_eq!(q.get("a.ts").await.unwrap().unwrap(), "grown segment");
            assert!(q
                .adopt_file(".x.ts", grown.join("y.ts"), ObjectKind::Segment)
                .await
                .is_err());
            q.close();
            q.run().await;
        }
        store.down.store(false, Ordering::SeqCst);
        let q = UploadQueue::open(store.clone(), "ch1", limits())
            .await
            .unwrap();
        q.close();
        q.run().await;
        assert_eq!(keys(&store), ["a.ts"]);
        assert_eq!(store.log.lock().unwrap()[0].1, "grown segment");
        assert_eq!(spooled(&spool.path().join("ch1")), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_drains_the_spool_first() {
        let spool = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        {
            let q = Arc::new(
                UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20))
                    .await
                    .unwrap(),
            );
            let worker = tokio::spawn({
                let q = q.clone();
                async move { q.run().await }
            });
            q.put("a.ts", Bytes::from_static(b"a"), ObjectKind::Segment)
                .await
                .unwrap();
            q.put("b.ts", Bytes::from_static(b"b"), ObjectKind::Segment)
                .await
                .unwrap();
            q.close();
            worker.await.unwrap();
        }
        store.down.store(false, Ordering::SeqCst);
        let q = Arc::new(
            UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20))
                .await
                .unwrap(),
        );
        assert_eq!((q.counters().waiting, q.counters().spool_depth), (2, 2));
        q.put("c.ts", Bytes::from_static(b"c"), ObjectKind::Segment)
            .await
            .unwrap();
        assert_eq!(
            (q.counters().waiting, q.counters().spool_depth),
            (3, 3),
            "on disk before put returns"
        );
        q.close();
        q.run().await;
        assert_eq!(keys(&store), ["a.ts", "b.ts", "c.ts"]);
        assert_eq!(q.counters().spool_depth, 0);
        assert_eq!(store.log.lock().unwrap()[0].1, "a");
    }

    #[tokio::test]
    async fn what_was_queued_survives_a_kill_and_one_process_holds_a_spool() {
        let spool = tempfile::tempdir().unwrap();
        let store = Arc::new(Flaky::default());
        let first = UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20))
            .await
            .unwrap();
        for key in ["a.ts", "b.ts"] {
            first
                .put(key, Bytes::from_static(b"TS"), ObjectKind::Segment)
                .await
                .unwrap();
        }
        // Another process archiving the same stream into the same place.
        let second =
            UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20)).await;
        let e = second.err().expect("the spool is locked");
        assert!(
            e.to_string().contains("in use by another hlsvault process"),
            "{e}"
        );
        // Killed before it stored anything: the next run finds both.
        drop(first);
        let next = UploadQueue::open(store.clone(), "ch1", limits(Some(spool.path()), 1 << 20))
            .await
            .unwrap();
        assert_eq!(next.counters().waiting, 2);
        next.close();
        next.run().await;
        assert_eq!(keys(&store), ["a.ts", "b.ts"]);
        assert_eq!(spooled(&spool.path().join("ch1")), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_holds_the_stream_back_and_loses_nothing() {
        let store = Arc::new(Flaky::default());
        let q = Arc::new(
            UploadQueue::open(store.clone(), "ch1", limits(None, 250))
                .await
                .unwrap(),
        );
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.run().await }
        });
        for i in 0..6 {
            q.put(
                &format!("s{i}.ts"),
                Bytes::from(vec![0; 100]),
                ObjectKind::Segment,
            )
            .await
            .unwrap();
        }
        q.close();
        worker.await.unwrap();
        assert_eq!(keys(&store).len(), 6);
        assert_eq!(q.counters().refused, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_spool_memory_is_bounded_and_refusals_are_counted() {
        let store = Arc::new(Flaky::default());
        store.down.store(true, Ordering::SeqCst);
        let q = Arc::new(
            UploadQueue::open(store.clone(), "ch1", limits(None, 250))
                .await
                .unwrap(),
        );
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.run().await }
        });
        let put = |k: &'static str| {
            let q = q.clone();
            async move {
                q.put(k, Bytes::from(vec![0; 100]), ObjectKind::Segment)
                    .await
            }
        };
        put("a.ts").await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await; // the first attempt fails
        put("b.ts").await.unwrap();
        assert!(
            put("c.ts").await.is_err(),
            "the store is down: no room, no spool"
        );
        assert_eq!(q.counters().refused, 1);
        q.close();
        worker.await.unwrap();
        assert_eq!(
            q.counters().refused,
            3,
            "the store stayed down: the two waiting are lost too"
        );
    }

    #[test]
    fn a_spool_file_that_is_not_a_whole_object_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let whole = [
            &b"TS"[..],
            &trailer("ch1/2026/11/21/09/a.ts", ObjectKind::Segment),
        ]
        .concat();
        std::fs::write(dir.path().join("1.obj"), &whole).unwrap();
        // Cut short, a stray file, an empty one, a length past the start.
        std::fs::write(dir.path().join("2.obj"), &whole[..whole.len() - 1]).unwrap();
        std::fs::write(dir.path().join("3.obj"), b"").unwrap();
        std::fs::write(dir.path().join("4.obj"), b"segment ch1/a.ts\n\0\0\0\x20").unwrap();
        let found = read_spool(dir.path()).unwrap();
        let keys: Vec<(u64, &str, usize)> = found
            .iter()
            .map(|(n, item)| (*n, item.key.as_str(), item.size))
            .collect();
        assert_eq!(keys, [(1, "ch1/2026/11/21/09/a.ts", 2)]);
    }
}
