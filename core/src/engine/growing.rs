//! Segments written to disk as they grow. The settled bytes the cutter
//! hands out go to a file in the stream's spool (`growing/`), synced every
//! [`SYNC_EVERY`] by a thread of their own; at the cut the file is the segment, and the upload
//! queue adopts it where it lies. A crash then loses only what had not
//! settled (about a frame per PID) or reached the disk, the analysis holds
//! a frame or two in memory instead of a whole segment, and a restart
//! finishes what a killed run left ([`left_by_earlier_runs`], [`recover`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use hlsvault_ts::program::ProgramChoice;
use hlsvault_ts::segment::{recut, Cause, Growing, Segment, SegmentCutter};

/// Growing files are synced this often: a machine crash loses at most
/// this much of a stream (a killed process loses nothing written).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The growing files of every stream, synced by one thread: a sync can
/// stall for as long as the disk is busy, and a stream's thread that
/// waited for it would let its socket overflow.
fn sync_every_second(file: &Arc<File>, path: &Path) {
    type Files = Mutex<Vec<(Weak<File>, PathBuf)>>;
    static FILES: OnceLock<Files> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("growing-sync".into())
            .spawn(|| loop {
                std::thread::sleep(SYNC_EVERY);
                let Some(files) = FILES.get() else { continue };
                // Finished segments' files drop out here; the queue
                // syncs them itself when it adopts them.
                let live: Vec<(Arc<File>, PathBuf)> = {
                    let mut files = files.lock().unwrap_or_else(|e| e.into_inner());
                    files.retain(|(f, _)| f.strong_count() > 0);
                    files.iter().filter_map(|(f, p)| Some((f.upgrade()?, p.clone()))).collect()
                };
                for (file, path) in live {
                    if let Err(e) = file.sync_data() {
                        tracing::warn!(path = %path.display(), error = %e, "cannot sync a growing segment");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the thread that syncs growing segments");
        }
        Mutex::new(Vec::new())
    });
    files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((Arc::downgrade(file), path.to_path_buf()));
}

/// A finished segment on its way to the archive.
#[derive(Debug)]
pub struct Finished {
    /// The segment; its `data` is empty when `file` holds its bytes.
    pub segment: Segment,
    /// The file in the stream's spool that holds it whole, if it grew on
    /// disk.
    pub file: Option<PathBuf>,
    /// Its size in bytes.
    pub size: usize,
}

impl Finished {
    /// A segment whose bytes are all in memory.
    pub fn in_memory(segment: Segment) -> Self {
        Finished {
            size: segment.data.len(),
            segment,
            file: None,
        }
    }
}

/// One growing segment's file.
struct Grown {
    path: PathBuf,
    /// `None` once writing failed: the bytes wait in `held` instead.
    /// Shared with the thread that syncs it.
    file: Option<Arc<File>>,
    /// Bytes written to the file.
    written: usize,
    held: Vec<u8>,
}

/// The stream's segments that are growing on disk.
pub struct GrowingSegments {
    /// Where they grow; `None` keeps them in memory (no spool).
    dir: Option<PathBuf>,
    files: BTreeMap<u64, Grown>,
    /// A write failed and that was logged.
    told: bool,
}

/// Tells this process's files from those of earlier runs.
fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{:x}{:08x}", std::process::id(), now.as_millis() as u32)
    })
}

/// `{run}-{id}-{start ms}-{d|c}{k|n}.ts`: what a restart needs to know of
/// the segment is in its name, written with it.
fn file_name(g: &Growing) -> String {
    let ms = g
        .start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let d = if g.discontinuity { 'd' } else { 'c' };
    let k = if g.keyframe { 'k' } else { 'n' };
    format!("{}-{:010}-{ms}-{d}{k}.ts", run_id(), g.id)
}

impl GrowingSegments {
    /// Segments growing in `dir` (made when first needed), or in memory.
    pub fn new(dir: Option<PathBuf>) -> Self {
        GrowingSegments {
            dir,
            files: BTreeMap::new(),
            told: false,
        }
    }

    /// Writes what `cutter` has settled to the files of its segments.
    pub fn drain(&mut self, cutter: &mut SegmentCutter) {
        let Some(dir) = &self.dir else { return };
        let (files, told) = (&mut self.files, &mut self.told);
        cutter.drain_settled(|g, bytes| {
            let grown = files.entry(g.id).or_insert_with(|| open(dir, &g, told));
            grown.append(bytes, told);
        });
    }

