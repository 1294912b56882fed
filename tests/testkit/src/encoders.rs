//! Streams that behave like broadcast encoders, not like `ffmpeg -f mpegts`
//! with its defaults: open GOPs, intra refresh, CRA, MPEG-2, GStreamer's
//! muxer, and byte edits where no encoder does the thing (the random access
//! indicator on every frame, parameter sets sent once).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::run;

/// The test pattern and tone every corpus stream carries, for ffmpeg.
fn ffmpeg_sources(cmd: &mut Command, seconds: f64) {
    cmd.args(["-hide_banner", "-loglevel", "error", "-y"]);
    cmd.args(["-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate=25:duration={seconds}"));
    cmd.args(["-f", "lavfi", "-i"]).arg(format!(
        "sine=frequency=440:sample_rate=48000:duration={seconds}"
    ));
}

/// ffmpeg's video PID.
pub const FFMPEG_VIDEO_PID: u16 = 0x100;

/// H.264 (libx264) with a keyframe every `gop` frames, no scene cuts,
/// and `more` ffmpeg options (after the encoder's), and AAC, muxed by
/// ffmpeg.
pub fn x264_with(t: &Path, seconds: f64, gop: u32, more: &[&str]) -> Result<()> {
    let gop = gop.to_string();
    let video = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
    ];
    ffmpeg(
        t,
        seconds,
        &[&video[..], &["-sc_threshold", "0"], more].concat(),
    )
}

/// Encodes `seconds` of 25 fps video with ffmpeg's `video` encoder
/// arguments, AAC audio, into an MPEG-TS file.
pub fn ffmpeg(out: &Path, seconds: f64, video: &[&str]) -> Result<()> {
    ffmpeg_muxed(out, seconds, video, &["-c:a", "aac", "-b:a", "64k"])
}

/// As [`ffmpeg`], with the `audio` encoder arguments, and any muxer
/// options after them (`-mpegts_flags system_b` declares AC-3 and E-AC-3
/// the DVB way: private data with a descriptor).
pub fn ffmpeg_muxed(out: &Path, seconds: f64, video: &[&str], audio: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ffmpeg");
    ffmpeg_sources(&mut cmd, seconds);
    cmd.args(["-pix_fmt", "yuv420p"]).args(video).args(audio);
    cmd.args(["-f", "mpegts"]).arg(out);
    run(&mut cmd)
}

/// Encodes `seconds` of 25 fps video with a GStreamer `encoder` chain
/// (e.g. `x264enc key-int-max=50 ! h264parse`) and AAC audio, muxed by
/// GStreamer's `mpegtsmux` (its own PIDs, PES and PCR placement).
pub fn gstreamer(out: &Path, seconds: f64, encoder: &str) -> Result<()> {
    let frames = (seconds * 25.0) as u64;
    let audio_buffers = (seconds * 48_000.0 / 1024.0) as u64;
    let pipeline = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1,format=I420 \
         ! {encoder} ! mpegtsmux name=mux ! filesink location={} \
         audiotestsrc num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! voaacenc ! aacparse ! mux.",
        out.display()
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q").args(pipeline.split_whitespace());
    run(&mut cmd)
}

/// Payload offset of a TS packet, if it has a payload.
fn payload_at(p: &[u8]) -> Option<usize> {
    let at = if p[3] & 0x20 != 0 {
        5 + p[4] as usize
    } else {
        4
    };
    (p[3] & 0x10 != 0 && at < 188).then_some(at)
}

fn pid(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[1], p[2]]) & 0x1FFF
}

