//! The cluster as every node reads it from etcd: its live members and the
//! operator's drains, who owns each stream and who could take it over.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{GetOptions, Txn, TxnOp, TxnOpResponse};

use crate::{ClusterError, Etcd, Keys, Member};

/// The cluster at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Live members, sorted by name, each marked if it is drained.
    pub members: Vec<Member>,
    /// Stream -> the node that owns it.
    pub owners: BTreeMap<String, String>,
    /// (stream, node): the node records the stream and could take it over.
    pub ready: BTreeSet<(String, String)>,
}

/// Reads the whole [`View`] in one transaction (one round trip, one
/// revision).
pub async fn view(etcd: &Etcd, keys: &Keys) -> Result<View, ClusterError> {
    let folder = |kind: &str, values: bool| {
        let options = GetOptions::new().with_prefix();
        let options = match values {
            true => options,
            false => options.with_keys_only(),
        };
        TxnOp::get(keys.folder(kind), Some(options))
    };
    let txn = Txn::new().and_then([
        folder("members", false),
        folder("drain", false),
        folder("owners", true),
        folder("ready", false),
    ]);
    let answer = etcd
        .call(|mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await?;
    let mut gets = answer.op_responses().into_iter().map(|r| match r {
        TxnOpResponse::Get(get) => get.kvs().to_vec(),
        _ => Vec::new(),
    });
    let (live, drained, owners, ready) = (
        gets.next().unwrap_or_default(),
        gets.next().unwrap_or_default(),
        gets.next().unwrap_or_default(),
        gets.next().unwrap_or_default(),
    );
    let named = |kind: &str, kvs: &[etcd_client::KeyValue]| -> Vec<String> {
        kvs.iter()
            .filter_map(|kv| kv.key_str().ok())
            .filter_map(|k| keys.node_of(k, kind).map(str::to_string))
            .collect()
    };
    Ok(View {
        members: marked(named("members", &live), &named("drain", &drained)),
        owners: owners
            .iter()
            .filter_map(|kv| {
                let stream = keys.node_of(kv.key_str().ok()?, "owners")?;
                Some((stream.to_string(), kv.value_str().ok()?.to_string()))
            })
            .collect(),
        ready: ready
            .iter()
            .filter_map(|kv| keys.ready_of(kv.key_str().ok()?))
            .map(|(s, n)| (s.to_string(), n.to_string()))
            .collect(),
    })
}

/// Live members sorted by name, each marked if it is `drained`.
fn marked(live: Vec<String>, drained: &[String]) -> Vec<Member> {
    let mut members: Vec<Member> = live
        .into_iter()
        .map(|name| Member {
            draining: drained.contains(&name),
            name,
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    members
}

/// The live members, sorted by name, each marked if it is drained.
pub async fn members(etcd: &Etcd, keys: &Keys) -> Result<Vec<Member>, ClusterError> {
    Ok(view(etcd, keys).await?.members)
}

/// Drains `node` (its streams move to the others), or with `undo` gives
/// it streams again.
pub async fn drain(etcd: &Etcd, keys: &Keys, node: &str, undo: bool) -> Result<(), ClusterError> {
    let key = keys.drain(node);
    etcd.call(|mut c| {
        let key = key.clone();
        async move {
            match undo {
                true => c.delete(key, None).await.map(drop),
                false => c.put(key, "drained", None).await.map(drop),
            }
        }
    })
    .await?;
    Ok(())
}
