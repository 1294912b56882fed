//! The boxes of a clip: `ftyp`, and `moov` with each track's sample
//! entry, the sample tables of the media that follows it and the edit list
//! that trims its presentation to the clip; then, when more follows, one
//! movie fragment (`moof` + `mdat`) per batch of samples.

use mp4_atom::{
    Codec, Dinf, Dref, Edts, Elst, ElstEntry, Encode, Ftyp, Hdlr, Mdhd, Mdia, Mehd, Mfhd, Minf,
    Moof, Moov, Mvex, Mvhd, Smhd, Stbl, Stsd, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry,
    TrunSamples, Url, Vmhd,
};

/// One sample, in its track's timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    /// A decoder can start here (a sync sample).
    pub key: bool,
    /// Presentation time minus decoding time (negative for a picture of
    /// the GOP before the clip's start).
    pub composition_offset: i32,
}

/// The movie's timescale: milliseconds (durations of the whole and of
/// edits).
pub const MOVIE_TIMESCALE: u32 = 1000;

/// What the header says of one track.
#[derive(Debug, Clone)]
pub struct TrackHeader {
    pub id: u32,
    pub timescale: u32,
    pub entry: Codec,
    /// Width and height for video, `None` for audio.
    pub picture: Option<(u32, u32)>,
    /// The media time (on the clip's media timeline, the track's
    /// timescale) shown first.
    pub media_start: i64,
}

/// `ftyp` and `moov`: every track is presented for `duration_ms` from its
/// `media_start`, with the sample tables `stbl(track)` makes; movie
/// fragments follow when `fragmented`.
pub fn header(
    tracks: &[TrackHeader],
    duration_ms: u64,
    fragmented: bool,
    stbl: impl Fn(usize) -> (Stbl, u64, u64),
) -> Result<Vec<u8>, mp4_atom::Error> {
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"isom".into(), b"mp41".into()],
    };
    let trak = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (mut table, media_duration, first_decode) = stbl(i);
            table.stsd = Stsd {
                codecs: vec![t.entry.clone()],
            };
            let video = t.picture.is_some();
            let (width, height) = t.picture.unwrap_or((0, 0));
            Trak {
                tkhd: Tkhd {
                    track_id: t.id,
                    duration: duration_ms,
                    enabled: true,
                    in_movie: true,
                    alternate_group: u16::from(!video),
                    volume: u8::from(!video).into(),
                    width: (width.min(0xFFFF) as u16).into(),
                    height: (height.min(0xFFFF) as u16).into(),
                    ..Default::default()
                },
                edts: Some(Edts {
                    elst: Some(Elst {
                        entries: edits(t, first_decode, duration_ms),
                    }),
                }),
                mdia: Mdia {
                    mdhd: Mdhd {
                        timescale: t.timescale,
                        duration: media_duration,
                        language: "und".into(),
                        ..Default::default()
                    },
                    hdlr: Hdlr {
                        handler: if video { b"vide" } else { b"soun" }.into(),
                        name: if video { "Video" } else { "Audio" }.into(),
                    },
                    minf: Minf {
                        vmhd: video.then(Vmhd::default),
                        smhd: (!video).then(Smhd::default),
                        dinf: Dinf {
                            dref: Dref {
                                entries: vec![Url::default().into()],
                            },
                        },
                        stbl: table,
                        ..Default::default()
                    },
                },
                ..Default::default()
            }
        })
        .collect();
    let moov = Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE,
            duration: duration_ms,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: tracks.len() as u32 + 1,
            ..Default::default()
        },
        mvex: fragmented.then(|| Mvex {
            mehd: Some(Mehd {
                fragment_duration: duration_ms,
            }),
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.id,
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
        }),
        trak,
        ..Default::default()
    };
    let mut out = Vec::new();
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

/// The edit list of a track whose first sample decodes at `first_decode`
/// on the clip's media timeline (the track's own media time starts
/// there): shown from `media_start` on, after an empty edit if the track
/// starts later. What comes before `media_start` is decoded, not shown.
fn edits(t: &TrackHeader, first_decode: u64, duration_ms: u64) -> Vec<ElstEntry> {
    let media_time = t.media_start - first_decode as i64;
    let empty = if media_time >= 0 {
        0
    } else {
        (media_time.unsigned_abs() * u64::from(MOVIE_TIMESCALE) / u64::from(t.timescale.max(1)))
            .min(duration_ms)
    };
    let media = ElstEntry {
        segment_duration: duration_ms - empty,
        media_time: Some(media_time.max(0) as u64),
        media_rate: 1.into(),
    };
    if empty == 0 {
        return vec![media];
    }
    let gap = ElstEntry {
        segment_duration: empty,
        media_time: None,
        media_rate: 1.into(),
    };
    vec![gap, media]
}

/// One track's samples in a fragment.
pub struct TrackRun<'a> {
    pub id: u32,
    /// The first sample's decoding time.
    pub decode_time: u64,
    pub samples: &'a [Sample],
    /// Their bytes' length.
    pub len: usize,
}

/// Sample flags (ISO/IEC 14496-12 8.8.3.1): a sync sample depends on no
/// other; any other depends on others and is no sync sample.
const SYNC: u32 = 0x0200_0000;
const NOT_SYNC: u32 = 0x0101_0000;

/// `moof` and the `mdat` header of one fragment, appended to `out`: the
/// runs' bytes follow, in order.
pub fn fragment(
    sequence: u32,
    runs: &[TrackRun<'_>],
    out: &mut Vec<u8>,
) -> Result<(), mp4_atom::Error> {
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: runs
            .iter()
            .map(|r| Traf {
                tfhd: Tfhd {
                    track_id: r.id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: r.decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: TrunSamples::Explicit(
                        r.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.size),
                                flags: Some(if s.key { SYNC } else { NOT_SYNC }),
                                cts: Some(i64::from(s.composition_offset)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // The data offsets count from the start of the moof, whose size they
    // do not change: it is made once to learn it.
    let mut sized = Vec::new();
    moof.encode(&mut sized)?;
    let mut offset = sized.len() + 8;
    for (traf, run) in moof.traf.iter_mut().zip(runs) {
        traf.trun[0].data_offset = Some(offset as i32);
        offset += run.len;
    }
    moof.encode(out)?;
    let body: usize = runs.iter().map(|r| r.len).sum();
    out.extend_from_slice(&((body + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    Ok(())
}
