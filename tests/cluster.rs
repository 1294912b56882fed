//! Several machines, one archive: `hlsvault cluster` against a real
//! three-member etcd cluster (Debian's `etcd-server`, started on loopback
//! by the test), with nodes joined through `hlsvault-cluster`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use hlsvault_cluster::{ClusterSettings, Keys, Membership};
use hlsvault_testkit::etcd::EtcdCluster;
use hlsvault_testkit::output_shown;

fn hlsvault(args: &[&str]) -> Output {
    output_shown(Command::new(env!("CARGO_BIN_EXE_hlsvault")).args(args))
}

/// A config of six streams (ch5 pinned to rec-b and rec-c) in a cluster of
/// `etcd`, with redundancy 2.
fn config(dir: &Path, etcd: &[String]) -> std::path::PathBuf {
    let pcap = hlsvault_testkit::capture(dir, "a", 1.0, SystemTime::now()).unwrap();
    let endpoints: Vec<String> = etcd.iter().map(|e| format!("\"{e}\"")).collect();
    let mut text = format!(
        "[storage]\nroot = \"{}\"\n\n[cluster]\netcd = [{}]\nnode = \"rec-a\"\nredundancy = 2\nlease = \"2s\"\n",
        dir.join("archive").display(),
        endpoints.join(", ")
    );
    for i in 0..6 {
        let pins = if i == 5 {
            "nodes = [\"rec-b\", \"rec-c\"]\n"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n[[streams]]\nname = \"ch{i}\"\n{pins}[streams.source]\nkind = \"pcap-file\"\npath = \"{}\"\ngroup = \"239.1.1.{i}\"\nport = 5000\n",
            pcap.display()
        ));
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn join(node: &str, etcd: &[String]) -> Membership {
    let settings = ClusterSettings {
        etcd: etcd.to_vec(),
        node: node.to_string(),
        redundancy: 2,
        lease: Duration::from_secs(2),
    };
    Membership::join(&settings, &Keys::default()).await.unwrap()
}

/// `cluster status`: (member, state) rows and (stream, owner, standby) rows.
type Status = (Vec<(String, String)>, Vec<(String, String, String)>);

fn status(config: &Path) -> Status {
    let out = hlsvault(&["cluster", "status", "--config", config.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (members, streams) = text.split_once("\n\n").unwrap();
    let rows = |block: &str| -> Vec<Vec<String>> {
        block
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    (
        rows(members)
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect(),
        rows(streams)
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_places_every_stream_on_live_members_and_a_drain_moves_them_off() {
    let etcd = EtcdCluster::start(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &etcd.endpoints);
    let members = [
        join("rec-a", &etcd.endpoints[0..1]).await,
        join("rec-b", &etcd.endpoints[1..2]).await,
        join("rec-c", &etcd.endpoints[2..3]).await,
    ];
    let (live, placed) = status(&config);
    let live_rows = |names: &[&str], drained: &str| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| {
                let state = if *n == drained { "drained" } else { "live" };
                (n.to_string(), state.to_string())
            })
            .collect()
    };
    assert_eq!(live, live_rows(&["rec-a", "rec-b", "rec-c"], ""));
    assert_eq!(placed.len(), 6);
    for (stream, owner, standby) in &placed {
        assert_ne!(owner, standby, "{stream}");
        for node in [owner, standby] {
            assert!(live.iter().any(|(m, _)| m == node), "{stream}: {node}");
        }
    }
    let ch5 = &placed[5];
    assert!(
        ch5.1 != "rec-a" && ch5.2 != "rec-a",
        "ch5 is pinned: {ch5:?}"
    );

    // Drained, rec-a records nothing and stands by for nothing.
    let drain = |node: &str, undo: bool| -> String {
        let mut args = vec![
            "cluster",
            "drain",
            "--config",
            config.to_str().unwrap(),
            node,
        ];
        if undo {
            args.push("--undo");
        }
        let out = hlsvault(&args);
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(drain("rec-a", false), "rec-a: drained\n");
    let (live, placed) = status(&config);
    assert_eq!(live, live_rows(&["rec-a", "rec-b", "rec-c"], "rec-a"));
    assert!(
        placed.iter().all(|p| p.1 != "rec-a" && p.2 != "rec-a"),
        "{placed:?}"
    );
    assert_eq!(drain("rec-a", true), "rec-a: takes streams again\n");
    assert_eq!(
        drain("rec-x", false),
        "rec-x: drained (it is not a live member now: this applies when it joins)\n"
    );
    drain("rec-x", true);

    // A member that leaves is gone from the view, and its streams with it.
    let [a, b, c] = members;
    c.leave().await.unwrap();
    let (live, placed) = status(&config);
    assert_eq!(live, live_rows(&["rec-a", "rec-b"], ""));
    assert!(
        placed.iter().all(|p| p.1 != "rec-c" && p.2 != "rec-c"),
        "{placed:?}"
    );
    assert_eq!(placed[5].1, "rec-b", "pinned to rec-b and rec-c");
    assert_eq!(placed[5].2, "-", "no standby left for ch5");
    drop((a, b));
}

#[test]
fn run_and_status_name_an_unreachable_etcd_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there.
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let config = config(dir.path(), std::slice::from_ref(&nowhere));
    let config = config.to_str().unwrap();
    for command in ["run", "cluster status"] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--config", config]);
        let out = hlsvault(&args);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot reach etcd at {nowhere}")),
            "{command}: {err}"
        );
    }
    let archive = dir.path().join("archive");
    let stored = std::fs::read_dir(&archive).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "nothing recorded in {}", archive.display());
}
