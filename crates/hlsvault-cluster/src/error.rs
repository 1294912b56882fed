//! Why the cluster cannot be used.

/// A cluster failure; each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No etcd endpoint answers.
    #[error("cannot reach etcd at {endpoints}: {source}")]
    Connect {
        endpoints: String,
        source: etcd_client::Error,
    },
    /// A request failed.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// A live member already has this node's name.
    #[error("a live member is already called {node:?}: give each node its own [cluster] node")]
    NameTaken { node: String },
    /// This node no longer owns the stream: nothing was committed.
    #[error("{stream}: no longer this node's (owner now: {}): not committed", .holder.as_deref().unwrap_or("none, or unknown"))]
    Fenced {
        stream: String,
        holder: Option<String>,
    },
}