/// Sets the random access indicator on the first packet of every PES of
/// `video_pid` (as some H.264 encoders do, P-frames included). A packet
/// without an adaptation field gets one in place of the access unit
/// delimiter (`00 00 00 01 09 xx`, which is optional), so nothing moves.
/// Returns how many PES were marked.
pub fn rai_on_every_pes(path: &Path, video_pid: u16) -> Result<usize> {
    let mut data = std::fs::read(path)?;
    let mut marked = 0;
    for p in data.chunks_exact_mut(188) {
        if pid(p) != video_pid || p[1] & 0x40 == 0 {
            continue;
        }
        if p[3] & 0x20 != 0 && p[4] > 0 {
            p[5] |= 0x40;
            marked += 1;
            continue;
        }
        let Some(at) = payload_at(p) else { continue };
        let pes_len = 9 + p[at + 8] as usize;
        let aud = at + pes_len;
        if p.get(aud..aud + 5) != Some(&[0, 0, 0, 1, 0x09][..]) {
            anyhow::bail!("a video PES without an AUD right after its header");
        }
        // [header][AF: 5, 0x40, FF x4][PES header] replaces [header][PES header][AUD].
        let pes: Vec<u8> = p[at..aud].to_vec();
        p[3] |= 0x20;
        p[4..10].copy_from_slice(&[5, 0x40, 0xFF, 0xFF, 0xFF, 0xFF]);
        p[10..10 + pes.len()].copy_from_slice(&pes);
        marked += 1;
    }
    std::fs::write(path, data)?;
    Ok(marked)
}

/// Video codecs whose parameter sets [`hide_parameter_sets`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nal {
    /// H.264: SPS and PPS.
    H264,
    /// HEVC: VPS, SPS and PPS.
    Hevc,
    /// MPEG-2 video: the sequence header (start code 0xB3; its extension
    /// then stands alone, which decoders accept).
    Mpeg2,
}

impl Nal {
    /// Whether the unit whose header starts with `b` is a parameter set.
    fn is_parameter_set(self, b: u8) -> bool {
        match self {
            Nal::H264 => matches!(b & 0x1F, 7 | 8),
            Nal::Hevc => matches!((b >> 1) & 0x3F, 32..=34),
            Nal::Mpeg2 => b == 0xB3,
        }
    }

    /// The header byte `b` with an unspecified type (decoders skip it).
    fn hidden(self, b: u8) -> u8 {
        match self {
            Nal::H264 => (b & 0xE0) | 31,
            Nal::Hevc => (b & 0x81) | (48 << 1),
            Nal::Mpeg2 => 0xB0, // reserved
        }
    }
}

/// Hides the parameter sets of `video_pid` (their NAL type becomes an
/// unspecified one, which decoders skip): every one after the first access
/// unit that carries them with `keep_first` (as encoders that send
/// parameter sets only once do), else all of them (a stream that never
/// decodes). Returns how many were hidden.
pub fn hide_parameter_sets(
    path: &Path,
    video_pid: u16,
    nal: Nal,
    keep_first: bool,
) -> Result<usize> {
    let mut data = std::fs::read(path)?;
    // The access unit (PES, counted from 1) whose sets stay.
    let mut keeper = None;
    let mut unit = 0;
    let mut hidden = 0;
    for p in data.chunks_exact_mut(188) {
        if pid(p) != video_pid {
            continue;
        }
        let Some(at) = payload_at(p) else { continue };
        if p[1] & 0x40 != 0 {
            unit += 1;
        }
        // Muxers put the sets right after the delimiter, in the PES's first
        // packet: start codes that straddle packets are not looked for.
        for i in at..185 {
            if p[i..i + 3] != [0, 0, 1] || !nal.is_parameter_set(p[i + 3]) {
                continue;
            }
            if !keep_first || *keeper.get_or_insert(unit) != unit {
                p[i + 3] = nal.hidden(p[i + 3]);
                hidden += 1;
            }
        }
    }
    std::fs::write(path, data)?;
    Ok(hidden)
}

