//! What the cluster layer needs to know (the config's `[cluster]` table
//! converts into it).

use std::time::Duration;

/// How this node takes part in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// etcd's client endpoints (`http://127.0.0.1:2379`).
    pub etcd: Vec<String>,
    /// This node's name: unique among live members.
    pub node: String,
    /// 1: an owner per stream; 2: an owner and a standby on another node.
    pub redundancy: u8,
    /// The membership lease's time to live: a node that stops renewing it
    /// is gone after this long, and its streams move.
    pub lease: Duration,
}

impl ClusterSettings {
    /// The lease's TTL in whole seconds, as etcd takes it (at least 2: a
    /// shorter one does not survive an etcd election).
    pub fn lease_seconds(&self) -> i64 {
        self.lease.as_secs().max(2) as i64
    }
}
