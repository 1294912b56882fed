//! Verifies in the bitstream whether a decoder can start at a video access
//! unit, and keeps the parameter sets a segment needs to start there.
//!
//! The adaptation field's random access indicator only says where to look:
//! broadcast encoders set it on P-frames too. A cut point is an access unit
//! whose first picture a decoder can start from:
//!
//! - H.264: an IDR picture, or an I picture carrying a recovery-point SEI
//!   with `recovery_frame_cnt` 0 (open GOP). A recovery point with a count
//!   above 0 (periodic intra refresh) is a [`Picture::Recovery`].
//! - HEVC: an IRAP picture (IDR, CRA, BLA).
//! - MPEG-2: an I picture (the sequence header it needs comes with it or
//!   from [`ParameterSets`]).
//!
//! ```
//! use hlsvault_ts::keyframe::{scan, Picture, VideoCodec};
//! // AUD, SPS, PPS, IDR slice
//! let au = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 1, 0x68, 0xCE,
//!           0, 0, 1, 0x65, 0x88];
//! let s = scan(VideoCodec::H264, &au);
//! assert_eq!(s.picture, Some(Picture::Key));
//! assert_eq!(s.sets.len(), 2);
//! ```

use crate::bits::BitReader;
use std::ops::Range;

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

    /// The kinds of parameter set a picture of this codec needs, in the
    /// order they are sent.
    fn required(self) -> &'static [SetKind] {
        match self {
            VideoCodec::H264 => &[SetKind::Sps, SetKind::Pps],
            VideoCodec::Hevc => &[SetKind::Vps, SetKind::Sps, SetKind::Pps],
            VideoCodec::Mpeg2 => &[SetKind::Sequence],
            VideoCodec::Other => &[],
        }
    }
}

/// What a decoder can do starting at an access unit's first picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// Every picture from here on decodes.
    Key,
    /// A recovery point: pictures decode fully after this many frames
    /// (periodic intra refresh, H.264 and HEVC recovery-point SEI).
    Recovery(u32),
    /// The picture needs earlier ones.
    NotKey,
}

/// Kinds of parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SetKind {
    /// HEVC video parameter set.
    Vps,
    /// H.264 / HEVC sequence parameter set.
    Sps,
    /// H.264 / HEVC picture parameter set.
    Pps,
    /// MPEG-2 sequence header with its extensions.
    Sequence,
}

/// A parameter set found in an access unit: its kind, its id (0 where the
/// codec has none we track) and where its bytes lie (start code excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSet {
    /// Its kind.
    pub kind: SetKind,
    /// Its id (`seq_parameter_set_id`, `pic_parameter_set_id`, ...).
    pub id: u32,
    /// Its bytes in the scanned buffer, from the NAL header or start code
    /// value on, without the start code itself.
    pub range: Range<usize>,
}

/// What a scan of an access unit's first bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The first picture, once its header has been seen; `None`: feed
    /// more bytes.
    pub picture: Option<Picture>,
    /// Parameter sets before the first picture.
    pub sets: Vec<FoundSet>,
    /// Where missing parameter sets go: after the access unit delimiter,
    /// or at the start.
    pub insert_at: usize,
    /// Without a picture: only a start code after the bytes scanned can
    /// change the outcome (a unit waits for its end, or no unit began), so
    /// more bytes without one need no new scan.
    pub awaits_start_code: bool,
}

