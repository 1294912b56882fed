//! H.264 and HEVC access units from Annex B (start codes, as TS carries
//! them) to MP4 samples (each NAL unit behind its 4-byte length), with
//! the parameter sets taken out for the sample entry.

use hlsvault_ts::keyframe::VideoCodec;

/// What a NAL unit is, as far as a sample cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalKind {
    /// A picture a decoder can start at: H.264 IDR, HEVC IRAP (IDR, CRA,
    /// BLA).
    RandomAccess,
    /// HEVC video parameter set.
    Vps,
    Sps,
    Pps,
    /// Access unit delimiter, filler data, end of sequence or stream: a
    /// sample does not carry them (its boundaries say as much).
    Dropped,
    /// Slices, SEI and the rest.
    Other,
}

/// The kind of the NAL unit `nal` (starting at its header).
pub fn kind(codec: VideoCodec, nal: &[u8]) -> NalKind {
    let Some(&first) = nal.first() else {
        return NalKind::Dropped;
    };
    match codec {
        VideoCodec::Hevc => match (first >> 1) & 0x3F {
            32 => NalKind::Vps,
            33 => NalKind::Sps,
            34 => NalKind::Pps,
            35..=38 => NalKind::Dropped,
            16..=23 => NalKind::RandomAccess,
            _ => NalKind::Other,
        },
        _ => match first & 0x1F {
            7 => NalKind::Sps,
            8 => NalKind::Pps,
            9..=12 => NalKind::Dropped,
            5 => NalKind::RandomAccess,
            _ => NalKind::Other,
        },
    }
}

/// The NAL units of an Annex B buffer, without start codes (and without the
/// zero bytes that may trail a unit before the next start code).
///
/// ```
/// use hlsvault_mp4::nal::units;
/// let es = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0, 0, 1, 0x41, 0x9A];
/// let found: Vec<&[u8]> = units(&es).collect();
/// assert_eq!(found, [&[0x09, 0xF0][..], &[0x65, 0x88, 0x84], &[0x41, 0x9A]]);
/// ```
pub fn units(es: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = next_start(es, 0).map(|s| s + 3);
    std::iter::from_fn(move || {
        let begin = at?;
        let end = match next_start(es, begin) {
            Some(s) => {
                at = Some(s + 3);
                s
            }
            None => {
                at = None;
                es.len()
            }
        };
        let mut unit = &es[begin..end];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        Some(unit)
    })
    .filter(|u| !u.is_empty())
}

/// Where the next `00 00 01` at or after `from` begins (a vectorised
/// search: this runs over every byte of the video).
fn next_start(es: &[u8], from: usize) -> Option<usize> {
    static START_CODE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(&[0, 0, 1]));
    Some(from + START_CODE.find(es.get(from..)?)?)
}

/// Appends `unit` to `out` as MP4 stores it: its length (4 bytes, big
/// endian), then its bytes.
pub fn push_length_prefixed(out: &mut Vec<u8>, unit: &[u8]) {
    out.extend_from_slice(&(unit.len() as u32).to_be_bytes());
    out.extend_from_slice(unit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_h264_and_hevc_units() {
        assert_eq!(kind(VideoCodec::H264, &[0x67]), NalKind::Sps);
        assert_eq!(kind(VideoCodec::H264, &[0x68]), NalKind::Pps);
        assert_eq!(kind(VideoCodec::H264, &[0x09]), NalKind::Dropped);
        assert_eq!(kind(VideoCodec::H264, &[0x65]), NalKind::RandomAccess);
        assert_eq!(kind(VideoCodec::H264, &[0x41]), NalKind::Other);
        assert_eq!(kind(VideoCodec::Hevc, &[0x40, 1]), NalKind::Vps);
        assert_eq!(kind(VideoCodec::Hevc, &[0x42, 1]), NalKind::Sps);
        assert_eq!(kind(VideoCodec::Hevc, &[0x44, 1]), NalKind::Pps);
        assert_eq!(kind(VideoCodec::Hevc, &[0x46, 1]), NalKind::Dropped);
        assert_eq!(kind(VideoCodec::Hevc, &[0x26, 1]), NalKind::RandomAccess);
        assert_eq!(kind(VideoCodec::Hevc, &[0x02, 1]), NalKind::Other);
    }

    #[test]
    fn start_codes_are_found_wherever_they_lie() {
        let es = [1, 0, 0, 1, 0x41, 1, 1, 0, 0, 0, 1, 0x65, 0, 0, 1];
        let found: Vec<&[u8]> = units(&es).collect();
        assert_eq!(found, [&[0x41, 1, 1][..], &[0x65]]);
    }

    #[test]
    fn a_buffer_without_start_code_has_no_unit() {
        assert_eq!(units(&[1, 2, 3, 0, 0]).count(), 0);
        assert_eq!(units(&[0, 0, 1]).count(), 0);
    }

    #[test]
    fn units_are_prefixed_by_their_length() {
        let mut out = Vec::new();
        push_length_prefixed(&mut out, &[0x65, 1, 2]);
        assert_eq!(out, [0, 0, 0, 3, 0x65, 1, 2]);
    }
}
