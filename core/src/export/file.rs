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
    out: &mut dyn Write,
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
    runtime.block_on(async {
        let clip: Clip = plan(store.as_ref(), stream, start, end, max).await?;
        let file = clip.file(store, format).await?;
        // An MP4's length is not known before its end: about the TS's.
        let len = file.len.unwrap_or(clip.size());
        let bytes = copy(file.body, len, clip.media(), out, progress).await?;
        Ok(Written {
            bytes,
            media: clip.media(),
            segments: clip.parts.len(),
            left: file.left,
        })
    })
}

/// Copies `body` (about `len` bytes, `media` long) to `out`, redrawing
/// the progress line, and a last time at the end.
async fn copy(
    mut body: super::Body,
    len: u64,
    media: Duration,
    out: &mut dyn Write,
    mut progress: Option<&mut dyn Write>,
) -> anyhow::Result<u64> {
    let began = Instant::now();
    let mut drawn = None::<Instant>;
    let mut written = 0u64;
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
    while let Some(bytes) = body.next().await {
        let bytes = bytes?;
        out.write_all(&bytes).context("cannot write the clip")?;
        written += bytes.len() as u64;
        draw(written, false);
    }
    out.flush().context("cannot write the clip")?;
    draw(written, true);
    Ok(written)
}
