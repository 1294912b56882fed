//! The MP4 remuxer on any segments: a clip of up to four of them, then a
//! still of the first.
//!
//! Input: byte 0 says how many segments (1 + its low 2 bits) and which
//! follow a discontinuity (its high bits); the rest is cut into that many
//! runs of whole 188-byte packets (sync bytes forced).
//!
//! The two passes make the same chunks, so the file is as long as its
//! header says; nothing panics.
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_mp4::{preview, Index, Remuxer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [flags, bytes @ ..] = input else {
        return;
    };
    let count = usize::from(flags & 3) + 1;
    let mut ts: Vec<u8> = bytes[..bytes.len() / 188 * 188].to_vec();
    for p in ts.chunks_mut(188) {
        p[0] = 0x47;
    }
    let per = ts.len() / 188 / count * 188;
    let segments: Vec<&[u8]> = (0..count).map(|i| &ts[i * per..(i + 1) * per]).collect();
    let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (start, end) = (
        origin + Duration::from_millis(700),
        origin + Duration::from_secs(7),
    );
    let pass = |f: &mut dyn FnMut(&hlsvault_mp4::Chunk)| -> Option<Remuxer> {
        let mut r = Remuxer::new(start, end);
        for (i, s) in segments.iter().enumerate() {
            let at = origin + Duration::from_secs(2 * i as u64);
            let broken = flags & (4 << i) != 0;
            r.segment(s, at, broken).ok()?.iter().for_each(&mut *f);
        }
        r.finish().ok()?.iter().for_each(f);
        Some(r)
    };
    let mut index = Index::default();
    let Some(first) = pass(&mut |c| index.add(c)) else {
        return;
    };
    let mut media = 0u64;
    pass(&mut |c| media += c.data.len() as u64).expect("the second pass as the first");
    assert_eq!(media, index.media_len());
    if let Ok(header) = index.header(first.tracks(), first.duration_ms()) {
        assert!(header.len() > 16);
    }
    let _ = preview::picture(segments[0], Duration::from_millis(1500));
});
