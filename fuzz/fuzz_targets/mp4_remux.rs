//! The MP4 writer on any segments: a clip of up to four of them, then a
//! still of the first.
//!
//! Input: byte 0 says how many segments (1 + its low 2 bits) and which
//! follow a discontinuity (its high bits); the rest is cut into that many
//! runs of whole 188-byte packets (sync bytes forced).
//!
//! A clip that is made starts with `ftyp`, and every box it writes is as
//! long as it says; nothing panics.
#![no_main]

use std::time::{Duration, SystemTime};

use hlsvault_mp4::{preview, Writer};
use libfuzzer_sys::fuzz_target;

/// Walks the top-level boxes of `mp4`: each size covers at least its
/// header and stays within the file.
fn boxes_are_whole(mp4: &[u8]) {
    let mut at = 0;
    while at < mp4.len() {
        let size = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap()) as usize;
        let size = if size == 1 {
            u64::from_be_bytes(mp4[at + 8..at + 16].try_into().unwrap()) as usize
        } else {
            size
        };
        assert!(
            size >= 8 && at + size <= mp4.len(),
            "a box of {size} at {at}"
        );
        at += size;
    }
}

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
    let mut writer = Writer::new(start, end);
    let mut mp4 = Vec::new();
    let mut made = || -> Result<(), hlsvault_mp4::Mp4Error> {
        for (i, s) in segments.iter().enumerate() {
            let at = origin + Duration::from_secs(2 * i as u64);
            mp4.extend(writer.segment(s, at, flags & (4 << i) != 0)?.concat());
        }
        mp4.extend(writer.finish()?.concat());
        Ok(())
    };
    if made().is_ok() {
        assert_eq!(&mp4[4..8], b"ftyp");
        boxes_are_whole(&mp4);
    }
    if let Ok(still) = preview::picture(segments[0], Duration::from_millis(1500)) {
        boxes_are_whole(&still);
    }
});
