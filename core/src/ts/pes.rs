//! PES headers: where the payload starts and what its PTS is.

/// The parts of a PES header that timing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// Presentation time stamp (33 bits), if the header carries one.
    pub pts: Option<u64>,
    /// Decoding time stamp (33 bits), if the header carries one apart from the PTS.
    pub dts: Option<u64>,
    /// Offset of the elementary stream payload within the bytes given.
    pub payload_offset: usize,
}

/// Parses the PES header at the start of a unit's first packet payload.
/// Returns `None` when the bytes are not a PES start or the header does not
/// fit in them.
pub fn parse_header(p: &[u8]) -> Option<PesHeader> {
    if p.len() < 9 || p[0] != 0 || p[1] != 0 || p[2] != 1 {
        return None;
    }
    let stream_id = p[3];
    // Streams without the optional header (padding, private_stream_2, ECM...).
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return Some(PesHeader {
            pts: None,
            dts: None,
            payload_offset: 6,
        });
    }
    if p[6] & 0xC0 != 0x80 {
        return None;
    }
    let header_len = p[8] as usize;
    let payload_offset = 9 + header_len;
    if payload_offset > p.len() {
        return None;
    }
    let flags = p[7] >> 6;
    let pts = (flags & 0b10 != 0 && header_len >= 5)
        .then(|| read_timestamp(&p[9..14]))
        .flatten();
    let dts = (flags == 0b11 && header_len >= 10)
        .then(|| read_timestamp(&p[14..19]))
        .flatten();
    Some(PesHeader {
        pts,
        dts,
        payload_offset,
    })
}

/// Reads a 33-bit timestamp coded in 5 bytes with marker bits.
fn read_timestamp(b: &[u8]) -> Option<u64> {
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return None;
    }
    Some(
        ((b[0] as u64 >> 1) & 0x07) << 30
            | (b[1] as u64) << 22
            | (b[2] as u64 >> 1) << 15
            | (b[3] as u64) << 7
            | (b[4] as u64 >> 1),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a PES header with a PTS, as muxers write it.
    pub fn header(stream_id: u8, pts: u64) -> Vec<u8> {
        let mut h = vec![0, 0, 1, stream_id, 0, 0, 0x80, 0x80, 5];
        h.push(0x21 | ((pts >> 29) & 0x0E) as u8);
        h.push((pts >> 22) as u8);
        h.push(0x01 | ((pts >> 14) & 0xFE) as u8);
        h.push((pts >> 7) as u8);
        h.push(0x01 | ((pts << 1) & 0xFE) as u8);
        h
    }

    #[test]
    fn reads_a_33_bit_pts() {
        for pts in [0u64, 1, 90_000, (1 << 33) - 1, 0x1_2345_6789] {
            let h = header(0xE0, pts);
            let got = parse_header(&h).unwrap();
            assert_eq!(got.pts, Some(pts));
            assert_eq!(got.payload_offset, 14);
        }
    }

    #[test]
    fn reads_dts_when_flagged() {
        let mut h = header(0xE0, 9000);
        h[7] = 0xC0;
        h[8] = 10;
        h[9] = (h[9] & 0x0F) | 0x30;
        h.extend_from_slice(&[0x11, 0x00, 0x01, 0x1C, 0x21]); // 3600
        let got = parse_header(&h).unwrap();
        assert_eq!(
            (got.pts, got.dts, got.payload_offset),
            (Some(9000), Some(3600), 19)
        );
    }

    #[test]
    fn refuses_non_pes_and_short_headers() {
        assert_eq!(parse_header(&[0, 0, 2, 0xE0, 0, 0, 0x80, 0x80, 5]), None);
        let h = header(0xE0, 5);
        assert_eq!(parse_header(&h[..10]), None);
        let mut bad_marker = header(0xE0, 5);
        bad_marker[13] &= 0xFE;
        assert_eq!(parse_header(&bad_marker).unwrap().pts, None);
    }
}
