//! `hlsvault check` and the checks before a run: what the configuration
//! refers to (capture files, link types, interfaces, the privilege to
//! capture, the store, the plugins), and why a capture file's stream would
//! archive nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use super::analysis::cut_policy;
use super::plugins::load_plugins;
use super::reader::{self, ReaderKey, SourceReport};
use super::store::store_finding;
use crate::config::{Config, Pace, Problem, StreamConfig};
use crate::figures::StreamStats;
use hlsvault_capture::{netif, CaptureError, PcapFileSource, PcapLiveSource};
use hlsvault_ts::rtp::{self, Payload};
use hlsvault_ts::segment::SegmentCutter;

/// Checks what the configuration refers to (capture files, link types,
/// interfaces, the privilege to capture) without archiving anything. The
/// streams of capture files that open are tried on the file's first
/// [`DRY_RUN`] of capture time: one that would archive nothing says why.
pub fn check(config: &Config) -> Vec<Problem> {
    let mut problems: Vec<Problem> = findings(config).into_iter().map(|(p, _)| p).collect();
    let mut files: BTreeMap<&Path, Vec<(usize, &StreamConfig)>> = BTreeMap::new();
    for (i, s) in config.streams.iter().enumerate() {
        let opens = !problems
            .iter()
            .any(|p| p.key.starts_with(&format!("streams[{i}] ")));
        if let (Some(path), true) = (s.source.file(), opens) {
            files.entry(path).or_default().push((i, s));
        }
    }
    for (path, streams) in files {
        let cfgs: Vec<&StreamConfig> = streams.iter().map(|(_, s)| *s).collect();
        match dry_run(path, &cfgs) {
            Ok(whys) => {
                for ((i, s), why) in streams.iter().zip(whys) {
                    if let Some(why) = why {
                        problems.push(Problem {
                            key: format!("streams[{i}] (\"{}\").source", s.name),
                            reason: format!("would archive nothing: {why}"),
                        });
                    }
                }
            }
            Err(e) => problems.push(Problem {
                key: format!(
                    "streams[{}] (\"{}\").source.path",
                    streams[0].0, streams[0].1.name
                ),
                reason: e.to_string(),
            }),
        }
    }
    problems
}

/// How much of a capture file `check` tries each stream on.
const DRY_RUN: Duration = Duration::from_secs(30);

/// Cuts each stream of `path` in memory over the file's first [`DRY_RUN`]
/// of capture time: for each, why it would archive nothing (`None` when it
/// cuts a segment).
fn dry_run(path: &Path, streams: &[&StreamConfig]) -> Result<Vec<Option<String>>, CaptureError> {
    use hlsvault_capture::{Event, Flow, Source};
    let mut cutters: Vec<SegmentCutter> = streams
        .iter()
        .map(|s| SegmentCutter::new(cut_policy(s)))
        .collect();
    let mut seen = vec![false; streams.len()];
    let mut destinations = reader::Destinations::default();
    let mut first = None;
    let mut source = PcapFileSource::new(path.to_path_buf(), Pace::Fast);
    let (_, counters) = source.run(&mut |e| {
        let Event::Datagram(d) = e else {
            return Flow::Continue;
        };
        let t0 = *first.get_or_insert(d.at);
        if d.at.duration_since(t0).unwrap_or_default() > DRY_RUN {
            return Flow::Stop;
        }
        destinations.count(d.dst);
        for (i, s) in streams.iter().enumerate() {
            if d.dst == s.source.dst() {
                seen[i] = true;
                if let Payload::Ts(ts) | Payload::Rtp { ts, .. } = rtp::classify(d.payload) {
                    cutters[i].push_datagram(&hlsvault_ts::as_188(ts), d.at, false);
                    cutters[i].take_ready().for_each(drop);
                }
            }
        }
        Flow::Continue
    })?;
    let report = SourceReport {
        source: path.display().to_string(),
        counters,
        ignored: 0,
        destinations: destinations.most_first(),
    };
    Ok(cutters
        .iter_mut()
        .zip(streams)
        .zip(seen)
        .map(|((cutter, s), seen)| match seen {
            true => cutter.why_empty(),
            false => Some(no_datagrams(s, path, Some(&report))),
        })
        .collect())
}

/// Checks before a run: what a run cannot start with. A missing or down
/// interface, or an unreachable store, is only logged: live sources wait
/// for their interface (hlsvault may start before the network does), and
/// store failures are counted as they happen.
pub fn preflight(config: &Config) -> Vec<Problem> {
    let mut fatal = Vec::new();
    for (p, transient) in findings(config) {
        if transient {
            tracing::warn!(key = %p.key, "{}; starting anyway", p.reason);
        } else {
            fatal.push(p);
        }
    }
    fatal
}

