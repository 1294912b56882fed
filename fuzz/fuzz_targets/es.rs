//! Elementary stream parsers a remuxer runs on stream bytes: audio frame
//! headers (AAC/ADTS, MPEG audio, AC-3, E-AC-3), the H.264 SPS, and PES
//! units reassembled from TS packets.
//!
//! Input: byte 0 picks the parser (0-3: audio frames of that codec, 4: an
//! H.264 SPS, 6: an HEVC SPS, else: PES units of PIDs 0x100 and 0x101
//! from 188-byte chunks), the rest is its input.
//!
//! Audio frames must tile what they cover, in order, within the input;
//! an SPS's size is never 0 when it parses; every PES unit's bytes come
//! from the input.
#![no_main]

use hlsvault_ts::audio::{frames, AudioCodec};
use hlsvault_ts::pes_units::PesUnits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [pick, bytes @ ..] = input else {
        return;
    };
    let codec = [
        AudioCodec::Aac,
        AudioCodec::MpegAudio,
        AudioCodec::Ac3,
        AudioCodec::Eac3,
    ];
    match pick {
        0..=3 => {
            let found = frames(codec[usize::from(*pick)], bytes);
            let mut end = 0;
            for f in &found.frames {
                assert!(f.offset >= end && f.len > 0 && f.samples > 0);
                end = f.offset + f.len;
            }
            assert!(end <= bytes.len() && found.rest <= bytes.len());
            assert!(found.rest >= end);
        }
        4 => {
            if let Some(sps) = hlsvault_ts::sps::parse_h264(bytes) {
                let _ = (sps.width, sps.height);
            }
        }
        6 => {
            if let Some(sps) = hlsvault_ts::sps::parse_hevc(bytes) {
                assert!(sps.bit_depth_luma >= 8 && sps.chroma_format_idc <= 3);
            }
        }
        _ => {
            let mut units = PesUnits::new(&[0x100, 0x101]);
            let mut total = 0;
            for p in hlsvault_ts::packets(bytes) {
                let mut p = *p;
                p[0] = 0x47;
                if let Some(u) = units.push(&p) {
                    total += u.data.len();
                }
            }
            total += units.finish().iter().map(|u| u.data.len()).sum::<usize>();
            assert!(total <= bytes.len());
        }
    }
});