/// Scans `es` (the start of an access unit's elementary stream bytes) up to
/// its first picture. Call again with more bytes while `picture` is `None`.
pub fn scan(codec: VideoCodec, es: &[u8]) -> Scan {
    let mut out = Scan {
        picture: None,
        sets: Vec::new(),
        insert_at: 0,
        awaits_start_code: false,
    };
    if codec == VideoCodec::Other {
        out.picture = Some(Picture::NotKey);
        return out;
    }
    // Recovery-point SEI seen before the first slice: its count.
    let mut recovery: Option<u32> = None;
    let mut at = match find_start_code(es, 0) {
        Some(at) => at,
        None => return out.awaiting_start_code(),
    };
    loop {
        let body = at + 3;
        // Where the unit ends is looked for only when its bytes are
        // needed: a picture's slice (most of the bytes) is never scanned.
        let next_start = std::cell::OnceCell::new();
        let next = || *next_start.get_or_init(|| find_start_code(es, body));
        // A unit is whole once the next start code is in view.
        let end = || next().map(|n| trim_zeros(es, body, n));
        let Some(&header) = es.get(body) else {
            return out;
        };
        match codec {
            VideoCodec::H264 => match header & 0x1F {
                5 => return out.with(Picture::Key),
                t @ 1..=4 => {
                    // Data partitions (2..4) carry no slice type we trust.
                    let intra = t == 1 && {
                        let Some(t) = slice_type(&es[body + 1..]) else {
                            return out;
                        };
                        t % 5 == 2 || t % 5 == 4
                    };
                    return out.with(match recovery {
                        Some(0) if intra => Picture::Key,
                        Some(n) if n > 0 || !intra => Picture::Recovery(n.max(1)),
                        _ => Picture::NotKey,
                    });
                }
                9 => out.insert_at = end().unwrap_or(out.insert_at),
                6 => {
                    let Some(end) = end() else {
                        return out.awaiting_start_code();
                    };
                    recovery = recovery.or(sei_recovery(&es[body + 1..end], false));
                }
                k @ (7 | 8) => {
                    let Some(end) = end() else {
                        return out.awaiting_start_code();
                    };
                    let kind = if k == 7 { SetKind::Sps } else { SetKind::Pps };
                    // sps id follows profile, constraints and level.
                    let skip = if k == 7 { 4 } else { 1 };
                    let id = es
                        .get(body + skip..end)
                        .and_then(|b| BitReader::new(b).ue())
                        .unwrap_or(0);
                    out.sets.push(FoundSet {
                        kind,
                        id,
                        range: body..end,
                    });
                }
                _ => {}
            },
            VideoCodec::Hevc => match (header >> 1) & 0x3F {
                16..=23 => return out.with(Picture::Key),
                0..=15 => {
                    return out.with(match recovery {
                        Some(n) => Picture::Recovery(n.max(1)),
                        None => Picture::NotKey,
                    })
                }
                35 => out.insert_at = end().unwrap_or(out.insert_at),
                39 => {
                    let Some(end) = end() else {
                        return out.awaiting_start_code();
                    };
                    recovery = recovery.or(sei_recovery(&es[(body + 2).min(end)..end], true));
                }
                k @ 32..=34 => {
                    let Some(end) = end() else {
                        return out.awaiting_start_code();
                    };
                    let (kind, id) = match k {
                        32 => (
                            SetKind::Vps,
                            es.get(body + 2).map_or(0, |b| (b >> 4) as u32),
                        ),
                        33 => (SetKind::Sps, 0),
                        _ => (
                            SetKind::Pps,
                            es.get(body + 2..end)
                                .and_then(|b| BitReader::new(b).ue())
                                .unwrap_or(0),
                        ),
                    };
                    out.sets.push(FoundSet {
                        kind,
                        id,
                        range: body..end,
                    });
                }
                _ => {}
            },
            VideoCodec::Mpeg2 => match header {
                0xB3 => {
                    // The header and its extensions, up to the GOP or picture.
                    let mut stop = next();
                    while let Some(n) = stop {
                        match es.get(n + 3) {
                            Some(0xB5) | Some(0xB2) => stop = find_start_code(es, n + 3),
                            Some(_) => break,
                            None => return out,
                        }
                    }
                    let Some(stop) = stop else {
                        return out.awaiting_start_code();
                    };
                    out.sets.push(FoundSet {
                        kind: SetKind::Sequence,
                        id: 0,
                        range: body..trim_zeros(es, body, stop),
                    });
                    at = stop;
                    continue;
                }
                0x00 => {
                    let Some(&b) = es.get(body + 2) else {
                        return out;
                    };
                    let coding_type = (b >> 3) & 0x07;
                    return out.with(match coding_type {
                        1 => Picture::Key,
                        _ => Picture::NotKey,
                    });
                }
                _ => {}
            },
            VideoCodec::Other => unreachable!("answered above"),
        }
        match next() {
            Some(n) => at = n,
            None => return out.awaiting_start_code(),
        }
    }
}

impl Scan {
    fn with(mut self, picture: Picture) -> Self {
        self.picture = Some(picture);
        self
    }

    fn awaiting_start_code(mut self) -> Self {
        self.awaits_start_code = true;
        self
    }
}

