//! `hlsvault export`: a clip written to a file or standard output, with a
//! progress line on a terminal.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use futures_util::StreamExt;

use super::{plan, ts, Clip};
use crate::config::{Config, DEFAULT_EXPORT_MAX};
use crate::engine::open_store;

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What an export wrote.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub bytes: u64,
    /// Media seconds.
    pub media: Duration,
    pub segments: usize,
}

/// Writes `stream`'s `[start, end)` as TS to `out`; `progress` (a
/// terminal) gets a line redrawn as it goes: bytes, media seconds, rate.
pub fn export_ts(
    config: &Config,
    stream: &str,
    start: SystemTime,
    end: SystemTime,
    out: &mut dyn Write,
    mut progress: Option<&mut dyn Write>,
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
        let (total, media) = (clip.size(), clip.media());
        let mut written = Written {
            bytes: 0,
            media: Duration::ZERO,
            segments: 0,
        };
        let began = Instant::now();
        let mut drawn = None::<Instant>;
        let mut parts = ts::stream(store.clone(), &clip);
        while let Some(bytes) = parts.next().await {
            let bytes = bytes?;
            out.write_all(&bytes).context("cannot write the clip")?;
            written.bytes += bytes.len() as u64;
            written.media += clip.parts[written.segments].duration;
            written.segments += 1;
            if let Some(line) = progress.as_deref_mut() {
                let done = written.segments == clip.parts.len();
                if done || drawn.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                    drawn = Some(Instant::now());
                    let rate = written.bytes as f64 / began.elapsed().as_secs_f64().max(1e-3);
                    let _ = write!(
                        line,
                        "\r{:.1}/{:.1} MB, {:.0}/{:.0} s of media, {:.1} MB/s{}",
                        written.bytes as f64 / 1e6,
                        total as f64 / 1e6,
                        written.media.as_secs_f64(),
                        media.as_secs_f64(),
                        rate / 1e6,
                        if done { "\n" } else { "" }
                    );
                }
            }
        }
        out.flush().context("cannot write the clip")?;
        Ok(written)
    })
}
