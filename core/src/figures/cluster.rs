//! A cluster's figures: each stream's part on this node (owner or
//! standby, takeovers, fencing rejections, the standby's buffer) and the
//! node's own (joins, lease renewals, reads of the cluster).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::time::Duration;

/// A stream's part on this node of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not in a cluster (or not placed here).
    Alone = 0,
    /// Records the stream, ready to take it over.
    Standby = 1,
    /// Records and publishes it.
    Owner = 2,
}

impl Role {
    /// Its name in metrics and on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Alone => "alone",
            Role::Standby => "standby",
            Role::Owner => "owner",
        }
    }
}

/// What a stream's cluster duty counted on this node.
#[derive(Debug, Default)]
pub struct ClusterFigures {
    role: AtomicU8,
    takeovers: AtomicU64,
    fenced: AtomicU64,
    buffered: AtomicU64,
}

impl ClusterFigures {
    /// The stream's role here now.
    pub fn role(&self) -> Role {
        match self.role.load(Relaxed) {
            1 => Role::Standby,
            2 => Role::Owner,
            _ => Role::Alone,
        }
    }

    /// Sets the stream's role here.
    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Relaxed);
    }

    /// Times this node took the stream over.
    pub fn takeovers(&self) -> u64 {
        self.takeovers.load(Relaxed)
    }

    /// Counts a takeover.
    pub fn took_over(&self) {
        self.takeovers.fetch_add(1, Relaxed);
    }

    /// Times this node stopped publishing because its claim or lease could
    /// no longer be trusted (a commit fenced off, a lease past its
    /// deadline).
    pub fn fencing_rejections(&self) -> u64 {
        self.fenced.load(Relaxed)
    }

    /// Counts a fencing rejection.
    pub fn fenced(&self) {
        self.fenced.fetch_add(1, Relaxed);
    }

    /// Segments held, not published (a standby's buffer).
    pub fn buffered(&self) -> u64 {
        self.buffered.load(Relaxed)
    }

    /// Sets the buffer's depth.
    pub fn set_buffered(&self, n: usize) {
        self.buffered.store(n as u64, Relaxed);
    }
}

/// This node of a cluster.
#[derive(Debug, Default)]
pub struct NodeFigures {
    joins: AtomicU64,
    view_errors: AtomicU64,
    /// The last lease renewal's round trip, in µs (0: none yet).
    renew_micros: AtomicU64,
}

impl NodeFigures {
    /// Times the node joined (again, after etcd let its lease lapse).
    pub fn joins(&self) -> u64 {
        self.joins.load(Relaxed)
    }

    /// Counts a join.
    pub fn joined(&self) {
        self.joins.fetch_add(1, Relaxed);
    }

    /// Reads of the cluster from etcd that failed.
    pub fn view_errors(&self) -> u64 {
        self.view_errors.load(Relaxed)
    }

    /// Counts a failed read of the cluster.
    pub fn view_failed(&self) {
        self.view_errors.fetch_add(1, Relaxed);
    }

    /// The last lease renewal's round trip.
    pub fn renew_latency(&self) -> Option<Duration> {
        match self.renew_micros.load(Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Notes the last lease renewal's round trip.
    pub fn set_renew_latency(&self, latency: Duration) {
        self.renew_micros
            .store((latency.as_micros() as u64).max(1), Relaxed);
    }
}
