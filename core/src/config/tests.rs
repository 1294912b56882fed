//! The configuration file: what is accepted, and every problem with its key.

use super::*;

fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    let dir = std::env::temp_dir().join(format!("hlsvault-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("c.pcap");
    std::fs::write(&pcap, b"").unwrap();
    let file = dir.join(format!(
        "{:x}.toml",
        text.len() * 31 + text.bytes().map(|b| b as usize).sum::<usize>()
    ));
    std::fs::write(&file, text.replace("PCAP", &pcap.display().to_string())).unwrap();
    load(&file)
}

fn keys(e: ConfigErrors) -> Vec<String> {
    e.problems
        .into_iter()
        .map(|p| format!("{}: {}", p.key, p.reason))
        .collect()
}

const GOOD: &str = r#"
[storage]
backend = "fs"
root = "archive"

[defaults]
segment_duration = "4s"

[[streams]]
name = "ch1"
live_window = 5
[streams.source]
kind = "pcap-file"
path = "PCAP"
group = "239.10.0.1"
port = 5000
pace = "fast"

[[streams]]
name = "ch2"
segment_duration = "6s"
[streams.source]
kind = "pcap-file"
path = "PCAP"
group = "239.10.0.2"
port = 5000
"#;

#[test]
fn good_config_with_defaults_table() {
    let c = load_str(GOOD).unwrap();
    assert_eq!(c.streams.len(), 2);
    assert_eq!(c.streams[0].segment_duration, Duration::from_secs(4));
    assert_eq!(c.streams[1].segment_duration, Duration::from_secs(6));
    assert_eq!(c.streams[0].max_segment, Duration::from_secs(30));
    assert_eq!(c.streams[1].keyframes, Keyframes::Strict);
    assert_eq!(c.streams[1].selection(), Default::default());
    assert_eq!(
        c.storage.store,
        Store::Fs {
            root: PathBuf::from("archive")
        }
    );
    assert_eq!(c.streams[0].stall_timeout, Duration::from_secs(5));
    assert!(!c.streams[0].aligned_cuts, "cut by length unless asked");
    let aligned = GOOD.replace("[defaults]\n", "[defaults]\naligned_cuts = true\n");
    let c = load_str(&aligned).unwrap();
    assert!(c.streams.iter().all(|s| s.aligned_cuts), "from [defaults]");
}

#[test]
fn storage_backends_urls_and_secrets() {
    let s3 = GOOD.replacen(
        "backend = \"fs\"\nroot = \"archive\"",
        "backend = \"s3\"\nendpoint = \"http://127.0.0.1:3900\"\nbucket = \"tv-archive\"\nregion = \"garage\"\naccess_key = \"GKid\"\nsecret_key = \"hush\"\nurls = \"presigned\"\nurl_expiry = \"2d\"\nspool = false",
        1,
    );
    let c = load_str(&s3).unwrap();
    let Store::S3(settings) = &c.storage.store else {
        panic!("{:?}", c.storage.store)
    };
    assert_eq!(
        (
            settings.endpoint.as_str(),
            settings.bucket.as_str(),
            settings.region.as_str()
        ),
        ("http://127.0.0.1:3900", "tv-archive", "garage")
    );
    assert_eq!(
        c.storage.urls,
        Urls::Presigned {
            expiry: Duration::from_secs(2 * 86400)
        }
    );
    assert_eq!(c.storage.url_expiry, Duration::from_secs(2 * 86400));
    assert!(!c.storage.spool, "diskless");
    assert!(
        !format!("{:?}", c.storage).contains("hush"),
        "secrets never show"
    );

    let bad = s3
        .replace("endpoint = \"http://127.0.0.1:3900\"\n", "")
        .replace("tv-archive", "TV")
        .replace("2d", "8d");
    assert_eq!(
        keys(load_str(&bad).unwrap_err()),
        vec![
            "storage.url_expiry: must be between 1s and 7d (the SigV4 limit)",
            "storage.endpoint: required for backend = \"s3\"",
            "storage.bucket: \"TV\" is not a bucket name (3-63 of a-z 0-9 - .)",
        ]
    );
    let fs = GOOD.replacen(
        "root = \"archive\"",
        "root = \"archive\"\nurls = \"presigned\"\nbucket = \"b\"",
        1,
    );
    assert_eq!(
        keys(load_str(&fs).unwrap_err()),
        vec![
            "storage.urls: \"presigned\" needs backend = \"s3\"",
            "storage.bucket: does not apply to backend = \"fs\"",
        ]
    );
    let public = GOOD.replacen(
        "root = \"archive\"",
        "root = \"archive\"\nurls = \"public\"",
        1,
    );
    assert_eq!(
        keys(load_str(&public).unwrap_err()),
        vec!["storage.public_base_url: required for urls = \"public\" (the URL that serves the store's keys)"]
    );
}

#[test]
fn plugins_are_declared_once_and_listed_by_streams() {
    let with = GOOD.replacen(
        "[defaults]",
        "[plugins.nulls]\npath = \"drop-pids.wasm\"\non_error = \"fail-closed\"\ntimeout = \"5ms\"\nconfig = { pids = 8191, note = \"x\", on = true }\n\n[defaults]\nplugins = [\"nulls\"]",
        1,
    );
    let c = load_str(&with).unwrap();
    let p = &c.plugins["nulls"];
    assert_eq!(
        (p.name.as_str(), p.on_error, p.timeout, p.memory),
        (
            "nulls",
            hlsvault_plugin::OnError::FailClosed,
            Duration::from_millis(5),
            16 << 20
        )
    );
    assert_eq!(p.values["pids"], "8191");
    assert_eq!(p.values["on"], "true");
    assert_eq!(c.streams[0].plugins, vec!["nulls".to_string()]);

    let bad = with
        .replace(
            "timeout = \"5ms\"",
            "timeout = \"5s\"\nmemory = \"1KiB\"\nfuel = 3",
        )
        .replace("plugins = [\"nulls\"]", "plugins = [\"nope\"]");
    let got = keys(load_str(&bad).unwrap_err());
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("plugins.nulls.fuel: unknown field: found `fuel`"),
        "{got:?}"
    );
    // [defaults] gave both streams the plugin.
    assert_eq!(
        got[1],
        "streams[0] (\"ch1\").plugins: no [plugins.nope] table declares \"nope\""
    );
    let limits = with.replace("timeout = \"5ms\"", "timeout = \"5s\"\nmemory = \"1KiB\"");
    assert_eq!(
        keys(load_str(&limits).unwrap_err()),
        vec![
            "plugins.nulls.timeout: must be between 100us and 1s (a call runs on the archive's path)",
            "plugins.nulls.memory: must be between 1MiB and 1GiB"
        ]
    );
}