    /// The cutter finished `segment`: its file is completed.
    /// Files of segments the cutter gave up (never emitted) are removed.
    pub fn finish(&mut self, mut segment: Segment) -> Finished {
        let abandoned: Vec<u64> = self.files.range(..segment.id).map(|(id, _)| *id).collect();
        for id in abandoned {
            if let Some(g) = self.files.remove(&id) {
                g.remove();
            }
        }
        let Some(mut grown) = self.files.remove(&segment.id) else {
            return Finished::in_memory(segment);
        };
        // No sync here: the queue syncs the file when it seals it into
        // the spool (off this thread), before it counts as queued.
        grown.append(&segment.data, &mut self.told);
        let size = grown.written + grown.held.len();
        match grown.file {
            Some(_) => {
                segment.data = Vec::new();
                Finished {
                    segment,
                    file: Some(grown.path),
                    size,
                }
            }
            None => {
                segment.data = grown.held;
                Finished::in_memory(segment)
            }
        }
    }

    /// The stream ended: removes the files of segments that never came.
    pub fn end(&mut self) {
        for (_, g) in std::mem::take(&mut self.files) {
            g.remove();
        }
    }
}

/// Opens the file of a segment that starts growing.
fn open(dir: &Path, g: &Growing, told: &mut bool) -> Grown {
    let path = dir.join(file_name(g));
    let file = std::fs::create_dir_all(dir).and_then(|()| File::create(&path));
    let file = match file {
        Ok(f) => {
            let f = Arc::new(f);
            sync_every_second(&f, &path);
            Some(f)
        }
        Err(e) => {
            tell(told, &path, &e);
            None
        }
    };
    Grown {
        path,
        file,
        written: 0,
        held: Vec::new(),
    }
}

/// Logs once per stream that a growing segment cannot be written.
fn tell(told: &mut bool, path: &Path, e: &std::io::Error) {
    if !std::mem::replace(told, true) {
        tracing::error!(path = %path.display(), error = %e, "cannot write a growing segment to disk; segments grow in memory until they can");
    }
}

impl Grown {
    fn append(&mut self, bytes: &[u8], told: &mut bool) {
        if let Some(file) = &self.file {
            match (&**file).write_all(bytes) {
                Ok(()) => {
                    self.written += bytes.len();
                    return;
                }
                Err(e) => {
                    tell(told, &self.path, &e);
                    self.move_to_memory();
                }
            }
        }
        self.held.extend_from_slice(bytes);
    }

    /// Writing failed: what the file holds moves to memory, and the file
    /// goes (what a failed write left in it is not known).
    fn move_to_memory(&mut self) {
        let Some(file) = self.file.take() else { return };
        drop(file);
        let mut held = Vec::with_capacity(self.written);
        let read =
            File::open(&self.path).and_then(|f| f.take(self.written as u64).read_to_end(&mut held));
        if read.is_err() || held.len() < self.written {
            tracing::error!(path = %self.path.display(), "cannot read a growing segment back; its start is lost");
            held.clear();
        }
        held.append(&mut self.held);
        self.held = held;
        self.written = 0;
        let _ = std::fs::remove_file(&self.path);
    }

    fn remove(self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A growing segment that an earlier run left (killed before its cut).
#[derive(Debug)]
pub struct Leftover {
    pub path: PathBuf,
    /// When its first frame was shown.
    pub start: SystemTime,
    pub discontinuity: bool,
}

/// The growing segments earlier runs left in `dir`, oldest first.
pub fn left_by_earlier_runs(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, u64, Leftover)> = entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_str()?.strip_suffix(".ts")?.to_string();
            let mut parts = name.split('-');
            let run = parts.next()?;
            let id: u64 = parts.next()?.parse().ok()?;
            let ms: u64 = parts.next()?.parse().ok()?;
            let flags = parts.next()?;
            if run == run_id() || parts.next().is_some() {
                return None;
            }
            let start = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
            let discontinuity = flags.starts_with('d');
            Some((
                ms,
                id,
                Leftover {
                    path,
                    start,
                    discontinuity,
                },
            ))
        })
        .collect();
    found.sort_by_key(|(ms, id, _)| (*ms, *id));
    found.into_iter().map(|(_, _, l)| l).collect()
}