/// Every problem found, and whether it may go away by itself. Each file
/// and interface is probed once, however many streams use it.
fn findings(config: &Config) -> Vec<(Problem, bool)> {
    let mut problems: Vec<(Problem, bool)> = store_finding(config).into_iter().collect();
    if let Err(e) = super::state::prepare(config) {
        problems.push((
            Problem {
                key: "state_dir".into(),
                reason: format!("{e:#}"),
            },
            false,
        ));
    }
    if !config.plugins.is_empty() {
        match hlsvault_plugin::Runtime::new(config.plugin_cache_location()) {
            Ok(runtime) => problems.extend(
                load_plugins(config, &runtime)
                    .1
                    .into_iter()
                    .map(|p| (p, false)),
            ),
            Err(e) => problems.push((
                Problem {
                    key: "plugins".into(),
                    reason: e.to_string(),
                },
                false,
            )),
        }
    }
    problems.extend(source_findings(config.streams.iter().enumerate()));
    problems
}

/// What is wrong with the sources of `streams` (each with its index in
/// the config), and whether it may go away by itself (a missing or down
/// interface). Each file and interface is probed once.
pub(super) fn source_findings<'a>(
    streams: impl Iterator<Item = (usize, &'a StreamConfig)>,
) -> Vec<(Problem, bool)> {
    type Outcome = Option<(&'static str, String, bool)>;
    let mut probed: HashMap<ReaderKey, Outcome> = HashMap::new();
    let mut problems = Vec::new();
    for (i, s) in streams {
        let reader = ReaderKey::of(s);
        let outcome = probed.entry(reader.clone()).or_insert_with(|| {
            probe(&reader).err().map(|(key, e)| {
                let transient = matches!(e, CaptureError::Interface(_));
                (key, e.to_string(), transient)
            })
        });
        if let Some((key, reason, transient)) = outcome {
            let key = format!("streams[{i}] (\"{}\").source.{key}", s.name);
            let reason = reason.clone();
            problems.push((Problem { key, reason }, *transient));
        }
    }
    problems
}

/// Opens what a reader would read, reading nothing; on failure, the key
/// of `source` at fault.
fn probe(reader: &ReaderKey) -> Result<(), (&'static str, CaptureError)> {
    match reader {
        ReaderKey::File(path, pace) => PcapFileSource::new(path.clone(), *pace)
            .probe()
            .map_err(|e| ("path", e)),
        ReaderKey::Pcap(interface) => PcapLiveSource::new(interface.clone(), Default::default())
            .probe()
            .map_err(|e| ("interface", e)),
        ReaderKey::Udp(Some(interface)) => netif::find(interface)
            .map(drop)
            .map_err(|e| ("interface", e.into())),
        ReaderKey::Udp(None) => Ok(()),
    }
}

/// Why a capture file's stream archived nothing: the analysis's reason, or
/// what the file held instead of the stream's datagrams.
pub(super) fn why_empty(
    cfg: &StreamConfig,
    stats: &StreamStats,
    sources: &[SourceReport],
) -> String {
    if let Some(why) = stats.why_empty() {
        return why;
    }
    let file = cfg.source.file().unwrap_or(Path::new(""));
    let report = sources.iter().find(|r| Path::new(&r.source) == file);
    no_datagrams(cfg, file, report)
}

/// Says that `file` held no datagram for `cfg`, and what it held instead
/// (from its reader's `report`).
fn no_datagrams(cfg: &StreamConfig, file: &Path, report: Option<&SourceReport>) -> String {
    let mut why = format!("no datagrams to {} in {}", cfg.source.dst(), file.display());
    let Some(report) = report else {
        return why;
    };
    let c = &report.counters;
    if !report.destinations.is_empty() {
        let listed: Vec<String> = report
            .destinations
            .iter()
            .take(10)
            .map(|(dst, n)| format!("{dst} ({n} datagrams)"))
            .collect();
        why.push_str(&format!("; it carries UDP to {}", listed.join(", ")));
    }
    if c.not_udp > 0 {
        why.push_str(&format!(
            "; {} records are not UDP over IP (TCP, ARP, ...)",
            c.not_udp
        ));
    }
    if c.truncated > 0 {
        why.push_str(&format!(
            "; {} records were cut short by the capture's snap length (capture again with a larger snaplen)",
            c.truncated
        ));
    }
    if c.fragments_incomplete > 0 {
        why.push_str(&format!(
            "; {} datagrams arrived as IP fragments that never all came",
            c.fragments_incomplete
        ));
    }
    if c.records == 0 {
        why.push_str("; the file holds no records");
    }
    why
}
