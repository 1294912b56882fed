//! Replays a capture file (pcap or pcapng) through libpcap.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{
    deliver, link_of, CaptureError, End, Event, Flow, LinkType, Reassembler, Source,
    SourceCounters, TICK,
};

/// How fast a capture file is replayed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Pace {
    /// As fast as the pipeline goes.
    #[default]
    Fast,
    /// At the pace recorded in the file.
    Realtime,
}

/// Call `progress` after this many records.
const PROGRESS_EVERY: u64 = 1 << 14;
/// libpcap reads files through stdio, whose default buffer is one 4 KiB
/// block: 250,000 read calls per GB. We give it this much instead.
const READ_BUFFER: usize = 1 << 20;

extern "C" {
    /// libpcap: the stdio stream of an offline capture (not bound by the
    /// pcap crate).
    fn pcap_file(p: *mut std::ffi::c_void) -> *mut libc::FILE;
}

/// Gives the capture's stdio stream a large buffer. `buf` must outlive the
/// capture (libpcap closes the stream when the capture is dropped).
fn enlarge_read_buffer(cap: &pcap::Capture<pcap::Offline>, buf: &mut [u8]) {
    // SAFETY: `as_ptr` is the live pcap_t of an offline capture, whose
    // stream libpcap opened; `buf` outlives the capture (see the caller).
    // glibc's setvbuf with a caller buffer first re-syncs the stream to its
    // logical position, so the file header libpcap already read is kept.
    unsafe {
        let file = pcap_file(cap.as_ptr().cast());
        if !file.is_null() {
            libc::setvbuf(file, buf.as_mut_ptr().cast(), libc::_IOFBF, buf.len());
        }
    }
}

/// A capture file, replayed as fast as possible or at its recorded pace.
pub struct PcapFileSource {
    path: PathBuf,
    pace: Pace,
}

impl PcapFileSource {
    /// A source for the file at `path`.
    pub fn new(path: PathBuf, pace: Pace) -> Self {
        PcapFileSource { path, pace }
    }

    fn open(&self) -> Result<(pcap::Capture<pcap::Offline>, LinkType), CaptureError> {
        let path = self.path.display().to_string();
        let cap = pcap::Capture::from_file_with_precision(&self.path, pcap::Precision::Nano)
            .map_err(|source| CaptureError::Open {
                path: path.clone(),
                source,
            })?;
        let link = link_of(&cap, &path)?;
        Ok((cap, link))
    }

    /// Opens the file and checks its link layer, without reading records.
    pub fn probe(&self) -> Result<(), CaptureError> {
        self.open().map(drop)
    }
}

impl Source for PcapFileSource {
    fn run(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>) -> Flow,
    ) -> Result<(End, SourceCounters), CaptureError> {
        // Declared before the capture so that it is dropped after it.
        let mut read_buffer = vec![0u8; READ_BUFFER];
        let (mut cap, link) = self.open()?;
        enlarge_read_buffer(&cap, &mut read_buffer);
        let mut n = SourceCounters::default();
        let mut fragments = Reassembler::default();
        let mut clock: Option<(Duration, Instant)> = None;
        loop {
            let packet = match cap.next_packet() {
                Ok(p) => p,
                Err(pcap::Error::NoMorePackets) => break,
                Err(e) => {
                    // libpcap cannot resynchronise inside a damaged file.
                    tracing::warn!(file = %self.path.display(), error = %e, "capture file ends with a damaged record; stopping there");
                    n.truncated += 1;
                    break;
                }
            };
            // The record header, so that progress adds up to the file size.
            n.bytes += 16;
            if n.records % PROGRESS_EVERY == 0 && sink(Event::Progress(&n)) == Flow::Stop {
                return Ok((End::Stopped, fragments.finished(n)));
            }
            if self.pace == Pace::Realtime {
                let ts = packet.header.ts;
                let at = Duration::new(
                    ts.tv_sec.max(0) as u64,
                    ts.tv_usec.clamp(0, 999_999_999) as u32,
                );
                let (t0, w0) = *clock.get_or_insert((at, Instant::now()));
                // A time before the first record's is not waited for, nor
                // one past what the clock can hold (a corrupt record).
                if let Some(due) = at.checked_sub(t0).and_then(|offset| w0.checked_add(offset)) {
                    // Sleep in ticks, so that a stop request is heard.
                    while let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait.min(TICK));
                        if sink(Event::Tick) == Flow::Stop {
                            return Ok((End::Stopped, fragments.finished(n)));
                        }
                    }
                }
            }
            let (header, data) = (packet.header, packet.data);
            if deliver(link, header, data, &mut n, &mut fragments, sink) == Flow::Stop {
                return Ok((End::Stopped, fragments.finished(n)));
            }
        }
        let n = fragments.finished(n);
        sink(Event::Progress(&n));
        Ok((End::Exhausted, n))
    }
}
