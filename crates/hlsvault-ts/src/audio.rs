//! Audio frames in an elementary stream: where each begins, how long it
//! is, how many samples it holds, and what the stream is (rate, channels).
//! A PES carries several frames; a container like MP4 stores each as a
//! sample of its own, timed by its sample count.
//!
//! - AAC in ADTS: 1024 samples per raw data block.
//! - MPEG-1/2 audio, layers I-III (MP2, MP3): 384, 1152, or 576 (layer III
//!   at MPEG-2/2.5 rates) samples.
//! - AC-3: 1536 samples; E-AC-3: 256 per audio block (1, 2, 3 or 6).
//!
//! ```
//! use hlsvault_ts::audio::{frames, AudioCodec};
//! // An ADTS header (AAC LC, 48 kHz, stereo) of a 12-byte frame, twice.
//! let frame = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x9F, 0xFC, 1, 2, 3, 4, 5];
//! let es = [frame, frame].concat();
//! let found = frames(AudioCodec::Aac, &es);
//! assert_eq!(found.frames.len(), 2);
//! assert_eq!((found.frames[1].offset, found.frames[1].len), (12, 12));
//! assert_eq!(found.format.map(|f| (f.rate, f.channels)), Some((48_000, 2)));
//! ```

/// Which audio coding a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC in ADTS (stream type 0x0F).
    Aac,
    /// MPEG-1/2 audio layers I-III (stream types 0x03, 0x04).
    MpegAudio,
    /// AC-3 (stream type 0x81, or a DVB AC-3 descriptor).
    Ac3,
    /// E-AC-3 (stream type 0x87, or a DVB enhanced AC-3 descriptor).
    Eac3,
}

/// One frame in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Where it begins.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
    /// Audio samples (per channel) it decodes to.
    pub samples: u32,
}

/// What a stream's frames say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// Samples per second.
    pub rate: u32,
    /// Channels (AC-3's LFE counted), 0 when the frame does not say (AAC
    /// channel configuration 0).
    pub channels: u8,
    /// AAC: the audio object type (2 for LC); MPEG audio: the layer (1-3);
    /// AC-3 and E-AC-3: the bitstream id.
    pub profile: u8,
}

/// The frames found in a buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frames {
    /// Whole frames, in order.
    pub frames: Vec<Frame>,
    /// The format the first frame states.
    pub format: Option<Format>,
    /// Bytes skipped looking for a frame start (damage, or padding).
    pub skipped: usize,
    /// Where an incomplete frame begins at the end (bytes after it are
    /// not frames yet), or the buffer's length.
    pub rest: usize,
}

/// The frames in `es`, a run of `codec` frames (a PES payload, or several
/// joined). Bytes that do not start a frame are skipped until one does.
pub fn frames(codec: AudioCodec, es: &[u8]) -> Frames {
    let mut out = Frames::default();
    let mut at = 0;
    while at + 7 <= es.len() {
        let Some((len, samples, format)) = header(codec, &es[at..]) else {
            at += 1;
            out.skipped += 1;
            continue;
        };
        if at + len > es.len() {
            break;
        }
        out.format.get_or_insert(format);
        out.frames.push(Frame {
            offset: at,
            len,
            samples,
        });
        at += len;
    }
    out.rest = at;
    out
}

/// A frame header at the start of `b`: the frame's length, its samples,
/// and the format it states.
fn header(codec: AudioCodec, b: &[u8]) -> Option<(usize, u32, Format)> {
    match codec {
        AudioCodec::Aac => adts(b),
        AudioCodec::MpegAudio => mpeg_audio(b),
        AudioCodec::Ac3 | AudioCodec::Eac3 => dolby(b),
    }
}

