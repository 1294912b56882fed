//! What input an attacker or a broken head-end controls costs: the same TS
//! file analysed clear, with its video payload scrambled (random bytes, as
//! scrambled multicast carries) or zeroed, and wrapped in RTP with wild
//! sequence numbers; each against the clear input.
//! Run: `cargo bench -p hlsvault-ts --bench hostile_input -- FILE.ts`.

mod common;

use std::time::Instant;

use hlsvault_ts::rtp::Reorder;

const DATAGRAM: usize = 7 * 188;

/// The most frequent PID but the null one: the video of a test stream.
fn busiest_pid(ts: &[u8]) -> u16 {
    let mut counts = vec![0u32; 8192];
    for p in ts.chunks_exact(188) {
        counts[(usize::from(p[1] & 0x1f) << 8) | usize::from(p[2])] += 1;
    }
    counts[8191] = 0;
    (0..8192).max_by_key(|&pid| counts[pid]).unwrap_or(0) as u16
}

/// `ts` with the payload of `pid`'s packets overwritten by `fill`, PES
/// headers (the first 19 payload bytes of a unit start) kept.
fn overwrite(ts: &[u8], pid: u16, mut fill: impl FnMut() -> u8) -> Vec<u8> {
    let mut out = ts.to_vec();
    for p in out.chunks_exact_mut(188) {
        if ((u16::from(p[1] & 0x1f)) << 8 | u16::from(p[2])) != pid || p[3] & 0x10 == 0 {
            continue;
        }
        let mut at = 4;
        if p[3] & 0x20 != 0 {
            at += 1 + usize::from(p[4]);
        }
        if p[1] & 0x40 != 0 {
            at += 19;
        }
        for b in p.iter_mut().skip(at) {
            *b = fill();
        }
    }
    out
}

/// Seconds to analyse `datagrams` (best of 3), each through RTP when it
/// has a sequence number.
fn analyse(datagrams: &[(Option<u16>, &[u8])]) -> f64 {
    (0..3)
        .map(|_| {
            let mut cutter = common::cutter();
            let mut reorder = Reorder::default();
            let start = Instant::now();
            for (i, (seq, ts)) in datagrams.iter().enumerate() {
                let at = common::capture_time(i);
                match seq {
                    Some(seq) => reorder.push(*seq, ts, at, &mut |ts, at, lost| {
                        cutter.push_datagram(ts, at, lost > 0)
                    }),
                    None => cutter.push_datagram(ts, at, false),
                }
                cutter.take_ready().for_each(drop);
            }
            cutter.finish();
            cutter.take_ready().for_each(drop);
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: hostile_input FILE.ts");
    let data = std::fs::read(&path).expect("readable TS file");
    let clear = &data[..data.len() - data.len() % DATAGRAM];
    let video = busiest_pid(clear);
    let mut x: u32 = 0x9e37_79b9;
    let scrambled = overwrite(clear, video, || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    });
    let zeros = overwrite(clear, video, || 0);
    let plain = |ts: &'static [u8]| -> Vec<(Option<u16>, &'static [u8])> {
        ts.chunks(DATAGRAM).map(|d| (None, d)).collect()
    };
    let clear: &'static [u8] = clear.to_vec().leak();
    let base = analyse(&plain(clear));
    // RTP in order, then every other datagram 30,000 sequence numbers away.
    let in_order: Vec<_> = clear
        .chunks(DATAGRAM)
        .enumerate()
        .map(|(i, d)| (Some(i as u16), d))
        .collect();
    let wild: Vec<_> = clear
        .chunks(DATAGRAM)
        .enumerate()
        .map(|(i, d)| (Some((i as u16).wrapping_mul(30_000)), d))
        .collect();
    println!("| input | seconds | against clear |\n|---|---|---|");
    println!(
        "| clear ({:.0} MB) | {base:.3} | 1.00 |",
        clear.len() as f64 / 1e6
    );
    for (name, secs) in [
        ("video payload scrambled", analyse(&plain(scrambled.leak()))),
        ("video payload zeroed", analyse(&plain(zeros.leak()))),
        ("RTP, in order", analyse(&in_order)),
        ("RTP, sequence jumping 30,000 each datagram", analyse(&wild)),
    ] {
        println!("| {name} | {secs:.3} | {:.2} |", secs / base);
    }
}