/// Whether `b` holds a start code that begins at or after `from`.
pub fn has_start_code(b: &[u8], from: usize) -> bool {
    find_start_code(b, from).is_some()
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

/// The end of a unit that the start code at `next` follows: trailing zero
/// bytes (a four-byte start code's first zero) are not the unit's.
fn trim_zeros(b: &[u8], start: usize, next: usize) -> usize {
    let mut end = next;
    while end > start && b[end - 1] == 0 {
        end -= 1;
    }
    end
}

/// `slice_type` of an H.264 slice header (the bytes after the NAL header).
fn slice_type(header: &[u8]) -> Option<u32> {
    let mut bits = BitReader::new(header);
    bits.ue()?; // first_mb_in_slice
    bits.ue()
}

/// The recovery count of a recovery-point SEI message (payload type 6) in
/// an SEI unit's payload: H.264 `recovery_frame_cnt` (ue) or HEVC
/// `recovery_poc_cnt` (se, negative read as 0).
fn sei_recovery(mut rbsp: &[u8], hevc: bool) -> Option<u32> {
    // Messages: type and size coded as runs of 0xFF plus a last byte. The
    // payload bytes here still carry emulation prevention; counting them
    // in the size only shortens the walk, it never misreads type 6.
    loop {
        let mut read = || {
            let mut v = 0u32;
            loop {
                let (&b, rest) = rbsp.split_first()?;
                rbsp = rest;
                v += b as u32;
                if b != 0xFF {
                    return Some(v);
                }
            }
        };
        let kind = read()?;
        let size = read()? as usize;
        if kind == 6 {
            let mut bits = BitReader::new(rbsp);
            return if hevc {
                bits.se().map(|v| v.max(0) as u32)
            } else {
                bits.ue()
            };
        }
        rbsp = rbsp.get(size..)?;
        // rbsp_trailing_bits: a lone 0x80 ends the unit.
        if rbsp.first().is_none_or(|&b| b == 0x80) {
            return None;
        }
    }
}

/// The latest parameter sets of one video stream, by kind and id, so that a
/// segment whose first picture does not carry them can be given them.
#[derive(Debug, Default, Clone)]
pub struct ParameterSets {
    sets: Vec<(SetKind, u32, Vec<u8>)>,
}

/// Parameter sets kept per stream, at most (ids beyond are unusual).
const MAX_SETS: usize = 64;

impl ParameterSets {
    /// Remembers the sets a scan found in `es`.
    pub fn learn(&mut self, es: &[u8], sets: &[FoundSet]) {
        for s in sets {
            let bytes = &es[s.range.clone()];
            let full = self.sets.len() >= MAX_SETS;
            match self
                .sets
                .iter_mut()
                .find(|(k, id, _)| *k == s.kind && *id == s.id)
            {
                Some((_, _, b)) if b == bytes => {}
                Some((_, _, b)) => *b = bytes.to_vec(),
                None if !full => {
                    self.sets.push((s.kind, s.id, bytes.to_vec()));
                    self.sets.sort_by_key(|(k, id, _)| (*k, *id));
                }
                None => {}
            }
        }
    }

    /// Forgets every set (the stream's PMT changed).
    pub fn clear(&mut self) {
        self.sets.clear();
    }

    /// What a picture of `codec` whose access unit carries `found` lacks:
    /// `Ok(None)` when it carries every kind it needs, `Ok(Some(bytes))`
    /// (start codes included) when the kept sets make up for it, and
    /// `Err(())` when they cannot.
    #[allow(clippy::result_unit_err)]
    pub fn missing(&self, codec: VideoCodec, found: &[FoundSet]) -> Result<Option<Vec<u8>>, ()> {
        let required = codec.required();
        if required.iter().all(|k| found.iter().any(|f| f.kind == *k)) {
            return Ok(None);
        }
        if !required.iter().all(|k| self.sets.iter().any(|s| s.0 == *k)) {
            return Err(());
        }
        let mut out = Vec::new();
        for (_, _, bytes) in self.sets.iter().filter(|s| required.contains(&s.0)) {
            out.extend_from_slice(&[0, 0, 0, 1][(codec == VideoCodec::Mpeg2) as usize..]);
            out.extend_from_slice(bytes);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VideoCodec::*;

    const AUD: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
    const SPS: [u8; 8] = [0, 0, 0, 1, 0x67, 0x42, 0, 0x1E];
    const PPS: [u8; 5] = [0, 0, 1, 0x68, 0xCE];
    /// A non-IDR slice: first_mb 0 (1), slice_type 7 = I (0001000) / 5 = P (00110).
    const I_SLICE: [u8; 6] = [0, 0, 1, 0x41, 0b1000_1000, 0x80];
    const P_SLICE: [u8; 6] = [0, 0, 1, 0x41, 0b1001_1000, 0x80];

    fn au(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// A recovery-point SEI with `recovery_frame_cnt` coded as `ue`.
    fn sei(ue: &[u8]) -> Vec<u8> {
        let mut s = vec![0, 0, 1, 0x06, 6, ue.len() as u8];
        s.extend_from_slice(ue);
        s.push(0x80);
        s
    }

    #[test]
    fn h264_idr_is_key_and_its_parameter_sets_are_found() {
        let a = au(&[
            &AUD,
            &SPS,
            &PPS,
            &[0, 0, 1, 0x06, 5, 1, 2],
            &[0, 0, 1, 0x65, 0x88],
        ]);
        let s = scan(H264, &a);
        assert_eq!(s.picture, Some(Picture::Key));
        assert_eq!(s.insert_at, 6);
        let kinds: Vec<_> = s.sets.iter().map(|f| (f.kind, f.id)).collect();
        assert_eq!(kinds, vec![(SetKind::Sps, 0), (SetKind::Pps, 0)]);
        assert_eq!(&a[s.sets[1].range.clone()], &[0x68, 0xCE]);
        assert_eq!(scan(H264, &a[..25]).picture, None);
    }

    #[test]
    fn h264_p_slice_is_not_key_even_with_parameter_sets() {
        let a = au(&[&AUD, &SPS, &PPS, &P_SLICE]);
        assert_eq!(scan(H264, &a).picture, Some(Picture::NotKey));
    }

    #[test]
    fn h264_i_slice_needs_a_recovery_point_of_zero() {
        // Without SEI an I slice of an open GOP is not a cut point.
        assert_eq!(
            scan(H264, &au(&[&AUD, &I_SLICE])).picture,
            Some(Picture::NotKey)
        );
        let zero = sei(&[0x80]); // ue 0 = "1"
        assert_eq!(
            scan(H264, &au(&[&AUD, &zero, &I_SLICE])).picture,
            Some(Picture::Key)
        );
        // A P slice with a recovery point of 0, or any slice with a count
        // above 0: intra refresh.
        assert_eq!(
            scan(H264, &au(&[&AUD, &zero, &P_SLICE])).picture,
            Some(Picture::Recovery(1))
        );
        let five = sei(&[0b0011_0000]); // ue 5 = "00110"
        assert_eq!(
            scan(H264, &au(&[&AUD, &five, &P_SLICE])).picture,
            Some(Picture::Recovery(5))
        );
    }

    #[test]
    fn hevc_irap_types() {
        // AUD (35), VPS (32), then IDR_W_RADL (19) / CRA (21) / TRAIL_R (1).
        let head = [0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x40, 0x01, 0x0C];
        for (nal, want) in [
            (19u8, Picture::Key),
            (21, Picture::Key),
            (1, Picture::NotKey),
        ] {
            let mut a = head.to_vec();
            a.extend_from_slice(&[0, 0, 1, nal << 1, 0x01, 0xAF]);
            let s = scan(Hevc, &a);
            assert_eq!(s.picture, Some(want), "nal {nal}");
            assert_eq!(s.insert_at, 7);
            assert_eq!(s.sets[0].kind, SetKind::Vps);
        }
    }

    #[test]
    fn mpeg2_i_picture_and_sequence_header_with_extension() {
        let a = [
            0, 0, 1, 0xB3, 0x14, 0, 0, 1, 0xB5, 0x14, 0, 0, 1, 0xB8, 0, 0, 0, 0, 1, 0x00, 0x00,
            0x0F, 0xFF,
        ];
        let s = scan(Mpeg2, &a);
        assert_eq!(s.picture, Some(Picture::Key));
        assert_eq!(s.sets[0].range, 3..10, "header and extension up to the GOP");
        // picture_coding_type 2 (P)
        let p = [0, 0, 1, 0x00, 0x00, 0x17, 0xFF];
        assert_eq!(scan(Mpeg2, &p).picture, Some(Picture::NotKey));
        assert_eq!(scan(Mpeg2, &[0, 0, 1, 0x00, 0x00]).picture, None);
    }

    #[test]
    fn kept_sets_fill_in_for_a_picture_without_them() {
        let mut kept = ParameterSets::default();
        let first = au(&[&AUD, &SPS, &PPS, &[0, 0, 1, 0x65, 0x88]]);
        let s = scan(H264, &first);
        assert_eq!(kept.missing(H264, &s.sets), Ok(None));
        let lone = au(&[&AUD, &[0, 0, 1, 0x65, 0x88]]);
        assert_eq!(kept.missing(H264, &scan(H264, &lone).sets), Err(()));
        kept.learn(&first, &s.sets);
        let add = kept
            .missing(H264, &scan(H264, &lone).sets)
            .unwrap()
            .unwrap();
        assert_eq!(add, au(&[&SPS, &[0], &PPS]));
    }
}