/// Stops the video of `video_pid` for the pictures presented from `from`
/// to `to` seconds after the first one, while audio goes on, as an encoder
/// that loses its video input does: those PES are removed, the PCR they
/// carried stays (in packets with only an adaptation field), and the video
/// continuity counters run on without a break. Returns the video packets
/// removed.
pub fn video_outage(path: &Path, video_pid: u16, from: f64, to: f64) -> Result<usize> {
    let data = std::fs::read(path)?;
    let mut out = Vec::with_capacity(data.len());
    let (mut first, mut dropping, mut removed, mut cc) = (None, false, 0, 0u8);
    for p in data.chunks_exact(188) {
        if pid(p) != video_pid {
            out.extend_from_slice(p);
            continue;
        }
        if let (true, Some(at)) = (p[1] & 0x40 != 0, payload_at(p)) {
            if let Some(pts) = hlsvault_ts::pes::parse_header(&p[at..]).and_then(|h| h.pts) {
                let first = *first.get_or_insert(pts);
                let secs = pts.wrapping_sub(first) as f64 / 90_000.0;
                dropping = (from..to).contains(&secs);
            }
        }
        let has_pcr = p[3] & 0x20 != 0 && p[4] >= 7 && p[5] & 0x10 != 0;
        let mut q = p.to_vec();
        if dropping {
            removed += 1;
            if !has_pcr {
                continue;
            }
            // Adaptation field only: the PCR, then stuffing.
            q[1] &= !0x40;
            q[3] = (q[3] & 0xC0) | 0x20 | (cc.wrapping_sub(1) & 0x0F);
            q[4] = 183;
            q[5] = 0x10;
            q[12..].fill(0xFF);
        } else if q[3] & 0x10 != 0 {
            q[3] = (q[3] & 0xF0) | cc;
            cc = (cc + 1) & 0x0F;
        }
        out.extend_from_slice(&q);
    }
    std::fs::write(path, out)?;
    Ok(removed)
}

/// PIDs [`add_ancillary_pids`] adds to the program.
pub const TELETEXT_PID: u16 = 0x200;
/// DVB subtitles.
pub const SUBTITLE_PID: u16 = 0x201;
/// SCTE-35 splice information.
pub const SCTE35_PID: u16 = 0x202;

/// Adds what broadcast multiplexes carry besides audio and video to the
/// program whose PMT is on `pmt_pid`: teletext, DVB subtitles and SCTE-35
/// streams (declared in the PMT with their descriptors, and sent), and SI
/// tables on their DVB PIDs (EIT on 0x12, TDT on 0x14). One packet of
/// each follows every PAT (SCTE-35, EIT and TDT every tenth). Returns the
/// packets added per PID.
pub fn add_ancillary_pids(path: &Path, pmt_pid: u16) -> Result<Vec<(u16, u64)>> {
    let data = std::fs::read(path)?;
    let mut out = Vec::with_capacity(data.len() * 11 / 10);
    let mut cc = std::collections::HashMap::<u16, u8>::new();
    let mut added = std::collections::BTreeMap::<u16, u64>::new();
    let mut pats = 0u64;
    let mut packet = |pid: u16, pusi: bool, payload: &[u8], out: &mut Vec<u8>| {
        let c = cc.entry(pid).or_insert(0);
        let start = out.len();
        out.extend_from_slice(&[
            0x47,
            (pusi as u8) << 6 | (pid >> 8) as u8,
            pid as u8,
            0x10 | *c,
        ]);
        out.extend_from_slice(payload);
        out.resize(start + 188, 0xFF);
        *c = (*c + 1) & 0x0F;
        *added.entry(pid).or_default() += 1;
    };
    let section = |mut s: Vec<u8>| {
        let crc = hlsvault_ts::psi::crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        let mut p = vec![0u8]; // pointer_field
        p.extend_from_slice(&s);
        p
    };
    let pes = |data_identifier: u8| {
        // private_stream_1, 178 bytes: no PTS, the data identifier, stuffing.
        let mut p = vec![0, 0, 1, 0xBD, 0, 178, 0x80, 0, 0, data_identifier];
        p.resize(184, 0xFF);
        p
    };
    for p in data.chunks_exact(188) {
        let id = pid(p);
        if id == pmt_pid && p[1] & 0x40 != 0 {
            out.extend_from_slice(&with_ancillary_streams(p)?);
            continue;
        }
        out.extend_from_slice(p);
        if id != 0 {
            continue;
        }
        pats += 1;
        packet(TELETEXT_PID, true, &pes(0x10), &mut out);
        packet(SUBTITLE_PID, true, &pes(0x20), &mut out);
        if pats % 10 == 1 {
            // splice_null(): protocol 0, no PTS adjustment, cw_index 0,
            // tier 0xFFF, no descriptors.
            let scte35 = vec![
                0xFC, 0x30, 0x11, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xF0, 0, 0, 0, 0,
            ];
            packet(SCTE35_PID, true, &section(scte35), &mut out);
            // EIT present/following of service 1, empty.
            let eit = vec![0x4E, 0xF0, 0x0F, 0, 1, 0xC1, 0, 1, 0, 1, 0, 1, 0, 0x4E];
            packet(0x12, true, &section(eit), &mut out);
            // TDT: UTC 2026-11-21 10:00:00 (MJD 61365, BCD time); no CRC.
            packet(
                0x14,
                true,
                &[0, 0x70, 0x70, 5, 0xEF, 0xB5, 0x10, 0, 0],
                &mut out,
            );
        }
    }
    std::fs::write(path, out)?;
    Ok(added.into_iter().collect())
}

