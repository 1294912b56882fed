//! Analysis throughput with the store left out: a TS file, in memory, fed
//! through RTP classification and the segment cutter in 7-packet datagrams,
//! as the engine does. Run: `cargo bench -p hlsvault --bench analysis -- FILE.ts`.

use std::time::{Duration, Instant, SystemTime};

use hlsvault_ts::rtp;
use hlsvault_ts::segment::{CutPolicy, SegmentCutter};

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
        let mut cutter = SegmentCutter::new(CutPolicy {
            target: Duration::from_secs(6),
            max: Duration::from_secs(30),
            recovery: false,
            selection: Default::default(),
            gap: Duration::from_secs(1),
        });
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_254_900);
        let start = Instant::now();
        let mut n = 0;
        for (i, d) in data.chunks(1316).enumerate() {
            // Capture times at 20 Mbit/s.
            let at = t0 + Duration::from_micros(i as u64 * 526);
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
