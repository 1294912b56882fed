//! Wraps MPEG-TS files into one pcap capture, as if each were sent as UDP
//! (7 packets a datagram, paced by its PCR) to its own group and port.

use std::net::SocketAddrV4;
use std::path::PathBuf;

use clap::Parser;
use hlsvault_testkit::{write_pcap, Wrap};

/// Wrap TS files into a pcap capture.
#[derive(Parser)]
struct Args {
    /// Output pcap file.
    #[arg(short, long)]
    out: PathBuf,
    /// Capture start time (RFC 3339, UTC).
    #[arg(long, default_value = "2026-11-21T09:59:50Z")]
    start: String,
    /// Wrap in RTP.
    #[arg(long)]
    rtp: bool,
    /// Mix in noise: other ports and non-TS datagrams.
    #[arg(long)]
    noise: bool,
    /// Streams as FILE.ts=GROUP:PORT.
    #[arg(required = true)]
    streams: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start = humantime::parse_rfc3339(&args.start)?;
    let wraps = args
        .streams
        .iter()
        .map(|s| {
            let (file, dst) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("expected FILE=GROUP:PORT, got {s}"))?;
            let mut w = Wrap::new(file, dst.parse::<SocketAddrV4>()?);
            w.rtp = args.rtp.then_some(0);
            Ok(w)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sent = write_pcap(&args.out, start, &wraps, args.noise)?;
    eprintln!("wrote {} ({sent:?} datagrams)", args.out.display());
    Ok(())
}
