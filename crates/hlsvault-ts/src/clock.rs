//! 90 kHz PTS and 27 MHz PCR arithmetic, with the 33-bit wrap handled.
//!
//! Both clocks wrap: PTS after 2^33 ticks (about 26.5 hours), PCR after
//! 2^33 × 300 ticks. Differences are taken modulo the wrap and read as signed,
//! so a stream that crosses the wrap keeps a seamless timeline.

use std::time::SystemTime;

/// PTS/DTS ticks per second.
pub const PTS_HZ: u64 = 90_000;
/// PCR ticks per second.
pub const PCR_HZ: u64 = 27_000_000;
/// PTS values wrap at 2^33.
pub const PTS_WRAP: u64 = 1 << 33;
/// PCR values wrap at 2^33 × 300.
pub const PCR_WRAP: u64 = PTS_WRAP * 300;

/// Decodes a PCR as an adaptation field carries it (6 bytes: a 33-bit
/// 90 kHz base, 6 reserved bits, a 9-bit 27 MHz extension) into 27 MHz
/// ticks.
///
/// ```
/// use hlsvault_ts::clock::read_pcr;
/// // base 1, extension 2: 300 + 2 ticks.
/// assert_eq!(read_pcr(&[0, 0, 0, 0, 0x80 | 0x7E, 2]), 302);
/// ```
#[inline]
pub fn read_pcr(b: &[u8; 6]) -> u64 {
    let base = (b[0] as u64) << 25
        | (b[1] as u64) << 17
        | (b[2] as u64) << 9
        | (b[3] as u64) << 1
        | (b[4] as u64) >> 7;
    base * 300 + (((b[4] as u64) & 1) << 8 | b[5] as u64)
}

/// Encodes 27 MHz ticks (below [`PCR_WRAP`]) as a PCR field: the inverse
/// of [`read_pcr`], reserved bits set.
///
/// ```
/// use hlsvault_ts::clock::{read_pcr, write_pcr};
/// let mut field = [0u8; 6];
/// write_pcr(&mut field, 123_456_789_012);
/// assert_eq!(read_pcr(&field), 123_456_789_012);
/// ```
#[inline]
pub fn write_pcr(field: &mut [u8; 6], pcr: u64) {
    let (base, ext) = (pcr / 300, pcr % 300);
    *field = [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7E | (ext >> 8) as u8,
        ext as u8,
    ];
}

/// The 6 bytes of a packet's PCR field (where it is when the adaptation
/// field says it has one).
#[inline]
pub fn pcr_field(p: &crate::Packet) -> &[u8; 6] {
    let (field, _) = p[6..]
        .split_first_chunk::<6>()
        .expect("a packet is longer than 12 bytes");
    field
}

/// The PCRs of one PID, the first one that carries a PCR: a pacer keeps
/// to one clock, and a multiplex of several programs has several.
///
/// ```
/// use hlsvault_ts::clock::PcrTrack;
/// let with_pcr = |pid: u8, pcr: u8| {
///     let mut p = [0xFFu8; 188];
///     p[..12].copy_from_slice(&[0x47, 0x01, pid, 0x30, 7, 0x10, 0, 0, 0, pcr, 0x7E, 0]);
///     p
/// };
/// let mut track = PcrTrack::default();
/// assert_eq!(track.pcr(&with_pcr(0x00, 1)), Some(2 * 300));
/// assert_eq!(track.pcr(&with_pcr(0x01, 2)), None, "another PID's clock");
/// ```
#[derive(Debug, Default, Clone)]
pub struct PcrTrack {
    pid: Option<u16>,
}

impl PcrTrack {
    /// The PCR (27 MHz) that `p` carries on the tracked PID.
    pub fn pcr(&mut self, p: &crate::Packet) -> Option<u64> {
        let h = crate::Header::parse(p);
        if !h.has_af || p[4] < 7 || p[5] & 0x10 == 0 {
            return None;
        }
        if *self.pid.get_or_insert(h.pid) != h.pid {
            return None;
        }
        Some(read_pcr(pcr_field(p)))
    }
}

/// Signed distance `to - from` on the 33-bit PTS circle, in ticks.
pub fn pts_diff(to: u64, from: u64) -> i64 {
    let d = to.wrapping_sub(from) & (PTS_WRAP - 1);
    if d >= PTS_WRAP / 2 {
        d as i64 - PTS_WRAP as i64
    } else {
        d as i64
    }
}

/// Forward distance from `from` to `to` on the PCR circle, in 27 MHz ticks.
/// A backward step reads as a distance close to the whole circle.
pub fn pcr_forward(to: u64, from: u64) -> u64 {
    // A PCR extension above 299 (the field has 9 bits) reads past the wrap.
    (to % PCR_WRAP + PCR_WRAP - from % PCR_WRAP) % PCR_WRAP
}