/// A PMT packet whose section also declares teletext, DVB subtitles and
/// SCTE-35 streams.
fn with_ancillary_streams(p: &[u8]) -> Result<Vec<u8>> {
    let at = payload_at(p).context("a PMT packet without payload")?;
    let pointer = p[at] as usize;
    let s = &p[at + 1 + pointer..];
    let len = (((s[1] & 0x0F) as usize) << 8) | s[2] as usize;
    let body = &s[..3 + len - 4];
    let mut section = body.to_vec();
    // teletext: stream type 6 + teletext_descriptor (0x56, "eng", initial page)
    section.extend_from_slice(&[
        0x06, 0xE2, 0x00, 0xF0, 0x07, 0x56, 0x05, b'e', b'n', b'g', 0x09, 0x00,
    ]);
    // DVB subtitles: stream type 6 + subtitling_descriptor (0x59)
    section.extend_from_slice(&[
        0x06, 0xE2, 0x01, 0xF0, 0x0A, 0x59, 0x08, b'e', b'n', b'g', 0x10, 0, 1, 0, 1,
    ]);
    // SCTE-35: stream type 0x86
    section.extend_from_slice(&[0x86, 0xE2, 0x02, 0xF0, 0x00]);
    let new_len = section.len() - 3 + 4;
    section[1] = (section[1] & 0xF0) | (new_len >> 8) as u8;
    section[2] = new_len as u8;
    let crc = hlsvault_ts::psi::crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    let mut q = p[..at].to_vec();
    q.push(0);
    q.extend_from_slice(&section);
    anyhow::ensure!(q.len() <= 188, "the PMT no longer fits one packet");
    q.resize(188, 0xFF);
    Ok(q)
}

/// Sends each of `sections` (whole, CRC included) on [`SCTE35_PID`]
/// (which [`add_ancillary_pids`] declares) right after the first video
/// PES of `video_pid` whose PTS is `after` seconds past the first one, as
/// an encoder announces a splice ahead of it; the PID's continuity
/// counters run on across them. Returns the first video PTS, against
/// which splice times are given.
pub fn insert_sections(path: &Path, video_pid: u16, sections: &[(f64, Vec<u8>)]) -> Result<u64> {
    let data = std::fs::read(path)?;
    let mut out = Vec::with_capacity(data.len() + sections.len() * 376);
    let mut first = None;
    let mut due: Vec<&(f64, Vec<u8>)> = sections.iter().collect();
    for p in data.chunks_exact(188) {
        out.extend_from_slice(p);
        if pid(p) != video_pid || p[1] & 0x40 == 0 {
            continue;
        }
        let Some(pts) = payload_at(p).and_then(|at| hlsvault_ts::pes::parse_header(&p[at..])?.pts)
        else {
            continue;
        };
        let secs = pts.wrapping_sub(*first.get_or_insert(pts)) as f64 / 90_000.0;
        for (_, section) in due.iter().filter(|(after, _)| secs >= *after) {
            hlsvault_ts::psi::packetize(SCTE35_PID, section, 0, &mut out);
        }
        due.retain(|(after, _)| secs < *after);
    }
    anyhow::ensure!(
        due.is_empty(),
        "the stream ended before every section was sent"
    );
    let mut cc = 0u8;
    for p in out.chunks_exact_mut(188).filter(|p| pid(p) == SCTE35_PID) {
        p[3] = (p[3] & 0xF0) | cc;
        cc = (cc + 1) & 0x0F;
    }
    std::fs::write(path, out)?;
    first.context("no video PES")
}

