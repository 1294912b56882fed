//! The serving benchmark (run by `scripts/bench-serve`): writes a synthetic
//! archive of `--streams` streams over `--days` days (hour playlists of
//! 6 s segments, a minute's gap a day; `hours.log` and the day indexes) to
//! a local directory or to a Garage
//! bucket started on loopback, serves it with `hlsvault serve` pinned to one
//! core, and drives it with wrk (random streams and ranges) from another.
//! Segment objects are not written: a range request reads playlists only.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use hlsvault_hls::{Entry, GapCause, Hour, HoursLog, Kind, Layout, Playlist};
use hlsvault_store::{ObjectKind, ObjectStore};

#[derive(Parser)]
struct Args {
    /// Where the store (fs), configs and logs go.
    #[arg(long, default_value = "/tmp/hlsvault-bench/serve")]
    dir: PathBuf,
    /// fs or s3 (Garage on loopback).
    #[arg(long, default_value = "fs")]
    backend: String,
    #[arg(long, default_value_t = 20)]
    streams: usize,
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// The hlsvault binary to serve with.
    #[arg(long, default_value = "target/release/hlsvault")]
    hlsvault: PathBuf,
}

/// The archive's last hour ends here (a fixed past: every hour is closed).
const END: &str = "2026-11-01T00:00:00Z";
const SEGMENT_TICKS: u64 = 6 * 90_000;

fn hour_playlist(hour: u64, first_seq: u64) -> Playlist {
    let mut p = Playlist::new(Kind::Event, 6);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(hour * 3600);
    // One break a day: the recorder restarts, a minute missing at 00:00.
    let midnight = hour.is_multiple_of(24);
    let first = if midnight { 10 } else { 0 };
    for i in first..600u64 {
        let start = t0 + Duration::from_secs(i * 6);
        let sequence = first_seq + i;
        let gap = (midnight && i == first).then_some(GapCause::Restart);
        p.push(Entry {
            sequence,
            uri: Layout::segment_name(sequence, start),
            duration: SEGMENT_TICKS,
            start,
            discontinuity: gap.is_some(),
            gap,
            tags: Vec::new(),
        });
    }
    p.end();
    p
}

async fn write_archive(
    store: Arc<dyn ObjectStore>,
    names: &[String],
    hours: (u64, u64),
) -> Result<u64> {
    let jobs: Vec<(String, u64)> = names
        .iter()
        .flat_map(|n| (hours.0..hours.1).map(move |h| (n.clone(), h)))
        .collect();
    let count = jobs.len() as u64;
    let mut puts = futures_util::stream::iter(jobs)
        .map(|(name, hour)| {
            let store = store.clone();
            async move {
                let text = hour_playlist(hour, (hour - hours.0) * 600).render();
                store
                    .put(
                        &Layout::new(&name).hour_playlist_key(Hour::from_index(hour)),
                        Bytes::from(text),
                        ObjectKind::ClosedPlaylist,
                    )
                    .await
            }
        })
        .buffer_unordered(32);
    while let Some(r) = puts.next().await {
        r?;
    }
    // What the recorder writes beside them: each stream's hours.log and
    // the day indexes of the ranges (made by `reindex`, timed).
    let t = Instant::now();
    for name in names {
        let layout = Layout::new(name);
        let mut log = HoursLog::default();
        for h in hours.0..hours.1 {
            let hour = Hour::from_index(h);
            log.set(hour, format!("{}/index.m3u8", hour.path()));
        }
        let text = Bytes::from(log.render());
        store
            .put(&layout.hours_log_key(), text, ObjectKind::Index)
            .await?;
        hlsvault::ranges::reindex(store.as_ref(), &layout).await?;
    }
    eprintln!(
        "bench-serve: reindexed {} streams x {} hours in {:.1} s",
        names.len(),
        hours.1 - hours.0,
        t.elapsed().as_secs_f64()
    );
    Ok(count)
}

/// What wrk measured.
struct Measured {
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    errors: u64,
}

fn millis(v: &str) -> Option<f64> {
    let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        _ => return None,
    })
}

