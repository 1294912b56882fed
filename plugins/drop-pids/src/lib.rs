//! `drop-pids`: a packet filter that drops the TS packets of the PIDs in
//! its `pids` config value (comma separated, decimal or 0x hex), e.g. the
//! null packets (8191) or a teletext PID. Everything else is kept.

use std::sync::OnceLock;

wit_bindgen::generate!({ path: "../../wit", world: "packet-filter" });

use exports::hlsvault::plugin::filter::{Guest, Verdict};
use hlsvault::plugin::host::{self, Level};
use hlsvault::plugin::types::StreamInfo;

/// Which of the 8192 PIDs to drop.
pub type PidSet = [bool; 8192];

/// Parses `8191, 0x1fff, 33` into a set; says what it cannot read.
pub fn parse_pids(text: &str) -> Result<Box<PidSet>, String> {
    let mut set = Box::new([false; 8192]);
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let pid = match item.strip_prefix("0x").or_else(|| item.strip_prefix("0X")) {
            Some(hex) => u16::from_str_radix(hex, 16),
            None => item.parse::<u16>(),
        }
        .map_err(|_| format!("pids: {item:?} is not a PID"))?;
        if pid > 8191 {
            return Err(format!("pids: {pid} is over 8191"));
        }
        set[pid as usize] = true;
    }
    Ok(set)
}

/// The verdict for `packets` (whole 188-byte packets) under `drop`.
pub fn verdict(drop: &PidSet, packets: &[u8]) -> Verdict {
    let pid = |p: &[u8]| (usize::from(p[1] & 0x1f) << 8) | usize::from(p[2]);
    let n = packets.len() / 188;
    let dropped = packets.chunks_exact(188).filter(|p| drop[pid(p)]).count();
    match dropped {
        0 => Verdict::KeepAll,
        d if d == n => Verdict::DropAll,
        _ => Verdict::Keep(
            packets
                .chunks_exact(188)
                .enumerate()
                .filter(|(_, p)| !drop[pid(p)])
                .map(|(i, _)| i as u32)
                .collect(),
        ),
    }
}

fn configured() -> &'static PidSet {
    static PIDS: OnceLock<Box<PidSet>> = OnceLock::new();
    PIDS.get_or_init(|| {
        let text = host::config("pids").unwrap_or_default();
        parse_pids(&text).unwrap_or_else(|e| {
            host::log(Level::Error, &format!("{e}; dropping nothing"));
            Box::new([false; 8192])
        })
    })
}

struct DropPids;

impl Guest for DropPids {
    fn filter(_info: StreamInfo, packets: Vec<u8>) -> Verdict {
        verdict(configured(), &packets)
    }
}

export!(DropPids);

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16) -> Vec<u8> {
        let mut p = vec![0xffu8; 188];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8 & 0x1f;
        p[2] = pid as u8;
        p
    }

    #[test]
    fn pids_parse_in_decimal_and_hex_and_bad_ones_are_named() {
        let set = parse_pids("8191, 0x21 ,256").unwrap();
        assert!(set[8191] && set[0x21] && set[256] && !set[0]);
        assert_eq!(parse_pids("9000").unwrap_err(), "pids: 9000 is over 8191");
        assert_eq!(parse_pids("x").unwrap_err(), "pids: \"x\" is not a PID");
    }

    #[test]
    fn the_verdict_keeps_what_is_not_listed() {
        let set = parse_pids("8191").unwrap();
        let batch: Vec<u8> = [0x100, 8191, 0x101, 8191]
            .iter()
            .flat_map(|&p| packet(p))
            .collect();
        assert!(matches!(verdict(&set, &batch), Verdict::Keep(k) if k == vec![0, 2]));
        assert!(matches!(verdict(&set, &packet(0x100)), Verdict::KeepAll));
        assert!(matches!(verdict(&set, &packet(8191)), Verdict::DropAll));
    }
}