/// Rewrites every PAT to list `phantoms` (program number, PMT PID) around
/// the programs it lists, as multiplexers do that announce services whose
/// PMT never comes: two phantoms before the real ones, the rest after.
pub fn phantom_programs(path: &Path, phantoms: &[(u16, u16)]) -> Result<()> {
    let mut data = std::fs::read(path)?;
    for p in data.chunks_exact_mut(188) {
        if pid(p) != 0 || p[1] & 0x40 == 0 {
            continue;
        }
        let pointer = payload_at(p).context("a PAT packet without payload")?;
        let at = pointer + 1 + p[pointer] as usize;
        let len = (((p[at + 1] & 0x0F) as usize) << 8) | p[at + 2] as usize;
        let real = p[at + 8..at + 3 + len - 4].to_vec();
        let entry = |(n, pmt): (u16, u16)| {
            let mut e = n.to_be_bytes().to_vec();
            e.extend_from_slice(&(0xE000 | pmt).to_be_bytes());
            e
        };
        let (before, after) = phantoms.split_at(phantoms.len().min(2));
        let mut section = p[at..at + 8].to_vec();
        section.extend(before.iter().copied().flat_map(entry));
        section.extend_from_slice(&real);
        section.extend(after.iter().copied().flat_map(entry));
        let new_len = section.len() - 3 + 4;
        section[1] = (section[1] & 0xF0) | (new_len >> 8) as u8;
        section[2] = new_len as u8;
        let crc = hlsvault_ts::psi::crc32_mpeg2(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        anyhow::ensure!(
            at + section.len() <= 188,
            "the PAT no longer fits one packet"
        );
        p[at..at + section.len()].copy_from_slice(&section);
        p[at + section.len()..].fill(0xFF);
    }
    std::fs::write(path, data)?;
    Ok(())
}

/// A `splice_insert` built byte by byte: event `id`, out of the network
/// (or back in) at `pts`, with a planned break of `seconds`; its CRC
/// appended.
pub fn splice_insert(id: u32, out: bool, pts: u64, seconds: Option<u64>) -> Vec<u8> {
    let mut command = id.to_be_bytes().to_vec();
    // Not cancelled; program splice, a duration if given, not immediate.
    command.push(0x7F);
    command.push(u8::from(out) << 7 | 0x40 | u8::from(seconds.is_some()) << 5 | 0x0F);
    command.push(0xFE | (pts >> 32) as u8);
    command.extend((pts as u32).to_be_bytes());
    if let Some(secs) = seconds {
        let ticks = secs * 90_000;
        command.push(0xFE | (ticks >> 32) as u8);
        command.extend((ticks as u32).to_be_bytes());
    }
    command.extend([0, 1, 0, 0]); // unique_program_id 1, no avails
                                  // Table id, length (below), protocol 0, no PTS adjustment, cw_index 0,
                                  // tier 0xFFF, the command's length and type.
    let mut s = vec![
        0xFC,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0xFF,
        0xF0,
        command.len() as u8,
        0x05,
    ];
    s.extend(command);
    s.extend([0, 0]); // no descriptors
    let length = s.len() - 3 + 4;
    s[1] = 0x30 | (length >> 8) as u8;
    s[2] = length as u8;
    let crc = hlsvault_ts::psi::crc32_mpeg2(&s);
    s.extend(crc.to_be_bytes());
    s
}

pub fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `seconds` of 25 fps H.264 (x264, IDRs every 2 s and at the splice
/// points) and AAC, with a SCTE-35 PID declared in the PMT and a break
/// on it: out at 5 s for a planned 6 s, back in at 11 s (IDRs there, as
/// an encoder told of the break places them), each announced 2 s ahead.
/// Returns the two sections as inserted.
pub fn ad_break(t: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    x264_with(t, 20.0, 50, &["-force_key_frames", "5,11"])?;
    add_ancillary_pids(t, 0x1000)?;
    let first = insert_sections(t, FFMPEG_VIDEO_PID, &[])?;
    let out = splice_insert(77, true, first + 5 * 90_000, Some(6));
    let back = splice_insert(77, false, first + 11 * 90_000, None);
    insert_sections(
        t,
        FFMPEG_VIDEO_PID,
        &[(3.0, out.clone()), (9.0, back.clone())],
    )?;
    Ok((out, back))
}
