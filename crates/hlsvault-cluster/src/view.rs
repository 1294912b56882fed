//! The cluster as every node reads it from etcd: its live members and the
//! operator's drains.

use etcd_client::{Client, GetOptions};

use crate::{ClusterError, Keys, Member};

/// The live members, sorted by name, each marked if it is drained.
pub async fn members(client: &mut Client, keys: &Keys) -> Result<Vec<Member>, ClusterError> {
    let names = |kind: &str, kvs: &[etcd_client::KeyValue]| -> Vec<String> {
        kvs.iter()
            .filter_map(|kv| kv.key_str().ok())
            .filter_map(|k| keys.node_of(k, kind).map(str::to_string))
            .collect()
    };
    let prefix = || Some(GetOptions::new().with_prefix().with_keys_only());
    let live = client.get(keys.folder("members"), prefix()).await?;
    let drained = client.get(keys.folder("drain"), prefix()).await?;
    let drained = names("drain", drained.kvs());
    let mut members: Vec<Member> = names("members", live.kvs())
        .into_iter()
        .map(|name| Member {
            draining: drained.contains(&name),
            name,
        })
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

/// Drains `node` (its streams move to the others), or with `undo` gives
/// it streams again.
pub async fn drain(
    client: &mut Client,
    keys: &Keys,
    node: &str,
    undo: bool,
) -> Result<(), ClusterError> {
    match undo {
        true => drop(client.delete(keys.drain(node), None).await?),
        false => drop(client.put(keys.drain(node), "drained", None).await?),
    }
    Ok(())
}