#[test]
fn live_sources_and_keys_that_do_not_apply() {
    let live = GOOD
        .replacen(
            "kind = \"pcap-file\"\npath = \"PCAP\"",
            "kind = \"udp\"\ninterface = \"lo\"\nbuffer_size = \"8MiB\"",
            1,
        )
        .replacen("pace = \"fast\"\n", "", 1);
    let c = load_str(&live).unwrap();
    let Source::Udp {
        interface,
        buffer_bytes,
        ..
    } = &c.streams[0].source
    else {
        panic!("{:?}", c.streams[0].source)
    };
    assert_eq!((interface.as_deref(), *buffer_bytes), (Some("lo"), 8 << 20));

    // Two live streams cannot receive the same destination on one interface.
    let twice = live.replacen("239.10.0.2", "239.10.0.1", 1).replacen(
        "kind = \"pcap-file\"\npath = \"PCAP\"",
        "kind = \"udp\"\ninterface = \"lo\"",
        1,
    );
    let got = keys(load_str(&twice).unwrap_err());
    assert_eq!(
        got,
        vec!["streams[1] (\"ch2\").source: another stream already receives 239.10.0.1:5000 on this interface"]
    );

    let bad = GOOD.replacen(
        "kind = \"pcap-file\"",
        "kind = \"pcap\"\nbuffer_size = \"lots\"",
        1,
    );
    let got = keys(load_str(&bad).unwrap_err());
    assert!(
        got[0].starts_with("streams[0] (\"ch1\").source.buffer_size: \"lots\" is not a size"),
        "{got:?}"
    );

    let v6 = live.replacen("group = \"239.10.0.1\"", "group = \"ff3e::1\"", 1);
    let got = keys(load_str(&v6).unwrap_err());
    assert_eq!(
        got,
        vec!["streams[0] (\"ch1\").source.group: live capture of IPv6 is not supported yet (IPv4 groups and addresses are)"]
    );

    // Written out, or left to its default: pcap.
    for kind in ["kind = \"pcap\"\n", ""] {
        let bad = GOOD.replacen("kind = \"pcap-file\"\n", kind, 1);
        let got = keys(load_str(&bad).unwrap_err());
        assert_eq!(
            got,
            vec![
                "streams[0] (\"ch1\").source.path: does not apply to kind = \"pcap\"",
                "streams[0] (\"ch1\").source.pace: does not apply to kind = \"pcap\"",
                "streams[0] (\"ch1\").source.interface: required for kind = \"pcap\"",
            ]
        );
    }
    let bad = GOOD.replacen(
        "pace = \"fast\"",
        "pace = \"fast\"\ninterface = \"eth0\"",
        1,
    );
    let got = keys(load_str(&bad).unwrap_err());
    assert_eq!(
        got,
        vec!["streams[0] (\"ch1\").source.interface: does not apply to kind = \"pcap-file\""]
    );
}