const AAC_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// ISO/IEC 13818-7 ADTS header.
fn adts(b: &[u8]) -> Option<(usize, u32, Format)> {
    if b[0] != 0xFF || b[1] & 0xF6 != 0xF0 {
        return None;
    }
    let profile = (b[2] >> 6) + 1;
    let rate = *AAC_RATES.get(usize::from((b[2] >> 2) & 0x0F))?;
    let channels = ((b[2] & 1) << 2) | (b[3] >> 6);
    let len = (usize::from(b[3] & 0x03) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
    let blocks = u32::from(b[6] & 0x03) + 1;
    let header = if b[1] & 1 == 0 { 9 } else { 7 };
    (len > header).then_some((
        len,
        1024 * blocks,
        Format {
            rate,
            channels,
            profile,
        },
    ))
}

/// ISO/IEC 11172-3 and 13818-3 frame header (layers I, II, III).
fn mpeg_audio(b: &[u8]) -> Option<(usize, u32, Format)> {
    if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5 (1 is reserved).
    let version = (b[1] >> 3) & 0x03;
    let layer = 4 - ((b[1] >> 1) & 0x03);
    let bitrate_index = usize::from(b[2] >> 4);
    let rate_index = usize::from((b[2] >> 2) & 0x03);
    if version == 1 || layer == 4 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let rate = [44_100, 48_000, 32_000][rate_index]
        >> match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
    const KBPS: [[u32; 14]; 5] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ], // MPEG-1 layer I
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ], // MPEG-1 layer II
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ], // MPEG-1 layer III
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ], // MPEG-2 layer I
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // MPEG-2 layers II, III
    ];
    let table = match (mpeg1, layer) {
        (true, l) => usize::from(l - 1),
        (false, 1) => 3,
        (false, _) => 4,
    };
    let bitrate = KBPS[table][bitrate_index - 1] * 1000;
    let padding = u32::from((b[2] >> 1) & 1);
    let (len, samples) = match layer {
        1 => ((12 * bitrate / rate + padding) * 4, 384),
        2 => (144 * bitrate / rate + padding, 1152),
        _ if mpeg1 => (144 * bitrate / rate + padding, 1152),
        _ => (72 * bitrate / rate + padding, 576),
    };
    let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
    Some((
        len as usize,
        samples,
        Format {
            rate,
            channels,
            profile: layer,
        },
    ))
}

/// Channels of each AC-3 audio coding mode (`acmod`), LFE aside.
const ACMOD_CHANNELS: [u8; 8] = [2, 1, 2, 3, 3, 4, 4, 5];

/// ATSC A/52 sync frame: AC-3 (bsid ≤ 10) or E-AC-3 (bsid 11-16).
fn dolby(b: &[u8]) -> Option<(usize, u32, Format)> {
    if b[0] != 0x0B || b[1] != 0x77 {
        return None;
    }
    let bsid = b[5] >> 3;
    if bsid <= 10 {
        let fscod = usize::from(b[4] >> 6);
        let frmsizecod = usize::from(b[4] & 0x3F);
        if fscod == 3 || frmsizecod >= 38 {
            return None;
        }
        // Words per frame at 48, 44.1 and 32 kHz, per frame size code pair.
        const KBPS: [u32; 19] = [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
        ];
        let kbps = KBPS[frmsizecod / 2];
        let words = match fscod {
            0 => 2 * kbps,
            1 => kbps * 1000 * 1536 / 44_100 / 16 + (frmsizecod as u32 & 1),
            _ => 3 * kbps,
        };
        // bsid (5 bits), bsmod (3), acmod (3), the mix levels its mode
        // has, then lfeon.
        let acmod = b[6] >> 5;
        let mut bit = 5 * 8 + 11;
        if acmod & 1 != 0 && acmod != 1 {
            bit += 2; // cmixlev
        }
        if acmod & 4 != 0 {
            bit += 2; // surmixlev
        }
        if acmod == 2 {
            bit += 2; // dsurmod
        }
        let lfe = bit_at(b, bit)?;
        let rate = [48_000, 44_100, 32_000][fscod];
        return Some((
            words as usize * 2,
            1536,
            Format {
                rate,
                channels: ACMOD_CHANNELS[usize::from(acmod)] + u8::from(lfe),
                profile: bsid,
            },
        ));
    }
    if bsid > 16 {
        return None;
    }
    let frmsiz = (usize::from(b[2] & 0x07) << 8) | usize::from(b[3]);
    let fscod = b[4] >> 6;
    let (rate, blocks) = match fscod {
        3 => (
            [24_000, 22_050, 16_000, 0][usize::from((b[4] >> 4) & 0x03)],
            6,
        ),
        f => (
            [48_000, 44_100, 32_000][usize::from(f)],
            [1, 2, 3, 6][usize::from((b[4] >> 4) & 0x03)],
        ),
    };
    if rate == 0 {
        return None;
    }
    let acmod = (b[4] >> 1) & 0x07;
    let lfe = b[4] & 1 != 0;
    Some((
        (frmsiz + 1) * 2,
        256 * blocks,
        Format {
            rate,
            channels: ACMOD_CHANNELS[usize::from(acmod)] + u8::from(lfe),
            profile: bsid,
        },
    ))
}

