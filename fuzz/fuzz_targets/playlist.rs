//! Playlists read back from the store (a restart continues an hour from
//! them; serve joins hours from them).
//!
//! Input: the text. What parses renders, and what it renders parses back
//! to as many entries.
#![no_main]

use hlsvault_hls::{Kind, Playlist};
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
    }
});
