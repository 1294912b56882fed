//! The cost of one call to each hook kind, through the host's real path
//! (deadline, call, validation), with the example plugins built by
//! `plugins/build`. Run: `cargo bench -p hlsvault-plugin --bench plugins [-- DIR]`
//! (DIR: where the `.wasm` files are; default `plugins/dist`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hlsvault_plugin::host::{PlaylistKind, SegmentInfo};
use hlsvault_plugin::{OnError, PluginSettings};
use hlsvault_plugin::{Runtime, Slot, StreamPlugins};

fn plugin(dir: &Path, name: &str, config: &[(&str, &str)]) -> PluginSettings {
    PluginSettings {
        name: name.to_string(),
        path: dir.join(format!("{name}.wasm")),
        on_error: OnError::FailOpen,
        timeout: Duration::from_millis(10),
        memory: 16 << 20,
        values: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Nanoseconds per call of `f`, the best of 5 rounds of `n` calls.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::MAX, f64::min)
}

fn packet(pid: u16) -> [u8; 188] {
    let mut p = [0xffu8; 188];
    p[0] = 0x47;
    p[1] = (pid >> 8) as u8 & 0x1f;
    p[2] = pid as u8;
    p[3] = 0x10;
    p
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist"));
    let runtime = Runtime::new(None).expect("a plugin runtime");
    let load = |c: PluginSettings| {
        Slot::new(
            runtime
                .load(&c)
                .expect("the example plugins (plugins/build)"),
        )
    };
    let drop = load(plugin(&dir, "drop-pids", &[("pids", "8191")]));
    let namer = load(plugin(&dir, "segment-namer", &[]));
    let tags = load(plugin(
        &dir,
        "playlist-tags",
        &[(
            "entry",
            "#EXT-X-DATERANGE:ID=\"{stream}-{sequence}\",START-DATE=\"{start}\",DURATION={duration}",
        )],
    ));
    let signer = load(plugin(
        &dir,
        "cdn-token-signer",
        &[
            ("base_url", "https://cdn.example.com/archive"),
            ("secret", "s3cret"),
        ],
    ));
    let mut filters = StreamPlugins::new(&[drop], "ch1", "239.10.0.1".into(), 5000);
    let mut others = StreamPlugins::new(&[namer, tags, signer], "ch1", "239.10.0.1".into(), 5000);

    let clean: Vec<u8> = (0..7).flat_map(|i| packet(0x100 + i % 2)).collect();
    let with_null: Vec<u8> = (0..7)
        .flat_map(|i| packet(if i == 3 { 8191 } else { 0x100 }))
        .collect();
    // 64 datagrams back to back, as a reader's batch holds them.
    let batch: Vec<u8> = clean.repeat(64);
    let segment = SegmentInfo {
        stream_name: "ch1".into(),
        sequence: 42,
        start_ms: 1_795_560_600_123,
        duration_ms: 6006,
        discontinuity: false,
        default_name: "5000.123-42.ts".into(),
    };
    let results = [
        (
            "packet filter, 7 packets, none dropped (keep-all)",
            per_call(200_000, || {
                assert_eq!(filters.filter(&clean, &[&clean]).dropped, 0);
            }),
        ),
        (
            "packet filter, 7 packets, 1 null dropped (keep list)",
            per_call(200_000, || {
                assert_eq!(filters.filter(&with_null, &[&with_null]).dropped, 1);
            }),
        ),
        (
            "packet filter, a batch of 64 datagrams (448 packets), none dropped",
            per_call(20_000, || {
                let datagrams: Vec<&[u8]> = batch.chunks(clean.len()).collect();
                assert_eq!(filters.filter(&batch, &datagrams).dropped, 0);
            }),
        ),
        (
            "segment namer (template)",
            per_call(50_000, || {
                assert!(matches!(
                    others.segment_name(&segment, |_| false),
                    hlsvault_plugin::Named::Plugin(_)
                ));
            }),
        ),
        (
            "playlist policy (one DATERANGE entry tag)",
            per_call(50_000, || {
                assert_eq!(
                    others.entry_tags(&segment, &[], PlaylistKind::Hour).len(),
                    1
                );
            }),
        ),
        (
            "URL signer (HMAC token)",
            per_call(50_000, || {
                assert!(others
                    .sign("ch1/2026/11/24/22/index.m3u8", "x", 1_800_000_000)
                    .is_some());
            }),
        ),
    ];
    println!("| hook | per call |");
    println!("|---|---:|");
    for (what, ns) in results {
        println!("| {what} | {:.2} us |", ns / 1000.0);
    }
}
