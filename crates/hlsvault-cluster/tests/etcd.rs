//! Membership and ownership against a real three-member etcd cluster
//! (Debian's `etcd-server`, started on loopback by the test).

use std::time::{Duration, Instant};

use hlsvault_cluster::{
    connect, drain, members, place, progress, Claimed, ClusterError, ClusterSettings, Keys,
    Membership,
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
    let reader = connect(&settings("x", &etcd.endpoints[2..3]))
        .await
        .unwrap();
    assert_eq!(
        names(&members(&reader, &keys).await.unwrap()),
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
    drain(&reader, &keys, "rec-b", false).await.unwrap();
    let seen = members(&reader, &keys).await.unwrap();
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
    drain(&reader, &keys, "rec-b", true).await.unwrap();

    // Leaving takes the member key at once.
    b.leave().await.unwrap();
    assert_eq!(
        names(&members(&reader, &keys).await.unwrap()),
        [("rec-a", false)]
    );
    assert!(a.alive(), "renewed past its first TTL");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.alive(), "renewed past its first TTL");
    assert_eq!(
        names(&members(&reader, &keys).await.unwrap()),
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
    let reader = connect(&settings("x", &etcd.endpoints[1..3]))
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
            if let Ok(m) = members(&reader, &keys).await {
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

/// Two members, rec-a and rec-b; rec-a's claim on ch1.
async fn rec_a_owns_ch1_beside_rec_b(
    etcd: &EtcdCluster,
    keys: &Keys,
) -> (Membership, Membership, hlsvault_cluster::Claim) {
    let a = Membership::join(&settings("rec-a", &etcd.endpoints), keys)
        .await
        .unwrap();
    let b = Membership::join(&settings("rec-b", &etcd.endpoints), keys)
        .await
        .unwrap();
    let Claimed::Held(claim) = a.claim(keys, "ch1").await.unwrap() else {
        panic!("the first claim holds");
    };
    (a, b, claim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owner_at_a_time_and_an_old_claim_never_commits() {
    let (etcd, keys) = (EtcdCluster::start(3).unwrap(), Keys::default());
    let (a, b, claim) = rec_a_owns_ch1_beside_rec_b(&etcd, &keys).await;
    assert_eq!(
        b.claim(&keys, "ch1").await.unwrap(),
        Claimed::Taken { by: "rec-a".into() }
    );
    a.commit(&claim, "seq 41").await.unwrap();
    a.commit(&claim, "seq 42").await.unwrap();
    let reader = connect(&settings("x", &etcd.endpoints)).await.unwrap();
    assert_eq!(
        progress(&reader, &keys, "ch1").await.unwrap().as_deref(),
        Some("seq 42")
    );

    // Handed over: the new owner's token is another, and the old claim's
    // commits are refused, naming the new owner; the progress is the new
    // owner's.
    a.release(claim.clone()).await.unwrap();
    let Claimed::Held(taken) = b.claim(&keys, "ch1").await.unwrap() else {
        panic!("free again");
    };
    assert_ne!(taken.token(), claim.token());
    let refused = a.commit(&claim, "seq 43 (zombie)").await.unwrap_err();
    assert!(
        matches!(&refused, ClusterError::Fenced { holder: Some(h), .. } if h == "rec-b"),
        "{refused}"
    );
    b.commit(&taken, "seq 43").await.unwrap();
    assert_eq!(
        progress(&reader, &keys, "ch1").await.unwrap().as_deref(),
        Some("seq 43")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_lease_is_gone_at_etcd_is_fenced_though_it_still_believes() {
    let (etcd, keys) = (EtcdCluster::start(3).unwrap(), Keys::default());
    let (a, b, claim) = rec_a_owns_ch1_beside_rec_b(&etcd, &keys).await;
    // What an expiry does, at once: the lease and every key bound to it go.
    let admin = connect(&settings("x", &etcd.endpoints)).await.unwrap();
    let lease = a.lease();
    admin
        .call(|mut c| async move { c.lease_revoke(lease).await })
        .await
        .unwrap();
    let Claimed::Held(_) = b.claim(&keys, "ch1").await.unwrap() else {
        panic!("free once rec-a's lease is gone");
    };
    // rec-a's own deadline has not passed, but etcd refuses the commit.
    assert!(a.alive(), "rec-a does not know yet");
    let refused = a.commit(&claim, "seq 9 (zombie)").await.unwrap_err();
    assert!(
        matches!(&refused, ClusterError::Fenced { holder: Some(h), .. } if h == "rec-b"),
        "{refused}"
    );
    assert_eq!(progress(&admin, &keys, "ch1").await.unwrap(), None);
    // Its next renewal tells it the lease is gone: it is out, for good.
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while a.alive_until().is_some() {
        assert!(std::time::Instant::now() < until, "rec-a never learns");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.alive());
}