/// Bit `n` of `b` (most significant first).
fn bit_at(b: &[u8], n: usize) -> Option<bool> {
    Some(b.get(n / 8)? >> (7 - n % 8) & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` copies of a frame of `len` bytes that starts with `header`.
    fn run(header: &[u8], len: usize, n: usize) -> Vec<u8> {
        let mut frame = header.to_vec();
        frame.resize(len, 0x55);
        frame.repeat(n)
    }

    #[test]
    fn ac3_frames_are_sized_by_rate_and_code_with_their_lfe() {
        // 48 kHz, 192 kbit/s (code 20): 384 words; bsid 8; 3/2 + LFE.
        let five_one = [0x0B, 0x77, 0, 0, 20, 8 << 3, 0b1110_0001];
        let found = frames(AudioCodec::Ac3, &run(&five_one, 768, 3));
        assert_eq!(found.frames.len(), 3);
        assert_eq!(
            found.frames[2],
            Frame {
                offset: 1536,
                len: 768,
                samples: 1536
            }
        );
        // acmod 7: cmixlev, surmixlev (4 bits), then lfeon.
        assert_eq!(
            found.format,
            Some(Format {
                rate: 48_000,
                channels: 6,
                profile: 8
            })
        );
        // 44.1 kHz, 32 kbit/s: 69 words, 70 with the odd code.
        for (code, bytes) in [(0, 138), (1, 140)] {
            let h = [0x0B, 0x77, 0, 0, 0x40 | code, 8 << 3, 0b0100_0000];
            assert_eq!(frames(AudioCodec::Ac3, &run(&h, bytes, 2)).frames.len(), 2);
        }
    }

    #[test]
    fn eac3_frames_carry_their_size_and_blocks() {
        // frmsiz 383 (768 bytes), 48 kHz, 6 blocks, 2/0, bsid 16.
        let h = [0x0B, 0x77, 0x01, 0x7F, 0b0011_0100, 16 << 3];
        let found = frames(AudioCodec::Eac3, &run(&h, 768, 2));
        assert_eq!(
            found.frames[1],
            Frame {
                offset: 768,
                len: 768,
                samples: 1536
            }
        );
        assert_eq!(
            found.format,
            Some(Format {
                rate: 48_000,
                channels: 2,
                profile: 16
            })
        );
    }

    #[test]
    fn mpeg_audio_layers_and_versions() {
        // MPEG-1 layer II, 192 kbit/s, 48 kHz, stereo: 576 bytes.
        let mp2 = [0xFF, 0xFD, 0xA4, 0x00];
        let found = frames(AudioCodec::MpegAudio, &run(&mp2, 576, 2));
        assert_eq!(
            found.frames[1],
            Frame {
                offset: 576,
                len: 576,
                samples: 1152
            }
        );
        assert_eq!(
            found.format,
            Some(Format {
                rate: 48_000,
                channels: 2,
                profile: 2
            })
        );
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, padded: 418 bytes, mono.
        let mp3 = [0xFF, 0xFB, 0x92, 0xC0];
        let found = frames(AudioCodec::MpegAudio, &run(&mp3, 418, 2));
        assert_eq!(found.frames[0].len, 418);
        assert_eq!(found.format.map(|f| f.channels), Some(1));
        // MPEG-2 layer III, 64 kbit/s, 24 kHz: 576 samples, 192 bytes.
        let lsf = [0xFF, 0xF3, 0x84, 0x00];
        let found = frames(AudioCodec::MpegAudio, &run(&lsf, 192, 2));
        assert_eq!(
            found.frames[1],
            Frame {
                offset: 192,
                len: 192,
                samples: 576
            }
        );
    }

    #[test]
    fn damage_is_skipped_and_a_cut_frame_is_left_for_later() {
        let frame = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x9F, 0xFC, 1, 2, 3, 4, 5];
        let mut es = vec![0x00, 0x13];
        es.extend_from_slice(&frame);
        es.extend_from_slice(&frame[..9]);
        let found = frames(AudioCodec::Aac, &es);
        assert_eq!(
            found.frames,
            [Frame {
                offset: 2,
                len: 12,
                samples: 1024
            }]
        );
        assert_eq!((found.skipped, found.rest), (2, 14));
    }
}
