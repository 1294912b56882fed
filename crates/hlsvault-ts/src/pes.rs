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

/// Rewrites `packet`, the first TS packet of a PES, with `bytes` inserted
/// into its elementary stream `es_at` bytes after the PES header, appending
/// the result to `out`: the packet itself, then as many packets as the
/// insertion pushes out, on the same PID. Continuity counters are chosen so
/// that the last packet written carries `packet`'s, so the stream's next
/// packet follows without a break. A bounded `PES_packet_length` grows with
/// the insertion (or becomes 0, unbounded, when it no longer fits).
///
/// Returns false, writing nothing, when the packet is no PES start or
/// `es_at` lies beyond it.
pub fn insert_into_unit_start(
    packet: &crate::Packet,
    es_at: usize,
    bytes: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    use super::{Header, PACKET_SIZE};
    let h = Header::parse(packet);
    let payload_at = if h.has_af { 5 + packet[4] as usize } else { 4 };
    if !h.pusi || !h.has_payload || payload_at >= PACKET_SIZE {
        return false;
    }
    let payload = &packet[payload_at..];
    let Some(pes) = parse_header(payload) else {
        return false;
    };
    let split = pes.payload_offset + es_at;
    if split > payload.len() {
        return false;
    }
    let mut data = Vec::with_capacity(payload.len() + bytes.len());
    data.extend_from_slice(&payload[..split]);
    data.extend_from_slice(bytes);
    data.extend_from_slice(&payload[split..]);
    let len = u16::from_be_bytes([data[4], data[5]]) as usize;
    if len != 0 {
        let grown = u16::try_from(len + bytes.len()).unwrap_or(0);
        data[4..6].copy_from_slice(&grown.to_be_bytes());
    }
    let first_room = PACKET_SIZE - payload_at;
    let extra = (data.len() - first_room).div_ceil(PACKET_SIZE - 4);
    let mut cc = h.cc.wrapping_sub(extra as u8) & 0x0F;
    out.extend_from_slice(&packet[..3]);
    out.push(packet[3] & 0xF0 | cc);
    out.extend_from_slice(&packet[4..payload_at]);
    out.extend_from_slice(&data[..first_room]);
    for chunk in data[first_room..].chunks(PACKET_SIZE - 4) {
        cc = (cc + 1) & 0x0F;
        let start = out.len();
        // Same PID and scrambling control; no unit start.
        out.extend_from_slice(&[packet[0], packet[1] & 0x1F, packet[2]]);
        let stuffing = PACKET_SIZE - 4 - chunk.len();
        if stuffing == 0 {
            out.push(packet[3] & 0xC0 | 0x10 | cc);
        } else {
            out.push(packet[3] & 0xC0 | 0x30 | cc);
            // Adaptation field of `stuffing` bytes: its length, then flags
            // and stuffing.
            out.push(stuffing as u8 - 1);
            if stuffing > 1 {
                out.push(0);
                out.resize(start + 4 + stuffing, 0xFF);
            }
        }
        out.extend_from_slice(chunk);
    }
    true
}

/// Reads a 33-bit timestamp coded in 5 bytes with marker bits.
/// Writes a 33-bit PTS or DTS over the 5 bytes of one, keeping their
/// 4-bit prefix and marker bits.
pub(crate) fn write_timestamp(b: &mut [u8], ts: u64) {
    b[0] = (b[0] & 0xF0) | ((ts >> 29) & 0x0E) as u8 | 1;
    b[1] = (ts >> 22) as u8;
    b[2] = ((ts >> 14) & 0xFE) as u8 | 1;
    b[3] = (ts >> 7) as u8;
    b[4] = ((ts << 1) & 0xFE) as u8 | 1;
}

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
    fn insertion_spills_into_new_packets_that_continue_the_counter() {
        use crate::{payload, Header};
        let mut es = header(0xE0, 900);
        es.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xF0]);
        es.resize(184, 0x55);
        let mut packet = vec![0x47, 0x41, 0x00, 0x17];
        packet.extend_from_slice(&es);
        let insert = vec![0xAA; 200];
        let mut out = Vec::new();
        let packet: crate::Packet = packet.try_into().unwrap();
        assert!(insert_into_unit_start(&packet, 6, &insert, &mut out));
        assert_eq!(out.len(), 3 * 188, "184 + 200 bytes need three packets");
        let headers: Vec<Header> = crate::packets(&out).iter().map(Header::parse).collect();
        assert_eq!(
            headers.iter().map(|h| h.cc).collect::<Vec<_>>(),
            vec![5, 6, 7]
        );
        assert!(headers[0].pusi && !headers[1].pusi && !headers[2].pusi);
        assert!(headers.iter().all(|h| h.pid == 0x100));
        let joined: Vec<u8> = crate::packets(&out)
            .iter()
            .flat_map(|p| payload(p).unwrap().to_vec())
            .collect();
        let mut want = es[..14 + 6].to_vec();
        want.extend_from_slice(&insert);
        want.extend_from_slice(&es[14 + 6..]);
        assert_eq!(joined, want);
        assert_eq!(parse_header(&joined).unwrap().pts, Some(900));
        // Beyond the packet: refused.
        assert!(!insert_into_unit_start(&packet, 500, &insert, &mut out));
    }

    #[test]
    fn bounded_pes_length_grows_with_the_insertion() {
        let mut es = header(0xE0, 0);
        es.extend_from_slice(&[1, 2, 3]);
        let len = (es.len() - 6) as u16;
        es[4..6].copy_from_slice(&len.to_be_bytes());
        let mut packet = vec![0x47, 0x41, 0x00, 0x30, (184 - es.len() - 1) as u8, 0];
        packet.resize(188 - es.len(), 0xFF);
        packet.extend_from_slice(&es);
        let mut out = Vec::new();
        let packet: crate::Packet = packet.try_into().unwrap();
        assert!(insert_into_unit_start(&packet, 0, &[9, 9], &mut out));
        // The first packet's stuffing stays; the rest goes into a second one.
        assert_eq!(out.len(), 2 * 188);
        let p = crate::payload(&crate::packets(&out)[0]).unwrap();
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), len + 2);
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