/// The segments in a leftover file, cut again (see [`recut`]); its last
/// units, which the kill may have torn, are dropped.
pub fn recover(left: &Leftover, program: ProgramChoice) -> std::io::Result<Vec<Segment>> {
    let bytes = std::fs::read(&left.path)?;
    let mut segments = recut(&bytes, left.start, program);
    if let Some(first) = segments.first_mut() {
        if left.discontinuity {
            first.discontinuity.get_or_insert(Cause::BeforeRestart);
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hlsvault_testkit::{make_ts, StreamSpec};
    use hlsvault_ts::segment::CutPolicy;

    fn cutter() -> SegmentCutter {
        SegmentCutter::new(CutPolicy {
            target: Duration::from_secs(4),
            max: Duration::from_secs(30),
            recovery: false,
            selection: Default::default(),
            gap: Duration::from_secs(10),
            cut_at_splice: true,
            aligned: false,
        })
    }

    fn stream(seconds: f64) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.ts");
        let spec = StreamSpec {
            seconds,
            ..StreamSpec::default()
        };
        make_ts(&file, &spec).unwrap();
        std::fs::read(&file).unwrap()
    }

    /// Feeds `ts` in datagrams of 7 packets 10 ms apart, writing what
    /// settles after each; returns what the cutter finished.
    fn feed(ts: &[u8], cutter: &mut SegmentCutter, growing: &mut GrowingSegments) -> Vec<Finished> {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_251_600);
        let mut out = Vec::new();
        for (i, d) in ts.chunks(7 * 188).enumerate() {
            cutter.push_datagram(d, start + Duration::from_millis(10 * i as u64), false);
            growing.drain(cutter);
            let ready: Vec<Segment> = cutter.take_ready().collect();
            out.extend(ready.into_iter().map(|s| growing.finish(s)));
        }
        out
    }

    #[test]
    fn segments_grow_on_disk_and_come_out_whole_in_their_files() {
        let ts = stream(13.0);
        let spool = tempfile::tempdir().unwrap();
        let dir = spool.path().join("growing");
        let mut on_disk = GrowingSegments::new(Some(dir.clone()));
        let mut in_memory = GrowingSegments::new(None);
        let (mut a, mut b) = (cutter(), cutter());
        let mut disk = feed(&ts, &mut a, &mut on_disk);
        let memory = feed(&ts, &mut b, &mut in_memory);
        a.finish();
        disk.extend(a.take_ready().map(|s| on_disk.finish(s)));
        on_disk.end();
        assert_eq!(disk.len(), 4);
        for (d, m) in disk.iter().zip(&memory) {
            let file = d.file.as_ref().expect("grown on disk");
            assert!(d.segment.data.is_empty());
            let bytes = std::fs::read(file).unwrap();
            assert!(bytes == m.segment.data, "segment {} differs", d.segment.id);
            assert_eq!(d.size, bytes.len());
            assert!(m.file.is_none());
        }
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            left, 4,
            "the finished files wait for the queue to adopt them"
        );
        assert!(
            left_by_earlier_runs(&dir).is_empty(),
            "this run's files are not leftovers"
        );
    }

    #[test]
    fn what_a_killed_run_left_growing_is_recovered_as_a_whole_segment() {
        let ts = stream(13.0);
        let spool = tempfile::tempdir().unwrap();
        let dir = spool.path().join("growing");
        let mut growing = GrowingSegments::new(Some(dir.clone()));
        let mut cutter = cutter();
        // Killed 10 s in: two segments out, the third growing since 8 s.
        let out = feed(&ts[..ts.len() * 10 / 13], &mut cutter, &mut growing);
        assert_eq!(out.len(), 2);
        for f in &out {
            std::fs::remove_file(f.file.as_ref().unwrap()).unwrap();
        }
        drop(growing);
        // The files a run leaves are named by that run: pretend it was
        // another one.
        let grown = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let name = grown.file_name().unwrap().to_str().unwrap();
        let earlier = dir.join(format!("0{}", &name[name.find('-').unwrap()..]));
        std::fs::rename(&grown, &earlier).unwrap();
        let left = left_by_earlier_runs(&dir);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].start, out[1].segment.start + Duration::from_secs(4));
        let again = recover(&left[0], ProgramChoice::Auto).unwrap();
        assert_eq!(again.len(), 1);
        let seg = &again[0];
        assert_eq!(seg.start, left[0].start);
        // 2 s of it reached the disk, but for the last frame, which is dropped.
        let secs = seg.duration as f64 / 90_000.0;
        assert!((1.8..2.0).contains(&secs), "{secs} s");
        assert_eq!(&seg.data[..3], &[0x47, 0x40, 0x00]);
    }
}
