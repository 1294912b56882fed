//! Rendezvous (highest random weight) placement: each stream ranks every
//! member by a hash of the pair, and takes the first as its owner and the
//! second as its standby. A member that leaves moves only its own streams;
//! one that joins takes about 1/N of them. The hash is SHA-256, so that
//! nodes built by different compilers agree (std's hasher may change).

use sha2::{Digest, Sha256};

/// A live member of the cluster, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node's name (`[cluster] node`).
    pub name: String,
    /// An operator drained it: it keeps no stream, unless no other node
    /// can take it.
    pub draining: bool,
}

impl Member {
    /// A live member that is not draining.
    pub fn new(name: &str) -> Self {
        Member {
            name: name.to_string(),
            draining: false,
        }
    }
}

/// Where a stream is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// The node that records and publishes it; None when no member can.
    pub owner: Option<String>,
    /// The node that follows it, ready to take over (redundancy 2).
    pub standby: Option<String>,
}

/// The weight of `node` for `stream`: the first 8 bytes of
/// SHA-256(stream, 0, node).
fn weight(stream: &str, node: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(stream.as_bytes());
    h.update([0]);
    h.update(node.as_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Where `stream` goes among `members`: its owner and, with `redundancy`
/// 2, its standby, on another node. With `pins`, only those nodes are
/// considered. Draining members come last: they are chosen only when no
/// other can be.
pub fn place(
    stream: &str,
    members: &[Member],
    pins: Option<&[String]>,
    redundancy: u8,
) -> Placement {
    let mut ranked: Vec<(bool, u64, &str)> = members
        .iter()
        .filter(|m| pins.is_none_or(|p| p.contains(&m.name)))
        .map(|m| {
            (
                m.draining,
                u64::MAX - weight(stream, &m.name),
                m.name.as_str(),
            )
        })
        .collect();
    // Not draining first, then the highest weight; the name breaks ties.
    ranked.sort_unstable();
    ranked.dedup_by(|a, b| a.2 == b.2);
    let mut names = ranked.into_iter().map(|(_, _, n)| n.to_string());
    let owner = names.next();
    let standby = match redundancy {
        2.. => names.next(),
        _ => None,
    };
    Placement { owner, standby }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn members(names: &[&str]) -> Vec<Member> {
        names.iter().map(|n| Member::new(n)).collect()
    }

    fn streams(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ch{i}")).collect()
    }

    #[test]
    fn the_weight_is_the_same_on_every_build() {
        // Pinned (`printf 'ch1\\0rec-a' | sha256sum`): a change here would
        // move streams between nodes that run different versions.
        assert_eq!(weight("ch1", "rec-a"), 0x07b2_e281_0ca0_9137);
    }

    #[test]
    fn owner_and_standby_are_different_nodes_and_the_order_of_members_does_not_matter() {
        let abc = members(&["rec-a", "rec-b", "rec-c"]);
        let cba = members(&["rec-c", "rec-b", "rec-a"]);
        for s in streams(100) {
            let p = place(&s, &abc, None, 2);
            assert_ne!(p.owner, p.standby);
            assert!(p.owner.is_some() && p.standby.is_some());
            assert_eq!(p, place(&s, &cba, None, 2));
            assert_eq!(place(&s, &abc, None, 1).standby, None);
        }
    }

    #[test]
    fn streams_spread_evenly_over_the_members() {
        let abc = members(&["rec-a", "rec-b", "rec-c"]);
        let mut owned: HashMap<String, usize> = HashMap::new();
        for s in streams(3000) {
            *owned
                .entry(place(&s, &abc, None, 1).owner.unwrap())
                .or_default() += 1;
        }
        for (node, n) in &owned {
            assert!((900..=1100).contains(n), "{node} owns {n} of 3000");
        }
    }

    #[test]
    fn a_member_that_leaves_moves_only_its_own_streams() {
        let abc = members(&["rec-a", "rec-b", "rec-c"]);
        let ab = members(&["rec-a", "rec-b"]);
        for s in streams(500) {
            let before = place(&s, &abc, None, 2);
            let after = place(&s, &ab, None, 2);
            if before.owner.as_deref() != Some("rec-c") {
                assert_eq!(before.owner, after.owner, "{s}");
            } else {
                // Its standby takes it over: it has the stream buffered.
                assert_eq!(after.owner, before.standby, "{s}");
            }
        }
    }

    #[test]
    fn pins_and_drains_are_honoured() {
        let mut abc = members(&["rec-a", "rec-b", "rec-c"]);
        let pins = vec!["rec-b".to_string(), "rec-c".to_string()];
        for s in streams(100) {
            let p = place(&s, &abc, Some(&pins), 2);
            assert!(pins.contains(p.owner.as_ref().unwrap()));
            assert!(pins.contains(p.standby.as_ref().unwrap()));
        }
        abc[0].draining = true;
        for s in streams(100) {
            let p = place(&s, &abc, None, 2);
            assert_ne!(p.owner.as_deref(), Some("rec-a"), "{s}");
            assert_ne!(p.standby.as_deref(), Some("rec-a"), "{s}");
        }
        // A drained node still records a stream no other node may.
        let only_a = vec!["rec-a".to_string()];
        let p = place("ch1", &abc, Some(&only_a), 2);
        assert_eq!(p.owner.as_deref(), Some("rec-a"));
        assert_eq!(p.standby, None);
        assert_eq!(place("ch1", &[], None, 2), Placement::default());
    }
}