#[test]
fn every_problem_is_listed_with_its_key() {
    let bad = GOOD
        .replace("port = 5000\npace", "port = 70000\npace")
        .replace(
            "segment_duration = \"6s\"",
            "segment_duration = \"6 parsecs\"",
        )
        .replace(
            "live_window = 5",
            "live_window = 5\nsegmnt_duration = \"2s\"",
        );
    let got = keys(load_str(&bad).unwrap_err());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("streams[0] (\"ch1\")"), "{got:?}");
    assert!(got[0].contains("segmnt_duration"), "{got:?}");
    assert!(
        got[1].starts_with("streams[1] (\"ch2\").segment_duration"),
        "{got:?}"
    );
    assert!(got[1].contains("6 parsecs"), "{got:?}");

    let bad = GOOD.replace("port = 5000\npace", "port = 70000\npace");
    let got = keys(load_str(&bad).unwrap_err());
    assert_eq!(
        got,
        vec!["streams[0] (\"ch1\").source.port: port 70000 is out of range 1..=65535"]
    );
}

#[test]
fn program_and_null_packets_keys() {
    use hlsvault_ts::program::ProgramChoice;
    let c = load_str(&GOOD.replace(
        "live_window = 5",
        "live_window = 5\nprogram = 101\nnull_packets = \"keep\"",
    ))
    .unwrap();
    let sel = c.streams[0].selection();
    assert_eq!(sel.program, ProgramChoice::Number(101));
    assert!(!sel.whole_multiplex && sel.keep_nulls);
    let c =
        load_str(&GOOD.replace("live_window = 5", "live_window = 5\nprogram = \"all\"")).unwrap();
    assert!(c.streams[0].selection().whole_multiplex);
    let bad = GOOD.replace("live_window = 5", "live_window = 5\nprogram = \"first\"");
    let got = keys(load_str(&bad).unwrap_err());
    assert!(
        got[0].starts_with("streams[0] (\"ch1\").program: \"first\" is not a program"),
        "{got:?}"
    );
    let bad = GOOD.replace("live_window = 5", "live_window = 5\nprogram = 0");
    let got = keys(load_str(&bad).unwrap_err());
    assert!(got[0].contains("program 0 is out of range"), "{got:?}");
}