/// A PTS made monotonic-capable: 64-bit, never wrapping.
///
/// Feed it raw 33-bit values in stream order; it follows the wrap so that
/// callers can subtract extended values directly.
#[derive(Debug, Clone, Copy, Default)]
pub struct PtsExtender {
    last: Option<(u64, i64)>,
}

impl PtsExtender {
    /// Extends `pts` relative to the previous value seen.
    pub fn extend(&mut self, pts: u64) -> i64 {
        let ext = match self.last {
            None => pts as i64,
            Some((raw, ext)) => ext + pts_diff(pts, raw),
        };
        self.last = Some((pts, ext));
        ext
    }
}

/// Formats 90 kHz ticks as seconds with six decimals, without going through
/// floating point (so 540540 ticks is exactly "6.006000").
pub fn format_seconds(ticks: u64) -> String {
    let secs = ticks / PTS_HZ;
    let micros = (ticks % PTS_HZ) * 1_000_000 / PTS_HZ;
    format!("{secs}.{micros:06}")
}

/// Parses seconds (as written in `#EXTINF`) back to 90 kHz ticks, rounded.
pub fn parse_seconds(text: &str) -> Option<u64> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * PTS_HZ as f64).round() as u64)
}

/// 90 kHz ticks as a `Duration` (negative: zero). Whole seconds first,
/// so that no tick count overflows (ticks × 10⁹ would past 57 hours).
///
/// ```
/// use hlsvault_ts::clock::ticks_to_duration;
/// use std::time::Duration;
/// assert_eq!(ticks_to_duration(90_000 * 3600 * 60), Duration::from_secs(3600 * 60));
/// assert_eq!(ticks_to_duration(i64::MAX).as_secs(), i64::MAX as u64 / 90_000);
/// ```
pub fn ticks_to_duration(ticks: i64) -> std::time::Duration {
    let t = ticks.max(0) as u64;
    std::time::Duration::from_secs(t / PTS_HZ)
        + std::time::Duration::from_nanos((t % PTS_HZ) * 1_000_000_000 / PTS_HZ)
}

/// The latest wall-clock time an RFC 3339 timestamp can write:
/// 9999-12-31T23:59:59.999Z (humantime formats nothing later).
pub fn last_writable() -> SystemTime {
    SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(253_402_300_799_999)
}

/// `t` inside what archive names and playlists can write: from 1970 to the
/// year 9999. A corrupt capture can carry any time, and the cutter places
/// a frame before its capture time; the archive must still be written.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hlsvault_ts::clock::{last_writable, writable};
/// let before = SystemTime::UNIX_EPOCH - Duration::from_secs(5);
/// assert_eq!(writable(before), SystemTime::UNIX_EPOCH);
/// let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40);
/// assert_eq!(writable(far), last_writable());
/// ```
pub fn writable(t: SystemTime) -> SystemTime {
    t.clamp(SystemTime::UNIX_EPOCH, last_writable())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_across_wrap_is_small_and_positive() {
        let before = PTS_WRAP - 1800;
        assert_eq!(pts_diff(1800, before), 3600);
        assert_eq!(pts_diff(before, 1800), -3600);
        assert_eq!(pts_diff(10, 10), 0);
    }

    #[test]
    fn extender_is_seamless_across_wrap() {
        let mut x = PtsExtender::default();
        let start = PTS_WRAP - 3 * 3600;
        let mut last = x.extend(start);
        for i in 1..10u64 {
            let raw = (start + i * 3600) % PTS_WRAP;
            let ext = x.extend(raw);
            assert_eq!(ext - last, 3600, "step {i}");
            last = ext;
        }
        // B-frame order: a step back stays a step back.
        assert_eq!(x.extend((start + 8 * 3600) % PTS_WRAP), last - 3600);
    }

    #[test]
    fn a_pcr_past_the_wrap_is_read_on_the_circle() {
        let past = PCR_WRAP + 211; // base 2^33 - 1, extension 511
        assert_eq!(pcr_forward(past, PCR_WRAP - 100), 311);
        assert_eq!(pcr_forward(100, past), PCR_WRAP - 111);
    }

    #[test]
    fn pcr_forward_wraps() {
        assert_eq!(pcr_forward(100, PCR_WRAP - 200), 300);
        assert_eq!(pcr_forward(100, 100), 0);
        assert!(pcr_forward(100, 200) > PCR_WRAP - 1000);
    }

    #[test]
    fn seconds_round_trip() {
        assert_eq!(format_seconds(540_540), "6.006000");
        assert_eq!(format_seconds(90_000 * 4 + 1), "4.000011");
        assert_eq!(parse_seconds("6.006000"), Some(540_540));
        assert_eq!(parse_seconds("4.000011"), Some(360_001));
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds("x"), None);
    }
}
