//! What an H.264 (7.3.2.1) or HEVC (7.3.2.2) sequence parameter set says
//! of the pictures: profile, level and the displayed size, as a
//! container's sample entry needs them.

use crate::bits::BitReader;

/// The fields of an H.264 SPS a container needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Sps {
    pub profile_idc: u8,
    /// constraint_set0..5 flags and the reserved bits, as one byte.
    pub constraints: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Displayed width and height, cropping applied.
    pub width: u32,
    pub height: u32,
}

/// Parses an SPS NAL unit (with its one-byte header, type 7).
///
/// ```
/// // x264, 320x240, High profile, level 1.3.
/// let sps = [0x67, 0x64, 0x00, 0x0D, 0xAC, 0xD9, 0x41, 0x41, 0xFB, 0x01, 0x10, 0x00,
///            0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xF1, 0x42, 0x99, 0x60];
/// let s = hlsvault_ts::sps::parse_h264(&sps).unwrap();
/// assert_eq!((s.profile_idc, s.level_idc, s.width, s.height), (100, 13, 320, 240));
/// ```
pub fn parse_h264(nal: &[u8]) -> Option<H264Sps> {
    if nal.first()? & 0x1F != 7 {
        return None;
    }
    let mut r = BitReader::new(&nal[1..]);
    let profile_idc = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let (mut chroma_format_idc, mut bit_depth_luma, mut bit_depth_chroma) = (1, 8, 8);
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        // Values past what the standard allows are no SPS.
        let small = |v: u32, max: u32| (v <= max).then_some(v as u8);
        chroma_format_idc = small(r.ue()?, 3)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + small(r.ue()?, 6)?;
        bit_depth_chroma = 8 + small(r.ue()?, 6)?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag: skip the lists.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_map_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
              // Sizes past u32 are no picture: the SPS is refused, not wrapped.
    let mut width = width_mbs.checked_mul(16)?;
    let mut height = height_map_units.checked_mul(if frame_mbs_only { 16 } else { 32 })?;
    if r.flag()? {
        // frame_cropping_flag: offsets in chroma sample units.
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let crop_x = if array_type == 0 { 1 } else { sub_w };
        let crop_y = (if array_type == 0 { 1 } else { sub_h }) * if frame_mbs_only { 1 } else { 2 };
        width = width.checked_sub(left.checked_add(right)?.checked_mul(crop_x)?)?;
        height = height.checked_sub(top.checked_add(bottom)?.checked_mul(crop_y)?)?;
    }
    Some(H264Sps {
        profile_idc,
        constraints,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    })
}

/// Skips a scaling list of `size` entries (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return None;
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The fields of an HEVC SPS a container needs (`hvcC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSps {
    pub profile_space: u8,
    pub tier: bool,
    pub profile_idc: u8,
    pub profile_compatibility: u32,
    /// The 48 constraint indicator bits.
    pub constraints: [u8; 6],
    pub level_idc: u8,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Displayed width and height, the conformance window applied.
    pub width: u32,
    pub height: u32,
}

/// Parses an HEVC SPS NAL unit (with its two-byte header, type 33).
///
/// ```
/// // x265, 320x240, Main profile, level 2.
/// let sps = [0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
///            0x03, 0x00, 0x00, 0x03, 0x00, 0x3C, 0xA0, 0x0A, 0x08, 0x0F, 0x16, 0x59,
///            0x59, 0xA4, 0x93, 0x2B, 0xC0, 0x5A, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
///            0x00, 0x03, 0x00, 0x32, 0x10];
/// let s = hlsvault_ts::sps::parse_hevc(&sps).unwrap();
/// assert_eq!((s.profile_idc, s.level_idc, s.width, s.height), (1, 60, 320, 240));
/// ```
pub fn parse_hevc(nal: &[u8]) -> Option<HevcSps> {
    if (nal.first()? >> 1) & 0x3F != 33 {
        return None;
    }
    let mut r = BitReader::new(nal.get(2..)?);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers = r.bits(3)? as u8 + 1;
    let temporal_id_nesting = r.flag()?;
    // profile_tier_level(1, max_sub_layers_minus1)
    let profile_space = r.bits(2)? as u8;
    let tier = r.flag()?;
    let profile_idc = r.bits(5)? as u8;
    let profile_compatibility = r.bits(32)?;
    let mut constraints = [0u8; 6];
    for c in &mut constraints {
        *c = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let sub_layers = usize::from(max_sub_layers - 1);
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(sub_layers) {
        *p = (r.flag()?, r.flag()?);
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.bits(2)?; // reserved_zero_2bits
        }
    }
    for &(profile, level) in present.iter().take(sub_layers) {
        if profile {
            r.bits(32)?;
            r.bits(32)?;
            r.bits(24)?;
        }
        if level {
            r.bits(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = u8::try_from(r.ue()?).ok().filter(|c| *c <= 3)?;
    if chroma_format_idc == 3 {
        r.bit()?; // separate_colour_plane_flag
    }
    let mut width = r.ue()?;
    let mut height = r.ue()?;
    if r.flag()? {
        // conformance_window_flag: offsets in chroma sample units.
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        width = width.checked_sub(left.checked_add(right)?.checked_mul(sub_w)?)?;
        height = height.checked_sub(top.checked_add(bottom)?.checked_mul(sub_h)?)?;
    }
    let small = |v: u32| u8::try_from(v).ok().filter(|v| *v <= 8);
    let bit_depth_luma = 8 + small(r.ue()?)?;
    let bit_depth_chroma = 8 + small(r.ue()?)?;
    Some(HevcSps {
        profile_space,
        tier,
        profile_idc,
        profile_compatibility,
        constraints,
        level_idc,
        max_sub_layers,
        temporal_id_nesting,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cropping_and_truncation() {
        // x264, 1920x1080 (1088 coded, 8 lines cropped), High profile 4.0.
        let hd = [
            0x67, 0x64, 0x00, 0x28, 0xAC, 0xD9, 0x40, 0x78, 0x02, 0x27, 0xE5, 0xC0, 0x44, 0x00,
            0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xC8, 0x3C, 0x60, 0xC6, 0x58,
        ];
        let s = parse_h264(&hd).unwrap();
        assert_eq!((s.width, s.height, s.level_idc), (1920, 1080, 40));
        for n in 1..hd.len() - 4 {
            // Cut short, it fails cleanly.
            let _ = parse_h264(&hd[..n]);
        }
        assert!(parse_h264(&[0x68, 0xEE]).is_none(), "a PPS is not an SPS");
        // Found by fuzzing (es): a width of 2^32 - 1 macroblocks overflowed.
        let huge = [
            0x67, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xCC, 0x00, 0x00, 0x00, 0x7A, 0x27, 0xE5, 0xC0,
            0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xC8, 0x3C, 0x62, 0xC6,
            0x58,
        ];
        assert!(parse_h264(&huge).is_none());
        // And a bit depth past 8 + 255.
        let deep = [
            0x67, 0x64, 0x00, 0x00, 0xB6, 0x01, 0x00, 0x00, 0xB1, 0xF2, 0xF6, 0xF6, 0xF6, 0xF6,
            0xF6, 0xF6, 0xF6, 0xF6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0xF6, 0xF6,
            0xF6, 0xF6, 0x03, 0x00, 0xC8,
        ];
        assert!(parse_h264(&deep).is_none());
    }
}
