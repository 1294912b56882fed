//! Sample entries (`stsd`): what a decoder must know of a track before its
//! first sample, made from the parameter sets and the first audio frame.

use hlsvault_ts::audio::{AudioCodec, Format};
use hlsvault_ts::bits::BitReader;
use hlsvault_ts::keyframe::VideoCodec;
use hlsvault_ts::sps::{parse_h264, parse_hevc};
use mp4_atom::{
    Ac3, Ac3SpecificBox, Audio, Avc1, Avcc, AvccExt, Codec, Eac3, Ec3IndependentSubstream,
    Ec3SpecificBox, Esds, Hvc1, HvcCArray, Hvcc, Mp4a, Visual,
};

use crate::samples::ParameterSets;

/// A video sample entry and the picture size.
pub struct VideoEntry {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
}

/// The sample entry of an H.264 or HEVC track; `None` without a readable
/// SPS (and PPS).
pub fn video(codec: VideoCodec, sets: &ParameterSets) -> Option<VideoEntry> {
    let sps = sets.sps.first()?;
    sets.pps.first()?;
    match codec {
        VideoCodec::H264 => {
            let s = parse_h264(sps)?;
            let high = !matches!(s.profile_idc, 66 | 77 | 88);
            let avcc = Avcc {
                configuration_version: 1,
                avc_profile_indication: s.profile_idc,
                profile_compatibility: s.constraints,
                avc_level_indication: s.level_idc,
                length_size: 4,
                sequence_parameter_sets: sets.sps.clone(),
                picture_parameter_sets: sets.pps.clone(),
                ext: high.then(|| AvccExt {
                    chroma_format: s.chroma_format_idc,
                    bit_depth_luma: s.bit_depth_luma,
                    bit_depth_chroma: s.bit_depth_chroma,
                    sequence_parameter_sets_ext: Vec::new(),
                }),
            };
            Some(VideoEntry {
                codec: Avc1 {
                    visual: visual(s.width, s.height),
                    avcc,
                    ..Default::default()
                }
                .into(),
                width: s.width,
                height: s.height,
            })
        }
        VideoCodec::Hevc => {
            let s = parse_hevc(sps)?;
            let array = |nal_unit_type: u8, nalus: &Vec<Vec<u8>>| HvcCArray {
                completeness: true,
                nal_unit_type,
                nalus: nalus.clone(),
            };
            let hvcc = Hvcc {
                configuration_version: 1,
                general_profile_space: s.profile_space,
                general_tier_flag: s.tier,
                general_profile_idc: s.profile_idc,
                general_profile_compatibility_flags: s.profile_compatibility.to_be_bytes(),
                general_constraint_indicator_flags: s.constraints,
                general_level_idc: s.level_idc,
                min_spatial_segmentation_idc: 0,
                parallelism_type: 0,
                chroma_format_idc: s.chroma_format_idc,
                bit_depth_luma_minus8: s.bit_depth_luma - 8,
                bit_depth_chroma_minus8: s.bit_depth_chroma - 8,
                avg_frame_rate: 0,
                constant_frame_rate: 0,
                num_temporal_layers: s.max_sub_layers,
                temporal_id_nested: s.temporal_id_nesting,
                length_size_minus_one: 3,
                arrays: vec![
                    array(32, &sets.vps),
                    array(33, &sets.sps),
                    array(34, &sets.pps),
                ],
            };
            Some(VideoEntry {
                codec: Hvc1 {
                    visual: visual(s.width, s.height),
                    hvcc,
                    ..Default::default()
                }
                .into(),
                width: s.width,
                height: s.height,
            })
        }
        VideoCodec::Mpeg2 | VideoCodec::Other => None,
    }
}

fn visual(width: u32, height: u32) -> Visual {
    Visual {
        data_reference_index: 1,
        width: width.min(u32::from(u16::MAX)) as u16,
        height: height.min(u32::from(u16::MAX)) as u16,
        horizresolution: 72.into(),
        vertresolution: 72.into(),
        frame_count: 1,
        compressor: "".into(),
        depth: 24,
    }
}

