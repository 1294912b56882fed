//! Listens with libpcap on an interface for UDP to a port and reports,
//! per destination, how each PCR arrived against where it belongs
//! (p50/p99/max, ms), the continuity errors a receiver sees, and the
//! datagrams; then the worst of them. For `scripts/bench-replay`.
//!
//!   pcrjitter IFACE PORT [QUIET_S] [LONGEST_S]

use std::collections::BTreeMap;
use std::time::Duration;

use hlsvault_testkit::pcr_timing::{quantile, Arrivals};
use hlsvault_testkit::sniff::Sniffer;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: pcrjitter IFACE PORT [QUIET_S] [LONGEST_S]"
    );
    let secs = |i: usize, default: u64| {
        Duration::from_secs(args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default))
    };
    let sniffer = Sniffer::open(&args[1], args[2].parse()?)?;
    // Ready: the sender may start.
    eprintln!("pcrjitter: listening");
    let mut by_dst: BTreeMap<std::net::SocketAddrV4, Arrivals> = BTreeMap::new();
    sniffer.run(secs(3, 3), secs(4, 600), |s| {
        let ts = match hlsvault_ts::rtp::classify(s.payload) {
            hlsvault_ts::rtp::Payload::Ts(ts) | hlsvault_ts::rtp::Payload::Rtp { ts, .. } => ts,
            hlsvault_ts::rtp::Payload::NotTs => return,
        };
        by_dst.entry(s.dst).or_default().push(s.at, ts);
    });
    let (mut worst_p99, mut worst_max, mut cc, mut datagrams) = (0f64, 0f64, 0, 0);
    for (dst, a) in &by_dst {
        let d = a.deviations();
        let (p50, p99, max) = (quantile(&d, 0.5), quantile(&d, 0.99), quantile(&d, 1.0));
        println!(
            "{dst}: {} datagrams, {} CC errors, {} PCRs, jitter p50 {p50:.3} p99 {p99:.3} max {max:.3} ms",
            a.datagrams,
            a.cc_errors(),
            d.len()
        );
        worst_p99 = worst_p99.max(p99);
        worst_max = worst_max.max(max);
        cc += a.cc_errors();
        datagrams += a.datagrams;
    }
    println!(
        "all: {} destinations, {datagrams} datagrams, {cc} CC errors, worst p99 {worst_p99:.3} ms, worst max {worst_max:.3} ms",
        by_dst.len()
    );
    Ok(())
}
