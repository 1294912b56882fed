//! What a playback request asks for: a time range (`start`, `end`,
//! `duration`) and a byte range (the `Range` header).
//!
//! Input: lines: start, end, duration (an empty line is absent), the
//! `Range` header and the object's length. A range that parses is ordered,
//! within `MAX_RANGE`; a byte range that parses lies within the object.
#![no_main]

use hlsvault::serve::{ByteRange, RangeQuery, MAX_RANGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let mut field = || lines.next().filter(|l| !l.is_empty()).map(str::to_string);
    let query = RangeQuery {
        start: field(),
        end: field(),
        duration: field(),
    };
    if let Ok((start, end)) = query.time_range() {
        let length = end.duration_since(start).expect("ordered");
        assert!(!length.is_zero() && length <= MAX_RANGE);
    }
    let header = field().unwrap_or_default();
    let len = field()
        .and_then(|l| l.trim().parse::<u64>().ok())
        .unwrap_or(0);
    match ByteRange::parse(&header, len) {
        ByteRange::Part { first, last } => assert!(first <= last && last < len),
        ByteRange::Whole | ByteRange::Unsatisfiable => {}
    }
});
