//! Playlists and day indexes read back from the store (a restart
//! continues an hour from them; serve joins hours and ranges from them).
//!
//! Input: the text. What parses renders, and what it renders parses back
//! to as many entries; their ranges have a gap between each two recorded
//! ranges; a day index, once written, reads back as written.
#![no_main]

use std::time::SystemTime;

use hlsvault_hls::{DayIndex, Kind, Playlist, Ranges, Run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    for kind in [Kind::Event, Kind::Window(5)] {
        let Ok(p) = Playlist::parse(kind, &text) else {
            continue;
        };
        for e in p.entries() {
            let _ = e.end();
        }
        let again = Playlist::parse(kind, &p.render()).expect("our own text parses");
        assert_eq!(again.entries().count(), p.entries().count());
        let runs = Run::of_entries(p.entries());
        let ranges = Ranges::build(
            runs.iter().copied(),
            SystemTime::UNIX_EPOCH,
            hlsvault_ts::clock::last_writable(),
        );
        assert_eq!(ranges.gaps.len() + 1, ranges.recorded.len().max(1));
    }
    // Written to the millisecond: once written, it reads back as written.
    let written = DayIndex::parse(&text).render();
    assert_eq!(DayIndex::parse(&written).render(), written);
});
