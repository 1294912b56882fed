//! The `hlsvault` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hlsvault::config::{self, ConfigErrors};
use hlsvault::engine;

/// Archive live MPEG-TS over UDP into hourly HLS playlists and segments.
///
/// One TOML file declares the store and many streams. Each stream's
/// datagrams are captured, stripped of RTP, analysed (PSI, PCR, PTS,
/// continuity), cut into segments at keyframes and stored as
/// {stream}/{YYYY}/{MM}/{DD}/{HH}/ folders, each with an index.m3u8, plus a
/// sliding {stream}/live.m3u8.
#[derive(Parser)]
#[command(
    name = "hlsvault",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "HLSVAULT_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Archive every stream in the config file.
    ///
    /// A pcap-file source ends with its file: every segment is flushed,
    /// every hour playlist gets #EXT-X-ENDLIST, a summary line per stream is
    /// printed, and the exit status is 0 when nothing was lost.
    ///
    /// Live sources (pcap, udp) run until SIGINT or SIGTERM: the open
    /// segments and playlists are flushed, the open hours stay open (a
    /// restart within the hour continues them), and the exit status is 0. A
    /// second signal exits at once. A missing or down interface is retried
    /// with backoff.
    ///
    /// The config file and the plugin files are watched: added, removed and
    /// changed streams start, stop and restart, changed plugins are swapped
    /// in at segment boundaries, and the other streams go on untouched. A
    /// change with any problem is logged and not applied.
    Run {
        /// The configuration file (TOML). HLSVAULT_* environment variables
        /// override its keys, e.g. HLSVAULT_STORAGE__ROOT=/srv/archive.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Serve an archive over HTTP: the live window, any hour, any range.
    ///
    /// GET /streams/NAME/live.m3u8, /streams/NAME/YYYY/MM/DD/HH/index.m3u8,
    /// /streams/NAME/archive.m3u8?start=RFC3339&end=RFC3339 (or
    /// duration=1h), segments with byte ranges (or, for S3, redirects to
    /// fresh presigned URLs), and /healthz. Listens on [serve] listen
    /// (default 127.0.0.1:8080). `run` serves too when [serve] is present.
    Serve {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Sign an hour again: its URL as the archive hands it out, renewed, on
    /// standard output, and in its line of {stream}/hours.log.
    ///
    /// Presigned URLs expire (at most 7 days for S3), and so do the tokens
    /// of URL signer plugins; this renews them. With urls = "presigned",
    /// the hour gets a fresh index.signed.m3u8 with presigned segment URLs.
    Sign {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The stream's name.
        #[arg(long)]
        stream: String,
        /// The hour, UTC: YYYY-MM-DDTHH (e.g. 2026-11-21T09).
        #[arg(long)]
        hour: String,
    },
    /// Write any time range of a stream as one MP4 or TS file, without
    /// re-encoding.
    ///
    /// MP4 (H.264 or HEVC video; AAC, MPEG audio, AC-3, E-AC-3) shows
    /// exactly --start to the end: it holds the GOP from the keyframe
    /// before --start and an edit list trims it. A gap in the archive stays
    /// a gap of the same length (the picture holds); a range asked from
    /// before the recording starts at its first picture. Teletext,
    /// subtitles and SCTE-35 cannot go in and are named on standard error.
    ///
    /// TS starts at the keyframe at or before --start and ends with the
    /// segment that holds the end; continuity counters go on across
    /// segments, and each discontinuity sets the discontinuity indicator on
    /// the first PCR after it.
    ///
    /// A progress line shows on a terminal. Exits 2 when nothing is
    /// archived in the range (saying what is recorded nearest), the range
    /// is longer than [serve] export_max (24 h), or MP4 cannot carry the
    /// stream's video (MPEG-2: export TS).
    Export {
        #[command(flatten)]
        range: StreamRange,
        /// The file to write (.mp4 or .ts), or - for standard output.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// The format, when the file name does not say (standard output:
        /// TS unless told).
        #[arg(long, value_enum)]
        format: Option<hlsvault::export::ClipFormat>,
    },
    /// Send an archived range out again as UDP or RTP (multicast or
    /// unicast), paced by its PCR: once, looped, or following the archive a
    /// fixed delay behind (timeshift).
    ///
    /// Each 7-packet datagram leaves when its PCR (interpolated between
    /// PCRs) says, against the monotonic clock; a sender that falls behind
    /// catches up at twice the rate at most. Segments are read ahead and a
    /// failed read is tried again; one that cannot be read becomes a clean
    /// splice, like every discontinuity, gap and loop wrap: PAT and PMT
    /// first, continuity counters that go on, the discontinuity indicator
    /// on the first PCR after it. Figures are logged every stats_interval
    /// and printed at the end.
    ///
    /// --to takes udp://GROUP:PORT or rtp://GROUP:PORT with options:
    /// ttl=N, interface=NAME|ADDRESS, source=ADDRESS, tos=N, rtp. SIGINT or
    /// SIGTERM stops at a datagram boundary. Exits 2 when nothing is
    /// archived in the range (saying what is recorded nearest) or an option
    /// of --to cannot work (naming it).
    Replay {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The stream's name.
        #[arg(long)]
        stream: String,
        /// Where it starts, RFC 3339 (with --follow and no --delay: the
        /// delay is how long ago that is).
        #[arg(long, required_unless_present = "delay")]
        start: Option<String>,
        /// Where it ends, RFC 3339.
        #[arg(long, conflicts_with_all = ["duration", "follow"])]
        end: Option<String>,
        /// Its length instead of an end (e.g. 90s, 1h 30m).
        #[arg(long, conflicts_with = "follow")]
        duration: Option<String>,
        /// Follow the archive as it grows, this far behind its live edge.
        #[arg(long, required_unless_present_any = ["end", "duration"])]
        follow: bool,
        /// How far behind the live edge --follow plays (e.g. 3h).
        #[arg(long, requires = "follow", conflicts_with = "start")]
        delay: Option<String>,
        /// Where to send, e.g. udp://239.1.1.1:5000?ttl=8&interface=eth1.
        #[arg(long, value_name = "URL")]
        to: hlsvault_send::Destination,
        /// Play the range this many times (without a number: until
        /// stopped).
        #[arg(long = "loop", value_name = "TIMES", num_args = 0..=1, conflicts_with = "follow")]
        passes: Option<Option<u64>>,
        /// Play this many times as fast (0.1 to 100; e.g. 2, 0.5), for test
        /// benches: the PCR, PTS and DTS are restamped to it.
        #[arg(long, default_value_t = 1.0, conflicts_with = "follow", value_parser = rate)]
        rate: f64,
        /// Put null packets back to the highest rate seen between two
        /// PCRs, for an archive that dropped a constant-rate multiplex's
        /// stuffing (null_packets = "drop").
        #[arg(long)]
        cbr: bool,
    },
    /// Keep ranges of a stream from retention (legal holds).
    ///
    /// Holds live in the store, one object per stream: every process sees
    /// them and they outlive restarts. Retention never deletes an hour
    /// that overlaps one.
    Hold {
        #[command(subcommand)]
        command: HoldCommand,
    },
    /// Several machines, one archive: the members and where each stream is
    /// recorded, and drains (with a [cluster] table).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// What is recorded of a stream: the recorded ranges, the gaps with
    /// their causes (discontinuity, stall, store_outage, restart,
    /// plugin_dropped, nothing_recorded) and the holds, as a table.
    ///
    /// The same as `GET /streams/{name}/ranges`. Closed hours are read
    /// from the day indexes the recorder keeps, the others from their
    /// playlists.
    Ranges {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The stream's name.
        #[arg(long)]
        stream: String,
        /// From, RFC 3339 (default: the archive's beginning).
        #[arg(long)]
        start: Option<String>,
        /// Until, RFC 3339 (default: now).
        #[arg(long)]
        end: Option<String>,
        /// Print JSON (as the HTTP API) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the day indexes of the ranges again from the hour playlists
    /// (after a store outage the recorder could not write them in, or to
    /// repair them). The playlists stay the truth; this only speeds up
    /// `ranges`.
    Reindex {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this stream (default: every stream).
        #[arg(long)]
        stream: Option<String>,
    },
    /// Work with WebAssembly plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// List what a capture file or an interface carries, and the config
    /// that archives it.
    ///
    /// Per UDP destination: RTP or plain TS, rate, datagrams; per program,
    /// its PIDs with what they carry and their packets; the timed stream's
    /// GOP, keyframes, recovery points and whether the random access
    /// indicator can be trusted; the PCR interval, CC errors and the null
    /// share. Then a ready [[streams]] snippet per destination.
    ///
    /// `hlsvault probe capture.pcap` reads a file (all of it, or --seconds of
    /// capture time); `hlsvault probe --interface eth1 --group 239.1.1.1
    /// --port 5000 --seconds 10` listens live (libpcap: root or
    /// CAP_NET_RAW).
    Probe {
        /// A capture file (pcap or pcapng).
        #[arg(value_name = "FILE", required_unless_present = "interface")]
        file: Option<PathBuf>,
        /// Listen live on this interface instead.
        #[arg(long, requires_all = ["group", "port"], conflicts_with = "file")]
        interface: Option<String>,
        /// The multicast group (or address) to listen for.
        #[arg(long)]
        group: Option<std::net::IpAddr>,
        /// The UDP port to listen for.
        #[arg(long)]
        port: Option<u16>,
        /// How long to listen (live), or how much capture time to read
        /// (file), e.g. 10 (seconds).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Validate a config file and what it refers to, without archiving.
    ///
    /// Exits 0 when it is good; otherwise lists every problem, each with the
    /// file, the key (and stream) and the reason, and exits 2.
    Check {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// A stream of the config and a time range of it.
#[derive(clap::Args)]
struct StreamRange {
    /// The configuration file (TOML).
    #[arg(short, long, value_name = "FILE")]
    config: PathBuf,
    /// The stream's name.
    #[arg(long)]
    stream: String,
    /// Where the range starts, RFC 3339 (e.g. 2026-11-21T09:59:50Z).
    #[arg(long)]
    start: String,
    /// Where it ends, RFC 3339.
    #[arg(
        long,
        required_unless_present = "duration",
        conflicts_with = "duration"
    )]
    end: Option<String>,
    /// Its length instead of an end (e.g. 90s, 1h 30m).
    #[arg(long)]
    duration: Option<String>,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// The live members, and each stream's owner and standby.
    Status {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Move every stream off a node, or with --undo give it streams again.
    /// A drained node keeps only streams no other node may record.
    Drain {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The node's name ([cluster] node).
        node: String,
        #[arg(long)]
        undo: bool,
    },
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Hold a range: --start, with --end or --duration, and why.
    Add {
        #[command(flatten)]
        range: StreamRange,
        /// Why (kept with the hold and shown by `hold list`).
        #[arg(long)]
        reason: String,
    },
    /// List the holds, of every stream or of one.
    List {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// Only this stream's.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Take a hold off (its ID as `hold list` shows it).
    Remove {
        /// The configuration file (TOML).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The stream's name.
        #[arg(long)]
        stream: String,
        id: u32,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show which hooks a plugin implements and what it imports.
    ///
    /// Exits 2 when the file is not a component, implements no hook of
    /// hlsvault:plugin@0.1.0 or @0.2.0, mixes them, or imports what the
    /// host does not offer.
    Inspect {
        /// The plugin (a WebAssembly component, .wasm).
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Run { config } => run(&config),
        Command::Serve { config } => serve(&config),
        Command::Sign {
            config,
            stream,
            hour,
        } => sign(&config, &stream, &hour),
        Command::Export {
            range,
            output,
            format,
        } => export(
            &range.config,
            &range.stream,
            [Some(range.start), range.end, range.duration],
            &output,
            format,
        ),
        Command::Replay {
            config,
            stream,
            start,
            end,
            duration,
            follow,
            delay,
            to,
            passes,
            rate,
            cbr,
        } => replay(
            &config,
            &stream,
            [start, end, duration, delay],
            follow,
            to,
            (passes, rate, cbr),
        ),
        Command::Hold { command } => hold(command),
        Command::Cluster { command } => cluster(command),
        Command::Ranges {
            config,
            stream,
            start,
            end,
            json,
        } => ranges(
            &config,
            stream,
            hlsvault::serve::BoundsQuery { start, end },
            json,
        ),
        Command::Reindex { config, stream } => reindex(&config, stream),
        Command::Plugin {
            command: PluginCommand::Inspect { path },
        } => inspect_plugin(&path),
        Command::Probe {
            file,
            interface,
            group,
            port,
            seconds,
        } => probe(file, interface, group, port, seconds),
    }
}

fn probe(
    file: Option<PathBuf>,
    interface: Option<String>,
    group: Option<std::net::IpAddr>,
    port: Option<u16>,
    seconds: Option<u64>,
) -> ExitCode {
    let seconds = seconds.map(std::time::Duration::from_secs);
    let report = match (file, interface, group, port) {
        (Some(file), ..) => hlsvault::probe::probe_file(&file, seconds),
        (None, Some(i), Some(g), Some(p)) => {
            let listen = seconds.unwrap_or(std::time::Duration::from_secs(10));
            hlsvault::probe::probe_live(&i, g, p, listen)
        }
        _ => unreachable!("clap requires a file or an interface, group and port"),
    };
    match report {
        Ok(r) if r.destinations.is_empty() => {
            print!("{r}");
            eprintln!("hlsvault probe: no UDP datagrams");
            ExitCode::FAILURE
        }
        Ok(r) => {
            print!("{r}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hlsvault probe: {e}");
            ExitCode::from(2)
        }
    }
}

fn inspect_plugin(path: &std::path::Path) -> ExitCode {
    match hlsvault_plugin::inspect(&hlsvault_plugin::engine(), path) {
        Ok(i) => {
            let list = |v: &[String]| v.join("\n  ");
            let hooks: Vec<String> = i.hooks.iter().map(|h| h.to_string()).collect();
            println!(
                "{}\ncontract: hlsvault:plugin@{}\nhooks:\n  {}\nimports:\n  {}\nexports:\n  {}",
                path.display(),
                i.version,
                list(&hooks),
                list(&i.imports),
                list(&i.exports)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hlsvault plugin inspect: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HLSVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not for files and journals.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads the config and checks what it refers to with `check` (one of
/// [`engine::check`], [`engine::preflight`]); every problem is listed.
fn load_checked(
    path: &std::path::Path,
    check: fn(&config::Config) -> Vec<config::Problem>,
) -> Result<config::Config, ConfigErrors> {
    let config = config::load(path)?;
    let problems = check(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors {
            file: path.to_path_buf(),
            problems,
        })
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match load_checked(path, engine::check) {
        Ok(c) => {
            let store = match &c.storage.store {
                config::Store::Fs { root } => format!("fs {}", root.display()),
                config::Store::S3(s3) => format!("s3 {} bucket {}", s3.endpoint, s3.bucket),
            };
            println!(
                "{}: OK, {} stream(s), storage: {store}",
                path.display(),
                c.streams.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(2)
        }
    }
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let listen = config.serve.as_ref().map_or_else(
        || std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        |s| s.listen,
    );
    let served = (|| -> anyhow::Result<()> {
        let store = engine::open_store(&config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            hlsvault::serve::serve(listener, store, &config, None).await?;
            Ok(())
        })
    })();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlsvault serve: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on the store of the config at `path`, after checking that
/// the config names `stream` (if one is asked for). Exits 2 on a bad config
/// or an unknown stream, 1 when `work` fails.
/// The config at `path`, or (its problems printed) exit status 2.
fn load_config(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprint!("{e}");
        ExitCode::from(2)
    })
}

fn with_store(
    what: &str,
    path: &std::path::Path,
    stream: Option<&str>,
    work: impl AsyncFnOnce(&config::Config, &dyn hlsvault_store::ObjectStore) -> anyhow::Result<()>,
) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(stream) = stream.filter(|s| !config.streams.iter().any(|c| c.name == *s)) {
        eprintln!("hlsvault {what}: no stream named \"{stream}\" in the config");
        return ExitCode::from(2);
    }
    let done = (|| -> anyhow::Result<()> {
        let store = engine::open_store(&config)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(work(&config, store.as_ref()))
    })();
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlsvault {what}: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

fn ranges(
    path: &std::path::Path,
    stream: String,
    bounds: hlsvault::serve::BoundsQuery,
    json: bool,
) -> ExitCode {
    with_store("ranges", path, Some(&stream), async |_, store| {
        let (start, end) = bounds
            .bounds(std::time::SystemTime::now())
            .map_err(anyhow::Error::msg)?;
        let report = hlsvault::ranges::Report::read(store, &stream, start, end).await?;
        match json {
            true => println!("{}", serde_json::to_string_pretty(&report)?),
            false => print!("{}", report.table()),
        }
        Ok(())
    })
}

fn reindex(path: &std::path::Path, stream: Option<String>) -> ExitCode {
    with_store("reindex", path, stream.as_deref(), async |config, store| {
        let names = config.streams.iter().map(|s| &s.name);
        for name in names.filter(|n| stream.as_ref().is_none_or(|s| s == *n)) {
            let layout = hlsvault_hls::Layout::new(name);
            let days = hlsvault::ranges::reindex(store, &layout).await?;
            println!("{name}: {days} day indexes written");
        }
        Ok(())
    })
}

fn hold(command: HoldCommand) -> ExitCode {
    use hlsvault::holds;
    let (HoldCommand::Add {
        range: StreamRange { config, .. },
        ..
    }
    | HoldCommand::List { config, .. }
    | HoldCommand::Remove { config, .. }) = &command;
    let config = config.clone();
    let asked = match &command {
        HoldCommand::Add {
            range: StreamRange { stream, .. },
            ..
        }
        | HoldCommand::Remove { stream, .. } => Some(stream.clone()),
        HoldCommand::List { stream, .. } => stream.clone(),
    };
    with_store("hold", &config, asked.as_deref(), async |config, store| {
        match command {
            HoldCommand::Add { range, reason } => {
                let stream = range.stream;
                let query = hlsvault::serve::RangeQuery {
                    start: Some(range.start),
                    end: range.end,
                    duration: range.duration,
                };
                let (start, end) = query.time_range().map_err(anyhow::Error::msg)?;
                let hold = holds::add(store, &stream, [start, end], &reason).await?;
                println!("held: {}", holds::row(&stream, &hold));
            }
            HoldCommand::List { stream, .. } => {
                println!(
                    "{:<12} {:>4}  {:<20}  {:<20}  REASON",
                    "STREAM", "ID", "START", "END"
                );
                let names = config.streams.iter().map(|s| &s.name);
                for name in names.filter(|n| stream.as_ref().is_none_or(|s| s == *n)) {
                    let layout = hlsvault_hls::Layout::new(name);
                    for hold in holds::load(store, &layout).await?.list() {
                        println!("{}", holds::row(name, hold));
                    }
                }
            }
            HoldCommand::Remove { stream, id, .. } => {
                let hold = holds::remove(store, &stream, id).await?;
                println!("removed: {}", holds::row(&stream, &hold));
            }
        }
        Ok(())
    })
}

fn cluster(command: ClusterCommand) -> ExitCode {
    let (ClusterCommand::Status { config } | ClusterCommand::Drain { config, .. }) = &command;
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(settings) = &config.cluster else {
        eprintln!("hlsvault cluster: the config has no [cluster] table");
        return ExitCode::from(2);
    };
    let done = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match command {
                    ClusterCommand::Status { .. } => {
                        print!(
                            "{}",
                            hlsvault::cluster::status(settings, &config.streams).await?
                        );
                    }
                    ClusterCommand::Drain { node, undo, .. } => {
                        println!("{}", hlsvault::cluster::drain(settings, &node, undo).await?);
                    }
                }
                Ok(())
            })
        });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlsvault cluster: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

fn sign(path: &std::path::Path, stream: &str, hour: &str) -> ExitCode {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match engine::sign(&config, stream, hour) {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hlsvault sign: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// An export moves a segment-sized buffer or two per segment: freed, they
/// stay in the process for the next instead of going back to the kernel
/// and faulting in again, page by page (a third of the export's time).
/// Only for this short-lived command: the archiver keeps its memory
/// returned.
fn keep_freed_buffers() {
    // SAFETY: mallopt only sets allocator thresholds; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn export(
    path: &std::path::Path,
    stream: &str,
    [start, end, duration]: [Option<String>; 3],
    output: &std::path::Path,
    format: Option<hlsvault::export::ClipFormat>,
) -> ExitCode {
    use hlsvault::export::{export_clip, ClipFormat, ExportError};
    use std::io::IsTerminal;
    keep_freed_buffers();
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let query = hlsvault::serve::RangeQuery {
        start,
        end,
        duration,
    };
    let (start, end) = match query.time_range() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hlsvault export: {e}");
            return ExitCode::from(2);
        }
    };
    let named = output
        .extension()
        .map(|x| ClipFormat::of_extension(&x.to_string_lossy()));
    let format = match (format, named) {
        (Some(f), Some(Some(n))) if f != n => {
            eprintln!(
                "hlsvault export: --format {f:?} but {} says otherwise",
                output.display()
            );
            return ExitCode::from(2);
        }
        (Some(f), _) => f,
        (None, Some(Some(n))) => n,
        (None, None) => ClipFormat::Ts,
        (None, Some(None)) => {
            eprintln!(
                "hlsvault export: {} is neither .mp4 nor .ts (or say --format)",
                output.display()
            );
            return ExitCode::from(2);
        }
    };
    let mut stderr = std::io::stderr();
    let progress = stderr
        .is_terminal()
        .then_some(&mut stderr as &mut dyn std::io::Write);
    let range = [start, end];
    let result = if output.as_os_str() == "-" {
        let out = &mut std::io::stdout();
        export_clip(&config, stream, range, format, out, progress)
    } else {
        // Written beside it, then renamed: a failed export leaves no half file.
        let mut part = output.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let written = std::fs::File::create(&part)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))
            .and_then(|f| {
                let out = &mut std::io::BufWriter::new(f);
                export_clip(&config, stream, range, format, out, progress)
            })
            .and_then(|w| {
                std::fs::rename(&part, output)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
                Ok(w)
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        written
    };
    match result {
        Ok(written) => {
            if !written.left.is_empty() {
                eprintln!(
                    "hlsvault export: MP4 cannot carry, so the file leaves out: {}",
                    written.left.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hlsvault export: {}", explain(&e));
            let asked_wrong = matches!(
                e.downcast_ref::<ExportError>(),
                Some(
                    ExportError::Nothing { .. }
                        | ExportError::TooLong { .. }
                        | ExportError::Mp4(
                            hlsvault_mp4::Mp4Error::Unsupported(_)
                                | hlsvault_mp4::Mp4Error::NothingCarried
                        )
                )
            );
            ExitCode::from(if asked_wrong { 2 } else { 1 })
        }
    }
}

fn replay(
    path: &std::path::Path,
    stream: &str,
    [start, end, duration, delay]: [Option<String>; 4],
    follow: bool,
    to: hlsvault_send::Destination,
    (passes, rate, cbr): (Option<Option<u64>>, f64, bool),
) -> ExitCode {
    use hlsvault::replay::{Replay, ReplayError, ReplayFigures, Span};
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let asked_wrong = |said: String| {
        eprintln!("hlsvault replay: {said}");
        ExitCode::from(2)
    };
    if !config.streams.iter().any(|s| s.name == stream) {
        return asked_wrong(format!("no stream named \"{stream}\" in the config"));
    }
    let span = if follow {
        let delay = match (delay, start) {
            (Some(d), _) => humantime::parse_duration(&d)
                .map_err(|e| format!("--delay {d} is not a duration ({e})")),
            (None, Some(s)) => humantime::parse_rfc3339_weak(&s)
                .map(|s| s.elapsed().unwrap_or_default())
                .map_err(|e| format!("--start {s} is not an RFC 3339 time ({e})")),
            (None, None) => Err("--follow needs --delay or --start".into()),
        };
        match delay {
            Ok(delay) => Span::Follow { delay },
            Err(e) => return asked_wrong(e),
        }
    } else {
        let query = hlsvault::serve::RangeQuery {
            start,
            end,
            duration,
        };
        match query.time_range() {
            Ok((start, end)) => Span::Range { start, end },
            Err(e) => return asked_wrong(e),
        }
    };
    let store = match engine::open_store(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hlsvault replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let replay = Replay {
        stream: stream.to_string(),
        span,
        passes: match passes {
            None => Some(1),
            Some(times) => times,
        },
        rate,
        cbr,
        sender: hlsvault_send::SenderSettings {
            ssrc: Replay::ssrc(stream, &to),
            destination: to,
            queue: 0,
        },
        stats_interval: config.stats_interval,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hlsvault replay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let figures = std::sync::Arc::new(ReplayFigures::default());
    let played = runtime.block_on(replay.run(store, figures.clone(), stop_signal()));
    match played {
        Ok(figures) => {
            println!("{stream} to {}: {figures}", replay.sender.destination);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let asked_wrong = matches!(e, ReplayError::Nothing(_) | ReplayError::Socket(_));
            eprintln!("hlsvault replay: {}", explain(&anyhow::Error::from(e)));
            ExitCode::from(if asked_wrong { 2 } else { 1 })
        }
    }
}

/// `--rate`: a speed from 0.1 to 100.
fn rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| (0.1..=100.0).contains(r))
        .ok_or_else(|| format!("{text} is not a speed from 0.1 to 100"))
}

/// Resolves at SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let config = match load_checked(path, engine::preflight) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = match engine::run(&config, Some(path)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hlsvault: {}", explain(&e));
            return ExitCode::FAILURE;
        }
    };
    for src in &report.sources {
        let c = &src.counters;
        println!(
            "{}: {} records, {} datagrams for other destinations, {} not UDP, {} truncated, {} IP fragments ({} datagrams reassembled, {} incomplete), {} kernel drops, {} interface drops, {} socket drops",
            src.source,
            c.records,
            src.ignored,
            c.not_udp,
            c.truncated,
            c.fragments,
            c.reassembled,
            c.fragments_incomplete,
            c.kernel_drops,
            c.interface_drops,
            c.socket_drops
        );
    }
    for (name, s) in &report.streams {
        println!("{name}: {s}");
    }
    for (name, pids) in &report.pids {
        let table: Vec<String> = pids
            .iter()
            .map(|p| {
                let program = p
                    .program
                    .map(|n| format!(" of program {n}"))
                    .unwrap_or_default();
                let fate = if p.kept { "kept" } else { "dropped" };
                format!(
                    "{} ({}{program}): {} packets {fate}",
                    p.pid, p.what, p.packets
                )
            })
            .collect();
        if !table.is_empty() {
            println!("{name} PIDs: {}", table.join("; "));
        }
    }
    for (name, p) in &report.plugins {
        println!("plugin {name}: {p}");
    }
    for (name, why) in &report.empty {
        eprintln!("hlsvault: stream {name} archived nothing: {why}");
    }
    if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// An error and its causes on one line, each cause once: our errors say
/// their cause in their message and keep it as `source()` too.
fn explain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = anyhow::Error::from(hlsvault_capture::CaptureError::Socket {
            what: "239.1.1.1:5000".into(),
            source: io,
        })
        .context("starting the readers");
        assert_eq!(
            explain(&e),
            "starting the readers: cannot receive 239.1.1.1:5000: address in use"
        );
    }
}