/// The sample entry of an audio track, from what its first frame said.
pub fn audio(codec: AudioCodec, format: Format, first_frame: &[u8]) -> Option<Codec> {
    let audio = Audio {
        data_reference_index: 1,
        channel_count: u16::from(format.channels.max(1)),
        sample_size: 16,
        sample_rate: (format.rate.min(u32::from(u16::MAX)) as u16).into(),
    };
    Some(match codec {
        AudioCodec::Aac => {
            let freq_index = (first_frame.get(2)? >> 2) & 0x0F;
            let chan_conf = format.channels;
            mp4a(audio, 0x40, Some((format.profile, freq_index, chan_conf)))
        }
        // MPEG-1 audio, or MPEG-2 audio at the halved rates.
        AudioCodec::MpegAudio => {
            let oti = if format.rate >= 32_000 { 0x6B } else { 0x69 };
            mp4a(audio, oti, None)
        }
        AudioCodec::Ac3 => Ac3 {
            audio,
            dac3: ac3_specific(first_frame)?,
        }
        .into(),
        AudioCodec::Eac3 => Eac3 {
            audio,
            dec3: eac3_specific(first_frame, format)?,
        }
        .into(),
    })
}

/// An `mp4a` entry: object type `oti`, with an AAC AudioSpecificConfig
/// (object type, frequency index, channels) where given.
fn mp4a(audio: Audio, oti: u8, aac: Option<(u8, u8, u8)>) -> Codec {
    use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
    Mp4a {
        audio,
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: 0,
                dec_config: DecoderConfig {
                    object_type_indication: oti,
                    stream_type: 5,
                    up_stream: 0,
                    dec_specific: aac.map(|(profile, freq_index, chan_conf)| DecoderSpecific {
                        profile,
                        freq_index,
                        chan_conf,
                        raw: Vec::new(),
                    }),
                    ..Default::default()
                },
                sl_config: SLConfig {},
                ..Default::default()
            },
        },
        btrt: None,
        taic: None,
    }
    .into()
}

/// `dac3` from an AC-3 sync frame header (ETSI TS 102 366 F.4).
fn ac3_specific(frame: &[u8]) -> Option<Ac3SpecificBox> {
    let mut r = BitReader::new(frame.get(4..)?);
    let fscod = r.bits(2)? as u8;
    let frmsizecod = r.bits(6)? as u8;
    let bsid = r.bits(5)? as u8;
    let bsmod = r.bits(3)? as u8;
    let acmod = r.bits(3)? as u8;
    if acmod & 1 != 0 && acmod != 1 {
        r.bits(2)?;
    }
    if acmod & 4 != 0 {
        r.bits(2)?;
    }
    if acmod == 2 {
        r.bits(2)?;
    }
    Some(Ac3SpecificBox {
        fscod,
        bsid,
        bsmod,
        acmod,
        lfeon: r.flag()?,
        bit_rate_code: frmsizecod >> 1,
    })
}

/// `dec3` from an E-AC-3 frame header (ETSI TS 102 366 F.6), for one
/// independent substream.
fn eac3_specific(frame: &[u8], format: Format) -> Option<Ec3SpecificBox> {
    let mut r = BitReader::new(frame.get(2..)?);
    r.bits(2)?; // strmtyp
    r.bits(3)?; // substreamid
    let words = r.bits(11)? + 1;
    let fscod = r.bits(2)? as u8;
    let blocks = if fscod == 3 {
        r.bits(2)?;
        6
    } else {
        [1, 2, 3, 6][r.bits(2)? as usize]
    };
    let acmod = r.bits(3)? as u8;
    let lfeon = r.flag()?;
    let bsid = r.bits(5)? as u8;
    // Bits per frame over its duration.
    let kbps = u64::from(words) * 16 * u64::from(format.rate) / (blocks * 256) / 1000;
    Some(Ec3SpecificBox {
        data_rate: kbps.min(8191) as u16,
        substreams: vec![Ec3IndependentSubstream {
            fscod,
            bsid,
            asvc: false,
            bsmod: 0,
            acmod,
            lfeon,
            num_dep_sub: 0,
            chan_loc: None,
        }],
    })
}
