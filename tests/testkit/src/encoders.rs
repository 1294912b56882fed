//! Streams that behave like broadcast encoders, not like `ffmpeg -f mpegts`
//! with its defaults: open GOPs, intra refresh, CRA, MPEG-2, GStreamer's
//! muxer, and byte edits where no encoder does the thing (the random access
//! indicator on every frame, parameter sets sent once).

use std::path::Path;
use std::process::Command;

use anyhow::Result;

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

/// Encodes `seconds` of 25 fps video with ffmpeg's `video` encoder
/// arguments, AAC audio, into an MPEG-TS file.
pub fn ffmpeg(out: &Path, seconds: f64, video: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ffmpeg");
    ffmpeg_sources(&mut cmd, seconds);
    cmd.args(["-pix_fmt", "yuv420p"]).args(video);
    cmd.args(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts"])
        .arg(out);
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

/// Hides every H.264 SPS and PPS after the first access unit of
/// `video_pid` that carries them (their NAL type becomes 31, unspecified,
/// which decoders skip), as encoders that send parameter sets only once
/// do. Returns how many were hidden.
pub fn parameter_sets_once(path: &Path, video_pid: u16) -> Result<usize> {
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
            if p[i..i + 3] != [0, 0, 1] || !matches!(p[i + 3] & 0x1F, 7 | 8) {
                continue;
            }
            if *keeper.get_or_insert(unit) != unit {
                p[i + 3] = (p[i + 3] & 0xE0) | 31;
                hidden += 1;
            }
        }
    }
    std::fs::write(path, data)?;
    Ok(hidden)
}

/// PTS of a PES that starts in `payload`, if its header carries one.
fn pes_pts(payload: &[u8]) -> Option<u64> {
    if payload.len() < 14 || payload[..3] != [0, 0, 1] || payload[7] & 0x80 == 0 {
        return None;
    }
    let b = &payload[9..14];
    Some(
        ((b[0] as u64 >> 1) & 7) << 30
            | (b[1] as u64) << 22
            | (b[2] as u64 >> 1) << 15
            | (b[3] as u64) << 7
            | b[4] as u64 >> 1,
    )
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
            if let Some(pts) = pes_pts(&p[at..]) {
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
