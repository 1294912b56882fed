//! `hlsvault export`: a clip written to a file or standard output, as TS
//! or MP4, with a progress line on a terminal.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::StreamExt;

use super::{plan, Clip, ClipFormat};
use crate::config::{Config, DEFAULT_EXPORT_MAX};
use crate::engine::open_store;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub bytes: u64,
    /// Media seconds (gaps not counted).
    pub media: Duration,
    pub segments: usize,
    /// Streams the file leaves out, in words (MP4 only).
    pub left: Vec<String>,
}

/// Writes `stream`'s `[start, end)` as `format` to `out`; `progress` (a
/// terminal) gets a line redrawn as it goes: bytes, media seconds, rate.
pub fn export_clip(
    config: &Config,
    stream: &str,
    [start, end]: [SystemTime; 2],
    format: ClipFormat,
    out: &mut (dyn Write + Send),
    progress: Option<&mut dyn Write>,
) -> anyhow::Result<Written> {
    anyhow::ensure!(
        config.streams.iter().any(|s| s.name == stream),
        "no stream named \"{stream}\" in the config"
    );
    let store = open_store(config)?;
    let max = config
        .serve
        .as_ref()
        .map_or(DEFAULT_EXPORT_MAX, |s| s.export_max);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (clip, file) = runtime.block_on(async {
        let clip: Clip = plan(store.as_ref(), stream, start, end, max).await?;
        let file = clip.file(store, format).await?;
        Ok::<_, anyhow::Error>((clip, file))
    })?;
    // An MP4's length is not known before its end: about the TS's.
    let len = file.len.unwrap_or(clip.size());
    let body = file.body;
    let bytes = copy(&runtime, body, len, clip.media(), out, progress)?;
    Ok(Written {
        bytes,
        media: clip.media(),
        segments: clip.parts.len(),
        left: file.left,
    })
}

/// Copies `body` (about `len` bytes, `media` long) to `out`, redrawing
/// the progress line, and a last time at the end. A thread of its own
/// writes, so that making the next bytes and writing the last ones
/// overlap.
fn copy(
    runtime: &tokio::runtime::Runtime,
    mut body: super::Body,
    len: u64,
    media: Duration,
    out: &mut (dyn Write + Send),
    mut progress: Option<&mut dyn Write>,
) -> anyhow::Result<u64> {
    let began = Instant::now();
    let mut drawn = None::<Instant>;
    let mut draw = |written: u64, done: bool| {
        let Some(line) = progress.as_deref_mut() else {
            return;
        };
        if !done && drawn.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        drawn = Some(Instant::now());
        let len = if done { written } else { len.max(written) };
        let rate = written as f64 / began.elapsed().as_secs_f64().max(1e-3);
        let share = written as f64 / len.max(1) as f64;
        let _ = write!(
            line,
            "\r{:.1}/{:.1} MB, {:.0}/{:.0} s of media, {:.1} MB/s{}",
            written as f64 / 1e6,
            len as f64 / 1e6,
            media.as_secs_f64() * share,
            media.as_secs_f64(),
            rate / 1e6,
            if done { "\n" } else { "" }
        );
    };
    // Two pieces in flight (a piece is up to a segment's video).
    let (to_writer, pieces) = std::sync::mpsc::sync_channel::<bytes::Bytes>(2);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> std::io::Result<()> {
            for piece in pieces {
                out.write_all(&piece)?;
            }
            out.flush()
        });
        let mut written = 0u64;
        let mut made = || -> anyhow::Result<()> {
            while let Some(bytes) = runtime.block_on(body.next()) {
                let bytes = bytes?;
                written += bytes.len() as u64;
                if to_writer.send(bytes).is_err() {
                    break; // the writer failed: it says why below
                }
                draw(written, false);
            }
            Ok(())
        };
        let made = made();
        drop(to_writer);
        let wrote = writer.join().expect("the writer thread does not panic");
        made?;
        wrote.context("cannot write the clip")?;
        draw(written, true);
        Ok(written)
    })
}
