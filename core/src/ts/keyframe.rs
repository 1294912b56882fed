//! Finds whether a video access unit is a random access point by looking at
//! its first coded picture: IDR for H.264, IRAP for HEVC, an I picture after
//! a sequence header for MPEG-2.

/// Video codecs whose bitstream we can inspect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// MPEG-1/MPEG-2 video.
    Mpeg2,
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    Hevc,
    /// A video codec we only time by PTS (random access comes from the
    /// adaptation field alone).
    Other,
}

impl VideoCodec {
    /// Maps a PMT stream type to a video codec, or `None` if not video.
    pub fn from_stream_type(stream_type: u8) -> Option<Self> {
        match stream_type {
            0x01 | 0x02 => Some(Self::Mpeg2),
            0x1B => Some(Self::H264),
            0x24 => Some(Self::Hevc),
            0x10 | 0x20 | 0x33 | 0x42 | 0xD1 | 0xEA => Some(Self::Other),
            _ => None,
        }
    }
}

/// What the scan found so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first picture is a random access point.
    Key,
    /// The first picture is not a random access point.
    NotKey,
    /// No picture yet; feed more bytes.
    NeedMore,
}

/// Scans `es` (the start of an access unit's elementary stream bytes) for its
/// first picture. Call again with more bytes while it says `NeedMore`.
pub fn scan(codec: VideoCodec, es: &[u8]) -> Verdict {
    let mut i = 0;
    while let Some(at) = find_start_code(es, i) {
        let Some(&header) = es.get(at + 3) else {
            return Verdict::NeedMore;
        };
        match codec {
            VideoCodec::H264 => match header & 0x1F {
                5 => return Verdict::Key,
                1..=4 => return Verdict::NotKey,
                _ => {}
            },
            VideoCodec::Hevc => match (header >> 1) & 0x3F {
                16..=23 => return Verdict::Key,
                0..=15 => return Verdict::NotKey,
                _ => {}
            },
            VideoCodec::Mpeg2 => match header {
                0xB3 => return Verdict::Key,
                0x00 => {
                    let Some(&b) = es.get(at + 5) else {
                        return Verdict::NeedMore;
                    };
                    let coding_type = (b >> 3) & 0x07;
                    return if coding_type == 1 {
                        Verdict::Key
                    } else {
                        Verdict::NotKey
                    };
                }
                _ => {}
            },
            VideoCodec::Other => return Verdict::NotKey,
        }
        i = at + 3;
    }
    Verdict::NeedMore
}

/// Position of the next `00 00 01` at or after `from`.
fn find_start_code(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < b.len() {
        // Skip quickly: a start code needs b[i+2] == 1 and zeros before it.
        match b[i + 2] {
            1 if b[i] == 0 && b[i + 1] == 0 => return Some(i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use VideoCodec::*;

    #[test]
    fn h264_idr_after_aud_sps_pps_sei() {
        let au = [
            0, 0, 0, 1, 0x09, 0xF0, // AUD
            0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, // SPS
            0, 0, 1, 0x68, 0xCE, // PPS
            0, 0, 1, 0x06, 5, 1, 2, // SEI
            0, 0, 1, 0x65, 0x88, // IDR slice
        ];
        assert_eq!(scan(H264, &au), Verdict::Key);
        assert_eq!(scan(H264, &au[..25]), Verdict::NeedMore);
        let p = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x41, 0x9A];
        assert_eq!(scan(H264, &p), Verdict::NotKey);
    }

    #[test]
    fn hevc_irap_types() {
        // AUD (35), VPS (32), then IDR_W_RADL (19) / CRA (21) / TRAIL_R (1).
        let head = [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x40, 0x01];
        for (nal, want) in [
            (19u8, Verdict::Key),
            (21, Verdict::Key),
            (1, Verdict::NotKey),
        ] {
            let mut au = head.to_vec();
            au.extend_from_slice(&[0, 0, 1, nal << 1, 0x01, 0xAF]);
            assert_eq!(scan(Hevc, &au), want, "nal {nal}");
        }
    }

    #[test]
    fn mpeg2_sequence_header_or_i_picture() {
        assert_eq!(scan(Mpeg2, &[0, 0, 1, 0xB3, 0x2D]), Verdict::Key);
        // picture header: temporal_reference, picture_coding_type = 1 (I) / 2 (P)
        assert_eq!(
            scan(Mpeg2, &[0, 0, 1, 0x00, 0x00, 0x0F, 0xFF]),
            Verdict::Key
        );
        assert_eq!(
            scan(Mpeg2, &[0, 0, 1, 0x00, 0x00, 0x17, 0xFF]),
            Verdict::NotKey
        );
        assert_eq!(scan(Mpeg2, &[0, 0, 1, 0x00, 0x00]), Verdict::NeedMore);
    }
}
