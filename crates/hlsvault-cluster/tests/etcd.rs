//! Membership against a real three-member etcd cluster (Debian's
//! `etcd-server`, started on loopback by the test).

use std::time::{Duration, Instant};

use hlsvault_cluster::{
    connect, drain, members, place, ClusterError, ClusterSettings, Keys, Membership,
};
use hlsvault_testkit::etcd::EtcdCluster;

fn settings(node: &str, etcd: &[String]) -> ClusterSettings {
    ClusterSettings {
        etcd: etcd.to_vec(),
        node: node.to_string(),
        redundancy: 2,
        lease: Duration::from_secs(2),
    }
}

fn names(members: &[hlsvault_cluster::Member]) -> Vec<(&str, bool)> {
    members
        .iter()
        .map(|m| (m.name.as_str(), m.draining))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_drain_and_leave_and_every_node_reads_the_same_members() {
    let etcd = EtcdCluster::start(3).unwrap();
    let keys = Keys::default();
    // Each node talks to another member of the etcd cluster.
    let a = Membership::join(&settings("rec-a", &etcd.endpoints[0..1]), &keys)
        .await
        .unwrap();
    let b = Membership::join(&settings("rec-b", &etcd.endpoints[1..2]), &keys)
        .await
        .unwrap();
    assert!(a.alive() && b.alive());
    let mut reader = connect(&settings("x", &etcd.endpoints[2..3]))
        .await
        .unwrap();
    assert_eq!(
        names(&members(&mut reader, &keys).await.unwrap()),
        [("rec-a", false), ("rec-b", false)]
    );

    // A second rec-a is refused while the first lives.
    let again = Membership::join(&settings("rec-a", &etcd.endpoints), &keys).await;
    assert!(
        matches!(again, Err(ClusterError::NameTaken { .. })),
        "{:?}",
        again.err()
    );

    // Drained, rec-b keeps no stream while rec-a can take it.
    drain(&mut reader, &keys, "rec-b", false).await.unwrap();
    let seen = members(&mut reader, &keys).await.unwrap();
    assert_eq!(names(&seen), [("rec-a", false), ("rec-b", true)]);
    for i in 0..50 {
        let placed = place(&format!("ch{i}"), &seen, None, 2);
        assert_eq!(placed.owner.as_deref(), Some("rec-a"));
        assert_eq!(
            placed.standby.as_deref(),
            Some("rec-b"),
            "the only other node"
        );
    }
    drain(&mut reader, &keys, "rec-b", true).await.unwrap();

    // Leaving takes the member key at once.
    b.leave().await.unwrap();
    assert_eq!(
        names(&members(&mut reader, &keys).await.unwrap()),
        [("rec-a", false)]
    );
    assert!(a.alive(), "renewed past its first TTL");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.alive(), "renewed past its first TTL");
    assert_eq!(
        names(&members(&mut reader, &keys).await.unwrap()),
        [("rec-a", false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_etcd_knows_it_is_out_before_etcd_drops_it() {
    let mut etcd = EtcdCluster::start(3).unwrap();
    let keys = Keys::default();
    // rec-a reaches etcd only through member 0.
    let a = Membership::join(&settings("rec-a", &etcd.endpoints[0..1]), &keys)
        .await
        .unwrap();
    let mut reader = connect(&settings("x", &etcd.endpoints[1..3]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    etcd.kill(0);
    // When rec-a stops counting on its lease, and when the others see it
    // gone: in that order, whatever the delays.
    let (mut out_at, mut gone_at) = (None, None);
    let until = Instant::now() + Duration::from_secs(30);
    while (out_at.is_none() || gone_at.is_none()) && Instant::now() < until {
        if out_at.is_none() && !a.alive() {
            out_at = Some(Instant::now());
        }
        if gone_at.is_none() {
            if let Ok(m) = members(&mut reader, &keys).await {
                if m.is_empty() {
                    gone_at = Some(Instant::now());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (out_at, gone_at) = (
        out_at.expect("rec-a knows it is out"),
        gone_at.expect("etcd dropped rec-a"),
    );
    assert!(
        out_at < gone_at,
        "rec-a counted on its lease after etcd dropped it"
    );
}