#[test]
fn duplicate_names_unknown_top_level_and_missing_file() {
    let got = keys(load_str(&GOOD.replace("\"ch2\"", "\"ch1\"")).unwrap_err());
    assert_eq!(
        got,
        vec!["streams[1] (\"ch1\").name: duplicate stream name \"ch1\""]
    );

    let got = keys(load_str(&format!("{GOOD}\n[storag]\nroot = \"x\"\n")).unwrap_err());
    assert!(
        got[0].starts_with("storag: unknown field: found `storag`"),
        "{got:?}"
    );

    let got = keys(
        load_str(&GOOD.replace(
            "path = \"PCAP\"\ngroup = \"239.10.0.1\"",
            "path = \"/nonexistent.pcap\"\ngroup = \"239.10.0.1\"",
        ))
        .unwrap_err(),
    );
    assert_eq!(
        got,
        vec!["streams[0] (\"ch1\").source.path: /nonexistent.pcap is not a readable file"]
    );

    let err = load(Path::new("/nonexistent/hlsvault.toml")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/hlsvault.toml: (file): cannot read"),
        "{err}"
    );
}

#[test]
fn bad_values_and_kinds() {
    let got = keys(
        load_str(&GOOD.replace(
            "kind = \"pcap-file\"\npath = \"PCAP\"\ngroup = \"239.10.0.2\"",
            "kind = \"carrier-pigeon\"\npath = \"PCAP\"\ngroup = \"239.10.0.2\"",
        ))
        .unwrap_err(),
    );
    assert!(
        got[0].starts_with(
            "streams[1] (\"ch2\").source.kind: unknown variant: found `carrier-pigeon`"
        ),
        "{got:?}"
    );
    let got = keys(
        load_str(&GOOD.replace("group = \"239.10.0.1\"", "group = \"239.10.0.300\"")).unwrap_err(),
    );
    assert!(
        got[0].starts_with("streams[0] (\"ch1\").source.group"),
        "{got:?}"
    );
    let got = keys(load_str(&GOOD.replace("name = \"ch1\"", "name = \"../ch1\"")).unwrap_err());
    assert!(
        got[0].starts_with("streams[0] (\"../ch1\").name: must be"),
        "{got:?}"
    );
    let got = keys(
        load_str(&GOOD.replace(
            "segment_duration = \"4s\"",
            "segment_duration = \"4s\"\nport = 1",
        ))
        .unwrap_err(),
    );
    assert!(
        got[0].starts_with("defaults.port: not a stream default"),
        "{got:?}"
    );
}

#[test]
fn a_duration_too_large_to_multiply_is_a_problem_not_a_panic() {
    let got = keys(
        load_str(&GOOD.replace(
            "segment_duration = \"4s\"",
            "segment_duration = \"4000000000000000000s\"",
        ))
        .unwrap_err(),
    );
    assert_eq!(
        got,
        vec!["streams[0] (\"ch1\").segment_duration: must be between 500ms and 60s",]
    );
}

