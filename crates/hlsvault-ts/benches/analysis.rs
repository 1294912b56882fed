//! Analysis throughput with the store left out: a TS file, in memory, fed
//! through RTP classification and the segment cutter in 7-packet datagrams,
//! as the engine does. Run: `cargo bench -p hlsvault-ts --bench analysis -- FILE.ts`.

mod common;

use std::time::Instant;

use hlsvault_ts::rtp;

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: analysis FILE.ts");
    let data = std::fs::read(&path).expect("readable TS file");
    let data = &data[..data.len() - data.len() % 1316];
    let mut best = f64::MAX;
    let mut segments = 0;
    for _ in 0..5 {
        let mut cutter = common::cutter();
        let start = Instant::now();
        let mut n = 0;
        for (i, d) in data.chunks(1316).enumerate() {
            let at = common::capture_time(i);
            if let rtp::Payload::Ts(ts) = rtp::classify(d) {
                cutter.push_datagram(ts, at, false);
            }
            n += cutter.take_ready().count();
        }
        cutter.finish();
        n += cutter.take_ready().count();
        best = best.min(start.elapsed().as_secs_f64());
        segments = n;
    }
    let gb = data.len() as f64 / 1e9;
    println!(
        "analysis: {:.3} GB in {:.3} s on one core = {:.2} GB/s ({segments} segments)",
        gb,
        best,
        gb / best
    );
}