fn wrk(base: &str, connections: u32, seconds: u64, env: &[(&str, String)]) -> Result<Measured> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/bench-serve.lua");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "--latency", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .args(["-s", script, base]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
    };
    // "Socket errors: connect 0, read 0, write 0, timeout 3"
    let socket: u64 = field("Socket errors:").map_or(0, |v| {
        v.split(',')
            .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
            .sum()
    });
    let errors =
        field("Non-2xx or 3xx responses:").map_or(0, |v| v.parse().unwrap_or(u64::MAX)) + socket;
    Ok(Measured {
        p50_ms: field("50%").and_then(|v| millis(&v)).context("no p50")?,
        p99_ms: field("99%").and_then(|v| millis(&v)).context("no p99")?,
        rps: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .context("no req/s")?,
        errors,
    })
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.dir)?;
    let names: Vec<String> = (0..args.streams).map(|i| format!("s{i:02}")).collect();
    let end_hour = humantime::parse_rfc3339(END)?
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs()
        / 3600;
    let hours = (end_hour - args.days * 24, end_hour);

    let port = free_port()?;
    let mut garage = None;
    let storage = match args.backend.as_str() {
        "fs" => format!(
            "[storage]\nroot = \"{}\"\n",
            args.dir.join("archive").display()
        ),
        "s3" => {
            let g = hlsvault_testkit::garage::Garage::start("bench")?;
            let s = format!(
                "[storage]\nbackend = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\nbucket = \"{}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
                g.endpoint, g.region, g.bucket, g.access_key, g.secret_key
            );
            garage = Some(g);
            s
        }
        other => bail!("--backend {other}: fs or s3"),
    };
    let mut toml = format!("{storage}[serve]\nlisten = \"127.0.0.1:{port}\"\n");
    for (i, n) in names.iter().enumerate() {
        toml += &format!(
            "[[streams]]\nname = \"{n}\"\n[streams.source]\nkind = \"udp\"\ngroup = \"239.20.0.1\"\nport = {}\n",
            6000 + i
        );
    }
    let config_path = args.dir.join(format!("{}.toml", args.backend));
    std::fs::write(&config_path, toml)?;
    let config = hlsvault::config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = hlsvault::engine::open_store(&config)?;

    let marker = args
        .dir
        .join(format!("written-{}x{}-indexed", args.streams, args.days));
    let runtime = tokio::runtime::Runtime::new()?;
    if args.backend != "fs" || !marker.exists() {
        let t = Instant::now();
        let n = runtime.block_on(write_archive(store.clone(), &names, hours))?;
        eprintln!(
            "bench-serve: wrote {n} hour playlists ({} streams x {} days) in {:.1} s",
            args.streams,
            args.days,
            t.elapsed().as_secs_f64()
        );
        if args.backend == "fs" {
            std::fs::write(&marker, "")?;
        }
    }

    if args.backend == "s3" {
        // What a range playlist from S3 pays per segment.
        let n = 2000;
        let t = Instant::now();
        runtime.block_on(async {
            for i in 0..n {
                store
                    .presign_get(
                        &format!("s00/2026/10/01/00/{i}.ts"),
                        Duration::from_secs(86400),
                    )
                    .await?;
            }
            anyhow::Ok(())
        })?;
        eprintln!(
            "bench-serve: presigning a segment URL takes {:.1} us",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }

    let log = std::fs::File::create(args.dir.join(format!("serve-{}.log", args.backend)))?;
    let mut server = Command::new("taskset")
        .args(["-c", "0"])
        .arg(&args.hlsvault)
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > until {
            let _ = server.kill();
            bail!("the server did not come up");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let env = |kind: &str, span: u64| {
        vec![
            ("BENCH_KIND", kind.to_string()),
            ("BENCH_STREAMS", args.streams.to_string()),
            ("BENCH_FIRST", (hours.0 * 3600).to_string()),
            ("BENCH_HOURS", (hours.1 - hours.0).to_string()),
            ("BENCH_SPAN", span.to_string()),
        ]
    };
    let runs = [
        ("ranges of 30 days", env("ranges", hours.1 - hours.0)),
        ("24-hour range", env("range", 24)),
        ("1-hour range", env("range", 1)),
        ("hour playlist", env("hour", 1)),
    ];
    println!(
        "| backend | request | p50 (1 conn) | p99 (1 conn) | req/s (1 conn) | req/s (16 conns) | failed |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let result = (|| -> Result<()> {
        for (what, env) in &runs {
            let one = wrk(&base, 1, args.seconds, env)?;
            let many = wrk(&base, 16, args.seconds, env)?;
            // Failures (a non-2xx answer, or wrk's 2 s timeout) are
            // reported, not hidden.
            println!(
                "| {} | {what} | {:.2} ms | {:.2} ms | {:.0} | {:.0} | {} |",
                args.backend,
                one.p50_ms,
                one.p99_ms,
                one.rps,
                many.rps,
                one.errors + many.errors
            );
        }
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    drop(garage);
    result
}
