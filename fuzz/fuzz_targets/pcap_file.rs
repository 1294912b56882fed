//! The capture-file reader on any file: libpcap's parsing, then ours.
//!
//! Input: the file's bytes. What it delivers stays inside the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use hlsvault_capture::{Event, Flow, Pace, PcapFileSource, Source};
use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        dir.join(format!("hlsvault-fuzz-{}.pcap", std::process::id()))
    })
}

fuzz_target!(|input: &[u8]| {
    std::fs::write(file(), input).expect("a scratch file");
    let mut delivered = 0usize;
    let outcome = PcapFileSource::new(file().clone(), Pace::Fast).run(&mut |e| {
        if let Event::Datagram(d) = e {
            delivered += d.payload.len();
        }
        Flow::Continue
    });
    if outcome.is_ok() {
        assert!(delivered <= input.len());
    }
});
