//! The boxes before the media: `ftyp`, and `moov` with each track's
//! sample entry, sample tables and the edit list that trims its
//! presentation to the clip.

use mp4_atom::{
    Codec, Dinf, Dref, Edts, Elst, ElstEntry, Encode, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov, Mvhd,
    Smhd, Stbl, Stsd, Tkhd, Trak, Url, Vmhd,
};

/// One sample, in its track's timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    /// A decoder can start here (a sync sample).
    pub key: bool,
    /// Presentation time minus decoding time.
    pub composition_offset: u32,
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
    /// Where the presentation starts on the clip's media time (the track's
    /// timescale; the track's own media time starts with its first
    /// sample, which may come later).
    pub media_start: i64,
}

/// `ftyp` and `moov`: every track is presented from its `media_start` for
/// `duration_ms`, with the sample tables `stbl(track)` makes.
pub fn header(
    tracks: &[TrackHeader],
    duration_ms: u64,
    stbl: impl Fn(usize) -> (Stbl, u64, i64),
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
        trak,
        ..Default::default()
    };
    let mut out = Vec::new();
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

/// The edit list of a track whose first sample decodes at `first_decode`
/// on the clip's media time: the presentation starts at `media_start`,
/// after an empty edit if the track starts later than that.
fn edits(t: &TrackHeader, first_decode: i64, duration_ms: u64) -> Vec<ElstEntry> {
    let media_time = t.media_start - first_decode;
    if media_time >= 0 {
        return vec![ElstEntry {
            segment_duration: duration_ms,
            media_time: Some(media_time as u64),
            media_rate: 1.into(),
        }];
    }
    let empty = (media_time.unsigned_abs() * u64::from(MOVIE_TIMESCALE)
        / u64::from(t.timescale.max(1)))
    .min(duration_ms);
    vec![
        ElstEntry {
            segment_duration: empty,
            media_time: None,
            media_rate: 1.into(),
        },
        ElstEntry {
            segment_duration: duration_ms - empty,
            media_time: Some(0),
            media_rate: 1.into(),
        },
    ]
}