#[test]
fn serve_limits_have_defaults_and_are_checked() {
    let c = load_str(&format!("{GOOD}\n[serve]\n")).unwrap();
    assert_eq!(c.serve.unwrap().limits, HttpLimits::default());
    let c = load_str(&format!(
        "{GOOD}\n[serve]\nmax_connections = 50\nheader_timeout = \"2s\"\nrequest_timeout = \"1m\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.serve.unwrap().limits,
        HttpLimits {
            max_connections: 50,
            header_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(60),
        }
    );
    let e = load_str(&format!(
        "{GOOD}\n[serve]\nmax_connections = 0\nheader_timeout = \"0s\"\n"
    ))
    .unwrap_err();
    assert_eq!(
        keys(e),
        [
            "serve.max_connections: must be between 1 and 65536",
            "serve.header_timeout: must be more than 0s"
        ]
    );
}

#[test]
fn the_spool_is_on_by_default_in_the_state_dir_and_spool_dir_is_named_as_replaced() {
    let c = load_str(GOOD).unwrap();
    assert!(c.storage.spool);
    assert!(c.state_dir.ends_with("hlsvault"), "{:?}", c.state_dir);
    let c = load_str(&format!("state_dir = \"/srv/hv\"\n{GOOD}")).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/srv/hv"));
    assert_eq!(
        c.plugin_cache_location().map(|l| l.key),
        c.plugin_cache
            .as_ref()
            .map(|_| PathBuf::from("/srv/hv/plugin-cache.key"))
    );
    let old = GOOD.replacen(
        "root = \"archive\"",
        "root = \"archive\"\nspool_dir = \"/var/spool/hv\"",
        1,
    );
    assert_eq!(
        keys(load_str(&old).unwrap_err()),
        ["storage.spool_dir: replaced by state_dir (top level; the spool is in STATE_DIR/spool) and storage.spool = true|false"]
    );
}

#[test]
fn playouts_are_read_and_each_mistake_named() {
    let good = format!(
        "{GOOD}\n[[playouts]]\nname = \"tv1\"\nstream = \"ch2\"\nto = \"udp://239.20.0.1:5000?ttl=8&rtp\"\ndelay = \"3h\"\n"
    );
    let c = load_str(&good).unwrap();
    assert_eq!(c.playouts.len(), 1);
    assert_eq!(c.playouts[0].delay, Duration::from_secs(3 * 3600));
    assert!(c.playouts[0].to.rtp);
    let bad = format!(
        "{GOOD}
[[playouts]]
name = \"a\"
stream = \"ch9\"
to = \"udp://239.20.0.1:5000\"
delay = \"1h\"
[[playouts]]
name = \"b\"
stream = \"ch2\"
to = \"udp://239.20.0.2:5000\"
delay = \"10s\"
[[playouts]]
name = \"c\"
stream = \"ch1\"
to = \"udp://239.20.0.3:5000?ttl=999\"
delay = \"1h\"
[[playouts]]
name = \"d\"
stream = \"ch1\"
to = \"udp://239.20.0.4:5000\"
delay = \"1h\"
[[playouts]]
name = \"d\"
stream = \"ch1\"
to = \"udp://239.20.0.4:5000\"
delay = \"2h\"
"
    );
    let problems = keys(load_str(&bad).unwrap_err());
    assert_eq!(
        problems,
        [
            "playouts[0] (\"a\").stream: no [[streams]] table is named \"ch9\"",
            "playouts[1] (\"b\").delay: must be at least two of the stream's segments (12s): a segment is stored when it ends",
            "playouts[2] (\"c\").to: ttl=999: a TTL is 1 to 255",
            "playouts[4] (\"d\").name: duplicate playout name \"d\"",
            "playouts[4] (\"d\").to: playout \"d\" already sends to 239.20.0.4:5000",
        ],
        "{problems:#?}"
    );
}

#[test]
fn size_caps_are_read_per_stream_by_default_and_for_the_whole_archive() {
    let c = load_str(
        &GOOD
            .replace(
                "root = \"archive\"",
                "root = \"archive\"\nretention_size = \"20TB\"",
            )
            .replace(
                "segment_duration = \"4s\"",
                "segment_duration = \"4s\"\nretention_size = \"2TiB\"",
            )
            .replace(
                "live_window = 5",
                "live_window = 5\nretention_size = \"500MB\"",
            ),
    )
    .unwrap();
    assert_eq!(c.storage.retention_size, Some(20_000_000_000_000));
    assert_eq!(c.streams[0].retention_size, Some(500_000_000));
    assert_eq!(
        c.streams[1].retention_size,
        Some(2 << 40),
        "from [defaults]"
    );
    let got = keys(
        load_str(
            &GOOD
                .replace(
                    "root = \"archive\"",
                    "root = \"archive\"\nretention_size = \"0\"",
                )
                .replace(
                    "live_window = 5",
                    "live_window = 5\nretention_size = \"lots\"",
                ),
        )
        .unwrap_err(),
    );
    assert!(
        got.iter()
            .any(|k| k.starts_with("storage.retention_size: must be more than 0")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|k| k.starts_with("streams[0] (\"ch1\").retention_size: \"lots\" is not a size")),
        "{got:?}"
    );
}

#[test]
fn a_cluster_table_names_the_node_and_its_defaults_fit_a_two_second_election() {
    let c = load_str(&format!(
        "{GOOD}\n[cluster]\netcd = [\"http://127.0.0.1:2379\", \"http://10.0.0.2:2379\"]\nnode = \"rec-a\"\n"
    ))
    .unwrap();
    let cluster = c.cluster.unwrap();
    assert_eq!(cluster.node, "rec-a");
    assert_eq!(cluster.redundancy, 1);
    assert_eq!(cluster.lease, Duration::from_secs(4));
    assert_eq!(cluster.etcd.len(), 2);
    assert!(
        c.streams.iter().all(|s| s.aligned_cuts),
        "a cluster's recorders cut alike"
    );
    // Without node, the host's name.
    let c = load_str(&format!(
        "{GOOD}\n[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n"
    ))
    .unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(c.cluster.unwrap().node, host.trim());
    assert!(load_str(GOOD).unwrap().cluster.is_none(), "one process");
}

#[test]
fn cluster_mistakes_are_named_by_key() {
    let pinned = GOOD.replace("live_window = 5", "live_window = 5\nnodes = [\"rec-a\"]");
    let got = keys(load_str(&pinned).unwrap_err());
    assert_eq!(
        got,
        ["streams[0] (\"ch1\").nodes: pins the stream to nodes of a cluster, but there is no [cluster] table"]
    );
    let got = keys(
        load_str(&format!(
            "{pinned}\n[cluster]\netcd = []\nnode = \"rec a\"\nredundancy = 3\nlease = \"1s\"\n"
        ))
        .unwrap_err(),
    );
    assert_eq!(
        got,
        [
            "cluster.etcd: needs at least one endpoint, e.g. [\"http://127.0.0.1:2379\"]",
            "cluster.redundancy: must be 1 (an owner) or 2 (an owner and a standby)",
            "cluster.lease: must be at least 2s: a shorter lease does not survive an election of etcd's leader",
            "cluster.node: \"rec a\" is not a node name (letters, digits, '-', '_' and '.', at most 64)",
        ],
        "{got:#?}"
    );
    let got = keys(
        load_str(&format!(
            "{pinned}\n[cluster]\netcd = [\"http://127.0.0.1:2379\", \"nowhere\"]\nredundancy = 2\nsurprise = 1\n"
        ))
        .unwrap_err(),
    );
    assert!(
        got.iter()
            .any(|k| k.starts_with("cluster.surprise: unknown field")),
        "{got:#?}"
    );
    let got = keys(
        load_str(&format!(
            "{pinned}\n[cluster]\netcd = [\"http://127.0.0.1:2379\", \"nowhere\", \"https://etcd.example:2379\", \"etcd.example:2379\"]\nredundancy = 2\n"
        ))
        .unwrap_err(),
    );
    assert_eq!(
        got,
        [
            "streams[0] (\"ch1\").nodes: redundancy 2 needs at least two nodes to place an owner and a standby on",
            "cluster.etcd: \"nowhere\" is not an endpoint (http://HOST:PORT; TLS is not built in)",
            "cluster.etcd: \"https://etcd.example:2379\" is not an endpoint (http://HOST:PORT; TLS is not built in)",
        ],
        "{got:#?}"
    );
}
