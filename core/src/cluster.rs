//! `hlsvault cluster`: the cluster as etcd holds it (its members, and
//! where each stream of the config is placed), and drains.

use hlsvault_cluster::{
    connect, drain as put_drain, members, place, progress, view, ClusterSettings, Keys,
};

use std::time::SystemTime;

use crate::config::StreamConfig;
use crate::engine::Committed;

/// The members, then each of `streams`' place: the owner and standby the
/// placement gives it, the node that publishes it now (etcd's owner key)
/// and how far its last committed segment's end is behind the clock.
pub async fn status(
    settings: &ClusterSettings,
    streams: &[StreamConfig],
) -> anyhow::Result<String> {
    let keys = Keys::default();
    let client = connect(settings).await?;
    let now = view(&client, &keys).await?;
    let mut out = format!("{:<24} STATE\n", "MEMBER");
    for m in &now.members {
        let state = if m.draining { "drained" } else { "live" };
        out.push_str(&format!("{:<24} {state}\n", m.name));
    }
    if now.members.is_empty() {
        out.push_str("(none: no node is running)\n");
    }
    out.push_str(&format!(
        "\n{:<24} {:<16} {:<16} {:<16} LAG\n",
        "STREAM", "OWNER", "STANDBY", "PUBLISHED BY"
    ));
    for s in streams {
        let pins = (!s.nodes.is_empty()).then_some(s.nodes.as_slice());
        let placed = place(&s.name, &now.members, pins, settings.redundancy);
        let lag = match progress(&client, &keys, &s.name).await? {
            Some(text) => lag(&text),
            None => "-".to_string(),
        };
        out.push_str(&format!(
            "{:<24} {:<16} {:<16} {:<16} {lag}\n",
            s.name,
            placed.owner.as_deref().unwrap_or("-"),
            placed.standby.as_deref().unwrap_or("-"),
            now.owners.get(&s.name).map_or("-", String::as_str),
        ));
    }
    Ok(out)
}

/// How far the end of the committed segment `text` (its JSON) is behind
/// this machine's clock.
fn lag(text: &str) -> String {
    let Ok(committed) = serde_json::from_str::<Committed>(text) else {
        return "?".to_string();
    };
    match SystemTime::now().duration_since(committed.ends_at()) {
        Ok(behind) => format!("{:.1}s", behind.as_secs_f64()),
        Err(_) => "0s".to_string(),
    }
}

/// Drains `node`, or with `undo` gives it streams again; says so, and
/// whether the node is live now (a drain waits for a node that is not).
pub async fn drain(settings: &ClusterSettings, node: &str, undo: bool) -> anyhow::Result<String> {
    let keys = Keys::default();
    let client = connect(settings).await?;
    put_drain(&client, &keys, node, undo).await?;
    let live = members(&client, &keys).await?;
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
