//! A live run killed with SIGKILL at a fixed interval and started again,
//! while a stream comes in over UDP on loopback; then what the archive
//! must look like afterwards. The durability tests drive it on each
//! backend.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use crate::archive::{hour_playlists, Entry};
use crate::{decode_errors, make_ts, KillOnDrop, StreamSpec};

/// How the loop went.
#[derive(Debug)]
pub struct KillLoop {
    /// SIGKILLs sent.
    pub kills: u32,
    /// The runs' state directory (their spool).
    pub state: PathBuf,
    /// Logs of each run, in order.
    pub logs: Vec<PathBuf>,
}

/// Sends a real-time H.264 + AAC stream (2 s GOP) over UDP on loopback for
/// `total` (plus a margin), and meanwhile runs `bin run` archiving it as
/// stream `ch1` (2 s segments) into `storage` (a `[storage]` table), with
/// its state in `dir/state`, killing it with SIGKILL every `every` and
/// starting it again; the last run is stopped with SIGTERM. Logs go to
/// `dir`.
pub fn kill_loop(
    bin: &Path,
    dir: &Path,
    storage: &str,
    every: Duration,
    total: Duration,
) -> Result<KillLoop> {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let state = dir.join("state");
    let config = dir.join("kill.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n{storage}\n[[streams]]\nname = \"ch1\"\nsegment_duration = \"2s\"\nstall_timeout = \"1s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {port}\n",
            state.display()
        ),
    )?;
    let clip = dir.join("live.ts");
    make_ts(
        &clip,
        &StreamSpec {
            seconds: total.as_secs_f64() + 2.0 * every.as_secs_f64() + 5.0,
            ..StreamSpec::default()
        },
    )?;
    let mut logs = Vec::new();
    let start = |logs: &mut Vec<PathBuf>| -> Result<KillOnDrop> {
        let log = dir.join(format!("run-{}.log", logs.len()));
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(&config)
            .env("HLSVAULT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("cannot start hlsvault")?;
        logs.push(log);
        Ok(KillOnDrop(child))
    };
    let mut run = start(&mut logs)?;
    // The sender is bounded in time by `timeout` as well as by the clip.
    let limit = (total + 3 * every).as_secs().to_string();
    let _sender = KillOnDrop(
        Command::new("timeout")
            .args([
                &limit,
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-i",
            ])
            .arg(&clip)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(format!("udp://127.0.0.1:{port}?pkt_size=1316"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start ffmpeg")?,
    );
    let began = Instant::now();
    let mut kills = 0;
    while began.elapsed() < total {
        std::thread::sleep(every);
        run.0.kill()?;
        run.0.wait()?;
        kills += 1;
        run = start(&mut logs)?;
    }
    std::thread::sleep(every);
    crate::run(Command::new("kill").args(["-TERM", &run.0.id().to_string()]))?;
    let status = run.0.wait()?;
    anyhow::ensure!(
        status.code().is_some(),
        "the last run ended by a signal: {status:?}"
    );
    Ok(KillLoop { kills, state, logs })
}

/// What a killed-and-restarted archive holds, checked: every hour
/// playlist parses, no entry is listed twice, every entry exists and
/// decodes. Returns the entries in time order and the media time lost
/// between them (the gaps), largest first.
pub fn archive_after_kills(stream_dir: &Path) -> (Vec<Entry>, Vec<f64>) {
    let mut entries: Vec<Entry> = hour_playlists(stream_dir)
        .into_iter()
        .flat_map(|(_, p)| p.entries)
        .collect();
    let mut uris: Vec<&str> = entries.iter().map(|e| e.uri.as_str()).collect();
    uris.sort_unstable();
    let listed = uris.len();
    uris.dedup();
    assert_eq!(uris.len(), listed, "an entry is listed twice");
    for e in &entries {
        assert!(e.path.is_file(), "listed but not stored: {}", e.uri);
        let errors = decode_errors(e.path.to_str().unwrap()).unwrap();
        assert!(errors.trim().is_empty(), "{}: {errors}", e.uri);
    }
    let time = |e: &Entry| e.pdt.expect("every entry has its PDT");
    entries.sort_by_key(time);
    let mut gaps: Vec<f64> = entries
        .windows(2)
        .map(|w| {
            let end = time(&w[0]) + Duration::from_secs_f64(w[0].extinf);
            time(&w[1])
                .duration_since(end)
                .map_or(0.0, |d| d.as_secs_f64())
        })
        .filter(|gap| *gap > 0.05)
        .collect();
    gaps.sort_by(|a, b| b.total_cmp(a));
    (entries, gaps)
}

/// Objects waiting in stream `stream`'s spool under state directory
/// `state` (in every store's spool folder), and segments left growing there.
pub fn spooled_objects(state: &Path, stream: &str) -> usize {
    let Ok(stores) = std::fs::read_dir(state.join("spool")) else {
        return 0;
    };
    let files = |dir: PathBuf, ext: &'static str| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter(move |f| {
                f.as_ref()
                    .is_ok_and(|f| f.path().extension().is_some_and(|x| x == ext))
            })
            .count()
    };
    stores
        .filter_map(|s| Some(s.ok()?.path().join(stream)))
        .map(|dir| files(dir.clone(), "obj") + files(dir.join("growing"), "ts"))
        .sum()
}

/// When the first entry starts and the last ends.
fn covered(entries: &[Entry]) -> (SystemTime, SystemTime) {
    let first = entries.first().and_then(|e| e.pdt).expect("entries");
    let last = entries.last().expect("entries");
    (
        first,
        last.pdt.expect("pdt") + Duration::from_secs_f64(last.extinf),
    )
}

/// Prints what the kills cost on `store` and holds it: at least 15 kills,
/// at most one gap per kill, each shorter than the time between kills.
pub fn report_losses(
    store: &str,
    run: &KillLoop,
    entries: &[Entry],
    gaps: &[f64],
    every: Duration,
) {
    let (from, to) = covered(entries);
    let span = to.duration_since(from).unwrap().as_secs_f64();
    let lost: f64 = gaps.iter().sum();
    eprintln!(
        "{store}: {} kills, {} segments over {span:.1} s, {lost:.2} s lost in {} gaps (largest {:?}), {:.2} s per kill",
        run.kills,
        entries.len(),
        gaps.len(),
        gaps.first(),
        lost / f64::from(run.kills)
    );
    assert!(run.kills >= 15, "{run:?}");
    assert!(
        gaps.len() <= run.kills as usize,
        "one gap per kill at most: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g < every.as_secs_f64()),
        "a kill loses less than the time between kills: {gaps:?}"
    );
}
