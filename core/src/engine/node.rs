//! This process as a node of a cluster (`[cluster]`): its membership,
//! joined again if etcd let it lapse, and where the cluster places each
//! stream, read from etcd every quarter of the lease. The streams placed
//! here (as owner or standby) are the ones the supervisor runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use hlsvault_cluster::{
    connect, place, view, ClusterSettings, Etcd, Keys, Membership, Placement, View,
};
use tokio::sync::watch;

use super::watch::Wake;
use crate::figures::NodeFigures;

/// A stream as the placement sees it: its name and its pins.
pub type Pinned = (String, Vec<String>);

/// This node.
pub struct Node {
    /// How it takes part.
    pub settings: ClusterSettings,
    /// Where the cluster's state is in etcd.
    pub keys: Keys,
    membership: watch::Receiver<Option<Arc<Membership>>>,
    placed: watch::Receiver<Arc<Placed>>,
    /// What the node counted (the streams' own figures count the rest).
    pub figures: Arc<NodeFigures>,
}

/// Where the cluster places every stream of the config, as last read.
#[derive(Debug, Default)]
pub struct Placed {
    /// The cluster as read.
    pub view: View,
    /// Stream -> its owner and standby.
    pub placements: BTreeMap<String, Placement>,
}

impl Placed {
    fn of(view: View, streams: &[Pinned], redundancy: u8) -> Self {
        let placements = streams
            .iter()
            .map(|(name, pins)| {
                let pins = (!pins.is_empty()).then_some(pins.as_slice());
                (name.clone(), place(name, &view.members, pins, redundancy))
            })
            .collect();
        Placed { view, placements }
    }

    /// The streams placed on `node`, as owner or standby, and those it
    /// owns still (until it hands them over).
    pub fn here(&self, node: &str) -> BTreeSet<String> {
        let is = |n: Option<&str>| n == Some(node);
        self.placements
            .iter()
            .filter(|(s, p)| {
                is(p.owner.as_deref()) || is(p.standby.as_deref()) || is(self.current_owner(s))
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The node that should own `stream` (None: no member can).
    pub fn owner(&self, stream: &str) -> Option<&str> {
        self.placements.get(stream)?.owner.as_deref()
    }

    /// Whether `node` records `stream` and could take it over now.
    pub fn ready(&self, stream: &str, node: &str) -> bool {
        self.view
            .ready
            .contains(&(stream.to_string(), node.to_string()))
    }

    /// Who owns `stream` now, as etcd says.
    pub fn current_owner(&self, stream: &str) -> Option<&str> {
        self.view.owners.get(stream).map(String::as_str)
    }
}

/// How often a node reads the cluster (and its streams look at it).
pub fn tick(lease: Duration) -> Duration {
    (lease / 4).max(Duration::from_millis(250))
}

impl Node {
    /// Joins the cluster and reads where it places `streams`; then keeps
    /// reading it (and joining again if needed) on `io`, telling `wake`
    /// whenever the streams placed here change. Fails if etcd cannot be
    /// reached or the node's name is taken by a live member.
    pub async fn start(
        settings: ClusterSettings,
        streams: watch::Receiver<Vec<Pinned>>,
        wake: Sender<Wake>,
    ) -> anyhow::Result<(Arc<Node>, BTreeSet<String>)> {
        let keys = Keys::default();
        let membership = Arc::new(Membership::join(&settings, &keys).await?);
        let client = connect(&settings).await?;
        let first = Placed::of(
            view(&client, &keys).await?,
            &streams.borrow(),
            settings.redundancy,
        );
        let here = first.here(&settings.node);
        let (membership_tx, membership_rx) = watch::channel(Some(membership));
        let (placed_tx, placed_rx) = watch::channel(Arc::new(first));
        let node = Arc::new(Node {
            settings,
            keys,
            membership: membership_rx,
            placed: placed_rx,
            figures: Arc::default(),
        });
        node.figures.joined();
        tokio::spawn(follow(
            node.clone(),
            client,
            membership_tx,
            placed_tx,
            streams,
            wake,
            here.clone(),
        ));
        Ok((node, here))
    }

    /// The node's membership while it has one.
    pub fn membership(&self) -> Option<Arc<Membership>> {
        self.membership.borrow().clone()
    }

    /// Where the cluster places every stream, as last read.
    pub fn placed(&self) -> Arc<Placed> {
        self.placed.borrow().clone()
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.settings.node
    }

    /// Leaves the cluster (its lease revoked: the others take its streams
    /// at once).
    pub async fn leave(&self) {
        if let Some(m) = self.membership() {
            if let Err(e) = m.leave().await {
                tracing::warn!(error = %e, "cannot leave the cluster; its lease will expire");
            }
        }
    }
}

/// Reads the cluster every tick; joins again once etcd says the lease is
/// gone. While this node is not a live member the streams placed here
/// stay as they are: they keep recording (as standbys) for when it is
/// again.
async fn follow(
    node: Arc<Node>,
    client: Etcd,
    membership: watch::Sender<Option<Arc<Membership>>>,
    placed: watch::Sender<Arc<Placed>>,
    streams: watch::Receiver<Vec<Pinned>>,
    wake: Sender<Wake>,
    mut told: BTreeSet<String>,
) {
    let period = tick(node.settings.lease);
    loop {
        tokio::time::sleep(period).await;
        let gone = membership
            .borrow()
            .as_ref()
            .is_none_or(|m| m.alive_until().is_none());
        if gone {
            membership.send_replace(None);
            match Membership::join(&node.settings, &node.keys).await {
                Ok(m) => {
                    node.figures.joined();
                    membership.send_replace(Some(Arc::new(m)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot join the cluster again yet");
                    continue;
                }
            }
        }
        if let Some(latency) = membership.borrow().as_ref().and_then(|m| m.renew_latency()) {
            node.figures.set_renew_latency(latency);
        }
        let read = match view(&client, &node.keys).await {
            Ok(v) => Placed::of(v, &streams.borrow(), node.settings.redundancy),
            Err(e) => {
                node.figures.view_failed();
                tracing::debug!(error = %e, "cannot read the cluster from etcd");
                continue;
            }
        };
        let member = read.view.members.iter().any(|m| m.name == node.name());
        let here = read.here(node.name());
        placed.send_replace(Arc::new(read));
        if member && here != told {
            tracing::info!(streams = ?here, "the cluster placed streams here");
            if wake.send(Wake::Placed(here.clone())).is_err() {
                return;
            }
            told = here;
        }
    }
}
