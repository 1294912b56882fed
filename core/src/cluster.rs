//! `hlsvault cluster`: the cluster as etcd holds it (its members, and
//! where each stream of the config is placed), and drains.

use hlsvault_cluster::{connect, drain as put_drain, members, place, ClusterSettings, Keys};

use crate::config::StreamConfig;

/// The members, then each of `streams`' owner and standby, as a table.
pub async fn status(
    settings: &ClusterSettings,
    streams: &[StreamConfig],
) -> anyhow::Result<String> {
    let keys = Keys::default();
    let mut client = connect(settings).await?;
    let live = members(&mut client, &keys).await?;
    let mut out = format!("{:<24} STATE\n", "MEMBER");
    for m in &live {
        let state = if m.draining { "drained" } else { "live" };
        out.push_str(&format!("{:<24} {state}\n", m.name));
    }
    if live.is_empty() {
        out.push_str("(none: no node is running)\n");
    }
    out.push_str(&format!("\n{:<24} {:<24} STANDBY\n", "STREAM", "OWNER"));
    for s in streams {
        let pins = (!s.nodes.is_empty()).then_some(s.nodes.as_slice());
        let placed = place(&s.name, &live, pins, settings.redundancy);
        out.push_str(&format!(
            "{:<24} {:<24} {}\n",
            s.name,
            placed.owner.as_deref().unwrap_or("-"),
            placed.standby.as_deref().unwrap_or("-"),
        ));
    }
    Ok(out)
}

/// Drains `node`, or with `undo` gives it streams again; says so, and
/// whether the node is live now (a drain waits for a node that is not).
pub async fn drain(settings: &ClusterSettings, node: &str, undo: bool) -> anyhow::Result<String> {
    let keys = Keys::default();
    let mut client = connect(settings).await?;
    put_drain(&mut client, &keys, node, undo).await?;
    let live = members(&mut client, &keys).await?;
    let done = if undo {
        "takes streams again"
    } else {
        "drained"
    };
    Ok(match live.iter().any(|m| m.name == node) {
        true => format!("{node}: {done}"),
        false => {
            format!("{node}: {done} (it is not a live member now: this applies when it joins)")
        }
    })
}
